"""Image tokens: an ImageSpec packed into a signed, URL-path-safe string.

The fake keeps no state between generating a response and serving its images: each image URL
carries its own spec, signed so that nobody can make the server render what it never handed out.

A token is unpadded base64url of ``header + payload + signature``. The header byte names the
token format, so the format can change later: ``0x01`` is a compact JSON array
``[model, prompt_head, width, height, format, seed, index]`` in UTF-8 (compressing it would save
a few characters of each URL for microseconds of every generation). The signature is BLAKE2b
keyed with the caller's secret (hashed to 64 bytes first if longer than BLAKE2b's key), a MAC by
design at half the cost of HMAC-SHA256, over header and payload, ``SIGNATURE_BYTES`` long.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
from typing import Any

from mock_server.types import ImageFormat, ImageRequest, ImageSpec

__all__ = [
    "MAX_INDEX",
    "MAX_SIDE",
    "MAX_TOKEN_CHARS",
    "PROMPT_CHARS",
    "SIGNATURE_BYTES",
    "decode_image_token",
    "encode_image_token",
    "encode_image_tokens",
]

PROMPT_CHARS = 120
"""How many characters of the prompt a token keeps, so URLs stay short for long prompts."""

MAX_SIDE = 8192
"""The largest width or height a token may carry."""

MAX_INDEX = 63
"""The largest image index a token may carry."""

MAX_TOKEN_CHARS = 4096
"""Longer strings are rejected without decoding them."""

SIGNATURE_BYTES = 16
"""The length of the signature."""

_JSON = 0x01
_HEADER = bytes([_JSON])
_FORMATS: dict[str, ImageFormat] = {"png": "png", "jpeg": "jpeg", "webp": "webp"}
_TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_quote_json_string = json.encoder.encode_basestring  # what json.dumps uses with ensure_ascii=False


def encode_image_token(spec: ImageSpec, secret: bytes) -> str:
    """A URL-path-safe token (only ``A-Z a-z 0-9 _ -``) carrying ``spec``, signed with ``secret``.

    Only the first ``PROMPT_CHARS`` characters of the prompt are kept. Raises ``ValueError`` for
    a spec that :func:`decode_image_token` would reject (a side outside 1..``MAX_SIDE``, an index
    outside 0..``MAX_INDEX``, a negative seed, an unknown format, a token too long).
    """
    problem = _problem(spec)
    if problem is not None:
        raise ValueError(f"cannot encode {spec!r}: {problem}")
    # surrogatepass: lone surrogates are legal in JSON strings, so prompts may hold them.
    return _signed(_HEADER + _payload(spec).encode("utf-8", "surrogatepass"), secret, spec)


def encode_image_tokens(request: ImageRequest, secret: bytes) -> list[str]:
    """The token of each image ``request`` asks for: ``encode_image_token`` of each of
    ``request.images()``, with the work they share done once (this runs for every generation).
    """
    width, height, seed, count = request.width, request.height, request.seed, request.count
    if (
        count < 1
        or not (type(width) is type(height) is type(seed) is type(count) is int)  # all ints
        # The last image has the largest index; otherwise the images are alike.
        or _problem_of(width, height, count - 1, seed, request.format) is not None
    ):
        # One by one, which raises the ValueError naming the first image that cannot be encoded.
        return [encode_image_token(spec, secret) for spec in request.images()]
    quote = _quote_json_string
    head = (
        f"[{quote(request.model)},{quote(request.prompt[:PROMPT_CHARS])},{width},{height},"
        f"{quote(request.format)},{seed},"
    )
    prefix = _HEADER + head.encode("utf-8", "surrogatepass")
    if count == 1:  # the usual case, without lists (a token this short is never too long)
        message = prefix + b"0]"
        if len(message) < MAX_TOKEN_CHARS // 2:
            return [_b64encode(message + _sign(message, secret))]
    messages = [prefix + b"%d]" % index for index in range(count)]
    tokens = [_b64encode(message + _sign(message, secret)) for message in messages]
    if len(tokens[-1]) > MAX_TOKEN_CHARS:
        return [encode_image_token(spec, secret) for spec in request.images()]
    return tokens


def _signed(message: bytes, secret: bytes, spec: ImageSpec) -> str:
    token = _b64encode(message + _sign(message, secret))
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError(
            f"cannot encode {spec!r}: the token would be {len(token)} characters, "
            f"expected at most {MAX_TOKEN_CHARS}"
        )
    return token


def decode_image_token(token: str, secret: bytes, max_side: int = MAX_SIDE) -> ImageSpec | None:
    """The spec inside ``token`` if it was made by :func:`encode_image_token` with ``secret``.

    Returns None for anything else (tampered, truncated, signed with another secret, garbled,
    holding values out of range, or a width or height over ``max_side``); never raises.
    """
    try:
        spec = _decode(token, secret)
    except (ValueError, RecursionError):
        # Only a signed payload gets this far, so these mean a token from a newer or buggy encoder.
        return None
    if spec is None or spec.width > max_side or spec.height > max_side:
        return None
    return spec


def _decode(token: str, secret: bytes) -> ImageSpec | None:
    if len(token) > MAX_TOKEN_CHARS or not _TOKEN_ALPHABET.fullmatch(token):
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except binascii.Error:
        return None
    # Unused low bits of the last character would let two strings decode alike.
    if _b64encode(raw) != token or len(raw) <= 1 + SIGNATURE_BYTES:
        return None
    message, signature = raw[:-SIGNATURE_BYTES], raw[-SIGNATURE_BYTES:]
    if not hmac.compare_digest(signature, _sign(message, secret)):
        return None
    header, body = message[0], message[1:]
    if header != _JSON:
        return None
    return _spec_from_fields(json.loads(body.decode("utf-8", "surrogatepass")))


def _spec_from_fields(fields: Any) -> ImageSpec | None:
    if not isinstance(fields, list) or len(fields) != 7:
        return None
    model, prompt, width, height, format_name, seed, index = fields
    if not (isinstance(model, str) and isinstance(prompt, str) and len(prompt) <= PROMPT_CHARS):
        return None
    numbers = (width, height, seed, index)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        return None
    image_format = _FORMATS.get(format_name) if isinstance(format_name, str) else None
    if image_format is None:
        return None
    spec = ImageSpec(model, prompt, width, height, image_format, seed, index)
    return spec if _problem(spec) is None else None


def _problem(spec: ImageSpec) -> str | None:
    """What keeps ``spec`` out of a token, or None."""
    return _problem_of(spec.width, spec.height, spec.index, spec.seed, spec.format)


def _problem_of(width: int, height: int, index: int, seed: int, image_format: str) -> str | None:
    if 1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE and 0 <= index <= MAX_INDEX:
        pass
    else:
        for name, value, low, high in (
            ("width", width, 1, MAX_SIDE),
            ("height", height, 1, MAX_SIDE),
            ("index", index, 0, MAX_INDEX),
        ):
            if not low <= value <= high:
                return f"{name} {value!r} is outside {low}..{high}"
    if seed < 0:
        return f"seed {seed!r} is negative"
    if image_format not in _FORMATS:
        return f"format {image_format!r} is not one of {', '.join(_FORMATS)}"
    return None


def _payload(spec: ImageSpec) -> str:
    """The JSON array a token carries, as ``json.dumps`` writes it (compact, not ASCII-escaped)."""
    prompt = spec.prompt[:PROMPT_CHARS]
    numbers = (spec.width, spec.height, spec.seed, spec.index)
    if all(type(number) is int for number in numbers):
        # The text json.dumps makes, several times faster: this runs for every image URL.
        quote = _quote_json_string
        return (
            f"[{quote(spec.model)},{quote(prompt)},{spec.width},{spec.height},"
            f"{quote(spec.format)},{spec.seed},{spec.index}]"
        )
    fields = [spec.model, prompt, spec.width, spec.height, spec.format, spec.seed, spec.index]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _sign(message: bytes, secret: bytes) -> bytes:
    return hashlib.blake2b(message, key=_mac_key(secret), digest_size=SIGNATURE_BYTES).digest()


@functools.lru_cache(maxsize=16)
def _mac_key(secret: bytes) -> bytes:
    if len(secret) <= hashlib.blake2b.MAX_KEY_SIZE:
        return secret
    return hashlib.blake2b(secret).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

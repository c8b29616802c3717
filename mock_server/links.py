"""Image tokens: an ImageSpec packed into a signed, URL-path-safe string.

The fake keeps no state between generating a response and serving its images: each image URL
carries its own spec, signed so that nobody can make the server render what it never handed out.

A token is unpadded base64url of ``header + payload + signature``. The header byte names the
token format, so the format can change later: ``0x01`` is a compact JSON array
``[model, prompt_head, width, height, format, seed, index]`` in UTF-8, ``0x02`` is the same
array zlib-compressed (chosen when shorter). The signature is HMAC-SHA256 of header and payload
under the caller's secret, truncated to ``SIGNATURE_BYTES``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import re
import zlib
from typing import Any

from mock_server.types import ImageFormat, ImageSpec

__all__ = [
    "MAX_INDEX",
    "MAX_SIDE",
    "MAX_TOKEN_CHARS",
    "PROMPT_CHARS",
    "SIGNATURE_BYTES",
    "decode_image_token",
    "encode_image_token",
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
"""The length of the truncated HMAC-SHA256 signature."""

_JSON = 0x01
_ZLIB_JSON = 0x02
_ZLIB_WINDOW_BITS = 10
_ZLIB_MEMORY_LEVEL = 1
_MAX_PAYLOAD_BYTES = 16 * 1024  # bounds decompression; far more than any valid payload
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
    payload = _payload(spec).encode("utf-8", "surrogatepass")
    compressed = _compress(payload)
    if len(compressed) < len(payload):
        message = bytes([_ZLIB_JSON]) + compressed
    else:
        message = bytes([_JSON]) + payload
    token = _b64encode(message + _sign(message, secret))
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError(
            f"cannot encode {spec!r}: the token would be {len(token)} characters, "
            f"expected at most {MAX_TOKEN_CHARS}"
        )
    return token


def decode_image_token(token: str, secret: bytes) -> ImageSpec | None:
    """The spec inside ``token`` if it was made by :func:`encode_image_token` with ``secret``.

    Returns None for anything else (tampered, truncated, signed with another secret, garbled,
    or holding values out of range); never raises.
    """
    try:
        return _decode(token, secret)
    except (ValueError, zlib.error, RecursionError):
        # Only a signed payload gets this far, so these mean a token from a newer or buggy encoder.
        return None


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
    if header == _ZLIB_JSON:
        decompressor = zlib.decompressobj()
        body = decompressor.decompress(body, _MAX_PAYLOAD_BYTES)
        if not decompressor.eof or decompressor.unconsumed_tail or decompressor.unused_data:
            return None
    elif header != _JSON:
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
    for name, value, low, high in (
        ("width", spec.width, 1, MAX_SIDE),
        ("height", spec.height, 1, MAX_SIDE),
        ("index", spec.index, 0, MAX_INDEX),
    ):
        if not low <= value <= high:
            return f"{name} {value!r} is outside {low}..{high}"
    if spec.seed < 0:
        return f"seed {spec.seed!r} is negative"
    if spec.format not in _FORMATS:
        return f"format {spec.format!r} is not one of {', '.join(_FORMATS)}"
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


def _compress(payload: bytes) -> bytes:
    # zlib's default 32 KiB window and 128 KiB hash table cost an allocation (an mmap, past
    # glibc's threshold) on every call, tens of microseconds; a 1 KiB window holds any payload.
    compressor = zlib.compressobj(9, zlib.DEFLATED, _ZLIB_WINDOW_BITS, _ZLIB_MEMORY_LEVEL)
    return compressor.compress(payload) + compressor.flush()


def _sign(message: bytes, secret: bytes) -> bytes:
    mac = _keyed_hmac(secret).copy()  # cheaper than keying a new HMAC for every signature
    mac.update(message)
    return mac.digest()[:SIGNATURE_BYTES]


@functools.lru_cache(maxsize=16)
def _keyed_hmac(secret: bytes) -> hmac.HMAC:
    return hmac.new(secret, digestmod=hashlib.sha256)


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

"""Image tokens: an ImageSpec packed into a signed, URL-path-safe string.

The fake keeps no state between generating a response and serving its images: each image URL
carries its own spec, signed so that nobody can make the server render what it never handed out.

A token is unpadded base64url of ``header + payload + signature``. The header byte names the
token format:

- ``0x01``, for a prompt of at most ``PROMPT_CHARS`` characters and no input images (nearly every
  generation): a compact JSON array ``[model, prompt, width, height, format, seed, index]`` in
  UTF-8, uncompressed (compressing would save a few characters of each URL for microseconds of
  every generation).
- ``0x03``, for everything else: the same array with an eighth item, the input images of an edit,
  raw-deflated. It carries the whole prompt, so the image's metadata can show it, unless the token
  would then be longer than ``MAX_TOKEN_CHARS``: the prompt is then cut to fit. An input image
  travels as what its thumbnail needs (see :func:`_input_fields`), never its bytes, and an input
  that was itself an edit travels without its own inputs, so tokens stay bounded.
- ``0x02`` was an earlier compressed format; it is no longer read.

The signature is BLAKE2b keyed with the caller's secret (hashed to 64 bytes first if longer than
BLAKE2b's key), a MAC by design at half the cost of HMAC-SHA256, over header and payload,
``SIGNATURE_BYTES`` long.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import hmac
import json
import re
import zlib
from typing import Any

from mock_server.types import (
    MOSAIC_SIDE,
    DecodedImage,
    ImageFormat,
    ImageRequest,
    ImageSpec,
    InputImage,
    IssuedImage,
    RemoteImage,
)

__all__ = [
    "MAX_INDEX",
    "MAX_PIXELS",
    "MAX_SIDE",
    "MAX_TOKEN_CHARS",
    "PROMPT_CHARS",
    "SIGNATURE_BYTES",
    "decode_image_token",
    "encode_image_token",
    "encode_image_tokens",
]

PROMPT_CHARS = 120
"""Prompts up to this long travel in the short token format; an edit's input keeps this much of
its own prompt."""

MAX_SIDE = 8192
"""The largest width or height a token may carry."""

MAX_PIXELS = 4096 * 4096
"""The most pixels (width × height) a token may carry: larger images take seconds and hundreds
of MB to encode (an 8192² WebP: 2.5 s, 0.9 GB)."""

MAX_INDEX = 63
"""The largest image index a token may carry."""

MAX_TOKEN_CHARS = 8192
"""Longer strings are rejected without decoding them (and no token is made longer)."""

MAX_INPUTS = 8
"""The most input images a token carries (the bundled specs allow 3)."""

URL_LABEL_CHARS = 120
"""How much of an input image's URL a token keeps, to label its thumbnail."""

SIGNATURE_BYTES = 16
"""The length of the signature."""

_JSON = 0x01
_DEFLATED_JSON = 0x03
_HEADER = bytes([_JSON])
_DEFLATED_HEADER = bytes([_DEFLATED_JSON])
_MAX_INFLATED_BYTES = 64 * 1024  # well above what MAX_TOKEN_CHARS of deflated JSON holds
_FORMATS: dict[str, ImageFormat] = {
    "png": "png",
    "jpeg": "jpeg",
    "webp": "webp",
    "gif": "gif",
    "tiff": "tiff",
}
_TOKEN_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
_quote_json_string = json.encoder.encode_basestring  # what json.dumps uses with ensure_ascii=False


def encode_image_token(spec: ImageSpec, secret: bytes) -> str:
    """A URL-path-safe token (only ``A-Z a-z 0-9 _ -``) carrying ``spec``, signed with ``secret``.

    The whole prompt is kept unless the token would be longer than ``MAX_TOKEN_CHARS``; then as
    much of it as fits. An input image that was itself an edit loses its own inputs, and the
    input's prompt is cut to ``PROMPT_CHARS``. Raises ``ValueError`` for a spec that
    :func:`decode_image_token` would reject (a side outside 1..``MAX_SIDE``, more than
    ``MAX_PIXELS``, an index outside 0..``MAX_INDEX``, a negative seed, an unknown format, more
    than ``MAX_INPUTS`` inputs, a token too long even with the prompt cut).
    """
    problem = _problem(spec)
    if problem is not None:
        raise ValueError(f"cannot encode {spec!r}: {problem}")
    if spec.inputs or len(spec.prompt) > PROMPT_CHARS:
        return _deflated_token(spec, secret)
    # surrogatepass: lone surrogates are legal in JSON strings, so prompts may hold them.
    return _signed(_HEADER + _payload(spec).encode("utf-8", "surrogatepass"), secret, spec)


def encode_image_tokens(request: ImageRequest, secret: bytes) -> list[str]:
    """The token of each image ``request`` asks for: ``encode_image_token`` of each of
    ``request.images()``, with the work they share done once (this runs for every generation).
    """
    width, height, seed, count = request.width, request.height, request.seed, request.count
    if (
        request.inputs
        or len(request.prompt) > PROMPT_CHARS
        or count < 1
        or not (type(width) is type(height) is type(seed) is type(count) is int)  # all ints
        # The last image has the largest index; otherwise the images are alike.
        or _problem_of(width, height, count - 1, seed, request.format) is not None
    ):
        # One by one: long prompts and edits, or the ValueError naming the first image that
        # cannot be encoded.
        return [encode_image_token(spec, secret) for spec in request.images()]
    quote = _quote_json_string
    head = (
        f"[{quote(request.model)},{quote(request.prompt)},{width},{height},"
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


def _deflated_token(spec: ImageSpec, secret: bytes) -> str:
    inputs = [_input_fields(image) for image in spec.inputs]
    fixed = [spec.width, spec.height, spec.format, spec.seed, spec.index, inputs]
    prompt = spec.prompt
    token = _deflated(spec.model, prompt, fixed, secret)
    if len(token) <= MAX_TOKEN_CHARS:
        return token
    # Too long: keep the longest prefix of the prompt that fits (a binary search; rare).
    low, high = 0, len(prompt) - 1
    while low < high:
        middle = (low + high + 1) // 2
        if len(_deflated(spec.model, prompt[:middle], fixed, secret)) <= MAX_TOKEN_CHARS:
            low = middle
        else:
            high = middle - 1
    token = _deflated(spec.model, prompt[:low], fixed, secret)
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError(
            f"cannot encode {spec!r}: the token would be {len(token)} characters even without "
            f"a prompt, expected at most {MAX_TOKEN_CHARS}"
        )
    return token


def _deflated(model: str, prompt: str, fixed: list[Any], secret: bytes) -> str:
    text = json.dumps([model, prompt, *fixed], ensure_ascii=False, separators=(",", ":"))
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = packer.compress(text.encode("utf-8", "surrogatepass")) + packer.flush()
    message = _DEFLATED_HEADER + body
    return _b64encode(message + _sign(message, secret))


def _input_fields(image: InputImage) -> list[Any]:
    """An input image as a token carries it: enough to draw its thumbnail and know its size."""
    if isinstance(image, IssuedImage):
        spec = image.spec
        prompt = spec.prompt[:PROMPT_CHARS]
        fields = [spec.model, prompt, spec.width, spec.height, spec.format, spec.seed, spec.index]
        return ["issued", *fields]
    if isinstance(image, DecodedImage):
        mosaic = base64.b64encode(image.mosaic).decode("ascii")
        return ["decoded", image.width, image.height, image.format, image.source, mosaic]
    return ["remote", image.url[:URL_LABEL_CHARS]]


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
    if header == _JSON:
        return _spec_from_fields(json.loads(body.decode("utf-8", "surrogatepass")))
    if header == _DEFLATED_JSON:
        unpacker = zlib.decompressobj(-15)
        try:
            text = unpacker.decompress(body, _MAX_INFLATED_BYTES)
        except zlib.error:
            return None
        if not unpacker.eof or unpacker.unconsumed_tail or unpacker.unused_data:
            return None
        fields = json.loads(text.decode("utf-8", "surrogatepass"))
        if not isinstance(fields, list) or len(fields) != 8:
            return None
        inputs = _inputs_from_fields(fields[7])
        spec = _spec_from_fields(fields[:7], max_prompt=None)
        if spec is None or inputs is None:
            return None
        return dataclasses.replace(spec, inputs=inputs)
    return None


def _spec_from_fields(fields: Any, max_prompt: int | None = PROMPT_CHARS) -> ImageSpec | None:
    if not isinstance(fields, list) or len(fields) != 7:
        return None
    model, prompt, width, height, format_name, seed, index = fields
    if not (isinstance(model, str) and isinstance(prompt, str)):
        return None
    if max_prompt is not None and len(prompt) > max_prompt:
        return None
    numbers = (width, height, seed, index)
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers):
        return None
    image_format = _FORMATS.get(format_name) if isinstance(format_name, str) else None
    if image_format is None:
        return None
    spec = ImageSpec(model, prompt, width, height, image_format, seed, index)
    return spec if _problem(spec) is None else None


def _inputs_from_fields(fields: Any) -> tuple[InputImage, ...] | None:
    if not isinstance(fields, list) or len(fields) > MAX_INPUTS:
        return None
    inputs: list[InputImage] = []
    for item in fields:
        image = _input_from_fields(item) if isinstance(item, list) and item else None
        if image is None:
            return None
        inputs.append(image)
    return tuple(inputs)


def _input_from_fields(item: list[Any]) -> InputImage | None:
    kind, rest = item[0], item[1:]
    if kind == "issued":
        spec = _spec_from_fields(rest)
        return IssuedImage(spec) if spec is not None else None
    if kind == "decoded" and len(rest) == 5:
        width, height, format_name, source, mosaic = rest
        sizes_ok = all(type(n) is int and n >= 1 for n in (width, height))
        if not (sizes_ok and isinstance(format_name, str) and source in ("data", "fetched")):
            return None
        if not isinstance(mosaic, str):
            return None
        try:
            pixels = base64.b64decode(mosaic, validate=True)
        except binascii.Error:
            return None
        if len(pixels) != MOSAIC_SIDE * MOSAIC_SIDE * 3:
            return None
        return DecodedImage(width, height, format_name, source, pixels)
    if kind == "remote" and len(rest) == 1 and isinstance(rest[0], str):
        return RemoteImage(rest[0])
    return None


def _problem_of(width: int, height: int, index: int, seed: int, image_format: str) -> str | None:
    if (
        1 <= width <= MAX_SIDE
        and 1 <= height <= MAX_SIDE
        and 0 <= index <= MAX_INDEX
        and width * height <= MAX_PIXELS
    ):
        pass
    else:
        for name, value, low, high in (
            ("width", width, 1, MAX_SIDE),
            ("height", height, 1, MAX_SIDE),
            ("index", index, 0, MAX_INDEX),
        ):
            if not low <= value <= high:
                return f"{name} {value!r} is outside {low}..{high}"
        return f"{width}×{height} is more than {MAX_PIXELS} pixels"
    if seed < 0:
        return f"seed {seed!r} is negative"
    if image_format not in _FORMATS:
        return f"format {image_format!r} is not one of {', '.join(_FORMATS)}"
    return None


def _problem(spec: ImageSpec) -> str | None:
    """What keeps ``spec`` out of a token, or None."""
    problem = _problem_of(spec.width, spec.height, spec.index, spec.seed, spec.format)
    if problem is None and len(spec.inputs) > MAX_INPUTS:
        problem = f"{len(spec.inputs)} input images, expected at most {MAX_INPUTS}"
    if problem is None:
        for image in spec.inputs:
            if isinstance(image, IssuedImage):
                inner = image.spec
                problem = _problem_of(
                    inner.width, inner.height, inner.index, inner.seed, inner.format
                )
            elif isinstance(image, DecodedImage) and (
                min(image.width, image.height) < 1
                or len(image.mosaic) != MOSAIC_SIDE * MOSAIC_SIDE * 3
            ):
                problem = f"decoded input {image.width}x{image.height} is not drawable"
            if problem is not None:
                return f"input image: {problem}"
    return problem


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

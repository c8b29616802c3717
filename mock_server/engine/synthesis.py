"""From a valid request to a response body shaped by the operation's response schema.

What is charged (:func:`credits_used`), the body (:func:`success_body`, shaped by
:mod:`mock_server.engine.shapes`), and its JSON text, written directly for the usual answer.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ..types import JSON, ImageRequest, InputImage, Operation
from .reading import (
    FALLBACK_SIZE,
    FORMAT_ALIASES,
    MAX_IMAGES,
    PRESET_SIZES,
    RequestReader,
    image_request,
)
from .shapes import CREDITS_PER_USD, answer, has_image_slot, image_slot

__all__ = [
    "CREDITS_PER_USD",
    "FALLBACK_SIZE",
    "FORMAT_ALIASES",
    "MAX_IMAGES",
    "MEGAPIXEL",
    "PRESET_SIZES",
    "RequestReader",
    "credits_used",
    "encode_json",
    "has_image_slot",
    "image_request",
    "image_slot",
    "success_body",
    "success_body_is_plain",
    "success_json",
]

MEGAPIXEL = 1024 * 1024
DEFAULT_CREDITS_PER_MEGAPIXEL = 25_200
UNKNOWN_INPUT_MEGAPIXELS = 1  # an input image not downloaded, so of unknown size


def credits_used(operation: Operation, request: ImageRequest) -> int:
    """Credits charged: rate × megapixels (each image rounded up to whole MP) × images, plus,
    for an edit, rate × each input image's megapixels (rounded up; 1 when its size is unknown).

    The rate is the operation's ``x-credits-per-megapixel`` (25,200 when a spec has none: the
    price of a 1472×512 flux-2 image in the API's own docs). Counting the inputs once per call
    reproduces the docs' edit examples, which cost three times the text-to-image example for
    two inputs and one output of at most a megapixel each.
    """
    rate = operation.credits_per_megapixel or DEFAULT_CREDITS_PER_MEGAPIXEL
    megapixels = math.ceil(request.width * request.height / MEGAPIXEL) * request.count
    if request.inputs:
        megapixels += sum(input_megapixels(image) for image in request.inputs)
    return round(rate * megapixels)


def input_megapixels(image: InputImage) -> int:
    """The megapixels an edit's input image is charged for: its pixels rounded up to whole
    megapixels (at least 1), or ``UNKNOWN_INPUT_MEGAPIXELS`` when its size is unknown."""
    size = image.size
    if size is None:
        return UNKNOWN_INPUT_MEGAPIXELS
    return max(1, math.ceil(size[0] * size[1] / MEGAPIXEL))


def usd_spent(credits: int) -> float:
    """``credits`` in US dollars, unrounded (125,367 credits are 0.0626835 USD)."""
    return credits / CREDITS_PER_USD


def cost_headers(credits: int) -> dict[str, str]:
    """The API's cost headers for a JSON answer that charged ``credits``.

    ``x-aimlapi-credits-used`` is the integer count, ``x-aimlapi-usd-spent`` the same amount in
    US dollars printed with 9 decimals (``0.001240000`` for 2,480 credits), computed exactly.
    """
    if isinstance(credits, bool) or not isinstance(credits, int) or credits < 0:
        raise ValueError(f"credits must be a whole number of at least 0, got {credits!r}")
    nano_usd = credits * (10**9 // CREDITS_PER_USD)
    return {
        "x-aimlapi-credits-used": str(credits),
        "x-aimlapi-usd-spent": f"{nano_usd // 10**9}.{nano_usd % 10**9:09d}",
    }


def success_body(
    schema: Mapping[str, Any] | None,
    urls: list[str],
    credits: int,
    request: ImageRequest | None = None,
) -> JSON:
    """The success body: the fake's facts where the schema has a place for them.

    Without a schema: ``data`` with one ``{url, b64_json: null}`` entry per image and
    ``meta.usage.credits_used``, as the API's image operations answer. ``request`` adds the
    images' sizes, media type and seed for schemas that declare such fields.
    """
    if schema is None:
        return {
            "data": [{"url": url, "b64_json": None} for url in urls],
            "meta": {"usage": {"credits_used": credits}},
        }
    return answer(schema, urls, credits, request)


def success_json(
    schema: Mapping[str, Any] | None,
    urls: list[str],
    credits: int,
    request: ImageRequest | None = None,
) -> bytes:
    """:func:`success_body` as compact UTF-8 JSON, as :func:`encode_json` writes it."""
    if schema is not None:
        return encode_json(success_body(schema, urls, credits, request))
    # The same text, made directly: encoding the dict costs more than the rest of a request.
    quote = _quote_json_string
    if len(urls) == 1:  # the usual case, without a list to join
        items = f'{{"url":{quote(urls[0])},"b64_json":null}}'
    else:
        items = ",".join([f'{{"url":{quote(url)},"b64_json":null}}' for url in urls])
    text = f'{{"data":[{items}],"meta":{{"usage":{{"credits_used":{credits:d}}}}}}}'
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate in a configured base URL
        return encode_json(success_body(None, urls, credits))


def encode_json(value: JSON) -> bytes:
    """``value`` as compact JSON in UTF-8 (non-ASCII as is; ASCII escapes if it cannot be UTF-8,
    as with a lone surrogate, legal in JSON text, echoed from a request)."""
    try:
        return _encode_json(value).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode("ascii")


# json.dumps(value, ensure_ascii=False, separators=(",", ":")) without a new encoder each call,
# nor its bookkeeping for cycles: every value encoded here was just made or parsed from JSON.
_encode_json = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), check_circular=False
).encode
_quote_json_string = json.encoder.encode_basestring  # how that encoder writes a string


def success_body_is_plain(schema: Mapping[str, Any] | None) -> bool:
    """Whether :func:`success_body` returns the fake's own values untouched for ``schema``.

    True for the bundled specs but flux-2-edit's (whose usage adds ``usd_spent``): their response
    schemas add no required field and drop none of the fake's; the service then skips
    synthesising on every request. The answer holds for any
    URLs and credits: the walk depends on the shapes and types of ``known``, not its values.
    """
    if schema is None:
        return True
    for count in (1, 2):
        urls = [f"http://127.0.0.1/files/{i}.png" for i in range(count)]
        request = ImageRequest("m", "p", 1024, 768, "png", 1, count)
        shaped = success_body(schema, urls, 25_200, request)
        plain = success_body(None, urls, 25_200)
        if json.dumps(shaped) != json.dumps(plain):  # key order included
            return False
    return True

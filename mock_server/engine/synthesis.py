"""From a valid request to a response body shaped by the operation's response schema."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeGuard, cast

from ..types import JSON, ImageFormat, ImageRequest, InputImage, Operation

# Named sizes accepted by ``image_size`` (the FLUX.2 preset table).
PRESET_SIZES: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
FALLBACK_SIZE = (1024, 768)
FORMAT_ALIASES: dict[str, ImageFormat] = {
    "png": "png",
    "jpeg": "jpeg",
    "jpg": "jpeg",
    "webp": "webp",
}
MEGAPIXEL = 1024 * 1024
MAX_IMAGES = 64  # a spec may allow more; image URLs carry an index below this
DEFAULT_CREDITS_PER_MEGAPIXEL = 25_200
CREDITS_PER_USD = 2_000_000  # "$1 USD = 2,000,000 credits", the API's stated rate
UNKNOWN_INPUT_MEGAPIXELS = 1  # an input image not downloaded, so of unknown size


def image_request(
    operation: Operation, body: Mapping[str, Any], pick_seed: Callable[[], int]
) -> ImageRequest:
    """Read size, format, count and seed from a request body valid for ``operation``.

    Absent fields take the schema's defaults. ``num_images`` is declared as a number: a whole
    float (2.0) counts as 2 and a fractional one is rounded down (2.7 asks for 2 images). A field
    the schema does not declare (``num_images`` sent to flux-2-max) is ignored, as the real API
    does with undeclared fields.
    """
    return RequestReader(operation).read(body, pick_seed)


class RequestReader:
    """:func:`image_request` for one operation, with the schema's defaults looked up once."""

    def __init__(self, operation: Operation) -> None:
        properties = operation.request_schema.get("properties", {})
        size_schema = properties.get("image_size") or {}
        format_schema = properties.get("output_format") or {}
        count_schema = properties.get("num_images")
        self.model = operation.model
        self.default_size = size_schema.get("default")
        defaults = _find_object_defaults(size_schema)
        self.default_width = defaults.get("width", FALLBACK_SIZE[0])
        self.default_height = defaults.get("height", FALLBACK_SIZE[1])
        self.default_format = format_schema.get("default")
        self.counts = count_schema is not None
        self.default_count = count_schema.get("default", 1) if count_schema is not None else 1

    def read(self, body: Mapping[str, Any], pick_seed: Callable[[], int]) -> ImageRequest:
        """See :func:`image_request`."""
        width, height = self._size(body.get("image_size"))
        image_format = body.get("output_format")
        if image_format is None:
            image_format = self.default_format
        count = body.get("num_images") if self.counts else 1
        if count is None:
            count = self.default_count
        seed = body.get("seed")
        return ImageRequest(  # by position: a frozen dataclass takes keywords more slowly
            self.model,
            str(body.get("prompt", "")),
            width,
            height,
            FORMAT_ALIASES.get(str(image_format).lower(), "png") if image_format else "png",
            int(seed) if _is_number(seed) else pick_seed(),
            min(MAX_IMAGES, max(1, math.floor(count))) if _is_number(count) else 1,
        )

    def _size(self, value: Any) -> tuple[int, int]:
        if value is None:
            value = self.default_size
        if isinstance(value, str):
            return PRESET_SIZES.get(value, FALLBACK_SIZE)
        if isinstance(value, Mapping):
            width = value.get("width", self.default_width)
            height = value.get("height", self.default_height)
            if type(width) is type(height) is int:  # the usual case, decided at once
                return width, height
            if _is_number(width) and _is_number(height):
                return int(width), int(height)
        return FALLBACK_SIZE


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


def usage_for(schema: Mapping[str, Any] | None, credits: int) -> dict[str, JSON]:
    """``meta.usage`` for a call that charged ``credits``: ``credits_used``, and ``usd_spent``
    (credits / 2,000,000) too when the response schema declares it."""
    usage: dict[str, JSON] = {"credits_used": credits}
    if schema is not None and _declares_usd_spent(schema):
        usage["usd_spent"] = usd_spent(credits)
    return usage


def _declares_usd_spent(schema: Mapping[str, Any]) -> bool:
    usage = _property(_property(schema, "meta"), "usage")
    if usage is None:
        return False
    return _property(usage, "usd_spent") is not None or "usd_spent" in usage.get("required", ())


def _property(schema: Mapping[str, Any] | None, name: str) -> Mapping[str, Any] | None:
    """The schema of property ``name``, looking through allOf/anyOf/oneOf branches too."""
    if not isinstance(schema, Mapping):
        return None
    found = schema.get("properties", {}).get(name)
    if isinstance(found, Mapping):
        return found
    for combinator in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(combinator, ()):
            found = _property(branch, name)
            if found is not None:
                return found
    return None


def success_body(schema: Mapping[str, Any] | None, urls: list[str], credits: int) -> JSON:
    """The success body: the fake's values where the schema has a place for them.

    ``data`` gets one ``{url, b64_json: null}`` entry per image, ``meta.usage`` the charge (see
    :func:`usage_for`); any other required field is synthesised from the schema.
    """
    known: dict[str, JSON] = {
        "data": [{"url": url, "b64_json": None} for url in urls],
        "meta": {"usage": usage_for(schema, credits)},
    }
    if schema is None:
        return known
    return synthesise(schema, known)


def success_json(schema: Mapping[str, Any] | None, urls: list[str], credits: int) -> bytes:
    """:func:`success_body` as compact UTF-8 JSON, as :func:`encode_json` writes it."""
    if schema is not None:
        return encode_json(success_body(schema, urls, credits))
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
        shaped, plain = success_body(schema, urls, 25_200), success_body(None, urls, 25_200)
        if json.dumps(shaped) != json.dumps(plain):  # key order included
            return False
    return True


def synthesise(schema: Mapping[str, Any], known: JSON = None) -> JSON:
    """A value valid for ``schema``, using ``known`` where the schema has room for it."""
    for combinator in ("allOf", "anyOf", "oneOf"):
        if combinator in schema and "type" not in schema and "properties" not in schema:
            branches = [b for b in schema[combinator] if isinstance(b, Mapping)]
            if combinator == "allOf":
                return synthesise(_merge(branches), known)
            chosen = _branch_for(branches, known)
            return synthesise(chosen, known) if chosen is not None else known
    kind = _primary_type(schema)
    if kind == "object" or "properties" in schema:
        return _synthesise_object(schema, known if isinstance(known, Mapping) else {})
    if kind == "array":
        items = schema.get("items") if isinstance(schema.get("items"), Mapping) else {}
        if isinstance(known, list):
            return [synthesise(cast(Mapping[str, Any], items), item) for item in known]
        return [synthesise(cast(Mapping[str, Any], items))] * int(schema.get("minItems", 0))
    if known is not None or _allows_null(schema):
        return known
    return _placeholder(schema, kind)


def _synthesise_object(schema: Mapping[str, Any], known: Mapping[str, JSON]) -> dict[str, JSON]:
    properties: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    out: dict[str, JSON] = {}
    for name, sub in properties.items():
        if name in known:
            out[name] = synthesise(sub, known[name])
        elif name in required:
            out[name] = synthesise(sub)
    for name in required - set(properties):
        out[name] = known.get(name, "")
    return out


def _placeholder(schema: Mapping[str, Any], kind: str | None) -> JSON:
    for key in ("example", "default"):
        if key in schema:
            return cast(JSON, schema[key])
    if schema.get("enum"):
        return cast(JSON, schema["enum"][0])
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        return low + 1 if "exclusiveMinimum" in schema else low
    if kind == "boolean":
        return False
    if kind == "string":
        return "x" * int(schema.get("minLength", 0))
    return None


def _primary_type(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        return next((k for k in kind if k != "null"), None)
    return kind if isinstance(kind, str) else None


def _allows_null(schema: Mapping[str, Any]) -> bool:
    kind = schema.get("type")
    return kind == "null" or (isinstance(kind, list) and "null" in kind) or "type" not in schema


def _merge(branches: list[Mapping[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    for branch in branches:
        merged["properties"].update(branch.get("properties", {}))
        merged["required"].extend(branch.get("required", []))
    return merged


def _branch_for(branches: list[Mapping[str, Any]], known: JSON) -> Mapping[str, Any] | None:
    wanted = {dict: "object", list: "array", str: "string", bool: "boolean"}.get(type(known))
    for branch in branches:
        kind = _primary_type(branch)
        if (wanted is None or kind in (wanted, None)) and not (known is None and kind == "null"):
            return branch
    return branches[0] if branches else None


def _find_object_defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    for branch in [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]:
        properties = branch.get("properties") if isinstance(branch, Mapping) else None
        if isinstance(properties, Mapping):
            return {
                name: sub["default"]
                for name, sub in properties.items()
                if isinstance(sub, Mapping) and "default" in sub
            }
    return {}


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, _NUMBERS) and not isinstance(value, bool)


_NUMBERS = (int, float)  # a tuple: ``int | float`` would build a union object on every call

"""What a valid generation request asks for, read from whichever fields its operation declares.

The image-model family spells the same wishes many ways: a size as ``image_size`` (an object or a
preset name), ``size`` (``"1024x1536"``), ``width``/``height``, or ``aspect_ratio`` with a
``resolution``; the format as ``output_format`` or any other field whose values are image
formats; the count as ``num_images`` or ``n``. :class:`RequestReader` finds, once per operation,
which of them the schema declares and their defaults, and reads bodies with them. It never
raises: a request the fake cannot draw is reported by :meth:`RequestReader.limits`, the fake's
own limits, which the service answers with a 400 that says so.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeGuard

from ..images.tokens import MAX_INDEX, MAX_PIXELS, MAX_SIDE
from ..types import ImageFormat, ImageRequest, Operation, Violation

# Named sizes accepted by ``image_size`` (the FLUX.2 preset table).
PRESET_SIZES: dict[str, tuple[int, int]] = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
# Resolutions named by their side (``"2K"``): a square, or the area of one for an aspect ratio.
RESOLUTION_SIDES: dict[str, int] = {"1k": 1024, "2k": 2048, "4k": 4096}
FALLBACK_SIZE = (1024, 768)
FORMAT_ALIASES: dict[str, ImageFormat] = {
    "png": "png",
    "jpeg": "jpeg",
    "jpg": "jpeg",
    "webp": "webp",
    "gif": "gif",
    "tiff": "tiff",
    "tif": "tiff",
}
FALLBACK_FORMAT: ImageFormat = "png"
MAX_IMAGES = MAX_INDEX + 1
"""The most images the fake makes for one request; a spec may allow more."""
NEGATIVE_SEED_MODULUS = 2**64
"""Image URLs carry seeds of 0 or more (of any size); a negative seed is taken modulo this, as
a 64-bit unsigned integer reads its bits (-1 draws the image of 18446744073709551615)."""
LIMIT_CODE = "fake_limit"
"""The ``code`` of a violation that is a limit of the fake, not of the spec."""
LIMIT_MESSAGE = "Beyond the limits of aimlapi-mock (the spec allows this request; the fake cannot)"
"""The first line of the message of a 400 answered for a limit."""

_COUNT_FIELDS = ("num_images", "n")
_SIZE_TEXT = re.compile(r"\s*(\d{1,9})\s*[x×*]\s*(\d{1,9})\s*")
_RATIO_TEXT = re.compile(r"\s*(\d{1,6}(?:\.\d{1,6})?)\s*:\s*(\d{1,6}(?:\.\d{1,6})?)\s*")


def image_request(
    operation: Operation, body: Mapping[str, Any], pick_seed: Callable[[], int] | None = None
) -> ImageRequest:
    """Read size, format, count and seed from a request body valid for ``operation``.

    ``pick_seed`` chooses the seed of a body that sends none; without it such a request gets
    seed 0 (for callers after the size, format and count only).
    Absent fields take the schema's defaults. A count declared as a number rounds down (2.7 asks
    for 2 images, 2.0 for 2). A field the schema does not declare (``num_images`` sent to
    flux-2-max) is ignored, as the real API does with undeclared fields; ``seed`` is read
    wherever it is sent, rounded down, a negative one taken modulo ``NEGATIVE_SEED_MODULUS``.
    """
    return RequestReader(operation).read(body, pick_seed or _no_seed)


def _no_seed() -> int:
    return 0


class RequestReader:
    """:func:`image_request` for one operation, with its fields and defaults looked up once."""

    def __init__(self, operation: Operation) -> None:
        properties = _properties(operation.request_schema)
        self.model = operation.model
        self._size = _size_field(properties)
        self._size_default = properties.get(self._size, {}).get("default") if self._size else None
        defaults = _object_defaults(properties.get(self._size)) if self._size else {}
        self._default_width = defaults.get("width", FALLBACK_SIZE[0])
        self._default_height = defaults.get("height", FALLBACK_SIZE[1])
        self._sides = "width" in properties and "height" in properties
        self._ratio = "aspect_ratio" if "aspect_ratio" in properties else None
        self._ratio_default = properties.get("aspect_ratio", {}).get("default")
        self._resolution_default = properties.get("resolution", {}).get("default")
        self._format, self.default_format = _format_field(properties)
        self._count = next((name for name in _COUNT_FIELDS if name in properties), None)
        count_schema = properties.get(self._count, {}) if self._count else {}
        self.default_count = count_schema.get("default", 1)

    def read(self, body: Mapping[str, Any], pick_seed: Callable[[], int]) -> ImageRequest:
        """See :func:`image_request`."""
        # This runs for every generation: the usual values (ints in range, fields absent) are
        # decided at once, anything else by the general rules.
        width, height = self._dimensions(body)
        if not (0 <= width <= MAX_SIDE and 0 <= height <= MAX_SIDE):
            # Kept just beyond the limits: limits() reports the values sent, and nobody has to
            # multiply 300-digit numbers.
            width, height = _clamped(width), _clamped(height)
        image_format = self.default_format
        if self._format is not None:
            image_format = _image_format(body.get(self._format), self.default_format)
        count = body.get(self._count) if self._count else None
        if count is None:
            count = self.default_count
        if not (type(count) is int and 1 <= count <= MAX_IMAGES):
            count = min(MAX_IMAGES + 1, max(1, math.floor(count))) if _is_number(count) else 1
        seed = body.get("seed")
        if not (type(seed) is int and seed >= 0):
            seed = _seed(seed) if _is_number(seed) else pick_seed()
        return ImageRequest(  # by position: a frozen dataclass takes keywords more slowly
            self.model, str(body.get("prompt", "")), width, height, image_format, seed, count
        )

    def limits(self, body: Mapping[str, Any], request: ImageRequest) -> list[Violation]:
        """What in a schema-valid ``request`` the fake cannot do (code ``LIMIT_CODE``)."""
        width, height = request.width, request.height
        if (
            # read() keeps out-of-range values out of range, so in range here is in range as sent
            0 < width <= MAX_SIDE
            and 0 < height <= MAX_SIDE
            and width * height <= MAX_PIXELS
            and request.count <= MAX_IMAGES
        ):
            return []
        found = []
        width, height = self._dimensions(body)
        for side, value in (("width", width), ("height", height)):
            if not 1 <= value <= MAX_SIDE:
                found.append(
                    _limit(
                        self._size_path(body, side),
                        f"aimlapi-mock draws images 1 to {MAX_SIDE} pixels {_SIDE_WORDS[side]}",
                        value,
                        (1, MAX_SIDE),
                    )
                )
        if not found and width * height > MAX_PIXELS:
            found.append(
                _limit(
                    self._size_path(body, None),
                    f"aimlapi-mock draws images of at most {MAX_PIXELS:,} pixels "
                    f"({width}×{height} is {width * height:,})",
                    f"{width}x{height}",
                    MAX_PIXELS,
                )
            )
        if request.count > MAX_IMAGES:
            asked = body.get(self._count) if self._count else request.count
            found.append(
                _limit(
                    (self._count or "num_images",),
                    f"aimlapi-mock makes at most {MAX_IMAGES} images per request",
                    asked,
                    MAX_IMAGES,
                )
            )
        return found

    def _dimensions(self, body: Mapping[str, Any]) -> tuple[int, int]:
        """Width and height as asked, unbounded (so possibly 0, negative or huge)."""
        if self._size is not None:
            value = body.get(self._size)
            if type(value) is dict:  # the usual case first: parsed JSON objects are dicts
                width = value.get("width", self._default_width)
                height = value.get("height", self._default_height)
                if type(width) is type(height) is int:
                    return width, height
            elif value is None:
                value = self._size_default
            size = self._size_of(value)
            if size is not None:
                return size
        if self._sides:
            width, height = body.get("width"), body.get("height")
            if _is_number(width) and _is_number(height):
                return math.floor(width), math.floor(height)
        if self._ratio is not None:
            ratio = body.get(self._ratio)
            resolution = body.get("resolution", self._resolution_default)
            size = _ratio_size(ratio if ratio is not None else self._ratio_default, resolution)
            if size is not None:
                return size
        if self._size is not None:
            return self._default_width, self._default_height
        return FALLBACK_SIZE

    def _size_of(self, value: Any) -> tuple[int, int] | None:
        if isinstance(value, str):
            return _text_size(value)
        if isinstance(value, Mapping):
            width = value.get("width", self._default_width)
            height = value.get("height", self._default_height)
            if type(width) is type(height) is int:  # the usual case, decided at once
                return width, height
            if _is_number(width) and _is_number(height):
                return math.floor(width), math.floor(height)
        return None

    def _size_path(self, body: Mapping[str, Any], side: str | None) -> tuple[str, ...]:
        """The field a size limit is about: the one the size was read from."""
        if self._size is not None and body.get(self._size) is not None:
            if side and isinstance(body[self._size], Mapping):
                return (self._size, side)
            return (self._size,)
        if self._sides and "width" in body and "height" in body:
            return (side or "width",)
        if self._ratio is not None and body.get(self._ratio) is not None:
            return (self._ratio,)
        return (self._size or ("width" if self._sides else None) or self._ratio or "image_size",)


_SIDE_WORDS = {"width": "wide", "height": "high"}


def _clamped(side: int) -> int:
    return min(max(side, 0), MAX_SIDE + 1)


def _seed(value: int | float) -> int:
    seed = value if type(value) is int else math.floor(value)
    return seed if seed >= 0 else seed % NEGATIVE_SEED_MODULUS


def _limit(path: tuple[str, ...], sentence: str, received: Any, expected: Any) -> Violation:
    shown = received if isinstance(received, str) else f"{received}"
    if len(shown) > 40:
        shown = shown[:40] + "…"
    return Violation(path, LIMIT_CODE, f"{sentence}, received {shown}", expected, received)


def _text_size(text: str) -> tuple[int, int] | None:
    key = text.strip().lower()
    if key in PRESET_SIZES:
        return PRESET_SIZES[key]
    if key in RESOLUTION_SIDES:
        side = RESOLUTION_SIDES[key]
        return side, side
    match = _SIZE_TEXT.fullmatch(key)
    return (int(match[1]), int(match[2])) if match else None


def _ratio_size(ratio: Any, resolution: Any) -> tuple[int, int] | None:
    """The size of an ``aspect_ratio`` (``"16:9"``) with the area of a ``resolution`` square
    (``"2K"``: 2048², 1024² by default); rounded down, so the area is never exceeded."""
    match = _RATIO_TEXT.fullmatch(ratio) if isinstance(ratio, str) else None
    if match is None:
        return None
    across, down = float(match[1]), float(match[2])
    if across <= 0 or down <= 0:
        return None
    side = RESOLUTION_SIDES.get(str(resolution).strip().lower(), 1024)
    return max(1, math.floor(side * math.sqrt(across / down))), max(
        1, math.floor(side * math.sqrt(down / across))
    )


def _image_format(value: Any, default: ImageFormat) -> ImageFormat:
    if value is None:
        return default
    name = str(value).strip().lower().removeprefix("image/")
    return FORMAT_ALIASES.get(name, FALLBACK_FORMAT)


def _properties(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The properties a request schema declares, its ``allOf``/``anyOf``/``oneOf`` parts too."""
    found: dict[str, Any] = {}
    for part in _forms(schema):
        properties = part.get("properties")
        if isinstance(properties, Mapping):
            for name, sub in properties.items():
                if isinstance(sub, Mapping):
                    found.setdefault(name, sub)
    return found


def _forms(schema: Any) -> Iterator[Mapping[str, Any]]:
    """``schema`` and the schemas its combinators hold, depth first."""
    if not isinstance(schema, Mapping):
        return
    yield schema
    for combinator in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(combinator) or []:
            yield from _forms(branch)


def _size_field(properties: Mapping[str, Any]) -> str | None:
    """The field holding the size: one whose object form declares width and height (preferring
    ``image_size``, then ``size``), else a string ``image_size`` or ``size``."""
    with_sides = [
        name
        for name, sub in properties.items()
        if any({"width", "height"} <= set(form.get("properties") or {}) for form in _forms(sub))
    ]
    for name in ("image_size", "size"):
        if name in with_sides:
            return name
    if with_sides:
        return with_sides[0]
    for name in ("image_size", "size"):
        if name in properties:
            return name
    return None


def _object_defaults(schema: Any) -> dict[str, Any]:
    for form in _forms(schema):
        properties = form.get("properties")
        if isinstance(properties, Mapping) and {"width", "height"} <= set(properties):
            return {
                name: sub["default"]
                for name, sub in properties.items()
                if isinstance(sub, Mapping) and _is_number(sub.get("default"))
            }
    return {}


def _format_field(properties: Mapping[str, Any]) -> tuple[str | None, ImageFormat]:
    """The field that picks the image format, and the format when it is absent.

    ``output_format`` if declared; else a field whose enum holds image formats (``format``,
    ``image_format``, ``mime_type`` with ``image/png``, ...). The default is the field's own, else
    png when the enum allows it, else the enum's first format; png without such a field.
    """
    candidates = [
        name
        for name, sub in properties.items()
        if name == "output_format" or any(_image_format_name(v) for v in _enum_of(sub))
    ]
    candidates.sort(key=lambda name: (name != "output_format", "format" not in name))
    if not candidates:
        return None, FALLBACK_FORMAT
    name = candidates[0]
    schema = properties[name]
    default = schema.get("default")
    if default is not None:
        return name, _image_format(default, FALLBACK_FORMAT)
    formats = [FORMAT_ALIASES[f] for v in _enum_of(schema) if (f := _image_format_name(v))]
    if not formats or "png" in formats:
        return name, FALLBACK_FORMAT
    return name, formats[0]


def _enum_of(schema: Any) -> list[Any]:
    return [value for form in _forms(schema) for value in form.get("enum") or []]


def _image_format_name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    name = value.strip().lower().removeprefix("image/")
    return name if name in FORMAT_ALIASES else None


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)

"""Reading what a request asks for from whichever fields its schema declares, and the limits."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.engine.reading import LIMIT_CODE, MAX_IMAGES, RequestReader
from mock_server.types import Operation

PRESETS = [
    "square_hd",
    "square",
    "portrait_4_3",
    "portrait_16_9",
    "landscape_4_3",
    "landscape_16_9",
]
FLUX_SIZE = {
    "anyOf": [
        {
            "type": "object",
            "properties": {
                "width": {"type": "integer", "default": 1024},
                "height": {"type": "integer", "default": 768},
            },
        },
        {"type": "string", "enum": PRESETS},
    ],
    "default": "landscape_4_3",
}


def reader(**properties: Any) -> RequestReader:
    schema = {
        "type": "object",
        "required": ["model"],
        "properties": {"model": {"type": "string", "enum": ["m"]}, **properties},
    }
    return RequestReader(
        Operation("POST", "/v1/images/generations", "m", "t", None, schema, 200, None)
    )


def read(reader: RequestReader, **body: Any) -> Any:
    return reader.read({"model": "m", **body}, lambda: 77)


@pytest.mark.parametrize(
    ("properties", "body", "size"),
    [
        pytest.param({"image_size": FLUX_SIZE}, {}, (1024, 768), id="preset-default"),
        pytest.param({"image_size": FLUX_SIZE}, {"image_size": "portrait_16_9"}, (576, 1024),
                     id="preset"),
        pytest.param({"image_size": FLUX_SIZE}, {"image_size": {"width": 640}}, (640, 768),
                     id="object-with-a-default-side"),
        pytest.param({"image_size": FLUX_SIZE}, {"image_size": {"width": 640.9, "height": 480.0}},
                     (640, 480), id="object-of-numbers"),
        pytest.param({"image_size": {"type": "string", "enum": ["2K", "4K"]}},
                     {"image_size": "4K"}, (4096, 4096), id="resolution-name"),
        pytest.param({"size": {"type": "string", "default": "1024x1536"}}, {}, (1024, 1536),
                     id="size-text-default"),
        pytest.param({"size": {"type": "string"}}, {"size": "1792 x 1024"}, (1792, 1024),
                     id="size-text"),
        pytest.param({"width": {"type": "integer"}, "height": {"type": "integer"}},
                     {"width": 300, "height": 200}, (300, 200), id="width-and-height"),
        pytest.param({"aspect_ratio": {"type": "string", "default": "16:9"}}, {}, (1365, 768),
                     id="aspect-ratio-default"),
        pytest.param({"aspect_ratio": {"type": "string"}, "resolution": {"type": "string"}},
                     {"aspect_ratio": "1:3", "resolution": "4K"}, (2364, 7094),
                     id="aspect-ratio-at-4k-stays-within-its-area"),
        pytest.param({"aspect_ratio": {"type": "string"}}, {"aspect_ratio": "auto"}, (1024, 768),
                     id="aspect-ratio-auto"),
        pytest.param({}, {"image_size": {"width": 10, "height": 10}}, (1024, 768),
                     id="undeclared-size-ignored"),
    ],
)  # fmt: skip
def test_size_comes_from_the_field_the_schema_declares(
    properties: dict[str, Any], body: dict[str, Any], size: tuple[int, int]
) -> None:
    request = read(reader(**properties), **body)
    assert (request.width, request.height) == size


@pytest.mark.parametrize(
    ("properties", "body", "image_format"),
    [
        pytest.param({"output_format": {"enum": ["jpeg", "png"], "default": "jpeg"}}, {}, "jpeg",
                     id="default"),
        pytest.param({"output_format": {"type": "string"}}, {"output_format": "JPG"}, "jpeg",
                     id="alias"),
        pytest.param({"output_format": {"enum": ["jpeg", "tif"]}}, {"output_format": "tif"},
                     "tiff", id="tiff"),
        pytest.param({"output_format": {"enum": ["png", "avif"]}}, {"output_format": "avif"},
                     "png", id="unsupported-is-png"),
        pytest.param({"format": {"type": "string", "enum": ["jpeg", "webp"]}}, {}, "jpeg",
                     id="other-name-no-default-first-format"),
        pytest.param({"format": {"type": "string", "enum": ["webp", "png"]}}, {}, "png",
                     id="other-name-no-default-png-allowed"),
        pytest.param({"mime_type": {"enum": ["image/webp", "image/gif"]}},
                     {"mime_type": "image/gif"}, "gif", id="media-type-values"),
        pytest.param({"response_format": {"enum": ["url", "b64_json"]}}, {}, "png",
                     id="not-a-format-field"),
        pytest.param({}, {"output_format": "jpeg"}, "png", id="undeclared-ignored"),
    ],
)  # fmt: skip
def test_format_comes_from_the_field_whose_values_are_formats(
    properties: dict[str, Any], body: dict[str, Any], image_format: str
) -> None:
    assert read(reader(**properties), **body).format == image_format


@pytest.mark.parametrize(
    ("properties", "body", "count"),
    [
        pytest.param({"num_images": {"type": "number", "default": 2}}, {}, 2, id="default"),
        pytest.param({"num_images": {"type": "number"}}, {"num_images": 2.7}, 2, id="rounds-down"),
        pytest.param({"n": {"type": "integer"}}, {"n": 3}, 3, id="n"),
        pytest.param({}, {"num_images": 3}, 1, id="undeclared-ignored"),
        pytest.param({"num_images": {"type": "number"}}, {"num_images": 0.5}, 1, id="at-least-one"),
    ],
)
def test_count(properties: dict[str, Any], body: dict[str, Any], count: int) -> None:
    assert read(reader(**properties), **body).count == count


@pytest.mark.parametrize(
    ("seed", "used"),
    [
        pytest.param(None, 77, id="absent-picked"),
        pytest.param(5, 5, id="kept"),
        pytest.param(3.9, 3, id="number-rounds-down"),
        pytest.param(10**40, 10**40, id="huge-kept"),
        pytest.param(-1, 2**64 - 1, id="negative-as-unsigned-64-bit"),
        pytest.param(-(10**30), -(10**30) % 2**64, id="very-negative"),
    ],
)
def test_any_seed_maps_into_the_range_urls_carry(seed: Any, used: int) -> None:
    body = {} if seed is None else {"seed": seed}
    assert read(reader(seed={"type": "number"}), **body).seed == used


@pytest.mark.parametrize(
    ("properties", "body", "field", "message"),
    [
        pytest.param({"image_size": FLUX_SIZE}, {"image_size": {"width": 0, "height": 5}},
                     "image_size.width", "aimlapi-mock draws images 1 to 8192 pixels wide, "
                     "received 0", id="zero"),
        pytest.param({"image_size": FLUX_SIZE},
                     {"image_size": {"width": 5, "height": -(10**60)}}, "image_size.height",
                     "aimlapi-mock draws images 1 to 8192 pixels high, received "
                     f"{str(-(10**60))[:40]}…", id="negative-huge-is-cut"),
        pytest.param({"size": {"type": "string"}}, {"size": "9000x10"}, "size",
                     "aimlapi-mock draws images 1 to 8192 pixels wide, received 9000",
                     id="size-text"),
        pytest.param({"width": {}, "height": {}}, {"width": 5000, "height": 5000}, "width",
                     "aimlapi-mock draws images of at most 16,777,216 pixels (5000×5000 is "
                     "25,000,000), received 5000x5000", id="pixels"),
        pytest.param({"num_images": {"type": "integer"}}, {"num_images": 65}, "num_images",
                     f"aimlapi-mock makes at most {MAX_IMAGES} images per request, received 65",
                     id="count"),
    ],
)  # fmt: skip
def test_limits_name_the_field_and_the_limit(
    properties: dict[str, Any], body: dict[str, Any], field: str, message: str
) -> None:
    this = reader(**properties)
    full = {"model": "m", **body}
    (violation,) = this.limits(full, this.read(full, lambda: 1))
    assert (violation.field, violation.code, violation.message) == (field, LIMIT_CODE, message)


def test_requests_within_the_limits_have_none() -> None:
    this = reader(image_size=FLUX_SIZE, num_images={"type": "number"})
    body = {"model": "m", "image_size": {"width": 8192, "height": 2048}, "num_images": 64}
    assert this.limits(body, this.read(body, lambda: 1)) == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                               max_size=3),
    max_leaves=8,
)  # fmt: skip
fields = st.sampled_from(
    ["image_size", "size", "width", "height", "aspect_ratio", "resolution", "output_format",
     "num_images", "n", "seed", "prompt", "format"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(body=st.dictionaries(fields, json_values, max_size=6))
def test_reading_never_raises_whatever_the_body(body: dict[str, Any]) -> None:
    # The journal and latency read bodies the schema refused too.
    this = reader(
        image_size=FLUX_SIZE,
        size={"type": "string"},
        width={},
        height={},
        aspect_ratio={},
        output_format={"enum": ["png", "jpeg"]},
        num_images={},
        seed={},
    )
    request = this.read(body, lambda: 1)
    assert 0 <= request.width <= 8193 and 0 <= request.height <= 8193
    assert 1 <= request.count <= MAX_IMAGES + 1 and request.seed >= 0
    this.limits(body, request)

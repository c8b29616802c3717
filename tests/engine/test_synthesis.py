"""Success bodies shaped by whatever the success schema declares."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft7Validator

from mock_server.engine.formats import format_checker
from mock_server.engine.synthesis import (
    CREDITS_PER_USD,
    has_image_slot,
    image_slot,
    success_body,
)
from mock_server.types import ImageRequest

URLS = ["http://h/files/a.jpeg", "http://h/files/b.jpeg"]
REQUEST = ImageRequest("m", "p", 640, 480, "jpeg", 9, 2)
NULLABLE_STRING = {"type": ["string", "null"]}


def usage(*names: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "usage": {
                "type": ["object", "null"],
                "properties": {name: {"type": "number"} for name in names},
                "required": list(names),
            }
        },
    }


def body_for(schema: dict[str, Any]) -> Any:
    body = success_body(schema, URLS, 120_000, REQUEST)
    Draft7Validator(schema, format_checker=format_checker()).validate(body)
    return body


def test_the_image_list_and_usage_go_where_declared() -> None:
    schema = {
        "type": "object",
        "properties": {
            "data": {
                "type": ["array", "null"],
                "items": {"type": "object", "properties": {"url": NULLABLE_STRING,
                                                           "b64_json": NULLABLE_STRING}},
            },
            "meta": usage("credits_used", "usd_spent"),
        },
    }  # fmt: skip
    assert body_for(schema) == {
        "data": [{"url": url, "b64_json": None} for url in URLS],
        "meta": {"usage": {"credits_used": 120_000, "usd_spent": 120_000 / CREDITS_PER_USD}},
    }


def test_tokens_used_is_filled_when_that_is_the_name_declared() -> None:
    schema = {"type": "object", "properties": {"meta": usage("tokens_used")}}
    assert body_for(schema) == {"meta": {"usage": {"tokens_used": 120_000}}}


def test_a_job_shaped_body_gets_its_required_fields_and_no_image_list() -> None:
    schema = {
        "type": "object",
        "required": ["id", "status"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["queued", "generating", "completed", "error"]},
            "error": {"type": ["object", "null"], "properties": {"message": {"type": "string"}}},
        },
    }
    assert body_for(schema) == {"id": "00000000-0000-4000-8000-000000000000", "status": "completed"}
    assert not has_image_slot(schema) and image_slot(schema) is None


def test_image_entries_get_size_media_type_and_the_seed_where_declared() -> None:
    entry = {
        "type": "object",
        "required": ["url", "content_type"],
        "properties": {
            "url": {"type": "string", "format": "uri"},
            "width": {"type": "integer"},
            "height": {"type": "integer"},
            "content_type": {"type": "string"},
        },
    }
    schema = {
        "type": "object",
        "required": ["images", "timings", "has_nsfw_concepts"],
        "properties": {
            "images": {"type": "array", "items": entry},
            "seed": {"type": "integer"},
            "timings": {"type": "object"},
            "has_nsfw_concepts": {"type": "array", "items": {"type": "boolean"}, "minItems": 1},
        },
    }
    body = body_for(schema)
    assert body["images"] == [
        {"url": url, "width": 640, "height": 480, "content_type": "image/jpeg"} for url in URLS
    ]
    assert (body["seed"], body["timings"], body["has_nsfw_concepts"]) == (9, {}, [False])
    assert image_slot(schema) == (("images",), True)


def test_a_single_image_object_in_a_union_gets_the_first_url() -> None:
    schema = {
        "type": "object",
        "properties": {
            "output": {
                "anyOf": [
                    {"type": "object", "properties": {"url": {"type": "string"}},
                     "required": ["url"]},
                    {"type": "array", "items": {"type": "object",
                                                "properties": {"url": {"type": "string"}}}},
                    {"type": "null"},
                ]
            }
        },
    }  # fmt: skip
    assert body_for(schema) == {"output": {"url": URLS[0]}}
    assert image_slot(schema) == (("output",), False)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param({"type": "integer", "minimum": 3, "maximum": 9}, 3, id="minimum"),
        pytest.param({"type": "number", "exclusiveMinimum": 0, "maximum": 1}, 0.5,
                     id="exclusive-minimum"),
        pytest.param({"type": "integer", "maximum": -4}, -4, id="negative-maximum"),
        pytest.param({"type": "integer", "minimum": 5, "multipleOf": 4}, 8, id="multiple-of"),
        pytest.param({"type": "string", "minLength": 3}, "xxx", id="min-length"),
        pytest.param({"type": "string", "format": "date-time"}, "2026-01-01T00:00:00Z",
                     id="date-time"),
        pytest.param({"type": "string", "format": "uri"}, URLS[0], id="uri"),
        pytest.param({"enum": [None, "b"]}, "b", id="enum-not-null"),
        pytest.param({"type": "string", "default": "d"}, "d", id="default"),
        pytest.param({"type": "boolean"}, False, id="boolean"),
        pytest.param({"type": "null"}, None, id="null"),
        pytest.param({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}},
                                 "required": ["a"]}]}, {"a": 0}, id="allOf"),
    ],
)  # fmt: skip
def test_required_fields_without_a_fact_get_a_valid_placeholder(
    field: dict[str, Any], value: Any
) -> None:
    schema = {"type": "object", "required": ["x"], "properties": {"x": field}}
    assert body_for(schema) == {"x": value}


def test_without_a_schema_the_answer_is_the_apis_image_list() -> None:
    assert success_body(None, URLS[:1], 5) == {
        "data": [{"url": URLS[0], "b64_json": None}],
        "meta": {"usage": {"credits_used": 5}},
    }
    assert image_slot(None) == (("data",), True)

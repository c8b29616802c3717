"""Fields the API ignores: everything a model's schema does not declare."""

import pytest

from mock_server import SpecSet
from mock_server.engine.ignored import ignored_fields
from mock_server.engine.validation import SchemaValidator

GENERATIONS = "/v1/images/generations"
OPENAI_STYLE = {"size": "1024x1024", "n": 2, "response_format": "b64_json"}


def schema_of(bundled: SpecSet, name: str) -> dict[str, object]:
    return bundled.models_for("POST", GENERATIONS)[f"blackforestlabs/{name}"].request_schema


@pytest.mark.parametrize("name", ["flux-2", "flux-2-max", "flux-2-pro", "flux-2-lora-edit"])
def test_openai_sdk_parameters_are_listed_and_not_rejected(bundled: SpecSet, name: str) -> None:
    schema = schema_of(bundled, name)
    body = {"model": f"blackforestlabs/{name}", "prompt": "p", **OPENAI_STYLE}
    if name.endswith("-edit"):
        body["image_urls"] = ["https://example.com/a.png"]
    assert ignored_fields(schema, body) == ["n", "response_format", "size"]
    assert SchemaValidator(schema).violations(body) == []


def test_a_field_one_model_declares_is_ignored_by_another(bundled: SpecSet) -> None:
    body = {"model": "m", "prompt": "p", "num_images": 2, "safety_tolerance": "3"}
    assert ignored_fields(schema_of(bundled, "flux-2"), body) == ["safety_tolerance"]
    assert ignored_fields(schema_of(bundled, "flux-2-max"), body) == ["num_images"]


def test_nested_undeclared_fields_are_named_by_path(bundled: SpecSet) -> None:
    body = {
        "model": "m",
        "prompt": "p",
        "image_size": {"width": 512, "height": 512, "depth": 3},
        "loras": [{"path": "a"}, {"path": "b", "scale": 1, "weight": 0.5}],
    }
    assert ignored_fields(schema_of(bundled, "flux-2-lora"), body) == [
        "image_size.depth",
        "loras.1.weight",
    ]


def test_a_valid_body_with_only_declared_fields_ignores_nothing(bundled: SpecSet) -> None:
    body = {"model": "m", "prompt": "p", "image_size": "square_hd", "seed": 3}
    assert ignored_fields(schema_of(bundled, "flux-2"), body) == []


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "object", "properties": {"a": {}}, "additionalProperties": False}, []),
        (
            {"type": "object", "properties": {"a": {}}, "additionalProperties": {"type": "string"}},
            [],
        ),
        ({"type": "object", "properties": {"a": {}}, "patternProperties": {"^x": {}}}, []),
        ({"type": "object", "properties": {"a": {}}}, ["x"]),
        ({"allOf": [{"properties": {"a": {}}}, {"properties": {"x": {}}}]}, []),
        ({"anyOf": [{"properties": {"a": {}}}, {"type": "string"}]}, ["x"]),
        ({"type": "object"}, []),
    ],
    ids=[
        "closed-object",
        "additional-schema",
        "pattern-properties",
        "open-object",
        "all-of-declares-both",
        "any-of-object-branch",
        "no-properties-at-all",
    ],
)
def test_what_counts_as_declared(schema: dict[str, object], expected: list[str]) -> None:
    assert ignored_fields(schema, {"a": 1, "x": 2}) == expected


@pytest.mark.parametrize("body", [None, "text", 3, [1, 2], {}])
def test_bodies_that_are_not_objects_ignore_nothing(body: object) -> None:
    assert ignored_fields({"type": "object", "properties": {"a": {}}}, body) == []

"""Each shortcut on the hot path gives exactly what the plain code it replaces gives.

The most important: the compiled validator (jsonschema-rs) that accepts valid bodies agrees with
jsonschema, which explains invalid ones, on generated bodies, valid and invalid, including the
places where validators tend to differ (whole floats as integers, 1 vs 1.0 vs true in enums,
multipleOf on floats, nullable unions, astral characters in string lengths, huge integers).
"""

from __future__ import annotations

import json
import math
import os
import uuid
from collections.abc import Mapping
from typing import Any

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator
from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE

from mock_server import load_specs
from mock_server.engine.body import MAX_INTEGER_DIGITS, MAX_NESTING, parse_json_body
from mock_server.engine.formats import compiled_formats, format_checker
from mock_server.engine.ids import new_request_id
from mock_server.engine.synthesis import (
    encode_json,
    success_body,
    success_body_is_plain,
    success_json,
)
from mock_server.engine.validation import SchemaValidator, fast_path_agrees
from mock_server.errors import ApiError
from mock_server.http.protocol import headers_are_sendable
from mock_server.images.tokens import PROMPT_CHARS, _payload
from mock_server.types import ImageSpec
from tests.conftest import SPECS

LONG = os.environ.get("AIMLAPI_MOCK_LONG_TESTS") == "1"
EXAMPLES = 5000 if LONG else 300

# --- the validators ---------------------------------------------------------------------------

EDGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["kind"],
    "additionalProperties": {"type": ["string", "integer", "null", "boolean", "object", "array"]},
    "minProperties": 1,
    "maxProperties": 6,
    "properties": {
        "kind": {"enum": [1, "1", True, None, 2.5, [1], {"a": 1}]},
        "exact": {"const": 0},
        "side": {"type": "integer", "minimum": 512, "maximum": 2048, "multipleOf": 32},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1.5},
        "count": {"type": ["number", "null"], "minimum": 1, "maximum": 4, "multipleOf": 1},
        "label": {"type": "string", "minLength": 2, "maxLength": 4},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2},
        "pair": {"type": "array", "items": [{"type": "integer"}, {"type": "string"}]},
        "size": {
            "anyOf": [
                {
                    "type": "object",
                    "properties": {"w": {"type": "integer", "multipleOf": 3}},
                    "required": ["w"],
                },
                {"type": "string", "enum": ["small", "large"]},
                {"type": "null"},
            ]
        },
        "one": {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 10}]},
        "both": {"allOf": [{"type": "integer"}, {"minimum": 0}]},
        "never": {"not": {"type": "string"}},
        "nested": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"deep": {"type": "object", "properties": {"n": {"type": "integer"}}}},
        },
    },
}


def _request_schemas() -> dict[str, dict[str, Any]]:
    schemas = {op.model: op.request_schema for op in load_specs()}
    for op in load_specs([SPECS / "nullable-refs.json"]):
        schemas[op.model] = op.request_schema
    schemas["edge-cases"] = EDGE_SCHEMA
    return schemas


SCHEMAS = _request_schemas()

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.sampled_from(["😀😀😀😀", "é\u0301", "\ud800", "", "square", "png"])
    | st.integers(3999, 4001).map(lambda n: "x" * n)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


def near(schema: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values at and around what ``schema`` allows: its enum, bounds, multiples, shapes."""
    if not isinstance(schema, Mapping) or depth > 4:
        return json_values
    options: list[st.SearchStrategy[Any]] = [json_values]
    for key in ("enum",):
        if schema.get(key):
            options.append(st.sampled_from(schema[key]))
    if "const" in schema:
        options.append(st.just(schema["const"]))
    numbers: list[float] = []
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        bound = schema.get(key)
        if isinstance(bound, int | float) and not isinstance(bound, bool):
            numbers += [bound, bound - 1, bound + 1, bound - 0.5, bound + 0.5, float(bound)]
    if numbers:
        options.append(st.sampled_from(numbers))
        options.append(st.sampled_from([int(n) for n in numbers if math.isfinite(n)]))
    multiple = schema.get("multipleOf")
    if isinstance(multiple, int | float) and not isinstance(multiple, bool):
        steps = st.integers(-3, 80)
        options += [
            steps.map(lambda k: k * multiple),
            steps.map(lambda k: float(k * multiple)),
            steps.map(lambda k: k * multiple + 1),
            steps.map(lambda k: k * multiple + 0.5),
        ]
    if schema.get("type") in ("integer", "number") or "integer" in schema.get("type", []):
        options.append(st.integers(-5, 3000).map(float))
    for key in ("minLength", "maxLength"):
        if isinstance(schema.get(key), int):
            n = schema[key]
            options.append(st.sampled_from(["a" * max(0, n - 1), "a" * n, "😀" * n, "é" * (n + 1)]))
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, []):
            options.append(near(branch, depth + 1))
    if "not" in schema:
        options.append(near(schema["not"], depth + 1))
    items = schema.get("items")
    if isinstance(items, Mapping):
        options.append(st.lists(near(items, depth + 1), max_size=3))
    elif isinstance(items, list):
        options.append(st.tuples(*(near(item, depth + 1) for item in items)).map(list))
    if isinstance(schema.get("properties"), Mapping):
        options.append(objects(schema, depth + 1))
    return st.one_of(options)


def objects(schema: Mapping[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Objects with some declared properties (valid-ish or not) and now and then an extra one."""
    properties: Mapping[str, Any] = schema.get("properties", {})
    declared = st.fixed_dictionaries(
        {}, optional={name: near(sub, depth) for name, sub in properties.items()}
    )
    extra = st.dictionaries(st.text(max_size=3), json_values, max_size=2)
    return st.tuples(declared, extra).map(lambda parts: {**parts[1], **parts[0]})


def bodies(schema: Mapping[str, Any]) -> st.SearchStrategy[Any]:
    return objects(schema) | json_values


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_and_detailed_validators_agree(name: str, data: st.DataObject) -> None:
    schema = SCHEMAS[name]
    body = data.draw(bodies(schema), label="body")
    # The fake checks formats as the API's zod does (an empty date-time is refused): so does
    # the reference.
    expected = Draft7Validator(schema, format_checker=format_checker()).is_valid(body)
    validator = _validator(name)
    assert (validator.violations(body) == []) == expected
    if not expected:
        assert validator.violations(body) == _jsonschema_violations(schema, body)
    if fast_path_agrees(schema):
        try:
            compiled = jsonschema_rs.Draft7Validator(
                schema, validate_formats=True, formats=compiled_formats()
            ).is_valid(body)
        except ValueError:
            return  # e.g. a lone surrogate: the compiled validator declines, jsonschema decides
        assert compiled == expected, f"jsonschema-rs says {compiled}, jsonschema {expected}"


def _jsonschema_violations(schema: dict[str, Any], body: Any) -> list[Any]:
    """What violations() said before the compiled validator explained errors too."""
    detailed = SchemaValidator(schema)
    detailed._fast = None  # jsonschema alone
    return detailed.violations(body)


_validators: dict[str, SchemaValidator] = {}


def _validator(name: str) -> SchemaValidator:
    if name not in _validators:
        _validators[name] = SchemaValidator(SCHEMAS[name])
    return _validators[name]


def test_the_bundled_specs_take_the_fast_path() -> None:
    for operation in load_specs():
        assert fast_path_agrees(operation.request_schema), operation.model


@pytest.mark.parametrize(
    ("schema", "instance", "valid"),
    [
        # The two validators round these differently (0.3 / 0.1 = 2.9999999999999996).
        ({"multipleOf": 0.1}, 0.3, False),
        ({"multipleOf": 0.01}, 0.07, False),
        # Regular expression dialects differ; Python's $ also matches before a final newline.
        ({"type": "string", "pattern": "^abc$"}, "abc\n", True),
        ({"patternProperties": {"^x": {"type": "integer"}}}, {"xa": "no"}, False),
        ({"uniqueItems": True}, [1, 1.0], False),
    ],
    ids=["multipleOf-0.1", "multipleOf-0.01", "pattern-newline", "patternProperties", "unique"],
)
def test_schemas_the_validators_might_disagree_on_use_jsonschema_alone(
    schema: dict[str, Any], instance: Any, valid: bool
) -> None:
    assert not fast_path_agrees(schema)
    validator = SchemaValidator(schema)
    assert Draft7Validator(schema).is_valid(instance) is valid
    assert (validator.violations(instance) == []) is valid


def test_a_lone_surrogate_is_left_to_jsonschema() -> None:
    validator = _validator("blackforestlabs/flux-2")
    body = {"model": "blackforestlabs/flux-2", "prompt": "\ud800"}
    assert validator.violations(body) == []
    too_long = {"model": "blackforestlabs/flux-2", "prompt": "\ud800" * 4001}
    (violation,) = validator.violations(too_long)
    assert violation.code == "too_big"


def test_an_invalid_schema_still_raises_jsonschemas_error() -> None:
    from jsonschema.exceptions import SchemaError

    with pytest.raises(SchemaError):
        SchemaValidator({"type": "no-such-type"})


# --- the other shortcuts ----------------------------------------------------------------------


@settings(max_examples=EXAMPLES)
@given(
    spec=st.builds(
        ImageSpec,
        model=st.text(),
        prompt=st.text(),
        width=st.integers(),
        height=st.integers(),
        format=st.sampled_from(["png", "jpeg", "webp"]),
        seed=st.integers(),
        index=st.integers(),
    )
)
def test_token_payload_is_what_json_dumps_writes(spec: ImageSpec) -> None:
    fields = [spec.model, spec.prompt[:PROMPT_CHARS], spec.width, spec.height]
    fields += [spec.format, spec.seed, spec.index]
    assert _payload(spec) == json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def _reference_parse(raw: bytes) -> Any:
    """parse_json_body as it was written before the hot path was tuned."""

    def constant(name: str) -> float:
        raise ValueError(f"{name} is not a JSON number")

    def finite_float(literal: str) -> float:
        number = float(literal)
        if not math.isfinite(number):
            raise ValueError(f"number {literal[:40]!s} is out of range")
        return number

    def finite_int(literal: str) -> int:
        if len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
            raise ValueError(f"number {literal[:40]}… ({len(literal)} digits) is out of range")
        return int(literal)

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(
            400, f"Body is not valid UTF-8: {error.reason} at byte {error.start}"
        ) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise ApiError(400, "Body is empty, expected a JSON object")
    try:
        value = json.loads(
            text, parse_constant=constant, parse_float=finite_float, parse_int=finite_int
        )
    except RecursionError:
        raise ApiError(400, f"Body is nested too deeply (more than {MAX_NESTING} levels)") from None
    except json.JSONDecodeError as error:
        raise ApiError(
            400, f"Body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except ValueError as error:
        raise ApiError(400, f"Body is not valid JSON: {error}") from None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth > MAX_NESTING:
            raise ApiError(400, f"Body is nested too deeply (more than {MAX_NESTING} levels)")
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children)
    return value


def _outcome(parse: Any, raw: bytes) -> tuple[str, Any]:
    try:
        return "value", parse(raw)
    except ApiError as error:
        return "error", (error.status, error.message)


raw_bodies = st.one_of(
    json_values.map(lambda value: json.dumps(value).encode()),
    json_values.map(
        lambda value: json.dumps(value, indent=1, ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )
    ),
    st.integers(0, 45).map(lambda depth: ("[" * depth + "]" * depth).encode()),
    st.integers(0, 45).map(lambda depth: ('{"a":' * depth + "1" + "}" * depth).encode()),
    st.sampled_from(
        [
            b"\xef\xbb\xbf{}",
            b"\xef\xbb\xbf\xef\xbb\xbf{}",
            b"NaN",
            b'{"a": Infinity}',
            b"[-Infinity]",
            b"1e999",
            b'{"a": 1',
            b"\xff\xfe",
            b"   ",
            b"",
            b'"\\ud800"',
            b" {} ",
            b'{"a": 1}\n',
            b"\t[1]",
            b"{} x",
            b"[1] [2]",
            b"{}{}",
            b"1 2",
            b'"a"b',
        ]
    ),
    st.tuples(
        st.sampled_from([b"", b" ", b"\n", b"\r\n\t"]),
        json_values.map(lambda value: json.dumps(value).encode()),
        st.sampled_from([b"", b" ", b"\n", b",", b"]", b"x", b" 1"]),
    ).map(b"".join),
    st.sampled_from([308, 309, 400, 5000]).map(lambda n: b"[-" + b"9" * n + b"]"),
    st.binary(max_size=30),
)


@settings(max_examples=EXAMPLES)
@given(raw=raw_bodies)
def test_body_parsing_is_unchanged(raw: bytes) -> None:
    assert _outcome(parse_json_body, raw) == _outcome(_reference_parse, raw)


@settings(max_examples=EXAMPLES)
@given(urls=st.lists(st.text(), max_size=5), credits=st.integers(0, 10**12))
def test_plain_success_json_is_what_the_encoder_writes(urls: list[str], credits: int) -> None:
    expected = encode_json(success_body(None, urls, credits))
    assert success_json(None, urls, credits) == expected
    assert json.loads(expected) == success_body(None, urls, credits)


def test_request_ids_are_version_4_uuids() -> None:
    ids = {new_request_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in list(ids)[:200]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_plain_success_bodies_are_recognised() -> None:
    for operation in load_specs():
        schema = operation.success_schema
        urls = ["http://h/files/a.png", "http://h/files/b.png", "http://h/files/c.png"]
        # flux-2-edit's usage also has usd_spent, which the plain body lacks.
        plain = operation.model != "blackforestlabs/flux-2-edit"
        assert success_body_is_plain(schema) is plain
        assert (success_body(schema, urls, 7) == success_body(None, urls, 7)) is plain
    extra_field = {
        "type": "object",
        "required": ["created"],
        "properties": {"created": {"type": "integer", "example": 1}, "data": {"type": "array"}},
    }
    assert not success_body_is_plain(extra_field)
    reordered = {"type": "object", "properties": {"meta": {}, "data": {}}}
    assert not success_body_is_plain(reordered)


@settings(max_examples=EXAMPLES)
@given(now=st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_error_timestamps_are_what_strftime_writes(now: float) -> None:
    from datetime import UTC, datetime
    from unittest import mock

    from mock_server import errors

    seconds = int(now)
    expected = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    expected += f".{int((now - seconds) * 1000):03d}Z"
    with mock.patch.object(errors.time, "time", return_value=now):
        assert errors._now() == expected
        assert errors._now() == expected  # and again, from the second formatted once


header_bytes = st.binary(max_size=12) | st.sampled_from(
    [b"content-type", b"x-request-id", b"application/json; charset=utf-8", b"a b", b"\t", b"\x7f"]
)


@given(headers=st.lists(st.tuples(header_bytes, header_bytes), max_size=6))
def test_headers_are_checked_as_uvicorns_send_checks_them(
    headers: list[tuple[bytes, bytes]],
) -> None:
    refused = any(
        HEADER_RE.search(name) or HEADER_VALUE_RE.search(value) for name, value in headers
    )
    assert headers_are_sendable(headers) is not refused

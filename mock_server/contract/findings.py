"""Turning check failures into findings: one plain sentence per way the target drifts.

A finding has a key; failures of different checks that describe the same drift share it, so a
problem+json error that breaks the content type, the schema and the envelope checks is reported
once, as "error body is application/problem+json, spec documents the legacy envelope".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft7Validator

from ..types import Operation
from .documents import is_envelope_schema


class Drift(AssertionError):
    """Raised by the suite's own checks: the target does not do what the spec says."""

    def __init__(self, key: str, sentence: str) -> None:
        super().__init__(sentence)
        self.key = key
        self.sentence = sentence


@dataclass
class Finding:
    """One way the target deviates from the spec, with where and how often it was seen."""

    key: str
    sentence: str
    checks: set[str] = field(default_factory=set)
    operations: set[str] = field(default_factory=set)
    cases: set[str] = field(default_factory=set)
    example: str | None = None

    @property
    def count(self) -> int:
        return len(self.cases)


def explain(
    check: str,
    failure: Exception,
    *,
    status: int | None,
    media_type: str | None,
    body: Any,
    operation: Operation | None,
    request_problem: str | None = None,
) -> tuple[str, str]:
    """(key, sentence) for a failed check, in the words of the drift it shows.

    ``request_problem`` says what is wrong with the request, when it broke its schema.
    """
    error_schema = operation.response_schemas.get(status) if operation and status else None
    problem_json = (media_type or "").startswith("application/problem+json")
    if status is not None and status >= 400 and problem_json and is_envelope_schema(error_schema):
        return PROBLEM_JSON
    exception = getattr(failure, "exception", None)
    if isinstance(exception, Drift):
        return exception.key, exception.sentence
    if isinstance(failure, Drift):
        return failure.key, failure.sentence
    kind = type(failure).__name__
    if kind == "UndefinedStatusCode" and status is not None:
        documented = [str(code) for code in getattr(failure, "defined_status_codes", [])]
        if 200 <= status < 300:
            successes = [code for code in documented if code.startswith("2")]
            shown = ", ".join(successes) or "no success status"
            return f"status:{status}", f"success status {status}, spec documents {shown}"
        return f"status:{status}", (
            f"status {status}, which the spec does not document (it documents "
            f"{', '.join(documented)})"
        )
    if kind == "UndefinedContentType":
        defined = ", ".join(getattr(failure, "defined_content_types", []))
        shown = (media_type or "").split(";")[0]
        where = "error" if status and status >= 400 else "success"
        return f"content-type:{where}:{shown}", f"{where} body is {shown}, spec documents {defined}"
    if kind == "JsonSchemaError" and operation is not None and status is not None:
        return schema_drift(body, operation.response_schemas.get(status), status)
    if kind in ("ServerError", "ContentTypeServerError") and status is not None:
        return f"server-error:{status}", f"server error {status}"
    if kind == "RejectedPositiveData" and status is not None:
        reason = _reason_of(body)
        return (
            f"rejected:{status}:{reason}",
            f"schema-valid request rejected with {status}" + (f": {reason}" if reason else ""),
        )
    if kind == "AcceptedNegativeData" and status is not None:
        detail = f" ({request_problem})" if request_problem else ""
        return (
            f"accepted-invalid:{status}:{(request_problem or '').split(':')[0]}",
            f"schema-invalid request accepted with {status}{detail}",
        )
    if kind == "IgnoredAuth":
        title = str(getattr(failure, "title", "")).lower()
        if "without" in title:
            return "auth:none", (
                f"request without Authorization answered {status}, spec requires a bearer key (401)"
            )
        return "auth:invalid", f"request with an invalid key answered {status}, expected 401"
    if kind == "UnsupportedMethodResponse":
        method = getattr(failure, "method", "?")
        if getattr(failure, "failure_reason", "") == "missing_allow_header":
            return (
                "method:allow",
                f"405 for an undocumented method ({method}) without an Allow header",
            )
        return f"method:{status}", f"undocumented method {method} answered {status}, expected 405"
    if kind == "MissingHeaders":
        names = ", ".join(getattr(failure, "missing_headers", []))
        return f"headers:{names}", f"documented response header(s) {names} missing"
    title = str(getattr(failure, "title", kind))
    return f"{check}:{title}", f"{check}: {title}"


PROBLEM_JSON = (
    "problem-json",
    "error body is application/problem+json, spec documents the legacy envelope",
)


def schema_drift(body: Any, schema: Mapping[str, Any] | None, status: int) -> tuple[str, str]:
    """The clearest explanation of why ``body`` breaks the documented ``schema``."""
    where = "success" if status < 300 else f"{status} error"
    if schema is None:
        return f"schema:{status}", f"{where} body does not match the spec"
    for path, missing, present in renamed_fields(body, schema):
        return rename_finding(path, missing, present)
    errors = sorted(Draft7Validator(schema).iter_errors(body), key=lambda e: -len(e.absolute_path))
    if not errors:
        return f"schema:{status}", f"{where} body does not match the spec"
    error = errors[0]
    field_path = _dotted(error.absolute_path) or "body"
    return (
        f"schema:{status}:{field_path}:{error.validator}",
        f"{where} body: {field_path} {_plain(error)}",
    )


def rename_finding(path: str, missing: str, present: str) -> tuple[str, str]:
    name = f"{path}.{present}" if path else present
    return f"rename:{path}:{missing}:{present}", f"{name} present, spec requires {missing}"


def renamed_fields(
    body: Any, schema: Mapping[str, Any], path: str = ""
) -> Iterator[tuple[str, str, str]]:
    """(object path, required name, undocumented name used instead) wherever one was renamed."""
    for where, value, sub in _objects(body, schema, path):
        properties = sub.get("properties") or {}
        missing = [name for name in sub.get("required", []) if name not in value]
        extra = [name for name in value if name not in properties]
        for required, present in zip(missing, extra, strict=False):
            yield where, required, present


def undocumented_fields(body: Any, schema: Mapping[str, Any], path: str = "") -> Iterator[str]:
    """Dotted names of fields in ``body`` the schema does not declare (where it declares fields)."""
    for where, value, sub in _objects(body, schema, path):
        properties = sub.get("properties")
        if properties is None or isinstance(sub.get("additionalProperties"), Mapping):
            continue
        for name in value:
            if name not in properties:
                yield f"{where}.{name}" if where else name


def _objects(
    body: Any, schema: Mapping[str, Any], path: str
) -> Iterator[tuple[str, dict[str, Any], Mapping[str, Any]]]:
    """Each JSON object inside ``body`` with the (object) schema that describes it."""
    sub = _branch(schema, body)
    if sub is None:
        return
    if isinstance(body, dict):
        yield path, body, sub
        for name, prop in (sub.get("properties") or {}).items():
            if name in body and isinstance(prop, Mapping):
                yield from _objects(body[name], prop, f"{path}.{name}" if path else name)
    elif isinstance(body, list) and isinstance(sub.get("items"), Mapping):
        for item in body:
            yield from _objects(item, sub["items"], f"{path}[]")


def _branch(schema: Mapping[str, Any], value: Any) -> Mapping[str, Any] | None:
    for combinator in ("anyOf", "oneOf"):
        if combinator in schema:
            for branch in schema[combinator]:
                if isinstance(branch, Mapping) and _type_matches(branch, value):
                    return _branch(branch, value)
            return None
    return schema if _type_matches(schema, value) else None


def _type_matches(schema: Mapping[str, Any], value: Any) -> bool:
    kinds = schema.get("type")
    if kinds is None:
        return isinstance(value, dict | list) or "properties" not in schema
    names = kinds if isinstance(kinds, list) else [kinds]
    if isinstance(value, dict):
        return "object" in names
    if isinstance(value, list):
        return "array" in names
    return not {"object", "array"} >= set(names)


def _plain(error: Any) -> str:
    keyword = str(error.validator)
    expected = error.validator_value
    got = _short(error.instance)
    if keyword == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        return f"is {got}, spec says {' or '.join(map(str, kinds))}"
    if keyword == "required":
        missing = [name for name in expected if name not in (error.instance or {})]
        return f"lacks {', '.join(missing)}, which the spec requires"
    if keyword == "enum":
        return f"is {got}, spec allows {_short(expected)}"
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        return f"is {got}, spec says {keyword} {expected}"
    return f"is {got}: {error.message}"


def _reason_of(body: Any) -> str:
    """The first specific reason an error body gives, without the value it quotes.

    ``Body validation error`` followed by ``image_size.width: Number must be a multiple of 32,
    received 1000`` becomes ``image_size.width: Number must be a multiple of 32``, so requests
    rejected for the same reason make one finding.
    """
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str):
        return ""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0] == "Body validation error":
        lines = lines[1:]
    reason = lines[0] if lines else ""
    return _RECEIVED.sub("", reason)[:200]


_RECEIVED = re.compile(r",? received .*$")


def _dotted(path: Any) -> str:
    text = ""
    for part in path:
        text += "[]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= 80 else text[:79] + "…"

"""Checking recorded exchanges against the loaded specs, in the contract kit's words.

Each check returns its findings as sentences (a list, never raising): the request against its
schema, the status against the documented ones, the body against the documented schema, and
each image against the requested size and format.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from jsonschema import Draft7Validator
from PIL import Image, UnidentifiedImageError

from ..contract.documents import ENVELOPE_FIELDS
from ..contract.findings import PROBLEM_JSON, schema_drift, undocumented_fields
from ..engine.synthesis import image_request
from ..engine.validation import SchemaValidator, detail_lines
from ..spec.load import SpecSet
from ..types import JSON, ImageRequest, Operation

_PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


class DriftChecker:
    """The findings of one exchange against ``spec_set``, as plain sentences."""

    def __init__(self, spec_set: SpecSet) -> None:
        self.spec_set = spec_set
        self._validators: dict[int, SchemaValidator] = {}
        self._response_validators: dict[int, Draft7Validator] = {}

    def check(
        self,
        method: str,
        path: str,
        body: JSON,
        status: int,
        media_type: str,
        answer: JSON,
        images: Sequence[bytes] = (),
    ) -> list[str]:
        """Every way this exchange drifts from the specs; empty when it does not."""
        by_model = self.spec_set.models_for(method, _spec_path(self.spec_set, method, path))
        model = body.get("model") if isinstance(body, dict) else None
        operation = by_model.get(model) if isinstance(model, str) else None
        if operation is None:
            if 200 <= status < 300:
                return [f"request for model {model!r} accepted with {status}, no spec serves it"]
            return []
        problems = detail_lines(self._validator(operation).violations(body))
        success = 200 <= status < 300
        findings: list[str] = []
        if success and problems:
            findings.append(f"schema-invalid request accepted with {status} ({problems[0]})")
        elif not success and not problems and status < 500:
            reason = _reason_of(answer)
            findings.append(
                f"schema-valid request rejected with {status}" + (f": {reason}" if reason else "")
            )
        elif status >= 500:
            findings.append(f"server error {status}")
        if success:
            findings += self._success(operation, status, answer, None if problems else body)
        else:
            findings += self._error(operation, status, media_type, answer)
        if success and not problems and isinstance(body, dict) and images:
            wanted = image_request(operation, body)
            for number, data in enumerate(images, start=1):
                found = image_finding(data, wanted, number)
                if found is not None:
                    findings.append(found)
                    break  # one sentence for a run of wrong images, as the contract kit says it
        return findings

    def _success(self, operation: Operation, status: int, answer: JSON, body: JSON) -> list[str]:
        findings: list[str] = []
        documented = [code for code in operation.response_schemas if 200 <= code < 300]
        if status not in documented:
            shown = ", ".join(map(str, documented)) or "no success status"
            findings.append(f"success status {status}, spec documents {shown}")
        schema = operation.response_schemas.get(status) or (
            operation.response_schemas.get(documented[0]) if documented else None
        )
        if schema is None:
            return findings
        if not self._response_validator(schema).is_valid(answer):
            findings.append(
                schema_drift(answer, schema, status if status in documented else 200)[1]
            )
        else:
            findings += [
                f"{name} present, spec does not document it"
                for name in undocumented_fields(answer, schema)
            ]
        data = answer.get("data", []) if isinstance(answer, dict) else []
        if isinstance(body, dict):
            wanted = image_request(operation, body)
            images = f"{wanted.count} image{'s' if wanted.count != 1 else ''} requested"
            if data is None:
                findings.append(f"data is null in a successful response, {images}")
            elif isinstance(data, list) and len(data) != wanted.count:
                findings.append(f"{len(data)} entries in data, {images}")
        return findings

    def _error(self, operation: Operation, status: int, media_type: str, answer: JSON) -> list[str]:
        schema = operation.response_schemas.get(status)
        if media_type.startswith("application/problem+json"):
            return [PROBLEM_JSON[1]]
        if schema is not None:
            if self._response_validator(schema).is_valid(answer):
                return []
            return [schema_drift(answer, schema, status)[1]]
        if not isinstance(answer, dict):
            return [f"{status} error body is not a JSON object"]
        missing = [name for name in ENVELOPE_FIELDS if name not in answer]
        if missing:
            return [f"error envelope lacks {', '.join(missing)}"]
        if answer["statusCode"] != status:
            return [f"statusCode {answer['statusCode']!r} in the body of a {status} response"]
        return []

    def _validator(self, operation: Operation) -> SchemaValidator:
        key = id(operation.request_schema)
        if key not in self._validators:
            self._validators[key] = SchemaValidator(operation.request_schema)
        return self._validators[key]

    def _response_validator(self, schema: dict[str, Any]) -> Draft7Validator:
        key = id(schema)
        if key not in self._response_validators:
            self._response_validators[key] = Draft7Validator(schema)
        return self._response_validators[key]


def image_finding(data: bytes, wanted: ImageRequest, number: int) -> str | None:
    """What is wrong with image ``number`` for the request ``wanted``, in the contract kit's
    words; None when it decodes at the requested size and format."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            size, found = image.size, image.format
    except (UnidentifiedImageError, OSError, ValueError) as error:
        return f"image {number} does not decode: {error}"
    if size != (wanted.width, wanted.height):
        return (
            f"images of the wrong size: {size[0]}×{size[1]} served for a "
            f"{wanted.width}×{wanted.height} request"
        )
    if found != _PIL_FORMATS[wanted.format]:
        return f"images in the wrong format: {found} served for output_format {wanted.format!r}"
    return None


def _spec_path(spec_set: SpecSet, method: str, path: str) -> str:
    """The spec's own form of ``path`` (with or without ``/v1``, without a trailing slash)."""
    trimmed = path.rstrip("/") or "/"
    for candidate in (trimmed, "/v1" + trimmed, trimmed.removeprefix("/v1")):
        if spec_set.models_for(method, candidate):
            return candidate
    return trimmed


def _reason_of(answer: JSON) -> str:
    message = answer.get("message") if isinstance(answer, dict) else None
    if not isinstance(message, str):
        return ""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if len(lines) > 1 and lines[0] == "Body validation error":
        lines = lines[1:]
    return lines[0][:200] if lines else ""

"""The spec files a contract run checks against, with an overlay for success-only specs.

The API's published files document only the success response. Checked as they are, every 400
would be an "undocumented status". So each operation that documents no error response gets the
errors the API is known to send (the legacy envelope ``{message, path, requestId, statusCode,
timestamp}``), and an operation without a security requirement gets the bearer key it really
needs. The run's summary names each file that got the overlay.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import STATUS_MESSAGES, SpecError
from ..spec.load import HTTP_METHODS, SPEC_SUFFIXES, bundled_specs_dir, operations_of, read_document
from ..types import Operation

ERROR_STATUSES = (400, 401, 403, 404, 413, 415, 429, 500, 502, 503, 504)
"""The error statuses the API documents, and the overlay adds."""
ENVELOPE_FIELDS = ("message", "path", "requestId", "statusCode", "timestamp")
ENVELOPE_SCHEMA_NAME = "AimlapiMockErrorEnvelope"
BEARER_SCHEME_NAME = "AimlapiMockBearer"

_ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "The AI/ML API's error envelope, as documented for its error responses.",
    "required": list(ENVELOPE_FIELDS),
    "properties": {
        "message": {"type": "string"},
        "path": {"type": "string"},
        "requestId": {"type": "string"},
        "statusCode": {"type": "integer"},
        "timestamp": {"type": "string", "format": "date-time"},
    },
}


@dataclass(frozen=True)
class ContractDocument:
    """One spec file as the suite checks it."""

    source: str
    document: dict[str, Any]
    """The document given to schemathesis: the file, plus the overlay when it needed one."""
    operations: tuple[Operation, ...]
    """Its image operations, parsed by the fake's own loader from ``document``."""
    overlaid_statuses: tuple[int, ...] = ()
    """Error statuses the overlay documented (empty: the file documents its errors itself)."""
    overlaid_security: bool = False

    @property
    def name(self) -> str:
        return Path(self.source).name

    @property
    def labels(self) -> list[str]:
        """``METHOD /path`` of each operation, sorted, as schemathesis labels them."""
        return sorted({f"{operation.method} {operation.path}" for operation in self.operations})

    def operation(self, method: str, path: str, model: Any) -> Operation | None:
        """The operation for a request, by its body's model (any model of the path if unknown)."""
        candidates = [op for op in self.operations if op.method == method and op.path == path]
        for candidate in candidates:
            if candidate.model == model:
                return candidate
        return candidates[0] if candidates else None

    def overlay_note(self) -> str | None:
        parts = []
        if self.overlaid_statuses:
            statuses = ", ".join(str(status) for status in self.overlaid_statuses)
            parts.append(
                "documents only the success response, so errors are checked against the API's "
                f"documented envelope for {statuses}"
            )
        if self.overlaid_security:
            parts.append("declares no auth, so the bearer key the API requires is assumed")
        return "; ".join(parts) or None


def load_documents(sources: tuple[str, ...] | list[str] = ()) -> list[ContractDocument]:
    """Every spec file named (directories searched), or the bundled specs; raises SpecError."""
    files: list[Path] = []
    for source in sources or [str(bundled_specs_dir())]:
        path = Path(source)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file())
            if not found:
                raise SpecError(str(path), "directory holds no .json, .yaml or .yml file")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise SpecError(str(path), "no such file or directory")
    return [load_document(path) for path in files]


def load_document(path: Path) -> ContractDocument:
    raw = read_document(path)
    document, statuses, security = with_overlay(raw)
    operations = tuple(operations_of(document, str(path)))
    if not operations:
        raise SpecError(
            str(path), "no operation with a JSON request body schema that declares a 'model' enum"
        )
    return ContractDocument(str(path), document, operations, statuses, security)


def with_overlay(raw: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[int, ...], bool]:
    """``raw`` with documented errors and bearer auth added where an operation lacks them."""
    document = copy.deepcopy(dict(raw))
    added: set[int] = set()
    secured = False
    scheme = _bearer_scheme(document)
    for operation in _image_operations(document):
        responses = operation.setdefault("responses", {})
        if not any(str(code)[:1] in ("4", "5") or str(code) == "default" for code in responses):
            for status in ERROR_STATUSES:
                responses[str(status)] = _error_response(status)
            added.update(ERROR_STATUSES)
        if "security" not in operation and "security" not in document:
            if scheme is None:
                scheme = BEARER_SCHEME_NAME
                schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
                schemes[scheme] = {"type": "http", "scheme": "bearer"}
            operation["security"] = [{scheme: []}]
            secured = True
    if added:
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas[ENVELOPE_SCHEMA_NAME] = copy.deepcopy(_ENVELOPE_SCHEMA)
    return document, tuple(sorted(added)), secured


def _image_operations(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for item in (document.get("paths") or {}).values():
        if not isinstance(item, dict):
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if isinstance(operation, dict) and "requestBody" in operation:
                yield operation


def _bearer_scheme(document: Mapping[str, Any]) -> str | None:
    schemes = (document.get("components") or {}).get("securitySchemes") or {}
    for name, scheme in schemes.items():
        if isinstance(scheme, Mapping) and str(scheme.get("scheme", "")).lower() == "bearer":
            return str(name)
    return None


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": f"{STATUS_MESSAGES.get(status, 'Error')} (documented by the overlay)",
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{ENVELOPE_SCHEMA_NAME}"}}
        },
    }


def is_envelope_schema(schema: Mapping[str, Any] | None) -> bool:
    """Whether a documented error schema is the legacy envelope (it has statusCode and message)."""
    properties = (schema or {}).get("properties") or {}
    return "statusCode" in properties and "message" in properties

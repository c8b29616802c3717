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
from ..spec.load import (
    HTTP_METHODS,
    SPEC_SUFFIXES,
    SpecSet,
    bundled_specs_dir,
    operations_of,
    read_document,
)
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


def load_documents(
    sources: tuple[str, ...] | list[str] = (), skipped: list[str] | None = None
) -> list[ContractDocument]:
    """Every spec file named (directories searched), or the bundled specs; raises SpecError.

    As the fake does, a file found inside a directory that cannot be used is skipped: its name
    and problem go to ``skipped`` (when given; otherwise it raises).
    """
    documents: list[ContractDocument] = []
    for source in sources or [str(bundled_specs_dir())]:
        path = Path(source)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file())
            if not found:
                raise SpecError(str(path), "directory holds no .json, .yaml or .yml file")
            loaded = []
            for file in found:
                try:
                    loaded.append(load_document(file))
                except SpecError as error:
                    if skipped is None:
                        raise
                    skipped.append(f"skipped {error}")
            if not loaded:
                raise SpecError(str(path), "directory holds no loadable OpenAPI 3.0 file")
            documents.extend(loaded)
        elif path.is_file():
            documents.append(load_document(path))
        else:
            raise SpecError(str(path), "no such file or directory")
    return documents


def served_definitions(documents: list[ContractDocument]) -> SpecSet:
    """Every document's operations indexed as the fake indexes the same files, in the same
    order: for a model defined by several files, ``served`` gives the definition it serves."""
    spec_set = SpecSet()
    for document in documents:
        spec_set.sources.append(document.source)
        for operation in document.operations:
            spec_set.add(operation)
    return spec_set


def superseded(document: ContractDocument, served: SpecSet) -> dict[str, Operation]:
    """``METHOD /path`` labels of ``document`` whose every model is served from another file's
    definition, each with one such definition (the one a skip note names)."""
    found: dict[str, Operation] = {}
    for label in document.labels:
        method, _, path = label.partition(" ")
        mine = [op for op in document.operations if op.method == method and op.path == path]
        others = [served.served(op) for op in mine]
        if all(other is not op for op, other in zip(mine, others, strict=True)):
            found[label] = others[0]
    return found


def conflict_notes(served: SpecSet) -> list[str]:
    """One sentence per model defined by several files: which files, and which one is served."""
    notes = []
    for kept, others in served.conflicts():
        names = ", ".join(Path(other.source).name for other in others)
        differences = _differences(kept, others)
        notes.append(
            f"{kept.model!r} on {kept.method} {kept.path} is defined by {Path(kept.source).name} "
            f"and by {names}{differences}; the fake serves, and the suite checks, "
            f"{Path(kept.source).name}'s definition"
        )
    return notes


def _differences(kept: Operation, others: list[Operation]) -> str:
    found = []
    for other in others:
        if other.success_status != kept.success_status:
            found.append(f"success {kept.success_status} vs {other.success_status}")
        if (other.success_schema is None) != (kept.success_schema is None):
            found.append("only one documents its success body")
        elif other.success_schema != kept.success_schema:
            found.append("different success bodies")
        if other.request_schema != kept.request_schema:
            found.append("different request bodies")
    return f" ({', '.join(dict.fromkeys(found))})" if found else " (identically)"


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

"""Loading OpenAPI 3.0 documents and indexing their operations by method, path and model.

Many documents may share one path (upstream publishes one file per model, all on
``POST /v1/images/generations``); the request body's ``model`` enum tells them apart.

Rule for a model defined by several files on the same method and path (see
:func:`preferred_definition`): a definition that documents its success body wins over one that
does not; between definitions alike in that, the first loaded wins. A warning names the files and
the one served. Files are loaded in the order given; a directory contributes its ``.json``,
``.yaml`` and ``.yml`` files (searched recursively) in sorted path order. The contract kit applies
the same rule through :class:`SpecSet`, so it checks the fake against the definition it serves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import SpecError
from ..types import Operation
from .cache import cached_operations
from .oas import deref, to_json_schema

# PyYAML and jsonschema-rs are imported when a file is loaded, not served from the spec cache.

SPEC_SUFFIXES = (".json", ".yaml", ".yml")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
CREDITS_EXTENSION = "x-credits-per-megapixel"


@dataclass
class SpecSet:
    """Every loaded operation, indexed as ``(METHOD, path) -> {model: Operation}``."""

    operations: dict[tuple[str, str], dict[str, Operation]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    definitions: dict[tuple[str, str, str], list[Operation]] = field(default_factory=dict)
    """Every definition of each ``(METHOD, path, model)``, in load order."""

    @property
    def models(self) -> list[str]:
        """Every model id served on any path, sorted."""
        return sorted({model for by_model in self.operations.values() for model in by_model})

    @property
    def paths(self) -> list[str]:
        return sorted({path for _, path in self.operations})

    def methods_for(self, path: str) -> list[str]:
        return sorted(method for method, known in self.operations if known == path)

    def models_for(self, method: str, path: str) -> dict[str, Operation]:
        return self.operations.get((method.upper(), path), {})

    def __iter__(self) -> Iterator[Operation]:
        for by_model in self.operations.values():
            yield from by_model.values()

    def add(self, operation: Operation) -> None:
        """Index ``operation``; for a model defined already, :func:`preferred_definition` picks."""
        key = (operation.method, operation.path, operation.model)
        defined = self.definitions.setdefault(key, [])
        defined.append(operation)
        by_model = self.operations.setdefault((operation.method, operation.path), {})
        existing = by_model.get(operation.model)
        if existing is None:
            by_model[operation.model] = operation
            return
        served = preferred_definition(defined)
        by_model[operation.model] = served
        other = existing if served is operation else operation
        self.warnings.append(
            f"model {operation.model!r} on {operation.method} {operation.path} is defined by "
            f"{existing.source} and by {operation.source}; serving {served.source}'s definition "
            f"({_why_preferred(served, other)})"
        )

    def conflicts(self) -> list[tuple[Operation, list[Operation]]]:
        """(served definition, the others) for each model defined by more than one file."""
        found = []
        for (method, path, model), defined in self.definitions.items():
            if len(defined) > 1:
                served = self.operations[(method, path)][model]
                found.append((served, [other for other in defined if other is not served]))
        return found

    def served(self, operation: Operation) -> Operation:
        """The definition served for ``operation``'s method, path and model (maybe itself)."""
        by_model = self.operations.get((operation.method, operation.path), {})
        return by_model.get(operation.model, operation)


def preferred_definition(definitions: Sequence[Operation]) -> Operation:
    """Which of several definitions of one model on one method and path is served.

    One that documents its success response body wins over one that does not: in the API's
    published family the older, generated files document a bare ``201`` with no body, and the
    newer ones document the answer clients read (``data``, ``meta.usage``), so this serves what
    the API answers today. Between definitions alike in that, the first loaded wins, so the order
    of ``--spec`` options decides, as it always has.
    """
    documented = [op for op in definitions if op.success_schema is not None]
    return (documented or list(definitions))[0]


def _why_preferred(served: Operation, other: Operation) -> str:
    if served.success_schema is not None and other.success_schema is None:
        return "it documents its success body"
    return "loaded first"


def bundled_specs_dir() -> Path:
    """Where the specs shipped with the package live (inside the wheel, or the source tree)."""
    installed = Path(str(resources.files("mock_server"))) / "specs"
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / "fixtures" / "specs"


def load_specs(sources: Sequence[str | Path] = ()) -> SpecSet:
    """Load OpenAPI 3.0 files and directories; with no sources, the bundled specs.

    A file named explicitly that cannot be loaded raises :class:`SpecError`. A file found inside
    a directory that cannot be loaded is skipped, with a warning in ``SpecSet.warnings``.
    """
    spec_set = SpecSet()
    for source in sources or [bundled_specs_dir()]:
        path = Path(source)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix in SPEC_SUFFIXES and p.is_file())
            loaded_before = len(spec_set.sources)
            for file in files:
                try:
                    _load_file(file, spec_set)
                except SpecError as error:
                    spec_set.warnings.append(f"skipped {error}")
            if len(spec_set.sources) == loaded_before:
                raise SpecError(str(path), "directory holds no loadable OpenAPI 3.0 file")
        elif path.is_file():
            _load_file(path, spec_set)
        else:
            raise SpecError(str(path), "no such file or directory")
    return spec_set


def _load_file(path: Path, spec_set: SpecSet) -> None:
    source = str(path)
    raw = _read(path)

    def load() -> list[Operation]:
        operations = list(operations_of(_document(source, path.suffix, raw), source))
        if not operations:
            raise SpecError(
                source, "no operation with a JSON request body schema that declares a 'model' enum"
            )
        return operations

    operations = cached_operations(source, raw, load)
    spec_set.sources.append(source)
    for operation in operations:
        spec_set.add(operation)


def read_document(path: Path) -> dict[str, Any]:
    """Parse one JSON or YAML file and check that it is an OpenAPI 3.0.x document."""
    return _document(str(path), path.suffix, _read(path))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise SpecError(str(path), f"cannot be read: {error}") from None


def _document(source: str, suffix: str, raw: bytes) -> dict[str, Any]:
    import yaml

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SpecError(source, f"cannot be read: {error}") from None
    try:
        document = json.loads(text) if suffix == ".json" else _load_yaml(text)
    except (ValueError, yaml.YAMLError) as error:
        kind = "JSON" if suffix == ".json" else "YAML"
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SpecError(source, f"not valid {kind}: {first_line}") from None
    return check_openapi_30(document, source)


def _load_yaml(text: str) -> Any:
    import yaml

    # libyaml's loader parses the bundled specs ten times faster (30 ms of start-up); for a file
    # it refuses, the pure-Python loader has the last word and its own error message, as before.
    fast_loader = getattr(yaml, "CSafeLoader", None)
    if fast_loader is not None:
        try:
            return yaml.load(text, Loader=fast_loader)  # a safe loader, like safe_load
        except yaml.YAMLError:
            pass
    return yaml.safe_load(text)


def check_openapi_30(document: Any, source: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise SpecError(source, f"expected an OpenAPI document (a mapping), got {_kind(document)}")
    if "swagger" in document:
        raise SpecError(
            source, f"Swagger {document['swagger']} is not supported; OpenAPI 3.0.x expected"
        )
    version = document.get("openapi")
    if not isinstance(version, str) or not version.startswith("3.0"):
        raise SpecError(source, f"openapi version {version!r} is not supported; 3.0.x expected")
    if not isinstance(document.get("paths"), dict):
        raise SpecError(source, f"'paths' must be a mapping, got {_kind(document.get('paths'))}")
    return document


def operations_of(document: Mapping[str, Any], source: str) -> Iterable[Operation]:
    """Every operation of ``document`` that has a JSON request body with a ``model`` enum."""
    for path, raw_item in document["paths"].items():
        item = deref(document, raw_item, source)
        if not isinstance(item, Mapping):
            raise SpecError(source, f"path {path!r} must be a mapping")
        for method in HTTP_METHODS:
            raw_operation = item.get(method)
            if raw_operation is None:
                continue
            if not isinstance(raw_operation, Mapping):
                raise SpecError(source, f"{method.upper()} {path} must be a mapping")
            yield from _operations(document, source, method.upper(), path, raw_operation)


def _operations(
    document: Mapping[str, Any],
    source: str,
    method: str,
    path: str,
    operation: Mapping[str, Any],
) -> Iterator[Operation]:
    where = f"{method} {path}"
    request_body = deref(document, operation.get("requestBody"), source)
    raw_schema = _json_schema_of(request_body)
    if raw_schema is None:
        return
    request_schema = to_json_schema(raw_schema, document, f"{source}: {where} request body")
    _check_schema(request_schema, source, f"{where} request body")
    models = _model_enum(request_schema)
    if not models:
        return

    responses = deref(document, operation.get("responses") or {}, source)
    response_schemas: dict[int, dict[str, Any] | None] = {}
    for status_key, raw_response in (responses or {}).items():
        status = _status_code(status_key)
        if status is None:
            continue
        response = deref(document, raw_response, source)
        schema = _json_schema_of(response)
        response_schemas[status] = (
            None
            if schema is None
            else to_json_schema(
                schema, document, f"{source}: {where} response {status_key}", response=True
            )
        )
        _check_schema(response_schemas[status], source, f"{where} response {status_key}")
    successes = sorted(status for status in response_schemas if 200 <= status < 300)
    success_status = successes[0] if successes else 200

    credits = operation.get(CREDITS_EXTENSION)
    if credits is not None and (isinstance(credits, bool) or not isinstance(credits, int | float)):
        raise SpecError(source, f"{where}: {CREDITS_EXTENSION} must be a number, got {credits!r}")

    for model in models:
        yield Operation(
            method=method,
            path=path,
            model=model,
            source=source,
            operation_id=operation.get("operationId"),
            request_schema=request_schema,
            success_status=success_status,
            success_schema=response_schemas.get(success_status),
            response_schemas=response_schemas,
            credits_per_megapixel=credits,
        )


def _check_schema(schema: dict[str, Any] | None, source: str, where: str) -> None:
    """Refuse a schema no validator can use (``type: strnig``, ``minimum: "5"``, a broken
    pattern), naming the place, instead of failing later with a validator's traceback."""
    if schema is None:
        return
    import jsonschema_rs

    try:
        jsonschema_rs.Draft7Validator(schema)
    except jsonschema_rs.ValidationError as error:
        at = "/".join(map(str, error.instance_path))
        raise SpecError(
            source, f"{where}: not a usable schema: {error.message}" + (f" at {at}" if at else "")
        ) from None


def _json_schema_of(holder: Any) -> Any:
    """The schema of the JSON media type of a request body or response, if any."""
    if not isinstance(holder, Mapping) or not isinstance(holder.get("content"), Mapping):
        return None
    for media_type, media in holder["content"].items():
        base = str(media_type).split(";")[0].strip().lower()
        if (base == "application/json" or base.endswith("+json")) and isinstance(media, Mapping):
            return media.get("schema")
    return None


def _model_enum(schema: Mapping[str, Any]) -> list[str]:
    """The model ids a request schema accepts, looking through ``allOf`` too."""
    found: list[str] = []
    for part in [schema, *schema.get("allOf", [])]:
        model = part.get("properties", {}).get("model") if isinstance(part, Mapping) else None
        if isinstance(model, Mapping):
            values = model.get("enum") or ([model["const"]] if "const" in model else [])
            found.extend(value for value in values if isinstance(value, str))
    return list(dict.fromkeys(found))


def _status_code(key: Any) -> int | None:
    text = str(key).upper()
    if text.isdigit():
        return int(text)
    if len(text) == 3 and text[0].isdigit() and text.endswith("XX"):
        return int(text[0]) * 100
    return None  # "default"


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__

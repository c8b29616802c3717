"""OpenAPI 3.0 schema objects turned into plain JSON Schema (draft 7).

OpenAPI 3.0 schemas are close to JSON Schema but not the same: ``nullable`` is not a JSON Schema
keyword, ``exclusiveMinimum``/``exclusiveMaximum`` are booleans, ``$ref`` points into the whole
document. The fake converts once, at load time, so any JSON Schema validator can be used on the
request path and in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import SpecError

# Annotations that JSON Schema either lacks or that mean nothing for validation.
_DROPPED_KEYWORDS = frozenset(
    {"nullable", "example", "xml", "externalDocs", "discriminator", "deprecated"}
)
_SCHEMA_VALUED = ("items", "not", "additionalProperties")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_MAPS = ("properties", "patternProperties")


def resolve_ref(document: Mapping[str, Any], ref: str, source: str) -> Any:
    """Follow a local ``$ref`` (``#/components/...``) inside ``document``."""
    if not isinstance(ref, str) or not ref.startswith("#"):
        raise SpecError(
            source, f"$ref {ref!r} points outside the document; only local '#/...' refs work"
        )
    node: Any = document
    for raw in ref[1:].split("/")[1:]:
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            raise SpecError(source, f"$ref {ref!r} does not resolve")
    return node


def deref(document: Mapping[str, Any], node: Any, source: str) -> Any:
    """Follow ``$ref`` chains on a non-schema object (path item, request body, response)."""
    seen: set[str] = set()
    while isinstance(node, Mapping) and "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            raise SpecError(source, f"$ref {ref!r} refers to itself")
        seen.add(ref)
        node = resolve_ref(document, ref, source)
    return node


def to_json_schema(schema: Any, document: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Return ``schema`` as a self-contained JSON Schema (draft 7) with every ``$ref`` inlined."""
    converted = _convert(schema, document, source, ())
    if not isinstance(converted, dict):
        raise SpecError(source, f"schema must be an object, got {type(schema).__name__}")
    return converted


def _convert(node: Any, document: Mapping[str, Any], source: str, refs: tuple[str, ...]) -> Any:
    if isinstance(node, bool):
        return node
    if not isinstance(node, Mapping):
        raise SpecError(source, f"schema must be an object, got {node!r}")
    if "$ref" in node:
        ref = node["$ref"]
        if ref in refs:
            raise SpecError(source, f"recursive $ref {ref!r} is not supported")
        # In OpenAPI 3.0, keywords next to a $ref are ignored.
        return _convert(resolve_ref(document, ref, source), document, source, (*refs, ref))

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYWORDS or key.startswith("x-"):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {name: _convert(sub, document, source, refs) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_convert(sub, document, source, refs) for sub in value]
        elif key in _SCHEMA_VALUED and isinstance(value, Mapping | bool):
            out[key] = _convert(value, document, source, refs)
        else:
            out[key] = value

    for bound in ("Minimum", "Maximum"):
        flag = out.pop(f"exclusive{bound}", None)
        if flag is True and bound.lower() in out:
            out[f"exclusive{bound}"] = out.pop(bound.lower())
        elif flag is not None and not isinstance(flag, bool):
            out[f"exclusive{bound}"] = flag  # already in JSON Schema form

    if node.get("nullable") is True:
        out = _nullable(out)
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*types, "null"] if "null" not in types else types
        if "enum" in schema and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
        return schema
    # A nullable schema with no type of its own (typically allOf: [$ref]) is wrapped.
    return {"anyOf": [schema, {"type": "null"}]}

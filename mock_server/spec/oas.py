"""OpenAPI 3.0 schema objects turned into plain JSON Schema (draft 7).

OpenAPI 3.0 schemas are close to JSON Schema but not the same: ``nullable`` is not a JSON Schema
keyword, ``exclusiveMinimum``/``exclusiveMaximum`` are booleans, ``$ref`` points into the whole
document, ``readOnly`` and ``writeOnly`` change what ``required`` means. The fake converts once, at
load time, and the contract kit checks requests and answers against the same conversion, so the
two cannot disagree about what a schema allows.

Where OpenAPI 3.0 leaves room, the conversion reads it as schemathesis does (it generates the
contract kit's requests), which is also the literal reading of OpenAPI 3.0.3:

- ``nullable: true`` allows null, except where the schema has an ``enum`` that does not list null
  ("other constraints retain their defined behavior"); in a response schema null is allowed anyway,
  as an answer is read leniently.
- A ``readOnly`` property is not required in a request, a ``writeOnly`` one not in a response.
- ``required: true``/``false`` written on a property (a common slip) counts as the parent's
  ``required`` list saying so.
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


def to_json_schema(
    schema: Any, document: Mapping[str, Any], source: str, *, response: bool = False
) -> dict[str, Any]:
    """Return ``schema`` as a self-contained JSON Schema (draft 7) with every ``$ref`` inlined.

    ``response`` says the schema describes an answer rather than a request (see the module's
    notes on ``nullable``, ``readOnly`` and ``writeOnly``).
    """
    converted = _convert(schema, document, source, (), response)
    if not isinstance(converted, dict):
        raise SpecError(source, f"schema must be an object, got {type(schema).__name__}")
    return converted


def _convert(
    node: Any, document: Mapping[str, Any], source: str, refs: tuple[str, ...], response: bool
) -> Any:
    if isinstance(node, bool):
        return node
    if not isinstance(node, Mapping):
        raise SpecError(source, f"schema must be an object, got {node!r}")
    if "$ref" in node:
        ref = node["$ref"]
        if ref in refs:
            raise SpecError(source, f"recursive $ref {ref!r} is not supported")
        # In OpenAPI 3.0, keywords next to a $ref are ignored.
        return _convert(
            resolve_ref(document, ref, source), document, source, (*refs, ref), response
        )

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYWORDS or key.startswith("x-"):
            continue
        if key in _SCHEMA_MAPS and isinstance(value, Mapping):
            out[key] = {
                name: _convert(sub, document, source, refs, response) for name, sub in value.items()
            }
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_convert(sub, document, source, refs, response) for sub in value]
        elif key in _SCHEMA_VALUED and isinstance(value, Mapping | bool):
            out[key] = _convert(value, document, source, refs, response)
        else:
            out[key] = value
    if isinstance(out.get("properties"), dict):
        _settle_required(out, node.get("properties"), document, source, response)

    for bound in ("Minimum", "Maximum"):
        flag = out.pop(f"exclusive{bound}", None)
        if flag is True and bound.lower() in out:
            out[f"exclusive{bound}"] = out.pop(bound.lower())
        elif flag is not None and not isinstance(flag, bool):
            out[f"exclusive{bound}"] = flag  # already in JSON Schema form

    if node.get("nullable") is True:
        out = _nullable(out, response)
    return out


def _nullable(schema: dict[str, Any], response: bool) -> dict[str, Any]:
    enum = schema.get("enum")
    if isinstance(enum, list) and None not in enum:
        if not response:
            return schema  # the enum still decides: null is not one of its values
        schema["enum"] = [*enum, None]
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema["type"] = [*types, "null"] if "null" not in types else types
        return schema
    # A nullable schema with no type of its own (typically allOf: [$ref]) is wrapped.
    return {"anyOf": [schema, {"type": "null"}]}


def _settle_required(
    out: dict[str, Any],
    raw_properties: Any,
    document: Mapping[str, Any],
    source: str,
    response: bool,
) -> None:
    """Apply property-level ``required`` flags and ``readOnly``/``writeOnly`` to ``required``."""
    if isinstance(out.get("required"), bool):
        return  # this schema's own flag, for its parent to apply
    required = list(out.get("required") or [])
    unsent = "writeOnly" if response else "readOnly"
    for name, sub in out["properties"].items():
        if not isinstance(sub, dict):
            continue
        flag = sub.get("required")
        if isinstance(flag, bool):
            del sub["required"]  # not JSON Schema: a property cannot require itself
            if flag and name not in required:
                required.append(name)
            elif not flag and name in required:
                required.remove(name)
        raw = raw_properties.get(name) if isinstance(raw_properties, Mapping) else None
        if name in required and _flagged(raw, unsent, document, source):
            required.remove(name)
    if required:
        out["required"] = required
    else:
        out.pop("required", None)


def _flagged(raw: Any, keyword: str, document: Mapping[str, Any], source: str) -> bool:
    """Whether ``keyword`` (``readOnly``/``writeOnly``) is true on ``raw``, behind its ``$ref``s
    or in its ``allOf`` branches."""
    seen: set[str] = set()
    pending = [raw]
    while pending:
        node = pending.pop()
        while isinstance(node, Mapping) and "$ref" in node and node["$ref"] not in seen:
            seen.add(node["$ref"])
            node = resolve_ref(document, node["$ref"], source)
        if not isinstance(node, Mapping):
            continue
        if node.get(keyword) is True:
            return True
        if isinstance(node.get("allOf"), list):
            pending.extend(node["allOf"])
    return False

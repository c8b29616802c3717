"""What changed between two OpenAPI files, as sentences a person can review.

Only what a client or the fake can notice is compared: operations, request and response schemas
(fields, types, bounds, enums, required, defaults, nullability), status codes and media types.
Descriptions, examples, titles and ``x-`` extensions are left out.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .load import HTTP_METHODS, read_document
from .oas import resolve_ref

_DOCS = frozenset({"description", "example", "examples", "title", "externalDocs", "xml"})
_BOUNDS = (
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "pattern",
    "format",
)
_SCALARS = ("type", "nullable", "default", "additionalProperties", "uniqueItems", "readOnly")
_MISSING = object()


@dataclass(frozen=True)
class Change:
    """One difference: where it is (operation and part), which field, and what happened."""

    where: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def diff_files(old: str | Path, new: str | Path) -> list[Change]:
    """Every change from the OpenAPI document ``old`` to ``new`` (raises ``SpecError``)."""
    return diff_documents(read_document(Path(old)), read_document(Path(new)))


def diff_documents(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every change between two parsed OpenAPI 3.0 documents."""
    old_ops, new_ops = _operations(old), _operations(new)
    changes: list[Change] = []
    for key in sorted(old_ops.keys() - new_ops.keys()):
        changes.append(Change(key, "", "operation removed"))
    for key in sorted(new_ops.keys() - old_ops.keys()):
        changes.append(Change(key, "", "operation added"))
    for key in sorted(old_ops.keys() & new_ops.keys()):
        changes.extend(_diff_operation(key, old, old_ops[key], new, new_ops[key]))
    return changes


def render(changes: list[Change], old: str, new: str) -> str:
    """The changes grouped by operation and part, or a line saying there are none."""
    if not changes:
        return f"No differences between {old} and {new}."
    lines = [f"{len(changes)} difference(s) from {old} to {new}:"]
    current = None
    for change in changes:
        if change.where != current:
            current = change.where
            lines.append(f"\n{current}")
        lines.append(f"  - {change}")
    return "\n".join(lines)


def _operations(document: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for path, item in (document.get("paths") or {}).items():
        item = _deref(document, item)
        if not isinstance(item, Mapping):
            continue
        for method in HTTP_METHODS:
            operation = item.get(method)
            if isinstance(operation, Mapping):
                found[f"{method.upper()} {path}"] = operation
    return found


def _diff_operation(
    key: str,
    old_doc: Mapping[str, Any],
    old: Mapping[str, Any],
    new_doc: Mapping[str, Any],
    new: Mapping[str, Any],
) -> Iterator[Change]:
    old_security = _security(old_doc, old)
    new_security = _security(new_doc, new)
    if old_security != new_security:
        yield Change(key, "security", f"{old_security or 'none'} -> {new_security or 'none'}")

    old_body, new_body = (
        _deref(old_doc, old.get("requestBody")),
        _deref(new_doc, new.get("requestBody")),
    )
    where = f"{key} request body"
    yield from _diff_content(where, old_doc, old_body, new_doc, new_body)

    old_responses = {str(k): v for k, v in (_deref(old_doc, old.get("responses")) or {}).items()}
    new_responses = {str(k): v for k, v in (_deref(new_doc, new.get("responses")) or {}).items()}
    pairs = [(code, code) for code in sorted(old_responses.keys() & new_responses.keys())]
    removed = sorted(old_responses.keys() - new_responses.keys())
    added = sorted(new_responses.keys() - old_responses.keys())
    old_success = [code for code in old_responses if code.startswith("2")]
    new_success = [code for code in new_responses if code.startswith("2")]
    if len(old_success) == len(new_success) == 1 and old_success != new_success:
        # One documented success each, under different codes: the same response, moved.
        yield Change(f"{key} responses", "success status", f"{old_success[0]} -> {new_success[0]}")
        pairs.insert(0, (old_success[0], new_success[0]))
        removed.remove(old_success[0])
        added.remove(new_success[0])
    parts = []
    if removed:
        parts.append(f"no longer documented: {', '.join(removed)}")
    if added:
        parts.append(f"newly documented: {', '.join(added)}")
    if parts:
        yield Change(f"{key} responses", "status codes", "; ".join(parts))
    for old_code, new_code in pairs:
        code = old_code if old_code == new_code else f"{old_code} -> {new_code}"
        yield from _diff_content(
            f"{key} response {code}",
            old_doc,
            _deref(old_doc, old_responses[old_code]),
            new_doc,
            _deref(new_doc, new_responses[new_code]),
        )


def _diff_content(
    where: str, old_doc: Mapping[str, Any], old: Any, new_doc: Mapping[str, Any], new: Any
) -> Iterator[Change]:
    old_content = old.get("content") if isinstance(old, Mapping) else None
    new_content = new.get("content") if isinstance(new, Mapping) else None
    old_types, new_types = set(old_content or {}), set(new_content or {})
    if old_types != new_types:
        shown_old = ", ".join(sorted(old_types)) or "no body"
        shown_new = ", ".join(sorted(new_types)) or "no body"
        yield Change(where, "media types", f"{shown_old} -> {shown_new}")
    was_required = isinstance(old, Mapping) and bool(old.get("required"))
    now_required = isinstance(new, Mapping) and bool(new.get("required"))
    if isinstance(old, Mapping) and isinstance(new, Mapping) and was_required != now_required:
        yield Change(where, "", "now required" if now_required else "no longer required")
    for media_type in sorted(old_types & new_types):
        assert old_content is not None and new_content is not None
        old_schema = _inline(old_doc, (old_content[media_type] or {}).get("schema"), ())
        new_schema = _inline(new_doc, (new_content[media_type] or {}).get("schema"), ())
        yield from (
            Change(where, field, message)
            for field, message in _diff_schema("", old_schema, new_schema)
        )


def _diff_schema(field: str, old: Any, new: Any) -> Iterator[tuple[str, str]]:
    """(field, message) for each difference between two inlined schemas."""
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        if _signature(old) != _signature(new):
            yield field or "body", f"schema {_show(old)} -> {_show(new)}"
        return
    for keyword in (*_SCALARS, *_BOUNDS):
        before, after = old.get(keyword, _MISSING), new.get(keyword, _MISSING)
        if before == after or (keyword == "additionalProperties" and isinstance(before, Mapping)):
            continue
        if before is _MISSING:
            yield field or "body", f"{keyword} {_show(after)} added"
        elif after is _MISSING:
            yield field or "body", f"{keyword} {_show(before)} removed"
        else:
            yield field or "body", f"{keyword} {_show(before)} -> {_show(after)}"
    yield from _diff_enum(field, old.get("enum"), new.get("enum"))
    yield from _diff_properties(field, old, new)
    if "items" in old or "items" in new:
        yield from _diff_schema(f"{field}[]", old.get("items", {}), new.get("items", {}))
    for combinator in ("anyOf", "oneOf", "allOf"):
        before, after = old.get(combinator) or [], new.get(combinator) or []
        if len(before) != len(after):
            yield field or "body", f"{combinator} has {len(before)} -> {len(after)} alternatives"
            continue
        for index, (one, other) in enumerate(zip(before, after, strict=True)):
            yield from _diff_schema(f"{field}.{combinator}[{index}]".lstrip("."), one, other)


def _diff_enum(field: str, old: Any, new: Any) -> Iterator[tuple[str, str]]:
    if old == new:
        return
    name = field or "body"
    if old is None:
        yield name, f"now limited to {_show(new)}"
    elif new is None:
        yield name, f"no longer limited to {_show(old)}"
    else:
        removed = [value for value in old if value not in new]
        added = [value for value in new if value not in old]
        parts = []
        if added:
            parts.append(f"values {_show(added)} added")
        if removed:
            parts.append(f"values {_show(removed)} removed")
        yield name, "enum: " + ("; ".join(parts) if parts else f"reordered to {_show(new)}")


def _diff_properties(
    field: str, old: Mapping[str, Any], new: Mapping[str, Any]
) -> Iterator[tuple[str, str]]:
    old_props: Mapping[str, Any] = old.get("properties") or {}
    new_props: Mapping[str, Any] = new.get("properties") or {}
    old_required, new_required = set(old.get("required") or []), set(new.get("required") or [])
    removed = [name for name in old_props if name not in new_props]
    added = [name for name in new_props if name not in old_props]
    renamed: dict[str, str] = {}
    for name in removed:
        matches = [
            other for other in added if _signature(new_props[other]) == _signature(old_props[name])
        ]
        if len(matches) == 1 and matches[0] not in renamed.values():
            renamed[name] = matches[0]
    for old_name, new_name in renamed.items():
        yield _join(field, old_name), f"renamed to {new_name}"
    for name in removed:
        if name not in renamed:
            kind = "required field" if name in old_required else "field"
            yield _join(field, name), f"{kind} removed"
    for name in added:
        if name not in renamed.values():
            kind = "required field" if name in new_required else "optional field"
            yield _join(field, name), f"{kind} added ({_describe(new_props[name])})"
    for name in old_props:
        counterpart = renamed.get(name, name if name in new_props else None)
        if counterpart is None:
            continue
        was, now = name in old_required, counterpart in new_required
        if was != now:
            yield _join(field, counterpart), "now required" if now else "no longer required"
        yield from _diff_schema(_join(field, counterpart), old_props[name], new_props[counterpart])
    for name in sorted((old_required - set(old_props)) ^ (new_required - set(new_props))):
        now = name in new_required
        yield _join(field, name), "now required" if now else "no longer required"


def _security(document: Mapping[str, Any], operation: Mapping[str, Any]) -> str:
    requirements = operation.get("security", document.get("security")) or []
    schemes = (document.get("components") or {}).get("securitySchemes") or {}
    names = []
    for requirement in requirements:
        for name in requirement or {}:
            scheme = _deref(document, schemes.get(name)) or {}
            kind = scheme.get("scheme") or scheme.get("type") or name
            names.append(str(kind))
    return ", ".join(sorted(set(names)))


def _inline(document: Mapping[str, Any], node: Any, seen: tuple[str, ...]) -> Any:
    """``node`` with local ``$ref``s replaced by what they point at (recursion stops at a cycle)."""
    if isinstance(node, Mapping):
        if "$ref" in node and isinstance(node["$ref"], str):
            ref = node["$ref"]
            if ref in seen:
                return {"$ref": ref}
            return _inline(document, resolve_ref(document, ref, "spec"), (*seen, ref))
        return {
            key: _inline(document, value, seen)
            for key, value in node.items()
            if key not in _DOCS and not str(key).startswith("x-")
        }
    if isinstance(node, list):
        return [_inline(document, item, seen) for item in node]
    return node


def _deref(document: Mapping[str, Any], node: Any) -> Any:
    while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
        node = resolve_ref(document, node["$ref"], "spec")
    return node


def _signature(schema: Any) -> Any:
    """A comparable form of a schema, docs left out."""
    if isinstance(schema, Mapping):
        return tuple(sorted((str(k), _signature(v)) for k, v in schema.items() if k not in _DOCS))
    if isinstance(schema, list):
        return tuple(_signature(item) for item in schema)
    return schema


def _describe(schema: Any) -> str:
    if not isinstance(schema, Mapping):
        return _show(schema)
    kind = schema.get("type")
    if kind is None:
        for combinator in ("anyOf", "oneOf", "allOf"):
            if combinator in schema:
                return f"{combinator} of {len(schema[combinator])}"
        return "any type"
    return f"{kind}{', nullable' if schema.get('nullable') else ''}"


def _show(value: Any) -> str:
    if value is _MISSING:
        return "(none)"
    if isinstance(value, list):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "{…}"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _join(field: str, name: str) -> str:
    return f"{field}.{name}" if field else name

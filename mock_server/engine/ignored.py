"""Which fields of a valid request body the operation's schema does not declare.

The API ignores them (an OpenAI-SDK user's ``size``, ``n`` or ``response_format`` does nothing),
and so does the fake; listing them lets a test catch code that relies on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..types import JSON

__all__ = ["ignored_fields"]


def ignored_fields(schema: Mapping[str, Any], body: JSON) -> list[str]:
    """The dotted names of the fields in ``body`` that ``schema`` does not declare, sorted.

    Nested objects are looked into where the schema describes them (``image_size.depth``,
    ``loras.0.weight``). A field that an ``additionalProperties: false`` schema would reject is
    not listed: validation reports it instead. Fields matched by ``patternProperties`` or by an
    ``additionalProperties`` schema are declared.
    """
    found: set[str] = set()
    _walk(schema, body, (), found)
    return sorted(found)


def _walk(schema: Any, value: JSON, path: tuple[str, ...], found: set[str]) -> None:
    if not isinstance(schema, Mapping):
        return
    if isinstance(value, dict):
        branches = _object_branches(schema)
        if not branches:
            return
        declared: dict[str, list[Mapping[str, Any]]] = {}
        open_ended = False
        for branch in branches:
            for name, sub in (branch.get("properties") or {}).items():
                declared.setdefault(name, []).append(sub)
            additional = branch.get("additionalProperties", True)
            open_ended |= additional is False or isinstance(additional, Mapping)
            open_ended |= bool(branch.get("patternProperties"))
        for name, item in value.items():
            if name in declared:
                for sub in declared[name]:
                    _walk(sub, item, (*path, str(name)), found)
            elif not open_ended:
                found.add(".".join((*path, str(name))))
    elif isinstance(value, list):
        for branch in _branches(schema):
            items = branch.get("items")
            if isinstance(items, Mapping):
                for index, item in enumerate(value):
                    _walk(items, item, (*path, str(index)), found)
                return


def _object_branches(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The parts of ``schema`` that describe an object: itself and its union branches."""
    return [b for b in _branches(schema) if "properties" in b or "additionalProperties" in b]


def _branches(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    out = [schema]
    for combinator in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(combinator, ()):
            if isinstance(branch, Mapping):
                out.extend(_branches(branch))
    return out

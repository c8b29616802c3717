"""Where the fake's facts go in an answer of any shape, read from its response schema.

The fake knows a few facts about each answer: the image URLs (and each image's size and media
type), the seed, the charge. A success schema may put them anywhere, or nowhere: the image list
as ``data`` or ``images``, a single image object, usage as ``credits_used``, ``tokens_used`` or
``usd_spent``, or a job-shaped body (``{id, status}``) with no image at all. :func:`answer` walks
the schema and puts each fact where a field of its name is declared; any other required field
gets a placeholder valid for its schema (its ``const``, an enum value, its ``default``, a bounded
number, a string of the right format and length). Fields that are neither required nor hold a
fact are left out. :func:`image_slot` tells the contract kit where to look for the images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from ..types import IMAGE_MEDIA_TYPES, JSON, ImageRequest

CREDITS_PER_USD = 2_000_000
"""The API's price of a credit: ``usd_spent`` is ``credits_used / CREDITS_PER_USD``."""
# Status values that say a job is done (the fake answers synchronously).
_DONE_WORDS = ("completed", "succeeded", "success", "done", "finished", "complete", "ready")
_PLACEHOLDER_TIME = "2026-01-01T00:00:00Z"
_PLACEHOLDER_UUID = "00000000-0000-4000-8000-000000000000"


def answer(
    schema: Mapping[str, Any], urls: list[str], credits: int, request: ImageRequest | None
) -> JSON:
    """A value valid for ``schema`` holding the facts where it has a place for them."""
    return _Synthesiser(_Facts(urls, credits, request)).value(schema, None, required=True)


def has_image_slot(schema: Mapping[str, Any] | None) -> bool:
    """Whether answers of ``schema`` carry image URLs (no schema: the image list, so yes)."""
    return image_slot(schema) is not None


def image_slot(schema: Mapping[str, Any] | None) -> tuple[tuple[str, ...], bool] | None:
    """Where answers of ``schema`` list their images: the path of property names to the first
    list of image entries (``(("data",), True)``), or to a single image object (``False``); None
    when they carry no image. Without a schema, ``data``, where the fake then puts them."""
    if schema is None:
        return ("data",), True
    return _slot(schema, (), 0)


def _slot(schema: Any, path: tuple[str, ...], depth: int) -> tuple[tuple[str, ...], bool] | None:
    if not isinstance(schema, Mapping) or depth > 8:
        return None
    schema = _flatten(schema)
    if _is_image_entry(schema):
        return path, False
    items = schema.get("items")
    if isinstance(items, Mapping) and _is_image_entry(_flatten(items)):
        return path, True
    for branch in [*(schema.get("anyOf") or []), *(schema.get("oneOf") or [])]:
        found = _slot(branch, path, depth + 1)
        if found is not None:
            return found
    properties = schema.get("properties")
    for name, sub in properties.items() if isinstance(properties, Mapping) else ():
        found = _slot(sub, (*path, name), depth + 1)
        if found is not None:
            return found
    return None


_NOTHING: Any = object()
"""What the synthesiser returns for an optional field it has nothing to put in."""


@dataclass
class _Facts:
    """What the fake knows about one answer."""

    urls: list[str]
    credits: int
    request: ImageRequest | None
    usage: dict[str, JSON] = field(init=False)

    def __post_init__(self) -> None:
        self.usage = {
            "credits_used": self.credits,
            "tokens_used": self.credits,
            "usd_spent": self.credits / CREDITS_PER_USD,
        }

    def image(self, index: int) -> dict[str, JSON]:
        """The facts about image ``index``, by the field names an image entry may declare."""
        facts: dict[str, JSON] = {"url": self.urls[index], "b64_json": None}
        request = self.request
        if request is not None:
            media_type = IMAGE_MEDIA_TYPES[request.format]
            facts.update(
                width=request.width,
                height=request.height,
                content_type=media_type,
                mime_type=media_type,
                file_name=self.urls[index].rsplit("/", 1)[-1],
            )
        return facts

    def top(self) -> dict[str, JSON]:
        """Facts that may sit anywhere outside the image entries."""
        facts = dict(self.usage)
        if self.request is not None:
            facts["seed"] = self.request.seed
        return facts


_IMAGE_FIELDS = frozenset({"url", "b64_json"})


class _Synthesiser:
    """Builds one answer from :class:`_Facts`; see :func:`success_body`."""

    def __init__(self, facts: _Facts) -> None:
        self.facts = facts
        self._holds: dict[int, tuple[Any, bool]] = {}
        self._top_names = set(facts.top())

    def value(
        self,
        schema: Any,
        name: str | None,
        *,
        required: bool,
        image: dict[str, JSON] | None = None,
    ) -> JSON:
        if not isinstance(schema, Mapping):
            return None if required else _NOTHING
        schema = _flatten(schema)
        if "anyOf" in schema or "oneOf" in schema:
            return self.value(self._branch(schema), name, required=required, image=image)
        facts = image if image is not None else self.facts.top()
        kinds = _types(schema)
        if _is_image_entry(schema) and image is None:
            # A single image where the schema holds one object, not a list.
            if not self.facts.urls:
                return self._placeholder(schema, kinds) if required else _NOTHING
            return self._object(schema, self.facts.image(0))
        if "object" in kinds or (not kinds and "properties" in schema):
            if required or self.holds(schema):
                return self._object(schema, image)
            return _NOTHING
        if "array" in kinds:
            return self._array(schema, required=required, image=image)
        if name is not None and name in facts and _fits(facts[name], schema):
            return facts[name]
        return self._placeholder(schema, kinds) if required else _NOTHING

    def holds(self, schema: Any, depth: int = 0) -> bool:
        """Whether ``schema`` has a place for a fact (usage, seed or an image) inside."""
        if not isinstance(schema, Mapping) or depth > 8:
            return False
        key = id(schema)
        known = self._holds.get(key)
        if known is not None:
            return known[1]
        # The schema is kept with the answer, so its id cannot be reused by another while cached.
        self._holds[key] = (schema, False)  # no recursion through a cycle
        if _is_image_entry(schema):
            found = True
        else:
            parts: list[Any] = []
            for combinator in ("allOf", "anyOf", "oneOf"):
                parts.extend(schema.get(combinator) or [])
            if isinstance(schema.get("items"), Mapping):
                parts.append(schema["items"])
            properties = schema.get("properties")
            names: set[str] = set()
            if isinstance(properties, Mapping):
                parts.extend(properties.values())
                names = set(properties)
            found = bool(names & self._top_names) or any(
                self.holds(part, depth + 1) for part in parts
            )
        self._holds[key] = (schema, found)
        return found

    def _branch(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        branches = [
            b for b in schema.get("anyOf") or schema.get("oneOf") or [] if isinstance(b, Mapping)
        ]
        if not branches:
            return {}
        rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}

        def rank(branch: Mapping[str, Any]) -> tuple[bool, bool]:
            return (not self.holds(branch), _types(branch) == {"null"})

        chosen = min(branches, key=rank)  # min is stable: the first of the best
        return _flatten({**rest, "allOf": [chosen]}) if rest else chosen

    def _object(self, schema: Mapping[str, Any], image: dict[str, JSON] | None) -> JSON:
        properties: Mapping[str, Any] = schema.get("properties") or {}
        required = [name for name in schema.get("required") or [] if isinstance(name, str)]
        out: dict[str, JSON] = {}
        facts = image if image is not None else self.facts.top()
        for name, sub in properties.items():
            needed = name in required
            if not needed and name not in facts and not (image is None and self.holds(sub)):
                continue
            produced = self.value(sub, name, required=needed, image=image)
            if produced is not _NOTHING:
                out[name] = produced
        for name in required:
            if name not in out:
                out[name] = facts.get(name, "")
        return out

    def _array(
        self, schema: Mapping[str, Any], *, required: bool, image: dict[str, JSON] | None
    ) -> JSON:
        items = schema.get("items")
        if image is None and isinstance(items, Mapping) and _is_image_entry(_flatten(items)):
            entry = _flatten(items)
            return [self._object(entry, self.facts.image(i)) for i in range(len(self.facts.urls))]
        if not required and not (image is None and self.holds(schema)):
            return _NOTHING
        count = int(schema.get("minItems", 0))
        if count == 0:
            return []
        made = self.value(items, None, required=True, image=image)
        return [made] * count

    def _placeholder(self, schema: Mapping[str, Any], kinds: set[str]) -> JSON:
        if "const" in schema:
            return cast(JSON, schema["const"])
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            done = [v for v in enum if isinstance(v, str) and v.lower() in _DONE_WORDS]
            values = [v for v in enum if v is not None] or enum
            return cast(JSON, (done or values)[0])
        if "default" in schema:
            return cast(JSON, schema["default"])
        if kinds & {"integer", "number"}:
            return _number(schema, "integer" in kinds and "number" not in kinds)
        if "string" in kinds:
            return _string(schema, self.facts.urls)
        if "boolean" in kinds:
            return False
        if "object" in kinds:
            return self._object(schema, None)
        if "array" in kinds:
            return self._array(schema, required=True, image=None)
        return None


def _flatten(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """``schema`` with its ``allOf`` parts merged in (properties, required and the rest)."""
    parts = schema.get("allOf")
    if not isinstance(parts, list):
        return schema
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    for part in parts:
        if not isinstance(part, Mapping):
            continue
        part = _flatten(part)
        for key, value in part.items():
            if key == "properties" and isinstance(value, Mapping):
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required" and isinstance(value, list):
                merged["required"] = [*merged.get("required", []), *value]
            else:
                merged.setdefault(key, value)
    return merged


def _types(schema: Mapping[str, Any]) -> set[str]:
    kind = schema.get("type")
    if isinstance(kind, list):
        return {k for k in kind if isinstance(k, str)}
    return {kind} if isinstance(kind, str) else set()


def _is_image_entry(schema: Mapping[str, Any]) -> bool:
    properties = schema.get("properties")
    kinds = _types(schema)
    return (
        isinstance(properties, Mapping)
        and not _IMAGE_FIELDS.isdisjoint(properties)
        and (not kinds or "object" in kinds)
    )


def _fits(value: JSON, schema: Mapping[str, Any]) -> bool:
    """Whether a fact has a type the field allows (``credits_used`` declared a string: no)."""
    kinds = _types(schema)
    if not kinds:
        return True
    if value is None:
        return "null" in kinds
    if isinstance(value, bool):
        return "boolean" in kinds
    if isinstance(value, int):
        return bool(kinds & {"integer", "number"})
    if isinstance(value, float):
        return "number" in kinds or ("integer" in kinds and value.is_integer())
    if isinstance(value, str):
        return "string" in kinds
    return False


def _number(schema: Mapping[str, Any], integer: bool) -> int | float:
    low = schema.get("minimum")
    exclusive_low = schema.get("exclusiveMinimum")
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    step = schema.get("multipleOf")
    if isinstance(exclusive_low, int | float) and not isinstance(exclusive_low, bool):
        value: float = exclusive_low + (1 if integer else min(1, _gap(exclusive_low, high)))
    elif isinstance(low, int | float) and not isinstance(low, bool):
        value = low
    elif isinstance(high, int | float) and not isinstance(high, bool) and high < 0:
        value = high - (1 if "exclusiveMaximum" in schema else 0)
    else:
        value = 0
    if isinstance(step, int | float) and not isinstance(step, bool) and step > 0:
        value = math.ceil(value / step) * step
    if integer or float(value).is_integer():
        return math.ceil(value)
    return value


def _gap(low: float, high: Any) -> float:
    if isinstance(high, int | float) and not isinstance(high, bool) and high > low:
        return (high - low) / 2
    return 1


def _string(schema: Mapping[str, Any], urls: list[str]) -> str:
    formats = {
        "date-time": _PLACEHOLDER_TIME,
        "date": _PLACEHOLDER_TIME[:10],
        "time": _PLACEHOLDER_TIME[11:],
        "uuid": _PLACEHOLDER_UUID,
        "uri": urls[0] if urls else "http://localhost/",
        "uri-reference": urls[0] if urls else "http://localhost/",
        "email": "fake@example.com",
        "ipv4": "127.0.0.1",
        "ipv6": "::1",
        "hostname": "localhost",
    }
    text = formats.get(str(schema.get("format")), "")
    low = schema.get("minLength")
    if isinstance(low, int) and len(text) < low:
        text += "x" * (low - len(text))
    return text

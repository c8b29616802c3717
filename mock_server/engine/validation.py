"""Checking a JSON value against a JSON Schema and describing each problem the way zod does.

The real API is a NestJS service validating with zod, so its 400 bodies say things like
``Invalid enum value. Expected 'a' | 'b', received 'c'``. Every problem is returned as a
:class:`~mock_server.types.Violation`; nothing here decides status codes.

Two validators share the work. A compiled one (jsonschema-rs) answers "is this valid?" in well
under a microsecond, which is all an accepted request needs, and lists the errors of most
invalid ones, explained here from the schema and the value. The pure-Python ``jsonschema``
explains what the compiled errors cannot (keywords whose sentences need its own wording), and
decides whenever the compiled validator cannot take a body. ``jsonschema`` is imported on first
use, which keeps it out of the fake's start-up time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jsonschema_rs

from ..types import JSON, Violation
from .formats import compiled_formats, format_checker, zod_name

if TYPE_CHECKING:
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import ValidationError

_MAX_SHOWN_CHARS = 60

# Keywords on which jsonschema-rs and jsonschema are known to agree (the property-based test in
# tests/behaviour/test_equivalence.py checks it). A schema using any other keyword, or a
# multipleOf that is not a whole number (the two round 0.3 / 0.1 differently), is left to
# jsonschema alone, so the fast path can never accept a body that jsonschema would reject.
_FAST_KEYWORDS = frozenset(
    {
        "$schema", "title", "description", "default", "examples", "$comment", "format",
        "readOnly", "writeOnly", "type", "enum", "const", "properties", "required",
        "additionalProperties", "items", "additionalItems", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength",
        "minItems", "maxItems", "minProperties", "maxProperties", "anyOf", "oneOf", "allOf",
        "not",
    }
)  # fmt: skip
_SCHEMA_MAPS = ("properties",)
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf")
_SCHEMA_VALUED = ("additionalProperties", "items", "additionalItems", "not")


class SchemaValidator:
    """A compiled validator for one JSON Schema (draft 7, as produced by :mod:`mock_server.oas`)."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        try:
            compiled = jsonschema_rs.Draft7Validator(
                schema, validate_formats=True, formats=compiled_formats()
            )
        except jsonschema_rs.ValidationError:
            # Not a valid schema: let jsonschema raise its own SchemaError, as it always did.
            self._check_with_jsonschema(schema)
            compiled = None
        self._fast = compiled if compiled is not None and fast_path_agrees(schema) else None
        self._detailed: Draft7Validator | None = None

    def violations(self, instance: JSON) -> list[Violation]:
        """Every way ``instance`` breaks the schema, ordered by field."""
        if self._fast_accepts(instance):
            return []
        found: dict[tuple[tuple[str | int, ...], str], Violation] = {}
        errors = self._compiled_errors(instance)
        for error in errors if errors is not None else self._jsonschema().iter_errors(instance):
            for violation in _violations_of(error):
                found.setdefault((violation.path, violation.message), violation)
        return sorted(found.values(), key=lambda v: (list(map(str, v.path)), v.message))

    def _fast_accepts(self, instance: JSON) -> bool:
        if self._fast is None:
            return False
        try:
            return bool(self._fast.is_valid(instance))
        except Exception:
            # What the compiled validator cannot take (a lone surrogate in a string, say) is
            # left to jsonschema: the fast path only ever saves work, it never decides a "no".
            return False

    def _compiled_errors(self, instance: JSON) -> list[_CompiledError] | None:
        """The compiled validator's errors in jsonschema's shape, or None to ask jsonschema.

        jsonschema spends tens of microseconds walking an invalid body; jsonschema-rs finds the
        same errors in a few. Only keywords whose sentences are built from the schema and the
        value alone are taken from it; any other (``not``, a false schema, ...) words its own
        message, so then jsonschema explains the whole body, as it always did.
        """
        if self._fast is None:
            return None
        try:
            found = [_CompiledError.of(error, self.schema, instance) for error in
                     self._fast.iter_errors(instance)]  # fmt: skip
        except (_Unexplained, ValueError, KeyError, IndexError, TypeError):
            return None
        return found

    def _jsonschema(self) -> Draft7Validator:
        if self._detailed is None:
            from jsonschema import Draft7Validator

            self._detailed = Draft7Validator(self.schema, format_checker=format_checker())
        return self._detailed

    @staticmethod
    def _check_with_jsonschema(schema: dict[str, Any]) -> None:
        from jsonschema import Draft7Validator

        Draft7Validator.check_schema(schema)


class _Unexplained(Exception):
    """A compiled-validator error the zod wording cannot be built from."""


_COMPILED_KEYWORDS = frozenset(
    {
        "required", "type", "enum", "const", "minimum", "exclusiveMinimum", "maximum",
        "exclusiveMaximum", "minLength", "maxLength", "minItems", "maxItems", "minProperties",
        "maxProperties", "multipleOf", "additionalProperties", "anyOf", "oneOf", "format",
    }
)  # fmt: skip


class _CompiledError:
    """A jsonschema-rs error with the attributes of ``jsonschema``'s ValidationError that
    :func:`_violations_of` reads; paths, schema parts and the value come from the originals."""

    validator: str
    validator_value: Any
    schema: Any
    instance: Any
    absolute_path: tuple[str | int, ...]
    relative_path: tuple[str | int, ...]
    schema_path: list[str | int]  # relative to the parent union, as jsonschema has it
    context: list[_CompiledError]
    message = ""  # read only for keywords outside _COMPILED_KEYWORDS, never made into this

    @classmethod
    def of(
        cls,
        error: Any,
        root_schema: JSON,
        root_instance: JSON,
        parent_paths: tuple[int, int] = (0, 0),
    ) -> _CompiledError:
        keyword = error.kind.name
        schema_path = list(error.schema_path)
        if keyword not in _COMPILED_KEYWORDS or not schema_path or schema_path[-1] != keyword:
            raise _Unexplained(keyword)
        instance_path = tuple(error.instance_path)
        made = cls()
        made.validator = keyword
        made.schema = _walk(root_schema, schema_path[:-1])
        made.validator_value = made.schema[keyword]
        made.instance = _walk(root_instance, instance_path)
        if (
            keyword == "multipleOf"
            and isinstance(made.instance, float)
            and not made.instance % made.validator_value
        ):
            # jsonschema-rs refuses some large floats that are whole multiples (2.307022706696525e16
            # of 32): jsonschema, which judges as JavaScript does, then explains the body.
            raise _Unexplained(keyword)
        made.absolute_path = instance_path
        made.schema_path = schema_path[parent_paths[0] :]
        made.relative_path = instance_path[parent_paths[1] :]
        made.context = []
        if keyword in ("anyOf", "oneOf"):
            inner = (len(schema_path), len(instance_path))
            made.context = [
                cls.of(sub, root_schema, root_instance, inner)
                for branch in error.kind.context
                for sub in branch
            ]
        return made


def _walk(node: Any, path: Sequence[str | int]) -> Any:
    for step in path:
        node = node[step]
    return node


def fast_path_agrees(schema: JSON) -> bool:
    """Whether the compiled validator may be trusted to accept bodies for ``schema``."""
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, Mapping) or not set(schema) <= _FAST_KEYWORDS:
        return False
    multiple = schema.get("multipleOf")
    if multiple is not None and not (isinstance(multiple, int) and not isinstance(multiple, bool)):
        return False
    subschemas: list[JSON] = []
    for key in _SCHEMA_MAPS:
        if isinstance(schema.get(key), Mapping):
            subschemas.extend(schema[key].values())
    for key in _SCHEMA_LISTS:
        if isinstance(schema.get(key), list):
            subschemas.extend(schema[key])
    for key in _SCHEMA_VALUED:
        if key in schema:
            subschemas.append(schema[key])
    return all(fast_path_agrees(sub) for sub in subschemas)


def detail_lines(violations: Sequence[Violation]) -> list[str]:
    """One human line per violation: the field, then zod's sentence."""
    return [f"{violation.field}: {violation.message}" for violation in violations]


def zod_type(value: JSON) -> str:
    """The name zod gives to the type of a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def show(value: JSON) -> str:
    """A short, quoted rendering of a value for a message (strings in zod's single quotes)."""
    if isinstance(value, str):
        text = value if len(value) <= _MAX_SHOWN_CHARS else value[:_MAX_SHOWN_CHARS] + "…"
        return "'" + text.replace("\n", "\\n") + "'"
    # An int is written as json.dumps writes it, without its machinery (most values shown are).
    text = str(value) if type(value) is int else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _MAX_SHOWN_CHARS else text[:_MAX_SHOWN_CHARS] + "…"


def summarise(value: JSON) -> JSON:
    """``value`` as echoed in a violation: scalars as they are, big things cut down."""
    if isinstance(value, str) and len(value) > 200:
        return value[:200] + "…"
    if isinstance(value, list | dict):
        text = json.dumps(value, default=str)
        return value if len(text) <= 200 else f"<{zod_type(value)} of {len(value)} items>"
    return value


def _violations_of(error: ValidationError | _CompiledError) -> Iterable[Violation]:
    keyword = str(error.validator)
    path = tuple(error.absolute_path)
    expected: Any = error.validator_value
    instance: Any = error.instance
    schema: Any = error.schema

    def violation(code: str, message: str, at: tuple[str | int, ...] = path) -> Violation:
        if "received" not in message and keyword not in ("required",):
            message = f"{message}, received {show(instance)}"
        return Violation(at, code, message, expected, summarise(instance))

    if keyword == "required":
        properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
        for name in expected:
            if isinstance(instance, dict) and name not in instance:
                wanted = properties.get(name, {}).get("type") if properties else None
                yield Violation(
                    (*path, name), "invalid_type", "Required", expected=wanted, received=None
                )
    elif keyword == "type":
        wanted = " | ".join(expected) if isinstance(expected, list) else str(expected)
        yield violation("invalid_type", f"Expected {wanted}, received {zod_type(instance)}")
    elif keyword == "enum":
        choices = " | ".join(show(choice) for choice in expected)
        yield violation(
            "invalid_enum_value",
            f"Invalid enum value. Expected {choices}, received {show(instance)}",
        )
    elif keyword == "const":
        yield violation("invalid_literal", f"Invalid literal value, expected {show(expected)}")
    elif keyword in _BOUNDS:
        code, template = _BOUNDS[keyword]
        yield violation(code, template.format(expected))
    elif keyword == "multipleOf":
        yield violation("not_multiple_of", f"Number must be a multiple of {expected}")
    elif keyword == "pattern":
        yield violation("invalid_string", f"Invalid string: must match pattern /{expected}/")
    elif keyword == "format":
        yield violation("invalid_string", f"Invalid {zod_name(str(expected))}")
    elif keyword == "additionalProperties":
        extra = sorted(set(instance) - set(schema.get("properties", {})))
        keys = ", ".join(show(key) for key in extra)
        yield violation("unrecognized_keys", f"Unrecognized key(s) in object: {keys}")
    elif keyword in ("anyOf", "oneOf"):
        yield from _union_violations(error, violation)
    else:
        yield violation("custom", error.message)


_BOUNDS: dict[str, tuple[str, str]] = {
    "minimum": ("too_small", "Number must be greater than or equal to {}"),
    "exclusiveMinimum": ("too_small", "Number must be greater than {}"),
    "maximum": ("too_big", "Number must be less than or equal to {}"),
    "exclusiveMaximum": ("too_big", "Number must be less than {}"),
    "minLength": ("too_small", "String must contain at least {} character(s)"),
    "maxLength": ("too_big", "String must contain at most {} character(s)"),
    "minItems": ("too_small", "Array must contain at least {} element(s)"),
    "maxItems": ("too_big", "Array must contain at most {} element(s)"),
    "minProperties": ("too_small", "Object must contain at least {} key(s)"),
    "maxProperties": ("too_big", "Object must contain at most {} key(s)"),
}


def _union_violations(
    error: ValidationError | _CompiledError, violation: Any
) -> Iterable[Violation]:
    """Explain a failed ``anyOf``/``oneOf`` through the branch the value was meant for.

    zod itself says only "Invalid input"; naming the real problem (``width`` not a multiple
    of 32 inside the object branch of ``image_size``) is more use to a test author.
    """
    if str(error.validator) == "oneOf" and not error.context:
        yield violation("invalid_union", "Invalid input: matches more than one allowed schema")
        return
    branches: dict[int, list[Any]] = {}
    for sub in error.context or []:
        branches.setdefault(int(sub.schema_path[0]), []).append(sub)
    type_matched = [
        errors
        for errors in branches.values()
        if not any(sub.validator == "type" and not sub.relative_path for sub in errors)
    ]
    if len(type_matched) == 1:
        for sub in type_matched[0]:
            yield from _violations_of(sub)
        return
    kinds = []
    branches_declared: Any = error.validator_value
    for branch in branches_declared:
        kind = branch.get("type") if isinstance(branch, dict) else None
        if isinstance(kind, list):
            kinds.extend(kind)
        elif kind:
            kinds.append(kind)
    if kinds and not type_matched:
        wanted = " | ".join(dict.fromkeys(kinds))
        yield violation("invalid_union", f"Invalid input: expected {wanted}")
    else:
        yield violation("invalid_union", "Invalid input")

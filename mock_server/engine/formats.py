"""Which string ``format``s a schema enforces, and how each is decided.

The real API validates with zod, whose string checks (``url``, ``email``, ``uuid``, ``datetime``,
``ip``, ...) OpenAPI documents as the standard JSON Schema formats. Those are enforced here, each
decided by jsonschema-rs's check for that format: the same check schemathesis uses to tell valid
from invalid values when it generates the contract kit's requests, so the fake, the kit and the
generator agree. Any other format (``binary``, ``int32``, a vendor's own) is an annotation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import jsonschema_rs

if TYPE_CHECKING:
    from jsonschema import FormatChecker

CHECKED_FORMATS = frozenset(
    {
        "date", "date-time", "duration", "email", "hostname", "idn-email", "idn-hostname",
        "ipv4", "ipv6", "iri", "iri-reference", "json-pointer", "regex", "relative-json-pointer",
        "time", "uri", "uri-reference", "uri-template", "uuid",
    }
)  # fmt: skip
"""The formats enforced: every format with a standard definition."""

# jsonschema-rs's draft 7 validator checks these itself; the others are handed to it.
_DRAFT7_NATIVE = CHECKED_FORMATS - {"duration", "uuid"}

# What zod calls each format in its messages ("Invalid url").
_ZOD_NAMES = {
    "uri": "url",
    "uri-reference": "url",
    "iri": "url",
    "iri-reference": "url",
    "date-time": "datetime",
    "ipv4": "ip",
    "ipv6": "ip",
    "idn-email": "email",
}


@functools.cache
def format_check(name: str) -> Callable[[str], bool]:
    """Whether a string is of format ``name`` (a name outside :data:`CHECKED_FORMATS`: always)."""
    if name not in CHECKED_FORMATS:
        return _anything
    check = jsonschema_rs.Draft202012Validator({"format": name}, validate_formats=True).is_valid

    def checked(value: str) -> bool:
        try:
            return bool(check(value))
        except UnicodeEncodeError:
            return False  # a lone surrogate (legal in JSON text) is of no standard format

    return checked


def compiled_formats() -> dict[str, Callable[[str], bool]]:
    """The checks a compiled draft 7 validator needs beside its own (``formats=``)."""
    return {name: format_check(name) for name in CHECKED_FORMATS - _DRAFT7_NATIVE}


@functools.cache
def format_checker() -> FormatChecker:
    """A ``jsonschema`` format checker that decides exactly as :func:`format_check` does."""
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())
    for name in CHECKED_FORMATS:
        checker.checks(name)(_strings_only(format_check(name)))
    return checker


def zod_name(name: str) -> str:
    """The word zod's message uses for a format: ``uri`` is a ``url``."""
    return _ZOD_NAMES.get(name, name)


def _anything(value: str) -> bool:
    return True


def _strings_only(check: Callable[[str], bool]) -> Callable[[object], bool]:
    # jsonschema asks about every instance; a format says nothing about non-strings.
    return lambda value: not isinstance(value, str) or check(value)

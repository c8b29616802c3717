"""Showing what a client sent, whatever it sent: decoding that never raises, and redaction.

The journal keeps raw bytes; these functions turn them into values that are safe to show, compare
and serialise as JSON: no NaN or Infinity (kept as their text), no lone surrogates (escaped as
``\\ud800`` text), nothing nested deeper than :data:`DISPLAY_DEPTH`, and credentials replaced by
:data:`REDACTED`.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable

from ..types import JSON

__all__ = [
    "CREDENTIAL_HEADERS",
    "DISPLAY_DEPTH",
    "REDACTED",
    "display_json",
    "is_secret_field",
    "redact_header",
    "safe_text",
]

REDACTED = "<redacted>"
DISPLAY_DEPTH = 64
"""Containers deeper than this are shown as :data:`TOO_DEEP`."""
TOO_DEEP = f"<nested deeper than {DISPLAY_DEPTH} levels>"
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie"}
)
"""Header names whose values the journal never shows."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WORDS = re.compile(r"[^a-z0-9]+")
_SECRET_WORDS = frozenset(
    {"key", "apikey", "secret", "token", "password", "passwd", "credential", "credentials"}
)
_SECRET_PAIRS = frozenset({("api", "key"), ("access", "key"), ("private", "key")})


def _keep_literal(literal: str) -> str:
    return literal  # NaN, Infinity, -Infinity: shown as the text that was sent


def _finite_or_text(literal: str) -> float | str:
    number = float(literal)
    return number if math.isfinite(number) else literal


_decoder = json.JSONDecoder(parse_constant=_keep_literal, parse_float=_finite_or_text)


def display_json(raw: bytes, secret_fields: bool = True) -> JSON:
    """``raw`` decoded for showing: JSON when it is JSON, else the text; None when empty.

    Never raises. With ``secret_fields``, values of fields named like credentials are redacted.
    """
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    try:
        value = _decoder.decode(text.removeprefix("\ufeff"))
    except (ValueError, RecursionError):
        return safe_text(text)
    return _clean(value, DISPLAY_DEPTH, secret_fields)


def safe_text(text: str) -> str:
    """``text`` with lone surrogates written as ``\\udXXX`` escapes (so it encodes as UTF-8)."""
    if text.isascii():
        return text
    return _SURROGATE.sub(lambda found: f"\\u{ord(found.group()):04x}", text)


def _clean(value: JSON, depth: int, secret_fields: bool) -> JSON:
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        if depth <= 0:
            return TOO_DEEP
        return {
            safe_text(name): REDACTED
            if secret_fields and is_secret_field(name) and item is not None
            else _clean(item, depth - 1, secret_fields)
            for name, item in value.items()
        }
    if isinstance(value, list):
        if depth <= 0:
            return TOO_DEEP
        return [_clean(item, depth - 1, secret_fields) for item in value]
    return value


def is_secret_field(name: str) -> bool:
    """True for body field names like ``api_key``, ``apiKey``, ``client_secret``, ``token``."""
    words = [word for word in _WORDS.split(_CAMEL.sub("_", name).lower()) if word]
    if not words:
        return False
    return words[-1] in _SECRET_WORDS or any(
        pair in _SECRET_PAIRS for pair in itertools.pairwise(words)
    )


def redact_header(name: str, value: str, extra: Iterable[str] = ()) -> str:
    """``value`` as shown for header ``name`` (lower case): credentials keep only their scheme."""
    if name not in CREDENTIAL_HEADERS and name not in extra:
        return value
    if name in ("authorization", "proxy-authorization"):
        scheme, _, token = value.strip().partition(" ")
        return f"{scheme} {REDACTED}" if token else REDACTED
    return REDACTED

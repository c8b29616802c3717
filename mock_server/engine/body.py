"""Turning raw request bytes into a JSON value, or an :class:`ApiError` that says what is wrong."""

from __future__ import annotations

import json
import math

from ..errors import ApiError
from ..types import JSON

MAX_NESTING = 32
MAX_INTEGER_DIGITS = 308


def check_content_type(content_type: str | None) -> None:
    """Only JSON bodies are accepted (``application/json`` or ``application/*+json``), in UTF-8."""
    if not content_type:
        raise ApiError(
            415,
            "Unsupported Media Type: Content-Type header is missing, expected 'application/json'",
        )
    media_type, _, params = content_type.partition(";")
    media_type = media_type.strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise ApiError(
            415,
            f"Unsupported Media Type: Content-Type {media_type!r} is not supported, "
            "expected 'application/json'",
        )
    for param in params.split(";"):
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            raise ApiError(
                415, f"Unsupported Media Type: charset {charset!r} is not supported, expected utf-8"
            )


def parse_json_body(raw: bytes) -> JSON:
    """Decode a UTF-8 JSON document, refusing what JSON does not allow (NaN, Infinity, 1e999)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ApiError(
            400, f"Body is not valid UTF-8: {error.reason} at byte {error.start}"
        ) from None
    text = text.removeprefix("\ufeff")
    if not text or text.isspace():
        raise ApiError(400, "Body is empty, expected a JSON object")
    try:
        if text.startswith("\ufeff"):  # a second BOM
            raise ValueError("Unexpected UTF-8 BOM (decode using utf-8-sig) at line 1 column 1")
        value = _decoder.decode(text)
    except RecursionError:
        raise ApiError(400, f"Body is nested too deeply (more than {MAX_NESTING} levels)") from None
    except json.JSONDecodeError as error:
        raise ApiError(
            400, f"Body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except ValueError as error:  # from the hooks below, or int() refusing a huge literal
        raise ApiError(400, f"Body is not valid JSON: {error}") from None
    # Each level of nesting opens with a bracket; too few brackets in the text cannot nest deeply.
    if raw.count(b"{") + raw.count(b"[") > MAX_NESTING and _depth_exceeds(value, MAX_NESTING):
        raise ApiError(400, f"Body is nested too deeply (more than {MAX_NESTING} levels)")
    return value


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise ValueError(f"number {literal[:40]!s} is out of range")
    return number


def _finite_int(literal: str) -> int:
    # Beyond this a JavaScript server (the real API) reads Infinity and rejects the number.
    if len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"number {literal[:40]}… ({len(literal)} digits) is out of range")
    return int(literal)


_decoder = json.JSONDecoder(
    parse_constant=_reject_constant, parse_float=_finite_float, parse_int=_finite_int
)


def _depth_exceeds(value: JSON, limit: int) -> bool:
    """Whether a list or object lies deeper than ``limit`` (the top level is depth 1)."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 1
    while level:
        if depth > limit:
            return True
        below = []
        for node in level:
            for child in node.values() if isinstance(node, dict) else node:
                if isinstance(child, dict | list):
                    below.append(child)
        level = below
        depth += 1
    return False

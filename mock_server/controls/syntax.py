"""The token syntax shared by faults and latency: ``name=value, flag, name=value``."""

from __future__ import annotations

import math
from collections.abc import Collection
from typing import cast

from ..errors import ConfigError


def parse_tokens(text: str, *, only: Collection[str] | None = None) -> dict[str, str | None]:
    """``"a=1, b, c=x"`` as ``{"a": "1", "b": None, "c": "x"}``; names in lower case.

    With ``only``, other names are left out (and an empty result is allowed).
    """
    tokens: dict[str, str | None] = {}
    for part in text.split(","):
        # RFC 7240 preferences may carry ";"-parameters; none of ours do.
        token = part.split(";", 1)[0].strip()
        if not token:
            continue
        name, equals, value = token.partition("=")
        name = name.strip().lower().replace("_", "-")
        if only is not None and name not in only:
            continue
        tokens[name] = value.strip().strip('"') if equals else None
    if not tokens and only is None:
        raise ConfigError(f"{text!r} names nothing")
    return tokens


def integer(name: str, value: str | None) -> int:
    try:
        return int(cast(str, value))
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} is not a whole number") from None


def number(name: str, value: str | None) -> float:
    try:
        number = float(cast(str, value))
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r} is not a number") from None
    if not math.isfinite(number):
        raise ConfigError(f"{name}={value!r} is not a finite number")
    return number


def is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def show(value: float) -> str:
    return f"{value:g}"

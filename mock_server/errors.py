"""The fake's exceptions and the AI/ML API's error envelope."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from .types import JSON, Violation

# Messages the real API sends for each status (see the project's specs).
STATUS_MESSAGES: dict[int, str] = {
    400: "Body validation error",
    401: (
        "This request requires a valid API key. "
        "You can create a new API key on the Billing page: https://aimlapi.com/app/keys"
    ),
    403: (
        "You've run out of credits. Please top up your balance or update your payment method "
        "to continue: https://aimlapi.com/app/billing/"
    ),
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    429: "Too Many Requests",
    500: "Internal server error",
    502: "Bad Gateway",
    503: "Service unavailable",
    504: "Generation timeout",
}


class SpecError(Exception):
    """An OpenAPI document that cannot be loaded; names the file and the problem."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


class CassetteError(Exception):
    """A cassette that cannot be read or written; the message names the file and the entry."""


class ConfigError(ValueError):
    """A setting (CLI option or environment variable) with a value the fake cannot use."""


class ApiError(Exception):
    """Raised by a stage of request handling to answer with the error envelope."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        violations: Sequence[Violation] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.message = message if message is not None else STATUS_MESSAGES.get(status, "Error")
        self.violations = tuple(violations)
        self.headers = headers or {}
        super().__init__(self.message)


def error_envelope(
    status: int,
    message: str,
    path: str,
    request_id: str,
    violations: Sequence[Violation] = (),
) -> dict[str, JSON]:
    """The body of every error the fake sends: the real API's envelope.

    ``violations`` (when there are any) is the fake's own addition: the same problems as the
    message's detail lines, as data a test can assert on.
    """
    body: dict[str, JSON] = {
        "message": message,
        "path": path,
        "requestId": request_id,
        "statusCode": status,
        "timestamp": _now(),
    }
    if violations:
        body["violations"] = [violation.as_json() for violation in violations]
    return body


def _now() -> str:
    """The time as the API writes it, ``2026-11-21T07:52:03.123Z``; the seconds part is made
    once a second, not for every error."""
    now = time.time()
    seconds = int(now)
    if _this_second[0] != seconds:
        stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _this_second[:] = [seconds, stamp]
    return f"{_this_second[1]}.{int((now - seconds) * 1000):03d}Z"


_this_second: list[int | str] = [-1, ""]

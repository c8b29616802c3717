"""This run's requests as the API's ``GET /v2/logs`` lists them: rows, filters, pages, and the
400 answers for bad queries.

Rows are kept newest last in a bounded :class:`UsageLog` and listed newest first. Failed
requests are listed too, at zero cost. The query rules follow the documentation: a window of
either ``period`` (``24h``, ``7d``) or both ``start`` and ``end`` (ISO 8601, UTC when no offset),
never both or neither, at most 92 days; ``model`` (repeatable up to 50 times, exact match on
``source/alias`` or the bare alias; ``a,b`` is one value and matches nothing); ``status``
(``succeeded`` or ``failed``, repeatable, a comma is an error); ``limit`` 1-100 (default 50);
``offset`` from 0. Parameters the fake does not know (``key_prefix`` among them) are ignored.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

from ..engine.synthesis import usd_spent
from ..errors import ApiError
from ..types import JSON, Violation

__all__ = ["MAX_WINDOW_DAYS", "LogEntry", "UsageLog", "logs_page"]

MAX_WINDOW_DAYS = 92
MAX_MODELS = 50
_PERIOD = re.compile(r"([1-9][0-9]{0,6})([hd])")
_SINGLE = ("period", "start", "end", "limit", "offset")


class LogEntry(NamedTuple):
    """One request, as the logs list it (a tuple: one is made for every generation)."""

    created: float  # seconds since the epoch
    model: str
    status: Literal["succeeded", "failed"]
    credits: int
    inference_id: str
    request_id: str | None = None
    client_request_id: str | None = None
    origin: Literal["api", "playground"] = "api"

    def as_json(self) -> dict[str, JSON]:
        """The row in the documented shape; a failed request costs nothing."""
        credits = self.credits if self.status == "succeeded" else 0
        return {
            "created": _iso(datetime.fromtimestamp(self.created, UTC)),
            "status": self.status,
            "origin": self.origin,
            "model": self.model,
            "cost": {"usd": usd_spent(credits), "credits": credits},
            "tokens": {"input": 0, "output": 0, "total": 0},
            "request_id": self.request_id,
            "inference_id": self.inference_id,
            "client_request_id": self.client_request_id,
        }


class UsageLog:
    """The last ``max_entries`` requests of this run; thread-safe."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=max_entries)
        self._lock = threading.Lock()

    def record(self, entry: LogEntry) -> None:
        with self._lock:
            self._entries.append(entry)

    def newest_first(self) -> list[LogEntry]:
        with self._lock:
            return list(reversed(self._entries))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def logs_page(
    entries: Iterable[LogEntry], query: Mapping[str, Sequence[str]], now: datetime
) -> dict[str, JSON]:
    """The body of ``GET /v2/logs`` for ``query`` (each parameter's values in order, as a
    multi-dict gives them) over ``entries`` (newest first); raises :class:`ApiError` 400 naming
    every problem with the query."""
    problems: list[Violation] = []
    for name in _SINGLE:
        if len(query.get(name, ())) > 1:
            problems.append(_problem(name, "Expected one value, received several", query[name]))
    window = _window(query, now, problems)
    models = list(query.get("model", ()))
    if len(models) > MAX_MODELS:
        problems.append(
            _problem("model", f"At most {MAX_MODELS} models may be given, received {len(models)}")
        )
    statuses = list(query.get("status", ()))
    for status in statuses:
        if status not in ("succeeded", "failed"):
            problems.append(
                _problem(
                    "status",
                    f"Invalid enum value. Expected 'succeeded' | 'failed', received '{status}'"
                    + (" (repeat the parameter for several values)" if "," in status else ""),
                    status,
                )
            )
    limit = _whole(query, "limit", 50, 1, 100, problems)
    offset = _whole(query, "offset", 0, 0, None, problems)
    if problems:
        message = "\n".join(
            ["Query validation error", *(f"{p.field}: {p.message}" for p in problems)]
        )
        raise ApiError(400, message, problems)
    assert window is not None
    start, end = window
    wanted = set(models)
    rows = [
        entry
        for entry in entries
        if start <= datetime.fromtimestamp(entry.created, UTC) <= end
        and (not wanted or entry.model in wanted or entry.model.rpartition("/")[2] in wanted)
        and (not statuses or entry.status in statuses)
    ]
    page = rows[offset : offset + limit]
    return {
        "data": [entry.as_json() for entry in page],
        "pagination": {
            "limit": limit,
            "offset": offset,
            "total": len(rows),
            "has_more": offset + len(page) < len(rows),
        },
    }


def _window(
    query: Mapping[str, Sequence[str]], now: datetime, problems: list[Violation]
) -> tuple[datetime, datetime] | None:
    period = query.get("period", ())
    start_text, end_text = query.get("start", ()), query.get("end", ())
    if period and (start_text or end_text):
        problems.append(_problem("period", "Give either 'period' or 'start' and 'end', not both"))
        return None
    if period:
        match = _PERIOD.fullmatch(period[0])
        if match is None:
            problems.append(
                _problem(
                    "period",
                    "Expected a positive whole number followed by 'h' or 'd' (such as '24h' or "
                    f"'7d'), received '{period[0]}'",
                    period[0],
                )
            )
            return None
        amount = int(match.group(1))
        span = timedelta(hours=amount) if match.group(2) == "h" else timedelta(days=amount)
        if span > timedelta(days=MAX_WINDOW_DAYS):
            problems.append(_too_long("period", period[0]))
            return None
        return now - span, now
    if not start_text and not end_text:
        problems.append(
            _problem("period", "Required: give 'period' (such as '24h') or both 'start' and 'end'")
        )
        return None
    if not start_text or not end_text:
        missing = "start" if not start_text else "end"
        problems.append(_problem(missing, "Required with 'start' and 'end' given together"))
        return None
    start = _moment("start", start_text[0], problems)
    end = _moment("end", end_text[0], problems)
    if start is None or end is None:
        return None
    if end < start:
        problems.append(_problem("end", f"Must not be before start ('{start_text[0]}')"))
        return None
    if end - start > timedelta(days=MAX_WINDOW_DAYS):
        problems.append(_too_long("end", end_text[0]))
        return None
    return start, end


def _moment(name: str, text: str, problems: list[Violation]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        problems.append(
            _problem(name, f"Expected an ISO 8601 date or date-time, received '{text}'", text)
        )
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # 0001-01-01 at +14:00 is before the first day a date can hold
        problems.append(_problem(name, f"Date out of range, received '{text}'", text))
        return None


def _whole(
    query: Mapping[str, Sequence[str]],
    name: str,
    default: int,
    low: int,
    high: int | None,
    problems: list[Violation],
) -> int:
    values = query.get(name, ())
    if not values:
        return default
    text = values[0]
    if not re.fullmatch(r"[0-9]{1,9}", text):
        problems.append(_problem(name, f"Expected a whole number, received '{text}'", text))
        return default
    value = int(text)
    if value < low:
        problems.append(
            _problem(
                name, f"Number must be greater than or equal to {low}, received {value}", value
            )
        )
    elif high is not None and value > high:
        problems.append(
            _problem(name, f"Number must be less than or equal to {high}, received {value}", value)
        )
    return value


def _too_long(name: str, value: str) -> Violation:
    return _problem(name, f"The window may span at most {MAX_WINDOW_DAYS} days", value)


def _problem(name: str, message: str, received: JSON = None) -> Violation:
    return Violation((name,), "invalid_query", message, None, received)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

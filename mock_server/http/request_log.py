"""What a person running ``aimlapi-mock serve`` sees: a compact line per request, in batches.

uvicorn's access log formats and writes a line for each request as it happens, which costs the
fake about 40 % of its throughput. This log is fed from the journal entries the pipeline writes
(a list append per request) and written out a few times a second: a line per request while they
come slowly, and a one-line summary per interval once more arrive than a person could read.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections import Counter
from typing import TextIO

from ..controls.journal import JournalEntry

FLUSH_SECONDS = 0.25
LINES_PER_FLUSH = 10
ENV_VARIABLE = "AIMLAPI_MOCK_REQUEST_LOG"


class RequestLog:
    """An observer of journal entries that prints them to ``stream`` in batches."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._pending: list[JournalEntry] = []
        self._scheduled = False

    @classmethod
    def from_env(cls) -> tuple[RequestLog, ...]:
        """The log for a worker process: on unless the CLI turned it off."""
        return () if os.environ.get(ENV_VARIABLE) == "off" else (cls(),)

    def __call__(self, entry: JournalEntry) -> None:
        self._pending.append(entry)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Write what arrived since the last flush."""
        pending, self._pending, self._scheduled = self._pending, [], False
        if pending:
            (self.stream or sys.stderr).write("".join(self.lines(pending)))
            (self.stream or sys.stderr).flush()

    @staticmethod
    def lines(entries: list[JournalEntry]) -> list[str]:
        """A line per entry, or, past :data:`LINES_PER_FLUSH`, the first ones and a summary."""
        shown = entries if len(entries) <= LINES_PER_FLUSH else entries[: LINES_PER_FLUSH - 1]
        lines = [_line(entry) for entry in shown]
        rest = entries[len(shown) :]
        if rest:
            statuses = Counter(str(e.status) if e.status is not None else "closed" for e in rest)
            counts = ", ".join(f"{n:,} × {status}" for status, n in sorted(statuses.items()))
            lines.append(f"{_clock(rest[-1].received_at)} … {len(rest):,} more ({counts})\n")
        return lines


def _line(entry: JournalEntry) -> str:
    status = entry.status if entry.status is not None else "---"
    model = f" {entry.model}" if entry.is_generation and entry.model else ""
    fault = f" [fault: {entry.fault}]" if entry.fault else ""
    milliseconds = entry.duration * 1000
    return (
        f"{_clock(entry.received_at)} {entry.method} {entry.path} {status}{model} "
        f"{milliseconds:.1f} ms{fault}\n"
    )


def _clock(timestamp: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(timestamp))

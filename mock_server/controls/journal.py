"""The journal: every request the fake received and what it answered, with assertion helpers.

Recording is cheap on purpose (an append of raw bytes); decoding the body, the headers and the
answer happens when a test looks at an entry. A request answered in one go (no fault injected)
is recorded once answered, as a plain tuple that becomes a :class:`JournalEntry` when read.
Headers are kept packed into one bytes object: a server keeping a thousand requests' header lists
(a list, a tuple per header) runs measurably slower, as each new request's objects land among
the old ones.
"""

from __future__ import annotations

import difflib
import json
import pprint
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from ..types import JSON, Violation

__all__ = ["Journal", "JournalAssertionError", "JournalEntry"]

REDACTED = "<redacted>"
Headers = bytes | list[tuple[bytes, bytes]]
"""ASGI header pairs, or :func:`_pack`'s bytes for them."""
Exchange = tuple[Any, ...]
"""What :meth:`Journal.record_exchange` keeps: received_at, method, path, query, packed headers,
is_generation, raw body, status, packed response headers, response body or None, finished_at."""
_MISSING = object()


class JournalAssertionError(AssertionError):
    """A journal assertion failed; the message shows what the fake received instead."""


class JournalEntry:
    """One request the fake received, and its answer as sent.

    ``status`` is None while the answer is pending, or when a transport fault closed the
    connection before any answer. ``fault`` names the fault injected into the answer, if any;
    ``error`` is an exception raised inside the fake while serving the request.
    """

    __slots__ = (
        "_body",
        "_headers",
        "_own_answer",
        "_raw_headers",
        "_raw_query",
        "_response_chunks",
        "_response_headers",
        "duration",
        "error",
        "fault",
        "is_generation",
        "method",
        "path",
        "raw_body",
        "received_at",
        "status",
    )

    def __init__(
        self,
        method: str,
        path: str,
        raw_query: bytes,
        raw_headers: list[tuple[bytes, bytes]],
        is_generation: bool,
    ) -> None:
        self.method = method
        self.path = path
        self._raw_query = raw_query
        self.is_generation = is_generation
        """True for requests to an API operation (not image downloads or unknown paths)."""
        self.received_at = time.time()
        self.raw_body = b""
        self.status: int | None = None
        self.fault: str | None = None
        self.error: BaseException | None = None
        self.duration: float | None = None
        """Seconds from receiving the request to handing over the last byte of the answer."""
        self._raw_headers = _pack(raw_headers)
        self._response_headers: Headers = b""
        self._response_chunks: list[bytes] = []
        self._own_answer: bytes | None = None
        self._headers: dict[str, str] | None = None
        self._body: JSON = _MISSING

    # Written by the fake while it answers -------------------------------------------------

    def response_started(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """Note the status; returns whether the body is worth keeping (JSON, not images)."""
        self.status = status
        headers = list(headers)
        self._response_headers = _pack(headers)
        for name, value in headers:
            if name == b"content-type":
                return b"json" in value
        return False

    @classmethod
    def _of_exchange(cls, exchange: Exchange) -> JournalEntry:
        """The entry for a request recorded by :meth:`Journal.record_exchange`."""
        received_at, method, path, query, headers, is_generation, raw_body = exchange[:7]
        status, response_headers, response_body, finished_at = exchange[7:]
        entry = cls(method, path, query, [], is_generation)
        entry.received_at, entry.raw_body, entry.status = received_at, raw_body, status
        entry.duration = finished_at - received_at
        entry._raw_headers, entry._response_headers = headers, response_headers
        if response_body is not None:
            entry._response_chunks.append(response_body)
        return entry

    def response_chunk(self, chunk: bytes) -> None:
        self._response_chunks.append(chunk)

    def replaced_answer(self, body: bytes) -> None:
        """Keep the fake's own answer when a fault replaced it (its violations still count)."""
        self._own_answer = body
        self._response_chunks = []

    def finished(self) -> None:
        self.duration = time.time() - self.received_at

    # Read by tests -----------------------------------------------------------------------

    @property
    def query(self) -> str:
        """The query string, as sent (without ``?``)."""
        return self._raw_query.decode("latin-1")

    @property
    def time(self) -> datetime:
        """When the request arrived (UTC)."""
        return datetime.fromtimestamp(self.received_at, UTC)

    @property
    def headers(self) -> dict[str, str]:
        """Request headers, names in lower case; the ``Authorization`` value is redacted."""
        if self._headers is None:
            self._headers = self._decoded_headers()
        return self._headers

    def _decoded_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for raw_name, raw_value in _unpack(self._raw_headers):
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            if name == "authorization":
                scheme, _, token = value.strip().partition(" ")
                value = f"{scheme} {REDACTED}" if token else REDACTED
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return headers

    @property
    def body(self) -> JSON:
        """The request body decoded as JSON; None when empty, the text when not JSON."""
        if self._body is _MISSING:
            self._body = _decode(self.raw_body)
        return self._body

    @property
    def model(self) -> str | None:
        body = self.body
        model = body.get("model") if isinstance(body, dict) else None
        return model if isinstance(model, str) else None

    @property
    def response_headers(self) -> dict[str, str]:
        return {
            n.decode("latin-1"): v.decode("latin-1") for n, v in _unpack(self._response_headers)
        }

    @property
    def request_id(self) -> str | None:
        return self.response_headers.get("x-request-id")

    @property
    def response_body(self) -> JSON:
        """The JSON answer as sent (None for images, or when nothing was sent)."""
        return _decode(b"".join(self._response_chunks))

    @property
    def violations(self) -> list[Violation]:
        """What the fake found wrong with the body, even when a fault replaced its answer."""
        answer = (
            self._own_answer if self._own_answer is not None else b"".join(self._response_chunks)
        )
        found = _decode(answer)
        if isinstance(found, dict) and not isinstance(found.get("violations"), list):
            found = found.get("error")  # an envelope that nests its details
        items = found.get("violations") if isinstance(found, dict) else None
        return [
            Violation(
                tuple(item.get("path", ())),
                str(item.get("code", "")),
                str(item.get("message", "")),
                item.get("expected"),
                item.get("received"),
            )
            for item in (items if isinstance(items, list) else [])
            if isinstance(item, dict)
        ]

    @property
    def image_urls(self) -> list[str]:
        """The image URLs the answer gave the client."""
        body = self.response_body
        data = body.get("data") if isinstance(body, dict) else None
        if self.status is None or not 200 <= self.status < 300 or not isinstance(data, list):
            return []
        return [item["url"] for item in data if isinstance(item, dict) and item.get("url")]

    def as_json(self) -> dict[str, JSON]:
        """The entry as served by ``GET /__mock/requests``."""
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "time": self.time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "headers": self.headers,
            "body": self.body,
            "model": self.model,
            "is_generation": self.is_generation,
            "status": self.status,
            "request_id": self.request_id,
            "violations": [violation.as_json() for violation in self.violations],
            "image_urls": self.image_urls,
            "fault": self.fault,
            "error": repr(self.error) if self.error is not None else None,
            "duration": self.duration,
        }

    def __repr__(self) -> str:
        status = self.status if self.status is not None else "no answer"
        return f"<JournalEntry {self.method} {self.path} {status} {_short(self.body)}>"


class Journal:
    """Every request the fake received, oldest first, up to ``limit`` (0 turns recording off).

    Exceptions raised inside the fake while serving are kept in ``errors``.
    """

    def __init__(self, limit: int = 1000) -> None:
        self.limit = limit
        self._entries: deque[JournalEntry | Exchange] = deque(maxlen=limit or 1)
        self._lock = threading.Lock()
        self.errors: list[BaseException] = []

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    def record(self, entry: JournalEntry) -> None:
        if self.limit:
            with self._lock:
                self._entries.append(entry)

    def record_exchange(
        self,
        received_at: float,
        request: tuple[str, str, bytes, list[tuple[bytes, bytes]], bool, bytes],
        answer: tuple[int, list[tuple[bytes, bytes]], bytes | None],
    ) -> None:
        """Record a request answered in one go, once answered (cheaper than a JournalEntry).

        ``request`` is method, path, query, headers, whether it is a generation, and body;
        ``answer`` is status, headers and body (None when not worth keeping, as for an image).
        """
        if self.limit:
            method, path, query, headers, is_generation, body = request
            status, answer_headers, answer_body = answer
            exchange = (received_at, method, path, query, _pack(headers), is_generation, body,
                        status, _pack(answer_headers), answer_body, time.time())  # fmt: skip
            with self._lock:
                self._entries.append(exchange)

    def clear(self) -> None:
        """Forget every entry and error."""
        with self._lock:
            self._entries.clear()
            self.errors.clear()

    @property
    def entries(self) -> list[JournalEntry]:
        """A snapshot of every entry, oldest first."""
        with self._lock:
            entries = [
                item if isinstance(item, JournalEntry) else JournalEntry._of_exchange(item)
                for item in self._entries
            ]
            # Kept as entries from now on, so each request has one JournalEntry however often read.
            self._entries.clear()
            self._entries.extend(entries)
            return entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[JournalEntry]:
        return iter(self.entries)

    def __getitem__(self, index: int) -> JournalEntry:
        return self.entries[index]

    # Queries ------------------------------------------------------------------------------

    def filter(
        self,
        *,
        model: str | None = None,
        path: str | None = None,
        method: str | None = None,
        status: int | None = None,
        generations: bool = False,
    ) -> list[JournalEntry]:
        """Entries matching every criterion given."""
        return [
            entry
            for entry in self.entries
            if (model is None or entry.model == model)
            and (path is None or entry.path == path)
            and (method is None or entry.method == method.upper())
            and (status is None or entry.status == status)
            and (not generations or entry.is_generation)
        ]

    def generations(self, model: str | None = None) -> list[JournalEntry]:
        """Requests to the API's operations (optionally for one model), oldest first."""
        return self.filter(model=model, generations=True)

    @property
    def last(self) -> JournalEntry:
        """The latest request of any kind."""
        __tracebackhide__ = True  # pytest shows the caller, not this helper
        entries = self.entries
        if not entries:
            raise JournalAssertionError("aimlapi-mock received no request")
        return entries[-1]

    @property
    def last_generation(self) -> JournalEntry:
        """The latest request to an API operation."""
        __tracebackhide__ = True  # pytest shows the caller, not this helper
        generations = self.generations()
        if not generations:
            raise JournalAssertionError(
                "aimlapi-mock received no generation request" + _also_received(self.entries)
            )
        return generations[-1]

    # Assertions ---------------------------------------------------------------------------

    def assert_called(self, times: int | None = None, *, model: str | None = None) -> None:
        """At least one generation request arrived (exactly ``times``, when given)."""
        __tracebackhide__ = True  # pytest shows the caller, not this helper
        found = self.generations(model)
        wanted = "" if model is None else f" for {model!r}"
        if (times is None and not found) or (times is not None and len(found) != times):
            expected = "at least one" if times is None else str(times)
            raise JournalAssertionError(
                f"expected {expected} generation request{'' if times in (None, 1) else 's'}"
                f"{wanted}, "
                f"aimlapi-mock received {len(found)}" + _listing(found)
            )

    def assert_not_called(self) -> None:
        """No generation request arrived."""
        __tracebackhide__ = True  # pytest shows the caller, not this helper
        self.assert_called(times=0)

    def assert_called_with(self, **fields: JSON) -> JournalEntry:
        """The latest generation request's body has these fields with these values.

        Only the fields named are compared (``unittest.mock.ANY`` matches anything).
        """
        __tracebackhide__ = True  # pytest shows the caller, not this helper
        entry = self.last_generation
        problems = _mismatches(fields, entry.body)
        if problems:
            generations = self.generations()
            raise JournalAssertionError(
                f"the last generation request (#{len(generations)}: {entry.method} {entry.path}) "
                "does not match:\n" + "\n".join(problems) + f"\nreceived body: {_dump(entry.body)}"
            )
        return entry

    def assert_called_once_with(self, **fields: JSON) -> JournalEntry:
        """Exactly one generation request arrived, and its body has these fields."""
        __tracebackhide__ = True  # pytest shows the caller, not this helper
        self.assert_called(times=1)
        return self.assert_called_with(**fields)

    def assert_any_call(self, **fields: JSON) -> JournalEntry:
        """Some generation request's body has these fields; returns the latest such."""
        __tracebackhide__ = True  # pytest shows the caller, not this helper
        generations = self.generations()
        for entry in reversed(generations):
            if not _mismatches(fields, entry.body):
                return entry
        wanted = ", ".join(f"{name}={value!r}" for name, value in fields.items())
        details = [
            f"  #{number} {entry.method} {entry.path}:\n"
            + "\n".join("  " + line for line in _mismatches(fields, entry.body))
            for number, entry in enumerate(generations, 1)
        ]
        raise JournalAssertionError(
            f"no generation request has {wanted}; aimlapi-mock received {len(generations)}"
            + (":\n" + "\n".join(details) if details else "")
        )


def _mismatches(expected: dict[str, JSON], body: JSON) -> list[str]:
    """One line (plus a diff for long values) per field of ``expected`` that ``body`` lacks."""
    received = body if isinstance(body, dict) else {}
    lines = []
    for name, want in expected.items():
        got = received.get(name, _MISSING)
        if got is not _MISSING and want == got:
            continue
        if got is _MISSING:
            lines.append(f"  {name}: expected {want!r}, but the field is absent")
            continue
        lines.append(f"  {name}: expected {want!r}, received {got!r}")
        wide = pprint.pformat(want, width=60), pprint.pformat(got, width=60)
        if max(len(text) for text in wide) > 40 and isinstance(want, type(got)):
            diff = difflib.ndiff(wide[0].splitlines(), wide[1].splitlines())
            lines.append("    (- expected, + received)")
            lines.extend(f"    {line}" for line in diff if not line.startswith("?"))
    return lines


def _decode(raw: bytes) -> JSON:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", errors="replace")


def _dump(value: JSON) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=repr)


def _short(value: JSON, limit: int = 80) -> str:
    text = _dump(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _listing(entries: list[JournalEntry]) -> str:
    lines = [
        f"  #{number} {entry.method} {entry.path} -> {entry.status}: {_short(entry.body)}"
        for number, entry in enumerate(entries, 1)
    ]
    return (":\n" + "\n".join(lines)) if lines else ""


def _also_received(entries: list[JournalEntry]) -> str:
    return f", only{_listing(entries)}" if entries else ""


def _pack(headers: list[tuple[bytes, bytes]]) -> Headers:
    """``headers`` as one bytes object: names and values joined by newlines.

    HTTP allows no newline in a header, so this is exact for anything a server hands over;
    headers that hold one anyway (a hand-made ASGI scope) are kept as they are.
    """
    packed = b"\n".join(chain.from_iterable(headers))
    return packed if packed.count(b"\n") == 2 * len(headers) - 1 else list(headers)


def _unpack(headers: Headers) -> Iterator[tuple[bytes, bytes]]:
    if isinstance(headers, list):
        return iter(headers)
    parts = headers.split(b"\n")
    return zip(parts[::2], parts[1::2], strict=True)

"""The journal: every request the fake received and what it answered, with assertion helpers.

The request pipeline writes one :class:`JournalEntry` per request, once: when its answer has been
sent, or, for an answer held back by a fault or latency, when it is decided (a test can then see
the request while its answer waits). It holds the request as it arrived and the answer as it left.
Recording is cheap on purpose (the raw bytes are kept); decoding the body, the headers and the
answer happens when a test looks at an entry.
"""

from __future__ import annotations

import difflib
import json
import pprint
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from ..engine.ignored import ignored_fields
from ..types import JSON, Violation
from .display import display_json, redact_header, safe_text

__all__ = ["Journal", "JournalAssertionError", "JournalEntry"]

RawHeaders = list[tuple[bytes, bytes]]
DEFAULT_JOURNAL_BYTES = 32 * 1024 * 1024
DEFAULT_BODY_BYTES = 256 * 1024
HEADER_VALUE_BYTES = 8 * 1024
"""Longer request header values are kept truncated to this many bytes."""
ENTRY_OVERHEAD_BYTES = 512
"""What an entry costs beyond its bodies and headers, as counted against the byte limit."""
_MISSING = object()
_NO_NAMES: frozenset[str] = frozenset()


class JournalAssertionError(AssertionError):
    """A journal assertion failed; the message shows what the fake received instead."""


class JournalEntry:
    """One request the fake received, and its answer as sent.

    ``status`` is None when a transport fault closed the connection before any answer.
    A body longer than the journal keeps is stored truncated: ``body_truncated`` is then True and
    ``body_size`` the size that arrived (likewise ``headers_truncated`` for long header values).
    ``fault`` names the fault injected into the answer, if any; ``error`` is an exception raised
    inside the fake while serving the request (the client then got a 500).
    """

    __slots__ = (
        "_body",
        "_headers",
        "_own_answer",
        "_raw_headers",
        "_raw_query",
        "_request_schema",
        "_response_body",
        "_response_headers",
        "body_size",
        "body_truncated",
        "duration",
        "error",
        "fault",
        "headers_truncated",
        "is_generation",
        "method",
        "path",
        "raw_body",
        "received_at",
        "redacted_headers",
        "served_model",
        "size",
        "source",
        "status",
        "unfetched_inputs",
    )

    def __init__(
        self,
        received_at: float,
        method: str,
        path: str,
        raw_query: bytes,
        raw_headers: RawHeaders,
        raw_body: bytes,
        is_generation: bool,
        status: int | None,
        response_headers: RawHeaders,
        response_body: bytes | None,
        duration: float,
        *,
        fault: str | None = None,
        own_answer: bytes | None = None,
        error: BaseException | None = None,
        request_schema: Mapping[str, Any] | None = None,
        unfetched_inputs: tuple[str, ...] = (),
        source: str | None = None,
        served_model: str | None = None,
    ) -> None:
        self.received_at = received_at
        self.method = method
        self.path = path
        self._raw_query = raw_query
        self._raw_headers = raw_headers
        self.raw_body = raw_body
        """The request body exactly as received (its start, when ``body_truncated``)."""
        self.body_size = len(raw_body)
        self.body_truncated = False
        self.headers_truncated = False
        self.redacted_headers = _NO_NAMES
        """Header names redacted beside the credential headers every entry redacts."""
        self.size = 0
        """Bytes counted against the journal's byte limit (set when recorded)."""
        self.is_generation = is_generation
        """True for requests to an API operation (not image downloads or unknown paths)."""
        self.status = status
        self._response_headers = response_headers
        self._response_body = response_body
        self.duration = duration
        """Seconds from receiving the request to handing over the last byte of the answer."""
        self.fault = fault
        self._own_answer = own_answer
        self.error = error
        self._request_schema = request_schema
        self.unfetched_inputs = unfetched_inputs
        """``image_urls`` the fake accepted without downloading them (``--fetch-input-images``)."""
        self.source = source
        self.served_model = served_model
        """The served model the request named, when the fake got that far (the metrics' label)."""
        """Where the answer came from when not from synthesis: ``replay <file>``, ``upstream``,
        ``replay miss, synthesized``, ...; None for the spec-driven fake's own answers."""
        self._headers: dict[str, str] | None = None
        self._body: JSON = _MISSING

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
        """Request headers, names in lower case; credentials (``Authorization``, ``Cookie``,
        ``X-Api-Key``, ...) are redacted."""
        if self._headers is None:
            self._headers = self._decoded_headers()
        return self._headers

    def _decoded_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for raw_name, raw_value in self._raw_headers:
            name = raw_name.decode("latin-1").lower()
            value = redact_header(name, raw_value.decode("latin-1"), self.redacted_headers)
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return headers

    @property
    def body(self) -> JSON:
        """The request body decoded as JSON; None when empty, the text when not JSON.

        Always safe to show and to serialise: NaN and Infinity stay text, lone surrogates are
        escaped, deep nesting is cut off, fields named like credentials are redacted.
        """
        if self._body is _MISSING:
            self._body = display_json(self.raw_body)
        return self._body

    @property
    def model(self) -> str | None:
        body = self.body
        model = body.get("model") if isinstance(body, dict) else None
        return model if isinstance(model, str) else None

    @property
    def response_headers(self) -> dict[str, str]:
        return {n.decode("latin-1"): v.decode("latin-1") for n, v in self._response_headers or ()}

    @property
    def request_id(self) -> str | None:
        return self.response_headers.get("x-request-id")

    @property
    def inference_id(self) -> str | None:
        """The ``x-inference-id`` the answer carried (the id ``GET /v2/logs`` lists)."""
        return self.response_headers.get("x-inference-id")

    @property
    def ignored_fields(self) -> list[str]:
        """Body fields the model's schema does not declare, which the API ignores (as dotted
        paths): ``size``, ``n`` or ``response_format`` sent by an OpenAI-style client, say."""
        if self._request_schema is None:
            return []
        return ignored_fields(self._request_schema, self.body)

    @property
    def response_body(self) -> JSON:
        """The JSON answer as sent (None for images, or when nothing was sent)."""
        return display_json(self._response_body or b"", secret_fields=False)

    @property
    def violations(self) -> list[Violation]:
        """What the fake found wrong with the body, even when a fault replaced its answer."""
        answer = self._own_answer if self._own_answer is not None else self._response_body
        found = display_json(answer or b"", secret_fields=False)
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
        """The entry as served by ``GET /__mock/requests`` (always serialisable as JSON)."""
        return {
            "method": self.method,
            "path": safe_text(self.path),
            "query": self.query,
            "time": self.time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "headers": self.headers,
            "body": self.body,
            "body_size": self.body_size,
            "body_truncated": self.body_truncated,
            "headers_truncated": self.headers_truncated,
            "model": self.model,
            "is_generation": self.is_generation,
            "status": self.status,
            "request_id": self.request_id,
            "inference_id": self.inference_id,
            "ignored_fields": self.ignored_fields,
            "unfetched_inputs": list(self.unfetched_inputs),
            "violations": [violation.as_json() for violation in self.violations],
            "image_urls": self.image_urls,
            "fault": self.fault,
            "source": self.source,
            "error": safe_text(repr(self.error)) if self.error is not None else None,
            "duration": self.duration,
        }

    def __repr__(self) -> str:
        status = self.status if self.status is not None else "no answer"
        return f"<JournalEntry {self.method} {self.path} {status} {_short(self.body)}>"


class Journal:
    """Every request the fake received, oldest first, up to ``limit`` entries and ``max_bytes``
    (0 entries turns recording off); the oldest entries make room for new ones.

    Request bodies over ``body_bytes`` and header values over :data:`HEADER_VALUE_BYTES` are kept
    truncated. ``redact`` names headers redacted beside the credential headers.
    Exceptions raised inside the fake while serving are kept in ``errors``.
    """

    def __init__(
        self,
        limit: int = 1000,
        max_bytes: int = DEFAULT_JOURNAL_BYTES,
        body_bytes: int = DEFAULT_BODY_BYTES,
        redact: Iterable[str] = (),
    ) -> None:
        self.limit = limit
        self.max_bytes = max_bytes
        self.body_bytes = body_bytes
        self.redact = frozenset(name.lower() for name in redact)
        self._entries: deque[JournalEntry] = deque()
        self._bytes = 0
        self._lock = threading.Lock()
        self.errors: list[BaseException] = []

    @property
    def enabled(self) -> bool:
        return self.limit > 0

    @property
    def size_in_bytes(self) -> int:
        """What the kept entries count against ``max_bytes``."""
        return self._bytes

    def record(self, entry: JournalEntry) -> None:
        if not self.limit:
            return
        self._bound(entry)
        with self._lock:
            entries = self._entries
            entries.append(entry)
            self._bytes += entry.size
            while len(entries) > 1 and (len(entries) > self.limit or self._bytes > self.max_bytes):
                self._bytes -= entries.popleft().size

    def _bound(self, entry: JournalEntry) -> None:
        """Truncate what is too long to keep, and count what is kept."""
        if self.redact:
            entry.redacted_headers = self.redact
        body = entry.raw_body
        if len(body) > self.body_bytes:
            entry.raw_body = body[: self.body_bytes]
            entry.body_truncated = True
        headers = entry._raw_headers
        size = ENTRY_OVERHEAD_BYTES + len(entry.raw_body) + len(entry._response_body or b"")
        for name, value in headers:
            size += len(name) + len(value)
        if size > ENTRY_OVERHEAD_BYTES + len(entry.raw_body) + HEADER_VALUE_BYTES and any(
            len(value) > HEADER_VALUE_BYTES for _, value in headers
        ):
            entry._raw_headers = [(name, value[:HEADER_VALUE_BYTES]) for name, value in headers]
            entry.headers_truncated = True
            size = ENTRY_OVERHEAD_BYTES + len(entry.raw_body) + len(entry._response_body or b"")
            size += sum(len(name) + len(value) for name, value in entry._raw_headers)
        entry.size = size

    def clear(self) -> None:
        """Forget every entry and error."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self.errors.clear()

    @property
    def entries(self) -> list[JournalEntry]:
        """A snapshot of every entry, in the order the requests arrived."""
        with self._lock:
            entries = list(self._entries)
        # Written as answered: a slow answer (a render, a delay) can follow a later request's.
        entries.sort(key=_arrival)
        return entries

    def page(
        self, offset: int = 0, limit: int | None = None, *, model: str | None = None
    ) -> tuple[list[JournalEntry], int]:
        """Entries ``offset`` to ``offset + limit`` (oldest first) and how many there are in all."""
        entries = self.filter(model=model) if model else self.entries
        end = None if limit is None else offset + limit
        return entries[offset:end], len(entries)

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


def _arrival(entry: JournalEntry) -> float:
    return entry.received_at


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

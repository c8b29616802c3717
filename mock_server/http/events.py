"""Journal entries as a live stream of server-sent events, for the journal page.

:class:`EventHub` is an observer of the journal: the pipeline calls it with each entry as it is
written. With no page listening that costs one truth test; with listeners, an append to each
listener's bounded queue. Entries are turned into JSON in the listener's own task, off the
request path, in batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import AsyncGenerator

from starlette.types import Receive, Scope, Send

from ..controls.journal import Journal, JournalEntry
from ..engine.ids import new_request_id
from ..errors import ApiError
from ..types import JSON
from .answers import error_answer
from .pipeline import send_answer

QUEUE_SIZE = 200
"""Entries a listener may fall behind by; older ones are dropped and the page is told how many.
Bounded in count because a listener that does not read keeps its entries (and their bodies)."""
BACKLOG = 1000
"""The latest journal entries a new listener is sent first (the page holds as many)."""
MAX_LISTENERS = 8
"""Streams open at once; more get 429 (each may hold QUEUE_SIZE entries)."""
SHOWN_TEXT_CHARS = 16 * 1024
"""A body longer than this is shown cut, as text (the journal's own route has it whole)."""
KEEP_ALIVE_SECONDS = 15.0
RETRY_MILLISECONDS = 1000
_STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),
]


def page_json(entry: JournalEntry) -> dict[str, JSON]:
    """What the page shows of an entry: the journal's view of it, plus the answer's body."""
    shown = entry.as_json()
    shown.setdefault("response_body", entry.response_body)
    shown["received_at"] = entry.received_at
    for name in ("body", "response_body"):
        value = shown[name]
        long_body = name == "body" and len(entry.raw_body) > SHOWN_TEXT_CHARS
        text = value if isinstance(value, str) else (json.dumps(value) if long_body else None)
        if text is not None and len(text) > SHOWN_TEXT_CHARS:
            shown[name] = text[:SHOWN_TEXT_CHARS] + " … (cut: see GET /__mock/requests)"
    return shown


class _Listener:
    __slots__ = ("dropped", "loop", "pending", "wake")

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.pending: deque[JournalEntry] = deque(maxlen=size)
        self.wake = asyncio.Event()
        self.dropped = 0

    def push(self, entry: JournalEntry) -> None:
        if len(self.pending) == self.pending.maxlen:
            self.dropped += 1
        self.pending.append(entry)
        self.wake.set()


class EventHub:
    """Fans journal entries out to the pages listening on ``GET /__mock/events``."""

    def __init__(
        self,
        journal: Journal,
        *,
        queue_size: int = QUEUE_SIZE,
        keep_alive: float = KEEP_ALIVE_SECONDS,
    ) -> None:
        self.journal = journal
        self.queue_size = queue_size
        self.keep_alive = keep_alive
        # Replaced, never mutated: the observer may run on another thread's loop (in-process
        # clients) and iterates without a lock.
        self._listeners: tuple[_Listener, ...] = ()
        self.closed = False

    def close(self) -> None:
        """End every stream (the server is stopping); safe from any thread or signal handler."""
        self.closed = True
        for listener in self._listeners:
            listener.loop.call_soon_threadsafe(listener.wake.set)

    @property
    def listening(self) -> int:
        """How many pages are connected."""
        return len(self._listeners)

    def __call__(self, entry: JournalEntry) -> None:
        listeners = self._listeners
        if not listeners:
            return
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        for listener in listeners:
            if listener.loop is loop:
                listener.push(entry)
            else:
                listener.loop.call_soon_threadsafe(listener.push, entry)

    async def stream(self) -> AsyncGenerator[bytes]:
        """The event stream of one listener: the backlog, then each batch of new entries.

        Events: ``reset`` (a JSON list: the latest entries, sent first), ``entries`` (a JSON list
        of new ones), ``dropped`` (how many this listener fell too far behind to be sent).
        """
        listener = _Listener(asyncio.get_running_loop(), self.queue_size)
        self._listeners = (*self._listeners, listener)
        try:
            # Listening before the snapshot, so nothing falls between the two; what is in both
            # is sent once.
            backlog = self.journal.entries[-BACKLOG:]
            seen = {id(entry) for entry in backlog}
            fresh = [entry for entry in listener.pending if id(entry) not in seen]
            listener.pending.clear()
            listener.pending.extend(fresh)
            yield f"retry: {RETRY_MILLISECONDS}\n\n".encode()
            yield _event("reset", backlog)
            while not self.closed:
                if not listener.pending:
                    listener.wake.clear()
                    try:
                        await asyncio.wait_for(listener.wake.wait(), self.keep_alive)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    if self.closed:
                        return
                batch = list(listener.pending)
                listener.pending.clear()
                if listener.dropped:
                    dropped, listener.dropped = listener.dropped, 0
                    yield f"event: dropped\ndata: {dropped}\n\n".encode()
                yield _event("entries", batch)
        finally:
            self._listeners = tuple(each for each in self._listeners if each is not listener)


class EventStream:
    """``GET /__mock/events``: the hub's stream as an ASGI app, until the client goes away.

    A plain ASGI app rather than a streaming response so that a server stopping while a page is
    open (uvicorn cancels what outlives its grace period) ends the stream quietly, without an
    error logged.
    """

    def __init__(self, hub: EventHub) -> None:
        self.hub = hub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if len(self.hub._listeners) >= MAX_LISTENERS:
            message = f"Too Many Requests: at most {MAX_LISTENERS} journal streams are open at once"
            answer = error_answer(ApiError(429, message), scope["path"], new_request_id())
            await send_answer(answer, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": _STREAM_HEADERS})
        stream = self.hub.stream()

        async def until_disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        gone = asyncio.ensure_future(until_disconnected())
        chunk: asyncio.Future[bytes] | None = None
        try:
            while True:
                chunk = asyncio.ensure_future(anext(stream))
                await asyncio.wait((chunk, gone), return_when=asyncio.FIRST_COMPLETED)
                if gone.done():
                    return  # nothing to finish: the client is not there to read it
                try:
                    body = chunk.result()
                except StopAsyncIteration:  # closed: the server is stopping
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
                await send({"type": "http.response.body", "body": body, "more_body": True})
        except asyncio.CancelledError:
            # The server is stopping: close the response so that the client sees a clean end.
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            for task in (gone, chunk):
                if task is not None and not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            await stream.aclose()


def _event(name: str, entries: list[JournalEntry]) -> bytes:
    data = json.dumps([_shown(entry) for entry in entries], default=repr, ensure_ascii=False)
    return f"event: {name}\ndata: {data}\n\n".encode()


def _shown(entry: JournalEntry) -> dict[str, JSON]:
    try:
        return page_json(entry)
    except (RecursionError, ValueError) as problem:  # a body nested too deep to decode
        return {
            "method": entry.method,
            "path": entry.path,
            "status": entry.status,
            "duration": entry.duration,
            "received_at": entry.received_at,
            "body": entry.raw_body[:2000].decode("utf-8", errors="replace"),
            "error": f"the page cannot show this entry: {problem!r}",
        }

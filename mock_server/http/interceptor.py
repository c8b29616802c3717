"""ASGI middleware between the server and the fake's routes: journals each request and injects
the faults and latency of a :class:`~mock_server.faults.FaultPlan` or a ``Prefer`` header.

A fault replaces the fake's answer after the fake has produced it, so the journal still shows
what was wrong with the request. When nothing is to be injected (no rule, no latency, no
``Prefer`` header) the API routes never get here: :class:`DirectRoutes` answers them in front of
Starlette, with a journal append as the only extra cost.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..controls.faults import Fault, FaultPlan
from ..controls.journal import Journal, JournalEntry
from ..engine.ids import new_request_id
from ..engine.service import ImageService
from ..engine.synthesis import MEGAPIXEL, image_request
from ..errors import ApiError, ConfigError
from . import endpoints
from .addresses import url_parts

ADMIN_PREFIX = "/__mock/"
SLOW_BODY_PIECES = 10
RECORDED_ERROR = "aimlapi_mock.recorded_error"
"""Scope key under which an exception raised by the app, and kept in the journal, is noted."""

RenderError = Callable[[ApiError, str, str], Response]


class Interceptor:
    """Journal every request but admin ones; fault and delay API requests as planned."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: ImageService,
        journal: Journal,
        plan: FaultPlan,
        render_error: RenderError,
    ) -> None:
        self.app = app
        self.service = service
        self.journal = journal
        self.plan = plan
        self.render_error = render_error
        self._operations = frozenset(service.spec_set.operations)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ADMIN_PREFIX):
            await self.app(scope, receive, send)
            return
        prefer = _prefer(scope["headers"])
        generation = (scope["method"], scope["path"]) in self._operations
        if prefer is None and not self.journal.enabled and (not generation or self.plan.idle):
            await self.app(scope, receive, send)
            return
        entry = JournalEntry(
            scope["method"],
            scope["path"],
            scope.get("query_string", b""),
            scope["headers"],
            generation,
        )
        self.journal.record(entry)
        raw_receive = receive
        entry.raw_body, receive = await _buffer_body(receive, self.service.settings.max_body_bytes)
        send = _recorder(entry, send)
        try:
            fault = Fault.from_prefer(prefer) if prefer is not None else None
        except ConfigError as problem:
            error = ApiError(400, f"Prefer header: {problem}")
            await self.render_error(error, scope["path"], new_request_id())(scope, receive, send)
            return
        if generation and self.plan.has_rules and (fault is None or fault.only_delays):
            fault = self._scripted(fault, entry)
        latency = generation and self.plan.latency is not None
        if fault is None and not latency:
            await self._run(scope, receive, send, entry)
            return

        # Hold the fake's answer: it may be replaced, delayed or broken on the way out.
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self._run(scope, receive, hold, entry)
        delay = 0.0
        if fault is not None:
            entry.fault = str(fault)
            delay = fault.delay
            if fault.status is not None:
                entry.replaced_answer(_body_of(held))
                held.clear()
                forced = ApiError(fault.status, headers=fault.headers)
                await self.render_error(forced, scope["path"], new_request_id())(
                    scope, receive, hold
                )
        if latency and 200 <= _status_of(held) < 300:
            delay += self.plan.delay_for(lambda: self._scale(scope, entry))

        async def deliver() -> None:
            if delay:
                await anyio.sleep(delay)
            await _send_broken(held, fault, send, raw_receive, entry)

        if delay or (fault is not None and fault.transport == "slow-body"):
            await _unless_disconnected(receive, deliver)
        else:
            await deliver()

    def _scripted(self, prefer: Fault | None, entry: JournalEntry) -> Fault | None:
        """The fault of the first rule that fires, with any ``Prefer`` delay added."""
        picked = self.plan.pick(lambda: entry.model)
        if picked is None:
            return prefer
        return replace(picked, delay=picked.delay + prefer.delay) if prefer else picked

    async def _run(self, scope: Scope, receive: Receive, send: Send, entry: JournalEntry) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as error:
            _note_error(self.journal, scope, entry, error)
            raise

    def _scale(self, scope: Scope, entry: JournalEntry) -> float:
        """Images (or megapixels of all images) a successful generation produced."""
        operation = self.service.spec_set.models_for(scope["method"], scope["path"]).get(
            entry.model or ""
        )
        body = entry.body
        if operation is None or not isinstance(body, dict):
            return 1.0
        request = image_request(operation, body, lambda: 1)
        latency = self.plan.latency
        if latency is not None and latency.per == "megapixel":
            return request.width * request.height / MEGAPIXEL * request.count
        return float(request.count)


class DirectRoutes:
    """The API routes (generation and image download), answered without Starlette's router.

    Used for every request that :meth:`route_for` finds a route for: one with nothing to inject
    (no ``Prefer`` header, and for generations no fault rule or latency). Journals the request
    like :class:`Interceptor`; answers 500 in the error envelope if the fake raises.
    """

    def __init__(
        self,
        generation: endpoints.Generation,
        image: endpoints.Image,
        *,
        service: ImageService,
        journal: Journal,
        plan: FaultPlan,
    ) -> None:
        self.generation = generation
        self.image = image
        self.journal = journal
        self.plan = plan
        self.body_limit = service.settings.max_body_bytes
        self._operations = frozenset(service.spec_set.operations)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer an HTTP request if it is for a direct route; False to leave it to Starlette."""
        headers = endpoints.request_headers(scope)
        route = self.route_for(scope, headers)
        if route is None:
            return False
        received_at = time.time()
        generation = route is self.generation
        raw = b""
        try:
            if generation:
                first = await receive()
                read = endpoints.whole_body(first, headers, self.body_limit)
                if read is None:
                    read = await endpoints.read_raw_body(headers, receive, self.body_limit, first)
                if read is None:
                    return True  # the client left before it had sent its request
                raw, problem = read
                answer = self.generation.answer(scope, headers, raw if problem is None else problem)
            else:  # image downloads are GETs: no body to wait for
                answer = await self.image.answer(scope)
        except Exception as error:
            await self._failed(scope, send, error, received_at, generation, raw)
            raise
        # What answer.send(send) does, without a coroutine of its own on this path.
        await send(
            {"type": "http.response.start", "status": answer.status, "headers": answer.headers}
        )
        await send({"type": "http.response.body", "body": answer.body})
        self.journal.record_exchange(
            received_at,
            (scope["method"], scope["path"], scope.get("query_string", b""), scope["headers"],
             generation, raw),
            (answer.status, answer.headers, answer.body if answer.is_json else None),
        )  # fmt: skip
        return True

    def route_for(
        self, scope: Scope, headers: endpoints.Headers
    ) -> endpoints.Generation | endpoints.Image | None:
        """The route to answer an HTTP request with, or None to leave it to Starlette."""
        if b"prefer" in headers or scope.get("root_path"):
            return None  # faults to inject; a root path for Starlette's router to take off
        method, path = scope["method"], scope["path"]
        if (method, path) in self._operations:
            return self.generation if self.plan.idle else None
        if method == "GET" and endpoints.image_name(path) is not None:
            return self.image
        return None

    async def _failed(
        self,
        scope: Scope,
        send: Send,
        error: Exception,
        received_at: float,
        generation: bool,
        raw_body: bytes,
    ) -> None:
        """Answer 500 and journal the error, as Starlette's ServerErrorMiddleware and
        :class:`Interceptor` do for the other routes."""
        answer = endpoints.error_answer(ApiError(500), url_parts(scope)[0], new_request_id())
        if self.journal.limit:
            entry = JournalEntry(
                scope["method"],
                scope["path"],
                scope.get("query_string", b""),
                scope["headers"],
                generation,
            )
            entry.received_at, entry.raw_body = received_at, raw_body
            self.journal.record(entry)
            entry.response_started(answer.status, answer.headers)
            entry.response_chunk(answer.body)
            _note_error(self.journal, scope, entry, error)
        await answer.send(send)


def _note_error(journal: Journal, scope: Scope, entry: JournalEntry, error: Exception) -> None:
    """Keep ``error`` in the journal, and mark it as kept (see ``RECORDED_ERROR``)."""
    entry.error = error
    if entry.status is None:
        entry.status = 500  # sent by Starlette's ServerErrorMiddleware, outside the interceptor
    journal.errors.append(error)
    scope[RECORDED_ERROR] = error


def _prefer(headers: list[tuple[bytes, bytes]]) -> str | None:
    values = [value.decode("latin-1") for name, value in headers if name == b"prefer"]
    return ", ".join(values) if values else None


async def _buffer_body(receive: Receive, limit: int) -> tuple[bytes, Receive]:
    """Read the body up to ``limit`` bytes; returns it and a ``receive`` that replays it."""
    message = await receive()
    replay: list[Message] = [message]
    if message["type"] == "http.request" and message.get("more_body", False):
        chunks = [message.get("body", b"")]
        size = len(chunks[0])
        more = True
        while more and size <= limit:
            message = await receive()
            if message["type"] != "http.request":
                replay.append(message)
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
        replay[0] = {"type": "http.request", "body": b"".join(chunks), "more_body": more}
    body: bytes = replay[0].get("body", b"") if replay[0]["type"] == "http.request" else b""

    async def replaying() -> Message:
        return replay.pop(0) if replay else await receive()

    return body, replaying


def _recorder(entry: JournalEntry, send: Send) -> Send:
    keep_body = False

    async def recording_send(message: Message) -> None:
        nonlocal keep_body
        if message["type"] == "http.response.start":
            keep_body = entry.response_started(message["status"], message.get("headers", []))
        elif message["type"] == "http.response.body":
            if keep_body:
                entry.response_chunk(message.get("body", b""))
            if not message.get("more_body", False):
                entry.finished()
        await send(message)

    return recording_send


async def _send_broken(
    held: list[Message], fault: Fault | None, send: Send, raw_receive: Receive, entry: JournalEntry
) -> None:
    """Send the held answer, broken the way ``fault`` says (if at all)."""
    transport = fault.transport if fault is not None else None
    if transport is None:
        for message in held:
            await send(message)
    elif transport == "close":
        _abort(raw_receive)
        entry.finished()
    elif transport == "truncate":
        body = _body_of(held)
        await send(held[0])
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        _abort(raw_receive)
        entry.finished()
    else:
        assert fault is not None
        await _trickle(held[0], _body_of(held), fault.slow_body, send)


def _status_of(messages: list[Message]) -> int:
    return next((int(m["status"]) for m in messages if m["type"] == "http.response.start"), 0)


def _body_of(messages: list[Message]) -> bytes:
    return b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")


async def _trickle(start: Message, body: bytes, seconds: float, send: Send) -> None:
    """Send ``body`` in pieces spread over ``seconds`` (the headers go at once)."""
    await send(start)
    size = max(1, -(-len(body) // SLOW_BODY_PIECES))
    pieces = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    pause = seconds / len(pieces)
    for piece in pieces:
        await anyio.sleep(pause)
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _unless_disconnected(receive: Receive, work: Callable[[], Awaitable[None]]) -> None:
    """Run ``work`` (which waits), giving up as soon as the client disconnects.

    A client that timed out should not keep a delayed answer, or a server shutting down, waiting.
    """
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(watch)
        await work()
        group.cancel_scope.cancel()


def _abort(receive: Receive) -> None:
    """Close the client's connection now, whatever was sent so far.

    ASGI has no message for this, so the connection is reached through uvicorn's request cycle
    (the owner of ``receive``). Elsewhere (in process) the caller gets a ConnectionResetError.
    """
    cycle: Any = getattr(receive, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is None or not hasattr(cycle, "disconnected"):
        raise ConnectionResetError("aimlapi-mock closed the connection (transport fault)")
    transport.close()
    cycle.disconnected = True  # so uvicorn neither logs nor answers 500 for the missing answer

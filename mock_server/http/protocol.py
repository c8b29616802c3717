"""uvicorn's httptools protocol with the limits a server facing hostile clients needs.

uvicorn with httptools takes request heads of any size and waits for ever for a head or a body
that never comes. :class:`GuardedHttpProtocol` adds, per connection:

- a cap on the request head (request line and headers): 431 and the connection closed;
- a header timeout (from the first byte of a request, or from the connection's start) and a body
  timeout (between two pieces of a body): the connection is closed (408 when a head was begun);
- the error envelope, instead of uvicorn's plain text, for malformed HTTP;
- a bound on open connections below the process's descriptor limit: past it, the connections
  that have been idle longest are closed, so idle clients cannot lock new ones out;
- on shutdown, requests still held back (latency, slow bodies) are cut after a grace period;
- requests sent ahead of their answers (pipelined) are read only while fewer than
  :data:`MAX_WAITING_REQUESTS` wait, and none is run after an answer that closed the connection.

It also runs the fake's pipeline itself: a request is held until its body is in (up to the
body cap, and never one that expects ``100 Continue``), then answered by
:meth:`~mock_server.http.pipeline.Pipeline.answer_now` without an ASGI task, unless a stage must
wait; then, or when anything but uvicorn's proxy-headers middleware wraps the fake's app, the
request goes to the app the ASGI way, as it arrived.

And one shortcut, :func:`send_whole`: an answer the pipeline has whole (status, headers, body) is
written in one go, head and body together, instead of as two ASGI messages and two writes. It
checks and writes exactly what uvicorn's own ``send`` would (``tests/http/test_protocol.py``
compares the bytes), and declines, leaving the answer to ``send``, whenever that would differ.

The hot path's cost is one addition and two comparisons per ``data_received``; timeouts are
checked by one sweep a second over the connections, not by a timer per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import operator
import re
import resource
from collections.abc import Iterable, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httptools
from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT, FlowControl
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from ..config import Settings
from ..engine.ids import new_request_id
from ..errors import ApiError
from .answers import error_answer

if TYPE_CHECKING:
    from .pipeline import Pipeline

__all__ = ["GuardedHttpProtocol", "Limits", "limits_for", "send_whole"]

SWEEP_SECONDS = 0.5
SHUTDOWN_GRACE_SECONDS = 1.5
"""After a shutdown begins, requests still unanswered this long are cut."""
MAX_WAITING_REQUESTS = 8
"""Requests a connection may have waiting behind the one being answered before reading pauses."""
RESERVED_DESCRIPTORS = 64
"""Descriptors kept free of client connections (files, renders, the listening socket)."""

_IDLE, _HEAD, _BODY = 0, 1, 2
_CONNECTIONS = itertools.count()
"""Numbers connections in the order they were made."""


@dataclass(frozen=True)
class Limits:
    max_header_bytes: int
    header_timeout: float
    body_timeout: float
    max_connections: int
    held_body_bytes: int
    """The most body a request is held with for :meth:`GuardedHttpProtocol._answer`."""


def limits_for(config: Config) -> Limits:
    """The limits of the fake that ``config`` serves (its settings, found through wrappers)."""
    found: Limits | None = getattr(config, "_aimlapi_mock_limits", None)
    if found is not None:
        return found
    app: Any = config.loaded_app
    settings = Settings()
    for _ in range(8):
        if isinstance(getattr(app, "settings", None), Settings):
            settings = app.settings
            break
        app = getattr(app, "app", None)
        if app is None:
            break
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    most = soft - RESERVED_DESCRIPTORS if soft != resource.RLIM_INFINITY else 1 << 20
    found = Limits(
        settings.max_header_bytes,
        settings.header_timeout,
        settings.body_timeout,
        max(16, most),
        # uvicorn stops reading a body past its high-water mark until the app reads on.
        min(settings.max_body_bytes, HIGH_WATER_LIMIT),
    )
    config._aimlapi_mock_limits = found  # type: ignore[attr-defined]
    return found


class GuardedHttpProtocol(HttpToolsProtocol):
    """Pass as ``http=`` to :class:`uvicorn.Config`; see the module's docstring."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits_for(config)
        self.fake_pipeline = pipeline_for(config)
        """The fake's pipeline, run here on whole requests (uvicorn's own ``pipeline`` is its
        queue of requests sent ahead of their answers)."""
        self._held: tuple[RequestResponseCycle, Any] | None = None
        self._running: RequestResponseCycle | None = None
        """The request last handed to a task (the one answered while others wait behind it)."""
        self._phase = _HEAD
        self._since = 0.0
        self._order = 0
        self._head_bytes = 0
        self._refusal: tuple[int, str] | None = None
        _start_sweeping(server_state, self.loop)

    # Connection ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.flow = _BoundedFlow(transport, self.pipeline)
        self._since = self.loop.time()
        self._order = next(_CONNECTIONS)  # breaks ties: the loop's clock is coarse
        if len(self.connections) > self.limits.max_connections:
            _shed(self.connections, len(self.connections) - self.limits.max_connections)

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        # uvicorn tells only the newest request that the client left; one answered before the
        # requests sent after it (pipelined) would write to the closed connection and fail.
        running = self._running
        if running is not None and running is not self.cycle and not running.response_complete:
            running.disconnected = True
            running.message_event.set()

    def data_received(self, data: bytes) -> None:
        while data:  # more than once only after requests that asked to upgrade
            data = self._feed(data)

    def _feed(self, data: bytes) -> bytes:
        """Parse ``data``; return what is left unparsed after a request asking to upgrade."""
        if self._phase != _BODY:
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._ignore_upgrade()
            return data[upgrade.args[0] :]
        except httptools.HttpParserError as error:
            status, message = self._refusal or (400, f"Bad Request: malformed HTTP ({error})")
            self._refuse(status, message)
            return b""
        if self._phase != _BODY and self._head_bytes > self.limits.max_header_bytes:
            self._refuse(431, self._too_large())
        return b""

    def _ignore_upgrade(self) -> None:
        """Go on with a request that asked to switch protocols as with an ordinary one.

        The fake speaks HTTP/1.1 only, so ``Upgrade`` (``curl --http2`` sends ``Upgrade: h2c``)
        is ignored, as RFC 9110 lets a server do. But the parser stops at the end of such a
        request's head, taking it to have no body. A fresh parser takes over. When the request
        has a body, that parser first reads a head carrying only the request's own framing
        (``Content-Length`` or chunked), through :class:`_AfterUpgrade`, which skips it: the body
        that follows then reaches the request under way, and the requests after it (the bytes
        :meth:`_feed` returns) are parsed as usual. Connections that never ask to upgrade keep
        uvicorn's callbacks untouched.
        """
        framing = _body_framing(self.headers)
        if framing is not None and self.cycle is not None and not self.cycle.response_complete:
            self.cycle.more_body = True
            self._phase = _BODY
            self.parser = httptools.HttpRequestParser(_AfterUpgrade(self))
            self.parser.feed_data(b"POST / HTTP/1.1\r\n" + framing + b"\r\n\r\n")
        else:
            self.parser = httptools.HttpRequestParser(self)
            if self._held is not None:  # a request without a body is whole
                self._answer(*self._take_held())
        with contextlib.suppress(AttributeError):  # as uvicorn sets it (httptools >= 0.6.3)
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, f"Bad Request: {msg}")

    def shutdown(self) -> None:
        super().shutdown()
        if not self.transport.is_closing():
            self.loop.call_later(SHUTDOWN_GRACE_SECONDS, self._cut)

    def _cut(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    # Parser callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # An answer written from a parser callback (see _answer) arms uvicorn's keep-alive
        # timer; a request that follows in the same read must disarm it, as new data does.
        self._unset_keepalive_if_required()
        self._phase = _HEAD
        self._since = self.loop.time()

    def on_headers_complete(self) -> None:
        # Measured whole: the bytes counted per read miss a head that began in the read that
        # ended the request before it (requests sent together).
        if self._head_size() > self.limits.max_header_bytes:
            self._refusal = (431, self._too_large())
            raise ValueError("request head too large")
        self._phase = _BODY
        self._head_bytes = 0
        self._since = self.loop.time()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._since = self.loop.time()
        super().on_body(body)
        if self._held is not None and len(self._held[0].body) > self.limits.held_body_bytes:
            self._run_task(*self._take_held())

    def on_message_complete(self) -> None:
        self._phase = _IDLE
        super().on_message_complete()
        if self._held is not None and not self.parser.should_upgrade():
            # (a request asking to upgrade is answered once its body is in: _ignore_upgrade)
            self._answer(*self._take_held())

    # Answering ----------------------------------------------------------------------------

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        """Hold a request for the fake's pipeline until its body is in (see :meth:`_answer`);
        start any other the ASGI way, at once."""
        if self.transport.is_closing():
            return  # an answer ended the connection: what the client sent after it is not run
        if (
            self.fake_pipeline is None
            or app is not self.app  # uvicorn's 503 for too many requests at once
            or cycle is not self.cycle  # pipelined, read whole while another was answered
            or not cycle.more_body
            or cycle.waiting_for_100_continue  # uvicorn says "100 Continue" when the app reads
            or _declared_length(cycle.scope["headers"]) > self.limits.held_body_bytes
        ):
            self._run_task(cycle, app)
        else:
            self._held = (cycle, app)

    def _run_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        self._running = cycle
        super()._start_asgi_task(cycle, app)

    def _take_held(self) -> tuple[RequestResponseCycle, Any]:
        held, self._held = self._held, None
        assert held is not None
        return held

    def _answer(self, cycle: RequestResponseCycle, app: Any) -> None:
        """Run the fake's pipeline on a request read whole, here, rather than in a task.

        The answer is written at once when the pipeline needs no stage to wait and sends it
        plainly; an answer held back (latency, faults) is sent by a task; a request a stage must
        wait for (a source, an image to render, the admin routes) is handed to ``app``, the
        pipeline as an ASGI app. Either way it is the one pipeline: this only saves a task, and
        the trip through the ASGI calls, for the requests that need none.
        """
        assert self.fake_pipeline is not None
        if self.transport.is_closing():
            return
        scope: Any = cycle.scope
        try:
            delivery = self.fake_pipeline.answer_now(scope, bytes(cycle.body))
        except Exception as error:  # the pipeline answers its own failures; this is a backstop
            self._run_task(cycle, _raising(error))
            return
        if delivery is None:
            self._run_task(cycle, app)
            return
        answer = delivery.answer
        if not (
            delivery.plain and send_whole(cycle.send, answer.status, answer.headers, answer.body)
        ):
            deliver: Any = self.fake_pipeline.deliver_app(delivery)
            self._run_task(cycle, deliver)

    # Limits --------------------------------------------------------------------------------

    def check_timeouts(self, now: float) -> None:
        """Close this connection if its client is too slow sending a head or a body."""
        if self._phase == _HEAD and now - self._since > self.limits.header_timeout:
            if self._head_bytes:
                self._refuse(408, "Request Timeout: the request headers took too long")
            else:
                self.transport.close()
        elif self._phase == _BODY and now - self._since > self.limits.body_timeout:
            self.transport.close()

    @property
    def idle(self) -> bool:
        """Waiting for a request that has not begun (a new or kept-alive connection)."""
        return (
            self._phase != _BODY
            and not self._head_bytes
            and (self.cycle is None or self.cycle.response_complete)
        )

    def _head_size(self) -> int:
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _too_large(self) -> str:
        return (
            "Request Header Fields Too Large: the request line and headers take more than "
            f"{self.limits.max_header_bytes} bytes"
        )

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with the error envelope (unless an answer is under way), and close."""
        transport = self.transport
        if transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            url = getattr(self, "url", b"") or b""
            path = url.partition(b"?")[0][:256].decode("latin-1") or "/"
            answer = error_answer(ApiError(status, message), path, new_request_id())
            head = [STATUS_LINE[status]]
            for name, value in answer.headers:
                head += [name, b": ", value, b"\r\n"]
            head.append(b"connection: close\r\n\r\n")
            transport.write(b"".join(head) + answer.body)
        transport.close()


class _AfterUpgrade:
    """The parser callbacks after a request that asked to upgrade: the framing head
    :meth:`GuardedHttpProtocol._ignore_upgrade` feeds is skipped, the body goes to the request
    under way, and what follows on the connection to the protocol as usual."""

    def __init__(self, protocol: GuardedHttpProtocol) -> None:
        self.protocol = protocol
        self.in_body = True

    def on_message_begin(self) -> None:
        if not self.in_body:
            self.protocol.on_message_begin()

    def on_url(self, url: bytes) -> None:
        if not self.in_body:
            self.protocol.on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.in_body:
            self.protocol.on_header(name, value)

    def on_headers_complete(self) -> None:
        if not self.in_body:
            self.protocol.on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self.protocol.on_body(body)

    def on_message_complete(self) -> None:
        self.in_body = False
        self.protocol.on_message_complete()


def _body_framing(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The header that frames a request's body (``Content-Length`` or chunked), None if none."""
    length: bytes | None = None
    for name, value in headers:
        if name == b"transfer-encoding" and value.strip().lower() == b"chunked":
            return b"Transfer-Encoding: chunked"
        if name == b"content-length":
            length = value.strip()
    if length is None or not length.isdigit() or int(length) == 0:
        return None
    return b"Content-Length: " + length


class _BoundedFlow(FlowControl):
    """uvicorn's flow control, except that reading stays paused while requests sent ahead
    (pipelined) wait to be answered. uvicorn pauses reading when it queues one, but resumes it
    whenever the request being answered reads (a held answer waits by reading), so a client
    that sends without reading could queue requests without end."""

    def __init__(self, transport: asyncio.Transport, waiting: Sized) -> None:
        super().__init__(transport)
        self._waiting = waiting

    def resume_reading(self) -> None:
        if len(self._waiting) < MAX_WAITING_REQUESTS:
            super().resume_reading()


def pipeline_for(config: Config) -> Pipeline | None:
    """The pipeline of the fake ``config`` serves, when nothing but uvicorn's proxy-headers
    middleware stands in front of it (anything else must see every request)."""
    from .app import FakeApp

    app: Any = config.loaded_app
    while isinstance(app, ProxyHeadersMiddleware):
        app = app.app
    return app.pipeline if type(app) is FakeApp else None


def _declared_length(headers: Iterable[tuple[bytes, bytes]]) -> int:
    """A request's ``Content-Length`` (0 without one, unbounded if it is not a number)."""
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else 1 << 62
    return 0


def _raising(error: Exception) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise error

    return app


def _start_sweeping(server_state: ServerState, loop: asyncio.AbstractEventLoop) -> None:
    """One timer for all connections of a server, checking their timeouts twice a second."""
    if getattr(server_state, "_aimlapi_mock_sweeping", False):
        return
    server_state._aimlapi_mock_sweeping = True  # type: ignore[attr-defined]

    def sweep() -> None:
        now = loop.time()
        for connection in list(server_state.connections):
            if isinstance(connection, GuardedHttpProtocol):
                connection.check_timeouts(now)
        loop.call_later(SWEEP_SECONDS, sweep)

    loop.call_later(SWEEP_SECONDS, sweep)


def _shed(connections: set[Any], count: int) -> None:
    """Close the ``count`` connections idle longest (or fewer, if fewer are idle)."""
    idle = [c for c in connections if isinstance(c, GuardedHttpProtocol) and c.idle]
    idle.sort(key=lambda connection: (connection._since, connection._order))
    for connection in idle[:count]:
        connection.transport.close()


_CYCLE_STATE = (
    "access_log", "chunked_encoding", "default_headers", "disconnected", "expected_content_length",
    "flow", "keep_alive", "message_event", "on_response", "response_complete", "response_started",
    "scope", "transport", "waiting_for_100_continue",
)  # fmt: skip
"""What :func:`send_whole` reads and sets on uvicorn's request cycle."""


def _cycle_is_as_expected() -> bool:
    # Instance attributes are set in __init__: read its code's names rather than make a cycle.
    names = set(RequestResponseCycle.__init__.__code__.co_names)
    return all(name in names for name in _CYCLE_STATE)


_WHOLE = _cycle_is_as_expected()
"""False for a uvicorn whose request cycle keeps other state: answers then go through ``send``."""


def _refused_bytes(pattern: re.Pattern[bytes]) -> bytes:
    """A translation table: 1 for each byte ``pattern`` matches on its own, else 0."""
    return bytes(pattern.match(bytes([byte])) is not None for byte in range(256))


_REFUSED_IN_NAMES = _refused_bytes(HEADER_RE)
_REFUSED_IN_VALUES = _refused_bytes(HEADER_VALUE_RE)
"""The bytes uvicorn's ``send`` refuses in a header name, in a header value (each of its two
patterns matches one such byte)."""
_names, _values = operator.itemgetter(0), operator.itemgetter(1)


def headers_are_sendable(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether uvicorn's ``send`` takes these headers (its patterns match none of them).

    All names, then all values, are mapped through a table of refused bytes in one pass each:
    the two regular expressions searched for each header cost ~10 % of a valid generation's
    instructions under uvicorn.
    """
    return b"\x01" not in b"".join(map(_names, headers)).translate(
        _REFUSED_IN_NAMES
    ) and b"\x01" not in b"".join(map(_values, headers)).translate(_REFUSED_IN_VALUES)


def send_whole(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bool:
    """Write an answer, head and body, in one write, when ``send`` belongs to uvicorn's httptools
    request cycle; True if written. False (nothing written) wherever uvicorn's ``send`` would
    do anything else: another server, an answer already begun, a paused or closed connection,
    uvicorn's access log on, a header it would refuse, no ``Content-Length`` or one that does
    not match the body. The caller then sends the answer the ASGI way.
    """
    cycle = getattr(send, "__self__", None)
    if (
        not _WHOLE
        or type(cycle) is not RequestResponseCycle
        or cycle.response_started
        or cycle.disconnected
        or cycle.flow.write_paused
        or cycle.access_log
    ):
        return False
    status_line = STATUS_LINE.get(status)
    if status_line is None:
        return False
    if not headers_are_sendable(cycle.default_headers + headers):
        return False  # send raises for it, as it should
    content = [status_line]
    keep_alive, closing, length = cycle.keep_alive, False, None
    for group in (cycle.default_headers, headers):
        for name, value in group:
            name = name.lower()
            if name == b"content-length":
                if length is not None or not value.isdigit():
                    return False
                length = int(value)
            elif name == b"transfer-encoding":
                return False
            elif name == b"connection" and b"close" in [
                token.lower().strip() for token in value.split(b",")
            ]:
                keep_alive, closing = False, True
            content += (name, b": ", value, b"\r\n")
    head_only = cycle.scope["method"] == "HEAD"
    if length is None or (not head_only and length != len(body)):
        return False
    if not keep_alive and not closing:
        content.append(b"connection: close\r\n")
    content.append(b"\r\n")
    if not head_only:
        content.append(body)
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    cycle.keep_alive = keep_alive
    cycle.chunked_encoding = False
    cycle.expected_content_length = 0
    cycle.transport.write(b"".join(content))
    cycle.response_complete = True
    cycle.message_event.set()
    if not keep_alive:
        cycle.transport.close()
    cycle.on_response()
    return True

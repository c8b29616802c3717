"""The request pipeline: every API request and image download goes through these stages, in order.

::

    route        method + path  -> generation | image | 404/405 answer
    read body    one reader, capped                    -> bytes | 400/413 problem
    source       record/replay: a recorded or upstream answer    -> Answer | None (synthesise)
    answer       authorize -> parse -> validate -> synthesise (the engine)   -> Answer
    deviate      switchable drift                      Answer -> Answer
    deliver      faults and latency: how it is sent (normal, delayed, closed, truncated, trickled)
    journal      one entry, written once, from the request and the answer as it will be sent
    send         the answer, as the delivery says

Data flows one way: each stage takes the previous stage's value and returns its own. Only three
stages may have to wait: reading a body, a source, and the work done off the event loop (input
images to fetch or decode, an image to render). The pipeline has two entrances, one pipeline:

- :meth:`Pipeline.__call__`, an ASGI app, runs every stage; any server and the in-process test
  clients use it;
- :meth:`Pipeline.answer_now` runs the stages for a request the server has already read whole,
  when none of them has to wait, and returns the :class:`Delivery` for the server to send. Under
  uvicorn, :class:`~mock_server.http.protocol.GuardedHttpProtocol` uses it for most requests,
  which then cost no ASGI task; it hands any other request to the ASGI app.

The admin routes under ``/__mock/`` are the only requests that leave the pipeline (to Starlette).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import anyio
from anyio import CapacityLimiter, to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

from ..controls.faults import Fault, FaultPlan
from ..controls.journal import Journal, JournalEntry
from ..controls.latency import MAX_DELAY_SECONDS
from ..controls.ledger import CreditLedger
from ..controls.usage import LogEntry, UsageLog
from ..engine.body import check_content_type, parse_json_body
from ..engine.ids import new_request_id
from ..engine.service import Generation, ImageService
from ..engine.shapes import CREDITS_PER_USD
from ..engine.synthesis import MEGAPIXEL
from ..engine.tracing import client_request_id, new_inference_id
from ..errors import ApiError, ConfigError
from ..types import JSON, Answer, Source
from .account import PATHS as ACCOUNT_PATHS
from .account import Account
from .answers import error_answer, image_answer, json_answer, method_not_allowed, not_found
from .deviations import Deviations
from .protocol import send_whole

ADMIN_PREFIX = "/__mock/"
IMAGE_ROUTE = "/files"
"""Where rendered images are served: ``{IMAGE_ROUTE}/<token>.<format>``."""
SLOW_BODY_PIECES = 10
RECORDED_ERROR = "aimlapi_mock.recorded_error"
"""Scope key under which an exception raised inside the fake, and kept in the journal, is noted."""

_IMAGE_PREFIX = IMAGE_ROUTE + "/"
_ADMIN_ROOT = ADMIN_PREFIX.rstrip("/")
_HOST = re.compile(r"[A-Za-z0-9.\-_~%!$&'()*+,;=]+(:[0-9]*)?|\[[0-9A-Fa-f:.]+\](:[0-9]*)?")
"""A ``Host`` header fit to build image URLs from (RFC 3986 reg-name or IP literal, port)."""

_NANO_USD = 10**9 // CREDITS_PER_USD
_EXPOSE_HEADERS = (
    b"access-control-expose-headers",
    b"x-inference-id, x-client-request-id, x-aimlapi-credits-used, x-aimlapi-usd-spent",
)
"""So a browser app may read the tracing and cost headers, as the API allows."""

Observer = Callable[[JournalEntry], None]


@dataclass(slots=True)
class Request:
    """What arrived: the pipeline's input, and the request half of the journal entry."""

    received_at: float
    method: str
    path: str
    scope: Scope
    headers: dict[bytes, bytes]
    """By lower-case name; the first value of a repeated header."""
    body: bytes = b""
    model: str | None = None
    """The served model a generation named, once the body is read."""
    inference_id: str | None = None
    request_id: str | None = None
    client_request_id: str | None = None
    source: str | None = None
    """Where the answer came from when a source answered (or passed): for the journal."""


Answered = tuple[Answer, "Generation | None"]
"""An answer, and the generation it reports when it is a success."""


@dataclass(slots=True)
class Delivery:
    """The pipeline's last value: the answer, and how it is to be sent."""

    answer: Answer
    fault: Fault | None = None
    delay: float = 0.0
    """Seconds to hold the answer back."""
    error: Exception | None = None
    """An exception raised inside the fake, which ``answer`` (a 500) stands for."""

    @property
    def plain(self) -> bool:
        """Sent at once and whole, as it is (a forced error status is, too)."""
        return (
            not self.delay
            and (self.fault is None or self.fault.transport is None)
            and self.error is None
        )


class Pipeline:
    """The fake's API as one ASGI app; ``admin`` serves ``/__mock/`` (and anything not HTTP)."""

    def __init__(
        self,
        service: ImageService,
        journal: Journal,
        plan: FaultPlan,
        *,
        admin: ASGIApp,
        account: Account,
        ledger: CreditLedger,
        usage: UsageLog,
        deviations: Deviations | None = None,
        observers: tuple[Observer, ...] = (),
        source: Source | None = None,
    ) -> None:
        self.service = service
        self.account = account
        self.ledger = ledger
        self.usage = usage
        self.source = source
        self.journal = journal
        self.plan = plan
        self.admin = admin
        self.deviate = deviations
        self.observers = observers
        self.body_limit = service.settings.max_body_bytes
        self.admin_prefix = ADMIN_PREFIX if service.settings.admin else None
        spec_set = service.spec_set
        self._methods = {path: spec_set.methods_for(path) for path in spec_set.paths}
        self._operations = frozenset(spec_set.operations)
        self._models = frozenset(spec_set.models)
        self._cors_origins = frozenset(service.settings.cors_origins)
        self._fetches = service.settings.fetch_input_images
        self._slow: CapacityLimiter | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The pipeline as an ASGI app: under any server, and in process (the test clients)."""
        if scope["type"] != "http":
            await self.admin(scope, receive, send)
            return
        begun = self.begin(scope)
        if begun is None:  # the admin routes, for a request framed as the fake takes it
            framing = framing_problem(scope, dict(reversed(scope["headers"])))
            if framing is None:
                await self.admin(scope, receive, send)
            else:
                await send_answer(error_answer(framing, scope["path"], new_request_id()), send)
            return
        request, generation, framing = begun
        problem: ApiError | None = None
        ready: Answered | None = None
        image: tuple[bytes, str] | None = None
        try:
            if framing is None and generation:
                problem = await self.read_body(request, receive)
                sourced = await self.answer_from_source(request, problem) if self.source else None
                if sourced is not None:
                    ready = sourced, None
                elif self._fetches or b"data:" in request.body:
                    # Downloading or decoding image_urls takes a while: not on the event loop.
                    ready = await to_thread.run_sync(
                        self.answer_generation, request, problem, limiter=self._slow_answers()
                    )
            elif framing is None and self.is_image(request):
                image = await self.service.image(request.path[len(_IMAGE_PREFIX) :])
        except _ClientLeft:
            return  # before it had sent its request: nothing to answer or journal
        except Exception as error:
            delivery = self.failed(request, generation, error)
        else:
            delivery = self.conclude(request, generation, framing, problem, ready, image)
        await self.deliver(delivery, receive, send)
        if delivery.error is not None:
            raise delivery.error  # for the server to log, or the in-process client to raise

    def answer_now(self, scope: Scope, body: bytes) -> Delivery | None:
        """The pipeline for a request already read whole, if no stage has to wait: the caller
        (the HTTP protocol) sends the delivery. None, having done nothing, for a request a stage
        must wait for (a source, input images to fetch, an image to render, the admin routes):
        the caller then runs the pipeline as an ASGI app."""
        begun = self.begin(scope)
        if begun is None or self.source is not None:
            return None
        request, generation, framing = begun
        if b"x-forwarded-for" in request.headers or b"x-forwarded-proto" in request.headers:
            return None  # uvicorn's proxy-headers middleware may change the scope first
        problem, image = None, None
        if framing is None and generation:
            if self._fetches or b"data:" in body:
                return None
            problem = self.check_body(request, body)
        elif framing is None and self.is_image(request):
            image = self.service.cached_image(request.path[len(_IMAGE_PREFIX) :])
            if image is None:
                return None
        return self.conclude(request, generation, framing, problem, None, image)

    def begin(self, scope: Scope) -> tuple[Request, bool, ApiError | None] | None:
        """The route stage: the request, whether it is a generation, and what is wrong with its
        framing (None if nothing); None for the admin routes."""
        path = scope["path"]
        if self.admin_prefix is not None and (
            path.startswith(self.admin_prefix) or path == _ADMIN_ROOT  # redirected to the page
        ):
            return None
        headers = dict(reversed(scope["headers"]))
        request = Request(time.time(), scope["method"], path, scope, headers)
        return request, self.route(request), framing_problem(scope, headers)

    def conclude(
        self,
        request: Request,
        generation: bool,
        framing: ApiError | None,
        body_problem: ApiError | None,
        ready: Answered | None,
        image: tuple[bytes, str] | None,
    ) -> Delivery:
        """The stages after the waiting ones: answer -> deviate -> faults -> journal.

        ``ready`` is the answer a waiting stage already made (a source's, or one made off the
        event loop); ``image`` the bytes of the image a download asks for, if it exists.
        """
        try:
            if framing is not None:
                answer, made = error_answer(framing, request.path, new_request_id()), None
                if generation:
                    self.trace(request, answer, 0)
            elif ready is not None:
                answer, made = ready
            elif generation:
                answer, made = self.answer_generation(request, body_problem)
            else:
                answer, made = self.answer_other(request, image), None
            if self.deviate is not None:
                answer = self.deviate(answer, request.path)
            prefer = request.headers.get(b"prefer")
            if prefer is None and (not generation or self.plan.idle):
                self.record(request, answer, answer.status, generation, made=made)
                return Delivery(answer)
            return self.decide_delivery(request, prefer, generation, answer, made)
        except Exception as error:
            return self.failed(request, generation, error)

    def decide_delivery(
        self,
        request: Request,
        prefer: bytes | None,
        generation: bool,
        answer: Answer,
        made: Generation | None,
    ) -> Delivery:
        """Faults and latency: how ``answer`` is sent (or the error it is swapped for); then
        the journal entry, written before anything is sent, as it will be sent: a test may look
        at a request while its answer is held back, and the answer no longer changes."""
        try:
            fault, delay = self.faults_for(request, prefer, generation, made)
        except ApiError as bad_prefer:
            answer = error_answer(bad_prefer, request.path, new_request_id())
            if generation:
                self.trace(request, answer, 0)
            fault, delay = None, 0.0
        own_answer = None
        if fault is not None and fault.status is not None:
            own_answer = answer.body
            forced = ApiError(fault.status, headers=fault.headers)
            request.request_id = new_request_id()
            answer = error_answer(forced, request.path, request.request_id)
            if generation:
                self.trace(request, answer, 0)
            if made is not None:
                self.ledger.refund(made.credits)  # a failed request is never charged
                made = None
        closed = fault is not None and fault.transport == "close"
        held = delay + (fault.slow_body if fault and fault.transport == "slow-body" else 0)
        self.record(
            request,
            answer,
            None if closed else answer.status,
            generation,
            made=made,
            fault=fault,
            own_answer=own_answer,
            held=held,
        )
        return Delivery(answer, fault, delay)

    def failed(self, request: Request, generation: bool, error: Exception) -> Delivery:
        """The 500 for an exception raised inside the fake; the error is kept in the journal
        and raised again once the answer is sent."""
        request.scope[RECORDED_ERROR] = error
        self.journal.errors.append(error)
        answer = error_answer(ApiError(500), request.path, new_request_id())
        self.record(request, answer, answer.status, generation, error=error)
        return Delivery(answer, error=error)

    def _slow_answers(self) -> CapacityLimiter:
        # Two at once: each may hold a decoded input image (up to 64 MiB) while it is checked.
        if self._slow is None:
            self._slow = CapacityLimiter(2)  # made on first use, inside the event loop
        return self._slow

    # Stages -------------------------------------------------------------------------------

    def route(self, request: Request) -> bool:
        """True for a generation (an API operation); False for anything else."""
        key = (request.method, request.path)
        if key in self._operations:
            return True
        trimmed = request.path.rstrip("/")
        if trimmed != request.path and (request.method, trimmed) in self._operations:
            request.path = trimmed  # the API's own docs post to the path with a trailing slash
            return True
        return False

    async def read_body(self, request: Request, receive: Receive) -> ApiError | None:
        """Read the whole body into ``request.body``, or up to the first byte over the cap.

        Returns the 400 or 413 the body earns; raises :class:`_ClientLeft` if the client left.
        """
        problem = self.length_problem(request)
        if problem is not None:
            return problem
        limit = self.body_limit
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientLeft
            chunk: bytes = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if not more or size > limit:
                break
        request.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if size > limit:
            return ApiError(413, _too_large(size, limit, at_least=more))
        return None

    def check_body(self, request: Request, body: bytes) -> ApiError | None:
        """:meth:`read_body` for a body the server has already read whole (no more than the
        cap: a server holding a request for :meth:`answer_now` lets a larger one go on)."""
        request.body = body
        return self.length_problem(request)

    def length_problem(self, request: Request) -> ApiError | None:
        """The 400 or 413 a request earns for its ``Content-Length`` alone, before its body."""
        declared = request.headers.get(b"content-length")
        if declared is None:
            return None
        text = declared.decode("latin-1").strip()
        if not (text.isascii() and text.isdigit()):
            return ApiError(400, f"Content-Length header {text!r} is not a number")
        if int(text) > self.body_limit:
            # Answered before the body is read (no "100 Continue"); the unread body makes
            # the connection useless for another request.
            return ApiError(413, _too_large(int(text), self.body_limit), headers=_CLOSE)
        return None

    async def answer_from_source(
        self, request: Request, body_problem: ApiError | None
    ) -> Answer | None:
        """The source's answer to an authorized request with a readable body; None: synthesise.

        Whatever the source says is kept in ``request.source`` for the journal.
        """
        assert self.source is not None
        if body_problem is not None:
            return None
        authorization = request.headers.get(b"authorization")
        try:
            self.service.authorize(authorization.decode("latin-1") if authorization else None)
        except ApiError:
            return None  # answer_generation answers the 401
        base = self.service.settings.public_base_url or base_url(request.scope, request.headers)
        answer, request.source = await self.source.answer(
            request.method, request.path, request.body, request.headers, base
        )
        return answer

    def answer_generation(
        self, request: Request, body_problem: ApiError | None
    ) -> tuple[Answer, Generation | None]:
        """Authorize, parse, validate, charge and synthesise: the answer to a generation.

        The order of the checks is the real API's: 401, then 415, then 413, then 400, then 403
        (out of credits). Every answer carries the API's tracing and cost headers.
        """
        request_id = request.request_id = new_request_id()
        headers, service = request.headers, self.service
        body: JSON = None
        try:
            authorization = headers.get(b"authorization")
            service.authorize(authorization.decode("latin-1") if authorization else None)
            content_type = headers.get(b"content-type")
            check_content_type(content_type.decode("latin-1") if content_type else None)
            if body_problem is not None:
                raise body_problem
            body = parse_json_body(request.body)
            made = service.generate(
                request.method, request.path, body, base_url(request.scope, headers)
            )
            self.ledger.charge(made.credits)
        except ApiError as error:
            answer = error_answer(error, request.path, request_id)
            request.model = _served_model(body, self._models)
            self.trace(request, answer, 0)
            return answer, None
        answer = json_answer(made.operation.success_status, made.content, request_id)
        request.model = made.operation.model
        self.trace(request, answer, made.credits)
        return answer, made

    def trace(self, request: Request, answer: Answer, credits: int) -> None:
        """Add the API's tracing and cost headers to a generation's answer."""
        if request.inference_id is None:
            request.inference_id = new_inference_id()
            client_id = request.headers.get(b"x-client-request-id")
            if client_id is not None:
                request.client_request_id = client_request_id(client_id.decode("latin-1"))
        headers = answer.headers
        headers.append((b"x-inference-id", request.inference_id.encode("ascii")))
        if request.client_request_id is not None:
            headers.append((b"x-client-request-id", request.client_request_id.encode("ascii")))
        # The cost headers as cost_headers() writes them: USD with 9 decimals, exactly.
        headers.append((b"x-aimlapi-credits-used", b"%d" % credits))
        headers.append((b"x-aimlapi-usd-spent", b"%d.%09d" % divmod(credits * _NANO_USD, 10**9)))
        headers.append(_EXPOSE_HEADERS)
        if b"origin" in request.headers:
            self.cors(request, headers)

    def cors(self, request: Request, headers: list[tuple[bytes, bytes]]) -> None:
        """Let a browser app on an allowed origin read the answer."""
        origin = request.headers.get(b"origin")
        if origin is None:
            return
        if "*" in self._cors_origins:
            headers.append((b"access-control-allow-origin", b"*"))
        elif origin.decode("latin-1") in self._cors_origins:
            headers.append((b"access-control-allow-origin", origin))
            headers.append((b"vary", b"Origin"))

    def is_image(self, request: Request) -> bool:
        """A download of an image the fake renders (not one a source handed out)."""
        return (
            request.path.startswith(_IMAGE_PREFIX)
            and request.method in ("GET", "HEAD")
            and (self.source is None or self.source.image(request.path) is None)
        )

    def answer_other(self, request: Request, image: tuple[bytes, str] | None) -> Answer:
        """An image download (``image``: its bytes and media type, None if there is none), an
        account route, a CORS preflight, or the 404/405 for a path the fake does not serve."""
        method, path = request.method, request.path
        recorded = self.source.image(path) if self.source and method in ("GET", "HEAD") else None
        if recorded is not None:
            request.source = "recorded image"
            image = recorded
        if image is not None:
            answer = image_answer(*image)
            if method == "HEAD":
                answer.body = b""
            return answer
        trimmed = path.rstrip("/") or "/"
        if trimmed in ACCOUNT_PATHS and method in ("GET", "HEAD"):
            query = request.scope.get("query_string", b"")
            answer = self.account.answer(trimmed, query, request.headers, new_request_id())
            self.cors(request, answer.headers)
            if method == "HEAD":
                answer.body = b""
            return answer
        operation_path = trimmed in self._methods
        allowed = self._methods.get(trimmed) or (["GET"] if trimmed in ACCOUNT_PATHS else None)
        if not allowed:
            return not_found(method, path, new_request_id())
        if method == "OPTIONS":
            answer = self.preflight(request, allowed)
        else:
            answer = method_not_allowed(method, path, allowed, new_request_id())
        if operation_path:  # an inference route: traced (and CORS), whatever the method
            self.trace(request, answer, 0)
        elif method == "OPTIONS":
            self.cors(request, answer.headers)
        return answer

    def preflight(self, request: Request, allowed: list[str]) -> Answer:
        """The answer to a browser's CORS preflight for an API route."""
        headers = [
            (b"allow", ", ".join(sorted({*allowed, "OPTIONS"})).encode("ascii")),
            (b"access-control-allow-methods", ", ".join(allowed).encode("ascii")),
            (b"access-control-max-age", b"600"),
        ]
        wanted = request.headers.get(b"access-control-request-headers")
        if wanted is not None:
            headers.append((b"access-control-allow-headers", wanted))
        return Answer(204, headers, b"")

    def faults_for(
        self, request: Request, prefer: bytes | None, generation: bool, made: Generation | None
    ) -> tuple[Fault | None, float]:
        """The fault to inject (from ``Prefer`` or the plan) and the seconds to wait first."""
        fault: Fault | None = None
        if prefer is not None:
            try:
                fault = Fault.from_prefer(prefer.decode("latin-1"))
            except ConfigError as problem:
                raise ApiError(400, f"Prefer header: {problem}") from None
        if generation and self.plan.has_rules and (fault is None or fault.only_delays):
            picked = self.plan.pick(lambda: _model_of(made, request))
            if picked is not None:
                fault = (
                    Fault(
                        picked.status,
                        picked.retry_after,
                        picked.delay + fault.delay,
                        picked.transport,
                        picked.slow_body,
                    )
                    if fault is not None
                    else picked
                )
        delay = fault.delay if fault is not None else 0.0
        if generation and made is not None and (fault is None or fault.status is None):
            delay += self.plan.delay_for(lambda: self.latency_scale(made))
        return fault, min(delay, MAX_DELAY_SECONDS)

    def latency_scale(self, made: Generation) -> float:
        """Images, or megapixels of all images, that a successful generation produced."""
        latency, request = self.plan.latency, made.request
        if latency is not None and latency.per == "megapixel":
            return request.width * request.height / MEGAPIXEL * request.count
        return float(request.count)

    async def deliver(self, delivery: Delivery, receive: Receive, send: Send) -> None:
        """The send stage: the answer, the way its faults and latency say."""
        if delivery.plain:
            await send_answer(delivery.answer, send)
            return
        answer, fault, delay = delivery.answer, delivery.fault, delivery.delay
        transport = fault.transport if fault is not None else None

        async def sending() -> None:
            if delay:
                await anyio.sleep(delay)
            if transport is None:
                await send_answer(answer, send)
            elif transport == "truncate":
                start = {"type": "http.response.start", "status": answer.status}
                await send({**start, "headers": answer.headers})
                half = answer.body[: len(answer.body) // 2]
                await send({"type": "http.response.body", "body": half, "more_body": True})
                _abort(receive)
            elif transport == "slow-body":
                assert fault is not None
                await _trickle(answer, fault.slow_body, send)
            # "close": nothing is sent

        if delay or transport == "slow-body":
            finished = await _unless_disconnected(receive, sending)
        else:
            await sending()
            finished = True
        if transport == "close" and finished:
            _abort(receive)

    def deliver_app(self, delivery: Delivery) -> ASGIApp:
        """:meth:`deliver` as an ASGI app, for a server that runs the rest of a pipeline it
        began with :meth:`answer_now` as it runs apps (a task, with its error handling)."""

        async def delivering(scope: Scope, receive: Receive, send: Send) -> None:
            await self.deliver(delivery, receive, send)
            if delivery.error is not None:
                raise delivery.error

        return delivering

    def record(
        self,
        request: Request,
        answer: Answer,
        status: int | None,
        generation: bool,
        *,
        made: Generation | None = None,
        fault: Fault | None = None,
        own_answer: bytes | None = None,
        error: Exception | None = None,
        held: float = 0.0,
    ) -> None:
        """Write the journal entry, the usage log's row, and tell the observers (the request log).

        ``status`` is None when no answer is sent (a closed connection); ``held`` is how long
        the answer is still to be held back (delay, trickle), counted in the duration.
        """
        if request.model is not None and request.inference_id is not None:
            succeeded = made is not None and status is not None and status < 400
            self.usage.record(
                LogEntry(
                    request.received_at,
                    request.model,
                    "succeeded" if succeeded else "failed",
                    made.credits if made is not None and succeeded else 0,
                    request.inference_id,
                    request.request_id,
                    request.client_request_id,
                )
            )
        if not self.journal.limit and not self.observers:
            return
        scope = request.scope
        sent = status is not None
        entry = JournalEntry(
            request.received_at,
            request.method,
            scope["path"],
            scope.get("query_string", b""),
            scope["headers"],
            request.body,
            generation,
            status,
            answer.headers if sent else [],
            answer.body if sent and answer.is_json else None,
            time.time() - request.received_at + held,
            fault=str(fault) if fault is not None else None,
            own_answer=own_answer,
            error=error,
            request_schema=made.operation.request_schema if made is not None else None,
            unfetched_inputs=made.unfetched_inputs if made is not None else (),
            source=request.source,
            served_model=request.model,
        )
        self.journal.record(entry)
        for observer in self.observers:
            observer(entry)


_CLOSE = {"Connection": "close"}


def framing_problem(scope: Scope, headers: dict[bytes, bytes]) -> ApiError | None:
    """The error for a request the fake cannot take as framed: no ``Host`` on HTTP/1.1, or a
    transfer or content coding it does not decode. None for the usual request."""
    if b"host" not in headers and scope.get("http_version") == "1.1":
        message = "Bad Request: the Host header is missing (HTTP/1.1 requires it)"
        return ApiError(400, message, headers=_CLOSE)
    coding = headers.get(b"transfer-encoding")
    if coding is not None and coding.strip().lower() != b"chunked":
        shown = coding.decode("latin-1")
        return ApiError(
            501,
            f"Not Implemented: Transfer-Encoding {shown!r} is not supported, expected 'chunked'",
            headers=_CLOSE,
        )
    coding = headers.get(b"content-encoding")
    if coding is not None and coding.strip().lower() not in (b"identity", b""):
        shown = coding.decode("latin-1")
        return ApiError(
            415,
            f"Unsupported Media Type: Content-Encoding {shown!r} is not supported, "
            "send the body uncompressed",
            headers=_CLOSE,
        )
    return None


def check_admin_paths(paths: Iterable[str]) -> None:
    """Raise :class:`ConfigError` for a spec path the admin routes would hide."""
    prefix = ADMIN_PREFIX.rstrip("/")
    for path in paths:
        if path == prefix or path.startswith(ADMIN_PREFIX):
            raise ConfigError(
                f"the spec path {path!r} collides with the admin routes under {ADMIN_PREFIX}; "
                "switch them off (--no-admin) to serve it"
            )


class _ClientLeft(Exception):
    """The client disconnected before it had sent its whole request."""


def base_url(scope: Scope, headers: dict[bytes, bytes]) -> str:
    """The URL the client reached the fake at (``http://host:port``), from ``Host`` if it is fit."""
    host = headers.get(b"host", b"").decode("latin-1")
    if not host or _HOST.fullmatch(host) is None:
        server = scope.get("server")
        if server is None:
            host = "localhost"
        else:
            name, port = server
            name = f"[{name}]" if ":" in str(name) else str(name)
            host = name if port in (None, 80, 443) else f"{name}:{port}"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}"


async def send_answer(answer: Answer, send: Send) -> None:
    if send_whole(send, answer.status, answer.headers, answer.body):
        return  # under uvicorn: head and body in one write (see protocol.send_whole)
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    await send({"type": "http.response.body", "body": answer.body})


def _served_model(body: JSON, models: frozenset[str]) -> str | None:
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) and model in models else None


def _model_of(made: Generation | None, request: Request) -> str | None:
    if made is not None:
        return made.operation.model
    try:
        body = parse_json_body(request.body)
    except ApiError:
        return None
    model = body.get("model") if isinstance(body, dict) else None
    return model if isinstance(model, str) else None


async def _trickle(answer: Answer, seconds: float, send: Send) -> None:
    """Send the body in pieces spread over ``seconds`` (the headers go at once)."""
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    body = answer.body
    size = max(1, -(-len(body) // SLOW_BODY_PIECES))
    pieces = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
    pause = seconds / len(pieces)
    for piece in pieces:
        await anyio.sleep(pause)
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _unless_disconnected(receive: Receive, work: Callable[[], Awaitable[None]]) -> bool:
    """Run ``work`` (which waits); True if it finished, False if the client left first.

    A client that timed out should not keep a delayed answer, or a server shutting down, waiting.
    """
    finished = False
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            group.cancel_scope.cancel()

        group.start_soon(watch)
        await work()
        finished = True
        group.cancel_scope.cancel()
    return finished


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


def _too_large(size: int, limit: int, *, at_least: bool = False) -> str:
    amount = f"at least {size}" if at_least else str(size)
    return f"Payload Too Large: body of {amount} bytes is over the limit of {limit} bytes"

"""Admin routes under ``/__mock/``: the journal and the fault controls, for non-Python clients.

``/__mock/`` is reserved: no API path starts with it (a spec that declares one is refused while
these routes are on), and the request pipeline neither journals nor faults these requests.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import anyio
from anyio import to_thread
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..controls.faults import rule_text, showable
from ..controls.journal import JournalEntry
from ..engine.body import parse_json_body
from ..engine.ids import new_request_id
from ..errors import ApiError, ConfigError
from ..types import Answer
from .answers import error_answer
from .pipeline import ADMIN_PREFIX, check_admin_paths

if TYPE_CHECKING:
    from .app import FakeApp

Endpoint = Callable[[Request], Awaitable[Response]]

MAX_ADMIN_BODY_BYTES = 64 * 1024
PAGE_SIZE = 100
"""Journal entries ``GET /__mock/requests`` returns when no ``limit`` is given."""
MAX_PAGE_SIZE = 1000
PAGE_BYTES = 1024 * 1024
"""A page also ends before the entries in it hold more than this (bodies and headers)."""
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SIMPLE_MEDIA_TYPES = frozenset(
    {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
)
"""Content types a web page may send cross-origin without asking first (CORS "simple")."""
RULE_FIELDS: dict[str, tuple[type, ...]] = {
    "code": (int,),
    "retry_after": (int,),
    "delay": (int, float),
    "close": (bool,),
    "truncate": (bool,),
    "slow_body": (bool, int, float),
    "times": (int,),
    "probability": (int, float),
    "seed": (int,),
    "model": (str,),
}
"""The fields of a fault rule sent as a JSON object, and the JSON types each takes."""


def admin_routes(fake: FakeApp) -> list[Route]:
    """The routes, bound to one fake's journal, fault plan and ledger."""
    settings, journal, plan, ledger = fake.settings, fake.journal, fake.faults, fake.ledger
    check_admin_paths(fake.service.spec_set.paths)
    prefix = ADMIN_PREFIX.rstrip("/")

    def error(request: Request, status: int, message: str) -> Response:
        return as_response(
            error_answer(ApiError(status, message), request.url.path, new_request_id())
        )

    async def list_requests(request: Request) -> Response:
        """One page of the journal, oldest first; ``limit`` (100), ``offset`` and ``model``; a
        page also ends before its entries hold more than :data:`PAGE_BYTES`.

        ``X-Total-Count`` says how many entries match, a ``Link`` header names the next page.
        Serialised in small pieces, so a large page does not hold other clients up.
        """
        query = request.query_params
        model = query.get("model") or None
        offset = _count(query, "offset", 0, None)
        limit = _count(query, "limit", PAGE_SIZE, MAX_PAGE_SIZE)
        if model is None:
            entries, total = journal.page(offset, limit)  # a snapshot and a slice
        else:  # decodes every body to find the model: in a worker thread
            entries, total = await to_thread.run_sync(
                lambda: journal.page(offset, limit, model=model)
            )
        entries = _within_bytes(entries, PAGE_BYTES)
        content = await _serialise(entries)
        headers = {"X-Total-Count": str(total)}
        if offset + len(entries) < total:
            following = request.url.include_query_params(offset=offset + len(entries), limit=limit)
            headers["Link"] = f'<{following.path}?{following.query}>; rel="next"'
        return Response(content, media_type="application/json", headers=headers)

    async def clear_requests(request: Request) -> Response:
        journal.clear()
        return Response(status_code=204)

    async def show_faults(request: Request) -> Response:
        return JSONResponse(plan.describe())

    async def add_fault(request: Request) -> Response:
        """Body: a rule as JSON text (``"code=503, times=2"``) or object (``{"code": 503}``)."""
        try:
            value = await _json(request)
            if isinstance(value, dict):
                value = rule_text(_checked_rule(value))
            if not isinstance(value, str):
                raise ConfigError('expected a rule such as "code=503, times=2" or {"code": 503}')
            rule = plan.add(value)
        except ConfigError as problem:
            return error(request, 400, f"Fault rule: {problem}")
        return JSONResponse({"fault": showable(str(rule))}, status_code=201)

    async def clear_faults(request: Request) -> Response:
        plan.reset(latency=plan.latency)
        return Response(status_code=204)

    async def set_latency(request: Request) -> Response:
        """Body: latency as JSON text (``"uniform=0.2..1.5"``), or null for none."""
        try:
            value = await _json(request)
            if value is not None and not isinstance(value, str):
                raise ConfigError('expected latency such as "fixed=0.5", or null')
            latency = plan.set_latency(value)
        except ConfigError as problem:
            return error(request, 400, f"Latency: {problem}")
        return JSONResponse({"latency": str(latency) if latency else None})

    async def clear_latency(request: Request) -> Response:
        plan.set_latency(None)
        return Response(status_code=204)

    async def reset(request: Request) -> Response:
        """Forget the journal and logs; faults, latency and credits go back to the settings."""
        fake.reset()
        return Response(status_code=204)

    async def show_credits(request: Request) -> Response:
        return JSONResponse({"credits": ledger.balance})

    async def set_credits(request: Request) -> Response:
        """Body: a whole number of credits, or null for unlimited."""
        try:
            value = await _json(request)
            if isinstance(value, str) and value.strip().lower() in ("null", "unlimited"):
                value = None
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError("expected a whole number of credits, or null for unlimited")
            if value is not None and value < 0:
                raise ConfigError(f"credits must not be negative, got {value}")
            ledger.set(value)
        except ConfigError as problem:
            return error(request, 400, f"Credits: {problem}")
        return JSONResponse({"credits": ledger.balance})

    by_path: dict[str, dict[str, Endpoint]] = {
        f"{prefix}/requests": {"GET": list_requests, "DELETE": clear_requests},
        f"{prefix}/faults": {"GET": show_faults, "POST": add_fault, "DELETE": clear_faults},
        f"{prefix}/latency": {"PUT": set_latency, "DELETE": clear_latency},
        f"{prefix}/reset": {"POST": reset},
        f"{prefix}/credits": {"GET": show_credits, "PUT": set_credits},
    }
    token = settings.admin_token
    return [
        Route(path, _by_method(path, endpoints, token, error), methods=list(endpoints))
        for path, endpoints in by_path.items()
    ]


def _by_method(
    path: str,
    endpoints: dict[str, Endpoint],
    token: str | None,
    error: Callable[[Request, int, str], Response],
) -> Endpoint:
    """One endpoint for a path, so a 405 lists every method the path takes; it checks the admin
    token and refuses cross-origin browser requests before any endpoint runs."""
    allowed = sorted(set(endpoints) | ({"HEAD"} if "GET" in endpoints else set()))

    async def endpoint(request: Request) -> Response:
        method = request.method if request.method != "HEAD" else "GET"
        if method not in endpoints:  # Starlette's own 405 would not list every method
            message = f"Method {request.method} is not allowed on {path}; use {', '.join(allowed)}"
            response = error(request, 405, message)
            response.headers["Allow"] = ", ".join(allowed)
            return response
        if token is not None and not _has_token(request, token):
            return error(
                request,
                401,
                "Unauthorized: admin routes need 'Authorization: Bearer <admin token>' "
                "(the token aimlapi-mock printed at start-up, or --admin-token)",
            )
        if method in STATE_CHANGING:
            refusal = cross_origin_refusal(request.headers)
            if refusal is not None:
                return error(request, 403, f"Forbidden: {refusal}")
        try:
            return await endpoints[method](request)
        except ApiError as problem:
            return error(request, problem.status, problem.message)

    return endpoint


def _has_token(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8")
    )


def cross_origin_refusal(headers: Mapping[str, str]) -> str | None:
    """Why a state-changing admin call looks like it came from a web page, or None.

    A page on another origin can send "simple" requests (text/plain or form bodies) without the
    browser asking first; it always names itself in ``Origin`` or ``Sec-Fetch-Site``.
    """
    site = headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return f"cross-site browser request (Sec-Fetch-Site: {site}) to an admin route"
    origin = headers.get("origin")
    if origin is not None:
        host = urlsplit(origin).netloc if origin != "null" else "null"
        if host.lower() != headers.get("host", "").lower():
            return f"request from another origin ({origin!r}) to an admin route"
    media_type = headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type in SIMPLE_MEDIA_TYPES:
        return (
            f"Content-Type {media_type!r} is what any web page may send; "
            "send admin bodies as application/json"
        )
    return None


async def _json(request: Request) -> object:
    """The body as JSON (deep or huge bodies get a 400 or 413); a bare rule or ``null`` as text."""
    raw = bytearray()
    try:
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > MAX_ADMIN_BODY_BYTES:
                limit = MAX_ADMIN_BODY_BYTES
                raise ApiError(413, f"Payload Too Large: admin bodies take at most {limit} bytes")
    except ClientDisconnect:
        raise ApiError(400, "Bad Request: the client left before sending the body") from None
    text = bytes(raw).strip()
    if not text or text == b"null":
        return None
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type.endswith(("/json", "+json")) or text[:1] in (b"{", b"[", b'"'):
        return parse_json_body(bytes(raw))
    try:
        return text.decode("utf-8")  # a bare rule, such as code=503, times=2
    except UnicodeDecodeError:
        raise ApiError(400, "Body is not valid UTF-8") from None


def _checked_rule(values: dict[str, object]) -> dict[str, object]:
    """``values`` (a rule as a JSON object) if every field is known and of the right type."""
    for name, value in values.items():
        key = name.replace("-", "_")
        types = RULE_FIELDS.get(key)
        if types is None:
            raise ConfigError(f"unknown field {name!r}; expected one of {', '.join(RULE_FIELDS)}")
        if value is None:
            continue
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            wanted = " or ".join(_JSON_TYPE_NAMES[kind] for kind in types)
            raise ConfigError(f"field {name!r} must be {wanted}, got {json.dumps(value)[:60]}")
    return values


_JSON_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _count(query: Mapping[str, str], name: str, default: int, most: int | None) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or (most is not None and int(text) > most):
        bound = f" up to {most}" if most is not None else ""
        raise ApiError(400, f"Query parameter {name}={text!r} must be a whole number{bound}")
    return int(text)


def _within_bytes(entries: list[JournalEntry], most: int) -> list[JournalEntry]:
    """The first of ``entries`` that together hold at most ``most`` bytes (at least one)."""
    held = 0
    for count, entry in enumerate(entries):
        held += entry.size
        if held > most and count:
            return entries[:count]
    return entries


async def _serialise(entries: list[JournalEntry]) -> bytes:
    """The entries as a JSON list, made one entry at a time on the event loop, which serves
    other clients between two entries: each waits at most for one entry (a few ms for the
    largest), where a worker thread would make them queue for the GIL for tens of ms."""
    pieces = []
    for entry in entries:
        pieces.append(json.dumps(entry.as_json(), ensure_ascii=False, separators=(",", ":")))
        await anyio.sleep(0)
    return ("[" + ",".join(pieces) + "]").encode("utf-8")


def as_response(answer: Answer) -> Response:
    """``answer`` as a Starlette response, for the routes Starlette serves."""
    response = Response(answer.body, status_code=answer.status)
    response.raw_headers = answer.headers
    return response

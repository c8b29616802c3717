"""Admin routes under ``/__mock/``: the journal and the fault controls, for non-Python clients.

``/__mock/`` is reserved: no API path starts with it (a spec that declares one is refused while
these routes are on), and the request pipeline neither journals nor faults these requests.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..controls.faults import rule_text
from ..engine.ids import new_request_id
from ..errors import ApiError, ConfigError
from ..types import Answer
from .answers import error_answer
from .pipeline import ADMIN_PREFIX

if TYPE_CHECKING:
    from .app import FakeApp

Endpoint = Callable[[Request], Awaitable[Response]]


def admin_routes(fake: FakeApp) -> list[Route]:
    """The routes, bound to one fake's journal, fault plan and ledger."""
    journal, plan, ledger = fake.journal, fake.faults, fake.ledger
    prefix = ADMIN_PREFIX.rstrip("/")
    for path in fake.service.spec_set.paths:
        if path == prefix or path.startswith(ADMIN_PREFIX):
            raise ConfigError(
                f"the spec path {path!r} collides with the admin routes under {ADMIN_PREFIX}; "
                "switch them off (--no-admin) to serve it"
            )

    def error(request: Request, status: int, message: str) -> Response:
        return as_response(
            error_answer(ApiError(status, message), request.url.path, new_request_id())
        )

    async def list_requests(request: Request) -> Response:
        model = request.query_params.get("model")
        entries = journal.filter(model=model) if model else journal.entries
        return JSONResponse([entry.as_json() for entry in entries])

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
                value = rule_text(value)
            if not isinstance(value, str):
                raise ConfigError('expected a rule such as "code=503, times=2" or {"code": 503}')
            rule = plan.add(value)
        except ConfigError as problem:
            return error(request, 400, f"Fault rule: {problem}")
        return JSONResponse({"fault": str(rule)}, status_code=201)

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
    return [
        Route(path, _by_method(endpoints), methods=list(endpoints))
        for path, endpoints in by_path.items()
    ]


def _by_method(endpoints: dict[str, Endpoint]) -> Endpoint:
    """One endpoint for a path, so a 405 lists every method the path takes."""

    async def endpoint(request: Request) -> Response:
        return await endpoints[request.method if request.method != "HEAD" else "GET"](request)

    return endpoint


async def _json(request: Request) -> object:
    raw = await request.body()
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        # A bare rule sent as text/plain is accepted too.
        return raw.decode("utf-8", errors="replace")


def as_response(answer: Answer) -> Response:
    """``answer`` as a Starlette response, for the routes Starlette serves."""
    response = Response(answer.body, status_code=answer.status)
    response.raw_headers = answer.headers
    return response

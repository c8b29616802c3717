"""Admin routes under ``/__mock/``: the journal and the fault controls, for non-Python clients.

``/__mock/`` is reserved: no API path starts with it (a spec that declares one is refused while
these routes are on), and the interceptor neither journals nor faults these requests.
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..config import Settings
from ..controls.faults import FaultPlan, rule_text
from ..controls.journal import Journal
from ..engine.ids import new_request_id
from ..errors import ApiError, ConfigError
from ..spec.load import SpecSet
from .interceptor import ADMIN_PREFIX, RenderError


def admin_routes(
    settings: Settings,
    spec_set: SpecSet,
    journal: Journal,
    plan: FaultPlan,
    render_error: RenderError,
) -> list[Route]:
    """The routes, bound to one fake's journal and fault plan."""
    prefix = ADMIN_PREFIX.rstrip("/")
    for path in spec_set.paths:
        if path == prefix or path.startswith(ADMIN_PREFIX):
            raise ConfigError(
                f"the spec path {path!r} collides with the admin routes under {ADMIN_PREFIX}; "
                "switch them off (--no-admin) to serve it"
            )

    def error(request: Request, status: int, message: str) -> Response:
        return render_error(ApiError(status, message), request.url.path, new_request_id())

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
        """Forget the journal; faults and latency go back to the configured ones."""
        journal.clear()
        plan.reset(settings.faults, settings.latency)
        return Response(status_code=204)

    return [
        Route(f"{prefix}/requests", list_requests, methods=["GET"]),
        Route(f"{prefix}/requests", clear_requests, methods=["DELETE"]),
        Route(f"{prefix}/faults", show_faults, methods=["GET"]),
        Route(f"{prefix}/faults", add_fault, methods=["POST"]),
        Route(f"{prefix}/faults", clear_faults, methods=["DELETE"]),
        Route(f"{prefix}/latency", set_latency, methods=["PUT"]),
        Route(f"{prefix}/latency", clear_latency, methods=["DELETE"]),
        Route(f"{prefix}/reset", reset, methods=["POST"]),
    ]


async def _json(request: Request) -> object:
    raw = await request.body()
    try:
        return json.loads(raw) if raw.strip() else None
    except ValueError:
        # A bare rule sent as text/plain is accepted too.
        return raw.decode("utf-8", errors="replace")

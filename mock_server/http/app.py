"""The HTTP layer: a Starlette app around :class:`~mock_server.service.ImageService`."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ..config import Settings
from ..controls.faults import FaultPlan
from ..controls.journal import Journal
from ..engine.ids import new_request_id
from ..engine.service import IMAGE_ROUTE, ImageService
from ..errors import ApiError
from ..images.memory import return_large_blocks_to_the_system
from ..spec.load import SpecSet, load_specs
from . import endpoints
from .admin import admin_routes
from .deviations import DeviationMiddleware
from .interceptor import DirectRoutes, Interceptor


def create_app(settings: Settings | None = None, *, spec_set: SpecSet | None = None) -> Starlette:
    """Build the fake as an ASGI app.

    ``settings`` defaults to :class:`Settings()` (bundled specs, any bearer token accepted);
    ``spec_set`` skips loading when the caller already has one.
    """
    settings = settings or Settings()
    service = ImageService(settings, spec_set or load_specs(settings.specs))
    generation, image = endpoints.Generation(service), endpoints.Image(service)
    routes = [
        Route(path, generation, methods=service.spec_set.methods_for(path))
        for path in service.spec_set.paths
    ]
    routes.append(Route(IMAGE_ROUTE + "/{name}", image, methods=["GET"]))
    journal, plan = Journal(settings.journal_size), FaultPlan(settings.faults, settings.latency)
    if settings.admin:
        routes.extend(admin_routes(settings, service.spec_set, journal, plan, _error_response))
    controls = Middleware(
        Interceptor, service=service, journal=journal, plan=plan, render_error=_error_response
    )
    # Deviations rewrite finished responses inside the journal and faults, so the journal shows
    # what clients got; without any deviation, nothing is added to the request path.
    deviating = [Middleware(DeviationMiddleware, settings.deviations, settings.url_secret)]
    app = FakeApp(
        routes=routes,
        middleware=[controls, *(deviating if settings.deviations else [])],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    if not settings.deviations:  # deviations rewrite answers: then all go the long way
        app.direct = DirectRoutes(generation, image, service=service, journal=journal, plan=plan)
    app.state.service = service
    app.state.journal = journal
    app.state.faults = plan
    return app


class FakeApp(Starlette):
    """Starlette, with the API routes answered in front of it when there is nothing to inject.

    At thousands of requests a second, Starlette's middleware stack and router cost about as much
    as the fake's own work; :class:`~mock_server.interceptor.DirectRoutes` answers those
    requests exactly as the routes behind Starlette would (the same endpoint code runs).
    """

    direct: DirectRoutes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        direct = self.direct
        if (
            direct is None
            or scope["type"] != "http"
            or not await direct.serve(scope, receive, send)
        ):
            await super().__call__(scope, receive, send)


def create_app_from_env() -> Starlette:
    """App factory for uvicorn worker processes: settings come from ``AIMLAPI_MOCK_*``."""
    return_large_blocks_to_the_system()
    return create_app(Settings.from_env())


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    path = request.url.path
    if exc.status_code == 404:
        message = f"Cannot {request.method} {path}"
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"Method {request.method} is not allowed on {path}; use {allowed}"
    else:
        message = str(exc.detail)
    error = ApiError(exc.status_code, message, headers=dict(exc.headers or {}))
    return _error_response(error, path, new_request_id())


async def _server_error(request: Request, exc: Exception) -> Response:
    return _error_response(ApiError(500), request.url.path, new_request_id())


def _error_response(error: ApiError, path: str, request_id: str) -> Response:
    """The error envelope as a Starlette response, for the routes that use Starlette's."""
    answer = endpoints.error_answer(error, path, request_id)
    response = Response(answer.body, status_code=answer.status)
    response.raw_headers = answer.headers
    return response

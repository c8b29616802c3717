"""The HTTP layer: a Starlette app around :class:`~mock_server.service.ImageService`."""

from __future__ import annotations

import json

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .addresses import url_parts
from .admin import admin_routes
from .config import Settings
from .deviations import DeviationMiddleware
from .errors import ApiError, error_envelope
from .faults import FaultPlan
from .ids import new_request_id
from .interceptor import Interceptor
from .journal import Journal
from .memory import return_large_blocks_to_the_system
from .parsing import check_content_type, parse_json_body
from .service import IMAGE_ROUTE, ImageService
from .specs import SpecSet, load_specs
from .types import JSON

JSON_MEDIA_TYPE = "application/json; charset=utf-8"


def create_app(settings: Settings | None = None, *, spec_set: SpecSet | None = None) -> Starlette:
    """Build the fake as an ASGI app.

    ``settings`` defaults to :class:`Settings()` (bundled specs, any bearer token accepted);
    ``spec_set`` skips loading when the caller already has one.
    """
    settings = settings or Settings()
    service = ImageService(settings, spec_set or load_specs(settings.specs))
    handlers = _Handlers(service)
    routes = [
        Route(path, handlers.generate, methods=service.spec_set.methods_for(path))
        for path in service.spec_set.paths
    ]
    routes.append(Route(IMAGE_ROUTE + "/{name}", handlers.image, methods=["GET"]))
    journal, plan = Journal(settings.journal_size), FaultPlan(settings.faults, settings.latency)
    if settings.admin:
        routes.extend(admin_routes(settings, service.spec_set, journal, plan, _error_response))
    controls = Middleware(
        Interceptor, service=service, journal=journal, plan=plan, render_error=_error_response
    )
    # Deviations rewrite finished responses inside the journal and faults, so the journal shows
    # what clients got; without any deviation, nothing is added to the request path.
    deviating = [Middleware(DeviationMiddleware, settings.deviations, settings.url_secret)]
    app = Starlette(
        routes=routes,
        middleware=[controls, *(deviating if settings.deviations else [])],
        exception_handlers={HTTPException: handlers.http_error, Exception: handlers.server_error},
    )
    app.state.service = service
    app.state.journal = journal
    app.state.faults = plan
    return app


def create_app_from_env() -> Starlette:
    """App factory for uvicorn worker processes: settings come from ``AIMLAPI_MOCK_*``."""
    return_large_blocks_to_the_system()
    return create_app(Settings.from_env())


class _Handlers:
    def __init__(self, service: ImageService) -> None:
        self.service = service

    async def generate(self, request: Request) -> Response:
        request_id = _new_id()
        path, base_url = url_parts(request)
        try:
            self.service.authorize(request.headers.get("authorization"))
            check_content_type(request.headers.get("content-type"))
            body = parse_json_body(await _read_body(request, self.service.settings.max_body_bytes))
            generation = self.service.generate(request.method, path, body, base_url)
        except ApiError as error:
            return _error_response(error, path, request_id)
        return _json_response(generation.operation.success_status, generation.body, request_id)

    async def image(self, request: Request) -> Response:
        found = await self.service.image(request.path_params["name"])
        if found is None:
            return _error_response(
                ApiError(404, f"Cannot GET {request.url.path}"), request.url.path, _new_id()
            )
        data, media_type = found
        return Response(
            data,
            media_type=media_type,
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = f"Cannot {request.method} {request.url.path}"
        elif exc.status_code == 405:
            allowed = (exc.headers or {}).get("Allow", "")
            message = f"Method {request.method} is not allowed on {request.url.path}; use {allowed}"
        else:
            message = str(exc.detail)
        error = ApiError(exc.status_code, message, headers=dict(exc.headers or {}))
        return _error_response(error, request.url.path, _new_id())

    async def server_error(self, request: Request, exc: Exception) -> Response:
        return _error_response(ApiError(500), request.url.path, _new_id())


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise ApiError(400, f"Content-Length header {declared!r} is not a number")
        if int(declared) > limit:
            raise ApiError(413, _too_large(int(declared), limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, _too_large(size, limit, at_least=True))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int, *, at_least: bool = False) -> str:
    amount = f"at least {size}" if at_least else str(size)
    return f"Payload Too Large: body of {amount} bytes is over the limit of {limit} bytes"


def _json_response(
    status: int, body: JSON, request_id: str, headers: dict[str, str] | None = None
) -> Response:
    try:
        content = _encode_json(body).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (legal in JSON text) echoed from a request
        content = json.dumps(body, separators=(",", ":")).encode("ascii")
    return Response(
        content,
        status_code=status,
        media_type=JSON_MEDIA_TYPE,
        headers={"x-request-id": request_id, **(headers or {})},
    )


def _error_response(error: ApiError, path: str, request_id: str) -> Response:
    body = error_envelope(error.status, error.message, path, request_id, error.violations)
    return _json_response(error.status, body, request_id, error.headers)


def _new_id() -> str:
    return new_request_id()


# json.dumps(body, ensure_ascii=False, separators=(",", ":")) without a new encoder each call.
_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

"""The journal page and what watches a running fake: ``/__mock/`` (HTML), its assets, the live
event stream, the health probe and the Prometheus metrics.

The page is three hand-written files shipped inside the package (``assets/``), served from memory
with a content security policy that allows nothing but this origin: it works offline.
"""

from __future__ import annotations

import time
from importlib import resources

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import __version__
from ..spec.load import SpecSet
from .events import EventHub, EventStream
from .metrics import Metrics
from .pipeline import ADMIN_PREFIX

ASSET_TYPES = {
    "journal.html": "text/html; charset=utf-8",
    "journal.css": "text/css; charset=utf-8",
    "journal.js": "text/javascript; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def page_routes(
    spec_set: SpecSet, hub: EventHub, metrics: Metrics, started: float | None = None
) -> list[Route]:
    """The page, its assets, ``events``, ``health`` and ``metrics``, bound to one fake.

    ``started`` is when the fake started (``time.monotonic()``; default now), for its uptime.
    """
    prefix = ADMIN_PREFIX.rstrip("/")
    started = time.monotonic() if started is None else started
    assets = {name: _asset(name) for name in ASSET_TYPES}
    models = sorted(spec_set.models)
    operations = {
        f"{method} {path}": sorted(by_model)
        for (method, path), by_model in sorted(spec_set.operations.items())
    }

    def asset(name: str) -> Response:
        headers = {
            "content-security-policy": POLICY,
            "x-content-type-options": "nosniff",
            "cache-control": "no-cache",
            "referrer-policy": "no-referrer",
        }
        return Response(assets[name], media_type=ASSET_TYPES[name], headers=headers)

    async def page(request: Request) -> Response:
        return asset("journal.html")

    async def page_asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in assets or name == "journal.html":
            return Response(status_code=404)
        return asset(name)

    async def health(request: Request) -> Response:
        # The app exists only once its specs are loaded: answering at all means ready.
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "models": models,
                "operations": operations,
                "uptime_seconds": round(time.monotonic() - started, 3),
            },
            headers={"cache-control": "no-store"},
        )

    async def metrics_text(request: Request) -> Response:
        text, media_type = metrics.exposition()
        return Response(text, headers={"content-type": media_type})

    return [
        Route(f"{prefix}/", page, methods=["GET"]),
        Route(f"{prefix}/assets/{{name}}", page_asset, methods=["GET"]),
        Route(f"{prefix}/events", EventStream(hub), methods=["GET"]),
        Route(f"{prefix}/health", health, methods=["GET"]),
        Route(f"{prefix}/metrics", metrics_text, methods=["GET"]),
    ]


def _asset(name: str) -> bytes:
    return resources.files(__package__).joinpath("assets", name).read_bytes()

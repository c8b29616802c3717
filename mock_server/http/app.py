"""The fake as one ASGI app: the request pipeline, with Starlette behind it for the admin routes."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings
from ..controls.faults import FaultPlan
from ..controls.journal import Journal
from ..controls.ledger import CreditLedger
from ..controls.usage import UsageLog
from ..engine.ids import new_request_id
from ..engine.service import ImageService
from ..errors import ApiError
from ..images.memory import return_large_blocks_to_the_system
from ..images.url_secret import installation_secret
from ..spec.load import SpecSet, load_specs
from ..types import Source
from .account import Account
from .answers import error_answer, method_not_allowed, not_found
from .deviations import Deviations
from .events import EventHub
from .metrics import Metrics
from .pipeline import IMAGE_ROUTE, Observer, Pipeline, check_admin_paths

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from ..controls.shared import SharedStore
    from ..record.replay import Replay


class FakeApp:
    """The ASGI app of one fake: its engine, journal and fault plan, and the pipeline over them."""

    def __init__(
        self,
        settings: Settings,
        spec_set: SpecSet,
        observers: tuple[Observer, ...] = (),
        source: Source | None = None,
        shared: SharedStore | None = None,
    ) -> None:
        if not settings.url_secret:
            settings = replace(settings, url_secret=installation_secret())
        self.settings = settings
        self.started = time.monotonic()
        self.service = ImageService(settings, spec_set, IMAGE_ROUTE)
        limits = (
            settings.journal_size,
            settings.journal_bytes,
            settings.journal_body_bytes,
            settings.redact_headers,
        )
        if shared is None:
            self.journal = Journal(*limits)
            self.faults = FaultPlan(settings.faults, settings.latency)
        else:  # one of several workers: the store holds what the admin routes show and change
            from ..controls.shared import SharedJournal, SharedPlan

            self.journal = SharedJournal(shared, *limits)
            self.faults = SharedPlan(shared)
        self.ledger = CreditLedger(settings.credits)
        self.usage = UsageLog()
        self.events = EventHub(self.journal)
        self.metrics = Metrics(self.service, self.journal)
        if settings.admin:
            check_admin_paths(spec_set.paths)
            observers = (*observers, self.metrics, self.events)
        self._admin: ASGIApp | None = None
        self.replay: Replay | None = None
        if settings.replay:
            from ..record.replay import Replay

            self.replay = Replay.load(settings.replay, settings.replay_miss, settings.replay_ignore)
        deviations = (
            Deviations(settings.deviations, settings.url_secret) if settings.deviations else None
        )
        self.pipeline = Pipeline(
            self.service,
            self.journal,
            self.faults,
            admin=self._serve_admin,
            account=Account(self.service, self.ledger, self.usage),
            ledger=self.ledger,
            usage=self.usage,
            deviations=deviations,
            observers=observers,
            source=source or self.replay,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        await self.pipeline(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        """Start-up needs nothing; at shutdown the observers write what they still hold (the
        request log's last batch). Worker processes run it: they exit without exit hooks."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.flush_observers()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def flush_observers(self) -> None:
        """Have the observers that hold entries back (the request log) write them now."""
        for observer in self.pipeline.observers:
            flush = getattr(observer, "flush", None)
            if callable(flush):
                flush()

    async def _serve_admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``/__mock/`` and anything not HTTP: Starlette, built (and imported) on first use, so
        the API is served sooner after start-up."""
        if self._admin is None:
            self._admin = self._build_admin()
        await self._admin(scope, receive, send)

    def _build_admin(self) -> ASGIApp:
        from starlette.applications import Starlette
        from starlette.exceptions import HTTPException

        from .admin import admin_routes
        from .page import page_routes

        routes = (
            admin_routes(self)
            + page_routes(self.service.spec_set, self.events, self.metrics, self.started)
            if self.settings.admin
            else []
        )
        return Starlette(
            routes=routes,
            exception_handlers={HTTPException: _http_error, Exception: _server_error},
        )

    def reset(self) -> None:
        """Forget this run's requests; faults, latency and credits go back to the settings."""
        self.journal.clear()
        self.usage.clear()
        self.faults.reset(self.settings.faults, self.settings.latency)
        self.ledger.set(self.settings.credits)


def create_app(
    settings: Settings | None = None,
    *,
    spec_set: SpecSet | None = None,
    observers: tuple[Observer, ...] = (),
    source: Source | None = None,
) -> FakeApp:
    """Build the fake as an ASGI app.

    ``settings`` defaults to :class:`Settings()` (bundled specs, any bearer token accepted);
    ``spec_set`` skips loading when the caller already has one; each of ``observers`` is called
    with every journal entry as it is written (the CLI's request log is one); ``source`` answers
    in front of synthesis (a recorder; by default the cassettes of ``settings.replay``, if any).
    Raises :class:`~mock_server.record.CassetteError` for a cassette that does not load.
    """
    settings = settings or Settings()
    return FakeApp(settings, spec_set or load_specs(settings.specs), observers, source)


def create_app_from_env() -> FakeApp:
    """App factory for uvicorn worker processes: settings come from ``AIMLAPI_MOCK_*``."""
    from ..controls.shared import SHARED_STATE_VARIABLE, SharedStore
    from .request_log import RequestLog
    from .server import quiet_lifespan

    quiet_lifespan()
    return_large_blocks_to_the_system()
    settings = Settings.from_env()
    directory = os.environ.get(SHARED_STATE_VARIABLE)
    shared = SharedStore(directory) if directory else None
    return FakeApp(settings, load_specs(settings.specs), RequestLog.from_env(), shared=shared)


async def _http_error(request: Request, exc: Exception) -> Response:
    from starlette.exceptions import HTTPException

    from .admin import as_response

    assert isinstance(exc, HTTPException)
    method, path = request.method, request.url.path
    if exc.status_code == 404:
        answer = not_found(method, path, new_request_id())
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "").split(", ")
        answer = method_not_allowed(method, path, allowed, new_request_id())
    else:
        error = ApiError(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))
        answer = error_answer(error, path, new_request_id())
    return as_response(answer)


async def _server_error(request: Request, exc: Exception) -> Response:
    from .admin import as_response

    return as_response(error_answer(ApiError(500), request.url.path, new_request_id()))

"""The fake for test suites: one server on a real socket, reset and reconfigured per test.

The pytest plugin (:mod:`mock_server.plugin`) is a thin shell around :class:`MockServer`; other
test frameworks can use it directly::

    with MockServer() as fake:
        fake.configure(auth=["secret"], faults=["code=503, times=1"])
        ...  # call fake.base_url
        fake.journal.assert_called_with(prompt="a cat")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings
from ..controls.faults import FaultPlan, FaultRule
from ..controls.journal import Journal
from ..controls.latency import Latency
from ..engine.service import ImageService
from ..errors import ConfigError
from ..http.app import FakeApp, create_app
from ..http.pipeline import RECORDED_ERROR
from ..http.server import BackgroundServer
from ..spec.load import SpecSet, load_specs

if TYPE_CHECKING:
    from ..record import Budget, Recorder, RecordSettings

__all__ = ["DEFAULT_API_KEY", "MockServer"]

DEFAULT_API_KEY = "aimlapi-mock-test-key"
"""The key tests send when the fake accepts any key."""
_SERVER_FIELDS = frozenset({"host", "port", "workers"})


class MockServer:
    """A fake on ``127.0.0.1`` (a free port) whose settings can change from one test to the next.

    ``configure`` picks the settings of the next test and forgets the journal, faults and errors
    of the last one; apps built for other settings are kept, so switching back is cheap.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.base_settings = settings or Settings()
        self.settings = self.base_settings
        self._spec_sets: dict[tuple[str, ...], SpecSet] = {}
        self._apps: dict[Settings, FakeApp] = {}
        self.app = self._app_for(self.base_settings)
        self._switch = _Switch(self.app)
        self._server: BackgroundServer | None = None

    # Running ------------------------------------------------------------------------------

    def start(self) -> MockServer:
        self._server = BackgroundServer(self._switch, host=self.base_settings.host)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, without a trailing slash (the API lives under ``/v1``)."""
        if self._server is None:
            raise RuntimeError("the fake is not running; call start() first")
        return self._server.base_url

    @property
    def api_key(self) -> str:
        """A key the fake accepts: the first of ``api_keys``, or a fixed one."""
        return self.settings.api_keys[0] if self.settings.api_keys else DEFAULT_API_KEY

    @property
    def journal(self) -> Journal:
        return self.app.journal

    @property
    def faults(self) -> FaultPlan:
        return self.app.faults

    @property
    def service(self) -> ImageService:
        return self.app.service

    # Controls -----------------------------------------------------------------------------

    def fail(self, status: int | str | None = None, **options: Any) -> FaultRule:
        """Fail API requests: see :meth:`FaultPlan.fail` (``times``, ``probability``, ...)."""
        return self.faults.fail(status, **options)

    def set_latency(self, latency: str | Latency | None) -> Latency | None:
        """Delay successful generations: ``"fixed=0.5"``, ``"uniform=0.1..0.3"``, ..."""
        return self.faults.set_latency(latency)

    def set_credits(self, credits: int | None) -> None:
        """Put ``credits`` on the fake's account (None: unlimited); generations spend them and
        get the API's 403 once they run out."""
        self.app.ledger.set(credits)

    @property
    def credits(self) -> int | None:
        """Credits left on the fake's account (None: unlimited)."""
        return self.app.ledger.balance

    def configure(self, **options: Any) -> None:
        """Use the base settings changed by ``options`` (Settings fields) from now on.

        ``auth`` also takes what ``--auth`` takes: ``"any"``, ``"off"``, or API keys. The
        journal, faults and errors start empty; ``faults`` and ``latency`` are installed.
        """
        settings = self.settings_for(options)
        # What a test changes at run time is not part of the app, so apps are shared.
        core = replace(settings, faults=(), latency=None, credits=None)
        self.app = self._app_for(core)
        self._switch.app = self.app
        self.settings = settings
        self.journal.clear()
        self.app.usage.clear()
        self.faults.reset(settings.faults, settings.latency)
        self.app.ledger.set(settings.credits)
        self.app.pipeline.source = self.app.replay
        if self.app.replay is not None:
            self.app.replay.rewind()

    def record(self, settings: RecordSettings, key: str, budget: Budget | None = None) -> Recorder:
        """Forward this test's API requests upstream and record them into ``settings.cassette``;
        requests the cassettes of ``replay`` already hold are replayed. Until the next configure.
        """
        from ..record import build_recorder

        recorder = build_recorder(
            settings, self.app.service.spec_set, key, budget=budget, replay=self.app.replay
        )
        self.app.pipeline.source = recorder
        return recorder

    def reset(self) -> None:
        """Back to the base settings, with an empty journal and no faults beyond the base's."""
        self.configure()

    def settings_for(self, options: Mapping[str, Any]) -> Settings:
        """The base settings changed by ``options``; raises :class:`ConfigError` if unusable."""
        return self.base_settings.changed(options)

    def take_errors(self) -> list[BaseException]:
        """Exceptions raised inside the fake since the last call (or reset); forgets them."""
        errors = list(self.journal.errors)
        self.journal.errors.clear()
        return errors

    def environ(self, templates: Mapping[str, str]) -> dict[str, str]:
        """Environment values from templates naming ``{base_url}`` and ``{api_key}``."""
        values = {"base_url": self.base_url, "api_key": self.api_key}
        rendered = {}
        for name, template in templates.items():
            try:
                rendered[name] = template.format_map(values)
            except (KeyError, ValueError, IndexError) as error:
                raise ConfigError(
                    f"{name}={template!r}: only {{base_url}} and {{api_key}} can be filled in "
                    f"({error!r})"
                ) from None
        return rendered

    def _app_for(self, settings: Settings) -> FakeApp:
        if settings not in self._apps:
            if settings.specs not in self._spec_sets:
                self._spec_sets[settings.specs] = load_specs(settings.specs)
            self._apps[settings] = create_app(settings, spec_set=self._spec_sets[settings.specs])
        return self._apps[settings]


class _Switch:
    """The ASGI app the server runs: whichever app the current test uses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as error:
            # Already answered with a 500 and kept for take_errors(), which hands it to the test
            # that caused it; uvicorn need not log it as well.
            if scope.get(RECORDED_ERROR) is not error:
                raise

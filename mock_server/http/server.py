"""Running the fake on a real socket inside the current process (for tests)."""

from __future__ import annotations

import threading
import time
from types import FrameType, TracebackType

import uvicorn
from starlette.types import ASGIApp

GRACE_SECONDS = 1
"""How long stopping waits for answers still being sent (an open page's event stream)."""


class BackgroundServer:
    """uvicorn serving ``app`` from a daemon thread on ``host``, on a free port by default.

    Use as a context manager; ``base_url`` is known once it is entered::

        with BackgroundServer(create_app()) as server:
            requests.post(server.base_url + "/v1/images/generations", ...)
    """

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            # An open journal page streams until told to stop: don't let it hold up stopping.
            timeout_graceful_shutdown=GRACE_SECONDS,
        )
        self._app = app
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="aimlapi-mock", daemon=True)
        self.host = host
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the fake server on {self.host}:{self.port} did not start")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the fake server did not start within {timeout} s")
            time.sleep(0.001)
        sockets = [sock for server in self._server.servers for sock in server.sockets]
        self.port = int(sockets[0].getsockname()[1])

    def stop(self, timeout: float = 10.0) -> None:
        close_streams(self._app)
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class StoppingServer(uvicorn.Server):
    """uvicorn's server that first ends the journal page's streams when told to stop.

    Otherwise an open page would hold the server for its whole grace period on Ctrl-C.
    """

    def __init__(self, config: uvicorn.Config, app: object) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        close_streams(self._app)
        super().handle_exit(sig, frame)


def close_streams(app: object) -> None:
    """End the event streams of ``app``'s journal page, if it is a fake with one."""
    events = getattr(app, "events", None)
    close = getattr(events, "close", None)
    if close is not None:
        close()

"""Running the fake on a real socket inside the current process (for tests)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from types import FrameType, TracebackType
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from .protocol import GuardedHttpProtocol

GRACEFUL_SHUTDOWN_SECONDS = 3
"""Backstop: requests a shutdown has not ended by then are cancelled (they are cut at 1.5 s)."""


def uvicorn_config(app: ASGIApp | str, host: str, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for serving the fake: its guarded HTTP protocol, no lifespan
    unless ``options`` ask for it."""
    _quiet_cancellations()
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=GuardedHttpProtocol,
        ws="none",  # no WebSocket routes: an upgrade is answered as a plain request
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        **{"log_level": "warning", "access_log": False, "lifespan": "off", **options},
    )


class _CancelledAtExit(logging.Filter):
    """Drops uvicorn's traceback for a request cancelled because the server is quitting (a
    second Ctrl-C): the request was cut on purpose, nothing went wrong."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, asyncio.CancelledError)


def _quiet_cancellations() -> None:
    _filter_uvicorn(_CancelledAtExit)


def _filter_uvicorn(kind: type[logging.Filter]) -> None:
    """Add a ``kind`` filter to uvicorn's logger, once per process."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(known, kind) for known in logger.filters):
        logger.addFilter(kind())


_LIFESPAN_CHATTER = frozenset(
    {
        "Waiting for application startup.",
        "Application startup complete.",
        "Waiting for application shutdown.",
        "Application shutdown complete.",
    }
)


class _LifespanChatter(logging.Filter):
    """Drops uvicorn's lines about the lifespan: workers run it only to flush their request log
    at shutdown, which is nothing a person asked to hear about."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() not in _LIFESPAN_CHATTER


def quiet_lifespan() -> None:
    """Hide uvicorn's lifespan lines in this process (a worker: see :class:`_LifespanChatter`)."""
    _filter_uvicorn(_LifespanChatter)


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` as uvicorn would make it; raises OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.set_inheritable(True)
    except BaseException:
        sock.close()
        raise
    return sock


class BackgroundServer:
    """uvicorn serving ``app`` from a daemon thread on ``host``, on a free port by default.

    Use as a context manager; ``base_url`` is known once it is entered::

        with BackgroundServer(create_app()) as server:
            requests.post(server.base_url + "/v1/images/generations", ...)
    """

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> None:
        config = uvicorn_config(app, host, port)
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

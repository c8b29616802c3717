"""A fake on a loopback socket that remembers every request it received (for contract tests)."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

from mock_server import Settings, create_app
from mock_server.http.server import BackgroundServer

GENERATION_PATHS = ("/v1/images/generations", "/images/generations")


@dataclass
class ReceivedRequest:
    method: str
    path: str
    authorization: str


@dataclass
class RecordingApp:
    """Wraps an ASGI app and records method, path and Authorization of each HTTP request."""

    app: ASGIApp
    received: list[ReceivedRequest] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            authorization = headers.get(b"authorization", b"").decode("latin-1")
            self.received.append(ReceivedRequest(scope["method"], scope["path"], authorization))
        await self.app(scope, receive, send)

    def generations(self, key: str) -> list[ReceivedRequest]:
        """Requests that could have created images: POSTs to a generation path with ``key``."""
        return [
            request
            for request in self.received
            if request.method == "POST"
            and request.path in GENERATION_PATHS
            and request.authorization == f"Bearer {key}"
        ]


@contextmanager
def serve_fake(**fields: object) -> Iterator[tuple[str, RecordingApp]]:
    """The fake built from Settings ``fields``, on a free loopback port: (base URL, recorder)."""
    recorder = RecordingApp(create_app(Settings(**fields)))  # type: ignore[arg-type]
    with BackgroundServer(recorder) as server:
        yield server.base_url, recorder

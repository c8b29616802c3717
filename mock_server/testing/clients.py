"""httpx clients that call an ASGI app in process (needs ``httpx``, which the fake itself does not).

httpx only ships an async ASGI transport; the sync client runs it on an event loop in a helper
thread (an anyio blocking portal), so exceptions raised by the app reach the caller unchanged.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal
from starlette.types import ASGIApp

__all__ = ["async_client", "sync_client"]

BASE_URL = "http://testserver"


def sync_client(app: ASGIApp, *, api_key: str | None = None, **options: Any) -> httpx.Client:
    """An ``httpx.Client`` bound to ``app``; close it to stop its helper thread."""
    return httpx.Client(
        transport=_PortalTransport(app), base_url=BASE_URL, headers=_auth(api_key), **options
    )


def async_client(app: ASGIApp, *, api_key: str | None = None, **options: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` bound to ``app``."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=BASE_URL, headers=_auth(api_key), **options
    )


def _auth(api_key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


class _PortalTransport(httpx.BaseTransport):
    def __init__(self, app: ASGIApp) -> None:
        self._asgi = httpx.ASGITransport(app=app)
        self._stack = ExitStack()
        self._portal: BlockingPortal | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._portal is None:
            self._portal = self._stack.enter_context(start_blocking_portal())
        request.read()
        return self._portal.call(self._handle, request)

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        response = await self._asgi.handle_async_request(request)
        content = await response.aread()
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )

    def close(self) -> None:
        self._portal = None
        self._stack.close()

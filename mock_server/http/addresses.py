"""A request's URL path and base URL, exactly as Starlette computes them, remembered.

``request.url.path`` and ``request.base_url`` build and re-parse a URL each time, several
microseconds of every generation request, although their inputs (scheme, server, root path, path
and ``Host`` header) repeat from one request to the next. Only the HTTP layer uses this.
"""

from __future__ import annotations

from collections.abc import Hashable

from starlette.requests import Request
from starlette.types import Scope

_MAX_ENTRIES = 1024
_cache: dict[Hashable, tuple[str, str]] = {}


def url_parts(scope: Scope) -> tuple[str, str]:
    """``(request.url.path, str(request.base_url))`` for the request of ``scope``."""
    host = None
    for name, value in scope["headers"]:
        if name == b"host":
            host = value
            break
    server = scope.get("server")
    key = (
        scope.get("scheme"),
        tuple(server) if server is not None else None,
        scope.get("root_path"),
        scope.get("app_root_path"),
        scope["path"],
        host,
    )
    parts = _cache.get(key)
    if parts is None:
        request = Request(scope)
        parts = (request.url.path, str(request.base_url))
        if len(_cache) >= _MAX_ENTRIES:
            _cache.clear()  # a client sending ever new Host headers only costs the cache
        _cache[key] = parts
    return parts

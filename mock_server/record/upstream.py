"""The recorder's client of the upstream API: the standard library's ``urllib``, run in a thread.

The upstream's key is the only credential it ever sends; nothing of the caller's request but
the method, path, body and content negotiation goes out.
"""

from __future__ import annotations

import http.client
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .. import __version__
from ..contract.settings import REAL_API_URL, is_loopback

FORWARDED_HEADERS = ("content-type", "accept", "user-agent")
"""The only request headers passed on (the key is added; the caller's credentials never are)."""
CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "x-auth-token",
    }
)
KEPT_ANSWER_HEADERS = ("content-type", "retry-after", "traceparent", "tracestate")
"""Answer headers worth recording, besides tracing (``x-*-id``), cost and rate-limit ones."""
_KEPT_PREFIXES = ("x-request-id", "x-trace", "x-correlation", "x-ratelimit", "x-cost", "x-credit")


class UpstreamError(Exception):
    """The upstream did not answer: ``status`` is the 502 or 504 the caller gets."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class UpstreamAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def check_upstream(url: str, allow_remote: bool) -> str:
    """``url`` without a trailing slash, or ``ValueError`` if it may not be recorded from."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"upstream {url!r} is not an http:// or https:// URL")
    host = parts.hostname.rstrip(".").lower()
    real = host == urlsplit(REAL_API_URL).hostname
    if not (real or is_loopback(url) or allow_remote):
        raise ValueError(
            f"upstream {url!r} is neither this machine nor {REAL_API_URL}; "
            "pass --allow-remote to record from it"
        )
    return url.rstrip("/")


def kept_answer_headers(headers: list[tuple[str, str]]) -> dict[str, str]:
    """The answer headers that matter in a cassette: media type, tracing, cost, rate limits."""
    kept: dict[str, str] = {}
    for name, value in headers:
        lower = name.lower()
        if lower in CREDENTIAL_HEADERS:
            continue
        if lower in KEPT_ANSWER_HEADERS or lower.startswith(_KEPT_PREFIXES):
            kept[lower] = f"{kept[lower]}, {value}" if lower in kept else value
    return dict(sorted(kept.items()))


@dataclass
class Upstream:
    """Sends requests to ``base_url`` with ``key``, and downloads image URLs (without it)."""

    base_url: str
    key: str
    timeout: float = 120.0
    _opener: urllib.request.OpenerDirector = field(init=False, repr=False)
    _downloads: urllib.request.OpenerDirector = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # No proxies from the environment: a recording goes where --upstream says, and no further.
        # API requests are not redirected (the key would follow); image downloads may be.
        no_proxies = urllib.request.ProxyHandler({})
        self._opener = urllib.request.build_opener(no_proxies, _NoRedirects)
        self._downloads = urllib.request.build_opener(no_proxies)

    def send(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> UpstreamAnswer:
        """Forward one API request (blocking); raises :class:`UpstreamError` if nothing came."""
        outgoing = {name: headers[name] for name in FORWARDED_HEADERS if name in headers}
        outgoing.setdefault("user-agent", f"aimlapi-mock-recorder/{__version__}")
        outgoing["authorization"] = f"Bearer {self.key}"
        request = urllib.request.Request(
            self.base_url + path, data=body or None, headers=outgoing, method=method
        )
        return self._fetch(request, f"{method} {path}", self._opener)

    def download(self, url: str) -> UpstreamAnswer:
        """An image URL's answer; no credentials are sent with it."""
        request = urllib.request.Request(
            url, headers={"user-agent": f"aimlapi-mock-recorder/{__version__}"}
        )
        return self._fetch(request, f"image {url}", self._downloads)

    def _fetch(
        self, request: urllib.request.Request, what: str, opener: urllib.request.OpenerDirector
    ) -> UpstreamAnswer:
        late = f"the upstream did not answer {what} within {self.timeout:g} s"
        try:
            with opener.open(request, timeout=self.timeout) as response:
                headers = list(response.headers.items())
                return UpstreamAnswer(response.status, headers, response.read())
        except urllib.error.HTTPError as error:
            with error:
                return UpstreamAnswer(error.code, list(error.headers.items()), error.read())
        except TimeoutError:
            raise UpstreamError(504, late) from None
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise UpstreamError(504, late) from None
            reason = error.reason
            raise UpstreamError(
                502, f"the upstream could not be reached for {what}: {reason}"
            ) from None
        except (OSError, ValueError, http.client.HTTPException) as error:
            raise UpstreamError(502, f"the upstream failed to answer {what}: {error!r}") from None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


class Budget:
    """The cap on image-creating requests sent upstream, shared by every recorder given it."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.used = 0
        self.refused = 0
        self._lock = threading.Lock()

    def admit(self) -> bool:
        with self._lock:
            if self.used >= self.cap:
                self.refused += 1
                return False
            self.used += 1
            return True

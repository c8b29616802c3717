"""Checking an edit's ``image_urls``: what each item is, and every problem as a violation.

An item is one of:

- a URL this fake issued (``.../files/<token>.<ext>`` with a token signed by its secret, on any
  host): resolved locally to the exact :class:`~mock_server.types.ImageSpec` that URL serves, so
  the edit knows its input's size and can draw it;
- a ``data:image/png|jpeg|webp;base64,...`` URI: decoded, and it must hold a readable image;
- any other http(s) URL: accepted without downloading it (the API would fetch it; the fake
  reports it as unfetched), or downloaded and checked when a :class:`FetchPolicy` is given.

Anything else (a bare base64 string, another scheme, an unreadable image, a URL on this fake's
own host that names no image it issued) is a violation at ``image_urls.N``; the caller answers
400 with them. Downloading blocks: run the check in a worker thread when fetching.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.client import HTTPException
from typing import Any, Literal
from urllib.parse import urlsplit

from ..images.probe import UnreadableImage, probe_image
from ..images.tokens import decode_image_token
from ..types import (
    JSON,
    DecodedImage,
    ImageSpec,
    InputImage,
    IssuedImage,
    RemoteImage,
    Violation,
)
from .validation import show, summarise

__all__ = ["MAX_INPUT_BYTES", "CheckedInputs", "FetchPolicy", "check_image_urls"]

MAX_INPUT_BYTES = 10 * 1024 * 1024
"""The largest input image accepted, in bytes, whether sent as a data URI or downloaded."""

DATA_URI_TYPES = ("image/png", "image/jpeg", "image/webp")

_BASE64_TEXT = re.compile(r"[A-Za-z0-9+/=\s]{64,}")
_URL_EXPECTED = "an http(s) URL or a data:image/png|jpeg|webp;base64,... URI"


@dataclass(frozen=True)
class FetchPolicy:
    """How to download http(s) input images, when the fake is told to (otherwise it never does).

    ``timeout`` bounds the whole download in seconds; ``max_bytes`` its size.
    """

    timeout: float = 10.0
    max_bytes: int = MAX_INPUT_BYTES


@dataclass(frozen=True)
class CheckedInputs:
    """What :func:`check_image_urls` found: the images in order when there is no violation."""

    images: tuple[InputImage, ...] = ()
    violations: list[Violation] = field(default_factory=list)
    unfetched: tuple[str, ...] = ()
    """The http(s) URLs accepted without downloading them, for the journal to note."""
    fetched: tuple[str, ...] = ()
    """The http(s) URLs downloaded and found to be images."""


def check_image_urls(
    urls: JSON,
    *,
    secret: bytes,
    image_route: str = "/files",
    local_bases: Sequence[str] = (),
    fetch: FetchPolicy | None = None,
    field_name: str = "image_urls",
) -> CheckedInputs:
    """Check every item of ``urls`` (the body's ``image_urls``); see the module docstring.

    ``secret`` and ``image_route`` are the fake's URL secret and the path its images are served
    under. ``local_bases`` are base URLs that address this fake (``http://127.0.0.1:8000``, the
    public URL): an item under one of them must be an image it issued. Items that are not
    strings, and a ``urls`` that is not a list, are left to schema validation.
    """
    if not isinstance(urls, list):
        return CheckedInputs()
    images: list[InputImage] = []
    violations: list[Violation] = []
    unfetched: list[str] = []
    fetched: list[str] = []
    for index, url in enumerate(urls):
        if not isinstance(url, str):
            continue
        path = (field_name, index)
        try:
            image = _resolve(url, secret, image_route, local_bases, fetch)
        except _Problem as problem:
            violation = Violation(
                path, problem.code, problem.message, problem.expected, summarise(url)
            )
            violations.append(violation)
            continue
        if isinstance(image, RemoteImage):
            unfetched.append(url)
        elif isinstance(image, DecodedImage) and image.source == "fetched":
            fetched.append(url)
        images.append(image)
    if violations:
        return CheckedInputs(violations=violations)
    return CheckedInputs(tuple(images), [], tuple(unfetched), tuple(fetched))


class _Problem(Exception):
    """What is wrong with one item, as a violation's code and sentence."""

    def __init__(self, code: str, message: str, expected: JSON = None) -> None:
        super().__init__(message)
        self.code, self.message, self.expected = code, message, expected


def _resolve(
    url: str,
    secret: bytes,
    image_route: str,
    local_bases: Sequence[str],
    fetch: FetchPolicy | None,
) -> InputImage:
    scheme, _, rest = url.partition(":")
    scheme = scheme.lower()
    if scheme == "data" and rest:
        return _from_data_uri(rest)
    if scheme in ("http", "https"):
        return _from_http_url(url, secret, image_route, local_bases, fetch)
    if _BASE64_TEXT.fullmatch(url):
        raise _Problem(
            "invalid_string",
            f"Invalid url: expected {_URL_EXPECTED}; this looks like bare base64, send it as "
            f"data:image/png;base64,<data>, received {show(url)}",
            "url",
        )
    raise _Problem(
        "invalid_string", f"Invalid url: expected {_URL_EXPECTED}, received {show(url)}", "url"
    )


def _from_data_uri(rest: str) -> InputImage:
    header, comma, payload = rest.partition(",")
    if not comma:
        raise _Problem(
            "invalid_string", "Invalid data URI: no ',' separates its header from its data"
        )
    media_type, *params = [part.strip().lower() for part in header.split(";")]
    if media_type not in DATA_URI_TYPES:
        shown = show(media_type) if media_type else "none"
        raise _Problem(
            "invalid_enum_value",
            f"Unsupported image type in data URI: expected 'image/png' | 'image/jpeg' | "
            f"'image/webp', received {shown}",
            list(DATA_URI_TYPES),
        )
    if "base64" not in params:
        raise _Problem(
            "invalid_string",
            f"Invalid data URI: the image must be base64-encoded (data:{media_type};base64,...)",
        )
    if len(payload) > (MAX_INPUT_BYTES + 2) // 3 * 4 + 4:
        raise _Problem(
            "too_big",
            _too_big(len(payload) * 3 // 4, "data URI holds", MAX_INPUT_BYTES),
            MAX_INPUT_BYTES,
        )
    try:
        data = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise _Problem("invalid_string", "Invalid data URI: its data is not valid base64") from None
    if not data:
        raise _Problem("custom", "Invalid data URI: it holds no image data")
    return _probe(data, "data", "data URI")


def _from_http_url(
    url: str,
    secret: bytes,
    image_route: str,
    local_bases: Sequence[str],
    fetch: FetchPolicy | None,
) -> InputImage:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        raise _Problem("invalid_string", f"Invalid url, received {show(url)}", "url") from None
    if not parts.hostname:
        raise _Problem(
            "invalid_string", f"Invalid url: it names no host, received {show(url)}", "url"
        )
    issued = _issued_spec(parts.path, secret, image_route)
    if issued is not None:
        return IssuedImage(issued)
    if any(_is_under(url, base) for base in local_bases):
        raise _Problem(
            "custom",
            "Unknown image URL: it points at this fake but at no image it issued (a tampered "
            "token, or one signed with another --url-secret)",
        )
    if fetch is None:
        return RemoteImage(url)
    return _probe(_download(url, fetch), "fetched", "downloaded file")


def _issued_spec(path: str, secret: bytes, image_route: str) -> ImageSpec | None:
    folder, _, name = path.rpartition("/")
    token, dot, extension = name.rpartition(".")
    if not dot or folder.rstrip("/") != folder or not folder.endswith(image_route.rstrip("/")):
        return None
    spec = decode_image_token(token, secret)
    return spec if spec is not None and spec.format == extension else None


def _is_under(url: str, base: str) -> bool:
    got, want = urlsplit(url), urlsplit(base.rstrip("/"))
    return (
        got.scheme.lower() == want.scheme.lower()
        and (got.hostname or "") == (want.hostname or "").lower()
        and _port(got) == _port(want)
        and (got.path + "/").startswith(want.path + "/")
    )


def _port(parts: Any) -> int | None:
    try:
        port: int | None = parts.port
    except ValueError:
        return None
    return port if port is not None else {"http": 80, "https": 443}.get(parts.scheme.lower())


def _probe(data: bytes, source: Literal["data", "fetched"], what: str) -> InputImage:
    if len(data) > MAX_INPUT_BYTES:
        raise _Problem(
            "too_big", _too_big(len(data), f"{what} holds", MAX_INPUT_BYTES), MAX_INPUT_BYTES
        )
    try:
        return probe_image(data, source)
    except UnreadableImage as problem:
        raise _Problem("custom", f"Not a readable image: the {what} {problem}") from None


def _too_big(size: int, what: str, limit: int) -> str:
    return (
        f"Image too large: the {what} {size:,} bytes, more than the {limit:,} an input image "
        "may have"
    )


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http(s) URLs only (urllib would also follow them to ftp)."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise urllib.error.HTTPError(
                newurl, code, f"redirect to {newurl!r} refused", headers, fp
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_HttpOnlyRedirects)
_CHUNK = 64 * 1024


def _download(url: str, policy: FetchPolicy) -> bytes:
    """The body at ``url``, within ``policy``'s time and size, or a :class:`_Problem`."""
    deadline = time.monotonic() + policy.timeout
    request = urllib.request.Request(
        url, headers={"User-Agent": "aimlapi-mock", "Accept": ", ".join(DATA_URI_TYPES)}
    )
    try:
        with _opener.open(request, timeout=policy.timeout) as response:
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > policy.max_bytes:
                problem = _too_big(int(declared), "file at the URL has", policy.max_bytes)
                raise _Problem("too_big", problem, policy.max_bytes)
            chunks: list[bytes] = []
            size = 0
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > policy.max_bytes:
                    problem = _too_big(size, "file at the URL has over", policy.max_bytes)
                    raise _Problem("too_big", problem, policy.max_bytes)
                if time.monotonic() > deadline:
                    raise TimeoutError
                chunks.append(chunk)
    except urllib.error.HTTPError as error:
        raise _Problem(
            "custom", f"Could not fetch the image: HTTP {error.code} {error.reason}"
        ) from None
    except TimeoutError:
        raise _Problem(
            "custom", f"Could not fetch the image: no answer within {policy.timeout:g} s"
        ) from None
    except urllib.error.URLError as error:
        reason = error.reason
        if isinstance(reason, TimeoutError):
            raise _Problem(
                "custom", f"Could not fetch the image: no answer within {policy.timeout:g} s"
            ) from None
        raise _Problem("custom", f"Could not fetch the image: {reason}") from None
    except (OSError, HTTPException, ValueError) as error:
        raise _Problem(
            "custom", f"Could not fetch the image: {error or type(error).__name__}"
        ) from None
    return b"".join(chunks)

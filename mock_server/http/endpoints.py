"""The fake's API routes (generation and image download) as plain ASGI apps.

Every request to these routes pays for this code, so it works on the ASGI scope directly rather
than through Starlette's ``Request`` and ``Response``: at tens of thousands of requests a second
those objects cost more than validating the body. Each route is split in two:

- ``answer(...)`` turns a request into an :class:`Answer`: from its headers and body (already
  read) for a generation; a coroutine for an image, which may have to be rendered first;
- calling the route as an ASGI app reads the body, answers and sends.

:class:`~mock_server.interceptor.DirectRoutes` uses ``answer`` to serve these routes in front
of Starlette when no fault or deviation is in play (it keeps the body for the journal);
otherwise Starlette routes the request here through ``__call__``. Both ways run the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Message, Receive, Scope, Send

from ..engine.body import check_content_type, parse_json_body
from ..engine.ids import new_request_id
from ..engine.service import IMAGE_ROUTE, ImageService
from ..engine.synthesis import encode_json
from ..errors import ApiError, error_envelope
from .addresses import url_parts

JSON_MEDIA_TYPE = b"application/json; charset=utf-8"
IMMUTABLE = b"public, max-age=31536000, immutable"

Body = bytes | ApiError
"""A request body as read: its bytes, or the error reading it ran into (too large, ...)."""

Headers = dict[bytes, bytes]
"""Request headers by lower-case name; the first value of a repeated header, as Starlette's
``request.headers[name]`` gives."""


def request_headers(scope: Scope) -> Headers:
    """The request headers of ``scope`` as :data:`Headers`."""
    return dict(reversed(scope["headers"]))


@dataclass(slots=True)  # not frozen: that makes each answer slower to create
class Answer:
    """A complete HTTP answer; ``headers`` are ASGI's lower-case byte pairs."""

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    is_json: bool = True

    async def send(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})


def json_answer(
    status: int, content: bytes, request_id: str, headers: dict[str, str] | None = None
) -> Answer:
    """An answer with the JSON text ``content``."""
    raw_headers = [
        (b"content-type", JSON_MEDIA_TYPE),
        (b"content-length", str(len(content)).encode("ascii")),
        (b"x-request-id", request_id.encode("ascii")),
    ]
    if headers:
        raw_headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in
                        headers.items()]  # fmt: skip
    return Answer(status, raw_headers, content)


def error_answer(error: ApiError, path: str, request_id: str) -> Answer:
    """The error envelope for ``error``, as the real API sends it."""
    body = error_envelope(error.status, error.message, path, request_id, error.violations)
    return json_answer(error.status, encode_json(body), request_id, error.headers)


RawBody = tuple[bytes, ApiError | None]
"""A body as received, and the 400/413 it earns (None when it is fine)."""


async def read_raw_body(
    headers: Headers, receive: Receive, limit: int, first: Message | None = None
) -> RawBody | None:
    """The body as received, and the 400/413 it earns; None if the client left first.

    ``first`` is the first message, if the caller has received it. Reading stops once more than
    ``limit`` bytes have come (the body is then too large).
    """
    message = first if first is not None else await receive()
    chunks: list[bytes] = []
    size = 0
    while True:
        if message["type"] != "http.request":
            return None
        chunk: bytes = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False) or size > limit:
            break
        message = await receive()
    raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return raw, body_problem(headers, size, limit, more=message.get("more_body", False))


def whole_body(message: Message, headers: Headers, limit: int) -> RawBody | None:
    """:func:`read_raw_body` for a first message that holds the whole body; None otherwise."""
    if message["type"] != "http.request" or message.get("more_body", False):
        return None
    raw: bytes = message.get("body", b"")
    return raw, body_problem(headers, len(raw), limit, more=False)


def body_problem(headers: Headers, size: int, limit: int, *, more: bool) -> ApiError | None:
    """The 400 or 413 for a body of ``size`` bytes so far (``more`` when unfinished)."""
    declared = headers.get(b"content-length")
    if declared is not None:
        text = declared.decode("latin-1").strip()
        if not (text.isascii() and text.isdigit()):
            return ApiError(400, f"Content-Length header {text!r} is not a number")
        if int(text) > limit:
            return ApiError(413, _too_large(int(text), limit))
    if size > limit:
        return ApiError(413, _too_large(size, limit, at_least=more))
    return None


class Generation:
    """``POST`` to a generation path: authorise, check the body, answer with image URLs."""

    def __init__(self, service: ImageService) -> None:
        self.service = service
        self.body_limit = service.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = request_headers(scope)
        read = await read_raw_body(headers, receive, self.body_limit)
        if read is not None:
            raw, problem = read
            await self.answer(scope, headers, raw if problem is None else problem).send(send)

    def answer(self, scope: Scope, headers: Headers, body: Body) -> Answer:
        request_id = new_request_id()
        path, base_url = url_parts(scope)
        authorization, content_type = headers.get(b"authorization"), headers.get(b"content-type")
        service = self.service
        try:
            # The order of the checks is the real API's: 401, then 415, then 413, then 400.
            service.authorize(authorization.decode("latin-1") if authorization else None)
            check_content_type(content_type.decode("latin-1") if content_type else None)
            if isinstance(body, ApiError):
                raise body
            generation = service.generate(scope["method"], path, parse_json_body(body), base_url)
        except ApiError as error:
            return error_answer(error, path, request_id)
        return json_answer(generation.operation.success_status, generation.content, request_id)


class Image:
    """``GET {IMAGE_ROUTE}/<token>.<format>``: the placeholder image a generation linked to."""

    def __init__(self, service: ImageService) -> None:
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (await self.answer(scope)).send(send)

    async def answer(self, scope: Scope) -> Answer:
        name = scope["path"].rpartition("/")[2]
        found = await self.service.image(name)
        if found is None:
            path = url_parts(scope)[0]
            return error_answer(ApiError(404, f"Cannot GET {path}"), path, new_request_id())
        data, media_type = found
        answer_headers = [
            (b"content-type", media_type.encode("ascii")),
            (b"content-length", str(len(data)).encode("ascii")),
            (b"cache-control", IMMUTABLE),
        ]
        return Answer(200, answer_headers, data, is_json=False)


def image_name(path: str) -> str | None:
    """The ``<token>.<format>`` part of an image URL's path, or None for any other path."""
    if not path.startswith(IMAGE_PATH_PREFIX):
        return None
    name = path[len(IMAGE_PATH_PREFIX) :]
    return name if name and "/" not in name else None


IMAGE_PATH_PREFIX = IMAGE_ROUTE + "/"


def _too_large(size: int, limit: int, *, at_least: bool = False) -> str:
    amount = f"at least {size}" if at_least else str(size)
    return f"Payload Too Large: body of {amount} bytes is over the limit of {limit} bytes"

"""Building :class:`~mock_server.types.Answer` values: JSON, the error envelope, images.

Every answer the fake sends, API or admin, is made here, so each status has one shape.
"""

from __future__ import annotations

from ..engine.synthesis import encode_json
from ..errors import ApiError, error_envelope
from ..types import Answer

JSON_MEDIA_TYPE = b"application/json; charset=utf-8"
IMMUTABLE = b"public, max-age=31536000, immutable"


def json_answer(
    status: int, content: bytes, request_id: str, headers: dict[str, str] | None = None
) -> Answer:
    """An answer with the JSON text ``content`` and the request id the API sends."""
    raw_headers = [
        (b"content-type", JSON_MEDIA_TYPE),
        (b"content-length", b"%d" % len(content)),
        (b"x-request-id", request_id.encode("ascii")),
    ]
    if headers:
        raw_headers += [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in headers.items()
        ]
    return Answer(status, raw_headers, content)


def error_answer(error: ApiError, path: str, request_id: str) -> Answer:
    """The error envelope for ``error``, as the real API sends it."""
    body = error_envelope(error.status, error.message, path, request_id, error.violations)
    return json_answer(error.status, encode_json(body), request_id, error.headers)


def image_answer(data: bytes, media_type: str) -> Answer:
    """A rendered image; its URL never changes meaning, so it may be cached for good."""
    headers = [
        (b"content-type", media_type.encode("ascii")),
        (b"content-length", b"%d" % len(data)),
        (b"cache-control", IMMUTABLE),
    ]
    return Answer(200, headers, data)


def not_found(method: str, path: str, request_id: str) -> Answer:
    return error_answer(ApiError(404, f"Cannot {method} {path}"), path, request_id)


def method_not_allowed(method: str, path: str, allowed: list[str], request_id: str) -> Answer:
    allow = ", ".join(sorted(allowed))
    error = ApiError(
        405, f"Method {method} is not allowed on {path}; use {allow}", headers={"Allow": allow}
    )
    return error_answer(error, path, request_id)

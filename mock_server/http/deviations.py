"""Switchable deviations: the fake answering the way the real API has drifted from its spec.

Each deviation reproduces something the real service has shown over time (status 201 for a
success, ``tokens_used`` in place of ``credits_used``, ...). They exist so the contract suite can
prove, offline, that it notices drift. They are a stage of the request pipeline that turns the
fake's answer into the deviated one, before faults are applied: the journal records the deviated
answers, and errors forced by a fault keep the legacy envelope.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, MutableMapping
from dataclasses import replace
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    pass

from ..engine.shapes import CREDITS_PER_USD
from ..images.tokens import decode_image_token, encode_image_token
from ..types import JSON, Answer

DEVIATIONS: dict[str, str] = {
    "status-201": "successful generations answer 201 Created instead of the documented 200",
    "tokens-used": "meta.usage reports tokens_used instead of credits_used",
    "usd-spent": "meta.usage adds usd_spent next to credits_used",
    "problem-json": "errors are application/problem+json bodies instead of the legacy envelope",
    "data-null": "successful generations answer with data: null",
    "wrong-size": "image URLs serve pictures of half the requested width and height",
    "no-tracing-headers": "answers carry no x-inference-id and no cost headers, as before the "
    "API documented them",
}
"""Every deviation the fake can switch on, with what it does."""

_TRACING_HEADERS = frozenset(
    {
        b"x-inference-id",
        b"x-client-request-id",
        b"x-aimlapi-credits-used",
        b"x-aimlapi-usd-spent",
        b"access-control-expose-headers",
    }
)
PROBLEM_JSON = "application/problem+json; charset=utf-8"

# The exception class NestJS names in ``error.name`` for each status.
_NEST_EXCEPTIONS: dict[int, str] = {
    400: "BadRequestException",
    401: "UnauthorizedException",
    403: "ForbiddenException",
    404: "NotFoundException",
    405: "MethodNotAllowedException",
    413: "PayloadTooLargeException",
    415: "UnsupportedMediaTypeException",
    429: "ThrottlerException",
    500: "InternalServerErrorException",
    502: "BadGatewayException",
    503: "ServiceUnavailableException",
    504: "GatewayTimeoutException",
}


def check_deviations(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` without duplicates, or ``ValueError`` naming the first unknown one."""
    found: list[str] = []
    for name in names:
        if name not in DEVIATIONS:
            raise ValueError(
                f"unknown deviation {name!r}; expected one of {', '.join(sorted(DEVIATIONS))}"
            )
        if name not in found:
            found.append(name)
    return tuple(found)


class Deviations:
    """A pipeline stage: rewrites the fake's JSON answers as the switched-on deviations say."""

    def __init__(self, deviations: Iterable[str], url_secret: str) -> None:
        self.deviations = frozenset(check_deviations(deviations))
        self._secret = url_secret.encode("utf-8")

    def __call__(self, answer: Answer, path: str) -> Answer:
        """The answer to send instead of ``answer``."""
        if "no-tracing-headers" in self.deviations:
            kept = [(n, v) for n, v in answer.headers if n not in _TRACING_HEADERS]
            answer = Answer(answer.status, kept, answer.body)
        if not answer.is_json:
            return answer
        status, media_type, body = self.rewrite(answer.status, answer.body, path)
        if body is answer.body and status == answer.status:
            return answer
        headers = []
        for name, value in answer.headers:
            if name == b"content-length":
                value = b"%d" % len(body)
            elif name == b"content-type" and media_type is not None:
                value = media_type.encode("latin-1")
            headers.append((name, value))
        return Answer(status, headers, body)

    def rewrite(self, status: int, raw: bytes, path: str) -> tuple[int, str | None, bytes]:
        """The status, new media type (None: unchanged) and body to send instead."""
        try:
            body = json.loads(raw)
        except ValueError:
            return status, None, raw
        media_type: str | None = None
        if not isinstance(body, dict):
            return status, None, raw
        if 200 <= status < 300 and "data" in body:
            status = self._success(status, body)
        elif status >= 400 and "statusCode" in body and "problem-json" in self.deviations:
            body = problem_details(status, body, path)
            media_type = PROBLEM_JSON
        else:
            return status, None, raw
        return status, media_type, json.dumps(body, separators=(",", ":")).encode("utf-8")

    def _success(self, status: int, body: dict[str, JSON]) -> int:
        usage = _usage(body)
        if usage is not None and "credits_used" in usage:
            credits = usage["credits_used"]
            if "usd-spent" in self.deviations and isinstance(credits, int | float):
                usage["usd_spent"] = credits / CREDITS_PER_USD
            if "tokens-used" in self.deviations:
                usage["tokens_used"] = usage.pop("credits_used")
        if "wrong-size" in self.deviations and isinstance(body.get("data"), list):
            for entry in body["data"]:
                if isinstance(entry, dict) and isinstance(entry.get("url"), str):
                    entry["url"] = self._shrunk(entry["url"])
        if "data-null" in self.deviations:
            body["data"] = None
        return 201 if "status-201" in self.deviations else status

    def _shrunk(self, url: str) -> str:
        parts = urlsplit(url)
        folder, _, name = parts.path.rpartition("/")
        token, dot, extension = name.rpartition(".")
        spec = decode_image_token(token, self._secret)
        if spec is None:
            return url
        smaller = replace(spec, width=max(1, spec.width // 2), height=max(1, spec.height // 2))
        new_name = encode_image_token(smaller, self._secret) + dot + extension
        return urlunsplit(parts._replace(path=f"{folder}/{new_name}"))


def problem_details(status: int, envelope: dict[str, JSON], path: str) -> dict[str, JSON]:
    """The 2026 shape of an error: RFC 9457 problem details with the API's own additions."""
    message = envelope.get("message")
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return {
        "title": title,
        "status": status,
        "message": message,
        "instance": envelope.get("path", path),
        "requestId": envelope.get("requestId"),
        "timestamp": envelope.get("timestamp"),
        "error": {"name": _NEST_EXCEPTIONS.get(status, "HttpException"), "message": message},
    }


def _usage(body: dict[str, JSON]) -> MutableMapping[str, Any] | None:
    meta = body.get("meta")
    usage = meta.get("usage") if isinstance(meta, dict) else None
    return usage if isinstance(usage, dict) else None

"""The recording proxy's answer source: forward to the upstream, keep what came back, check it.

For each API request: count it against the cap, send it upstream with the key (never the
caller's credentials), download every image the answer names, check everything against the
specs, write the exchange, and answer the caller with image URLs on the fake itself.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from anyio import to_thread

from ..contract.guard import Redactor
from ..engine.ids import new_request_id
from ..errors import ApiError
from ..http.answers import error_answer
from ..spec.load import SpecSet
from ..types import JSON, Answer
from .cassette import Cassette, CassetteWriter, Exchange, media_type_of
from .drift import DriftChecker
from .replay import Recorded, Replay, decode_body
from .upstream import CREDENTIAL_HEADERS, Budget, Upstream, UpstreamError, kept_answer_headers

Report = Callable[[str], None]

_SKIPPED_REQUEST_HEADERS = CREDENTIAL_HEADERS | {
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "accept-encoding",
    "keep-alive",
    "te",
    "upgrade",
    "prefer",
}


def print_finding(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Recorder:
    """An answer source that forwards API requests upstream and records them in a cassette.

    ``replay``, when given, answers what the cassette already holds (pytest's ``new`` mode);
    whatever the recorder writes is added to it.
    """

    def __init__(
        self,
        upstream: Upstream,
        writer: CassetteWriter,
        spec_set: SpecSet,
        budget: Budget,
        *,
        replay: Replay | None = None,
        report: Report = print_finding,
    ) -> None:
        self.upstream = upstream
        self.writer = writer
        self.checker = DriftChecker(spec_set)
        self.budget = budget
        self.report = report
        self.redact = Redactor(upstream.key)
        self.cassette = Cassette(writer.directory, [])
        self.replay = replay or Replay([], miss="error")
        self.findings: list[str] = []
        self.recorded = 0
        self._lock = threading.Lock()

    async def answer(
        self, method: str, path: str, body: bytes, headers: Mapping[bytes, bytes], base_url: str
    ) -> tuple[Answer | None, str]:
        if self.replay.cassettes:
            recorded = self.replay.lookup(method, path, decode_body(body))
            if recorded is not None:
                return recorded.answer(base_url), f"replay {recorded.exchange.file}"
        if not self.budget.admit():
            message = (
                f"aimlapi-mock record: the cap of {self.budget.cap} image-creating requests sent "
                "upstream is used up (--max-requests); this one was not sent"
            )
            return _error(429, message, path), "record refused: cap reached"
        text_headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in headers.items()
        }
        try:
            exchange, images = await to_thread.run_sync(
                self._exchange, method, path, body, text_headers
            )
        except UpstreamError as error:
            self._note(f"{method} {path}: {error.message}")
            return _error(error.status, error.message, path), "upstream failed"
        exchange.findings = self.checker.check(
            method,
            path,
            exchange.body,
            exchange.status,
            media_type_of(exchange.response_headers.items()),
            exchange.response_body,
            images,
        )
        await to_thread.run_sync(self.writer.add, exchange)
        with self._lock:
            self.recorded += 1
            self.cassette.exchanges.append(exchange)
        self.replay.add(exchange, self.cassette)
        for finding in exchange.findings:
            self._note(f"{method} {path} ({exchange.file}): {finding}")
        return Recorded.of(exchange, self.cassette).answer(base_url), "upstream"

    def image(self, path: str) -> tuple[bytes, str] | None:
        return self.replay.image(path)

    def _exchange(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[Exchange, list[bytes]]:
        """Forward the request and download its images (blocking: runs in a worker thread)."""
        sent_at = datetime.now(UTC)
        got = self.upstream.send(method, path, body, headers)
        answer_headers = kept_answer_headers(got.headers)
        answer: JSON = _scrubbed(decode_body(got.body), self.redact)
        stored, images = [], []
        for url in image_urls(answer) if 200 <= got.status < 300 else []:
            image = self.upstream.download(url)
            if image.status != 200:
                raise UpstreamError(
                    502, f"the upstream's image URL {self.redact(url)} answered {image.status}"
                )
            data = image.body
            key = self.upstream.key.encode()
            if len(key) >= Redactor.MIN_SECRET_CHARS and key in data:
                raise UpstreamError(502, f"the image at {self.redact(url)} contains the API key")
            image_type = media_type_of(image.headers) or "application/octet-stream"
            stored.append(self.writer.add_image(url, data, image_type))
            images.append(data)
        exchange = Exchange(
            method=method,
            path=path,
            body=_scrubbed(decode_body(body), self.redact),
            request_headers={
                name: self.redact(value)
                for name, value in sorted(headers.items())
                if name not in _SKIPPED_REQUEST_HEADERS
            },
            status=got.status,
            response_headers={name: self.redact(v) for name, v in answer_headers.items()},
            response_body=answer,
            recorded_at=sent_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            upstream=self.upstream.base_url,
            images=stored,
        )
        return exchange, images

    def _note(self, line: str) -> None:
        with self._lock:
            self.findings.append(line)
        self.report(f"aimlapi-mock record: finding: {line}")


def image_urls(body: JSON) -> list[str]:
    """The image URLs an answer names (``data[].url``)."""
    data = body.get("data") if isinstance(body, dict) else None
    return [
        entry["url"]
        for entry in (data if isinstance(data, list) else [])
        if isinstance(entry, dict) and isinstance(entry.get("url"), str) and entry["url"]
    ]


def _scrubbed(value: Any, redact: Redactor) -> Any:
    """``value`` with the key's text replaced wherever it occurs (keys and values alike)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_scrubbed(item, redact) for item in value]
    if isinstance(value, dict):
        return {redact(name): _scrubbed(item, redact) for name, item in value.items()}
    return value


def _error(status: int, message: str, path: str) -> Answer:
    return error_answer(ApiError(status, message), path, new_request_id())

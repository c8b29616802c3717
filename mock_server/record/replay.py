"""Replaying cassettes: the answer source that stands in front of synthesis.

A request matches a recorded exchange by method, path (``/v1`` and a trailing slash do not
matter) and body as canonical JSON, less the fields to ignore. Identical requests recorded
several times are answered in recorded order, the last one again after that.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..engine.ids import new_request_id
from ..errors import ApiError
from ..http.answers import error_answer
from ..types import JSON, Answer
from .cassette import Cassette, Exchange, load_cassette

MatchKey = tuple[str, str, str]


def decode_body(raw: bytes) -> JSON:
    """A request or answer body as JSON; the text when it is not JSON; None when empty."""
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def canonical(body: JSON, ignore: Iterable[str] = ()) -> str:
    """``body`` as JSON text with sorted keys and without the ``ignore`` fields (dotted names)."""
    for name in ignore:
        body = _without(body, name.split("."))
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def match_key(method: str, path: str, body: JSON, ignore: Iterable[str] = ()) -> MatchKey:
    return method.upper(), _path_key(path), canonical(body, ignore)


def differences(left: JSON, right: JSON, prefix: str = "") -> list[str]:
    """Dotted names of the fields where two bodies differ (``body`` for the whole)."""
    if isinstance(left, dict) and isinstance(right, dict):
        found: list[str] = []
        for name in sorted(set(left) | set(right)):
            where = f"{prefix}.{name}" if prefix else name
            if name not in left or name not in right:
                found.append(where)
            else:
                found += differences(left[name], right[name], where)
        return found
    return [] if left == right else [prefix or "body"]


def rewritten_url(url: str, base_url: str) -> str:
    """``url`` moved onto the fake: its path and query under ``base_url``."""
    parts = urlsplit(url)
    return base_url.rstrip("/") + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


@dataclass
class Recorded:
    """A recorded exchange made ready to answer with."""

    exchange: Exchange
    cassette: Cassette
    content: bytes
    headers: list[tuple[bytes, bytes]]

    @classmethod
    def of(cls, exchange: Exchange, cassette: Cassette) -> Recorded:
        body = exchange.response_body
        if isinstance(body, str):
            content = body.encode("utf-8")
        elif body is None:
            content = b""
        else:
            content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        headers = [
            (name.lower().encode("latin-1", "replace"), value.encode("latin-1", "replace"))
            for name, value in exchange.response_headers.items()
            if name.lower() != "content-length"
        ]
        return cls(exchange, cassette, content, headers)

    def answer(self, base_url: str) -> Answer:
        content = self.content
        for image in self.exchange.images:
            content = content.replace(
                image.url.encode(), rewritten_url(image.url, base_url).encode()
            )
        headers = [*self.headers, (b"content-length", b"%d" % len(content))]
        return Answer(self.exchange.status, headers, content)


class Replay:
    """Answers from cassettes; ``None`` for a miss when ``miss`` is ``synthesize``."""

    def __init__(
        self, cassettes: Sequence[Cassette], miss: str = "synthesize", ignore: Iterable[str] = ()
    ) -> None:
        self.cassettes = list(cassettes)
        self.miss = miss
        self.ignore = tuple(ignore)
        self._by_key: dict[MatchKey, list[Recorded]] = {}
        self._played: dict[MatchKey, int] = {}
        self._images: dict[str, tuple[Path, str]] = {}
        self._image_bytes: dict[str, bytes] = {}
        for cassette in self.cassettes:
            for exchange in cassette.exchanges:
                self.add(exchange, cassette)

    @classmethod
    def load(
        cls,
        directories: Iterable[str | os.PathLike[str]],
        miss: str = "synthesize",
        ignore: Iterable[str] = (),
    ) -> Replay:
        """Load each cassette directory (raises :class:`CassetteError` for a bad one)."""
        return cls([load_cassette(directory) for directory in directories], miss, ignore)

    def add(self, exchange: Exchange, cassette: Cassette) -> None:
        """Make ``exchange`` (of ``cassette``) replayable, after the ones already known."""
        key = match_key(exchange.method, exchange.path, exchange.body, self.ignore)
        self._by_key.setdefault(key, []).append(Recorded.of(exchange, cassette))
        for image in exchange.images:
            self._images[urlsplit(image.url).path] = (cassette.image_path(image), image.media_type)

    def rewind(self) -> None:
        """Start every recorded sequence from its first answer again."""
        self._played.clear()

    def lookup(self, method: str, path: str, body: JSON) -> Recorded | None:
        """The next recorded answer for this request, if any."""
        key = match_key(method, path, body, self.ignore)
        found = self._by_key.get(key)
        if not found:
            return None
        played = self._played.get(key, 0)
        self._played[key] = played + 1
        return found[min(played, len(found) - 1)]

    async def answer(
        self, method: str, path: str, body: bytes, headers: Mapping[bytes, bytes], base_url: str
    ) -> tuple[Answer | None, str]:
        decoded = decode_body(body)
        recorded = self.lookup(method, path, decoded)
        if recorded is not None:
            return recorded.answer(base_url), f"replay {recorded.exchange.file}"
        if self.miss == "synthesize":
            return None, "replay miss, synthesized"
        error = ApiError(404, self.miss_message(method, path, decoded))
        return error_answer(error, path, new_request_id()), "replay miss, refused"

    def image(self, path: str) -> tuple[bytes, str] | None:
        """The recorded bytes and media type of an image URL's path on the fake."""
        found = self._images.get(path)
        if found is None:
            return None
        data = self._image_bytes.get(path)
        if data is None:
            data = self._image_bytes[path] = found[0].read_bytes()
        return data, found[1]

    def miss_message(self, method: str, path: str, body: JSON) -> str:
        """Why nothing matched: the closest recorded request and the fields that differ."""
        asked = f"{method} {path}"
        mine = json.loads(canonical(body, self.ignore))
        best: tuple[int, Exchange, list[str]] | None = None
        for cassette in self.cassettes:
            for exchange in cassette.exchanges:
                theirs = json.loads(canonical(exchange.body, self.ignore))
                fields = differences(mine, theirs)
                route = (exchange.method, _path_key(exchange.path)) == (method, _path_key(path))
                score = len(fields) + (0 if route else 1000)
                if best is None or score < best[0]:
                    best = (score, exchange, fields if route else ["method or path", *fields])
        if best is None:
            return f"No recorded exchange matches {asked}: the cassettes hold none"
        _, exchange, fields = best
        return (
            f"No recorded exchange matches {asked}; the closest is {exchange.file} "
            f"({exchange.method} {exchange.path}), which differs in {', '.join(fields)}"
        )


def _path_key(path: str) -> str:
    trimmed = path.rstrip("/") or "/"
    return trimmed.removeprefix("/v1") or "/"


def _without(body: JSON, names: list[str]) -> JSON:
    if not isinstance(body, dict) or not names:
        return body
    first, rest = names[0], names[1:]
    if first not in body:
        return body
    copy = dict(body)
    if rest:
        copy[first] = _without(copy[first], rest)
    else:
        del copy[first]
    return copy

"""Cassettes: recorded exchanges with the upstream, and the images they named, in a directory.

::

    DIR/
      exchanges/0001.json   one exchange per file: request, answer, images, findings
      exchanges/0002.json
      images/<sha256>.png   each image once, named by the SHA-256 of its bytes

Every file is written whole to a temporary name and then linked into place, so a recorder that is
killed leaves only complete files (and perhaps a ``.tmp`` the loader ignores). Exchange files are
pretty-printed JSON with sorted keys: a re-recording diffs line by line.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CassetteError as CassetteError  # its home before errors.py; still exported
from ..types import IMAGE_MEDIA_TYPES, JSON

FORMAT = 1
"""The version of the exchange files; a loader refuses any other."""
EXCHANGES = "exchanges"
IMAGES = "images"

_EXCHANGE_NAME = re.compile(r"(\d{4,})\.json")
_EXTENSIONS = {media_type: extension for extension, media_type in IMAGE_MEDIA_TYPES.items()}


@dataclass(frozen=True)
class StoredImage:
    """One image an answer named: its URL as recorded, and its bytes in ``images/``."""

    url: str
    sha256: str
    media_type: str
    size: int

    @property
    def file(self) -> str:
        """The path of its bytes, relative to the cassette directory."""
        return f"{IMAGES}/{self.sha256}.{_EXTENSIONS.get(self.media_type, 'bin')}"

    def as_json(self) -> dict[str, JSON]:
        return {
            "url": self.url,
            "sha256": self.sha256,
            "media_type": self.media_type,
            "size": self.size,
            "file": self.file,
        }


@dataclass
class Exchange:
    """One request the recorder forwarded, and the upstream's answer."""

    method: str
    path: str
    body: JSON
    """The request body as JSON (text when it was not JSON, None when empty)."""
    request_headers: dict[str, str]
    status: int
    response_headers: dict[str, str]
    response_body: JSON
    """The answer's body as JSON (text when it was not JSON), image URLs as the upstream gave."""
    recorded_at: str
    upstream: str
    images: list[StoredImage] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    file: str = ""
    """Where it was loaded from (``DIR/exchanges/0001.json``); empty before it is written."""

    @property
    def model(self) -> str | None:
        model = self.body.get("model") if isinstance(self.body, dict) else None
        return model if isinstance(model, str) else None

    def as_json(self) -> dict[str, JSON]:
        return {
            "format": FORMAT,
            "recorded_at": self.recorded_at,
            "upstream": self.upstream,
            "request": {
                "method": self.method,
                "path": self.path,
                "headers": self.request_headers,
                "body": self.body,
            },
            "response": {
                "status": self.status,
                "headers": self.response_headers,
                "body": self.response_body,
            },
            "images": [image.as_json() for image in self.images],
            "findings": self.findings,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> Exchange:
        """Read an exchange file's content; :class:`CassetteError` names ``where`` and the entry."""
        entry = _Entry(where)
        top = entry.mapping(data, "")
        if top.get("format") != FORMAT:
            raise entry.error("format", f"is {top.get('format')!r}, expected {FORMAT}")
        request = entry.mapping(top.get("request"), "request")
        response = entry.mapping(top.get("response"), "response")
        images = []
        for number, raw in enumerate(entry.list(top.get("images", []), "images")):
            name = f"images[{number}]"
            item = entry.mapping(raw, name)
            images.append(
                StoredImage(
                    entry.text(item.get("url"), f"{name}.url"),
                    entry.text(item.get("sha256"), f"{name}.sha256", r"[0-9a-f]{64}"),
                    entry.text(item.get("media_type"), f"{name}.media_type"),
                    entry.number(item.get("size"), f"{name}.size"),
                )
            )
        return cls(
            method=entry.text(request.get("method"), "request.method", r"[A-Z]+"),
            path=entry.text(request.get("path"), "request.path", r"/.*"),
            body=request.get("body"),
            request_headers=entry.headers(request.get("headers", {}), "request.headers"),
            status=entry.number(response.get("status"), "response.status", 100, 599),
            response_headers=entry.headers(response.get("headers", {}), "response.headers"),
            response_body=response.get("body"),
            recorded_at=entry.text(top.get("recorded_at"), "recorded_at"),
            upstream=entry.text(top.get("upstream", ""), "upstream"),
            images=images,
            findings=[
                entry.text(finding, f"findings[{n}]")
                for n, finding in enumerate(entry.list(top.get("findings", []), "findings"))
            ],
            file=where,
        )


@dataclass
class Cassette:
    """A loaded cassette: its exchanges in recorded order."""

    directory: Path
    exchanges: list[Exchange]

    def image_path(self, image: StoredImage) -> Path:
        return self.directory / image.file

    def read_image(self, image: StoredImage) -> bytes:
        return self.image_path(image).read_bytes()

    @property
    def image_files(self) -> list[Path]:
        folder = self.directory / IMAGES
        return sorted(p for p in folder.iterdir() if _is_complete(p)) if folder.is_dir() else []


def load_cassette(directory: str | os.PathLike[str]) -> Cassette:
    """Read every exchange of ``directory`` and check its images are there, or raise
    :class:`CassetteError` naming the file and the entry."""
    root = Path(directory)
    folder = root / EXCHANGES
    if not folder.is_dir():
        what = "no such directory" if not root.exists() else f"no {EXCHANGES}/ folder in it"
        raise CassetteError(f"{root}: not a cassette ({what})")
    exchanges = []
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        if not _is_complete(path):
            continue
        if _EXCHANGE_NAME.fullmatch(path.name) is None:
            raise CassetteError(f"{path}: not an exchange file (expected names like 0001.json)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise CassetteError(f"{path}: not JSON ({error})") from None
        exchange = Exchange.from_json(data, str(path))
        for number, image in enumerate(exchange.images):
            image_file = root / image.file
            if not image_file.is_file():
                raise CassetteError(
                    f"{path}: images[{number}]: image file {image.file} is missing "
                    f"(recorded from {image.url})"
                )
            if image_file.stat().st_size != image.size:
                raise CassetteError(
                    f"{path}: images[{number}]: image file {image.file} has "
                    f"{image_file.stat().st_size} bytes, the exchange says {image.size}"
                )
            if hashlib.sha256(image_file.read_bytes()).hexdigest() != image.sha256:
                raise CassetteError(
                    f"{path}: images[{number}]: image file {image.file} does not hold the "
                    "recorded bytes (its SHA-256 differs)"
                )
        exchanges.append(exchange)
    return Cassette(root, exchanges)


class CassetteWriter:
    """Adds exchanges and images to a cassette directory, safely from several threads at once
    (and several processes: an exchange never replaces another's file).

    ``scrub`` is applied to every text written; image bytes containing ``secret`` are refused.
    """

    def __init__(self, directory: str | os.PathLike[str], scrub: Callable[[str], str]) -> None:
        self.directory = Path(directory)
        self.scrub = scrub
        try:
            (self.directory / EXCHANGES).mkdir(parents=True, exist_ok=True)
            (self.directory / IMAGES).mkdir(exist_ok=True)
        except OSError as error:
            raise CassetteError(
                f"{self.directory}: cannot write a cassette here ({error})"
            ) from None
        self._lock = threading.Lock()
        numbers = [
            int(match.group(1))
            for path in (self.directory / EXCHANGES).iterdir()
            if (match := _EXCHANGE_NAME.fullmatch(path.name))
        ]
        self._next = max(numbers, default=0) + 1

    def add_image(self, url: str, data: bytes, media_type: str) -> StoredImage:
        """Store ``data`` under its SHA-256 (once, however often it is added)."""
        image = StoredImage(url, hashlib.sha256(data).hexdigest(), media_type, len(data))
        target = self.directory / image.file
        if not target.exists():
            _write_new(target, data)
        return image

    def add(self, exchange: Exchange) -> Path:
        """Write ``exchange`` as the next numbered file; returns its path."""
        text = json.dumps(exchange.as_json(), indent=2, sort_keys=True, ensure_ascii=False)
        data = (self.scrub(text) + "\n").encode("utf-8")
        with self._lock:
            while True:
                target = self.directory / EXCHANGES / f"{self._next:04d}.json"
                self._next += 1
                if _write_new(target, data):
                    exchange.file = str(target)
                    return target


def _write_new(target: Path, data: bytes) -> bool:
    """Write ``data`` to ``target`` whole or not at all; False if ``target`` already exists."""
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(temporary, target)  # unlike a rename, never replaces another writer's file
    except FileExistsError:
        return False
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return True


def _is_complete(path: Path) -> bool:
    return not path.name.startswith(".") and not path.name.endswith(".tmp") and path.is_file()


class _Entry:
    """Reads one exchange file's fields, raising :class:`CassetteError` at the first bad one."""

    def __init__(self, where: str) -> None:
        self.where = where

    def error(self, name: str, problem: str) -> CassetteError:
        return CassetteError(f"{self.where}: entry {name or 'the file'!r} {problem}")

    def mapping(self, value: Any, name: str) -> Mapping[str, Any]:
        if not isinstance(value, dict):
            raise self.error(name, f"is {_kind(value)}, expected an object")
        return value

    def list(self, value: Any, name: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(name, f"is {_kind(value)}, expected a list")
        return value

    def text(self, value: Any, name: str, pattern: str | None = None) -> str:
        if not isinstance(value, str):
            raise self.error(name, f"is {_kind(value)}, expected text")
        if pattern is not None and re.fullmatch(pattern, value) is None:
            raise self.error(name, f"is {value!r}, which is not a valid value")
        return value

    def number(self, value: Any, name: str, low: int = 0, high: int | None = None) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise self.error(name, f"is {value!r}, expected a whole number of at least {low}")
        if high is not None and value > high:
            raise self.error(name, f"is {value!r}, expected at most {high}")
        return value

    def headers(self, value: Any, name: str) -> dict[str, str]:
        headers = self.mapping(value, name)
        for key, item in headers.items():
            self.text(item, f"{name}.{key}")
        return dict(headers)


def _kind(value: Any) -> str:
    return "missing" if value is None else type(value).__name__


def media_type_of(headers: Iterable[tuple[str, str]]) -> str:
    """The media type (without parameters) from ``headers``, lower case; empty when absent."""
    for name, value in headers:
        if name.lower() == "content-type":
            return value.partition(";")[0].strip().lower()
    return ""

"""Data types shared by every stage of the fake. Imports nothing else from the project."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

JSON = Any
"""A value decoded from JSON: dict, list, str, int, float, bool or None."""

ImageFormat = Literal["png", "jpeg", "webp", "gif", "tiff"]

IMAGE_MEDIA_TYPES: dict[str, str] = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
    "tiff": "image/tiff",
}


@dataclass(frozen=True)
class ImageSpec:
    """Everything needed to render one placeholder image; it travels inside the image URL.

    ``inputs`` are the images an edit was given (empty for a text-to-image generation).
    """

    model: str
    prompt: str
    width: int
    height: int
    format: ImageFormat
    seed: int
    index: int
    inputs: tuple[InputImage, ...] = ()


MOSAIC_SIDE = 8
"""A decoded input image travels as a preview of this many pixels a side (RGB)."""


@dataclass(frozen=True)
class IssuedImage:
    """An input image this fake issued itself: the spec of the image its URL serves."""

    spec: ImageSpec

    @property
    def size(self) -> tuple[int, int] | None:
        return self.spec.width, self.spec.height


@dataclass(frozen=True)
class DecodedImage:
    """An input image whose bytes the fake read: a ``data:`` URI, or a URL it downloaded.

    ``mosaic`` is the picture shrunk to ``MOSAIC_SIDE`` x ``MOSAIC_SIDE`` RGB pixels, enough to
    draw a recognisable thumbnail of it later without keeping the bytes.
    """

    width: int
    height: int
    format: str
    source: Literal["data", "fetched"]
    mosaic: bytes

    @property
    def size(self) -> tuple[int, int] | None:
        return self.width, self.height


@dataclass(frozen=True)
class RemoteImage:
    """An input image named by an http(s) URL the fake did not download: its size is unknown."""

    url: str

    @property
    def size(self) -> tuple[int, int] | None:
        return None


InputImage = IssuedImage | DecodedImage | RemoteImage


@dataclass(frozen=True)
class Violation:
    """One way a request (or response) breaks its schema.

    ``path`` locates the offending value (``("image_size", "width")``), ``code`` is a zod-style
    issue code (``invalid_type``, ``too_big``, ...), ``message`` the zod-style sentence.
    """

    path: tuple[str | int, ...]
    code: str
    message: str
    expected: JSON = None
    received: JSON = None

    @property
    def field(self) -> str:
        """The dotted field name, e.g. ``image_size.width`` (``body`` for the body itself)."""
        return ".".join(map(str, self.path)) or "body"

    def as_json(self) -> dict[str, JSON]:
        return {
            "field": self.field,
            "path": list(self.path),
            "code": self.code,
            "message": self.message,
            "expected": self.expected,
            "received": self.received,
        }


@dataclass(frozen=True)
class Operation:
    """One model's operation on one method + path, as loaded from an OpenAPI document."""

    method: str
    path: str
    model: str
    source: str
    operation_id: str | None
    request_schema: dict[str, JSON]
    success_status: int
    success_schema: dict[str, JSON] | None
    response_schemas: dict[int, dict[str, JSON] | None] = field(default_factory=dict)
    credits_per_megapixel: float | None = None


@dataclass(frozen=True)
class ImageRequest:
    """What a valid generation request asks for, with the spec's defaults filled in."""

    model: str
    prompt: str
    width: int
    height: int
    format: ImageFormat
    seed: int
    count: int
    inputs: tuple[InputImage, ...] = ()

    def images(self) -> list[ImageSpec]:
        """One :class:`ImageSpec` per requested image."""
        return [
            ImageSpec(
                self.model,
                self.prompt,
                self.width,
                self.height,
                self.format,
                self.seed,
                i,
                self.inputs,
            )
            for i in range(self.count)
        ]


@dataclass(slots=True)
class Answer:
    """A complete HTTP answer: the one value every stage of the request pipeline passes on.

    ``headers`` are ASGI's lower-case byte pairs; ``body`` is what is sent, whole.
    """

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @property
    def is_json(self) -> bool:
        for name, value in self.headers:
            if name == b"content-type":
                media_type = value.partition(b";")[0].strip()
                return media_type == b"application/json" or media_type.endswith(b"+json")
        return False


class Source(Protocol):
    """Answers to API requests from somewhere other than synthesis (a cassette, the upstream).

    ``answer`` returns the answer, or None to let the spec-driven fake synthesise it, and a few
    words for the journal on where it came from; ``image`` serves the bytes and media type of an
    image it handed out, by the URL's path on the fake.
    """

    async def answer(
        self, method: str, path: str, body: bytes, headers: Mapping[bytes, bytes], base_url: str
    ) -> tuple[Answer | None, str]: ...

    def image(self, path: str) -> tuple[bytes, str] | None: ...

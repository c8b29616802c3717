"""Data types shared by every stage of the fake. Imports nothing else from the project."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

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
    """Everything needed to render one placeholder image; it travels inside the image URL."""

    model: str
    prompt: str
    width: int
    height: int
    format: ImageFormat
    seed: int
    index: int


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

    def images(self) -> list[ImageSpec]:
        """One :class:`ImageSpec` per requested image."""
        return [
            ImageSpec(self.model, self.prompt, self.width, self.height, self.format, self.seed, i)
            for i in range(self.count)
        ]

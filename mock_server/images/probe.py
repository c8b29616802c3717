"""Reading an input image the fake was given as bytes: its size, format and a tiny preview.

Edits receive images as ``data:`` URIs or (when told to fetch them) downloaded bytes; the fake
only needs to know that they are real images, how large they are (edits are charged by input
megapixels) and what they roughly look like (the edit's placeholder shows thumbnails of them).
"""

from __future__ import annotations

import io
import warnings
from typing import Literal

from PIL import Image, UnidentifiedImageError

from mock_server.types import MOSAIC_SIDE, DecodedImage

__all__ = ["INPUT_FORMATS", "MAX_INPUT_PIXELS", "UnreadableImage", "probe_image"]

INPUT_FORMATS = ("PNG", "JPEG", "WEBP")
"""What an input image may be: the formats the API itself returns."""

MAX_INPUT_PIXELS = 4096 * 4096
"""Larger images are refused before their pixels are decoded: the fake's own largest image
(16,777,216 pixels), so decoding one input holds at most 64 MiB."""

_PREVIEW_SIDE = 64  # decoded first at about this size (JPEG decodes straight to it), then boxed


class UnreadableImage(ValueError):
    """Bytes that are not an image the fake can read; the message says why."""


def probe_image(data: bytes, source: Literal["data", "fetched"]) -> DecodedImage:
    """Decode ``data`` fully and describe it, or raise :class:`UnreadableImage` saying why.

    Only PNG, JPEG and WebP are read; an image over ``MAX_INPUT_PIXELS`` is refused from its
    header, before its pixels are decoded.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # palette transparency notes and the like: not our concern
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=INPUT_FORMATS)
        except UnidentifiedImageError:
            raise UnreadableImage("is not a PNG, JPEG or WebP image") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UnreadableImage("has too many pixels") from None
        except Exception as error:  # a hostile header can make any decoder raise anything
            raise UnreadableImage(f"cannot be read ({_reason(error)})") from None
        with image:
            width, height = image.size
            if width * height > MAX_INPUT_PIXELS:
                raise UnreadableImage(
                    f"is {width}x{height} pixels, more than the {MAX_INPUT_PIXELS:,} an input "
                    "image may have"
                )
            image_format = (image.format or "").lower()
            try:
                image.load()  # decodes every pixel: truncated or corrupt data fails here
                preview = image.copy()
                preview.thumbnail((_PREVIEW_SIDE, _PREVIEW_SIDE))
                rgb = _flattened(preview)
            except Exception as error:
                raise UnreadableImage(f"cannot be decoded ({_reason(error)})") from None
    mosaic = rgb.resize((MOSAIC_SIDE, MOSAIC_SIDE), Image.Resampling.BOX).tobytes()
    return DecodedImage(width, height, image_format, source, mosaic)


def _flattened(image: Image.Image) -> Image.Image:
    """``image`` as RGB, transparent parts shown over mid grey."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        backdrop = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        return Image.alpha_composite(backdrop, rgba).convert("RGB")
    return image.convert("RGB")


def _reason(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text if len(text) <= 120 else text[:120] + "…"

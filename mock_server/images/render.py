"""Placeholder images: a flat, labelled picture for each ImageSpec.

Labels are drawn with Noto Sans (from the ``pymupdf-fonts`` package), which covers Latin with its
diacritics, Greek and Cyrillic; text in other scripts is shown as a bracketed marker naming the
script (``[Arabic]``), so it is visibly there. An edit's picture also shows thumbnails of its
input images along the bottom and says "edit of N images".

With :mod:`mock_server.images.probe`, the only modules of the project that import Pillow.
"""

from __future__ import annotations

import colorsys
import dataclasses
import functools
import hashlib
import io
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

import pymupdf_fonts
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from mock_server.images import memory
from mock_server.types import (
    MOSAIC_SIDE,
    DecodedImage,
    ImageSpec,
    InputImage,
    IssuedImage,
    RemoteImage,
)

__all__ = ["load_font", "render_placeholder", "reuse_image_buffers"]

# The picture is drawn as palette indices into an "L" image, which becomes a "P" image at the
# end: flat palette images encode many times faster than RGB, which keeps a 2048x2048 PNG fast.
_BACKGROUND = 0
_SHAPE_LIGHT = 1
_SHAPE_DARK = 2
_PANEL = 3
# Antialiased text is drawn on the panel with _TEXT_LEVELS shades from the panel colour (index
# _PANEL) to the text colour (index _PANEL + _TEXT_LEVELS - 1).
_TEXT_LEVELS = 12
_TEXT_COLOUR = (250, 250, 250)
_OWN_COLOURS = _PANEL + _TEXT_LEVELS  # palette entries of the picture itself; thumbnails follow
_THUMBNAIL_BAND = 0.24  # of an edit's height, along the bottom, for the inputs' thumbnails

_MISSING = "\ue000"  # a private-use character: the font draws its "missing glyph" box
_PROMPT_SCAN_CHARS = 1000  # more than any label shows; keeps wrapping a long prompt cheap
_FONT = "notos"  # Noto Sans Regular in pymupdf-fonts: Latin, Greek and Cyrillic
_MAX_PROMPT_LINES = 14
_JPEG_QUALITY = 80
# Characters the bundled font lacks and that have no compatibility decomposition.
_FALLBACK_CHARS = {
    "\N{MULTIPLICATION SIGN}": "x",
    "\N{EN DASH}": "-",
    "\N{EM DASH}": "-",
    "\N{MINUS SIGN}": "-",
    "\N{BULLET}": "\N{MIDDLE DOT}",
    "\N{PRIME}": "'",
    "\N{DOUBLE PRIME}": '"',
}


def render_placeholder(spec: ImageSpec) -> bytes:
    """Render a placeholder image of exactly ``spec.width`` x ``spec.height`` as ``spec.format``.

    The picture shows the model, size, format, seed, image index and the start of the prompt;
    its colours and shapes are derived from the spec, so different images look different. The
    output is byte-for-byte deterministic. PNGs also carry the facts as text metadata.
    """
    canvas, colours = _picture(spec)
    # A full palette makes Pillow write 8-bit PNGs, which encode faster than packed 4-bit ones.
    values = [channel for colour in colours for channel in colour]
    canvas.putpalette(values + [0] * (3 * 256 - len(values)))  # the "L" image becomes "P"
    buffer = io.BytesIO()
    if spec.format == "png":
        canvas.save(buffer, "PNG", compress_level=1, pnginfo=_png_info(spec))
    elif spec.format == "jpeg":
        canvas.convert("RGB").save(buffer, "JPEG", quality=_JPEG_QUALITY)
    elif spec.format == "gif":
        canvas.save(buffer, "GIF")  # a palette image already: GIF takes it as it is
    elif spec.format == "tiff":
        canvas.save(buffer, "TIFF", compression="tiff_deflate")
    else:
        # Lossless at the lowest effort: for flat pictures it is smaller and twice as fast as lossy.
        canvas.convert("RGB").save(buffer, "WEBP", lossless=True, quality=0, method=0)
    return buffer.getvalue()


def _picture(spec: ImageSpec) -> tuple[Image.Image, list[tuple[int, int, int]]]:
    """The picture as palette indices, and the palette's colours."""
    digest = hashlib.sha256(
        "\0".join([spec.model, spec.prompt, str(spec.seed), str(spec.index)]).encode(
            "utf-8", "surrogatepass"
        )
    ).digest()
    canvas = Image.new("L", (spec.width, spec.height), _BACKGROUND)
    _draw_shapes(canvas, digest)
    colours = _palette(digest)
    label_height = spec.height
    if spec.inputs:
        band = round(spec.height * _THUMBNAIL_BAND)
        if band >= 24 and spec.width >= 48:
            label_height = spec.height - band
            _draw_thumbnails(canvas, spec.inputs, label_height, colours)
    _draw_label(canvas, spec, label_height)
    return canvas, colours


def _palette(digest: bytes) -> list[tuple[int, int, int]]:
    hue = int.from_bytes(digest[:2], "big") / 65536
    colours = [
        colorsys.hsv_to_rgb(hue, 0.40, 0.78),
        colorsys.hsv_to_rgb((hue + 0.06) % 1, 0.32, 0.88),
        colorsys.hsv_to_rgb((hue - 0.06) % 1, 0.50, 0.62),
    ]
    panel = colorsys.hsv_to_rgb(hue, 0.55, 0.18)
    text = tuple(channel / 255 for channel in _TEXT_COLOUR)
    for level in range(_TEXT_LEVELS):
        mix = level / (_TEXT_LEVELS - 1)
        r, g, b = (p + (t - p) * mix for p, t in zip(panel, text, strict=True))
        colours.append((r, g, b))
    return [(round(r * 255), round(g * 255), round(b * 255)) for r, g, b in colours]


def _draw_shapes(canvas: Image.Image, digest: bytes) -> None:
    width, height = canvas.size
    draw = ImageDraw.Draw(canvas)
    for i in range(4):
        x, y, r = digest[4 + 3 * i : 7 + 3 * i]
        cx, cy = x / 255 * width, y / 255 * height
        radius = (0.25 + r / 255 * 0.5) * max(width, height)
        fill = _SHAPE_LIGHT if i % 2 else _SHAPE_DARK
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=fill)


@functools.cache
def load_font() -> bytes:
    """The label font's file (Noto Sans Regular), unpacked on first use (some tens of ms).

    A server may call it at start-up, off the event loop, to spare its first render the wait.
    """
    return bytes(pymupdf_fonts.myfont(_FONT))


class _SharedFontFile:
    """A font file that Pillow reads for each size without copying: every size's face shares
    the one ``bytes`` object (a copy per size would be half a megabyte each)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self) -> bytes:
        return self._data


@functools.cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    # The basic layout draws the same glyphs whether or not Pillow has libraqm, and labels are
    # drawn glyph by glyph anyway (see _glyph).
    return ImageFont.truetype(
        _SharedFontFile(load_font()),  # type: ignore[arg-type]
        size,
        layout_engine=ImageFont.Layout.BASIC,
    )


class _Glyph(NamedTuple):
    mask: Image.Image | None  # None for blank glyphs such as the space
    left: int
    top: int
    advance: float


@functools.lru_cache(maxsize=2048)  # a few MB of masks: about 40 font sizes of a label
def _glyph(char: str, size: int) -> _Glyph:
    # FreeType rasterises every glyph of every string anew, which made drawing the label cost
    # more than encoding a 2048x2048 PNG; glyphs drawn once and pasted are several times faster.
    # The font has no kerning for Pillow's basic layout, so advances add up exactly.
    font = _font(size)
    left, top, right, bottom = (int(edge) for edge in font.getbbox(char))
    mask = None
    if right > left and bottom > top:
        mask = Image.new("L", (right - left, bottom - top), 0)
        ImageDraw.Draw(mask).text((-left, -top), char, font=font, fill=255)
    return _Glyph(mask, left, top, font.getlength(char))


def _text_width(text: str, size: int) -> float:
    return sum(_glyph(char, size).advance for char in text)


def _draw_text(canvas: Image.Image, xy: tuple[int, int], text: str, size: int, ink: int) -> None:
    x, y = xy
    pen = 0.0
    for char in text:
        glyph = _glyph(char, size)
        if glyph.mask is not None:
            canvas.paste(ink, (x + round(pen) + glyph.left, y + glyph.top), glyph.mask)
        pen += glyph.advance


@functools.lru_cache(maxsize=4096)
def _has_glyph(char: str) -> bool:
    glyph = _glyph(char, 16).mask
    missing = _glyph(_MISSING, 16).mask
    if glyph is None or missing is None:
        return True  # a blank glyph such as the space, or a font that draws nothing for missing
    return glyph.size != missing.size or glyph.tobytes() != missing.tobytes()


def _displayable(text: str) -> str:
    """``text`` as the label draws it: whitespace collapsed, accents composed with their letters,
    characters the font lacks replaced, and each stretch of words in scripts the font does not
    cover shown as one marker naming them (``[Arabic]``, ``[CJK, Katakana]``; ``[symbol]`` for
    emoji and the like).
    """
    out: list[str] = []
    scripts: list[str] = []  # of the stretch being replaced, if any
    spaces = 0  # seen since the stretch's last replaced character
    for char in unicodedata.normalize("NFC", " ".join(text.split())):
        category = unicodedata.category(char)
        if category in ("Cc", "Cf") or (unicodedata.combining(char) and not _has_glyph(char)):
            continue
        if char == " " and scripts:
            spaces += 1
            continue
        if category == "Cs":
            shown = "?"
        elif _has_glyph(char):
            shown = char
        elif char in _FALLBACK_CHARS:
            shown = _FALLBACK_CHARS[char]
        else:
            decomposed = unicodedata.normalize("NFKD", char)
            kept = "".join(c for c in decomposed if not unicodedata.combining(c))
            shown = kept if kept and all(map(_has_glyph, kept)) else ""
        if shown:
            if scripts:
                out.append(f"[{', '.join(scripts)}]" + " " * spaces)
                scripts, spaces = [], 0
            out.append(shown)
        else:
            script = _script_of(char, category)
            if spaces and script not in scripts:  # another script after a space: a new marker
                out.append(f"[{', '.join(scripts)}]" + " " * spaces)
                scripts = []
            if script not in scripts:
                scripts.append(script)
            spaces = 0
    if scripts:
        out.append(f"[{', '.join(scripts)}]")
    return "".join(out)


def _script_of(char: str, category: str) -> str:
    """A name for the script of ``char``, for a marker: the first word of its Unicode name."""
    if category[0] in "SPZ":
        return "symbol"
    word = unicodedata.name(char, "").split(" ", 1)[0].split("-", 1)[0]
    if not word:
        return "symbol"
    return word if word in ("CJK", "NKO") else word.capitalize()


@dataclass(frozen=True)
class _Line:
    text: str
    size: int
    shade: int  # 0..255: from the panel colour to the text colour
    gap_before: int = 0
    rule_before: bool = False

    @property
    def height(self) -> int:
        return self.gap_before + round(self.size * 1.3)


def _ink(shade: int) -> int:
    """The palette index of ``shade`` (0..255) on the way from panel colour to text colour."""
    return _PANEL + round(shade * (_TEXT_LEVELS - 1) / 255)


def _draw_label(canvas: Image.Image, spec: ImageSpec, height: int) -> None:
    """Draw the label centred in the top ``height`` rows of ``canvas``."""
    width = canvas.width
    body = round(min(math.sqrt(width * height) / 26, width / 22, height / 11, 96))
    if body < 7:
        return  # too small for any legible text
    margin = round(min(width, height) * 0.05)
    pad = round(body * 0.9)
    max_width = width - 2 * (margin + pad)
    max_height = height - 2 * (margin + pad)
    lines = _label_lines(spec, body, max_width, max_height)

    box_width = min(max_width, math.ceil(max(_text_width(ln.text, ln.size) for ln in lines)))
    box_height = min(max_height, sum(line.height for line in lines))
    left, top = (width - box_width) // 2, (height - box_height) // 2
    draw = ImageDraw.Draw(canvas)
    panel = (left - pad, top - pad, left + box_width + pad - 1, top + box_height + pad - 1)
    draw.rounded_rectangle(panel, radius=pad // 2, fill=_PANEL)
    # Drawn over the flat panel, antialiased text blends from the panel's index towards its ink,
    # landing on the palette's shades between the two colours.
    y = top
    for line in lines:
        if y + line.height > top + box_height:
            break
        if line.rule_before:
            thickness = max(1, body // 14)
            rule_top = y + (line.gap_before - thickness) // 2
            draw.rectangle(
                (left, rule_top, left + box_width - 1, rule_top + thickness - 1), fill=_ink(80)
            )
        _draw_text(canvas, (left, y + line.gap_before), line.text, line.size, _ink(line.shade))
        y += line.height


def _label_lines(spec: ImageSpec, body: int, max_width: int, max_height: int) -> list[_Line]:
    title = round(body * 1.4)
    lines: list[_Line] = []
    model_parts = re.split(r"(?<=/)", _displayable(spec.model))
    for text in _wrap(model_parts, "", title, max_width, 2):
        lines.append(_Line(text, title, 255))
    facts = [
        f"{spec.width}\N{MULTIPLICATION SIGN}{spec.height}",
        spec.format.upper(),
        f"seed {spec.seed}",
    ]
    facts.append(f"image #{spec.index}")
    if spec.inputs:
        facts.append(f"edit of {len(spec.inputs)} image{'' if len(spec.inputs) == 1 else 's'}")
    facts = [_displayable(fact) for fact in facts]
    for i, text in enumerate(_wrap(facts, " · ", body, max_width, 3)):
        lines.append(_Line(text, body, 200, round(body * 0.3) if i == 0 else 0))

    gap = round(body * 1.0)
    room = max_height - sum(line.height for line in lines) - gap
    max_lines = min(room // _Line("", body, 0).height, _MAX_PROMPT_LINES)
    if max_lines < 1:
        return lines
    prompt = _displayable(spec.prompt[:_PROMPT_SCAN_CHARS])
    if len(spec.prompt) > _PROMPT_SCAN_CHARS:
        # Cut at the last whole word scanned; the ellipsis says there was more.
        prompt = (prompt.rsplit(" ", 1)[0] if " " in prompt else prompt) + "…"
    if prompt:
        words = f"“{prompt}”".split(" ")
        prompt_lines, shade = _wrap(words, " ", body, max_width, max_lines), 255
    else:
        prompt_lines, shade = ["(empty prompt)"], 150
    for i, text in enumerate(prompt_lines):
        lines.append(_Line(text, body, shade, gap if i == 0 else 0, rule_before=i == 0))
    return lines


def _wrap(words: list[str], separator: str, size: int, width: int, max_lines: int) -> list[str]:
    """Greedy word wrap into at most ``max_lines`` lines, ending in "…" when text was cut."""
    separator_width = _text_width(separator, size)
    lines: list[str] = []
    current: list[str] = []
    current_width = 0.0
    for word in words:
        word_width = _text_width(word, size)
        if current and current_width + separator_width + word_width <= width:
            current.append(word)
            current_width += separator_width + word_width
            continue
        if current:
            lines.append(separator.join(current))
        while word_width > width and len(lines) < max_lines:
            cut = _fitting_prefix(word, size, width)
            lines.append(word[:cut])
            word = word[cut:]
            word_width = _text_width(word, size)
        if len(lines) >= max_lines:
            return _with_ellipsis(lines[:max_lines], size, width)
        current, current_width = [word], word_width
    if current:
        lines.append(separator.join(current))
    return lines


def _fitting_prefix(word: str, size: int, width: int) -> int:
    """The length of the longest prefix of ``word`` that fits in ``width`` (at least 1)."""
    low, high = 1, len(word)
    while low < high:
        middle = (low + high + 1) // 2
        if _text_width(word[:middle], size) <= width:
            low = middle
        else:
            high = middle - 1
    return low


def _with_ellipsis(lines: list[str], size: int, width: int) -> list[str]:
    """``lines`` with the last one ending in "…", cut at a word (a space) if it has one."""
    last = lines[-1].rstrip().removesuffix("…")
    while last and _text_width(last + "…", size) > width:
        head, space, _ = last.rpartition(" ")
        last = head.rstrip() if space and head.strip() else last[:-1]
    return [*lines[:-1], last.rstrip() + "…"]


def _png_info(spec: ImageSpec) -> PngImagePlugin.PngInfo:
    info = PngImagePlugin.PngInfo()
    facts = {
        "model": spec.model,
        "prompt": spec.prompt,
        "width": str(spec.width),
        "height": str(spec.height),
        "seed": str(spec.seed),
        "index": str(spec.index),
        "format": spec.format,
    }
    if spec.inputs:
        facts["inputs"] = "\n".join(_describe(image) for image in spec.inputs)
    for key, value in facts.items():
        try:
            info.add_text(key, value.encode("latin-1"))
        except UnicodeEncodeError:
            # iTXt holds UTF-8; a lone surrogate (legal in a JSON string) becomes "?".
            info.add_itxt(key, value.encode("utf-8", "replace"))
    return info


def _describe(image: InputImage) -> str:
    """One line about an input image, for the PNG metadata of the edit that got it."""
    if isinstance(image, IssuedImage):
        spec = image.spec
        return (
            f"issued {spec.model} {spec.width}x{spec.height} {spec.format} seed {spec.seed} "
            f"image #{spec.index}"
        )
    if isinstance(image, DecodedImage):
        return f"{image.source} {image.format} {image.width}x{image.height}"
    return f"url {image.url} (not downloaded)"


def _draw_thumbnails(
    canvas: Image.Image,
    inputs: tuple[InputImage, ...],
    top: int,
    colours: list[tuple[int, int, int]],
) -> None:
    """Draw a thumbnail of each input in a row below ``top``, adding their colours to
    ``colours`` (each gets palette entries of its own while the 256 last)."""
    width, height = canvas.size
    gap = max(2, round((height - top) * 0.08))
    box_height = height - top - 2 * gap
    count = len(inputs)
    slot = (width - gap * (count + 1)) // count
    shapes = [_thumbnail_shape(image, box_height, slot) for image in inputs]
    row = sum(w for w, _ in shapes) + gap * (count - 1)
    x = (width - row) // 2
    draw = ImageDraw.Draw(canvas)
    frame = max(1, box_height // 40)
    for image, (box_width, box_h) in zip(inputs, shapes, strict=True):
        y = top + gap + (box_height - box_h) // 2
        outline = (x - frame, y - frame, x + box_width + frame - 1, y + box_h + frame - 1)
        draw.rectangle(outline, fill=_PANEL)
        picture = _thumbnail(image, box_width, box_h, len(colours))
        if picture is not None:
            thumb, extra = picture
            canvas.paste(thumb, (x, y))
            colours.extend(extra)
        else:
            _draw_box_label(canvas, image, (x, y, box_width, box_h))
        x += box_width + gap


def _thumbnail_shape(image: InputImage, height: int, max_width: int) -> tuple[int, int]:
    size = image.size or (4, 3)
    width = max(1, round(height * size[0] / size[1]))
    if width > max_width:
        return max_width, max(1, round(max_width * size[1] / size[0]))
    return width, height


def _thumbnail(
    image: InputImage, width: int, height: int, first_entry: int
) -> tuple[Image.Image, list[tuple[int, int, int]]] | None:
    """The thumbnail as palette indices from ``first_entry`` on, and its colours; None when
    there is no picture to show (an image not downloaded) or no palette room left."""
    if isinstance(image, IssuedImage):
        small = dataclasses.replace(image.spec, width=width, height=height, inputs=())
        picture, extra = _picture(small)
    elif isinstance(image, DecodedImage):
        mosaic = image.mosaic
        pixels = [(mosaic[i], mosaic[i + 1], mosaic[i + 2]) for i in range(0, len(mosaic), 3)]
        extra = list(dict.fromkeys(pixels))
        index = {colour: n for n, colour in enumerate(extra)}
        picture = Image.new("L", (MOSAIC_SIDE, MOSAIC_SIDE))
        picture.putdata([index[colour] for colour in pixels])
        picture = picture.resize((width, height), Image.Resampling.NEAREST)
    else:
        return None
    if first_entry + len(extra) > 256:
        return None
    return picture.point(lambda value: value + first_entry), extra


def _draw_box_label(canvas: Image.Image, image: InputImage, box: tuple[int, int, int, int]) -> None:
    """Name what the empty box stands for: the URL's host, or "image"."""
    x, y, width, height = box
    text = "image"
    if isinstance(image, RemoteImage):
        text = re.sub(r"^[a-z]+://", "", image.url, flags=re.IGNORECASE).split("/", 1)[0] or "URL"
    size = min(round(height / 5), 40)
    if size < 7:
        return
    shown = _displayable(text)
    if _text_width(shown, size) > width - 4:
        shown = _with_ellipsis([shown], size, width - 4)[0]
    if shown and _text_width(shown, size) <= width - 4:
        left = x + (width - round(_text_width(shown, size))) // 2
        _draw_text(canvas, (left, y + (height - size) // 2), shown, size, _ink(200))


def reuse_image_buffers(count: int) -> None:
    """Let Pillow keep ``count`` freed image buffers for the next render instead of unmapping
    them: a 2048x2048 canvas is 4 MiB of fresh pages otherwise (see :mod:`mock_server.memory`)."""
    Image.core.set_blocks_max(count)  # type: ignore[attr-defined]


if memory.allocator_tuned():  # a server process, tuned before its first render
    reuse_image_buffers(memory.REUSED_IMAGE_BUFFERS)

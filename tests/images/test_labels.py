"""What placeholder images say: labels in any script, cut prompts, and edits' thumbnails."""

import dataclasses
import io
from collections import Counter

import pytest
from PIL import Image, PngImagePlugin

from mock_server.images import render
from mock_server.images.render import render_placeholder
from mock_server.images.tokens import decode_image_token, encode_image_token
from mock_server.types import DecodedImage, ImageSpec, IssuedImage, RemoteImage

SPEC = ImageSpec("blackforestlabs/flux-2", "a red fox in the snow", 1024, 768, "png", 42, 0)
BLUE = (0, 90, 200)
MOSAIC = bytes(BLUE) * 64


def open_png(data: bytes) -> PngImagePlugin.PngImageFile:
    image = Image.open(io.BytesIO(data))
    assert isinstance(image, PngImagePlugin.PngImageFile)
    image.load()
    return image


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "Ein Löwe im Café, Łódź, Ærøskøbing, Dvořák",
            "Ein Löwe im Café, Łódź, Ærøskøbing, Dvořák",
        ),
        ("Ελληνικά γράμματα", "Ελληνικά γράμματα"),
        ("Кириллица и ещё Україна", "Кириллица и ещё Україна"),
        ("cafe\u0301 nai\u0308ve", "café naïve"),
        ("a 東京 b", "a [CJK] b"),
        ("東京タワー", "[CJK, Katakana]"),
        ("مرحبا بالعالم!", "[Arabic]!"),
        ("שלום עולם 東京", "[Hebrew] [CJK]"),
        ("fox 🦊🦊 den", "fox [symbol] den"),
        ("tabs\tand\nnew  lines\x00\u200b", "tabs and new lines"),
        ("lone \ud800 surrogate", "lone ? surrogate"),
    ],
    ids=[
        "latin-diacritics",
        "greek",
        "cyrillic",
        "combining-accents",
        "cjk-in-latin",
        "two-scripts-one-word",
        "arabic-words",
        "scripts-after-spaces",
        "emoji",
        "whitespace-and-controls",
        "surrogate",
    ],
)
def test_labels_draw_covered_scripts_and_mark_the_others(text: str, shown: str) -> None:
    assert render._displayable(text) == shown


@pytest.mark.parametrize("pair", ["öo", "ée", "ΩO", "ЖX", "ёе", "ŁL"])
def test_letters_with_diacritics_and_other_alphabets_have_glyphs_of_their_own(pair: str) -> None:
    letter, plain = pair
    missing = render._glyph("\ue000", 40).mask
    mask, other = render._glyph(letter, 40).mask, render._glyph(plain, 40).mask
    assert mask is not None and other is not None and missing is not None
    assert mask.tobytes() != other.tobytes()
    assert (mask.size, mask.tobytes()) != (missing.size, missing.tobytes())


def prompt_lines(spec: ImageSpec) -> list[str]:
    body = 30
    lines = render._label_lines(spec, body, 900, 600)
    return [line.text for line in lines if line.size == body][1:]  # after the facts line


def test_a_long_prompt_is_cut_at_a_word_with_an_ellipsis() -> None:
    words = [f"word{n}" for n in range(600)]
    lines = prompt_lines(dataclasses.replace(SPEC, prompt=" ".join(words)))
    assert lines[-1].endswith("…")
    shown = " ".join(lines).removeprefix("“").removesuffix("…").split(" ")
    assert shown == words[: len(shown)]  # whole words only, in order
    assert len(shown) < len(words)


def test_a_single_overlong_word_is_still_cut_with_an_ellipsis() -> None:
    lines = prompt_lines(dataclasses.replace(SPEC, prompt="x" * 4000))
    assert lines[-1].endswith("…") and set(lines[-1][:-1]) == {"x"}


def test_a_prompt_longer_than_the_label_can_scan_ends_with_an_ellipsis() -> None:
    # 120 short words fit in a big label, but the prompt goes on after what is scanned.
    prompt = "ab " * 120 + "tail " * 300
    spec = dataclasses.replace(SPEC, prompt=prompt)
    lines = render._label_lines(spec, 8, 4000, 4000)
    assert lines[-1].text.endswith(" tail…”")


def test_the_png_keeps_the_whole_prompt_through_its_url_token() -> None:
    prompt = "Ein sehr langer Prompt über einen Löwen im Café. " * 80  # 4000 characters
    token = encode_image_token(dataclasses.replace(SPEC, prompt=prompt), b"secret")
    spec = decode_image_token(token, b"secret")
    assert spec is not None
    assert open_png(render_placeholder(spec)).text["prompt"] == prompt


INPUTS = (
    IssuedImage(dataclasses.replace(SPEC, width=1472, height=512)),
    DecodedImage(640, 480, "png", "data", MOSAIC),
    RemoteImage("https://example.com/pictures/t-rex.png"),
)
EDIT = dataclasses.replace(SPEC, model="blackforestlabs/flux-2-edit", inputs=INPUTS)


def test_an_edit_says_what_it_is_an_edit_of() -> None:
    texts = [line.text for line in render._label_lines(EDIT, 30, 900, 600)]
    assert any("edit of 3 images" in text for text in texts)
    one = dataclasses.replace(EDIT, inputs=INPUTS[1:2])
    one_texts = [line.text for line in render._label_lines(one, 30, 900, 600)]
    assert any(text.endswith("edit of 1 image") for text in one_texts)
    plain = [line.text for line in render._label_lines(SPEC, 30, 900, 600)]
    assert not any("edit of" in text for text in plain)


def test_an_edit_png_lists_its_inputs() -> None:
    assert open_png(render_placeholder(EDIT)).text["inputs"] == (
        "issued blackforestlabs/flux-2 1472x512 png seed 42 image #0\n"
        "data png 640x480\n"
        "url https://example.com/pictures/t-rex.png (not downloaded)"
    )
    assert "inputs" not in open_png(render_placeholder(SPEC)).text


def colours_of(image: Image.Image, box: tuple[int, int, int, int]) -> Counter[tuple[int, ...]]:
    rgb = image.convert("RGB").crop(box)
    return Counter(rgb.getpixel((x, y)) for x in range(rgb.width) for y in range(rgb.height))


def test_an_edit_shows_thumbnails_of_its_inputs_along_the_bottom() -> None:
    image = open_png(render_placeholder(EDIT))
    width, height = image.size
    band = (0, round(height * 0.76), width, height)
    above = (0, 0, width, round(height * 0.76))
    # The data URI's picture, from its mosaic: only in the band.
    assert colours_of(image, band)[BLUE] > 1000
    assert colours_of(image, above)[BLUE] == 0
    # The issued image, drawn again from its spec: its background colour shows in the band.
    source = open_png(render_placeholder(INPUTS[0].spec)).convert("RGB")
    background = source.getpixel((0, 0))
    edit_background = image.convert("RGB").getpixel((0, 0))
    assert background != edit_background
    assert colours_of(image, band)[background] > 100  # type: ignore[index]


def test_thumbnails_change_with_the_inputs() -> None:
    red = DecodedImage(640, 480, "png", "data", bytes((200, 30, 30)) * 64)
    other = dataclasses.replace(EDIT, inputs=(INPUTS[0], red, INPUTS[2]))
    assert render_placeholder(other) != render_placeholder(EDIT)
    assert render_placeholder(EDIT) == render_placeholder(EDIT)


@pytest.mark.parametrize("image_format", ["png", "jpeg", "webp"])
@pytest.mark.parametrize("size", [(512, 512), (2048, 512), (512, 2048), (64, 64), (1, 1)], ids=str)
def test_edits_render_at_any_size_and_format(size: tuple[int, int], image_format: str) -> None:
    spec = dataclasses.replace(EDIT, width=size[0], height=size[1], format=image_format)
    image = Image.open(io.BytesIO(render_placeholder(spec)))  # type: ignore[arg-type]
    assert image.size == size


def test_many_inputs_render_even_when_the_palette_runs_out() -> None:
    colourful = bytes(range(192))  # 64 different colours each
    inputs = tuple(
        DecodedImage(100, 100, "png", "data", colourful[i:] + colourful[:i])
        for i in range(0, 24, 3)
    )
    spec = dataclasses.replace(EDIT, inputs=inputs)
    assert Image.open(io.BytesIO(render_placeholder(spec))).size == (1024, 768)

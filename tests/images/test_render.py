import dataclasses
import hashlib
import io
import subprocess
import sys
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin

from mock_server.images.cache import ImageCache
from mock_server.images.render import render_placeholder
from mock_server.types import ImageFormat, ImageSpec

SPEC = ImageSpec("blackforestlabs/flux-2", "a red fox in the snow", 1024, 768, "png", 42, 0)
PIL_FORMATS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP", "gif": "GIF", "tiff": "TIFF"}
SIZES = [(512, 512), (1024, 768), (1472, 512), (512, 2048), (2048, 512), (2048, 2048), (1, 1)]


def open_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("image_format", sorted(PIL_FORMATS))
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_exact_size_and_format(size: tuple[int, int], image_format: ImageFormat) -> None:
    width, height = size
    spec = dataclasses.replace(SPEC, width=width, height=height, format=image_format)
    image = open_image(render_placeholder(spec))
    assert image.size == size
    assert image.format == PIL_FORMATS[image_format]


@pytest.mark.parametrize(
    "size",
    [(7, 300), (300, 7), (64, 64), (100, 1000), (8192, 16)],
    ids=["thin", "flat", "tiny", "narrow", "very-wide"],
)
def test_odd_sizes_render(size: tuple[int, int]) -> None:
    width, height = size
    assert (
        open_image(render_placeholder(dataclasses.replace(SPEC, width=width, height=height))).size
        == size
    )


@pytest.mark.parametrize("image_format", sorted(PIL_FORMATS))
def test_same_spec_gives_identical_bytes(image_format: ImageFormat) -> None:
    spec = dataclasses.replace(SPEC, format=image_format)
    assert render_placeholder(spec) == render_placeholder(spec)


def test_output_is_identical_across_processes() -> None:
    script = (
        "import sys, hashlib\n"
        "from mock_server.images.render import render_placeholder\n"
        "from mock_server.types import ImageSpec\n"
        f"data = render_placeholder({SPEC!r})\n"
        "sys.stdout.write(hashlib.sha256(data).hexdigest())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout == hashlib.sha256(render_placeholder(SPEC)).hexdigest()


@pytest.mark.parametrize(
    "change",
    [{"seed": 43}, {"index": 1}, {"prompt": "a blue fox"}, {"model": "blackforestlabs/flux-2-max"}],
    ids=["seed", "index", "prompt", "model"],
)
def test_different_specs_give_different_bytes(change: dict[str, object]) -> None:
    assert render_placeholder(dataclasses.replace(SPEC, **change)) != render_placeholder(SPEC)  # type: ignore[arg-type]


def test_different_seeds_look_different() -> None:
    colours = {
        open_image(render_placeholder(dataclasses.replace(SPEC, seed=seed)))
        .convert("RGB")
        .getpixel((0, 0))
        for seed in range(8)
    }
    assert len(colours) > 1


@pytest.mark.parametrize(
    "prompt",
    ["a red fox in the snow", "ünïcode café " * 300, "a fox \N{SNOWFLAKE} 東京 " * 200],
    ids=["ascii", "latin-1-long", "beyond-latin-1-long"],
)
def test_png_carries_the_facts_as_text(prompt: str) -> None:
    spec = dataclasses.replace(SPEC, prompt=prompt, seed=2**40, index=3)
    image = open_image(render_placeholder(spec))
    assert isinstance(image, PngImagePlugin.PngImageFile)
    assert image.text == {
        "model": spec.model,
        "prompt": prompt,
        "width": "1024",
        "height": "768",
        "seed": str(2**40),
        "index": "3",
        "format": "png",
    }


def test_png_text_survives_a_lone_surrogate() -> None:
    spec = dataclasses.replace(SPEC, prompt="before \ud800 after")
    image = open_image(render_placeholder(spec))
    assert isinstance(image, PngImagePlugin.PngImageFile)
    assert image.text["prompt"] == "before ? after"


def test_png_has_no_timestamp() -> None:
    data = render_placeholder(SPEC)
    assert b"tIME" not in data


@pytest.mark.parametrize(
    "prompt",
    [
        "",
        "a red fox " * 400,
        "x" * 4000,
        "Ünïcödé café — naïve ﬁne \uff41\uff42\uff43",
        "東京の夜景 🌃🚀👩‍👩‍👧‍👦 🇯🇵",
        "שלום עולם مرحبا بالعالم",
        "e\u0301\u0302\u0303 \u200b\u200d\u202e reversed \ufeff",
        "tabs\tand\nnewlines\r\n\x00\x07 controls",
        "\ud800 lone surrogate \udfff",
    ],
    ids=[
        "empty",
        "4000-words",
        "4000-no-spaces",
        "accents",
        "cjk-emoji",
        "rtl",
        "combining-format",
        "controls",
        "surrogates",
    ],
)
@pytest.mark.parametrize(
    "size", [(512, 512), (512, 2048), (2048, 512)], ids=["square", "tall", "wide"]
)
def test_awkward_prompts_render(prompt: str, size: tuple[int, int]) -> None:
    width, height = size
    spec = dataclasses.replace(SPEC, prompt=prompt, width=width, height=height)
    assert open_image(render_placeholder(spec)).size == size


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=st.text(max_size=80),
    prompt=st.text(max_size=400),
    width=st.integers(1, 700),
    height=st.integers(1, 700),
    seed=st.integers(0, 2**70),
)
def test_any_text_renders(model: str, prompt: str, width: int, height: int, seed: int) -> None:
    spec = ImageSpec(model, prompt, width, height, "png", seed, 0)
    assert open_image(render_placeholder(spec)).size == (width, height)


def test_cache_evicts_least_recently_used() -> None:
    cache = ImageCache(max_bytes=30)
    cache.put("a", b"a" * 10)
    cache.put("b", b"b" * 10)
    cache.put("c", b"c" * 10)
    assert cache.get("a") == b"a" * 10  # now "b" is the least recently used
    cache.put("d", b"d" * 10)
    assert cache.get("b") is None
    assert [cache.get(key) is not None for key in "acd"] == [True, True, True]
    assert len(cache) == 3
    assert cache.size_bytes == 30


def test_cache_is_bounded_by_bytes_not_entries() -> None:
    cache = ImageCache(max_bytes=100)
    for i in range(25):
        cache.put(f"small-{i}", b"x" * 4)
    assert (len(cache), cache.size_bytes) == (25, 100)
    cache.put("big", b"x" * 50)  # the 13 oldest small ones (52 bytes) make room
    assert (len(cache), cache.size_bytes) == (13, 98)
    assert cache.get("small-12") is None
    assert cache.get("small-13") == b"x" * 4
    assert cache.get("big") == b"x" * 50


def test_cache_replaces_an_entry_under_the_same_key() -> None:
    cache = ImageCache(max_bytes=100)
    cache.put("a", b"x" * 40)
    cache.put("a", b"y" * 20)
    assert cache.get("a") == b"y" * 20
    assert cache.size_bytes == 20
    assert len(cache) == 1


def test_cache_skips_an_item_larger_than_the_bound() -> None:
    cache = ImageCache(max_bytes=100)
    cache.put("kept", b"x" * 50)
    cache.put("huge", b"x" * 101)
    assert cache.get("huge") is None
    assert cache.get("kept") == b"x" * 50
    assert cache.size_bytes == 50
    cache.put("exact", b"x" * 100)
    assert cache.get("exact") == b"x" * 100
    assert cache.get("kept") is None


def test_oversize_item_drops_the_older_value_under_its_key() -> None:
    cache = ImageCache(max_bytes=100)
    cache.put("a", b"x" * 50)
    cache.put("a", b"x" * 200)
    assert cache.get("a") is None
    assert cache.size_bytes == 0


def test_cache_of_zero_bytes_stores_nothing() -> None:
    cache = ImageCache(max_bytes=0)
    cache.put("a", b"x")
    cache.put("empty", b"")
    assert cache.get("a") is None
    assert cache.get("empty") is None
    assert len(cache) == 0
    assert cache.size_bytes == 0


def test_cache_refuses_a_negative_bound() -> None:
    with pytest.raises(ValueError, match="-1"):
        ImageCache(max_bytes=-1)


def test_cache_is_thread_safe() -> None:
    cache = ImageCache(max_bytes=1000)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        try:
            start.wait()
            for i in range(2000):
                key = f"{(worker * 7 + i) % 50}"
                cache.put(key, key.encode() * (1 + i % 20))
                data = cache.get(key)
                assert data is None or data.startswith(key.encode())
                assert cache.size_bytes <= 1000
        except BaseException as error:  # re-raised in the test below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert cache.size_bytes <= 1000
    assert cache.size_bytes == sum(len(cache.get(key) or b"") for key in map(str, range(50)))

import base64
import dataclasses
import hashlib
import json
import random
import re
import string
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.images.tokens import (
    MAX_INPUTS,
    MAX_PIXELS,
    MAX_TOKEN_CHARS,
    PROMPT_CHARS,
    SIGNATURE_BYTES,
    URL_LABEL_CHARS,
    decode_image_token,
    encode_image_token,
    encode_image_tokens,
)
from mock_server.types import DecodedImage, ImageRequest, ImageSpec, IssuedImage, RemoteImage

SECRET = b"test-secret"
SPEC = ImageSpec("blackforestlabs/flux-2", "a red fox in the snow", 1024, 768, "png", 42, 0)
TOKEN_ALPHABET = string.ascii_letters + string.digits + "-_"

specs = st.builds(
    ImageSpec,
    model=st.text(max_size=60),
    prompt=st.text(max_size=300),
    width=st.integers(1, 8192),
    height=st.integers(1, 8192),
    format=st.sampled_from(["png", "jpeg", "webp", "gif", "tiff"]),
    seed=st.integers(0, 2**64),
    index=st.integers(0, 63),
).filter(lambda spec: spec.width * spec.height <= MAX_PIXELS)


def sign(message: bytes, secret: bytes = SECRET) -> str:
    """A token for ``message`` as the encoder would sign it."""
    key = secret if len(secret) <= 64 else hashlib.blake2b(secret).digest()
    signature = hashlib.blake2b(message, key=key, digest_size=SIGNATURE_BYTES).digest()
    return base64.urlsafe_b64encode(message + signature).rstrip(b"=").decode()


def fields_token(fields: object) -> str:
    return sign(b"\x01" + json.dumps(fields).encode())


@pytest.mark.parametrize(
    "spec",
    [
        SPEC,
        dataclasses.replace(SPEC, prompt=""),
        dataclasses.replace(SPEC, prompt="שלום עולם 🌃 東京 e\u0301 \ud800 \0 \n"),
        dataclasses.replace(SPEC, width=1, height=8192, format="webp", seed=0, index=63),
        dataclasses.replace(SPEC, model="", format="jpeg", seed=2**200),
    ],
    ids=["plain", "empty-prompt", "unicode-rtl-emoji-surrogate", "extremes", "huge-seed"],
)
def test_round_trip(spec: ImageSpec) -> None:
    assert decode_image_token(encode_image_token(spec, SECRET), SECRET) == spec


@settings(max_examples=100)
@given(spec=specs)
def test_round_trip_keeps_the_whole_prompt(spec: ImageSpec) -> None:
    token = encode_image_token(spec, SECRET)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert decode_image_token(token, SECRET) == spec


def test_short_prompts_keep_the_short_uncompressed_format() -> None:
    for prompt in ["", "a red fox", "p" * PROMPT_CHARS]:
        token = encode_image_token(dataclasses.replace(SPEC, prompt=prompt), SECRET)
        assert raw(token)[0] == 0x01
    long_token = encode_image_token(dataclasses.replace(SPEC, prompt="p" * 121), SECRET)
    assert raw(long_token)[0] == 0x03


def raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


requests = st.builds(
    ImageRequest,
    model=st.text(max_size=60),
    prompt=st.text(max_size=300),
    width=st.integers(-2, 8200),
    height=st.integers(1, 8192),
    format=st.sampled_from(["png", "jpeg", "webp", "bmp"]),
    seed=st.integers(-1, 2**64),
    count=st.integers(0, 66),
)


@settings(max_examples=300)
@given(request=requests)
def test_tokens_of_a_request_are_the_tokens_of_its_images(request: ImageRequest) -> None:
    try:
        one_by_one = [encode_image_token(spec, SECRET) for spec in request.images()]
    except ValueError as error:
        with pytest.raises(ValueError) as raised:
            encode_image_tokens(request, SECRET)
        assert str(raised.value) == str(error)
    else:
        assert encode_image_tokens(request, SECRET) == one_by_one


def test_long_prompt_travels_whole_and_compressed() -> None:
    long_prompt = "a very long prompt " * 211  # 4009 characters
    token = encode_image_token(dataclasses.replace(SPEC, prompt=long_prompt), SECRET)
    decoded = decode_image_token(token, SECRET)
    assert decoded is not None
    assert decoded.prompt == long_prompt
    assert len(token) < 250


@pytest.mark.parametrize(
    "alphabet",
    [
        string.ascii_lowercase + "    ,.",
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя    ,.",
        "αβγδεζηθικλμνξοπρστυφχψω  ",
    ],
    ids=["latin", "cyrillic", "greek"],
)
def test_a_4000_character_prompt_of_words_travels_whole(alphabet: str) -> None:
    rng = random.Random(4000)
    prompt = "".join(rng.choice(alphabet) for _ in range(4000))
    token = encode_image_token(dataclasses.replace(SPEC, prompt=prompt), SECRET)
    decoded = decode_image_token(token, SECRET)
    assert decoded is not None and decoded.prompt == prompt
    assert len(token) <= MAX_TOKEN_CHARS


def test_a_prompt_that_cannot_fit_is_cut_to_what_fits() -> None:
    # 4000 random ideographs barely compress: three bytes each are far over the bound.
    rng = random.Random(7)
    prompt = "".join(chr(rng.randrange(0x4E00, 0x9FFF)) for _ in range(4000))
    token = encode_image_token(dataclasses.replace(SPEC, prompt=prompt), SECRET)
    decoded = decode_image_token(token, SECRET)
    assert decoded is not None
    assert MAX_TOKEN_CHARS - 64 < len(token) <= MAX_TOKEN_CHARS
    assert PROMPT_CHARS < len(decoded.prompt) < len(prompt)
    assert prompt.startswith(decoded.prompt)


def test_same_spec_gives_same_token() -> None:
    assert encode_image_token(SPEC, SECRET) == encode_image_token(SPEC, SECRET)


def test_other_secret_is_rejected() -> None:
    token = encode_image_token(SPEC, SECRET)
    assert decode_image_token(token, b"another-secret") is None
    assert decode_image_token(token, b"") is None


def test_secrets_longer_than_a_blake2b_key_work_and_differ() -> None:
    long_secret, other = b"k" * 200, b"k" * 199 + b"j"
    token = encode_image_token(SPEC, long_secret)
    assert token == sign(b"\x01" + payload_of(SPEC), long_secret)
    assert decode_image_token(token, long_secret) == SPEC
    assert decode_image_token(token, other) is None


def payload_of(spec: ImageSpec) -> bytes:
    fields = [spec.model, spec.prompt, spec.width, spec.height, spec.format, spec.seed, spec.index]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "prompt",
    ["a red fox in the snow", "fox " * 60],
    ids=["short-prompt", "long-prompt"],
)
def test_any_single_changed_character_is_rejected(prompt: str) -> None:
    token = encode_image_token(dataclasses.replace(SPEC, prompt=prompt), SECRET)
    for position, char in enumerate(token):
        for replacement in {TOKEN_ALPHABET[(TOKEN_ALPHABET.index(char) + 1) % 64], "A", "_"}:
            if replacement != char:
                tampered = token[:position] + replacement + token[position + 1 :]
                assert decode_image_token(tampered, SECRET) is None, (position, replacement)


def test_truncated_or_extended_tokens_are_rejected() -> None:
    token = encode_image_token(SPEC, SECRET)
    for length in range(len(token)):
        assert decode_image_token(token[:length], SECRET) is None
    for suffix in ["A", "AA", "AAAA", "=", "==", ".png", " "]:
        assert decode_image_token(token + suffix, SECRET) is None
    assert decode_image_token(token[1:], SECRET) is None


@pytest.mark.parametrize(
    "fields",
    [
        ["m", "p", 0, 768, "png", 1, 0],
        ["m", "p", 1024, 8193, "png", 1, 0],
        ["m", "p", -5, 768, "png", 1, 0],
        ["m", "p", 1024, 768, "png", 1, 64],
        ["m", "p", 1024, 768, "png", 1, -1],
        ["m", "p", 1024, 768, "png", -1, 0],
        ["m", "p", 8192, 8192, "png", 1, 0],
        ["m", "p", 1024, 768, "bmp", 1, 0],
        ["m", "p", 1024, 768, None, 1, 0],
        ["m", "p", 1024.0, 768, "png", 1, 0],
        ["m", "p", True, 768, "png", 1, 0],
        ["m", "p", "1024", 768, "png", 1, 0],
        ["m", "p" * (PROMPT_CHARS + 1), 1024, 768, "png", 1, 0],
        [1, "p", 1024, 768, "png", 1, 0],
        ["m", "p", 1024, 768, "png", 1],
        {"model": "m"},
        "m",
    ],
    ids=[
        "zero-width",
        "height-too-big",
        "negative-width",
        "index-too-big",
        "negative-index",
        "negative-seed",
        "too-many-pixels",
        "unknown-format",
        "null-format",
        "float-width",
        "bool-width",
        "string-width",
        "prompt-too-long",
        "model-not-string",
        "missing-field",
        "object",
        "string",
    ],
)
def test_signed_but_invalid_fields_are_rejected(fields: object) -> None:
    assert decode_image_token(fields_token(fields), SECRET) is None


def test_fields_token_helper_makes_valid_tokens() -> None:
    assert decode_image_token(fields_token(["m", "p", 1024, 768, "png", 1, 0]), SECRET) == (
        ImageSpec("m", "p", 1024, 768, "png", 1, 0)
    )


@pytest.mark.parametrize(
    "message",
    [
        b"\x7f" + json.dumps(["m", "p", 1, 1, "png", 1, 0]).encode(),
        b"\x01[",
        b"\x01\xff\xfe",
        b"\x02" + zlib.compress(json.dumps(["m", "p", 1, 1, "png", 1, 0]).encode()),
    ],
    ids=["unknown-version", "broken-json", "not-utf8", "retired-compressed-format"],
)
def test_signed_but_unreadable_payloads_are_rejected(message: bytes) -> None:
    assert decode_image_token(sign(message), SECRET) is None


@pytest.mark.parametrize(
    "spec",
    [
        dataclasses.replace(SPEC, width=0),
        dataclasses.replace(SPEC, height=8193),
        dataclasses.replace(SPEC, index=64),
        dataclasses.replace(SPEC, seed=-1),
        dataclasses.replace(SPEC, width=4097, height=4096),
        dataclasses.replace(SPEC, format="bmp"),  # type: ignore[arg-type]
        dataclasses.replace(SPEC, model=random.Random(0).randbytes(4000).hex()),
    ],
    ids=[
        "zero-width",
        "height-too-big",
        "index-too-big",
        "negative-seed",
        "too-many-pixels",
        "bmp",
        "token-too-long",
    ],
)
def test_specs_a_token_cannot_carry_are_refused(spec: ImageSpec) -> None:
    with pytest.raises(ValueError, match="cannot encode"):
        encode_image_token(spec, SECRET)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "A",
        "AAAA",
        "====",
        "a.b",
        "abc/def",
        "päss",
        "\0",
        " " * 10,
        "A" * (MAX_TOKEN_CHARS + 1),
    ],
    ids=[
        "empty",
        "one-char",
        "zeros",
        "padding",
        "dot",
        "slash",
        "non-ascii",
        "nul",
        "spaces",
        "huge",
    ],
)
def test_garbage_is_rejected(token: str) -> None:
    assert decode_image_token(token, SECRET) is None


def test_an_oversized_token_is_refused_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[str] = []
    real = base64.urlsafe_b64decode

    def spy(data: str) -> bytes:
        decoded.append(data)
        return real(data)

    monkeypatch.setattr(base64, "urlsafe_b64decode", spy)
    assert decode_image_token("A" * (MAX_TOKEN_CHARS + 1), SECRET) is None
    assert decode_image_token("A" * 10_000_000, SECRET) is None
    assert decoded == []  # refused on its length alone
    assert decode_image_token("A" * MAX_TOKEN_CHARS, SECRET) is None
    assert len(decoded) == 1  # at the limit, it is decoded (and then refused as unsigned)


@settings(max_examples=100)
@given(token=st.text())
def test_any_text_is_rejected_without_raising(token: str) -> None:
    assert decode_image_token(token, SECRET) is None


@settings(max_examples=100)
@given(data=st.binary())
def test_any_bytes_are_rejected_without_raising(data: bytes) -> None:
    assert decode_image_token(data.decode("latin-1"), SECRET) is None


@settings(max_examples=100)
@given(data=st.binary(min_size=1, max_size=300))
def test_any_base64_is_rejected_without_raising(data: bytes) -> None:
    token = base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    assert decode_image_token(token, SECRET) is None


MOSAIC = bytes(range(192))
LONG_URL = "https://example.com/pictures/" + "a" * 300 + ".png"
GENERATED = dataclasses.replace(SPEC, prompt="x" * 300, inputs=(RemoteImage("https://a.test/"),))
INPUTS = (
    IssuedImage(GENERATED),
    DecodedImage(640, 480, "jpeg", "data", MOSAIC),
    RemoteImage(LONG_URL),
)


def test_an_edit_carries_what_its_thumbnails_need() -> None:
    edit = dataclasses.replace(SPEC, model="blackforestlabs/flux-2-edit", inputs=INPUTS)
    decoded = decode_image_token(encode_image_token(edit, SECRET), SECRET)
    # An input that was itself an edit loses its own inputs; its prompt and a URL are cut.
    carried = dataclasses.replace(GENERATED, prompt="x" * PROMPT_CHARS, inputs=())
    assert decoded == dataclasses.replace(
        edit,
        inputs=(IssuedImage(carried), INPUTS[1], RemoteImage(LONG_URL[:URL_LABEL_CHARS])),
    )


def test_every_image_of_an_edit_request_carries_the_inputs() -> None:
    request = ImageRequest("m", "p", 1024, 768, "png", 9, 3, INPUTS[1:2])
    tokens = encode_image_tokens(request, SECRET)
    decoded = [decode_image_token(token, SECRET) for token in tokens]
    assert decoded == request.images()
    assert len(set(tokens)) == 3


def test_an_edit_token_of_three_inputs_stays_short() -> None:
    inputs = (
        IssuedImage(SPEC),
        DecodedImage(1, 1, "png", "fetched", MOSAIC),
        RemoteImage(LONG_URL),
    )
    token = encode_image_token(dataclasses.replace(SPEC, inputs=inputs), SECRET)
    assert len(token) < 1000


def test_more_inputs_than_a_token_carries_are_refused() -> None:
    spec = dataclasses.replace(SPEC, inputs=(RemoteImage("https://a.test/x.png"),) * 9)
    with pytest.raises(ValueError, match=f"expected at most {MAX_INPUTS}"):
        encode_image_token(spec, SECRET)


def deflated(payload: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(payload) + packer.flush()


def deflated_token(fields: object) -> str:
    return sign(b"\x03" + deflated(json.dumps(fields).encode()))


FIELDS = ["m", "p", 1024, 768, "png", 1, 0]
DECODED = ["decoded", 640, 480, "jpeg", "data", base64.b64encode(MOSAIC).decode()]


def test_deflated_token_helper_makes_valid_tokens() -> None:
    assert decode_image_token(deflated_token([*FIELDS, [DECODED]]), SECRET) == ImageSpec(
        "m", "p", 1024, 768, "png", 1, 0, (DecodedImage(640, 480, "jpeg", "data", MOSAIC),)
    )


@pytest.mark.parametrize(
    "fields",
    [
        FIELDS,
        [*FIELDS, {}],
        [*FIELDS, ["remote", "u"]],
        [*FIELDS, [["pasted", "u"]]],
        [*FIELDS, [[]]],
        [*FIELDS, [["remote", 1]]],
        [*FIELDS, [["decoded", 640, 480, "jpeg", "data", "AAAA"]]],
        [*FIELDS, [["decoded", 640, 480, "jpeg", "data", "not base64!"]]],
        [*FIELDS, [["decoded", 0, 480, "jpeg", "data", DECODED[-1]]]],
        [*FIELDS, [["decoded", 640, 480, "jpeg", "email", DECODED[-1]]]],
        [*FIELDS, [["issued", "m", "p", 0, 768, "png", 1, 0]]],
        [*FIELDS, [["issued", "m", "p" * 121, 1024, 768, "png", 1, 0]]],
        [*FIELDS, [["remote", "u"]] * 9],
        ["m", "p", 1024, 768, "avif", 1, 0, []],
    ],
    ids=[
        "no-inputs-field",
        "inputs-not-a-list",
        "input-not-a-list",
        "unknown-kind",
        "empty-input",
        "url-not-a-string",
        "short-mosaic",
        "mosaic-not-base64",
        "zero-width-input",
        "unknown-source",
        "invalid-issued-spec",
        "issued-prompt-too-long",
        "too-many-inputs",
        "unknown-format",
    ],
)
def test_signed_but_invalid_deflated_fields_are_rejected(fields: object) -> None:
    assert decode_image_token(deflated_token(fields), SECRET) is None


@pytest.mark.parametrize(
    "message",
    [
        b"\x03" + json.dumps([*FIELDS, []]).encode(),
        b"\x03" + deflated(json.dumps([*FIELDS, []]).encode()) + b"trailing",
        b"\x03" + deflated(json.dumps([*FIELDS, []]).encode())[:-3],
        b"\x03" + deflated(b'["m","' + b" " * 100_000 + b'",1,1,"png",1,0,[]]'),
        b"\x03" + deflated(b"\xff\xfe"),
    ],
    ids=["not-deflated", "trailing-bytes", "truncated-stream", "inflates-too-far", "not-utf8"],
)
def test_signed_but_unreadable_deflated_payloads_are_rejected(message: bytes) -> None:
    assert decode_image_token(sign(message), SECRET) is None

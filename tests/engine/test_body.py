"""Bodies the fake cannot read: broken JSON, wrong media types, hostile numbers and nesting."""

import json

import httpx
import pytest

from tests.conftest import (
    FLUX2,
    GENERATIONS,
    assert_envelope,
    post_raw,
)

pytestmark = pytest.mark.anyio


# --- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        pytest.param(b'{"model": ', "Body is not valid JSON: Expecting value", id="truncated"),
        pytest.param(b"{'model': 1}", "Body is not valid JSON", id="single-quotes"),
        pytest.param(b"", "Body is empty", id="empty"),
        pytest.param(b"   ", "Body is empty", id="blank"),
        pytest.param(
            b'{"prompt": "\xff"}', "Body is not valid UTF-8: invalid start byte", id="invalid-utf8"
        ),
        pytest.param(b'{"prompt": "\xc3\x28"}', "Body is not valid UTF-8", id="bad-continuation"),
        pytest.param(
            b'{"prompt": "\xed\xa0\x80"}', "Body is not valid UTF-8", id="encoded-surrogate"
        ),
        pytest.param(
            b'{"model": NaN}', "Body is not valid JSON: NaN is not a JSON number", id="nan"
        ),
        pytest.param(b'{"seed": Infinity}', "Infinity is not a JSON number", id="infinity"),
        pytest.param(b'{"seed": -Infinity}', "-Infinity is not a JSON number", id="-infinity"),
        pytest.param(b'{"seed": 1e999}', "number 1e999 is out of range", id="float-overflow"),
        pytest.param(
            b'{"seed": ' + b"9" * 5000 + b"}", "(5000 digits) is out of range", id="huge-int"
        ),
        pytest.param(
            b'{"seed": ' + b"9" * 309 + b"}", "(309 digits) is out of range", id="int-over-1e308"
        ),
        pytest.param(b"[" * 100 + b"]" * 100, "nested too deeply", id="deep-array"),
        pytest.param(b'{"a":' * 50 + b"1" + b"}" * 50, "nested too deeply", id="deep-object"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "nested too deeply", id="very-deep"),
        pytest.param(b"[1, 2]", "body: Expected object, received array", id="array"),
        pytest.param(b'"prompt"', "body: Expected object, received string", id="string"),
        pytest.param(b"null", "body: Expected object, received null", id="null"),
        pytest.param(b"42", "body: Expected object, received integer", id="number"),
    ],
)
async def test_malformed_bodies_get_400_with_a_reason(
    client: httpx.AsyncClient, content: bytes, fragment: str
) -> None:
    body = assert_envelope(await post_raw(client, content), 400, GENERATIONS)
    assert fragment in str(body["message"])


async def test_utf8_bom_is_tolerated(client: httpx.AsyncClient) -> None:
    content = b"\xef\xbb\xbf" + json.dumps({"model": FLUX2, "prompt": "p"}).encode()
    assert (await post_raw(client, content)).status_code == 200


async def test_lone_surrogate_in_prompt_does_not_break_anything(client: httpx.AsyncClient) -> None:
    content = b'{"model": "blackforestlabs/flux-2", "prompt": "a \\ud800 b"}'
    response = await post_raw(client, content)
    assert response.status_code == 200
    image_response = await client.get(response.json()["data"][0]["url"])
    assert image_response.status_code == 200


@pytest.mark.parametrize(
    ("content_type", "fragment"),
    [
        pytest.param(None, "Content-Type header is missing", id="missing"),
        pytest.param("text/plain", "'text/plain' is not supported", id="text"),
        pytest.param("application/x-www-form-urlencoded", "is not supported", id="form"),
        pytest.param("multipart/form-data; boundary=x", "is not supported", id="multipart"),
        pytest.param("application/json; charset=latin-1", "charset 'latin-1'", id="charset"),
    ],
)
async def test_non_json_content_types_get_415(
    client: httpx.AsyncClient, content_type: str | None, fragment: str
) -> None:
    content = json.dumps({"model": FLUX2, "prompt": "p"}).encode()
    body = assert_envelope(await post_raw(client, content, content_type), 415, GENERATIONS)
    assert fragment in str(body["message"])


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON",
        "application/json; charset=UTF-8",
        "application/vnd.api+json",
    ],
)
async def test_json_content_types_are_accepted(
    client: httpx.AsyncClient, content_type: str
) -> None:
    content = json.dumps({"model": FLUX2, "prompt": "p"}).encode()
    assert (await post_raw(client, content, content_type)).status_code == 200

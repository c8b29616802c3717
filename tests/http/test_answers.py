"""Answers the pipeline gives on its own: the body cap, unknown paths and methods, a failure
inside the fake."""

import json
from collections.abc import Callable

import httpx
import pytest

from mock_server.http.app import FakeApp
from tests.conftest import (
    AUTH,
    FLUX2,
    GENERATIONS,
    assert_envelope,
    client_for,
    generate,
    post_raw,
)

pytestmark = pytest.mark.anyio


async def test_body_over_the_cap_gets_413(make_app: Callable[..., FakeApp]) -> None:
    app = make_app(max_body_bytes=1000)
    async with client_for(app) as c:
        content = json.dumps({"model": FLUX2, "prompt": "x" * 2000}).encode()
        declared = await post_raw(c, content)
        assert f"{len(content)} bytes is over the limit of 1000" in str(
            assert_envelope(declared, 413, GENERATIONS)["message"]
        )

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(5):
                yield b"x" * 300

        streamed = await c.post(
            GENERATIONS, content=chunks(), headers={**AUTH, "Content-Type": "application/json"}
        )
        assert "over the limit of 1000" in str(
            assert_envelope(streamed, 413, GENERATIONS)["message"]
        )


@pytest.mark.parametrize("streamed", [False, True], ids=["declared", "streamed"])
async def test_default_cap_is_one_mebibyte_exactly(
    client: httpx.AsyncClient, streamed: bool
) -> None:
    head = json.dumps({"model": FLUX2, "prompt": "p", "pad": ""}).encode()[:-2]
    fits = head + b" " * (1024 * 1024 - len(head) - 2) + b'"}'
    assert len(fits) == 1024 * 1024

    async def send(content: bytes) -> httpx.Response:
        if not streamed:
            return await post_raw(client, content)

        async def pieces():  # type: ignore[no-untyped-def]
            for start in range(0, len(content), 65536):
                yield content[start : start + 65536]

        headers = {**AUTH, "Content-Type": "application/json"}
        return await client.post(GENERATIONS, content=pieces(), headers=headers)

    assert (await send(fits)).status_code == 200
    over = await send(fits[:-2] + b' "}')
    assert over.status_code == 413
    assert f"over the limit of {1024 * 1024} bytes" in over.json()["message"]


async def test_unknown_path_gets_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/images/nope", json={}, headers=AUTH)
    body = assert_envelope(response, 404, "/v1/images/nope")
    assert body["message"] == "Cannot POST /v1/images/nope"


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_wrong_method_gets_405_with_allow(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, GENERATIONS, headers=AUTH)
    body = assert_envelope(response, 405, GENERATIONS)
    assert response.headers["allow"] == "POST"
    assert method in str(body["message"])


async def test_unexpected_failure_is_a_500_envelope(
    make_app: Callable[..., FakeApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(app.service, "generate", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        response = await generate(c)
    body = assert_envelope(response, 500, GENERATIONS)
    assert body["message"] == "Internal server error"
    assert "boom" not in response.text

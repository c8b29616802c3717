"""The fake over a real socket, with real HTTP clients."""

import asyncio
import io
from collections.abc import Iterator

import httpx
import pytest
import requests
from PIL import Image

from mock_server import create_app
from mock_server.http.server import BackgroundServer


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app()) as running:
        yield running


def test_requests_client_as_in_the_docs(server: BackgroundServer) -> None:
    response = requests.post(
        server.base_url + "/v1/images/generations",
        headers={"Authorization": "Bearer <YOUR_AIMLAPI_KEY>", "Content-Type": "application/json"},
        json={
            "prompt": "A T-Rex relaxing on a beach, lying on a sun lounger and wearing sunglasses.",
            "model": "blackforestlabs/flux-2",
            "image_size": {"width": 1472, "height": 512},
        },
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    (entry,) = response.json()["data"]
    assert entry["url"].startswith(server.base_url + "/files/")
    image = requests.get(entry["url"], timeout=10)
    assert image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (1472, 512)


def test_httpx_client_and_concurrent_downloads_of_one_image(server: BackgroundServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        response = client.post(
            "/images/generations",
            json={"model": "blackforestlabs/flux-2-max", "prompt": "p", "image_size": "square_hd"},
            headers={"Authorization": "Bearer k"},
        )
        url = response.json()["data"][0]["url"]

    async def fetch_all() -> list[bytes]:
        async with httpx.AsyncClient(timeout=10) as client:
            responses = await asyncio.gather(*(client.get(url) for _ in range(8)))
        return [r.content for r in responses]

    contents = asyncio.run(fetch_all())
    assert len(set(contents)) == 1
    assert Image.open(io.BytesIO(contents[0])).size == (1024, 1024)


def test_bad_input_over_the_wire(server: BackgroundServer) -> None:
    response = requests.post(
        server.base_url + "/v1/images/generations",
        data=b'{"model": ',
        headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("Body is not valid JSON")
    oversized = requests.post(
        server.base_url + "/v1/images/generations",
        data=b"x" * (2 * 1024 * 1024),
        headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
        timeout=10,
    )
    assert oversized.status_code == 413

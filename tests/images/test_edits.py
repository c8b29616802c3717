"""The chain from a generation to an edit, in process: image_urls, costs, the edit's image."""

import base64
import io

import httpx
import pytest
from PIL import Image

from tests.conftest import AUTH

pytestmark = pytest.mark.anyio

GENERATIONS = "/v1/images/generations"


def png_data_uri(
    size: tuple[int, int] = (64, 48), colour: tuple[int, int, int] = (0, 90, 200)
) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def post(client: httpx.AsyncClient, model: str, **body: object) -> httpx.Response:
    payload = {"model": f"blackforestlabs/{model}", "prompt": "a T-Rex in a suit", **body}
    return await client.post(GENERATIONS, json=payload, headers=AUTH)


async def generated_url(client: httpx.AsyncClient, **body: object) -> str:
    response = await post(
        client, "flux-2", **{"image_size": {"width": 1472, "height": 512}, **body}
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"][0]["url"])


async def test_an_edit_of_a_generated_image_and_a_data_uri(client: httpx.AsyncClient) -> None:
    url = await generated_url(client)
    response = await post(client, "flux-2-edit", image_urls=[url, png_data_uri()])
    assert response.status_code == 200, response.text
    # One 1024x768 output and two inputs of at most a megapixel: three times 25,200.
    assert response.json()["meta"]["usage"] == {"credits_used": 75_600, "usd_spent": 0.0378}
    image = await client.get(response.json()["data"][0]["url"])
    assert image.status_code == 200
    assert Image.open(io.BytesIO(image.content)).size == (1024, 768)


async def test_large_inputs_cost_their_megapixels(client: httpx.AsyncClient) -> None:
    url = await generated_url(client, image_size={"width": 2048, "height": 2048})
    response = await post(client, "flux-2-pro-edit", image_urls=[url], image_size="square")
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["usage"] == {"credits_used": 63_000 * (1 + 4)}


async def test_remote_urls_are_accepted_unfetched(client: httpx.AsyncClient) -> None:
    response = await post(
        client, "flux-2-lora-edit", image_urls=["https://example.com/t-rex.png"], num_images=2
    )
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["usage"] == {"credits_used": 44_100 * (2 + 1)}


async def test_bad_image_urls_get_a_400_naming_each_item(client: httpx.AsyncClient) -> None:
    url = await generated_url(client)
    tampered = url.replace("/files/", "/files/x")
    # Bare base64 is no URI: the schema's format: uri refuses it, before the images are looked at.
    bare = await post(client, "flux-2-edit", image_urls=[url, "iVBORw0KGgo="])
    assert bare.status_code == 400
    lines = bare.json()["message"].splitlines()
    assert lines == ["Body validation error", "image_urls.1: Invalid url, received 'iVBORw0KGgo='"]
    response = await post(client, "flux-2-edit", image_urls=[url, tampered, "ftp://x/a.png"])
    assert response.status_code == 400
    body = response.json()
    lines = body["message"].splitlines()
    assert lines[0] == "Body validation error"
    assert lines[1].startswith("image_urls.1: Unknown image URL: it points at this fake")
    assert lines[2].startswith("image_urls.2: Invalid url: expected an http(s) URL")
    assert [v["field"] for v in body["violations"]] == ["image_urls.1", "image_urls.2"]


async def test_schema_problems_come_before_image_checks(client: httpx.AsyncClient) -> None:
    tampered = (await generated_url(client)).replace("/files/", "/files/x")
    response = await post(client, "flux-2-edit", image_urls=[tampered], image_size="huge")
    assert response.status_code == 400
    assert [v["field"] for v in response.json()["violations"]] == ["image_size"]


async def test_image_urls_sent_to_a_text_to_image_model_are_ignored(
    client: httpx.AsyncClient,
) -> None:
    response = await post(client, "flux-2", image_urls=["not even a url"])
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["usage"] == {"credits_used": 25_200}


async def test_the_edit_image_shows_the_chain(client: httpx.AsyncClient) -> None:
    url = await generated_url(client, seed=42)
    response = await post(client, "flux-2-edit", image_urls=[url, png_data_uri()], seed=7)
    image = await client.get(response.json()["data"][0]["url"])
    text = Image.open(io.BytesIO(image.content)).text  # type: ignore[attr-defined]
    assert text["model"] == "blackforestlabs/flux-2-edit"
    assert text["inputs"] == (
        "issued blackforestlabs/flux-2 1472x512 png seed 42 image #0\ndata png 64x48"
    )

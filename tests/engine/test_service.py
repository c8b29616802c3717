"""What the engine answers a generation: success bodies and images, auth, validation, and
answers shaped by their schema."""

import io
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml
from jsonschema import Draft7Validator
from PIL import Image

from mock_server import Settings, SpecSet, load_specs
from mock_server.engine.reading import LIMIT_CODE, LIMIT_MESSAGE
from mock_server.engine.service import ImageService
from mock_server.http.app import FakeApp
from tests.conftest import (
    AUTH,
    FLUX2,
    FLUX2_MAX,
    GENERATIONS,
    JSON_TYPE,
    MESSAGE_401,
    PROMPT,
    SPECS,
    assert_envelope,
    client_for,
    download,
    generate,
)

pytestmark = pytest.mark.anyio


# --- success ---------------------------------------------------------------------------------


async def test_default_flux2_generation(client: httpx.AsyncClient) -> None:
    response = await generate(client)
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON_TYPE
    assert response.headers["x-request-id"]
    body = response.json()
    (entry,) = body["data"]
    assert entry["b64_json"] is None
    assert entry["url"].startswith("http://testserver/files/") and entry["url"].endswith(".png")
    assert body["meta"] == {"usage": {"credits_used": 25_200}}
    image_response, image = await download(client, entry["url"])
    assert image_response.headers["content-type"] == "image/png"
    assert (image.format, image.size) == ("PNG", (1024, 768))


async def test_flux2_max_defaults_to_one_jpeg(client: httpx.AsyncClient) -> None:
    response = await client.post(
        GENERATIONS,
        json={"model": FLUX2_MAX, "prompt": PROMPT, "num_images": 3},
        headers=AUTH,
    )
    body = response.json()
    (entry,) = body["data"]
    assert body["meta"]["usage"]["credits_used"] == 147_000
    image_response, image = await download(client, entry["url"])
    assert image_response.headers["content-type"] == "image/jpeg"
    assert (image.format, image.size) == ("JPEG", (1024, 768))


@pytest.mark.parametrize(
    ("image_size", "expected"),
    [
        pytest.param({"width": 1472, "height": 512}, (1472, 512), id="doc-example"),
        pytest.param({"width": 512}, (512, 768), id="height-default"),
        pytest.param({}, (1024, 768), id="empty-object"),
        pytest.param("square_hd", (1024, 1024), id="square_hd"),
        pytest.param("square", (512, 512), id="square"),
        pytest.param("portrait_4_3", (768, 1024), id="portrait_4_3"),
        pytest.param("portrait_16_9", (576, 1024), id="portrait_16_9"),
        pytest.param("landscape_4_3", (1024, 768), id="landscape_4_3"),
        pytest.param("landscape_16_9", (1024, 576), id="landscape_16_9"),
    ],
)
async def test_images_have_exactly_the_requested_size(
    client: httpx.AsyncClient, image_size: object, expected: tuple[int, int]
) -> None:
    response = await generate(client, image_size=image_size)
    _, image = await download(client, response.json()["data"][0]["url"])
    assert image.size == expected


@pytest.mark.parametrize(
    ("model", "output_format", "pil_format", "media_type"),
    [
        (FLUX2, "png", "PNG", "image/png"),
        (FLUX2, "jpeg", "JPEG", "image/jpeg"),
        (FLUX2, "webp", "WEBP", "image/webp"),
        (FLUX2_MAX, "png", "PNG", "image/png"),
        (FLUX2_MAX, "jpeg", "JPEG", "image/jpeg"),
    ],
)
async def test_images_have_the_requested_format(
    client: httpx.AsyncClient, model: str, output_format: str, pil_format: str, media_type: str
) -> None:
    response = await generate(client, model=model, output_format=output_format)
    url = response.json()["data"][0]["url"]
    assert url.endswith("." + output_format)
    image_response, image = await download(client, url)
    assert image_response.headers["content-type"] == media_type
    assert image.format == pil_format


@pytest.mark.parametrize(
    ("num_images", "count"),
    [
        pytest.param(1, 1, id="one"),
        pytest.param(4, 4, id="four"),
        pytest.param(2.0, 2, id="whole-float"),
        pytest.param(2.7, 2, id="fraction-rounds-down"),
        pytest.param(1.5, 1, id="fraction-above-minimum"),
    ],
)
async def test_one_entry_per_requested_image(
    client: httpx.AsyncClient, num_images: float, count: int
) -> None:
    body = (await generate(client, num_images=num_images)).json()
    assert len(body["data"]) == count
    assert len({entry["url"] for entry in body["data"]}) == count
    assert body["meta"]["usage"]["credits_used"] == 25_200 * count


@pytest.mark.parametrize(
    ("image_size", "num_images", "credits"),
    [
        pytest.param("square", 1, 25_200, id="under-1MP"),
        pytest.param("square_hd", 1, 25_200, id="exactly-1MP"),
        pytest.param({"width": 1056, "height": 1024}, 1, 50_400, id="just-over-1MP"),
        pytest.param({"width": 2048, "height": 2048}, 3, 25_200 * 4 * 3, id="4MP-x3"),
    ],
)
async def test_credits_are_per_started_megapixel_per_image(
    client: httpx.AsyncClient, image_size: object, num_images: int, credits: int
) -> None:
    body = (await generate(client, image_size=image_size, num_images=num_images)).json()
    assert body["meta"]["usage"]["credits_used"] == credits


async def test_unversioned_path_is_served(client: httpx.AsyncClient) -> None:
    response = await generate(client, path="/images/generations")
    assert response.status_code == 200
    assert len(response.json()["data"]) == 1


async def test_same_seed_gives_same_bytes_and_no_seed_still_stable(
    client: httpx.AsyncClient,
) -> None:
    first = (await generate(client, seed=42)).json()["data"][0]["url"]
    second = (await generate(client, seed=42)).json()["data"][0]["url"]
    assert first == second
    assert (await client.get(first)).content == (await client.get(second)).content
    unseeded = (await generate(client)).json()["data"][0]["url"]
    assert (await client.get(unseeded)).content == (await client.get(unseeded)).content
    assert (await client.get(unseeded)).content != (await client.get(first)).content


async def test_images_of_one_request_differ(client: httpx.AsyncClient) -> None:
    urls = [entry["url"] for entry in (await generate(client, num_images=2, seed=7)).json()["data"]]
    contents = [(await client.get(url)).content for url in urls]
    assert contents[0] != contents[1]


async def test_png_metadata_describes_the_request(client: httpx.AsyncClient) -> None:
    url = (await generate(client, seed=99)).json()["data"][0]["url"]
    _, image = await download(client, url)
    assert image.info["model"] == FLUX2
    assert image.info["seed"] == "99"
    assert image.info["prompt"].startswith("A T-Rex")


async def test_image_urls_survive_a_restart(make_app: Callable[..., FakeApp]) -> None:
    async with client_for(make_app(), "http://testserver") as first:
        url = (await generate(first)).json()["data"][0]["url"]
        original = (await first.get(url)).content
    async with client_for(make_app(), "http://testserver") as second:
        assert (await second.get(url)).content == original


async def test_urls_signed_with_another_secret_are_refused(
    make_app: Callable[..., FakeApp],
) -> None:
    async with client_for(make_app(url_secret="one")) as first:
        url = (await generate(first)).json()["data"][0]["url"]
    async with client_for(make_app(url_secret="two")) as second:
        assert_envelope(await second.get(url), 404, httpx.URL(url).path)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(
            lambda url: url[:-10] + ("B" if url[-10] == "A" else "A") + url[-9:],
            id="one-character",
        ),
        pytest.param(lambda url: url.replace(".png", ".jpeg"), id="extension"),
        pytest.param(lambda url: url.replace(".png", ""), id="no-extension"),
        pytest.param(lambda url: url.rsplit("/", 1)[0] + "/garbage.png", id="garbage"),
        pytest.param(lambda url: url.rsplit("/", 1)[0] + "/" + "A" * 9000 + ".png", id="huge"),
    ],
)
async def test_tampered_image_urls_get_404(
    client: httpx.AsyncClient, mangle: Callable[[str], str]
) -> None:
    url = mangle((await generate(client)).json()["data"][0]["url"])
    assert_envelope(await client.get(url), 404, httpx.URL(url).path)


async def test_public_base_url_is_used_for_links(make_app: Callable[..., FakeApp]) -> None:
    app = make_app(public_base_url="https://images.example.test/base/")
    async with client_for(app) as c:
        url = (await generate(c)).json()["data"][0]["url"]
    assert url.startswith("https://images.example.test/base/files/")


async def test_links_use_the_host_the_request_came_to(client: httpx.AsyncClient) -> None:
    response = await client.post(
        GENERATIONS,
        json={"model": FLUX2, "prompt": "p"},
        headers={**AUTH, "Host": "fake.local:9000"},
    )
    assert response.json()["data"][0]["url"].startswith("http://fake.local:9000/files/")


async def test_largest_seed_javascript_can_read_still_works(client: httpx.AsyncClient) -> None:
    seed = int("9" * 308)
    url = (await generate(client, seed=seed)).json()["data"][0]["url"]
    _, image = await download(client, url)
    assert image.info["seed"] == str(seed)


@pytest.mark.parametrize(
    ("image_size", "field", "sentence"),
    [
        pytest.param(
            {"width": 10**6, "height": 1},
            "image_size.width",
            "aimlapi-mock draws images 1 to 8192 pixels wide, received 1000000",
            id="too-wide",
        ),
        pytest.param(
            {"width": 512, "height": 0},
            "image_size.height",
            "aimlapi-mock draws images 1 to 8192 pixels high, received 0",
            id="zero-high",
        ),
        pytest.param(
            {"width": -3, "height": 512},
            "image_size.width",
            "aimlapi-mock draws images 1 to 8192 pixels wide, received -3",
            id="negative",
        ),
        pytest.param(
            {"width": 8192, "height": 8192},
            "image_size",
            "aimlapi-mock draws images of at most 16,777,216 pixels (8192×8192 is 67,108,864)",
            id="too-many-pixels",
        ),
    ],
)
async def test_sizes_a_spec_allows_but_the_fake_cannot_draw_get_a_400_that_says_so(
    make_app: Callable[..., FakeApp],
    tmp_path: Path,
    image_size: dict[str, int],
    field: str,
    sentence: str,
) -> None:
    spec = (SPECS / "created-201.yaml").read_text()
    document = yaml.safe_load(spec)
    schema = document["paths"]["/v1/images/generations"]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    schema["properties"]["image_size"] = {
        "type": "object",
        "properties": {"width": {"type": "integer"}, "height": {"type": "integer"}},
    }
    (tmp_path / "wide.yaml").write_text(yaml.safe_dump(document))
    app = make_app(specs=(str(tmp_path / "wide.yaml"),))
    async with client_for(app) as c:
        response = await c.post(
            GENERATIONS,
            json={"model": "test/created", "prompt": "p", "image_size": image_size},
            headers=AUTH,
        )
    body = assert_envelope(response, 400, GENERATIONS)
    message = str(body["message"])
    assert message.splitlines()[0] == LIMIT_MESSAGE
    assert message.splitlines()[1].startswith(f"{field}: {sentence}")
    assert "ImageSpec" not in message and "cannot encode" not in message
    (violation,) = body["violations"]
    assert (violation["field"], violation["code"]) == (field, LIMIT_CODE)


async def test_extra_fields_are_allowed(client: httpx.AsyncClient) -> None:
    assert (await generate(client, something_new=True)).status_code == 200


# --- auth ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param({"Authorization": ""}, id="empty"),
        pytest.param({"Authorization": "Bearer"}, id="no-token"),
        pytest.param({"Authorization": "Bearer   "}, id="blank-token"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, id="basic"),
        pytest.param({"Authorization": "test-key"}, id="no-scheme"),
    ],
)
async def test_requests_without_a_bearer_token_get_401(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await client.post(GENERATIONS, json={"model": FLUX2, "prompt": "p"}, headers=headers)
    assert assert_envelope(response, 401, GENERATIONS)["message"] == MESSAGE_401


async def test_bearer_scheme_is_case_insensitive(client: httpx.AsyncClient) -> None:
    response = await client.post(
        GENERATIONS, json={"model": FLUX2, "prompt": "p"}, headers={"Authorization": "bearer k"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("token", "status"),
    [
        pytest.param("key-1", 200, id="first"),
        pytest.param("key-2", 200, id="second"),
        pytest.param("key-3", 401, id="unknown"),
        pytest.param("KEY-1", 401, id="case"),
    ],
)
async def test_fixed_list_of_keys(
    make_app: Callable[..., FakeApp], token: str, status: int
) -> None:
    app = make_app(auth="keys", api_keys=("key-1", "key-2"))
    async with client_for(app) as c:
        response = await c.post(
            GENERATIONS,
            json={"model": FLUX2, "prompt": "p"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == status


async def test_auth_off_needs_no_header(make_app: Callable[..., FakeApp]) -> None:
    app = make_app(auth="off")
    async with client_for(app) as c:
        response = await c.post(GENERATIONS, json={"model": FLUX2, "prompt": "p"})
    assert response.status_code == 200


# --- validation ------------------------------------------------------------------------------


async def test_unknown_model_names_the_models_of_the_path(client: httpx.AsyncClient) -> None:
    response = await generate(client, model="foo")
    body = assert_envelope(response, 400, GENERATIONS)
    assert body["message"] == (
        "Body validation error\nmodel: Invalid enum value. Expected "
        "'blackforestlabs/flux-2' | 'blackforestlabs/flux-2-edit' | "
        "'blackforestlabs/flux-2-lora' | 'blackforestlabs/flux-2-lora-edit' | "
        "'blackforestlabs/flux-2-max' | 'blackforestlabs/flux-2-pro' | "
        "'blackforestlabs/flux-2-pro-edit', received 'foo'"
    )
    (violation,) = body["violations"]
    assert violation["field"] == "model"
    assert violation["code"] == "invalid_enum_value"
    assert violation["received"] == "foo"


@pytest.mark.parametrize(
    ("body", "line"),
    [
        pytest.param({"prompt": "p"}, "model: Required", id="missing-model"),
        pytest.param(
            {"model": 7, "prompt": "p"},
            "model: Expected string, received integer",
            id="model-not-string",
        ),
        pytest.param({"model": FLUX2}, "prompt: Required", id="missing-prompt"),
        pytest.param(
            {"model": FLUX2, "prompt": 5},
            "prompt: Expected string, received integer",
            id="prompt-not-string",
        ),
        pytest.param(
            {"model": FLUX2, "prompt": "x" * 4001},
            "prompt: String must contain at most 4000 character(s), received 'xxx",
            id="prompt-too-long",
        ),
        pytest.param(
            {"model": FLUX2, "prompt": "p", "image_size": {"width": 1000, "height": 512}},
            "image_size.width: Number must be a multiple of 32, received 1000",
            id="width-not-multiple-of-32",
        ),
        pytest.param(
            {"model": FLUX2, "prompt": "p", "image_size": {"width": 4096, "height": 512}},
            "image_size.width: Number must be less than or equal to 2048, received 4096",
            id="width-too-big",
        ),
        pytest.param(
            {"model": FLUX2, "prompt": "p", "image_size": {"width": 256, "height": 512}},
            "image_size.width: Number must be greater than or equal to 512, received 256",
            id="width-too-small",
        ),
        pytest.param(
            {"model": FLUX2, "prompt": "p", "image_size": {"width": 512.5, "height": 512}},
            "image_size.width: Expected integer, received float",
            id="width-float",
        ),
        pytest.param(
            {"model": FLUX2, "prompt": "p", "image_size": "huge"},
            "image_size: Invalid enum value. Expected 'square_hd' | 'square' | "
            "'portrait_4_3' | 'portrait_16_9' | 'landscape_4_3' | 'landscape_16_9', "
            "received 'huge'",
            id="unknown-preset",
        ),
        pytest.param(
            {"model": FLUX2, "prompt": "p", "image_size": 5},
            "image_size: Invalid input: expected object | string, received 5",
            id="image-size-wrong-type",
        ),
        pytest.param(
            {"model": FLUX2, "prompt": "p", "output_format": "gif"},
            "output_format: Invalid enum value. Expected 'jpeg' | 'png' | 'webp', received 'gif'",
            id="unknown-format",
        ),
        pytest.param(
            {"model": FLUX2_MAX, "prompt": "p", "output_format": "webp"},
            "output_format: Invalid enum value. Expected 'jpeg' | 'png', received 'webp'",
            id="max-has-no-webp",
        ),
        pytest.param(
            {"model": FLUX2, "prompt": "p", "num_images": 5},
            "num_images: Number must be less than or equal to 4, received 5",
            id="too-many-images",
        ),
        pytest.param(
            {"model": FLUX2, "prompt": "p", "num_images": 0.5},
            "num_images: Number must be greater than or equal to 1, received 0.5",
            id="fraction-below-one",
        ),
        pytest.param(
            {"model": FLUX2, "prompt": "p", "seed": 0},
            "seed: Number must be greater than or equal to 1, received 0",
            id="seed-zero",
        ),
        pytest.param(
            {"model": FLUX2_MAX, "prompt": "p", "safety_tolerance": 3},
            "safety_tolerance: Expected string, received integer",
            id="tolerance-int",
        ),
        pytest.param(
            {"model": FLUX2, "prompt": "p", "enable_safety_checker": "yes"},
            "enable_safety_checker: Expected boolean, received string",
            id="bool-string",
        ),
    ],
)
async def test_each_violation_names_field_expectation_and_value(
    client: httpx.AsyncClient, body: dict[str, object], line: str
) -> None:
    response = await client.post(GENERATIONS, json=body, headers=AUTH)
    message = assert_envelope(response, 400, GENERATIONS)["message"]
    assert isinstance(message, str)
    assert message.startswith("Body validation error\n")
    assert any(detail.startswith(line) for detail in message.splitlines()[1:]), message


async def test_every_violation_is_reported_not_just_the_first(client: httpx.AsyncClient) -> None:
    response = await generate(
        client,
        image_size={"width": 4096, "height": 1000},
        output_format="gif",
        num_images=9,
        acceleration="warp",
    )
    body = assert_envelope(response, 400, GENERATIONS)
    fields = sorted(v["field"] for v in body["violations"])
    assert fields == [
        "acceleration",
        "image_size.height",
        "image_size.width",
        "num_images",
        "output_format",
    ]
    assert len(str(body["message"]).splitlines()) == 1 + len(fields)


async def test_unknown_model_on_a_one_model_path_reports_the_rest_too(
    make_app: Callable[..., FakeApp],
) -> None:
    app = make_app(specs=(str(SPECS / "created-201.yaml"),))
    async with client_for(app) as c:
        response = await c.post(GENERATIONS, json={"model": "x", "prompt": 5}, headers=AUTH)
    fields = [v["field"] for v in response.json()["violations"]]
    assert fields == ["model", "prompt"]


# --- every response matches the spec ------------------------------------------------------------


async def response_for(client: httpx.AsyncClient, model: str, status: int) -> httpx.Response:
    body = {"model": model, "prompt": "p"}
    if status == 200:
        return await client.post(GENERATIONS, json=body, headers=AUTH)
    if status == 400:
        return await client.post(GENERATIONS, json={**body, "seed": -1}, headers=AUTH)
    if status == 401:
        return await client.post(GENERATIONS, json=body)
    if status == 413:
        return await client.post(GENERATIONS, json={**body, "pad": "x" * 2_000_000}, headers=AUTH)
    if status == 415:
        return await client.post(GENERATIONS, content=b"{}", headers=AUTH)
    raise AssertionError(status)


@pytest.mark.parametrize("model", [FLUX2, FLUX2_MAX])
@pytest.mark.parametrize("status", [200, 400, 401, 413, 415])
async def test_every_response_matches_its_documented_schema(
    client: httpx.AsyncClient, bundled: SpecSet, model: str, status: int
) -> None:
    response = await response_for(client, model, status)
    assert response.status_code == status
    for path in ("/v1/images/generations", "/images/generations"):
        operation = bundled.models_for("POST", path)[model]
        schema = operation.response_schemas[status]
        assert schema is not None
        errors = list(Draft7Validator(schema).iter_errors(response.json()))
        assert errors == [], errors


async def test_404_and_405_match_the_documented_envelope(
    client: httpx.AsyncClient, bundled: SpecSet
) -> None:
    schema = bundled.models_for("POST", GENERATIONS)[FLUX2].response_schemas[404]
    assert schema is not None
    for response in (
        await client.post("/v1/nope", json={}),
        await client.get(GENERATIONS),
        await client.get("/files/nope.png"),
    ):
        Draft7Validator(schema).validate(response.json())


async def test_success_schema_of_any_spec_is_honoured(make_app: Callable[..., FakeApp]) -> None:
    app = make_app(specs=(str(SPECS / "nullable-refs.json"), str(SPECS / "created-201.yaml")))
    async with client_for(app) as c:
        for model, status in (("test/nullable", 200), ("test/created", 201)):
            response = await c.post(GENERATIONS, json={"model": model, "prompt": "p"}, headers=AUTH)
            assert response.status_code == status
            operation = app.service.spec_set.models_for("POST", GENERATIONS)[model]
            Draft7Validator(operation.success_schema).validate(response.json())
            assert len(response.json()["data"]) == 1


FAMILY = SPECS / "family"


async def test_a_job_shaped_answer_carries_no_image_list(
    make_app: Callable[..., FakeApp],
) -> None:
    app = make_app(specs=(str(FAMILY / "job-status.yaml"),))
    async with client_for(app) as c:
        response = await c.post(
            GENERATIONS, json={"model": "test/job", "prompt": "p", "seed": 3}, headers=AUTH
        )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "completed" and isinstance(body["id"], str)
    assert "data" not in body
    assert body["meta"]["usage"]["credits_used"] == 25_200
    settings = Settings(specs=(str(FAMILY / "job-status.yaml"),))
    service = ImageService(settings, load_specs(settings.specs))
    body_sent = {"model": "test/job", "prompt": "p"}
    assert service.generate("POST", GENERATIONS, body_sent, "http://t").urls == []


async def test_fal_style_answers_list_images_with_their_size_and_media_type(
    make_app: Callable[..., FakeApp],
) -> None:
    app = make_app(specs=(str(FAMILY / "fal-images.yaml"),))
    async with client_for(app) as c:
        response = await c.post(
            GENERATIONS,
            json={"model": "test/fal-images", "prompt": "p", "format": "jpeg", "num_images": 2,
                  "image_size": {"width": 300.5, "height": 200}, "seed": -1},
            headers=AUTH,
        )  # fmt: skip
        body = response.json()
        assert response.status_code == 200, body
        assert [(i["width"], i["height"], i["content_type"]) for i in body["images"]] == [
            (300, 200, "image/jpeg")
        ] * 2
        assert body["seed"] == 2**64 - 1
        downloaded = await c.get(body["images"][1]["url"])
    image = Image.open(io.BytesIO(downloaded.content))
    assert (image.format, image.size) == ("JPEG", (300, 200))

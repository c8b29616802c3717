"""Deviations: the fake drifting from its spec on purpose, the way the real API has."""

import io
from collections.abc import Callable

import httpx
import pytest
from PIL import Image

from mock_server import Settings
from mock_server.cli import build_parser, main, settings_from_args
from mock_server.errors import ConfigError
from mock_server.http.app import FakeApp
from mock_server.http.deviations import DEVIATIONS
from tests.conftest import AUTH

pytestmark = pytest.mark.anyio

GENERATIONS = "/v1/images/generations"
BODY = {"model": "blackforestlabs/flux-2", "prompt": "p", "image_size": "square"}


async def call(app: FakeApp, body: object = BODY) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        return await client.post(GENERATIONS, json=body, headers=AUTH)


async def test_without_deviations_nothing_is_added_to_the_app(
    make_app: Callable[..., FakeApp],
) -> None:
    app = make_app()
    assert app.pipeline.deviate is None
    response = await call(app)
    assert response.status_code == 200
    assert response.json()["meta"] == {"usage": {"credits_used": 25_200}}


async def test_status_201(make_app: Callable[..., FakeApp]) -> None:
    app = make_app(deviations=("status-201",))
    response = await call(app)
    assert response.status_code == 201
    assert len(response.json()["data"]) == 1
    # The journal shows what the client got.
    assert [entry.status for entry in app.journal] == [201]


async def test_tokens_used_replaces_credits_used(make_app: Callable[..., FakeApp]) -> None:
    response = await call(make_app(deviations=("tokens-used",)))
    assert response.json()["meta"] == {"usage": {"tokens_used": 25_200}}
    assert response.headers["content-length"] == str(len(response.content))


async def test_usd_spent_is_added_at_two_million_credits_per_dollar(
    make_app: Callable[..., FakeApp],
) -> None:
    response = await call(make_app(deviations=("usd-spent",)))
    assert response.json()["meta"] == {"usage": {"credits_used": 25_200, "usd_spent": 0.0126}}


async def test_data_null(make_app: Callable[..., FakeApp]) -> None:
    response = await call(make_app(deviations=("data-null",)))
    assert response.status_code == 200
    assert response.json()["data"] is None


async def test_wrong_size_serves_half_the_requested_size(
    make_app: Callable[..., FakeApp],
) -> None:
    app = make_app(deviations=("wrong-size",))
    body = {**BODY, "image_size": {"width": 1024, "height": 768}, "output_format": "jpeg"}
    url = (await call(app, body)).json()["data"][0]["url"]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport) as client:
        image = Image.open(io.BytesIO((await client.get(url)).content))
    assert (image.format, image.size) == ("JPEG", (512, 384))


@pytest.mark.parametrize(
    ("body", "status", "name"),
    [
        pytest.param({"model": "nope"}, 400, "BadRequestException", id="400"),
        pytest.param(None, 401, "UnauthorizedException", id="401"),
    ],
)
async def test_problem_json_errors(
    make_app: Callable[..., FakeApp], body: object, status: int, name: str
) -> None:
    app = make_app(deviations=("problem-json",))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        headers = AUTH if body is not None else {}
        response = await client.post(GENERATIONS, json=body or BODY, headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json; charset=utf-8"
    problem = response.json()
    assert set(problem) == {
        "title",
        "status",
        "message",
        "instance",
        "requestId",
        "timestamp",
        "error",
    }
    assert problem["status"] == status
    assert problem["instance"] == GENERATIONS
    assert problem["error"] == {"name": name, "message": problem["message"]}


async def test_problem_json_also_covers_unknown_paths(make_app: Callable[..., FakeApp]) -> None:
    transport = httpx.ASGITransport(app=make_app(deviations=("problem-json",)))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get("/v1/nope")
    assert response.status_code == 404
    assert response.json()["title"] == "Not Found"


async def test_deviations_combine(make_app: Callable[..., FakeApp]) -> None:
    response = await call(make_app(deviations=("status-201", "tokens-used", "usd-spent")))
    assert response.status_code == 201
    assert response.json()["meta"] == {"usage": {"tokens_used": 25_200, "usd_spent": 0.0126}}


def test_unknown_deviation_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown deviation 'status-418'; expected one of"):
        Settings(deviations=("status-418",))


def test_deviations_from_the_environment_and_back() -> None:
    settings = Settings.from_env({"AIMLAPI_MOCK_DEVIATIONS": "status-201, data-null"})
    assert settings.deviations == ("status-201", "data-null")
    assert Settings.from_env(settings.to_env()) == settings


def test_serve_takes_repeated_deviations() -> None:
    args = build_parser().parse_args(
        ["serve", "--deviation", "wrong-size", "--deviation", "problem-json"]
    )
    settings = settings_from_args(args, Settings())
    assert settings.deviations == ("wrong-size", "problem-json")


def test_serve_rejects_an_unknown_deviation(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--deviation", "nope"]) == 2
    error = capsys.readouterr().err
    assert "unknown deviation 'nope'; expected one of data-null, no-tracing-headers" in error
    assert error.count("\n") == 1


def test_every_deviation_is_described() -> None:
    assert sorted(DEVIATIONS) == [
        "data-null",
        "no-tracing-headers",
        "problem-json",
        "status-201",
        "tokens-used",
        "usd-spent",
        "wrong-size",
    ]

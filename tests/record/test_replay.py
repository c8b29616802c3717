"""Replaying cassettes: matching, order, misses, and cassettes that do not load."""

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_server import CassetteError, Settings, create_app
from mock_server.cli import main
from mock_server.record import CassetteWriter, Exchange, load_cassette
from tests.conftest import client_for

GENERATIONS = "/v1/images/generations"
AUTH = {"Authorization": "Bearer anything"}
BODY = {"model": "blackforestlabs/flux-2", "prompt": "a cat", "image_size": "square", "seed": 1}
UPSTREAM_IMAGE = "https://cdn.example.test/out/abc.png?sig=1"
PNG = b"\x89PNG\r\n\x1a\n not really, but served exactly"


def write_cassette(directory: Path, *answers: tuple[dict[str, Any], int, str]) -> Path:
    """A cassette of exchanges (body, status, request id), each answer naming one image."""
    writer = CassetteWriter(directory, lambda text: text)
    for body, status, request_id in answers:
        image = writer.add_image(UPSTREAM_IMAGE, PNG, "image/png")
        writer.add(
            Exchange(
                method="POST",
                path=GENERATIONS,
                body=body,
                request_headers={"content-type": "application/json"},
                status=status,
                response_headers={
                    "content-type": "application/json; charset=utf-8",
                    "x-request-id": request_id,
                },
                response_body={
                    "data": [{"url": UPSTREAM_IMAGE, "b64_json": None}],
                    "meta": {"usage": {"credits_used": 25200}},
                },
                recorded_at="2026-12-02T05:00:00.000Z",
                upstream="https://api.aimlapi.com",
                images=[image],
            )
        )
    return directory


@pytest.fixture
def cassette(tmp_path: Path) -> Path:
    return write_cassette(
        tmp_path / "cassette",
        (BODY, 200, "first"),
        (BODY, 200, "second"),
        ({**BODY, "seed": 2}, 201, "other"),
    )


async def post(app: Any, body: Any, path: str = GENERATIONS) -> httpx.Response:
    async with client_for(app) as client:
        return await client.post(path, json=body, headers=AUTH)


@pytest.mark.anyio
async def test_identical_requests_replay_in_recorded_order(cassette: Path) -> None:
    app = create_app(Settings(replay=(str(cassette),)))
    ids = [(await post(app, BODY)).headers["x-request-id"] for _ in range(3)]
    assert ids == ["first", "second", "second"]
    answer = await post(app, {**BODY, "seed": 2})
    assert answer.status_code == 201
    assert answer.json()["data"][0]["url"] == "http://t/out/abc.png?sig=1"
    async with client_for(app) as client:
        image = await client.get("/out/abc.png?sig=1")
    assert image.content == PNG
    assert image.headers["content-type"] == "image/png"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "path", ["/v1/images/generations/", "/images/generations"], ids=["slash", "no-v1"]
)
async def test_path_forms_match(cassette: Path, path: str) -> None:
    app = create_app(Settings(replay=(str(cassette),)))
    answer = await post(app, {"seed": 1, **{k: v for k, v in BODY.items() if k != "seed"}}, path)
    assert answer.headers["x-request-id"] == "first"


@pytest.mark.anyio
async def test_ignored_fields_do_not_matter(cassette: Path) -> None:
    app = create_app(Settings(replay=(str(cassette),), replay_ignore=("seed",)))
    answer = await post(app, {**BODY, "seed": 99})
    assert answer.headers["x-request-id"] == "first"


@pytest.mark.anyio
async def test_a_miss_is_synthesised_and_marked(cassette: Path) -> None:
    app = create_app(Settings(replay=(str(cassette),)))
    answer = await post(app, {**BODY, "prompt": "a dog"})
    assert answer.status_code == 200
    assert "/files/" in answer.json()["data"][0]["url"]  # the spec-driven fake's own
    (entry,) = list(app.journal)
    assert entry.source == "replay miss, synthesized"


@pytest.mark.anyio
async def test_a_refused_miss_names_the_closest_request_and_the_fields(cassette: Path) -> None:
    app = create_app(Settings(replay=(str(cassette),), replay_miss="error"))
    answer = await post(app, {**BODY, "prompt": "a dog", "image_size": "square_hd"})
    assert answer.status_code == 404
    message = answer.json()["message"]
    assert "No recorded exchange matches POST /v1/images/generations" in message
    assert "exchanges/0001.json" in message
    assert message.endswith("which differs in image_size, prompt")


def corrupt(cassette: Path, change: Any) -> None:
    path = cassette / "exchanges" / "0002.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d["response"].__setitem__("status", "200"), "entry 'response.status' is '200'"),
        (lambda d: d.pop("request"), "entry 'request' is missing, expected an object"),
        (lambda d: d.__setitem__("format", 9), "entry 'format' is 9, expected 1"),
        (lambda d: d["images"][0].__setitem__("size", 3), "has 39 bytes, the exchange says 3"),
    ],
    ids=["status-text", "no-request", "format", "image-size"],
)
def test_a_hand_edited_cassette_names_the_file_and_the_entry(
    cassette: Path, change: Any, expected: str
) -> None:
    corrupt(cassette, change)
    with pytest.raises(CassetteError, match=r"0002\.json") as raised:
        load_cassette(cassette)
    assert expected in str(raised.value)


def test_a_file_that_is_not_json_and_a_missing_image_are_named(
    cassette: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for image in (cassette / "images").iterdir():
        image.unlink()
    with pytest.raises(CassetteError, match=r"0001.json: images\[0\]: image file .* is missing"):
        load_cassette(cassette)
    (cassette / "exchanges" / "0001.json").write_text('{"format": 1,')
    assert main(["serve", "--replay", str(cassette)]) == 2
    assert "0001.json: not JSON" in capsys.readouterr().err
    assert main(["cassette", "verify", str(cassette)]) == 2


def test_an_image_file_with_other_bytes_is_named(cassette: Path) -> None:
    (image,) = (cassette / "images").iterdir()
    image.write_bytes(PNG.upper())
    with pytest.raises(CassetteError, match=r"0001\.json: images\[0\]: .* SHA-256 differs"):
        load_cassette(cassette)


def test_leftover_temporary_files_are_ignored(cassette: Path) -> None:
    (cassette / "exchanges" / ".0004.json.1.2.tmp").write_text('{"half')
    assert len(load_cassette(cassette).exchanges) == 3


def test_cassette_list_summarises(cassette: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cassette", "list", str(cassette)]) == 0
    out = capsys.readouterr().out
    assert "0001.json  2026-12-02T05:00:00.000Z  POST /v1/images/generations" in out
    assert "3 exchange(s), 1 image file(s)" in out


def test_several_cassettes_replay_together(cassette: Path, tmp_path: Path) -> None:
    other = write_cassette(tmp_path / "other", ({**BODY, "prompt": "a dog"}, 200, "dog"))
    shutil.copytree(cassette, tmp_path / "copy")
    app = create_app(Settings(replay=(str(tmp_path / "copy"), str(other)), replay_miss="error"))
    assert app.replay is not None
    assert len(app.replay.cassettes) == 2


@pytest.mark.anyio
async def test_the_journal_page_says_which_source_answered(cassette: Path) -> None:
    app = create_app(Settings(replay=(str(cassette),)))
    await post(app, BODY)
    await post(app, {**BODY, "prompt": "a dog"})
    async with client_for(app) as client:
        await client.get("/out/abc.png")
        listed = (await client.get("/__mock/requests")).json()
    entries = listed["requests"] if isinstance(listed, dict) else listed
    sources = [entry["source"] for entry in entries]
    assert sorted(sources, key=str) == sorted(
        [f"replay {cassette}/exchanges/0001.json", "replay miss, synthesized", "recorded image"],
        key=str,
    )


def test_bad_replay_settings_are_one_line_errors(
    cassette: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--replay", str(cassette), "--replay-miss", "maybe"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "aimlapi-mock: error: replay miss 'maybe' is not one of 'synthesize', 'error'"
    settings = Settings.from_env(
        {"AIMLAPI_MOCK_REPLAY": str(cassette), "AIMLAPI_MOCK_REPLAY_IGNORE": "seed,prompt"}
    )
    assert settings.replay == (str(cassette),)
    assert settings.replay_ignore == ("seed", "prompt")

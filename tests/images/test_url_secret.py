"""Image URLs: the installation's secret, the size cap on tokens, the memory budget of renders."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from mock_server.http.app import FakeApp
from mock_server.images import url_secret
from mock_server.images.budget import MemoryBudget
from mock_server.images.tokens import encode_image_token
from mock_server.images.url_secret import installation_secret, secret_path
from mock_server.types import ImageSpec
from tests.conftest import AUTH, client_for

pytestmark = pytest.mark.anyio

VALID = {"model": "blackforestlabs/flux-2", "prompt": "a cat", "image_size": "square"}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


def test_the_secret_is_made_once_private_and_kept(cache: Path) -> None:
    first = installation_secret()
    path = secret_path()
    assert path == cache / "aimlapi-mock" / "url-secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32 and first != "aimlapi-mock-default-url-secret"
    assert installation_secret() == first  # a restart (or another worker) reads the same
    path.unlink()
    assert installation_secret() != first  # another installation gets another


def test_an_unwritable_cache_falls_back_to_a_secret_of_the_process(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (cache / "aimlapi-mock").write_text("not a directory")
    secret = installation_secret()
    assert secret and installation_secret() == secret
    assert "--url-secret" in capsys.readouterr().err


def test_a_full_disk_leaves_no_empty_secret_behind(
    cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, *args: object, **kwargs: object) -> None:
            self.file = real_fdopen(*args, **kwargs)  # type: ignore[call-overload]

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(url_secret.os, "fdopen", FullDisk)
    monkeypatch.setattr(url_secret, "_made_here", [])  # as in a fresh process
    secret = installation_secret()
    assert secret and installation_secret() == secret
    assert "No space left on device" in capsys.readouterr().err
    assert not secret_path().exists()  # the next start makes one, not reads an empty one
    monkeypatch.undo()
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    assert installation_secret() == secret_path().read_text().strip()


async def test_urls_survive_a_restart_and_a_given_secret_wins(
    cache: Path, make_app: Callable[..., FakeApp]
) -> None:
    async with client_for(make_app()) as first:
        url = (await first.post("/v1/images/generations", json=VALID, headers=AUTH)).json()
    url = url["data"][0]["url"]
    async with client_for(make_app()) as restarted:
        assert (await restarted.get(url)).status_code == 200
    async with client_for(make_app(url_secret="given")) as other:
        assert (await other.get(url)).status_code == 404
    assert "given" not in secret_path().read_text()


@pytest.mark.parametrize(("width", "height"), [(2049, 512), (512, 4096), (4096, 4096)])
async def test_tokens_beyond_the_specs_largest_size_get_404(
    make_app: Callable[..., FakeApp], width: int, height: int
) -> None:
    app = make_app(url_secret="s")
    assert app.service.max_side == 2048
    spec = ImageSpec("blackforestlabs/flux-2", "p", width, height, "png", 1, 0)
    within = ImageSpec("blackforestlabs/flux-2", "p", 2048, 512, "png", 1, 0)
    async with client_for(app) as client:
        refused = await client.get(f"/files/{encode_image_token(spec, b's')}.png")
        taken = await client.get(f"/files/{encode_image_token(within, b's')}.png")
    assert refused.status_code == 404
    assert taken.status_code == 200


async def test_renders_wait_for_room_in_the_memory_budget() -> None:
    budget = MemoryBudget(100)
    events: list[str] = []

    async def render(name: str, size: int) -> None:
        async with budget.hold(size):
            events.append(f"{name} starts")
            await anyio.sleep(0.05)
            events.append(f"{name} ends")

    async with anyio.create_task_group() as group:
        group.start_soon(render, "a", 60)
        await anyio.sleep(0.01)
        group.start_soon(render, "b", 60)  # does not fit beside a
        group.start_soon(render, "huge", 500)  # larger than the budget: runs alone
    assert events.index("b starts") > events.index("a ends")
    starts = [event for event in events if event.endswith("starts")]
    ends = [event for event in events if event.endswith("ends")]
    assert len(starts) == len(ends) == 3
    for position, event in enumerate(events[:-1]):
        if event.endswith("starts"):
            assert events[position + 1].endswith("ends")  # never two at once here
    assert budget.held == 0

"""The journal page's routes, the live event stream behind it, and the health probe."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from mock_server import BackgroundServer, __version__
from mock_server.controls.journal import JournalEntry
from mock_server.http import events
from mock_server.http.app import FakeApp
from mock_server.http.events import EventHub
from mock_server.http.server import GRACEFUL_SHUTDOWN_SECONDS
from tests.conftest import AUTH, client_for

pytestmark = pytest.mark.anyio

FLUX2 = "blackforestlabs/flux-2"
GENERATIONS = "/v1/images/generations"


async def test_the_page_and_its_assets_are_served_from_the_package(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/__mock/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    for asset, kind in (
        ("journal.js", "text/javascript"),
        ("journal.css", "text/css"),
        ("icon.svg", "image/svg+xml"),
    ):
        assert f'"assets/{asset}"' in page.text
        served = await client.get(f"/__mock/assets/{asset}")
        assert served.status_code == 200
        assert served.headers["content-type"].startswith(kind)
    # Nothing but this origin: no CDN, no external font or script.
    for asset in ("", "assets/journal.js", "assets/journal.css"):
        text = (await client.get(f"/__mock/{asset}")).text
        assert "http://" not in text.replace("http://www.w3.org", "")
        assert "https://" not in text
    assert (await client.get("/__mock/assets/journal.html")).status_code == 404
    assert (await client.get("/__mock/assets/../app.py")).status_code == 404


async def test_the_page_without_its_slash_is_a_redirect_to_it(client: httpx.AsyncClient) -> None:
    redirect = await client.get("/__mock")
    assert redirect.status_code == 307
    assert redirect.headers["location"].endswith("/__mock/")
    page = await client.get("/__mock", follow_redirects=True)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")


async def test_health_says_what_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/__mock/health")
    assert response.status_code == 200
    health = response.json()
    assert health["status"] == "ok"
    assert health["version"] == __version__
    assert health["models"][:2] == [FLUX2, "blackforestlabs/flux-2-edit"]
    assert len(health["models"]) == 7 and health["models"] == sorted(health["models"])
    assert health["operations"][f"POST {GENERATIONS}"] == health["models"]
    assert 0 <= health["uptime_seconds"] < 60


async def test_no_page_without_the_admin_routes(make_app: Callable[..., FakeApp]) -> None:
    async with client_for(make_app(admin=False)) as client:
        for path in ("/__mock", "/__mock/", "/__mock/health", "/__mock/metrics", "/__mock/events"):
            assert (await client.get(path)).status_code == 404


async def next_event(stream: AsyncIterator[bytes]) -> tuple[str, object]:
    while True:
        chunk = (await asyncio.wait_for(stream.__anext__(), 5)).decode()
        if chunk.startswith("event: "):
            head, _, data = chunk.partition("\ndata: ")
            return head.removeprefix("event: "), json.loads(data)


async def test_the_stream_sends_the_journal_then_each_new_entry(app: FakeApp) -> None:
    async with client_for(app) as client:
        await client.post(GENERATIONS, json={"model": FLUX2, "prompt": "before"}, headers=AUTH)
        stream = app.events.stream()
        assert (await stream.__anext__()).startswith(b"retry: ")
        name, backlog = await next_event(stream)
        assert name == "reset"
        assert isinstance(backlog, list)
        assert [entry["body"]["prompt"] for entry in backlog] == ["before"]
        assert backlog[0]["response_body"]["meta"]["usage"]["credits_used"] == 25200
        assert backlog[0]["headers"]["authorization"] == "Bearer <redacted>"
        assert app.events.listening == 1

        await client.post(GENERATIONS, json={"model": FLUX2, "prompt": 3}, headers=AUTH)
        name, fresh = await next_event(stream)
        assert name == "entries"
        assert isinstance(fresh, list)
        (entry,) = fresh
        assert entry["status"] == 400
        assert [v["field"] for v in entry["violations"]] == ["prompt"]
        await stream.aclose()
    assert app.events.listening == 0


async def test_nothing_is_encoded_while_no_page_listens(
    app: FakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(entry: JournalEntry) -> dict[str, object]:
        raise AssertionError("an entry was encoded for nobody")

    monkeypatch.setattr(events, "page_json", refuse)
    async with client_for(app) as client:
        response = await client.post(
            GENERATIONS, json={"model": FLUX2, "prompt": "p"}, headers=AUTH
        )
    assert response.status_code == 200


async def test_a_page_that_falls_behind_is_told_how_far(app: FakeApp) -> None:
    hub = EventHub(app.journal, queue_size=3)
    app.pipeline.observers = (hub,)
    stream = hub.stream()
    await stream.__anext__()
    await next_event(stream)  # the (empty) backlog
    async with client_for(app) as client:
        for number in range(5):
            await client.post(
                GENERATIONS, json={"model": FLUX2, "prompt": f"{number}"}, headers=AUTH
            )
    assert (await stream.__anext__()) == b"event: dropped\ndata: 2\n\n"
    name, fresh = await next_event(stream)
    assert name == "entries"
    assert isinstance(fresh, list)
    assert [entry["body"]["prompt"] for entry in fresh] == ["2", "3", "4"]
    await stream.aclose()


async def test_an_idle_stream_keeps_the_connection_alive(app: FakeApp) -> None:
    hub = EventHub(app.journal, keep_alive=0.01)
    stream = hub.stream()
    await stream.__anext__()
    await next_event(stream)
    assert await asyncio.wait_for(stream.__anext__(), 5) == b": keep-alive\n\n"
    await stream.aclose()


def test_the_stream_over_a_socket(app: FakeApp) -> None:
    with (
        BackgroundServer(app) as server,
        httpx.Client(base_url=server.base_url) as client,
        client.stream("GET", "/__mock/events", timeout=5) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        lines = response.iter_lines()
        assert next(lines) == "retry: 1000"
        client.post(GENERATIONS, json={"model": FLUX2, "prompt": "live"}, headers=AUTH)
        data = next(line for line in lines if line.startswith("data: ") and "live" in line)
        assert json.loads(data.removeprefix("data: "))[0]["body"]["prompt"] == "live"


async def test_an_entry_too_deep_to_decode_does_not_break_the_stream(app: FakeApp) -> None:
    stream = app.events.stream()
    await stream.__anext__()
    await next_event(stream)
    async with client_for(app) as client:
        deep = b"[" * 100_000 + b"]" * 100_000
        response = await client.post(
            GENERATIONS, content=deep, headers={**AUTH, "content-type": "application/json"}
        )
        assert response.status_code == 400
        await client.post(GENERATIONS, json={"model": FLUX2, "prompt": "after"}, headers=AUTH)
    shown: list[object] = []
    while len(shown) < 2:
        _, fresh = await next_event(stream)
        assert isinstance(fresh, list)
        shown.extend(fresh)
    first, second = shown
    assert isinstance(first, dict) and first["status"] == 400 and first["error"] is None
    assert first["body"] is not None  # shown cut off at the journal's depth, not dropped
    assert isinstance(second, dict) and second["body"] == {"model": FLUX2, "prompt": "after"}
    await stream.aclose()


def test_a_stopping_server_ends_open_streams_at_once(app: FakeApp) -> None:
    server = BackgroundServer(app)
    server.start()
    with (
        httpx.Client(base_url=server.base_url) as client,
        client.stream("GET", "/__mock/events", timeout=5) as response,
    ):
        lines = response.iter_lines()
        assert next(lines) == "retry: 1000"
        started = time.monotonic()
        server.stop()
        # Not held for the grace period:
        assert time.monotonic() - started < GRACEFUL_SHUTDOWN_SECONDS
        rest = list(lines)  # the stream ends cleanly: no error reading it
    assert rest[-2:] == ["data: []", ""]

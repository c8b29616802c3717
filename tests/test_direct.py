"""The API routes are answered in front of Starlette when nothing is to be injected; every
answer must be the one Starlette's routing gives. A ``Prefer`` header the fake does not know
(``wait=1``) sends a request the long way without changing its answer, so each request here is
sent both ways and the answers and journal entries compared."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from mock_server.controls.journal import JournalEntry
from mock_server.http.app import FakeApp
from mock_server.http.endpoints import request_headers
from tests.conftest import AUTH

pytestmark = pytest.mark.anyio

GENERATIONS = "/v1/images/generations"
FLUX2 = "blackforestlabs/flux-2"
LONG_WAY = {"Prefer": "wait=1"}
JSON_HEADERS = {**AUTH, "Content-Type": "application/json"}


def case(name: str, method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
    return pytest.param(method, path, headers, body, id=name)


FOX = b'{"model":"%s","prompt":"a fox","seed":7' % FLUX2.encode()
WRONG = b'"image_size":{"width":1000,"height":4096},"output_format":"gif"}'
REQUESTS = [
    case("valid", "POST", GENERATIONS, JSON_HEADERS, FOX + b"}"),
    case("valid-unversioned-3-webp", "POST", "/images/generations", JSON_HEADERS,
         FOX + b',"num_images":3,"output_format":"webp"}'),
    case("three-violations", "POST", GENERATIONS, JSON_HEADERS, FOX + b"," + WRONG),
    case("unknown-model", "POST", GENERATIONS, JSON_HEADERS,
         b'{"model":"blackforestlabs/flux-3","prompt":"p"}'),
    case("broken-json", "POST", GENERATIONS, JSON_HEADERS, b'{"model": '),
    case("too-deep", "POST", GENERATIONS, JSON_HEADERS, b"[" * 40 + b"]" * 40),
    case("empty", "POST", GENERATIONS, JSON_HEADERS, b""),
    case("too-large", "POST", GENERATIONS, JSON_HEADERS, b"x" * 5000),
    case("no-key", "POST", GENERATIONS, {"Content-Type": "application/json"}, b"{}"),
    case("text-plain", "POST", GENERATIONS, {**AUTH, "Content-Type": "text/plain"}, b"{}"),
    case("latin-1", "POST", GENERATIONS,
         {**AUTH, "Content-Type": "application/json; charset=latin-1"}, b"{}"),
    case("forged-image", "GET", "/files/AAAA.png", AUTH, b""),
    case("image-without-format", "GET", "/files/nothing", AUTH, b""),
    case("gif-image", "GET", "/files/a.gif", AUTH, b""),
]  # fmt: skip


def comparable(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    """The answer without what differs from one request to the next (request id, time)."""
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id",)}
    if "json" not in response.headers.get("content-type", ""):
        return response.status_code, headers, response.content
    body = response.json()
    if isinstance(body, dict):
        body.pop("requestId", None)
        body.pop("timestamp", None)
        headers.pop("content-length", None)  # the request id and time may differ in length
    return response.status_code, headers, body


def journalled(entry: JournalEntry) -> dict[str, Any]:
    fields = entry.as_json()
    for name in ("time", "duration", "request_id"):
        fields.pop(name)
    fields["headers"].pop("prefer", None)
    fields["response_headers"] = {
        k: v
        for k, v in entry.response_headers.items()
        if k not in ("x-request-id", "content-length")
    }
    return fields


@pytest.fixture
def app(make_app: Callable[..., Starlette]) -> Starlette:
    return make_app(auth="keys", api_keys=("test-key",), max_body_bytes=4096, journal_size=100)


async def both_ways(
    app: Starlette, method: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[tuple[httpx.Response, JournalEntry], tuple[httpx.Response, JournalEntry]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        direct = await client.request(method, path, headers=headers, content=body)
        direct_entry = app.state.journal.last
        routed = await client.request(method, path, headers={**headers, **LONG_WAY}, content=body)
        routed_entry = app.state.journal.last
    return (direct, direct_entry), (routed, routed_entry)


@pytest.mark.parametrize(("method", "path", "headers", "body"), REQUESTS)
async def test_direct_and_routed_answers_are_the_same(
    app: Starlette, method: str, path: str, headers: dict[str, str], body: bytes
) -> None:
    (direct, direct_entry), (routed, routed_entry) = await both_ways(
        app, method, path, headers, body
    )
    assert comparable(direct) == comparable(routed)
    assert journalled(direct_entry) == journalled(routed_entry)
    assert direct_entry is not routed_entry
    assert app.state.journal[0] is direct_entry  # one entry per request, however often read
    assert direct_entry.duration is not None and direct_entry.duration >= 0


async def test_images_are_served_alike_both_ways(app: Starlette) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        made = await client.post(
            GENERATIONS, json={"model": FLUX2, "prompt": "a fox"}, headers=AUTH
        )
    url = made.json()["data"][0]["url"].removeprefix("http://testserver")
    (direct, _), (routed, _) = await both_ways(app, "GET", url, AUTH, b"")
    assert direct.status_code == 200
    assert comparable(direct) == comparable(routed)
    (head, _), _ = await both_ways(app, "HEAD", url, AUTH, b"")
    assert head.status_code == 200 and head.content == b""


async def test_a_failure_inside_the_fake_is_a_500_both_ways(
    app: Starlette, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(app.state.service, "generate", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        body = b'{"model":"%s","prompt":"p"}' % FLUX2.encode()
        direct = await client.post(GENERATIONS, content=body, headers=JSON_HEADERS)
        routed = await client.post(GENERATIONS, content=body, headers={**JSON_HEADERS, **LONG_WAY})
    assert comparable(direct) == comparable(routed)
    assert direct.status_code == 500
    assert [str(error) for error in app.state.journal.errors] == ["boom", "boom"]
    assert [entry.status for entry in app.state.journal] == [500, 500]


def route_for(app: FakeApp, path: str = GENERATIONS, method: str = "POST", **extra: Any) -> object:
    headers = [(b"authorization", b"Bearer test-key"), *extra.pop("headers", [])]
    scope = {"type": "http", "method": method, "path": path, "headers": headers, **extra}
    assert app.direct is not None
    return app.direct.route_for(scope, request_headers(scope))


def test_which_requests_take_the_direct_path(make_app: Callable[..., Starlette]) -> None:
    app = make_app()
    assert isinstance(app, FakeApp) and app.direct is not None
    direct = app.direct
    assert route_for(app) is direct.generation
    assert route_for(app, "/images/generations") is direct.generation
    assert route_for(app, "/files/abc.png", "GET") is direct.image
    # Everything else goes through Starlette: other methods and paths, a Prefer header,
    # a root path to take off, the admin routes.
    assert route_for(app, method="GET") is None
    assert route_for(app, "/files/a/b.png", "GET") is None
    assert route_for(app, "/files/", "GET") is None
    assert route_for(app, "/v1/images/nope") is None
    assert route_for(app, headers=[(b"prefer", b"code=429")]) is None
    assert route_for(app, root_path="/api") is None
    assert route_for(app, "/__mock/requests", "GET") is None
    # Fault rules and latency apply to generations, which then go the long way; images do not.
    app.state.faults.fail(503)
    assert route_for(app) is None
    assert route_for(app, "/files/abc.png", "GET") is direct.image
    app.state.faults.reset()
    assert route_for(app) is direct.generation


def test_deviations_send_every_request_the_long_way(make_app: Callable[..., Starlette]) -> None:
    app = make_app(deviations=("status-201",))
    assert isinstance(app, FakeApp) and app.direct is None


@pytest.mark.parametrize("pieces", [1, 3, 40], ids=["one", "three", "forty"])
async def test_a_body_sent_in_pieces_is_read_whole(app: Starlette, pieces: int) -> None:
    body = FOX + b"}"
    size = -(-len(body) // pieces)

    async def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(body), size):
            yield body[start : start + size]

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(GENERATIONS, content=chunks(), headers=JSON_HEADERS)
    assert response.status_code == 200, response.text
    assert app.state.journal.last.raw_body == body

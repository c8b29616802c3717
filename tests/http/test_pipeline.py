"""The request pipeline: routing, the body reader, and the deliver stage.

A ``Prefer`` header the fake does not know (``wait=1``) makes the deliver stage decide how to
send an answer (it then finds nothing to inject); the answer and journal entry must be those of
a request sent plainly, so each request here is sent both ways and the results compared."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from mock_server.controls.journal import JournalEntry
from mock_server.http.app import FakeApp
from mock_server.http.pipeline import Request, base_url
from tests.conftest import AUTH

pytestmark = pytest.mark.anyio

GENERATIONS = "/v1/images/generations"
FLUX2 = "blackforestlabs/flux-2"
LONG = {"Prefer": "wait=1"}
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
    varying = ("x-request-id", "x-inference-id")
    headers = {k: v for k, v in response.headers.items() if k not in varying}
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
    for name in ("time", "duration", "request_id", "inference_id"):
        fields.pop(name)
    fields["headers"].pop("prefer", None)
    fields["response_headers"] = {
        k: v
        for k, v in entry.response_headers.items()
        if k not in ("x-request-id", "x-inference-id", "content-length")
    }
    return fields


@pytest.fixture
def app(make_app: Callable[..., FakeApp]) -> FakeApp:
    return make_app(auth="keys", api_keys=("test-key",), max_body_bytes=4096, journal_size=100)


async def both_ways(
    app: FakeApp, method: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[tuple[httpx.Response, JournalEntry], tuple[httpx.Response, JournalEntry]]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        plain = await client.request(method, path, headers=headers, content=body)
        plain_entry = app.journal.last
        delivered = await client.request(method, path, headers={**headers, **LONG}, content=body)
        delivered_entry = app.journal.last
    return (plain, plain_entry), (delivered, delivered_entry)


@pytest.mark.parametrize(("method", "path", "headers", "body"), REQUESTS)
async def test_plain_and_delivered_answers_are_the_same(
    app: FakeApp, method: str, path: str, headers: dict[str, str], body: bytes
) -> None:
    (plain, plain_entry), (delivered, delivered_entry) = await both_ways(
        app, method, path, headers, body
    )
    assert comparable(plain) == comparable(delivered)
    assert journalled(plain_entry) == journalled(delivered_entry)
    assert plain_entry is not delivered_entry
    assert app.journal[0] is plain_entry  # one entry per request, however often read
    assert plain_entry.duration is not None and plain_entry.duration >= 0


async def test_images_are_served_alike_both_ways(app: FakeApp) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        made = await client.post(
            GENERATIONS, json={"model": FLUX2, "prompt": "a fox"}, headers=AUTH
        )
    url = made.json()["data"][0]["url"].removeprefix("http://testserver")
    (plain, _), (delivered, _) = await both_ways(app, "GET", url, AUTH, b"")
    assert plain.status_code == 200
    assert comparable(plain) == comparable(delivered)
    (head, _), _ = await both_ways(app, "HEAD", url, AUTH, b"")
    assert head.status_code == 200 and head.content == b""


async def test_a_failure_inside_the_fake_is_a_500_both_ways(
    app: FakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(app.service, "generate", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        body = b'{"model":"%s","prompt":"p"}' % FLUX2.encode()
        plain = await client.post(GENERATIONS, content=body, headers=JSON_HEADERS)
        delivered = await client.post(GENERATIONS, content=body, headers={**JSON_HEADERS, **LONG})
    assert comparable(plain) == comparable(delivered)
    assert plain.status_code == 500
    assert [str(error) for error in app.journal.errors] == ["boom", "boom"]
    assert [entry.status for entry in app.journal] == [500, 500]


def test_routes_of_the_pipeline(make_app: Callable[..., FakeApp]) -> None:
    pipeline = make_app().pipeline

    def route(method: str, path: str) -> bool:
        scope = {"type": "http", "method": method, "path": path, "headers": []}
        return pipeline.route(Request(0.0, method, path, scope, {}))

    assert route("POST", GENERATIONS) and route("POST", "/images/generations")
    assert route("POST", GENERATIONS + "/")  # as the API's own docs post it
    assert not route("GET", GENERATIONS)
    assert not route("POST", "/v1/images/nope")
    assert not route("GET", "/files/abc.png")


async def test_trailing_slash_is_answered_like_the_path_without_it(app: FakeApp) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(GENERATIONS + "/", content=FOX + b"}", headers=JSON_HEADERS)
        wrong = await client.post(GENERATIONS + "/", content=b"{}", headers=JSON_HEADERS)
    assert response.status_code == 200 and len(response.json()["data"]) == 1
    assert wrong.status_code == 400 and wrong.json()["path"] == GENERATIONS
    assert app.journal.last.path == GENERATIONS + "/"  # the journal keeps what was sent


async def test_other_methods_get_405_with_the_allowed_ones(app: FakeApp) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.get(GENERATIONS, headers=AUTH)
        admin = await client.put("/__mock/requests")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json()["message"] == f"Method GET is not allowed on {GENERATIONS}; use POST"
    assert admin.status_code == 405 and admin.headers["allow"] == "DELETE, GET, HEAD"


@pytest.mark.parametrize("pieces", [1, 3, 40], ids=["one", "three", "forty"])
async def test_a_body_sent_in_pieces_is_read_whole(app: FakeApp, pieces: int) -> None:
    body = FOX + b"}"
    size = -(-len(body) // pieces)

    async def chunks():  # type: ignore[no-untyped-def]
        for start in range(0, len(body), size):
            yield body[start : start + size]

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        response = await client.post(GENERATIONS, content=chunks(), headers=JSON_HEADERS)
    assert response.status_code == 200, response.text
    assert app.journal.last.raw_body == body


@pytest.mark.parametrize(
    ("host", "server", "root_path", "expected"),
    [
        (b"example.com:8000", ("127.0.0.1", 9), "", "http://example.com:8000"),
        (b"[::1]:8000", ("::1", 8000), "", "http://[::1]:8000"),
        (None, ("127.0.0.1", 9000), "", "http://127.0.0.1:9000"),
        (None, ("::1", 9000), "/api", "http://[::1]:9000/api"),
        (b"a/b", ("127.0.0.1", 9000), "", "http://127.0.0.1:9000"),
        (b"x y", ("h", 80), "", "http://h"),
        (b"", None, "", "http://localhost"),
    ],
)
def test_image_urls_start_from_the_host_the_client_reached(
    host: bytes | None, server: tuple[str, int] | None, root_path: str, expected: str
) -> None:
    headers = {b"host": host} if host is not None else {}
    scope = {"type": "http", "scheme": "http", "server": server, "root_path": root_path}
    assert base_url(scope, headers) == expected


@pytest.mark.parametrize("extra", [{}, LONG], ids=["plain", "delivered"])
@pytest.mark.parametrize(("method", "path", "headers", "body"), REQUESTS)
async def test_a_request_is_journalled_before_its_answer_leaves(
    app: FakeApp,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    extra: dict[str, str],
) -> None:
    """Whoever holds an answer finds its request in the journal (read through any worker)."""
    raw_headers = [(name.lower().encode(), value.encode()) for name, value in
                   {"Host": "testserver", **headers, **extra}.items()]  # fmt: skip
    scope = {
        "type": "http", "http_version": "1.1", "method": method, "path": path,
        "raw_path": path.encode(), "query_string": b"", "headers": raw_headers,
        "scheme": "http", "server": ("testserver", 80), "client": ("127.0.0.1", 5000),
        "root_path": "",
    }  # fmt: skip
    seen: list[tuple[int, int | None]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            entry = app.journal.last
            assert entry is not None and entry.path == path, "answer sent before it was journalled"
            seen.append((message["status"], entry.status))

    await app(scope, receive, send)
    ((sent, journalled_status),) = seen
    assert sent == journalled_status

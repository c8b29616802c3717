"""The protocol runs the pipeline on a request it has read whole, without an ASGI task.

Every request here is sent over a real socket twice: to a server that answers it so, and to one
that hands every request to the pipeline as an ASGI app. The answers and journal entries must be
the same, and the first server must really have taken the short way where it can.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mock_server import Settings, create_app
from mock_server.errors import STATUS_MESSAGES
from mock_server.http import protocol
from mock_server.http.app import FakeApp
from mock_server.http.server import BackgroundServer
from tests.http.test_protocol import chunked, post, read_answer, wire_bytes

GENERATIONS = "/v1/images/generations"
FOX = b'{"model":"blackforestlabs/flux-2","prompt":"a fox","seed":7}'
SETTINGS = Settings(max_body_bytes=4096, journal_size=100)


def get(path: str, method: bytes = b"GET", *extra: bytes) -> bytes:
    return b"\r\n".join([method + b" " + path.encode() + b" HTTP/1.1", b"Host: t", *extra]) + (
        b"\r\n\r\n"
    )


REQUESTS = {
    "valid": post(FOX),
    "valid-chunked": chunked(FOX),
    "three-violations": post(
        b'{"model":"blackforestlabs/flux-2","prompt":"p","image_size":{"width":1000,'
        b'"height":4096},"output_format":"gif"}'
    ),
    "broken-json": post(b'{"model": '),
    "empty": post(b""),
    "no-key": post(FOX).replace(b"Authorization: Bearer k\r\n", b""),
    "too-large-declared": post(b"x" * 5000),
    "too-large-chunked": chunked(b"x" * 5000),
    "not-a-length": post(FOX, length=None).replace(b"Content-Length: 61", b"Content-Length: 6x"),
    "gzip": post(FOX, b"Content-Encoding: gzip"),
    "wrong-method": get(GENERATIONS),
    "preflight": get(
        GENERATIONS, b"OPTIONS", b"Origin: http://a", b"Access-Control-Request-Method: POST"
    ),
    "unknown-path": get("/v2/nothing"),
    "models": get("/models"),
    "forged-image": get("/files/AAAA.png"),
    "delayed": post(FOX, b"Prefer: delay=0.05"),
    "forced-503": post(FOX, b"Prefer: code=503"),
    "bad-prefer": post(FOX, b"Prefer: code=999"),
    "forwarded-proto": post(FOX, b"X-Forwarded-Proto: https"),
}  # fmt: skip


class Served(NamedTuple):
    server: BackgroundServer
    app: FakeApp


TASKS = {
    "too-large-declared": "a body over the cap is refused before it is read",
    "too-large-chunked": "a body is held only up to the cap",
    "delayed": "a delayed answer waits in a task",
    "forwarded-proto": "uvicorn's proxy-headers middleware changes the scope",
    "forged-image": "an image not in the cache may need a render",
    "preflight": "a 204 has no Content-Length: uvicorn's send frames it",
}
"""The requests answered by an ASGI task all the same, and why."""


@pytest.fixture(autouse=True)
def no_access_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """pytest hangs its log capture on uvicorn's access logger, and uvicorn logs each request
    (and sends every answer through ASGI's send) when that logger has handlers; the fake runs
    with it off."""
    monkeypatch.setattr(logging.getLogger("uvicorn.access"), "hasHandlers", lambda: False)


@pytest.fixture
def tasks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The path of each request the server started an ASGI task for."""
    started: list[str] = []
    real = HttpToolsProtocol._start_asgi_task

    def counting(self: HttpToolsProtocol, cycle: Any, app: Any) -> None:
        started.append(cycle.scope["path"])
        real(self, cycle, app)

    monkeypatch.setattr(HttpToolsProtocol, "_start_asgi_task", counting)
    return started


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[bool, Served]]:
    """A server answering whole requests in the protocol (True), and one that does not."""
    real = protocol.pipeline_for

    def only_for_the_first(config: Any) -> Any:
        found = real(config)
        return found if found is not None and found is first.pipeline else None

    monkeypatch.setattr(protocol, "pipeline_for", only_for_the_first)
    first, second = create_app(SETTINGS), create_app(SETTINGS)
    with BackgroundServer(first) as now, BackgroundServer(second) as later:
        yield {True: Served(now, first), False: Served(later, second)}


def answer_of(server: BackgroundServer, raw: bytes) -> tuple[int, dict[str, str], Any]:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(raw)
        status, headers, body = read_answer(sock)
    for varying in ("date", "x-request-id", "x-inference-id", "content-length"):
        headers.pop(varying, None)
    try:
        parsed = json.loads(body)
    except ValueError:
        return status, headers, body
    if isinstance(parsed, dict):
        parsed.pop("requestId", None)
        parsed.pop("timestamp", None)
    return status, headers, parsed


def journalled(app: FakeApp) -> dict[str, Any]:
    entry = app.journal.last
    assert entry is not None
    fields = entry.as_json()
    for varying in ("time", "duration", "request_id", "inference_id"):
        fields.pop(varying)
    fields["response_headers"] = {
        name: value
        for name, value in entry.response_headers.items()
        if name not in ("x-request-id", "x-inference-id", "content-length")
    }
    return fields


@pytest.mark.parametrize("name", list(REQUESTS))
def test_answers_made_in_the_protocol_are_those_of_the_asgi_app(
    servers: dict[bool, Served], tasks: list[str], name: str
) -> None:
    raw = REQUESTS[name]
    answers, entries = {}, {}
    for now, (server, app) in servers.items():
        tasks.clear()
        answers[now] = answer_of(server, raw)
        entries[now] = journalled(app) if len(app.journal) else None
        if now:
            started_now = list(tasks)
    assert answers[True] == answers[False]
    assert entries[True] == entries[False]
    assert len(started_now) == (1 if name in TASKS else 0), started_now


def test_images_are_rendered_in_a_task_and_then_served_from_the_cache(
    servers: dict[bool, Served], tasks: list[str]
) -> None:
    server = servers[True].server
    status, _, made = answer_of(server, post(FOX))
    assert status == 200
    path = made["data"][0]["url"].split("//", 1)[1].partition("/")[2]
    tasks.clear()
    first = answer_of(server, get("/" + path))
    assert tasks == ["/" + path]  # a render waits: the ASGI way
    tasks.clear()
    again = answer_of(server, get("/" + path))
    head = wire_bytes(server, get("/" + path, b"HEAD"))  # a head only, however long
    assert tasks == []
    assert first == again and first[0] == 200 and first[1]["content-type"] == "image/png"
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert b"content-length: %d\r\n" % len(first[2]) in head


def test_requests_sent_together_are_answered_in_order(servers: dict[bool, Served]) -> None:
    server, app = servers[True]
    raws = [post(FOX), get("/models"), post(b"{}"), post(FOX, b"Prefer: delay=0.05"), post(FOX)]
    data = wire_bytes(server, b"".join(raws))
    statuses = [int(status) for status in re.findall(rb"HTTP/1.1 (\d{3}) ", data)]
    assert statuses == [200, 200, 400, 200, 200]
    assert [entry.status for entry in app.journal][-len(raws) :] == statuses


def test_a_body_larger_than_a_held_one_goes_to_the_asgi_app(tasks: list[str]) -> None:
    prompt = "a fox " * 20_000  # 120 kB: past uvicorn's high-water mark
    body = json.dumps({"model": "blackforestlabs/flux-2", "prompt": prompt}).encode()
    with BackgroundServer(create_app(Settings())) as server:
        for raw in (post(body), chunked(body)):
            tasks.clear()
            with socket.create_connection((server.host, server.port), timeout=5) as sock:
                sock.sendall(raw)
                status, _, answer = read_answer(sock)
            assert tasks == [GENERATIONS]
            assert status == 400 and b"prompt" in answer  # longer than the spec allows


def test_a_client_expecting_100_continue_gets_it(servers: dict[bool, Served]) -> None:
    server = servers[True].server
    head, _, body = post(FOX, b"Expect: 100-continue").partition(b"\r\n\r\n")
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(head + b"\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(body)
        assert read_answer(sock)[0] == 200


def test_a_client_leaving_mid_body_leaves_nothing_behind(
    servers: dict[bool, Served],
) -> None:
    server, app = servers[True]
    before = len(app.journal)
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(post(FOX)[:-10])
    time.sleep(0.2)
    assert len(app.journal) == before and not app.journal.errors
    assert answer_of(server, post(FOX))[0] == 200  # and the server goes on


def test_a_failure_inside_the_fake_is_a_500_and_logged(
    servers: dict[bool, Served], monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    server, app = servers[True]

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(app.service, "generate", broken)
    status, _, body = answer_of(server, post(FOX))
    assert status == 500 and body["message"] == STATUS_MESSAGES[500]
    assert [str(error) for error in app.journal.errors] == ["boom"]
    assert app.journal.last.status == 500
    for _ in range(50):
        if any("boom" in str(record.exc_info) for record in caplog.records):
            break
        time.sleep(0.02)
    assert any(record.exc_info and "boom" in str(record.exc_info[1]) for record in caplog.records)


def test_an_app_wrapped_in_middleware_sees_every_request(tasks: list[str]) -> None:
    fake = create_app(Settings())

    async def tagging(scope: Any, receive: Any, send: Any) -> None:
        async def tagged(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-wrapped", b"yes")]
            await send(message)

        await fake(scope, receive, tagged)

    with BackgroundServer(tagging) as server:  # type: ignore[arg-type]
        status, headers, _ = answer_of(server, post(FOX))
    assert status == 200 and headers["x-wrapped"] == "yes"
    assert tasks == [GENERATIONS]


def test_a_request_sent_behind_an_answered_one_is_not_cut_by_the_keep_alive_timeout() -> None:
    """An answer written from the parser arms uvicorn's keep-alive timer; the request that
    follows in the same read, held back longer than that timeout, must still get its answer."""
    app = create_app(Settings())
    server = BackgroundServer(app)
    server._server.config.timeout_keep_alive = 0.2  # uvicorn's default is 5 s
    with server:
        data = wire_bytes(server, get("/models") + post(FOX, b"Prefer: delay=0.5"))
    assert re.findall(rb"HTTP/1.1 (\d{3}) ", data) == [b"200", b"200"]
    assert data.rstrip().endswith(b"}}}")  # the generation's whole body


@pytest.mark.parametrize(
    "closing",
    [
        pytest.param(b"GET /models HTTP/1.1\r\n\r\n", id="no-host"),
        pytest.param(post(FOX, b"Content-Encoding: gzip"), id="gzip"),
        pytest.param(get("/models", b"GET", b"Connection: close"), id="connection-close"),
        pytest.param(get("/models").replace(b"HTTP/1.1", b"HTTP/1.0"), id="http-1.0"),
    ],
)
def test_nothing_sent_after_an_answer_that_ends_the_connection_is_run(
    servers: dict[bool, Served], closing: bytes
) -> None:
    server, app = servers[True]
    app.journal.clear()
    app.ledger.set(1_000_000)
    after = [post(FOX), get("/__mock/requests", b"DELETE"), post(FOX, b"Prefer: delay=0.05")]
    data = wire_bytes(server, closing + b"".join(after))
    assert len(re.findall(rb"HTTP/1\.[01] \d{3} ", data)) == 1
    time.sleep(0.2)
    assert len(app.journal) == 1 and app.ledger.balance == 1_000_000  # not run, not charged


def test_a_client_leaving_while_requests_wait_behind_a_held_one_leaves_no_error(
    servers: dict[bool, Served], caplog: Any
) -> None:
    server = servers[True].server
    held = post(FOX, b"Prefer: delay=0.3")
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(held + post(FOX) * 3)
        time.sleep(0.1)
    time.sleep(0.5)
    assert not [record for record in caplog.records if record.levelname == "ERROR"]
    assert answer_of(server, post(FOX))[0] == 200

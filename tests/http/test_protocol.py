"""The HTTP edge over a real socket: head cap, read timeouts, framing, errors in the envelope."""

from __future__ import annotations

import json
import logging
import re
import socket
import time
from collections.abc import Iterator

import pytest

from mock_server import Settings, create_app
from mock_server.http import pipeline, protocol
from mock_server.http.pipeline import send_answer
from mock_server.http.protocol import Limits
from mock_server.http.server import BackgroundServer
from mock_server.types import Answer

GENERATIONS = "/v1/images/generations"
VALID = b'{"model": "blackforestlabs/flux-2", "prompt": "a cat", "image_size": "square"}'


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    settings = Settings(max_header_bytes=4096, header_timeout=0.6, body_timeout=0.6)
    with BackgroundServer(create_app(settings)) as running:
        yield running


def connect(server: BackgroundServer) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=5)
    return sock


def exchange(server: BackgroundServer, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw``, read until the server closes or one answer is complete."""
    with connect(server) as sock:
        sock.sendall(raw)
        return read_answer(sock)


def read_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True if the server closes ``sock`` (after whatever it sends) within ``seconds``."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def envelope(status: int, body: bytes) -> str:
    parsed = json.loads(body)
    assert parsed["statusCode"] == status
    assert set(parsed) >= {"message", "path", "requestId", "timestamp"}
    return str(parsed["message"])


def post(body: bytes, *extra: bytes, length: int | None = None) -> bytes:
    head = [
        b"POST " + GENERATIONS.encode() + b" HTTP/1.1",
        b"Host: t",
        b"Authorization: Bearer k",
        b"Content-Type: application/json",
        b"Content-Length: %d" % (len(body) if length is None else length),
        *extra,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def test_a_valid_request_still_gets_200(server: BackgroundServer) -> None:
    status, _headers, body = exchange(server, post(VALID))
    assert status == 200, body
    assert json.loads(body)["data"]


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param([b"X-Big: " + b"a" * 5000], id="one-long-header"),
        pytest.param([b"X-%d: v" % i for i in range(1000)], id="many-headers"),
    ],
)
def test_a_head_over_the_cap_gets_431_and_a_closed_connection(
    server: BackgroundServer, extra: list[bytes]
) -> None:
    with connect(server) as sock:
        sock.sendall(post(VALID, *extra))
        status, _headers, body = read_answer(sock)
        assert status == 431
        assert "more than 4096 bytes" in envelope(431, body)
        assert closed_within(sock, 2)


def test_a_head_over_the_cap_behind_another_request_gets_431(
    server: BackgroundServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second of two requests sent together is measured like the first."""
    # As the fake runs: without uvicorn's access log, which pytest's log capture switches on
    # (the first answer then goes out before the second request is parsed).
    monkeypatch.setattr(logging.getLogger("uvicorn.access"), "hasHandlers", lambda: False)
    small = b"GET /models HTTP/1.1\r\nHost: t\r\n\r\n"
    large = b"GET /models HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n"
    data = wire_bytes(server, small + large)
    assert re.findall(rb"HTTP/1.1 (\d{3}) ", data) == [b"200", b"431"]


def test_a_head_growing_without_end_is_refused_before_it_ends(server: BackgroundServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 200_000)
        status, _, body = read_answer(sock)  # the head has not ended, yet here is the answer
        assert status == 431
        envelope(431, body)
        assert closed_within(sock, 2)


def test_an_idle_connection_is_closed_after_the_header_timeout(server: BackgroundServer) -> None:
    with connect(server) as sock:
        started = time.monotonic()
        assert closed_within(sock, 3)
        assert time.monotonic() - started < 2.5


def test_half_sent_headers_get_408_and_a_closed_connection(server: BackgroundServer) -> None:
    with connect(server) as sock:
        sock.sendall(b"POST /v1/images/generations HTTP/1.1\r\nHost: t\r\n")
        status, _, body = read_answer(sock)
        assert status == 408
        envelope(408, body)
        assert closed_within(sock, 2)


def test_a_stalled_body_closes_the_connection(server: BackgroundServer) -> None:
    with connect(server) as sock:
        sock.sendall(post(VALID[:10], length=len(VALID)))
        started = time.monotonic()
        assert closed_within(sock, 3)
        assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("expect", [False, True], ids=["plain", "expect-100-continue"])
def test_an_oversized_content_length_is_refused_before_the_body(
    server: BackgroundServer, expect: bool
) -> None:
    extra = [b"Expect: 100-continue"] if expect else []
    with connect(server) as sock:
        sock.sendall(post(b"", *extra, length=50_000_000))
        status, headers, body = read_answer(sock)  # no "100 Continue" first: this is the answer
        assert status == 413
        assert "50000000 bytes" in envelope(413, body)
        assert headers["connection"] == "close"


def test_http11_without_host_gets_400(server: BackgroundServer) -> None:
    raw = post(VALID).replace(b"Host: t\r\n", b"")
    status, _, body = exchange(server, raw)
    assert status == 400
    assert "Host header is missing" in envelope(400, body)


def test_http10_without_host_is_served(server: BackgroundServer) -> None:
    raw = post(VALID).replace(b"Host: t\r\n", b"").replace(b"HTTP/1.1", b"HTTP/1.0")
    status, _, _ = exchange(server, raw)
    assert status == 200


@pytest.mark.parametrize(
    ("header", "status", "fragment"),
    [
        (b"Transfer-Encoding: gzip, chunked", 501, "Transfer-Encoding 'gzip, chunked'"),
        (b"Content-Encoding: gzip", 415, "Content-Encoding 'gzip'"),
    ],
    ids=["transfer-gzip", "content-gzip"],
)
def test_codings_the_fake_does_not_decode_are_refused(
    server: BackgroundServer, header: bytes, status: int, fragment: str
) -> None:
    if header.startswith(b"Transfer"):
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(VALID), VALID)
        raw = post(b"", header).replace(b"Content-Length: 0\r\n", b"") + body
    else:
        raw = post(VALID, header)
    got, _, answer = exchange(server, raw)
    assert got == status
    assert fragment in envelope(status, answer)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"NOT HTTP AT ALL\r\n\r\n", id="garbage"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n", id="header-no-colon"),
        pytest.param(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n", id="length"),
    ],
)
def test_malformed_http_gets_the_envelope(server: BackgroundServer, raw: bytes) -> None:
    status, headers, body = exchange(server, raw)
    assert status == 400
    assert headers["content-type"].startswith("application/json")
    assert "Bad Request" in envelope(400, body)


def test_idle_connections_beyond_the_bound_make_room_for_new_clients() -> None:
    app = create_app(Settings())
    background = BackgroundServer(app)
    # What a 1,024-descriptor process gets (~960), scaled down: 20 connections.
    background._server.config._aimlapi_mock_limits = Limits(65536, 10.0, 30.0, 20, 65536)  # type: ignore[attr-defined]
    with background as server:
        crowd = [connect(server) for _ in range(40)]
        try:
            status, _, _ = exchange(server, post(VALID))
            assert status == 200
            closed = sum(closed_within(sock, 0.05) for sock in crowd)
            assert closed >= 20  # the longest idle went first
            assert not closed_within(crowd[-1], 0.05)  # the newest idle one is still open
        finally:
            for sock in crowd:
                sock.close()


# The whole-answer write ------------------------------------------------------------------------

WHOLE_ANSWERS = {
    "/json": Answer(
        200, [(b"content-type", b"application/json"), (b"content-length", b"2")], b"{}"
    ),
    "/close": Answer(
        413,
        [(b"content-length", b"3"), (b"connection", b"keep-alive, Close"), (b"x-a", b"1")],
        b"big",
    ),
    "/mixed-case": Answer(200, [(b"Content-Length", b"2"), (b"X-Trace", b"t")], b"ok"),
    "/empty": Answer(204, [(b"content-length", b"0")], b""),
    "/odd-status": Answer(299, [(b"content-length", b"1")], b"x"),
    # Declined: uvicorn would send these otherwise (or refuse them).
    "/no-length": Answer(200, [(b"content-type", b"text/plain")], b"chunked then"),
    "/wrong-length": Answer(200, [(b"content-length", b"5")], b"toolong"),
    "/bad-value": Answer(200, [(b"content-length", b"2"), (b"x-bad", b"a\x01b")], b"ok"),
    "/bad-name": Answer(200, [(b"content-length", b"2"), (b"x bad", b"v")], b"ok"),
    "/two-lengths": Answer(200, [(b"content-length", b"2"), (b"content-length", b"2")], b"ok"),
}
WHOLE_REQUESTS = [
    b"GET %s HTTP/1.1\r\nHost: h\r\n\r\n",
    b"HEAD %s HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET %s HTTP/1.0\r\n\r\n",
    b"GET %s HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    b"POST %s HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    # Two requests on one connection (the second only once the first is answered).
    b"GET %s HTTP/1.1\r\nHost: h\r\n\r\nGET %s HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
]


async def answering_app(scope: dict[str, object], receive: object, send: object) -> None:
    assert scope["type"] == "http"
    answer = WHOLE_ANSWERS[str(scope["path"])]
    await send_answer(Answer(answer.status, list(answer.headers), answer.body), send)  # type: ignore[arg-type]


def wire_bytes(server: BackgroundServer, raw: bytes) -> bytes:
    """What the server writes for the requests in ``raw``: up to its last answer, or until it
    closes the connection."""
    answers = raw.count(b" HTTP/1.")
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(raw)
        data = b""
        while not _holds_answers(data, answers, head_only=raw.startswith(b"HEAD")):
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
    # The date is the only header that may change between two answers.
    return b"\r\n".join(line for line in data.split(b"\r\n") if not line.startswith(b"date: "))


def _holds_answers(data: bytes, count: int, *, head_only: bool) -> bool:
    for _ in range(count):
        head, found, rest = data.partition(b"\r\n\r\n")
        if not found:
            return False
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            if name.lower() == b"transfer-encoding" and not head_only:
                if b"\r\n0\r\n\r\n" not in rest:
                    return False
                rest = rest.partition(b"\r\n0\r\n\r\n")[2]
        if head_only or head.startswith((b"HTTP/1.1 204", b"HTTP/1.1 304")):
            length = 0
        if len(rest) < length:
            return False
        data = rest[length:]
    return True


def test_whole_answers_go_out_byte_for_byte_as_uvicorn_sends_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    taken: list[bool] = []
    real = protocol.send_whole

    def recording(*args: object) -> bool:
        taken.append(real(*args))  # type: ignore[arg-type]
        return taken[-1]

    monkeypatch.setattr(pipeline, "send_whole", recording)
    seen: dict[bool, list[bytes]] = {}
    with BackgroundServer(answering_app) as server:  # type: ignore[arg-type]
        for whole in (True, False):
            monkeypatch.setattr(protocol, "_WHOLE", whole)
            seen[whole] = [
                wire_bytes(server, request.replace(b"%s", path.encode()))
                for path in WHOLE_ANSWERS
                for request in WHOLE_REQUESTS
            ]
    assert seen[True] == seen[False]
    per_request = len(WHOLE_REQUESTS)
    by_path = {
        path: tuple(seen[True][number * per_request : (number + 1) * per_request])
        for number, path in enumerate(WHOLE_ANSWERS)
    }
    for path, answers in by_path.items():
        if path.startswith("/bad-"):  # uvicorn refuses the header: the connection just closes
            assert set(answers) == {b""}
        else:
            assert all(answer.startswith(b"HTTP/1.1 ") for answer in answers), path
    assert by_path["/close"][0].endswith(b"x-a: 1\r\n\r\nbig")
    assert b"connection: close" in by_path["/json"][2]  # an HTTP/1.0 client is answered so
    # Half the answers are written whole; the others were declined and sent the ASGI way.
    assert taken.count(True) == 5 * 7 and taken.count(False) >= 5 * 7


UPGRADE = (
    b"Connection: Upgrade, HTTP2-Settings",
    b"Upgrade: h2c",
    b"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA",
)
"""What ``curl --http2`` adds to a request over plain http://."""


def chunked(body: bytes, *extra: bytes) -> bytes:
    head = [
        b"POST " + GENERATIONS.encode() + b" HTTP/1.1",
        b"Host: t",
        b"Authorization: Bearer k",
        b"Content-Type: application/json",
        b"Transfer-Encoding: chunked",
        *extra,
    ]
    pieces = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:]))
    return b"\r\n".join(head) + b"\r\n\r\n" + pieces + b"0\r\n\r\n"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(post(VALID, *UPGRADE), id="content-length"),
        pytest.param(chunked(VALID, *UPGRADE), id="chunked"),
    ],
)
@pytest.mark.parametrize("split", [None, 10], ids=["whole", "body-in-pieces"])
def test_a_request_asking_to_upgrade_is_answered_with_its_body(
    server: BackgroundServer, raw: bytes, split: int | None
) -> None:
    """The fake speaks HTTP/1.1 only: ``Upgrade`` is ignored, the body still read."""
    with connect(server) as sock:
        if split is None:
            sock.sendall(raw)
        else:
            at = raw.index(b"\r\n\r\n") + 4 + split
            sock.sendall(raw[:at])
            time.sleep(0.05)
            sock.sendall(raw[at:])
        status, headers, body = read_answer(sock)
        assert status == 200, body
        assert json.loads(body)["data"]
        assert "upgrade" not in headers
        # The connection goes on: another request on it, asking again, is read right too.
        sock.sendall(post(b'{"model": "blackforestlabs/flux-2"}', *UPGRADE))
        status, _headers, body = read_answer(sock)
    assert status == 400
    assert "prompt: Required" in envelope(400, body)


def test_requests_sent_together_after_an_upgrade_request_are_each_answered(
    server: BackgroundServer,
) -> None:
    upgrade_get = (
        b"GET /files/x.png HTTP/1.1\r\nHost: t\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
    )
    data = wire_bytes(server, upgrade_get + post(VALID, *UPGRADE) + post(VALID))
    assert re.findall(rb"HTTP/1.1 (\d{3}) ", data) == [b"404", b"200", b"200"]


def test_many_upgrade_requests_sent_together_are_each_answered(server: BackgroundServer) -> None:
    """Each one hands the rest of the data to a fresh parser: in a loop, not ever deeper."""
    one = b"GET /files/x.png HTTP/1.1\r\nHost: t\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
    data = wire_bytes(server, one * 2000)
    assert data.count(b"HTTP/1.1 404 ") == 2000

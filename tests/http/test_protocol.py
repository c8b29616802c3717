"""The HTTP edge over a real socket: head cap, read timeouts, framing, errors in the envelope."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from mock_server import Settings, create_app
from mock_server.http.protocol import Limits
from mock_server.http.server import BackgroundServer

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
    background._server.config._aimlapi_mock_limits = Limits(65536, 10.0, 30.0, 20)  # type: ignore[attr-defined]
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

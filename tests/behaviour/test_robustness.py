"""Hostile input and load: never a 5xx, always the error envelope, never a hang, memory flat.

The default run fuzzes a few hundred requests; ``AIMLAPI_MOCK_LONG_TESTS=1`` fuzzes 10,000 and
adds the soak test (64 connections for a minute). All traffic goes to 127.0.0.1, and every loop
is bounded in count and in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bench.load import drive
from bench.workload import URL_SECRET, mixed_requests
from mock_server import Settings, create_app
from mock_server.http.app import FakeApp
from mock_server.http.server import BackgroundServer

LONG = os.environ.get("AIMLAPI_MOCK_LONG_TESTS") == "1"
FUZZ_EXAMPLES = 10_000 if LONG else 300
SOCKET_EXAMPLES = 2_000 if LONG else 60
REQUEST_TIMEOUT = 5.0
ENVELOPE_KEYS = {"message", "path", "requestId", "statusCode", "timestamp"}
MODEL = "blackforestlabs/flux-2"
VALID = {"model": MODEL, "prompt": "a lighthouse at dusk", "image_size": "square"}
GENERATIONS = ("/v1/images/generations", "/images/generations")
SERVE = [sys.executable, "-m", "mock_server", "serve", "--no-access-log", "--log-level", "warning"]

# --- what a hostile client sends --------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["square", "png", MODEL, "\ud800"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["model", "prompt", "image_size", "width", "height", "num_images", "seed"]
            )
            | st.text(max_size=4),
            inner,
            max_size=4,
        )
    ),
    max_leaves=10,
)


def _mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    """``valid`` cut short, with a byte changed, or with a span repeated."""
    n = len(valid)
    return st.one_of(
        st.integers(0, n).map(lambda i: valid[:i]),
        st.tuples(st.integers(0, n - 1), st.integers(0, 255)).map(
            lambda change: valid[: change[0]] + bytes([change[1]]) + valid[change[0] + 1 :]
        ),
        st.tuples(st.integers(0, n), st.integers(1, 200)).map(
            lambda span: valid[: span[0]] + valid[span[0] :][:10] * span[1]
        ),
    )


VALID_BYTES = json.dumps(VALID).encode()
bodies = st.one_of(
    json_values.map(lambda value: json.dumps(value).encode("utf-8", "surrogatepass")),
    json_values.map(lambda value: {**VALID, "extra": value}).map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from([*VALID, "num_images", "seed"]), json_values).map(
        lambda fields: json.dumps({"model": MODEL, **fields}).encode("utf-8", "surrogatepass")
    ),
    _mutations(VALID_BYTES),
    st.sampled_from([b"", b"NaN", b"[1e999]", b"\xef\xbb\xbf{}", b"[" * 100, b"-" + b"9" * 400]),
    st.binary(max_size=64),
)
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=30
)
authorization = st.sampled_from(["Bearer k", "bearer  k ", "Bearer", "Basic a2V5", "", "Bearer \t"])
content_type = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        'application/json;charset="UTF-8"',
        "application/json; charset=latin-1",
        "application/problem+json",
        "text/plain",
        "multipart/form-data; boundary=x",
        "",
        ";;;",
    ]
)
headers = st.lists(
    st.tuples(
        st.sampled_from(
            ["authorization", "content-type", "content-length", "accept", "x-anything"]
        ),
        authorization | content_type | header_text | st.integers(-5, 10**7).map(str),
    ),
    max_size=6,
)
paths = st.sampled_from([*GENERATIONS, "/", "/v1/images", "/files/x.png", "/files/"]) | st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20
).map(lambda text: "/" + text)
methods = st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE", "OPTIONS", "PATCH"])


# --- in-process: raw ASGI, any bytes in headers and body --------------------------------------


async def call_asgi(
    app: FakeApp, method: str, path: str, header_list: list[tuple[str, str]], chunks: list[bytes]
) -> tuple[int, dict[str, str], bytes]:
    """One request straight through the ASGI interface, the body in ``chunks``."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("utf-8", "surrogateescape"),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")]
        + [(name.encode(), value.encode("latin-1")) for name, value in header_list],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    pending = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks or [b""])
    ]
    started: dict[str, Any] = {}
    body = bytearray()

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await anyio.sleep(REQUEST_TIMEOUT * 2)  # a client that has sent everything, waiting
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
        else:
            body.extend(message.get("body", b""))

    with anyio.fail_after(REQUEST_TIMEOUT):
        await app(scope, receive, send)
    response_headers = {k.decode().lower(): v.decode("latin-1") for k, v in started["headers"]}
    return started["status"], response_headers, bytes(body)


def assert_answer(status: int, response_headers: dict[str, str], body: bytes, method: str) -> None:
    assert status < 500, body[:300]
    if status >= 400 and method != "HEAD":
        assert response_headers["content-type"] == "application/json; charset=utf-8"
        envelope = json.loads(body)
        assert set(envelope) >= ENVELOPE_KEYS, envelope
        assert envelope["statusCode"] == status


@pytest.fixture(scope="module")
def fuzz_app() -> FakeApp:
    return create_app(Settings(max_body_bytes=4096))


@pytest.fixture(scope="module")
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as loop_runner:
        yield loop_runner


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    method=methods,
    path=paths,
    header_list=headers,
    body=bodies,
    cuts=st.lists(st.integers(0, 200), max_size=3),
)
def test_fuzzed_requests_get_an_envelope_never_a_5xx(
    fuzz_app: FakeApp,
    runner: asyncio.Runner,
    method: str,
    path: str,
    header_list: list[tuple[str, str]],
    body: bytes,
    cuts: list[int],
) -> None:
    points = sorted({min(cut, len(body)) for cut in cuts})
    chunks = [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]
    status, response_headers, content = runner.run(
        call_asgi(fuzz_app, method, path, header_list, chunks)
    )
    assert_answer(status, response_headers, content, method)


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(body=bodies, auth=authorization, media=content_type)
def test_fuzzed_bodies_on_the_generation_path(
    fuzz_app: FakeApp, runner: asyncio.Runner, body: bytes, auth: str, media: str
) -> None:
    header_list = [("authorization", auth), ("content-type", media)]
    status, response_headers, content = runner.run(
        call_asgi(fuzz_app, "POST", GENERATIONS[0], header_list, [body])
    )
    assert_answer(status, response_headers, content, "POST")
    if status == 200:
        assert set(json.loads(content)) == {"data", "meta"}


# --- over a real socket -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def socket_server() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app()) as server:
        yield server


@settings(
    max_examples=SOCKET_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(body=bodies, media=content_type, path=st.sampled_from([*GENERATIONS, "/files/x.png"]))
def test_fuzzed_bodies_over_the_wire(
    socket_server: BackgroundServer, body: bytes, media: str, path: str
) -> None:
    connection = http.client.HTTPConnection(
        "127.0.0.1", socket_server.port, timeout=REQUEST_TIMEOUT
    )
    try:
        request_headers = {"Authorization": "Bearer k", "Content-Type": media}
        connection.request("POST", path, body=body, headers=request_headers)
        response = connection.getresponse()
        content = response.read()
    finally:
        connection.close()
    response_headers = {k.lower(): v for k, v in response.getheaders()}
    assert_answer(response.status, response_headers, content, "POST")


# --- several workers --------------------------------------------------------------------------


def _post(port: int, body: dict[str, Any]) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": "Bearer k", "Content-Type": "application/json"}
        connection.request("POST", GENERATIONS[0], json.dumps(body), headers)
        response = connection.getresponse()
        assert response.status == 200
        result: dict[str, Any] = json.loads(response.read())
        return result
    finally:
        connection.close()


def _get(url: str) -> tuple[int, bytes]:
    host_and_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_and_port.partition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/" + path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _worker_pids(parent: int, count: int, timeout: float = 20.0) -> list[int]:
    """The uvicorn worker processes under ``parent`` (spawned, so they run ``spawn_main``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"spawn_main" in command:
                found.append(int(entry.name))
        if len(found) == count:
            return sorted(found)
        time.sleep(0.05)
    raise AssertionError(f"expected {count} worker processes under {parent}, found {found}")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, uses SIGSTOP")
def test_each_worker_serves_image_urls_the_other_issued() -> None:
    """With one worker paused, the other alone accepts connections: so each side is certain.

    Worker A issues a URL while B is paused; then A is paused and B, which never saw that
    generation, renders the image from the URL alone. And the other way round.
    """
    port = _free_port()
    process = serve_workers(port)
    paused: list[int] = []
    try:
        workers = _worker_pids(process.pid, 2)
        _wait_until_serving(port)
        for issuer, renderer in (workers, workers[::-1]):
            os.kill(renderer, signal.SIGSTOP)
            paused.append(renderer)
            body = {**VALID, "prompt": f"issued by {issuer}", "output_format": "webp"}
            (entry,) = _post(port, body)["data"]
            # Answered by the issuer once it has journalled the generation (into the store the
            # workers share): paused before that, it would hold the store's lock.
            assert _get(f"http://127.0.0.1:{port}/__mock/health")[0] == 200
            os.kill(renderer, signal.SIGCONT)
            paused.remove(renderer)
            os.kill(issuer, signal.SIGSTOP)
            paused.append(issuer)
            status, content = _get(entry["url"])
            os.kill(issuer, signal.SIGCONT)
            paused.remove(issuer)
            assert status == 200
            image = Image.open(io.BytesIO(content))
            assert (image.format, image.size) == ("WEBP", (512, 512))
    finally:
        for pid in paused:
            with contextlib.suppress(ProcessLookupError):  # so the real failure shows
                os.kill(pid, signal.SIGCONT)
        stop(process)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_serving(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            _post(port, VALID)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# --- soak -------------------------------------------------------------------------------------


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.mark.long
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_soak_64_connections_for_a_minute() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [*SERVE, "--port", str(port), "--url-secret", URL_SECRET],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # so stop() reaches the workers too
    )
    try:
        _wait_until_serving(port)
        requests = mixed_requests(random.Random(7), 20_000, image_pool=1000)
        base_url = f"http://127.0.0.1:{port}"
        warm_up = asyncio.run(drive(base_url, requests, mode="random", connections=64, seconds=20))
        rss_warm = _rss(process.pid)
        soak = asyncio.run(drive(base_url, requests, mode="random", connections=64, seconds=60))
        rss_end = _rss(process.pid)
    finally:
        stop(process)
    for result in (warm_up, soak):
        assert not result.transport_errors, result.transport_errors
        assert result.count(500, 599) == 0, result.statuses
        assert result.count(200, 200) > 0 and result.count(400, 400) > 0
    assert soak.requests > 10_000, f"only {soak.requests} requests in 60 s"
    growth = rss_end / rss_warm - 1
    print(f"soak: {soak.requests} requests, RSS {rss_warm / 2**20:.0f} -> {rss_end / 2**20:.0f} MB")
    assert growth < 0.10, f"RSS grew {growth:.0%} after warm-up"


def serve_workers(port: int, workers: int = 2) -> subprocess.Popen[bytes]:
    """``serve --workers`` in a session of its own, so :func:`stop` reaches the workers too."""
    return subprocess.Popen(
        [*SERVE, "--workers", str(workers), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a served fake and its workers (its own session); kill them if they linger."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGCONT)  # a worker a test paused must see the signal
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=20)

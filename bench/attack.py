"""Replay the hardening issue's attacks against ``aimlapi-mock serve`` and report the figures.

    python -m bench.attack            # about a minute; loopback only, every loop bounded

Starts the fake in a child process with a 1,024-descriptor limit, then: hostile journal bodies,
a transport fault, 1000 bodies of 1 MB (resident memory after), reading the whole journal back
(time, and the worst delay it caused another client), oversized heads, slow and idle clients,
1,100 idle connections (can a new client still get in?), framing the fake does not take,
cross-origin and malformed admin calls, and oversized image tokens. Exit status 1 if any answer
was a 5xx, a check failed, or a new client was locked out.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import multiprocessing
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mock_server.images.tokens import encode_image_token
from mock_server.types import ImageSpec

SECRET = "attack-bench-secret"
GENERATIONS = "/v1/images/generations"
AUTH = {"Authorization": "Bearer k", "Content-Type": "application/json"}
IDLE_CONNECTIONS = 1100
DESCRIPTOR_LIMIT = 1024
MB_BODIES = 1000


@dataclass
class Tally:
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)

    def saw(self, status: int) -> int:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        return status

    def check(self, ok: bool, what: str) -> None:
        print(f"  {'ok ' if ok else 'FAIL'} {what}", flush=True)
        if not ok:
            self.failures.append(what)


def start() -> tuple[subprocess.Popen[bytes], int]:
    def limit_descriptors() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(DESCRIPTOR_LIMIT, hard), hard))

    command = [sys.executable, "-m", "mock_server", "serve", "--port", "0", "--no-access-log"]
    command += ["--log-level", "warning", "--url-secret", SECRET, "--header-timeout", "5"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, preexec_fn=limit_descriptors)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    port = int(line.rsplit(":", 1)[1])
    return process, port


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def raw(port: int, data: bytes, wait: float = 10.0) -> bytes:
    """Send ``data`` and read until the server closes (or ``wait`` seconds pass)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
        return received


def status_of(answer: bytes) -> int:
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0


def journal_and_admin(port: int, tally: Tally) -> None:
    print("journal and admin", flush=True)
    for body in (
        b'{"model": "blackforestlabs/flux-2", "prompt": NaN, "seed": 1e999}',
        b"[" * 1000 + b"]" * 1000,
        b'{"model": "blackforestlabs/flux-2", "prompt": "\\ud800x"}',
    ):
        tally.saw(request(port, "POST", GENERATIONS, body, AUTH)[0])
    with contextlib.suppress(http.client.RemoteDisconnected):  # what the close fault does
        request(port, "POST", GENERATIONS, b"{}", {**AUTH, "Prefer": "close"})
    status = tally.saw(request(port, "GET", "/__mock/requests")[0])
    tally.check(
        status == 200, f"journal readable after hostile bodies and a close fault ({status})"
    )
    form = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
    status = tally.saw(request(port, "POST", "/__mock/faults", b"code=503", form)[0])
    tally.check(status == 403, f"cross-origin text/plain fault injection refused ({status})")
    deep = b"[" * 5000 + b"]" * 5000
    json_type = {"Content-Type": "application/json"}
    status = tally.saw(request(port, "POST", "/__mock/faults", deep, json_type)[0])
    tally.check(status == 400, f"5000-deep admin JSON gets 400 ({status})")
    typed = b'{"code": 503, "model": {"x": 1}}'
    status = tally.saw(request(port, "POST", "/__mock/faults", typed, json_type)[0])
    tally.check(status == 400, f"mistyped rule gets 400 ({status})")


def megabyte_bodies(port: int, pid: int, tally: Tally) -> None:
    print(f"{MB_BODIES} bodies of 1 MB", flush=True)
    before = rss_mb(pid)
    prompt = "x" * (1_000_000 - 80)
    body = json.dumps({"model": "blackforestlabs/flux-2", "prompt": prompt}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for _ in range(MB_BODIES):
        connection.request("POST", GENERATIONS, body=body, headers=AUTH)
        response = connection.getresponse()
        response.read()
        tally.saw(response.status)
    connection.close()
    after = rss_mb(pid)
    tally.figures.append(f"RSS {before:.0f} MB -> {after:.0f} MB after {MB_BODIES} x 1 MB bodies")
    tally.check(after - before < 150, f"RSS grew {after - before:.0f} MB (< 150 MB)")

    print("reading the journal back", flush=True)
    # The other client is a process of its own: a thread here would queue for this process's
    # GIL behind the page reader, and measure that instead of the server.
    context = multiprocessing.get_context("fork")
    phase = context.Value("i", 0)  # 0: alone, 1: while the journal is read, 2: stop
    receiver, sender = context.Pipe(duplex=False)
    watcher = context.Process(target=_other_client, args=(port, phase, sender))
    watcher.start()
    time.sleep(3)  # the other client alone first: its waits on this machine as it is
    phase.value = 1
    started = time.perf_counter()
    offset, entries, pages = 0, 0, 0
    while pages < 100:
        status, headers, content = request(
            port, "GET", f"/__mock/requests?offset={offset}&limit=100"
        )
        tally.saw(status)
        page = json.loads(content)
        entries, offset, pages = entries + len(page), offset + len(page), pages + 1
        if "Link" not in headers and "link" not in headers:
            break
    took = time.perf_counter() - started
    phase.value = 2
    samples: list[tuple[int, float]] = receiver.recv()
    watcher.join()
    peak = rss_mb(pid)

    def waits(wanted: int) -> str:
        found = sorted(seconds * 1000 for which, seconds in samples if which == wanted)
        if not found:
            return "no samples"
        p99 = found[min(len(found) - 1, int(len(found) * 0.99))]
        return f"median {statistics.median(found):.1f} ms, p99 {p99:.0f} ms, max {found[-1]:.0f} ms"

    tally.figures.append(
        f"journal read back: {entries} entries in {pages} pages, {took:.2f} s, RSS then "
        f"{peak:.0f} MB; another client's waits meanwhile: {waits(1)} (alone: {waits(0)})"
    )
    tally.check(took < 5, f"whole journal read in {took:.2f} s (< 5 s)")


def _other_client(port: int, phase: Any, results: Any) -> None:
    samples = []
    while phase.value != 2:
        which = phase.value
        started = time.perf_counter()
        request(port, "GET", "/files/none.png")
        samples.append((which, time.perf_counter() - started))
        time.sleep(0.005)
    results.send(samples)


def heads_and_framing(port: int, tally: Tally) -> None:
    print("heads, framing, timeouts", flush=True)
    big = b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * 50_000_000 + b"\r\n\r\n"
    started = time.monotonic()
    status = tally.saw(status_of(raw(port, big)))
    tally.check(
        status == 431, f"50 MB header line gets 431 ({status}, {time.monotonic() - started:.2f} s)"
    )
    many = b"GET / HTTP/1.1\r\nHost: t\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(10_000))
    status = tally.saw(status_of(raw(port, many + b"\r\n")))
    tally.check(status == 431, f"10k headers get 431 ({status})")
    expect = (
        b"POST /v1/images/generations HTTP/1.1\r\nHost: t\r\nContent-Length: 50000000\r\n"
        b"Expect: 100-continue\r\nAuthorization: Bearer k\r\nContent-Type: application/json\r\n\r\n"
    )
    answer = raw(port, expect)
    status = tally.saw(status_of(answer))
    tally.check(status == 413 and b"100 Continue" not in answer, f"Expect + huge length: {status}")
    for name, data, wanted in (
        ("no Host", b"GET /x HTTP/1.1\r\n\r\n", 400),
        ("TE gzip", b"POST /v1/images/generations HTTP/1.1\r\nHost: t\r\n"
         b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
        ("CE gzip", b"POST /v1/images/generations HTTP/1.1\r\nHost: t\r\n"
         b"Content-Encoding: gzip\r\nContent-Length: 0\r\n\r\n", 415),
        ("malformed", b"NOT HTTP\r\n\r\n", 400),
    ):  # fmt: skip
        answer = raw(port, data)
        status = tally.saw(status_of(answer))
        envelope = b'"statusCode":' in answer
        tally.check(status == wanted and envelope, f"{name}: {status} with the envelope")
    for name, data in (
        ("idle", b""),
        ("half-sent head", b"POST / HTTP/1.1\r\nHost: t\r\n"),
        ("half-sent body", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nab"),
    ):
        started = time.monotonic()
        raw(port, data, wait=40)
        took = time.monotonic() - started
        tally.check(took < 35, f"{name} connection closed after {took:.1f} s")
    big_spec = ImageSpec("blackforestlabs/flux-2", "p", 4096, 4096, "png", 1, 0)
    token = encode_image_token(big_spec, SECRET.encode())
    status = tally.saw(request(port, "GET", f"/files/{token}.png")[0])
    tally.check(status == 404, f"4096x4096 token (beyond the specs' 2048) gets 404 ({status})")


def idle_crowd(port: int, tally: Tally) -> None:
    print(f"{IDLE_CONNECTIONS} idle connections", flush=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < IDLE_CONNECTIONS + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, IDLE_CONNECTIONS + 200), hard))
    crowd = []
    for _ in range(IDLE_CONNECTIONS):
        try:
            crowd.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        except OSError:
            break
    time.sleep(0.5)
    started = time.monotonic()
    try:
        status = tally.saw(
            request(
                port,
                "POST",
                GENERATIONS,
                b'{"model": "blackforestlabs/flux-2", "prompt": "a"}',
                AUTH,
            )[0]
        )
    except OSError as error:
        status = 0
        tally.failures.append(f"new client failed: {error}")
    took = time.monotonic() - started
    closed = 0
    for sock in crowd:
        sock.settimeout(0.001)
        try:
            if sock.recv(1) == b"":
                closed += 1
        except (TimeoutError, BlockingIOError):
            pass
        except OSError:
            closed += 1
        sock.close()
    tally.figures.append(
        f"{len(crowd)} idle connections held: a new client got {status} in {took * 1000:.0f} ms; "
        f"{closed} idle ones were closed to make room"
    )
    tally.check(status == 200, f"no lock-out at {len(crowd)} idle connections ({status})")


def main() -> int:
    process, port = start()
    tally = Tally()
    steps: list[Callable[[], None]] = [
        lambda: journal_and_admin(port, tally),
        lambda: megabyte_bodies(port, process.pid, tally),
        lambda: heads_and_framing(port, tally),
        lambda: idle_crowd(port, tally),
    ]
    try:
        time.sleep(0.5)
        for step in steps:
            step()
    finally:
        process.terminate()
        process.wait(timeout=10)
    server_errors = sum(
        count for status, count in tally.statuses.items() if status >= 500 and status != 501
    )
    print("\nFigures:")
    for line in tally.figures:
        print(f"  {line}")
    answered = sum(tally.statuses.values())
    print(f"  {answered} answers; 5xx (other than the intended 501): {server_errors}")
    print(f"  statuses: {dict(sorted(tally.statuses.items()))}")
    if tally.failures or server_errors:
        print("FAILED: " + "; ".join(tally.failures))
        return 1
    print("PASSED")
    return 0


if __name__ == "__main__":
    sys.exit(main())

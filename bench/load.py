"""Load generators: wrk (from Debian's ``wrk`` package) when present, else a Python driver.

Both replay a list of :class:`~bench.workload.Request` over keep-alive connections and report a
:class:`LoadResult`. wrk is the one to quote: it is C and leaves the server a core of its own.
The Python driver shares a core with nothing but itself, yet it is still slower than the fake, so
its requests per second measure the driver more than the server; it exists for machines without
wrk and for the robustness tests, which need status counts and transport errors, not speed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bench.workload import Request, encode_http, write_replay_file

Mode = Literal["cycle", "once", "random"]
"""How requests are taken from the list: round and round, each once, or at random."""

REPLAY_SCRIPT = Path(__file__).with_name("replay.lua")


@dataclass
class LoadResult:
    """What one load run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: Counter[int] = field(default_factory=Counter)
    transport_errors: Counter[str] = field(default_factory=Counter)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def count(self, low: int, high: int) -> int:
        """How many responses had a status in ``low..high``."""
        return sum(n for status, n in self.statuses.items() if low <= status <= high)


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_load(
    driver: Literal["wrk", "python"],
    base_url: str,
    requests: Sequence[Request],
    *,
    mode: Mode = "cycle",
    connections: int = 16,
    threads: int = 2,
    seconds: float = 5.0,
    limit: int = 0,
    timeout: float = 10.0,
) -> LoadResult:
    """Send ``requests`` to ``base_url`` for ``seconds`` (or until ``limit`` responses)."""
    if driver == "wrk":
        return run_wrk(
            base_url, requests, mode=mode, connections=connections, threads=threads,
            seconds=seconds, limit=limit, timeout=timeout,
        )  # fmt: skip
    return asyncio.run(
        drive(base_url, requests, mode=mode, connections=connections, seconds=seconds,
              limit=limit, timeout=timeout)
    )  # fmt: skip


def run_wrk(
    base_url: str,
    requests: Sequence[Request],
    *,
    mode: Mode,
    connections: int,
    threads: int,
    seconds: float,
    limit: int,
    timeout: float,
) -> LoadResult:
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    threads = max(1, min(threads, connections))
    per_thread_limit = -(-limit // threads) if limit else 0
    with tempfile.TemporaryDirectory(prefix="aimlapi-bench-") as scratch:
        replay = write_replay_file(Path(scratch) / "requests.txt", requests)
        command = [
            wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
            f"--timeout={max(1, round(timeout))}s", "-s", str(REPLAY_SCRIPT), base_url,
            "--", str(replay), mode, str(per_thread_limit), str(threads),
        ]  # fmt: skip
        wall = time.monotonic()
        output, stderr = _run_until_threads_stop(command, threads, seconds + timeout + 30)
        wall = time.monotonic() - wall
    for line in output:
        if line.startswith("BENCH-RESULT "):
            data = json.loads(line.removeprefix("BENCH-RESULT "))
            break
    else:
        raise RuntimeError(f"wrk failed: {stderr.strip()}")
    errors = Counter({k: v for k, v in data["errors"].items() if v and k != "status"})
    latency = data["latency_us"]
    return LoadResult(
        requests=data["requests"],
        # wrk counts its full -d duration even when its threads stopped early.
        seconds=min(data["duration_us"] / 1e6, wall) or wall,
        p50_ms=latency["p50"] / 1000,
        p99_ms=latency["p99"] / 1000,
        statuses=Counter({int(k): v for k, v in data["statuses"].items()}),
        transport_errors=errors,
    )


def _run_until_threads_stop(
    command: list[str], threads: int, timeout: float
) -> tuple[list[str], str]:
    """Run wrk; interrupt it once every thread has stopped (wrk would sleep out ``-d``)."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    assert process.stdout is not None and process.stderr is not None
    timer = threading.Timer(timeout, process.kill)
    timer.start()
    lines: list[str] = []
    done = 0
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("BENCH-THREAD-DONE"):
                done += 1
                if done == threads:
                    process.send_signal(signal.SIGINT)
        stderr = process.stderr.read()
        process.wait()
    finally:
        timer.cancel()
    return lines, stderr


async def drive(
    base_url: str,
    requests: Sequence[Request],
    *,
    mode: Mode = "cycle",
    connections: int = 16,
    seconds: float = 5.0,
    limit: int = 0,
    timeout: float = 10.0,
) -> LoadResult:
    """The Python driver: ``connections`` keep-alive connections, each one request at a time.

    Bounded by ``seconds`` and, when given, by ``limit`` responses; a connection that fails is
    counted as a transport error and opened again, at most ``connections`` times over.
    """
    host, _, port_text = base_url.removeprefix("http://").rstrip("/").partition(":")
    port = int(port_text or 80)
    encoded = [encode_http(request, f"{host}:{port}") for request in requests]
    picks = itertools.count()
    rng = random.Random(12345)
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    reconnects = itertools.count()

    def pick() -> bytes | None:
        if mode == "random":
            return rng.choice(encoded)
        index = next(picks)
        if mode == "once" and index >= len(encoded):
            return None
        return encoded[index % len(encoded)]

    def finished() -> bool:
        return time.monotonic() >= deadline or bool(limit and len(latencies) >= limit)

    async def connection() -> None:
        stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while not finished():
                if stream is None:
                    stream = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
                reader, writer = stream
                payload = pick()
                if payload is None:
                    return
                started = time.perf_counter()
                try:
                    writer.write(payload)
                    status, keep_alive = await asyncio.wait_for(read_response(reader), timeout)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
                    errors[type(error).__name__] += 1
                    keep_alive = False
                    if next(reconnects) >= connections:
                        return
                except TimeoutError:
                    errors["timeout"] += 1
                    keep_alive = False
                    if next(reconnects) >= connections:
                        return
                else:
                    latencies.append(time.perf_counter() - started)
                    statuses[status] += 1
                if not keep_alive:
                    writer.close()
                    stream = None
        except (OSError, TimeoutError) as error:
            errors[f"connect {type(error).__name__}"] += 1
        finally:
            if stream is not None:
                stream[1].close()

    started = time.monotonic()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.monotonic() - started
    latencies.sort()
    return LoadResult(
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=_percentile(latencies, 50) * 1000,
        p99_ms=_percentile(latencies, 99) * 1000,
        statuses=statuses,
        transport_errors=errors,
    )


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one HTTP/1.1 response; returns its status and whether the connection stays open."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    headers = head.lower()
    keep_alive = b"\r\nconnection: close" not in headers
    marker = headers.find(b"\r\ncontent-length:")
    if marker >= 0:
        end = headers.index(b"\r\n", marker + 2)
        await reader.readexactly(int(headers[marker + 17 : end]))
    elif b"\r\ntransfer-encoding: chunked" in headers:
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")
    else:
        await reader.read()
        keep_alive = False
    return status, keep_alive


def _percentile(ordered: Sequence[float], percent: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(len(ordered) * percent / 100))]

"""What a recording costs on disk, and how fast a replay answers next to synthesis.

Run: python bench/cassettes.py. Records 5 requests through ``aimlapi-mock record`` from a
loopback fake, then sends 1000 requests (one client, keep-alive) to ``serve --replay`` and to the
plain spec-driven fake, best of three runs each. Reports, asserts nothing: timings depend on
the machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

KEY = "sk-bench-0123456789abcdef"
BODIES = [
    {"model": "blackforestlabs/flux-2", "prompt": "a cat", "seed": 1},
    {"model": "blackforestlabs/flux-2", "prompt": "a cat", "image_size": "square_hd", "seed": 2},
    {"model": "blackforestlabs/flux-2", "prompt": "a dog", "num_images": 2, "seed": 3},
    {"model": "blackforestlabs/flux-2-max", "prompt": "a fox", "seed": 4},
    {"model": "blackforestlabs/flux-2", "prompt": "a cat", "output_format": "webp", "seed": 5},
]
REPLAYS = 1000


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    port = _port()
    command = [sys.executable, "-m", "mock_server", *args, "--port", str(port), "--no-access-log"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            httpx.get(base + "/__mock/requests", timeout=1)
            return process, base
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(20)


def _replay_seconds(base: str) -> float:
    with httpx.Client(base_url=base, headers={"Authorization": "Bearer k"}) as client:
        client.post("/v1/images/generations", json=BODIES[0])  # warm up
        started = time.perf_counter()
        for number in range(REPLAYS):
            answer = client.post("/v1/images/generations", json=BODIES[number % len(BODIES)])
            answer.raise_for_status()
        return time.perf_counter() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        cassette = Path(folder) / "five"
        upstream, upstream_url = _start("serve", "--auth", KEY)
        recorder, proxy = _start(
            "record", "--cassette", str(cassette), "--upstream", upstream_url,
            env={**os.environ, "AIMLAPI_KEY": KEY},
        )  # fmt: skip
        with httpx.Client(base_url=proxy, headers={"Authorization": "Bearer k"}) as client:
            for body in BODIES:
                client.post("/v1/images/generations", json=body, timeout=60).raise_for_status()
        _stop(recorder)
        _stop(upstream)
        files = [path for path in cassette.rglob("*") if path.is_file()]
        exchanges = sum(p.stat().st_size for p in files if p.suffix == ".json")
        images = sum(p.stat().st_size for p in files if p.suffix != ".json")
        print(
            f"5 recorded requests: {exchanges + images} bytes on disk ({len(files)} files: "
            f"{exchanges} bytes of exchanges, {images} bytes of images)"
        )
        for label, args in (
            ("replay", ("serve", "--replay", str(cassette), "--replay-miss", "error")),
            ("spec-driven fake", ("serve",)),
        ):
            server, base = _start(*args)
            try:
                # The best of three: on a shared machine the others' load is noise.
                seconds = min(_replay_seconds(base) for _ in range(3))
            finally:
                _stop(server)
            print(
                f"{REPLAYS} requests, {label}: {seconds:.2f} s "
                f"({seconds / REPLAYS * 1000:.2f} ms each)"
            )


if __name__ == "__main__":
    main()

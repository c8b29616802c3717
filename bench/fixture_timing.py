"""How fast the pytest fixtures' fake is ready and reset (targets: ready <= 0.3 s, reset <= 1 ms).

Run: python bench/fixture_timing.py. Reports, asserts nothing: timings depend on the machine.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time

import httpx

from mock_server import Settings, create_app
from mock_server.testing.fake import MockServer

READY_PROBE = """
import time
started = time.perf_counter()
import mock_server.testing.plugin  # what pytest imports when it loads the plugin
imported = time.perf_counter()
from mock_server.testing.fake import MockServer
fake = MockServer().start()
ready = time.perf_counter()
fake.stop()
print(imported - started, ready - imported)
"""


def ready_times(runs: int = 5) -> tuple[list[float], list[float]]:
    imports, starts = [], []
    for _ in range(runs):
        output = subprocess.run(
            [sys.executable, "-c", READY_PROBE], capture_output=True, text=True, check=True
        ).stdout.split()
        imports.append(float(output[0]))
        starts.append(float(output[1]))
    return imports, starts


def reset_times(fake: MockServer, runs: int = 5000) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fake.reset()
        times.append(time.perf_counter() - started)
    return times


def journaled_reset_times(fake: MockServer, runs: int = 200) -> list[float]:
    times = []
    with httpx.Client(base_url=fake.base_url) as client:
        for _ in range(runs):
            for _ in range(5):
                client.post("/v1/images/generations", json={}, headers={"Prefer": "code=503"})
            started = time.perf_counter()
            fake.reset()
            times.append(time.perf_counter() - started)
    return times


def marker_switch_times(fake: MockServer, runs: int = 2000) -> list[float]:
    fake.configure(auth=["k"], faults=["code=503, times=1"])  # builds and caches the app
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fake.configure(auth=["k"], faults=["code=503, times=1"])
        times.append(time.perf_counter() - started)
        fake.reset()
    return times


async def requests_per_second(settings: Settings, count: int = 2000) -> float:
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    body = {"model": "blackforestlabs/flux-2", "prompt": "p"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(100):
            await client.post(
                "/v1/images/generations", json=body, headers={"Authorization": "Bearer k"}
            )
        started = time.perf_counter()
        for _ in range(count):
            await client.post(
                "/v1/images/generations", json=body, headers={"Authorization": "Bearer k"}
            )
    return count / (time.perf_counter() - started)


def show(name: str, values: list[float], unit: float = 1e-3, label: str = "ms") -> None:
    values = sorted(values)
    p99 = values[int(len(values) * 0.99) - 1]
    print(
        f"{name:<44} median {statistics.median(values) / unit:8.3f} {label}"
        f"   p99 {p99 / unit:8.3f} {label}   max {values[-1] / unit:8.3f} {label}"
    )


def main() -> None:
    imports, starts = ready_times()
    show("plugin import (at pytest start)", imports)
    show("session fake ready (specs, app, socket)", starts)
    show("import + ready", [a + b for a, b in zip(imports, starts, strict=True)])
    with MockServer() as fake:
        show("reset (empty journal)", reset_times(fake), 1e-6, "µs")
        show("reset after 5 journaled requests", journaled_reset_times(fake), 1e-6, "µs")
        show("marker switch to a cached app", marker_switch_times(fake), 1e-6, "µs")
    for label, settings in (
        ("journal on (default)", Settings()),
        ("journal off", Settings(journal_size=0)),
        ("journal on, a rule for another model", Settings(faults=("code=500, model=x",))),
    ):
        rate = asyncio.run(requests_per_second(settings))
        print(f"in-process generations/s, {label:<36} {rate:8.0f}")


if __name__ == "__main__":
    main()

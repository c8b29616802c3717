"""What the journal's observers (metrics, the page's event stream) cost a request, in process.

Run: python -m bench.observer_cost. Drives the ASGI app with a fixed scope in a loop, the same
app with and without its observers, alternating in rounds so that noise hits both alike, and
prints the median microseconds per request; then times each observer alone on journal entries
(the fastest round), which a busy machine blurs less. Reports, asserts nothing: timings depend
on the machine.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from mock_server import Settings, create_app
from mock_server.http.app import FakeApp

BODY = json.dumps(
    {
        "model": "blackforestlabs/flux-2",
        "prompt": "A T-Rex relaxing on a beach, lying on a sun lounger and wearing sunglasses.",
        "image_size": {"width": 1472, "height": 512},
    }
).encode()
INVALID = b'{"model": "blackforestlabs/flux-2", "prompt": 1, "image_size": {"width": 1000}}'


def _scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/images/generations",
        "raw_path": b"/v1/images/generations",
        "query_string": b"",
        "root_path": "",
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 50000),
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"authorization", b"Bearer k"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
    }


async def _per_request(app: FakeApp, body: bytes, requests: int) -> float:
    scope = _scope(body)
    message = {"type": "http.request", "body": body, "more_body": False}

    async def receive() -> dict[str, Any]:
        return message

    async def send(_: Any) -> None:
        return None

    started = time.perf_counter()
    for _ in range(requests):
        await app(scope, receive, send)
    return (time.perf_counter() - started) / requests * 1e6


async def _listening(app: FakeApp) -> asyncio.Task[None]:
    async def drain() -> None:
        async for _ in app.events.stream():
            pass

    task = asyncio.ensure_future(drain())
    await asyncio.sleep(0)
    return task


async def main(rounds: int = 15, requests: int = 4000) -> None:
    settings = Settings(journal_size=1000)
    plain, observed, watched = create_app(settings), create_app(settings), create_app(settings)
    plain.pipeline.observers = ()
    listener = await _listening(watched)
    cases = {"no observers": plain, "metrics + events": observed, "+ a page listening": watched}
    for label, body in (("valid generation", BODY), ("invalid request", INVALID)):
        times: dict[str, list[float]] = {name: [] for name in cases}
        for app in cases.values():
            await _per_request(app, body, 500)  # warm up
        for round_ in range(rounds):
            order = list(cases.items())
            order = order[round_ % len(order) :] + order[: round_ % len(order)]
            for name, app in order:
                times[name].append(await _per_request(app, body, requests))
                await asyncio.sleep(0)  # let the listener drain
        base = statistics.median(times["no observers"])
        print(f"{label}:")
        for name, values in times.items():
            median = statistics.median(values)
            print(f"  {name:22} {median:6.2f} µs/request  ({(median / base - 1) * 100:+.1f} %)")
    listener.cancel()
    print("each observer alone, per entry (fed the journal's entries of valid generations):")
    for name, seconds in observer_costs(plain).items():
        print(f"  {name:22} {seconds:6.2f} µs/entry")


def observer_costs(app: FakeApp, rounds: int = 15) -> dict[str, float]:
    """The fastest round's cost per entry of the metrics, and of the stream with no listener."""
    entries = app.journal.entries * 20
    costs: dict[str, list[float]] = {"metrics": [], "events (no page open)": []}
    for _ in range(rounds):
        for name, observer in (("metrics", app.metrics), ("events (no page open)", app.events)):
            started = time.perf_counter()
            for entry in entries:
                observer(entry)
            app.metrics.count_pending()
            costs[name].append((time.perf_counter() - started) / len(entries) * 1e6)
    return {name: min(values) for name, values in costs.items()}


if __name__ == "__main__":
    asyncio.run(main())

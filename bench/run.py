"""``python -m bench``: the fake against a bare Starlette floor, interleaved, as one table.

Every throughput case runs once per round, in an order that rotates from round to round, so a
burst of noise from elsewhere on the machine hits all cases alike; each ratio is taken within its
round, and the table shows medians over the rounds.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from bench import servers
from bench.load import LoadResult, Mode, run_load, wrk_path
from bench.workload import (
    FORMATS,
    GENERATIONS,
    INVALID_BODY,
    MODEL,
    PROMPT,
    RENDER_SIZES,
    VALID_BODY,
    Request,
    image_path,
    mixed_requests,
    render_requests,
)
from mock_server.images.memory import TRIM_INTERVAL_SECONDS
from mock_server.types import ImageSpec

MB = 1024 * 1024
SETTLE_SECONDS = 2 * TRIM_INTERVAL_SECONDS
"""How long after the last answer the memory the fake holds is read."""
CACHE_HIT_IMAGE = ImageSpec(MODEL, PROMPT, 1024, 768, "png", 1, 0)


@dataclass
class Case:
    """A throughput case: who serves it and what is sent, with the target it must meet."""

    name: str
    server: str
    requests: list[Request]
    expected_status: int
    min_ratio: float | None = None
    max_p99_ms: float | None = None
    results: list[LoadResult] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.render_seconds = 2, 2.0, 1.0
        args.mixed_requests, args.startup_runs = 10_000, 3
    missing = [name for name in ("uvloop", "httptools") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"bench: {', '.join(missing)} missing: pip install -e '.[bench]'", file=sys.stderr)
        return 2
    driver: Literal["wrk", "python"] = (
        "wrk" if args.driver == "wrk" or (args.driver == "auto" and wrk_path()) else "python"
    )
    if driver == "wrk" and wrk_path() is None:
        print("bench: wrk not found (apt-get install wrk), or use --driver python", file=sys.stderr)
        return 2
    say = _printer(args.verbose)
    print(
        f"bench: driver {driver}, {args.connections} connections, {args.rounds} rounds of "
        f"{args.seconds:g} s per case; load average before: {_load_average()}",
        flush=True,
    )
    if driver == "python":
        print("bench: the Python driver is slower than the servers, so req/s and ratios mostly "
              "measure the driver; install wrk for numbers worth quoting.")  # fmt: skip

    prism = None if args.no_prism else servers.prism_executable()
    report: dict[str, object] = {"driver": driver}
    with ExitStack() as stack:
        started = {
            "floor": servers.start(
                "floor",
                servers.floor_command(port := servers.free_port()),
                port,
                probe=Request.post("/", VALID_BODY),
            ),
            "fake": servers.start("fake", servers.fake_command(port := servers.free_port()), port),
        }
        if prism is not None:
            spec = servers.REPO / "fixtures" / "specs" / "flux-2.yaml"
            command = servers.prism_command(prism, port := servers.free_port(), spec)
            started["prism"] = servers.start("prism", command, port)
        for server in started.values():
            stack.callback(server.stop)

        cases = _cases(prism is not None)
        load = _loader(driver, args, started)
        load("fake", cases[3].requests, "cycle", 1, 0.5)  # render the cache-hit image once
        for case in cases:  # warm up: first requests, lazy imports, JIT of nothing
            load(case.server, case.requests, "cycle", args.connections, 1.0)
        for round_number in range(args.rounds):
            shift = round_number % len(cases)
            results: dict[str, LoadResult] = {}
            for case in cases[shift:] + cases[:shift]:
                result = load(case.server, case.requests, "cycle", args.connections, args.seconds)
                case.results.append(result)
                results[case.name] = result
                say(f"round {round_number + 1} {case.name}: {result.rps:,.0f} req/s")
            floor = results[cases[0].name].rps
            for case in cases:
                case.ratios.append(results[case.name].rps / floor if floor else 0.0)

        renders = _render_cases(load, args, say)
        startup = _startup(args.startup_runs, prism)
    memory = _memory(driver, args, say)

    _print_table(cases, renders, startup, memory, args)
    print(f"bench: load average after: {_load_average()}")
    if args.json:
        report.update(
            cases={c.name: _summary(c.results, c.ratios) for c in cases},
            renders={name: _summary(results, []) for name, results in renders.items()},
            startup=startup,
            memory=memory,
        )
        Path(args.json).write_text(json.dumps(report, indent=2, default=str))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--driver", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--seconds", type=float, default=5.0, help="per case per round")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--render-seconds", type=float, default=2.0, help="per render case")
    parser.add_argument("--mixed-requests", type=int, default=100_000)
    parser.add_argument("--startup-runs", type=int, default=5)
    parser.add_argument("--no-prism", action="store_true", help="skip Stoplight Prism")
    parser.add_argument("--quick", action="store_true", help="short run, for trying the harness")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="print each run")
    return parser


def _cases(with_prism: bool) -> list[Case]:
    cases = [
        Case("floor: constant JSON, bare Starlette", "floor", [Request("GET", "/")], 200),
        Case("valid generation", "fake", [Request.post(GENERATIONS, VALID_BODY)], 200, 0.65, 3.0),
        Case(
            "invalid request, 3 violations",
            "fake",
            [Request.post(GENERATIONS, INVALID_BODY)],
            400,
            0.4,
        ),
        Case(
            "image GET, cache hit (png 1024×768)",
            "fake",
            [Request("GET", image_path(CACHE_HIT_IMAGE))],
            200,
            0.9,
        ),
    ]
    if with_prism:
        cases.append(
            Case("Prism 5: valid generation", "prism", [Request.post(GENERATIONS, VALID_BODY)], 200)
        )
    return cases


Loader = Callable[[str, list[Request], Mode, int, float], LoadResult]


def _loader(
    driver: Literal["wrk", "python"], args: argparse.Namespace, started: dict[str, servers.Server]
) -> Loader:
    def load(
        server: str, requests: list[Request], mode: Mode, connections: int, seconds: float
    ) -> LoadResult:
        return run_load(
            driver,
            started[server].base_url,
            requests,
            mode=mode,
            connections=connections,
            threads=args.threads,
            seconds=seconds,
        )

    return load


def _render_cases(
    load: Loader, args: argparse.Namespace, say: Callable[[str], None]
) -> dict[str, list[LoadResult]]:
    """First renders: one connection, every URL new (its own seed), for each size and format."""
    renders: dict[str, list[LoadResult]] = {}
    next_seed = 1_000_000
    # A URL list longer than a run can use, at a generous 0.5 ms a render.
    count = int(args.render_seconds / 0.0005) + 10
    for round_number in range(args.rounds):
        for width, height in RENDER_SIZES:
            for image_format in FORMATS:
                requests = render_requests(width, height, image_format, count, next_seed)
                next_seed += count
                result = load("fake", requests, "once", 1, args.render_seconds)
                name = f"first render {image_format} {width}×{height}"
                renders.setdefault(name, []).append(result)
                say(f"round {round_number + 1} {name}: p50 {result.p50_ms:.2f} ms")
    return renders


def _startup(runs: int, prism: str | None) -> dict[str, list[float]]:
    """Seconds from starting the process to the first 200, ``runs`` times each, interleaved."""
    times: dict[str, list[float]] = {"fake": [], "floor": []}
    if prism is not None:
        times["prism"] = []
    for _ in range(runs):
        for name in times:
            port = servers.free_port()
            if name == "fake":
                server = servers.start(name, servers.fake_command(port), port)
            elif name == "floor":
                command = servers.floor_command(port)
                server = servers.start(name, command, port, probe=Request.post("/", VALID_BODY))
            else:
                assert prism is not None
                spec = servers.REPO / "fixtures" / "specs" / "flux-2.yaml"
                server = servers.start(name, servers.prism_command(prism, port, spec), port)
            server.stop()
            times[name].append(server.startup_seconds)
    return times


def _memory(
    driver: Literal["wrk", "python"], args: argparse.Namespace, say: Callable[[str], None]
) -> dict[str, object]:
    """A fresh fake's resident memory before and after ``--mixed-requests`` mixed requests."""
    requests = mixed_requests(random.Random(2024), 20_000, image_pool=1500)
    port = servers.free_port()
    server = servers.start("fake", servers.fake_command(port), port)
    try:
        before = server.rss_bytes()
        result = run_load(
            driver,
            server.base_url,
            requests,
            mode="random",
            connections=args.connections,
            threads=args.threads,
            seconds=600,
            limit=args.mixed_requests,
            timeout=30,
        )
        at_end = server.rss_bytes()
        # What the fake holds once the load is over: the free pages of its last renders go back
        # to the system at most a trim interval later (mock_server.images.memory).
        time.sleep(SETTLE_SECONDS)
        after, peak = server.rss_bytes(), server.rss_bytes("VmHWM")
    finally:
        server.stop()
    say(f"mixed: {result.requests} requests in {result.seconds:.1f} s, {dict(result.statuses)}")
    return {
        "requests": result.requests,
        "seconds": result.seconds,
        "rss_start_mb": before / MB,
        "rss_at_end_mb": at_end / MB,
        "rss_after_mb": after / MB,
        "rss_peak_mb": peak / MB,
        "statuses": dict(result.statuses),
        "server_errors": result.count(500, 599),
        "transport_errors": dict(result.transport_errors),
    }


def _print_table(
    cases: list[Case],
    renders: dict[str, list[LoadResult]],
    startup: dict[str, list[float]],
    memory: dict[str, object],
    args: argparse.Namespace,
) -> None:
    print()
    print(f"Throughput: {args.connections} connections, median of {args.rounds} interleaved rounds")
    header = (
        f"{'case':40} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'× floor':>8} {'range':>11}  target"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        rps = statistics.median(r.rps for r in case.results)
        p50 = statistics.median(r.p50_ms for r in case.results)
        p99 = statistics.median(r.p99_ms for r in case.results)
        ratio = statistics.median(case.ratios)
        spread = f"{min(case.ratios):.2f}–{max(case.ratios):.2f}"
        target = []
        met = True
        if case.min_ratio is not None:
            target.append(f"≥ {case.min_ratio:g}×")
            met &= ratio >= case.min_ratio
        if case.max_p99_ms is not None:
            target.append(f"p99 ≤ {case.max_p99_ms:g} ms")
            met &= p99 <= case.max_p99_ms
        verdict = f"{', '.join(target)}: {'met' if met else 'MISSED'}" if target else ""
        print(f"{case.name:40} {rps:9,.0f} {p50:7.2f} {p99:7.2f} {ratio:8.2f} {spread:>11}  "
              f"{verdict}{_status_note(case.results, case.expected_status)}")  # fmt: skip
    print()
    print("First renders: 1 connection, every request a URL never served before")
    header = f"{'case':40} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7}  target"
    print(header)
    print("-" * len(header))
    for name, results in renders.items():
        rps = statistics.median(r.rps for r in results)
        p50 = statistics.median(r.p50_ms for r in results)
        p99 = statistics.median(r.p99_ms for r in results)
        verdict = ""
        if name == "first render png 2048×2048":
            verdict = f"p50 ≤ 10 ms: {'met' if p50 <= 10 else 'MISSED'}"
        print(f"{name:40} {rps:9,.0f} {p50:7.2f} {p99:7.2f}  {verdict}"
              f"{_status_note(results, 200)}")  # fmt: skip
    print()
    fake_start = statistics.median(startup["fake"])
    others = ", ".join(
        f"{name} {statistics.median(times):.3f} s"
        for name, times in startup.items()
        if name != "fake"
    )
    # The target is in seconds, but a slow machine slows both alike: the ratio says which.
    others += f" (fake ÷ floor: {fake_start / statistics.median(startup['floor']):.2f})"
    print(
        f"Startup to first 200 (median of {len(startup['fake'])}): fake {fake_start:.3f} s "
        f"(≤ 0.25 s: {'met' if fake_start <= 0.25 else 'MISSED'}); {others}"
    )
    rss = float(memory["rss_after_mb"])  # type: ignore[arg-type]
    print(
        f"Memory: RSS {rss:.1f} MB {SETTLE_SECONDS:g} s after {memory['requests']:,} mixed "
        f"requests (at the last answer {float(memory['rss_at_end_mb']):.1f} MB, "  # type: ignore[arg-type]
        f"at start {float(memory['rss_start_mb']):.1f} MB, peak "  # type: ignore[arg-type]
        f"{float(memory['rss_peak_mb']):.1f} MB; ≤ 150 MB: "  # type: ignore[arg-type]
        f"{'met' if rss <= 150 else 'MISSED'}); 5xx: {memory['server_errors']}, "
        f"transport errors: {memory['transport_errors'] or 0}"
    )


def _status_note(results: list[LoadResult], expected: int) -> str:
    unexpected = sum(r.requests - r.statuses.get(expected, 0) for r in results)
    errors = sum(sum(r.transport_errors.values()) for r in results)
    notes = []
    if unexpected:
        notes.append(f"{unexpected} responses not {expected}")
    if errors:
        notes.append(f"{errors} transport errors")
    return f"  [{'; '.join(notes)}]" if notes else ""


def _summary(results: list[LoadResult], ratios: list[float]) -> dict[str, object]:
    return {
        "rps": [r.rps for r in results],
        "p50_ms": [r.p50_ms for r in results],
        "p99_ms": [r.p99_ms for r in results],
        "ratios": ratios,
        "statuses": [dict(r.statuses) for r in results],
    }


def _load_average() -> str:
    try:
        return ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def _printer(verbose: bool) -> Callable[[str], None]:
    def say(message: str) -> None:
        if verbose:
            print(f"  {message}", flush=True)

    return say

"""The ``record`` and ``cassette`` commands of ``aimlapi-mock``: options in, the library works."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from ..config import Settings
from ..contract.settings import KEY_VARIABLE, REAL_API_URL
from ..errors import CassetteError, ConfigError, SpecError
from ..spec.load import load_specs
from .settings import DEFAULT_MAX_REQUESTS, RecordSettings, key_from_env

PROG = "aimlapi-mock"
Serve = Callable[..., int]


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add_settings: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add ``record`` (with every ``serve`` option, through ``add_settings``) and ``cassette``."""
    record = commands.add_parser(
        "record",
        help="serve like 'serve', forwarding API requests to the real API and recording them",
        description="A recording proxy: serves like 'serve' (same routes, same caller auth), "
        "forwards each API request to the upstream with the key from "
        f"{KEY_VARIABLE} (never the caller's Authorization), and writes every exchange and the "
        "images it names into the cassette. Each exchange is checked against the specs; "
        "findings are printed as they happen and, on exit, summarised (exit status 1 if any).",
    )
    record.add_argument("--cassette", metavar="DIR", required=True, help="cassette directory")
    record.add_argument(
        "--upstream", metavar="URL", default=REAL_API_URL, help=f"default {REAL_API_URL}"
    )
    record.add_argument(
        "--max-requests",
        metavar="N",
        type=int,
        default=DEFAULT_MAX_REQUESTS,
        help="image-creating requests sent upstream at most; later ones get a 429 and are not "
        f"sent (default {DEFAULT_MAX_REQUESTS})",
    )
    record.add_argument(
        "--allow-remote",
        action="store_true",
        help="record from an upstream other than this machine or the real API",
    )
    record.add_argument(
        "--upstream-timeout",
        metavar="SECONDS",
        type=float,
        default=120.0,
        help="time the upstream has to answer one request; a 504 after it (default 120)",
    )
    add_settings(record)

    cassette = commands.add_parser("cassette", help="check or summarise recorded cassettes")
    actions = cassette.add_subparsers(dest="cassette_command", metavar="ACTION", required=True)
    verify = actions.add_parser(
        "verify",
        help="re-check cassettes against the specs of today",
        description="Check every recorded exchange against the specs: request and answer "
        "schemas, documented statuses, images at the requested size and format. Exit status 1 "
        "with findings, 0 when clean, 2 for a cassette that does not load.",
    )
    verify.add_argument("directories", nargs="+", metavar="DIR")
    verify.add_argument(
        "--spec", action="append", metavar="PATH", help="OpenAPI file or directory; repeat"
    )
    listing = actions.add_parser("list", help="summarise what cassettes hold")
    listing.add_argument("directories", nargs="+", metavar="DIR")


def record(args: argparse.Namespace, settings: Settings, serve: Serve) -> int:
    """Run the recording proxy until interrupted; 1 if anything drifted, 2 if it cannot start."""
    from .settings import build_recorder

    try:
        key = key_from_env()
        record_settings = RecordSettings(
            cassette=args.cassette,
            upstream=args.upstream,
            max_requests=args.max_requests,
            allow_remote=args.allow_remote,
            timeout=args.upstream_timeout,
        )
        spec_set = load_specs(settings.specs)
        recorder = build_recorder(record_settings, spec_set, key)
    except (ConfigError, SpecError, CassetteError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    print(
        f"{PROG} record: forwarding to {recorder.upstream.base_url}, at most "
        f"{record_settings.max_requests} image-creating requests, into {record_settings.cassette}",
        flush=True,
    )
    with _summary_after_signals():
        serve(
            replace(settings, workers=1, replay=()),
            log_level=args.log_level,
            access_log=not args.no_access_log,
            spec_set=spec_set,
            source=recorder,
        )
    refused = recorder.budget.refused
    print(
        f"{PROG} record: {recorder.recorded} exchange(s) recorded into {record_settings.cassette}"
        + (f"; {refused} refused over the cap" if refused else ""),
        flush=True,
    )
    if recorder.findings:
        print(f"{len(recorder.findings)} finding(s):", flush=True)
        for line in recorder.findings:
            print(f"  {line}", flush=True)
        return 1
    print("no findings", flush=True)
    return 0


@contextmanager
def _summary_after_signals() -> Iterator[None]:
    """Let the summary be printed after Ctrl-C or SIGTERM.

    uvicorn shuts down gracefully on these, then raises the signal again for the handler it
    found; a handler that ignores it lets the recorder carry on to its summary.
    """
    signals = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, lambda *_: None) for number in signals}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def cassette(args: argparse.Namespace) -> int:
    """``cassette verify`` or ``cassette list``; 2 for a cassette or spec that does not load."""
    from .settings import verify_cassette

    try:
        if args.cassette_command == "list":
            for directory in args.directories:
                print("\n".join(list_lines(directory)))
            return 0
        spec_set = load_specs(tuple(args.spec or ()))
        found = [
            (file, finding)
            for directory in args.directories
            for file, finding in verify_cassette(directory, spec_set)
        ]
    except (CassetteError, SpecError, OSError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    for file, finding in found:
        print(f"{file}: {finding}")
    checked = ", ".join(args.directories)
    print(f"{len(found)} finding(s) in {checked}" if found else f"{checked}: no findings")
    return 1 if found else 0


def list_lines(directory: str) -> list[str]:
    """One line per exchange, then the totals and the size on disk."""
    from .cassette import load_cassette

    loaded = load_cassette(directory)
    lines = [f"{directory}:"]
    for exchange in loaded.exchanges:
        count = len(exchange.images)
        lines.append(
            f"  {Path(exchange.file).name}  {exchange.recorded_at}  {exchange.method} "
            f"{exchange.path}  {exchange.model or '-'}  {exchange.status}  "
            f"{count} image{'s' if count != 1 else ''}"
            + (f"  {len(exchange.findings)} finding(s)" if exchange.findings else "")
        )
    on_disk = sum(path.stat().st_size for path in Path(directory).rglob("*") if path.is_file())
    images = len(loaded.image_files)
    lines.append(
        f"  {len(loaded.exchanges)} exchange(s), {images} image file(s), {on_disk} bytes on disk"
    )
    return lines

"""The ``aimlapi-mock`` command: options in, :class:`Settings` out, then the library works."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace

from . import __version__
from .config import Settings
from .contract import cli as contract_cli
from .errors import ConfigError, SpecError
from .http.deviations import DEVIATIONS
from .images.memory import return_large_blocks_to_the_system
from .spec.load import SpecSet, load_specs

PROG = "aimlapi-mock"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for bad options, specs or settings)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command in ("contract", "specs"):
        return contract_cli.main(args)
    try:
        settings = settings_from_args(args, Settings.from_env())
        if args.command == "serve":
            return serve(settings, log_level=args.log_level, access_log=not args.no_access_log)
    except (SpecError, ConfigError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")
    return 2  # pragma: no cover - parser.error exits


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Offline fake of the AI/ML API image-generation endpoint."
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve_parser = commands.add_parser(
        "serve",
        help="start the fake server",
        description="Start the fake. Every option can also be set with the AIMLAPI_MOCK_* "
        "environment variable named in its help; options win over the environment.",
    )
    serve_parser.add_argument(
        "--host", help="interface to listen on (AIMLAPI_MOCK_HOST; default 127.0.0.1)"
    )
    serve_parser.add_argument(
        "--port", type=int, help="port, 0 for any free one (AIMLAPI_MOCK_PORT; default 8000)"
    )
    serve_parser.add_argument(
        "--spec",
        action="append",
        metavar="PATH",
        help="OpenAPI 3.0 file or directory; repeat for more (AIMLAPI_MOCK_SPECS, "
        f"separated by {os.pathsep!r}; default: the bundled flux-2 and flux-2-max specs)",
    )
    serve_parser.add_argument(
        "--workers", type=int, help="worker processes (AIMLAPI_MOCK_WORKERS; default 1)"
    )
    serve_parser.add_argument(
        "--auth",
        nargs="+",
        metavar="MODE_OR_KEY",
        help="'any' accepts any bearer token (default), 'off' needs none, otherwise the accepted "
        "API keys (AIMLAPI_MOCK_AUTH, comma-separated)",
    )
    serve_parser.add_argument(
        "--public-url",
        metavar="URL",
        help="base URL for image links (AIMLAPI_MOCK_PUBLIC_URL; default: the request's own host)",
    )
    serve_parser.add_argument(
        "--max-body-bytes",
        type=int,
        metavar="N",
        help="larger request bodies get 413 (AIMLAPI_MOCK_MAX_BODY_BYTES; default 1048576)",
    )
    serve_parser.add_argument(
        "--image-cache-bytes",
        type=int,
        metavar="N",
        help="memory for rendered images, 0 to disable "
        "(AIMLAPI_MOCK_IMAGE_CACHE_BYTES; default 48 MiB)",
    )
    serve_parser.add_argument(
        "--url-secret",
        metavar="TEXT",
        help="key that signs image URLs (AIMLAPI_MOCK_URL_SECRET); servers sharing it serve each "
        "other's URLs",
    )
    serve_parser.add_argument(
        "--no-admin",
        dest="admin",
        action="store_false",
        default=None,
        help="do not serve the journal and fault controls under /__mock/ (AIMLAPI_MOCK_ADMIN=off)",
    )
    serve_parser.add_argument(
        "--journal-size",
        type=int,
        metavar="N",
        help="requests the journal keeps, 0 for none (AIMLAPI_MOCK_JOURNAL_SIZE; default 1000)",
    )
    serve_parser.add_argument(
        "--fault",
        action="append",
        metavar="RULE",
        help="scripted fault such as 'code=503, times=2'; repeat for more "
        "(AIMLAPI_MOCK_FAULTS, separated by ';')",
    )
    serve_parser.add_argument(
        "--latency",
        metavar="SPEC",
        help="latency of successful generations, such as 'uniform=0.2..1.5, per=image' "
        "(AIMLAPI_MOCK_LATENCY; default none)",
    )
    serve_parser.add_argument(
        "--deviation",
        action="append",
        choices=sorted(DEVIATIONS),
        metavar="NAME",
        help="drift from the spec on purpose, as the real API has; repeat for more "
        f"(AIMLAPI_MOCK_DEVIATIONS, comma-separated): {', '.join(sorted(DEVIATIONS))}",
    )
    serve_parser.add_argument(
        "--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"]
    )
    serve_parser.add_argument(
        "--no-access-log",
        action="store_true",
        help="do not show each request (the journal still keeps them)",
    )
    contract_cli.add_commands(commands)
    return parser


def settings_from_args(args: argparse.Namespace, base: Settings) -> Settings:
    """``base`` (usually from the environment) with the options given on the command line."""
    changes: dict[str, object] = {}
    for name in ("host", "port", "workers", "max_body_bytes", "image_cache_bytes", "url_secret"):
        if getattr(args, name, None) is not None:
            changes[name] = getattr(args, name)
    if getattr(args, "public_url", None) is not None:
        changes["public_base_url"] = args.public_url
    if getattr(args, "spec", None):
        changes["specs"] = tuple(args.spec)
    for name in ("admin", "journal_size", "latency"):
        if getattr(args, name, None) is not None:
            changes[name] = getattr(args, name)
    if getattr(args, "fault", None):
        changes["faults"] = tuple(args.fault)
    if getattr(args, "deviation", None):
        changes["deviations"] = tuple(args.deviation)
    settings = replace(base, **changes)  # type: ignore[arg-type]
    if getattr(args, "auth", None):
        settings = settings.with_auth(args.auth)
    return settings


def serve(settings: Settings, *, log_level: str = "info", access_log: bool = True) -> int:
    """Load the specs (failing fast), say what is served, then run uvicorn until interrupted."""
    import uvicorn

    from .http.app import create_app
    from .http.request_log import ENV_VARIABLE as REQUEST_LOG_VARIABLE
    from .http.request_log import RequestLog

    return_large_blocks_to_the_system()
    spec_set = load_specs(settings.specs)
    for warning in spec_set.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if settings.port == 0:
        settings = replace(settings, port=_free_port(settings.host))
    shown_host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"{PROG} {__version__} serving http://{shown_host}:{settings.port}", flush=True)
    for line in models_summary(spec_set):
        print(f"  {line}", flush=True)
    for name in settings.deviations:
        print(f"  deviation {name}: {DEVIATIONS[name]}", flush=True)
    # Each request is shown by the fake's own batched log: uvicorn's access log would cost the
    # fake ~40 % of its throughput. Info level shows it; --no-access-log or a quieter level not.
    show_requests = access_log and log_level in ("info", "debug")
    if settings.workers == 1:
        observers = (RequestLog(),) if show_requests else ()
        app = create_app(settings, spec_set=spec_set, observers=observers)
        uvicorn.run(
            app, host=settings.host, port=settings.port, log_level=log_level, access_log=False
        )
    else:
        # Each worker process builds its own app from the same settings, via the environment.
        os.environ.update(settings.to_env())
        os.environ[REQUEST_LOG_VARIABLE] = "on" if show_requests else "off"
        uvicorn.run(
            "mock_server.http.app:create_app_from_env",
            factory=True,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            access_log=False,
        )
    return 0


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def models_summary(spec_set: SpecSet) -> list[str]:
    """One line per loaded operation group: ``POST /v1/images/generations: model, model``."""
    lines = []
    for (method, path), by_model in sorted(spec_set.operations.items()):
        lines.append(f"{method} {path}: {', '.join(sorted(by_model))}")
    return lines

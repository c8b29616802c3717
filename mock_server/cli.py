"""The ``aimlapi-mock`` command: options in, :class:`Settings` out, then the library works."""

from __future__ import annotations

import argparse
import contextlib
import errno
import ipaddress
import os
import secrets
import socket
import sys
from collections.abc import Sequence
from dataclasses import replace

from . import __version__
from .config import OPTIONS, Settings
from .contract import cli as contract_cli
from .errors import CassetteError, ConfigError, SpecError
from .http.deviations import DEVIATIONS
from .images.memory import return_large_blocks_to_the_system
from .record import cli as record_cli
from .spec.load import SpecSet, load_specs
from .types import Source

PROG = "aimlapi-mock"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (2 for bad options, specs or settings)."""
    try:
        return _run(argv)
    except BrokenPipeError:
        # Whoever read the output (head, less) has gone: not a failure of this command.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    if args.command in ("contract", "specs"):
        return contract_cli.main(args)
    if args.command == "cassette":
        return record_cli.cassette(args)
    try:
        settings = settings_from_args(args, Settings.from_env())
        if args.command == "serve":
            return serve(settings, log_level=args.log_level, access_log=not args.no_access_log)
        if args.command == "record":
            return record_cli.record(args, settings, serve)
    except (SpecError, ConfigError, CassetteError) as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0  # uvicorn has shut down and re-raised the Ctrl-C: nothing more to say
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
    add_settings_options(serve_parser)
    contract_cli.add_commands(commands)
    record_cli.add_commands(commands, add_settings_options)
    return parser


def add_settings_options(serve_parser: argparse.ArgumentParser) -> None:
    """Every option of :data:`OPTIONS`, and the log options, on a command that serves."""
    for option in OPTIONS:
        where = option.variable + (f", separated by {option.separator!r}" if option.many else "")
        if option.switch is not None:
            serve_parser.add_argument(
                option.flag,
                dest=option.field,
                action="store_const",
                const=option.switch,
                help=f"{option.help} ({where}={option.switch})",
            )
        elif option.many:
            serve_parser.add_argument(
                option.flag,
                dest=option.field,
                action="extend" if option.field == "auth" else "append",
                nargs="+" if option.field == "auth" else None,
                metavar=option.metavar,
                help=f"{option.help} ({where})",
            )
        else:
            serve_parser.add_argument(
                option.flag,
                dest=option.field,
                metavar=option.metavar,
                help=f"{option.help} ({where})",
            )
    serve_parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="how much the fake and uvicorn print (default info: a line per request too)",
    )
    serve_parser.add_argument(
        "--no-access-log",
        action="store_true",
        help="do not show each request (the journal still keeps them)",
    )


def settings_from_args(args: argparse.Namespace, base: Settings) -> Settings:
    """``base`` (usually from the environment) with the options given on the command line."""
    changes: dict[str, object] = {}
    for option in OPTIONS:
        given = getattr(args, option.field, None)
        if given is not None:
            try:
                changes.update(option.from_text(given if isinstance(given, list) else [given]))
            except ConfigError as error:
                raise ConfigError(f"{option.flag}: {error}") from None
    return replace(base, **changes)  # type: ignore[arg-type]


def serve(
    settings: Settings,
    *,
    log_level: str = "info",
    access_log: bool = True,
    spec_set: SpecSet | None = None,
    source: Source | None = None,
) -> int:
    """Load the specs (failing fast), bind the port, say what is served, then run uvicorn
    until interrupted (Ctrl-C: held requests are cut within ~2 s; twice: at once).

    ``source`` answers in front of synthesis (the recorder); it needs one worker.
    """
    from .http.app import create_app
    from .http.pipeline import check_admin_paths
    from .http.request_log import ENV_VARIABLE as REQUEST_LOG_VARIABLE
    from .http.request_log import RequestLog
    from .http.server import StoppingServer, uvicorn_config
    from .images.url_secret import installation_secret

    return_large_blocks_to_the_system()
    spec_set = spec_set or load_specs(settings.specs)
    if settings.admin:  # here, not in each worker: a worker failing at start is restarted
        check_admin_paths(spec_set.paths)
    for warning in spec_set.warnings:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    sock = _listen(settings.host, settings.port)
    settings = replace(settings, port=int(sock.getsockname()[1]))
    if not settings.url_secret:  # workers share one, and never see the file fail differently
        settings = replace(settings, url_secret=installation_secret())
    settings, warnings = exposure(settings)
    shown_host = f"[{settings.host}]" if ":" in settings.host else settings.host
    print(f"{PROG} {__version__} serving http://{shown_host}:{settings.port}", flush=True)
    for line in models_summary(spec_set):
        print(f"  {line}", flush=True)
    if settings.admin:
        print(f"  journal page: http://{shown_host}:{settings.port}/__mock/", flush=True)
    for name in settings.deviations:
        print(f"  deviation {name}: {DEVIATIONS[name]}", flush=True)
    for line in warnings:
        print(f"{PROG}: warning: {line}", file=sys.stderr, flush=True)
    # Each request is shown by the fake's own batched log: uvicorn's access log would cost the
    # fake ~40 % of its throughput. Info level shows it; --no-access-log or a quieter level not.
    show_requests = access_log and log_level in ("info", "debug")
    for cassette in settings.replay:
        print(f"  replaying {cassette} (misses: {settings.replay_miss})", flush=True)
    with sock:  # closed however serving ends (a bad cassette, Ctrl-C, ...)
        if settings.workers == 1 or source is not None:
            observers = (RequestLog(),) if show_requests else ()
            app = create_app(settings, spec_set=spec_set, observers=observers, source=source)
            config = uvicorn_config(app, settings.host, settings.port, log_level=log_level)
            try:
                with contextlib.suppress(KeyboardInterrupt):
                    StoppingServer(config, app).run(sockets=[sock])
            finally:
                app.flush_observers()  # the requests of the last moments before Ctrl-C
        else:
            from uvicorn.supervisors import Multiprocess

            from .controls.shared import SHARED_STATE_VARIABLE, shared_store

            # Each worker process builds its own app from the same settings, via the environment,
            # and shares the journal and fault controls with the others through the store.
            os.environ.update(settings.to_env())
            os.environ[REQUEST_LOG_VARIABLE] = "on" if show_requests else "off"
            config = uvicorn_config(
                "mock_server.http.app:create_app_from_env",
                settings.host,
                settings.port,
                factory=True,
                workers=settings.workers,
                log_level=log_level,
                lifespan="on",  # a worker's request log writes its last batch at shutdown
            )
            with shared_store(settings.faults, settings.latency) as directory:
                os.environ[SHARED_STATE_VARIABLE] = str(directory)
                Multiprocess(config, sockets=[sock]).run()
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, or a one-line :class:`ConfigError` saying why there is none."""
    from .http.server import bind

    try:
        return bind(host, port)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} is in use on {host}") from None
        if error.errno == errno.EACCES:
            raise ConfigError(f"no permission to listen on port {port} of {host}") from None
        reason = error.strerror or str(error)
        raise ConfigError(f"cannot listen on host {host!r}: {reason}") from None
    except (OverflowError, UnicodeError, ValueError) as error:
        raise ConfigError(f"cannot listen on host {host!r}: {error}") from None


def is_loopback(host: str) -> bool:
    """True for addresses only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def exposure(settings: Settings) -> tuple[Settings, list[str]]:
    """``settings`` with an admin token made up if other machines can reach the admin routes
    and none was given; and the warnings to print about what they can reach (none on loopback).
    """
    if is_loopback(settings.host):
        return settings, []
    made_up = settings.admin and settings.admin_token is None
    if made_up:
        settings = replace(settings, admin_token=secrets.token_urlsafe(24))
    lines = [
        f"listening on {settings.host}, not loopback: other machines can reach the fake API "
        "and its image URLs"
    ]
    if settings.admin:
        lines.append(
            "the admin routes under /__mock/ (the journal of request bodies, fault and latency "
            "controls) are exposed too; they need 'Authorization: Bearer <admin token>'"
        )
        if made_up:
            lines.append(f"admin token (made up for this run): {settings.admin_token}")
    if settings.auth == "any":
        lines.append("any bearer token is accepted (--auth KEY to require yours)")
    return settings, lines


def models_summary(spec_set: SpecSet) -> list[str]:
    """One line per loaded operation group: ``POST /v1/images/generations: model, model``."""
    lines = []
    for (method, path), by_model in sorted(spec_set.operations.items()):
        lines.append(f"{method} {path}: {', '.join(sorted(by_model))}")
    return lines

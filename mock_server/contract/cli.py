"""The ``contract`` and ``specs`` commands of ``aimlapi-mock``: options in, the library works.

Kept apart from :mod:`mock_server.contract` so that building the parser (for ``serve`` too) does
not import schemathesis, which only the ``contract`` extra installs.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import SpecError
from ..http.deviations import DEVIATIONS

DEFAULT_REPORT_DIR = "reports"


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``contract`` and ``specs diff`` to the CLI's subcommands."""
    contract = commands.add_parser(
        "contract",
        help="check a server (default: the fake, in-process) against the specs with schemathesis",
        description="Run the contract suite: schemathesis checks of every operation of the specs, "
        "plus checks of the images, the image count and the error envelope. Prints a summary, "
        "writes JUnit XML, and exits 0 only when every check passed. The API key is read from "
        "AIMLAPI_KEY and never printed or written.",
    )
    contract.add_argument(
        "--base-url", metavar="URL", help="server to check (default: the fake, in-process)"
    )
    contract.add_argument(
        "--real",
        action="store_true",
        help="the target costs money (implied for *.aimlapi.com): cost guard on, key from "
        "AIMLAPI_KEY required; the base URL defaults to https://api.aimlapi.com",
    )
    contract.add_argument(
        "--spec",
        action="append",
        metavar="PATH",
        help="OpenAPI file or directory to check against; repeat for more (default: the bundled "
        "specs)",
    )
    contract.add_argument(
        "--max-requests",
        type=int,
        metavar="N",
        help="cap on requests that can create images (default 5 against the real API, no cap "
        "otherwise)",
    )
    contract.add_argument(
        "--max-examples", type=int, metavar="N", help="examples per operation (default 100)"
    )
    contract.add_argument(
        "--report-dir",
        default=DEFAULT_REPORT_DIR,
        metavar="DIR",
        help=f"where to write the JUnit XML and the summary (default: {DEFAULT_REPORT_DIR})",
    )
    contract.add_argument(
        "--dry-run",
        action="store_true",
        help="send nothing: list the requests a run would send and estimate their cost",
    )
    contract.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow sending requests to a host that is not this machine",
    )
    contract.add_argument(
        "--rate-limit", metavar="RATE", help="e.g. 2/s or 100/m (default 1/s against the real API)"
    )
    contract.add_argument("--seed", type=int, help="seed for the generated data (default random)")
    contract.add_argument(
        "--phases",
        metavar="LIST",
        help="comma-separated phases: examples, coverage, fuzzing, stateful (default all; "
        "examples,fuzzing against the real API)",
    )
    contract.add_argument(
        "--deviation",
        action="append",
        choices=sorted(DEVIATIONS),
        metavar="NAME",
        help="make the in-process fake deviate from the spec (to see the findings): "
        + ", ".join(sorted(DEVIATIONS)),
    )
    contract.add_argument(
        "--exclude-check", action="append", metavar="NAME", help="a check not to run; repeatable"
    )

    specs = commands.add_parser("specs", help="work with OpenAPI spec files")
    specs_commands = specs.add_subparsers(dest="specs_command", metavar="COMMAND", required=True)
    diff = specs_commands.add_parser(
        "diff",
        help="summarise what changed between two spec files",
        description="List what changed from OLD to NEW: operations, fields added, removed or "
        "renamed, types, bounds, enums, required, defaults, status codes. Exit status 1 when "
        "they differ, 0 when they do not.",
    )
    diff.add_argument("old", metavar="OLD")
    diff.add_argument("new", metavar="NEW")


def main(args: argparse.Namespace) -> int:
    """Run ``contract`` or ``specs``; 2 for bad options or specs."""
    if args.command == "specs":
        return specs_diff(args.old, args.new)
    return contract(args)


def specs_diff(old: str, new: str) -> int:
    from ..spec.diff import diff_files, render

    try:
        changes = diff_files(old, new)
    except SpecError as error:
        print(f"aimlapi-mock: error: {error}", file=sys.stderr)
        return 2
    print(render(changes, old, new))
    return 1 if changes else 0


def contract(args: argparse.Namespace) -> int:
    try:
        from . import ContractError, ContractSettings, run_contract
        from .settings import KEY_VARIABLE
    except ImportError as error:
        print(
            f"aimlapi-mock: error: the contract suite needs schemathesis ({error}); "
            "install it with: pip install 'aimlapi-mock[contract]'",
            file=sys.stderr,
        )
        return 2
    try:
        settings = ContractSettings(
            base_url=args.base_url,
            real=args.real,
            specs=tuple(args.spec or ()),
            max_examples=args.max_examples,
            max_requests=args.max_requests,
            allow_remote=args.allow_remote,
            dry_run=args.dry_run,
            rate_limit=args.rate_limit,
            seed=args.seed,
            phases=tuple(p.strip() for p in args.phases.split(",") if p.strip())
            if args.phases
            else None,
            deviations=tuple(args.deviation or ()),
            exclude_checks=tuple(args.exclude_check or ()),
            api_key=os.environ.get(KEY_VARIABLE) or None,
        )
        report = run_contract(settings)
    except (ContractError, SpecError) as error:
        print(f"aimlapi-mock: error: {error}", file=sys.stderr)
        return 2
    print(report.summary())
    written = report.write(args.report_dir)
    print(f"Reports: {', '.join(str(path) for path in written)}")
    return 0 if report.passed or settings.dry_run else 1

"""The ``contract`` and ``specs`` commands of ``aimlapi-mock``: options in, the library works.

Kept apart from :mod:`mock_server.contract` so that building the parser (for ``serve`` too) does
not import schemathesis, which only the ``contract`` extra installs.
"""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import SpecError
from .settings import CONTRACT_OPTIONS, settings_from_options

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
    for option in CONTRACT_OPTIONS:
        option.add(contract.add_argument)
    contract.add_argument(
        "--report-dir",
        default=DEFAULT_REPORT_DIR,
        metavar="DIR",
        help=f"where to write the JUnit XML and the summary (default: {DEFAULT_REPORT_DIR})",
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
        from . import ContractError, run_contract
        from .settings import KEY_VARIABLE
    except ImportError as error:
        print(
            f"aimlapi-mock: error: the contract suite needs schemathesis ({error}); "
            "install it with: pip install 'aimlapi-mock[contract]'",
            file=sys.stderr,
        )
        return 2
    try:
        settings = settings_from_options(vars(args), api_key=os.environ.get(KEY_VARIABLE) or None)
        report = run_contract(settings)
    except (ContractError, SpecError) as error:
        print(f"aimlapi-mock: error: {error}", file=sys.stderr)
        return 2
    print(report.summary())
    written = report.write(args.report_dir)
    print(f"Reports: {', '.join(str(path) for path in written)}")
    return 0 if report.passed or settings.dry_run else 1

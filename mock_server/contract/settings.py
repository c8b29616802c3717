"""What a contract run targets and how careful it must be, checked before anything is sent."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from ..http.deviations import DEVIATIONS, check_deviations

TargetKind = Literal["fake", "url", "real"]

REAL_API_URL = "https://api.aimlapi.com"
KEY_VARIABLE = "AIMLAPI_KEY"
DEFAULT_IMAGE_REQUESTS = 5
"""Requests that can create images sent to the real API unless raised explicitly."""
DEFAULT_EXAMPLES = 100
DEFAULT_RATE_LIMIT = "1/s"
PHASES = ("examples", "coverage", "fuzzing", "stateful")
_RATE = re.compile(r"[1-9][0-9]*/[smhd]")


class ContractError(Exception):
    """A contract run that must not start: an unsafe target, a missing key or a bad option."""


@dataclass(frozen=True)
class ContractSettings:
    """One contract run; ``ContractSettings()`` checks the in-process fake and bundled specs.

    ``base_url`` picks a server to test; without it the fake runs in-process. ``real`` marks a
    target where each generation costs money (the default for ``https://api.aimlapi.com``): it
    gets the cost guard (a cap on requests that can create images, no coverage phase, no
    shrinking, a rate limit) and needs a key.
    """

    base_url: str | None = None
    real: bool = False
    specs: tuple[str, ...] = ()
    """OpenAPI files or directories; empty means the bundled specs."""
    max_examples: int | None = None
    """Examples per operation and phase; default 100, or the request budget when guarded."""
    max_requests: int | None = None
    """Cap on requests that can create images; default 5 when guarded, none otherwise."""
    allow_remote: bool = False
    """Needed to send anything to a host that is not this machine."""
    dry_run: bool = False
    rate_limit: str | None = None
    seed: int | None = None
    phases: tuple[str, ...] | None = None
    """Phases to run; default all of them, or examples and fuzzing when guarded."""
    deviations: tuple[str, ...] = ()
    """Deviations for the in-process fake (see :mod:`mock_server.deviations`)."""
    exclude_checks: tuple[str, ...] = ()
    api_key: str | None = field(default=None, repr=False)
    """Sent as the bearer token; never printed or written anywhere."""

    @property
    def target(self) -> TargetKind:
        if self.real or (self.base_url is not None and _is_aimlapi(self.base_url)):
            return "real"
        return "fake" if self.base_url is None else "url"

    @property
    def guarded(self) -> bool:
        """Whether the cost guard applies: any target where generations may cost money."""
        return self.target == "real"

    @property
    def url(self) -> str | None:
        """The base URL requests go to; None for the in-process fake."""
        if self.base_url is not None:
            return self.base_url.rstrip("/")
        return REAL_API_URL if self.real else None

    @property
    def image_request_cap(self) -> int | None:
        if self.max_requests is not None:
            return self.max_requests
        return DEFAULT_IMAGE_REQUESTS if self.guarded else None

    @property
    def active_phases(self) -> tuple[str, ...]:
        if self.phases is not None:
            return self.phases
        return ("examples", "fuzzing") if self.guarded else PHASES

    @property
    def examples(self) -> int:
        if self.max_examples is not None:
            return self.max_examples
        cap = self.image_request_cap
        return max(1, min(DEFAULT_EXAMPLES, cap)) if cap is not None else DEFAULT_EXAMPLES

    @property
    def effective_rate_limit(self) -> str | None:
        return self.rate_limit or (DEFAULT_RATE_LIMIT if self.guarded else None)

    def check(self) -> None:
        """Raise :class:`ContractError` unless this run is safe and sensible to start."""
        url = self.url
        if url is not None and urlsplit(url).scheme not in ("http", "https"):
            raise ContractError(f"base URL {url!r} must start with http:// or https://")
        if url is not None and not self.allow_remote and not self.dry_run and not is_loopback(url):
            raise ContractError(
                f"{url!r} is not on this machine; requests to it can cost money or touch real "
                "data. Pass --allow-remote to send them anyway (try --dry-run first)"
            )
        if self.deviations and self.base_url is not None:
            raise ContractError(
                "deviations apply to the in-process fake only; start a fake with "
                "'aimlapi-mock serve --deviation NAME' to test one over the network"
            )
        try:
            check_deviations(self.deviations)
        except ValueError as error:
            raise ContractError(str(error)) from None
        for name, value in (
            ("max_requests", self.max_requests),
            ("max_examples", self.max_examples),
        ):
            if value is not None and value < 1:
                raise ContractError(f"{name} must be at least 1, got {value!r}")
        if self.rate_limit is not None and not _RATE.fullmatch(self.rate_limit):
            raise ContractError(
                f"rate limit {self.rate_limit!r} is not a number of requests per unit, "
                "like '2/s', '100/m' or '1000/h'"
            )
        unknown = [phase for phase in self.phases or () if phase not in PHASES]
        if unknown:
            raise ContractError(
                f"unknown phase {unknown[0]!r}; expected some of {', '.join(PHASES)}"
            )
        if self.guarded and "coverage" in self.active_phases:
            raise ContractError(
                "the coverage phase sends about 150 requests per operation; it never runs "
                "against a target that costs money"
            )
        if self.guarded and self.api_key is None and not self.dry_run:
            raise ContractError(f"the real API needs a key: set {KEY_VARIABLE} in the environment")

    def describe_target(self) -> str:
        url = self.url
        if url is None:
            deviating = f" with deviations {', '.join(self.deviations)}" if self.deviations else ""
            return f"the fake, in-process{deviating}"
        where = "this machine" if is_loopback(url) else "a remote host"
        kind = "a target that costs money" if self.guarded else "a server"
        return f"{url} ({kind} on {where})"


def is_loopback(url: str) -> bool:
    """Whether ``url`` names this machine (``localhost`` or a loopback address), without DNS."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_aimlapi(url: str) -> bool:
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    return host == "aimlapi.com" or host.endswith(".aimlapi.com")


@dataclass(frozen=True)
class ContractOption:
    """One setting of a contract run, declared once for ``aimlapi-mock contract`` and for
    ``pytest contracts/`` (as ``--contract-<flag>``, where ``in_pytest``).

    ``kind``: ``text``, ``number`` (a whole number), ``switch`` (a flag without a value),
    ``many`` (repeatable) or ``list`` (comma-separated).
    """

    field: str
    flag: str
    help: str
    kind: Literal["text", "number", "switch", "many", "list"] = "text"
    metavar: str | None = None
    in_pytest: bool = True
    choices: tuple[str, ...] | None = None

    def add(self, add_argument: Callable[..., Any], *, prefix: str = "--") -> None:
        """Declare the option with ``add_argument`` (argparse's, or pytest's ``addoption``)."""
        options: dict[str, Any] = {"dest": self.dest(prefix), "help": self.help}
        if self.kind == "switch":
            options["action"] = "store_true"
        else:
            options["metavar"] = self.metavar
        if self.kind == "number":
            options["type"] = int
        if self.kind == "many":
            options["action"] = "append"
        if self.choices is not None:
            options["choices"] = self.choices
        add_argument(prefix + self.flag.removeprefix("--"), **options)

    def dest(self, prefix: str = "--") -> str:
        return ("contract_" if prefix != "--" else "") + self.field

    def value(self, given: Any) -> Any:
        """The ContractSettings value for what the option was given (None when not given)."""
        if self.kind in ("switch",):
            return bool(given)
        if self.kind == "many":
            return tuple(given or ())
        if self.kind == "list":
            if not given:
                return None
            return tuple(part.strip() for part in str(given).split(",") if part.strip())
        return given


CONTRACT_OPTIONS: tuple[ContractOption, ...] = (
    ContractOption(
        "base_url", "--base-url", "server to check (default: the fake, in-process)", metavar="URL"
    ),
    ContractOption(
        "real", "--real", "the target costs money (implied for *.aimlapi.com): cost guard on, "
        f"key from {KEY_VARIABLE} required; the base URL defaults to {REAL_API_URL}",
        "switch", in_pytest=False,
    ),
    ContractOption(
        "specs", "--spec", "OpenAPI file or directory to check against; repeat for more "
        "(default: the bundled specs)", "many", metavar="PATH",
    ),
    ContractOption(
        "max_requests", "--max-requests", "cap on requests that can create images (default "
        f"{DEFAULT_IMAGE_REQUESTS} against the real API, no cap otherwise)", "number",
        metavar="N",
    ),
    ContractOption(
        "max_examples", "--max-examples", f"examples per operation (default {DEFAULT_EXAMPLES})",
        "number", metavar="N",
    ),
    ContractOption(
        "dry_run", "--dry-run", "send nothing: list the requests a run would send and estimate "
        "their cost", "switch", in_pytest=False,
    ),
    ContractOption(
        "allow_remote", "--allow-remote", "allow sending requests to a host that is not this "
        "machine", "switch",
    ),
    ContractOption(
        "rate_limit", "--rate-limit", f"e.g. 2/s or 100/m (default {DEFAULT_RATE_LIMIT} against "
        "the real API)", metavar="RATE",
    ),
    ContractOption(
        "seed", "--seed", "seed for the generated data (default random)", "number", metavar="N"
    ),
    ContractOption(
        "phases", "--phases", f"comma-separated phases: {', '.join(PHASES)} (default all; "
        "examples,fuzzing against the real API)", "list", metavar="LIST",
    ),
    ContractOption(
        "deviations", "--deviation", "make the in-process fake deviate from the spec (to see the "
        f"findings): {', '.join(sorted(DEVIATIONS))}", "many", metavar="NAME",
        in_pytest=False, choices=tuple(sorted(DEVIATIONS)),
    ),
    ContractOption(
        "exclude_checks", "--exclude-check", "a check not to run; repeatable", "many",
        metavar="NAME",
    ),
)  # fmt: skip
"""Every option of a contract run; the CLI and ``contracts/conftest.py`` derive theirs."""


def settings_from_options(
    given: Mapping[str, Any], *, prefix: str = "--", **fixed: Any
) -> ContractSettings:
    """ContractSettings from parsed options (argparse's namespace as a dict, or pytest's), with
    ``fixed`` fields (the API key, the target) on top."""
    values = {
        option.field: option.value(given.get(option.dest(prefix)))
        for option in CONTRACT_OPTIONS
        if prefix == "--" or option.in_pytest
    }
    return ContractSettings(**{**values, **fixed})

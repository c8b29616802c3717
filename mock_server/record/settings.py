"""How one recording is set up, and re-checking a cassette against today's specs."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..contract.guard import Redactor
from ..contract.settings import KEY_VARIABLE, REAL_API_URL
from ..errors import ConfigError
from ..spec.load import SpecSet

# What records is imported when a recording starts: 'aimlapi-mock serve' needs none of it.
if TYPE_CHECKING:
    from .recorder import Recorder, Report
    from .replay import Replay
    from .upstream import Budget

DEFAULT_MAX_REQUESTS = 5


@dataclass(frozen=True)
class RecordSettings:
    """Where a recording goes and where it comes from. The key is never a setting: it is read
    from ``AIMLAPI_KEY`` only, so it is never on a command line or in a settings dump."""

    cassette: str
    upstream: str = REAL_API_URL
    max_requests: int = DEFAULT_MAX_REQUESTS
    """Image-creating requests sent upstream, at most; those beyond get an error answer."""
    allow_remote: bool = False
    """Record from a host other than this machine and the real API."""
    timeout: float = 120.0
    """Seconds the upstream has to answer one request (a 504 after that)."""

    def __post_init__(self) -> None:
        from .upstream import check_upstream

        if self.max_requests < 0:
            raise ConfigError(f"--max-requests must not be negative, got {self.max_requests!r}")
        if not self.timeout > 0:
            raise ConfigError(f"--upstream-timeout must be positive, got {self.timeout!r}")
        try:
            check_upstream(self.upstream, self.allow_remote)
        except ValueError as error:
            raise ConfigError(str(error)) from None


def key_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The upstream's key from ``AIMLAPI_KEY``, or :class:`ConfigError` in one line."""
    key = (os.environ if environ is None else environ).get(KEY_VARIABLE, "").strip()
    if not key:
        raise ConfigError(f"recording needs the upstream's API key in {KEY_VARIABLE}")
    if len(key) < Redactor.MIN_SECRET_CHARS:
        raise ConfigError(
            f"{KEY_VARIABLE} has {len(key)} characters; a key under "
            f"{Redactor.MIN_SECRET_CHARS} cannot be scrubbed from what is written"
        )
    return key


def build_recorder(
    settings: RecordSettings,
    spec_set: SpecSet,
    key: str,
    *,
    budget: Budget | None = None,
    replay: Replay | None = None,
    report: Report | None = None,
) -> Recorder:
    """A recorder writing into ``settings.cassette`` (raises :class:`CassetteError` if it
    cannot), under ``budget`` (default: a cap of ``settings.max_requests`` of its own), telling
    ``report`` each finding (default: printed)."""
    from .cassette import CassetteWriter
    from .recorder import Recorder, print_finding
    from .upstream import Budget, Upstream, check_upstream

    upstream = Upstream(
        check_upstream(settings.upstream, settings.allow_remote), key, settings.timeout
    )
    writer = CassetteWriter(settings.cassette, Redactor(key))
    return Recorder(
        upstream,
        writer,
        spec_set,
        budget or Budget(settings.max_requests),
        replay=replay,
        report=report or print_finding,
    )


def verify_cassette(directory: str | Path, spec_set: SpecSet) -> list[tuple[str, str]]:
    """(exchange file, finding) for every way the cassette drifts from ``spec_set``.

    Raises :class:`CassetteError` for a cassette that does not load.
    """
    from .cassette import load_cassette, media_type_of
    from .drift import DriftChecker

    cassette = load_cassette(directory)
    checker = DriftChecker(spec_set)
    found = []
    for exchange in cassette.exchanges:
        images = [cassette.read_image(image) for image in exchange.images]
        for finding in checker.check(
            exchange.method,
            exchange.path,
            exchange.body,
            exchange.status,
            media_type_of(exchange.response_headers.items()),
            exchange.response_body,
            images,
        ):
            found.append((exchange.file, finding))
    return found

"""Record real traffic once, replay it offline.

:class:`Recorder` forwards API requests to the upstream and writes what came back into a
cassette (:mod:`.cassette`), checked against the specs (:mod:`.drift`); :class:`Replay` answers
from cassettes in front of the spec-driven synthesis. Both are answer sources of the request
pipeline; ``aimlapi-mock record``, ``serve --replay`` and the pytest marker are shells over them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cassette import (
        Cassette,
        CassetteError,
        CassetteWriter,
        Exchange,
        StoredImage,
        load_cassette,
    )
    from .drift import DriftChecker
    from .recorder import Recorder
    from .replay import Replay
    from .settings import RecordSettings, build_recorder, key_from_env, verify_cassette
    from .upstream import Budget, Upstream, UpstreamError

# Imported on first use: the pytest plugin needs CassetteError in every run, Pillow in few.
_HOMES = {
    "Cassette": "cassette",
    "CassetteError": "cassette",
    "CassetteWriter": "cassette",
    "Exchange": "cassette",
    "StoredImage": "cassette",
    "load_cassette": "cassette",
    "DriftChecker": "drift",
    "Recorder": "recorder",
    "Replay": "replay",
    "RecordSettings": "settings",
    "build_recorder": "settings",
    "key_from_env": "settings",
    "verify_cassette": "settings",
    "Budget": "upstream",
    "Upstream": "upstream",
    "UpstreamError": "upstream",
}

__all__ = [
    "Budget",
    "Cassette",
    "CassetteError",
    "CassetteWriter",
    "DriftChecker",
    "Exchange",
    "RecordSettings",
    "Recorder",
    "Replay",
    "StoredImage",
    "Upstream",
    "UpstreamError",
    "build_recorder",
    "key_from_env",
    "load_cassette",
    "verify_cassette",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)

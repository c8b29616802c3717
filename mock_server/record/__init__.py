"""Record real traffic once, replay it offline.

:class:`Recorder` forwards API requests to the upstream and writes what came back into a
cassette (:mod:`.cassette`), checked against the specs (:mod:`.drift`); :class:`Replay` answers
from cassettes in front of the spec-driven synthesis. Both are answer sources of the request
pipeline; ``aimlapi-mock record``, ``serve --replay`` and the pytest marker are shells over them.
"""

from .cassette import Cassette, CassetteError, CassetteWriter, Exchange, StoredImage, load_cassette
from .drift import DriftChecker
from .recorder import Recorder
from .replay import Replay
from .settings import KEY_VARIABLE, RecordSettings, build_recorder, verify_cassette
from .upstream import Budget, Upstream, UpstreamError

__all__ = [
    "KEY_VARIABLE",
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
    "load_cassette",
    "verify_cassette",
]

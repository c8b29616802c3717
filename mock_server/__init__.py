"""An offline fake of the AI/ML API image-generation endpoint, driven by OpenAPI specs.

The names in ``__all__`` are the public API; the sub-packages are internal and may change:

- ``spec``: loading OpenAPI files, converting them to JSON Schema, diffing them;
- ``engine``: the framework-free core (authorise, parse, validate, synthesise);
- ``images``: rendering placeholders, the signed tokens in image URLs, memory;
- ``http``: the request pipeline, admin routes, the app and the in-process server;
- ``controls``: the journal, faults, latency and their rule syntax;
- ``testing``: ``MockServer``, in-process clients and the pytest plugin;
- ``record``: the recording proxy, cassettes and replay;
- ``contract``: the contract-test kit (its own public names live in ``mock_server.contract``).
"""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

__version__ = "0.1.0"

# Imported on first use: the pytest plugin loads this package in every pytest run of a project
# that installs it, and most of those runs never start the fake.
_HOMES = {
    "ApiError": "errors",
    "ConfigError": "errors",
    "SpecError": "errors",
    "ImageRequest": "types",
    "ImageSpec": "types",
    "Operation": "types",
    "Violation": "types",
    "Settings": "config",
    "SpecSet": "spec.load",
    "load_specs": "spec.load",
    "create_app": "http.app",
    "BackgroundServer": "http.server",
    "DEVIATIONS": "http.deviations",
    "Journal": "controls.journal",
    "JournalEntry": "controls.journal",
    "JournalAssertionError": "controls.journal",
    "Fault": "controls.faults",
    "FaultPlan": "controls.faults",
    "FaultRule": "controls.faults",
    "Latency": "controls.latency",
    "CassetteError": "errors",
    "MockServer": "testing.fake",
    "DEFAULT_API_KEY": "testing.fake",
    "sync_client": "testing.clients",
    "async_client": "testing.clients",
}

__all__ = [
    "DEFAULT_API_KEY",
    "DEVIATIONS",
    "ApiError",
    "BackgroundServer",
    "CassetteError",
    "ConfigError",
    "Fault",
    "FaultPlan",
    "FaultRule",
    "ImageRequest",
    "ImageSpec",
    "Journal",
    "JournalAssertionError",
    "JournalEntry",
    "Latency",
    "MockServer",
    "Operation",
    "Settings",
    "SpecError",
    "SpecSet",
    "Violation",
    "__version__",
    "async_client",
    "create_app",
    "load_specs",
    "sync_client",
]

if _TYPE_CHECKING:
    from .config import Settings
    from .controls.faults import Fault, FaultPlan, FaultRule
    from .controls.journal import Journal, JournalAssertionError, JournalEntry
    from .controls.latency import Latency
    from .errors import ApiError, CassetteError, ConfigError, SpecError
    from .http.app import create_app
    from .http.deviations import DEVIATIONS
    from .http.server import BackgroundServer
    from .spec.load import SpecSet, load_specs
    from .testing.clients import async_client, sync_client
    from .testing.fake import DEFAULT_API_KEY, MockServer
    from .types import ImageRequest, ImageSpec, Operation, Violation


def __getattr__(name: str) -> _Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mock_server' has no attribute {name!r}")
    value = getattr(_import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

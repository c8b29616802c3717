"""An offline fake of the AI/ML API image-generation endpoint, driven by OpenAPI specs."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ApiError",
    "ConfigError",
    "ImageRequest",
    "ImageSpec",
    "Operation",
    "Settings",
    "SpecError",
    "SpecSet",
    "Violation",
    "__version__",
    "create_app",
    "load_specs",
]

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
    "SpecSet": "specs",
    "load_specs": "specs",
    "create_app": "app",
}

if TYPE_CHECKING:
    from .app import create_app
    from .config import Settings
    from .errors import ApiError, ConfigError, SpecError
    from .specs import SpecSet, load_specs
    from .types import ImageRequest, ImageSpec, Operation, Violation


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'mock_server' has no attribute {name!r}")
    value = getattr(import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

"""An offline fake of the AI/ML API image-generation endpoint, driven by OpenAPI specs."""

__version__ = "0.1.0"

from .app import create_app
from .config import Settings
from .errors import ApiError, ConfigError, SpecError
from .specs import SpecSet, load_specs
from .types import ImageRequest, ImageSpec, Operation, Violation

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

"""Where aimlapi-mock keeps what outlives a process."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_directory"]


def cache_directory() -> Path:
    """``$XDG_CACHE_HOME/aimlapi-mock`` (``~/.cache/aimlapi-mock`` by default): the URL secret
    and the cache of loaded spec files. A relative ``XDG_CACHE_HOME`` is ignored, as the XDG
    specification says: it would be whatever directory the fake was started in."""
    cache = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(cache):
        cache = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "aimlapi-mock"

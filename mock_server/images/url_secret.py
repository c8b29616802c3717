"""This installation's URL secret: made once, kept in the user's cache directory, never logged.

Image URLs are signed so that only URLs the fake handed out are rendered. A secret built into
the code would let anyone mint URLs for any installation; one made per process would break URLs
across restarts and between workers. So the first server of an installation writes a random
secret to ``$XDG_CACHE_HOME/aimlapi-mock/url-secret`` (``~/.cache`` by default), readable by its
owner only, and every later one (and every worker) reads it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from pathlib import Path

from ..paths import cache_directory

__all__ = ["installation_secret", "secret_path"]

SECRET_BYTES = 32
_made_here: list[str] = []
"""A secret made for this process when the cache directory cannot be written."""


def secret_path() -> Path:
    """Where the installation's secret is kept."""
    return cache_directory() / "url-secret"


def installation_secret() -> str:
    """The secret in :func:`secret_path`, made there first if missing.

    If the directory cannot be written, a secret for this process only (with a warning on
    stderr): its URLs then stop working when it exits.
    """
    path = secret_path()
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        return _fallback(f"cannot read {path}: {error.strerror}")
    secret = secrets.token_urlsafe(SECRET_BYTES)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)  # another worker made it first
    except OSError as error:
        return _fallback(f"cannot write {path}: {error.strerror}")
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(secret + "\n")
    except OSError as error:  # a full disk: no half-written secret is left for the next start
        with contextlib.suppress(OSError):
            path.unlink()
        return _fallback(f"cannot write {path}: {error.strerror}")
    return secret


def _read(path: Path) -> str:
    secret = path.read_text(encoding="ascii", errors="replace").strip()
    if len(secret) < 16:
        raise OSError(0, "the secret in it is too short")
    return secret


def _fallback(reason: str) -> str:
    if not _made_here:
        print(
            f"aimlapi-mock: warning: {reason}; image URLs are signed with a secret of this "
            "process only (set --url-secret to keep them valid across restarts)",
            file=sys.stderr,
        )
        _made_here.append(secrets.token_urlsafe(SECRET_BYTES))
    return _made_here[0]

"""Spec files cached once loaded, as Python caches bytecode: a start-up reads no YAML it has read.

Loading a spec file means parsing it, converting its schemas from OpenAPI to JSON Schema and
checking that a validator accepts each one: about 45 ms for the bundled specs, a sixth of the
fake's start-up. So the operations a file yields are pickled into
``$XDG_CACHE_HOME/aimlapi-mock/specs/`` (``~/.cache`` by default), named by a digest of the file's
path, its bytes, and the code that loads it (this package's version and the loader's own
source). Any change to one of those is a new name: an entry is never stale, only unused. The
oldest entries beyond :data:`MAX_ENTRIES` are deleted.

A directory that cannot be read or written, or an entry that does not unpickle, costs only the
time of loading the file again; a file that fails to load is never cached, so its error is
always the loader's own. Entries are the user's own (a private directory, like the URL secret
beside it), read only by the user's own processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from ..paths import cache_directory
from ..types import Operation

__all__ = ["MAX_ENTRIES", "cached_operations", "spec_cache_directory"]

MAX_ENTRIES = 64

_CODE = (Path(__file__).parent / "load.py", Path(__file__).parent / "oas.py")
_code_digest: bytes | None = None


def spec_cache_directory() -> Path:
    return cache_directory() / "specs"


def cached_operations(
    source: str, raw: bytes, load: Callable[[], list[Operation]]
) -> list[Operation]:
    """The operations of the spec file ``source`` (whose bytes are ``raw``): from the cache, or
    from ``load()``, which are then cached. ``load``'s exceptions propagate, uncached."""
    entry = spec_cache_directory() / f"{_digest(source, raw)}.pickle"
    try:
        with entry.open("rb") as file:
            operations = pickle.load(file)
        if isinstance(operations, list) and all(isinstance(op, Operation) for op in operations):
            return operations
    except Exception:  # missing, unreadable, truncated, or from an incompatible Python
        pass
    operations = load()
    _store(entry, operations)
    return operations


def _digest(source: str, raw: bytes) -> str:
    global _code_digest
    if _code_digest is None:
        code = hashlib.blake2b(__version__.encode(), digest_size=16)
        for path in _CODE:
            with contextlib.suppress(OSError):
                code.update(path.read_bytes())
        _code_digest = code.digest()
    digest = hashlib.blake2b(_code_digest, digest_size=20)
    digest.update(source.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(raw)
    return digest.hexdigest()


def _store(entry: Path, operations: list[Operation]) -> None:
    try:
        entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = pickle.dumps(operations, protocol=pickle.HIGHEST_PROTOCOL)
        # Written aside, then renamed: a reader (another worker) sees a whole entry or none.
        partial = entry.with_name(f"{entry.name}.{os.getpid()}.partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(partial, entry)
        _prune(entry.parent)
    except (OSError, pickle.PicklingError, RecursionError):
        pass  # not cached this time


def _prune(directory: Path) -> None:
    entries = []
    for path in directory.iterdir():
        with contextlib.suppress(OSError):
            entries.append((path.stat().st_mtime, path))
    entries.sort()
    for _, path in entries[: max(0, len(entries) - MAX_ENTRIES)]:
        with contextlib.suppress(OSError):
            path.unlink()

"""Spec files cached once loaded, as Python caches bytecode: a start-up reads no YAML it has read.

Loading a spec file means parsing it, converting its schemas from OpenAPI to JSON Schema and
checking that a validator accepts each one: about 45 ms for the bundled specs, a sixth of the
fake's start-up. So the operations a file yields are kept, as JSON, in
``$XDG_CACHE_HOME/aimlapi-mock/specs/`` (``~/.cache`` by default), named by a digest of the
file's path, its bytes, and the code that loads it (this package's version, the loader's own
source, the Python version). Any change to one of those is a new name: an entry is never stale,
only unused. Entries are used least recently first out, beyond :data:`MAX_ENTRIES`.

An entry is only data (JSON, never code), and is read only from a directory and a file that
belong to the user and that nobody else may write; anything else there is ignored. A directory
that cannot be read or written, or an entry that does not decode, costs only the time of loading
the file again; a file that fails to load is never cached, so its error is the loader's own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from ..paths import cache_directory
from ..types import Operation

__all__ = ["MAX_ENTRIES", "cached_operations", "spec_cache_directory"]

MAX_ENTRIES = 256
"""Entries kept (about 15 kB each for the bundled specs)."""
MAX_ENTRY_BYTES = 16 * 1024 * 1024

_code_digest: bytes | None = None
"""Of the code that makes entries (this sub-package and ``types.py``), read on first use."""


def spec_cache_directory() -> Path:
    return cache_directory() / "specs"


def cached_operations(
    source: str, raw: bytes, load: Callable[[], list[Operation]]
) -> list[Operation]:
    """The operations of the spec file ``source`` (whose bytes are ``raw``): from the cache, or
    from ``load()``, which are then cached. ``load``'s exceptions propagate, uncached."""
    directory = spec_cache_directory()
    entry = directory / f"{_digest(source, raw)}.json"
    if _private_directory(directory):
        found = _read(entry)
        if found is not None:
            return found
    operations = load()
    _store(entry, operations)
    return operations


def _digest(source: str, raw: bytes) -> str:
    global _code_digest
    if _code_digest is None:
        code = hashlib.blake2b(f"{__version__}\0{sys.version}".encode(), digest_size=16)
        here = Path(__file__).parent
        for path in [*sorted(here.glob("*.py")), here.parent / "types.py"]:
            with contextlib.suppress(OSError):
                code.update(path.read_bytes())
        _code_digest = code.digest()
    digest = hashlib.blake2b(_code_digest, digest_size=20)
    digest.update(source.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(raw)
    return digest.hexdigest()


def _private(status: os.stat_result) -> bool:
    """Owned by this user and writable by nobody else (always so where there are no owners)."""
    if not hasattr(os, "getuid"):
        return True
    return status.st_uid == os.getuid() and not status.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _private_directory(directory: Path) -> bool:
    try:
        status = os.stat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(status.st_mode) and _private(status)


def _read(entry: Path) -> list[Operation] | None:
    # No symlinks, no FIFOs or devices (which could block), nothing someone else could write.
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        descriptor = os.open(entry, flags)
    except OSError:
        return None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode) or not _private(status):
            return None
        if status.st_size > MAX_ENTRY_BYTES:
            return None
        with os.fdopen(descriptor, "rb", closefd=False) as file:
            operations = _decode(json.loads(file.read()))
    except Exception:  # unreadable, truncated, not ours: load the file instead
        return None
    finally:
        os.close(descriptor)
    with contextlib.suppress(OSError):
        os.utime(entry)  # used: the last to go
    return operations


def _encode(operations: list[Operation]) -> dict[str, Any]:
    """Operations as JSON, each schema object once (models of one operation share theirs)."""
    schemas: list[Any] = []
    index: dict[int, int] = {}

    def ref(schema: Any) -> int | None:
        if schema is None:
            return None
        if id(schema) not in index:
            index[id(schema)] = len(schemas)
            schemas.append(schema)
        return index[id(schema)]

    return {
        "operations": [
            {
                "method": op.method,
                "path": op.path,
                "model": op.model,
                "source": op.source,
                "operation_id": op.operation_id,
                "request_schema": ref(op.request_schema),
                "success_status": op.success_status,
                "success_schema": ref(op.success_schema),
                "response_schemas": [
                    [status, ref(schema)] for status, schema in op.response_schemas.items()
                ],
                "credits_per_megapixel": op.credits_per_megapixel,
            }
            for op in operations
        ],
        "schemas": schemas,
    }


def _decode(data: Any) -> list[Operation]:
    schemas = data["schemas"]
    operations = []
    for item in data["operations"]:
        fields = dict(item)
        fields["request_schema"] = schemas[item["request_schema"]]
        success = item["success_schema"]
        fields["success_schema"] = None if success is None else schemas[success]
        fields["response_schemas"] = {
            int(status): None if schema is None else schemas[schema]
            for status, schema in item["response_schemas"]
        }
        operations.append(Operation(**fields))
    if not operations or not all(isinstance(op.request_schema, dict) for op in operations):
        raise ValueError("not the operations of a spec file")
    return operations


def _store(entry: Path, operations: list[Operation]) -> None:
    partial = entry.with_name(f"{entry.name}.{os.getpid()}.partial")
    try:
        entry.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not _private_directory(entry.parent):
            return
        text = json.dumps(_encode(operations), separators=(",", ":"))
        if _decode(json.loads(text)) != operations:
            return  # something JSON cannot hold as it is (a YAML date, a number as a key)
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(text)
            # Renamed into place: a reader (another worker) sees a whole entry or none.
            os.replace(partial, entry)
        finally:
            with contextlib.suppress(OSError):
                partial.unlink()
        _prune(entry.parent)
    except (OSError, TypeError, ValueError, RecursionError):
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

"""Keeping a long-running fake's resident memory flat while it renders images of every size.

glibc's malloc raises its mmap threshold each time a large block is freed (up to 32 MiB), after
which image-sized buffers (a 2048×2048 RGB picture is 12 MiB) come from the heap instead of their
own mappings, and fragmentation keeps the freed space resident; each render thread also gets a
heap (an "arena") of its own. Measured after 20,000 mixed requests: about 700 MB resident with
glibc's defaults; about 140 MB with a fixed 16 KiB threshold (every cached image but the smallest
in a mapping of its own, returned when evicted), two arenas, and the free pages inside the heap
handed back (``malloc_trim``) at most once a second after a render. The price is fresh pages
for every large buffer, which slows renders; Pillow keeping its last freed buffer buys most of
that back.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

MMAP_THRESHOLD_BYTES = 16 * 1024
MAX_ARENAS = 2
TRIM_INTERVAL_SECONDS = 1.0
REUSED_IMAGE_BUFFERS = 1
_M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
_M_ARENA_MAX = -8

_Argument = TypeVar("_Argument")
_Result = TypeVar("_Result")

_malloc_trim: Callable[[int], int] | None = None
_last_trim = 0.0
_trim_lock = threading.Lock()
_trim_timer: threading.Timer | None = None
"""The trim scheduled for when the last one is a second old, if one is due."""


def return_large_blocks_to_the_system() -> bool:
    """Tune glibc's malloc as described above; False where there is no glibc.

    Called by the server entry points (the CLI and each worker process) before any request,
    not by :func:`~mock_server.create_app`: a test process that embeds the fake keeps its
    allocator as it was.
    """
    global _malloc_trim
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)  # the symbols the process has loaded, glibc's among them
        mallopt, malloc_trim = libc.mallopt, libc.malloc_trim  # glibc only
    except (OSError, AttributeError):
        return False
    tuned = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_ARENA_MAX, MAX_ARENAS)
    )
    if tuned:
        _malloc_trim = malloc_trim
        # Buffers over the threshold are fresh mappings, so every render would fault in its
        # canvas page by page (a 2048x2048 PNG took 9.5 ms instead of 7); Pillow keeping the
        # last freed one (at most 16 MiB) gives most of that back for a few MB. Pillow is
        # loaded with the first render: the renderer asks allocator_tuned() then.
        render = sys.modules.get(f"{__package__}.render")
        if render is not None:
            render.reuse_image_buffers(REUSED_IMAGE_BUFFERS)
    return tuned


def allocator_tuned() -> bool:
    """Whether :func:`return_large_blocks_to_the_system` has tuned this process's malloc."""
    return _malloc_trim is not None


def then_trim(work: Callable[[_Argument], _Result], argument: _Argument) -> _Result:
    """``work(argument)``, then the heap's free pages back to the system: at most once a second,
    and only once :func:`return_large_blocks_to_the_system` has tuned the allocator. A trim due
    sooner is made a second after the last one, so a burst of renders that ends does not leave
    its garbage resident while the fake idles."""
    try:
        return work(argument)
    finally:
        if _malloc_trim is not None:
            _trim_soon()


def _trim_soon() -> None:
    global _last_trim, _trim_timer
    trim = _malloc_trim
    assert trim is not None
    with _trim_lock:
        wait = _last_trim + TRIM_INTERVAL_SECONDS - time.monotonic()
        if wait <= 0:
            _last_trim = time.monotonic()
            if _trim_timer is not None:
                _trim_timer.cancel()
                _trim_timer = None
        elif _trim_timer is None:
            _trim_timer = threading.Timer(wait, _deferred_trim)
            _trim_timer.daemon = True
            _trim_timer.start()
            return
        else:
            return  # already due, from the timer
    trim(0)  # outside the lock: it takes milliseconds, and other renders go on


def _deferred_trim() -> None:
    global _last_trim, _trim_timer
    with _trim_lock:
        _trim_timer = None
        _last_trim = time.monotonic()
    if _malloc_trim is not None:
        _malloc_trim(0)

"""The rendered images a fake keeps, so a second download of an image costs no render."""

from __future__ import annotations

import threading
from collections import OrderedDict

__all__ = ["ImageCache"]


class ImageCache:
    """A thread-safe LRU cache of rendered images, bounded by their total size in bytes.

    ``max_bytes=0`` disables caching: nothing is stored.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be 0 or more, got {max_bytes!r}")
        self._max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size_bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        """Lookups that found their image (read by the metrics)."""
        self.misses = 0

    @property
    def size_bytes(self) -> int:
        """The total size of the cached images."""
        with self._lock:
            return self._size_bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, key: str) -> bytes | None:
        """The image stored under ``key``, now the most recently used, or None."""
        with self._lock:
            data = self._items.get(key)
            if data is None:
                self.misses += 1
            else:
                self.hits += 1
                self._items.move_to_end(key)
            return data

    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, evicting least recently used images until it fits.

        An image larger than ``max_bytes`` is not stored; an older image under ``key`` is dropped.
        """
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size_bytes -= len(old)
            if self._max_bytes == 0 or len(data) > self._max_bytes:
                return
            while self._size_bytes + len(data) > self._max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._size_bytes -= len(evicted)
            self._items[key] = data
            self._size_bytes += len(data)

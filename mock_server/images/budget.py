"""A memory budget for renders in progress, so concurrent large renders cannot exhaust memory.

A slot limit alone lets four 2048x2048 WebP renders take hundreds of MB at once; the budget makes
a render wait until the estimated memory of those already running leaves room for it. A render
larger than the whole budget runs alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

__all__ = ["MemoryBudget", "render_cost"]

BYTES_PER_PIXEL = 12
"""Working memory per pixel of a render: the RGB picture, its drawing and the encoder's copy."""


def render_cost(width: int, height: int) -> int:
    """Estimated bytes a render of ``width`` x ``height`` takes while it runs."""
    return width * height * BYTES_PER_PIXEL


class MemoryBudget:
    """Up to ``capacity`` bytes held at once by :meth:`hold` (0: no limit)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.held = 0
        self._changed: asyncio.Condition | None = None

    @asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        if not self.capacity:
            yield
            return
        if self._changed is None:
            self._changed = asyncio.Condition()  # made inside the event loop that uses it
        changed = self._changed
        async with changed:
            await changed.wait_for(lambda: not self.held or self.held + size <= self.capacity)
            self.held += size
        try:
            yield
        finally:
            async with changed:
                self.held -= size
                changed.notify_all()

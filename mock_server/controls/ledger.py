"""The account's credits: a ledger that generations spend, and the balance route's body.

``CreditLedger(None)`` is unlimited (the default: nothing is ever refused). With a number, each
successful generation deducts its credits, and a generation that costs more than is left is
refused with the API's 403 out-of-credits answer, so the balance never goes below zero.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from ..errors import ApiError
from ..types import JSON

__all__ = ["LOW_BALANCE_THRESHOLD", "UNLIMITED_BALANCE", "CreditLedger", "balance_body"]

LOW_BALANCE_THRESHOLD = 10_000
"""Credits below which ``lowBalance`` is true (the documented example's threshold)."""

UNLIMITED_BALANCE = 10**12
"""What the balance route reports for an unlimited ledger: half a million dollars of credits."""


class CreditLedger:
    """Credits left on the fake's account, shared by every request; thread-safe."""

    def __init__(self, credits: int | None = None, clock: Callable[[], float] = time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._balance = _checked(credits)
        self._updated = clock()

    @property
    def balance(self) -> int | None:
        """Credits left, or None when unlimited."""
        return self._balance

    @property
    def last_updated(self) -> float:
        """When the balance last changed (set or charged), in seconds since the epoch."""
        return self._updated

    def set(self, credits: int | None) -> None:
        """Start over with ``credits`` (None: unlimited); a negative or fractional value raises
        ``ValueError``."""
        checked = _checked(credits)
        with self._lock:
            self._balance = checked
            self._updated = self._clock()

    def charge(self, credits: int) -> None:
        """Deduct ``credits``, or raise the API's 403 when fewer are left (nothing is deducted).

        Check and deduction are one step, so concurrent generations never overspend.
        """
        if isinstance(credits, bool) or not isinstance(credits, int) or credits < 0:
            raise ValueError(f"a charge must be a whole number of credits, got {credits!r}")
        if self._balance is None:
            return  # unlimited: nothing to count (the usual case, without taking the lock)
        with self._lock:
            if self._balance is None:
                return
            if credits > self._balance:
                raise ApiError(403)
            self._balance -= credits
            self._updated = self._clock()

    def refund(self, credits: int) -> None:
        """Give back a charge for an answer the client never got (a forced error)."""
        with self._lock:
            if self._balance is not None:
                self._balance += credits
                self._updated = self._clock()


def _checked(credits: int | None) -> int | None:
    if credits is None:
        return None
    if isinstance(credits, bool) or not isinstance(credits, int) or credits < 0:
        raise ValueError(f"credits must be a whole number of at least 0 or None, got {credits!r}")
    return credits


def balance_body(ledger: CreditLedger, low_threshold: int = LOW_BALANCE_THRESHOLD) -> JSON:
    """The body of ``GET /v1/billing/balance`` in the documented shape (balance in credits)."""
    balance = ledger.balance
    shown = UNLIMITED_BALANCE if balance is None else balance
    updated = datetime.fromtimestamp(ledger.last_updated, UTC)
    return {
        "balance": shown,
        "lowBalance": shown < low_threshold,
        "lowBalanceThreshold": low_threshold,
        "lastUpdated": updated.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "autoDebitStatus": "disabled",
        "status": "current",
        "statusExplanation": "Balance is current and up to date",
    }

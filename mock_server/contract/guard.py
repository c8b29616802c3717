"""The cost guard (a hard cap on requests that can create images) and key redaction."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

REDACTED = "[redacted]"


class BudgetExhausted(Exception):
    """A request that can create images was stopped because its operation's budget is spent."""


@dataclass
class SentRequest:
    """One request that could create images, as the guard let it through."""

    operation: str
    body: Any
    status: int | None = None
    credits: float | None = None


@dataclass
class CostGuard:
    """Lets through at most ``allowances[operation]`` requests per operation, and no more ever.

    Every request to an image operation counts, valid or not: a target that fails to reject a
    bad request may still generate (and bill) images.
    """

    allowances: dict[str, int]
    sent: list[SentRequest] = field(default_factory=list)
    refused: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def split(cls, cap: int, operations: list[str]) -> CostGuard:
        """Share ``cap`` among ``operations`` as evenly as possible, earlier ones first."""
        allowances = {operation: cap // len(operations) for operation in operations}
        for operation in operations[: cap % len(operations)]:
            allowances[operation] += 1
        return cls(allowances)

    @property
    def cap(self) -> int:
        return sum(self.allowances.values())

    def admit(self, operation: str, body: Any) -> SentRequest:
        """Count one request for ``operation`` or raise :class:`BudgetExhausted`."""
        with self._lock:
            used = sum(1 for request in self.sent if request.operation == operation)
            if used >= self.allowances.get(operation, 0):
                self.refused[operation] = self.refused.get(operation, 0) + 1
                raise BudgetExhausted(
                    f"{operation}: its share of the cap on image-creating requests "
                    f"({self.allowances.get(operation, 0)}) is used up"
                )
            request = SentRequest(operation, body)
            self.sent.append(request)
            return request


class Redactor:
    """Replaces secrets (the API key) in any text before it is shown or written.

    A secret too short to be a real key (under ``MIN_SECRET_CHARS``, such as ``k`` for a local
    fake) is only replaced after ``Bearer``, so it does not garble every word it occurs in.
    """

    MIN_SECRET_CHARS = 8

    def __init__(self, *secrets: str | None) -> None:
        self._secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if len(secret) >= self.MIN_SECRET_CHARS:
                text = text.replace(secret, REDACTED)
            else:
                text = text.replace(f"Bearer {secret}", f"Bearer {REDACTED}")
        return text

    def json(self, value: Any, limit: int = 300) -> str:
        """``value`` as compact JSON, redacted and cut to ``limit`` characters."""
        if type(value).__name__ == "NotSet":  # schemathesis' marker for a request without a body
            return "(no body)"
        if isinstance(value, bytes):
            return f"(a body of {len(value)} bytes that is not JSON)"
        try:
            text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=repr)
        except ValueError:
            text = repr(value)
        text = self(text)
        return text if len(text) <= limit else text[: limit - 1] + "…"

"""The contract-test kit: schemathesis checks an implementation of the image endpoint against specs.

The same suite runs against the fake in-process, any base URL, or the real API (with a cost
guard). ``aimlapi-mock contract`` and ``pytest contracts/`` are thin shells around
:func:`run_contract`. Needs the ``contract`` extra (schemathesis).

The names below load on first use, so the parts that need no schemathesis (the findings' words,
the settings, the redactor) serve the recorder of a plain install too.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .findings import Finding
    from .report import ContractReport, OperationResult
    from .runner import run_contract
    from .settings import KEY_VARIABLE, REAL_API_URL, ContractError, ContractSettings, is_loopback

__all__ = [
    "KEY_VARIABLE",
    "REAL_API_URL",
    "ContractError",
    "ContractReport",
    "ContractSettings",
    "Finding",
    "OperationResult",
    "is_loopback",
    "run_contract",
]

_HOMES = {
    "Finding": "findings",
    "ContractReport": "report",
    "OperationResult": "report",
    "run_contract": "runner",
    "KEY_VARIABLE": "settings",
    "REAL_API_URL": "settings",
    "ContractError": "settings",
    "ContractSettings": "settings",
    "is_loopback": "settings",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{home}", __name__), name)

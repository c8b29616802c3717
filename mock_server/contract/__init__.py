"""The contract-test kit: schemathesis checks an implementation of the image endpoint against specs.

The same suite runs against the fake in-process, any base URL, or the real API (with a cost
guard). ``aimlapi-mock contract`` and ``pytest contracts/`` are thin shells around
:func:`run_contract`. Needs the ``contract`` extra (schemathesis).
"""

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

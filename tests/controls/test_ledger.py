"""The account's credits and the balance route's body."""

import threading

import pytest

from mock_server.controls.ledger import UNLIMITED_BALANCE, CreditLedger, balance_body
from mock_server.errors import STATUS_MESSAGES, ApiError


def test_an_unlimited_ledger_never_refuses() -> None:
    ledger = CreditLedger()
    for _ in range(1000):
        ledger.charge(10**9)
    assert ledger.balance is None


def test_successful_generations_deduct_their_credits_until_they_run_out() -> None:
    ledger = CreditLedger(60_000)
    ledger.charge(25_200)
    ledger.charge(25_200)
    assert ledger.balance == 9_600
    with pytest.raises(ApiError) as refused:
        ledger.charge(25_200)
    assert refused.value.status == 403
    assert refused.value.message == STATUS_MESSAGES[403]
    assert refused.value.message.startswith("You've run out of credits.")
    assert ledger.balance == 9_600  # a refused charge takes nothing
    ledger.charge(9_600)
    assert ledger.balance == 0


def test_setting_credits_starts_over() -> None:
    ledger = CreditLedger(0)
    with pytest.raises(ApiError):
        ledger.charge(1)
    ledger.set(100)
    ledger.charge(100)
    ledger.set(None)
    ledger.charge(10**12)
    assert ledger.balance is None


@pytest.mark.parametrize(
    "credits", [-1, 1.5, True, "100"], ids=["negative", "float", "bool", "str"]
)
def test_bad_credit_amounts_are_refused(credits: object) -> None:
    with pytest.raises(ValueError, match="credits must be a whole number"):
        CreditLedger(credits)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="credits must be a whole number"):
        CreditLedger().set(credits)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a charge must be a whole number"):
        CreditLedger(10).charge(credits)  # type: ignore[arg-type]


def test_concurrent_charges_never_overspend() -> None:
    ledger = CreditLedger(1000)
    refused: list[int] = []

    def spend() -> None:
        for _ in range(100):
            try:
                ledger.charge(3)
            except ApiError:
                refused.append(1)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ledger.balance == 1000 - 3 * 333 == 1
    assert len(refused) == 800 - 333


def test_the_balance_body_has_the_documented_shape() -> None:
    clock = iter([1_787_000_000.25, 1_787_000_100.5])
    ledger = CreditLedger(10_000_000, clock=lambda: next(clock))
    assert balance_body(ledger) == {
        "balance": 10_000_000,
        "lowBalance": False,
        "lowBalanceThreshold": 10_000,
        "lastUpdated": "2026-08-17T20:53:20.250Z",
        "autoDebitStatus": "disabled",
        "status": "current",
        "statusExplanation": "Balance is current and up to date",
    }
    ledger.charge(9_995_000)
    body = balance_body(ledger)
    assert body["balance"] == 5_000 and body["lowBalance"] is True
    assert body["lastUpdated"] == "2026-08-17T20:55:00.500Z"


def test_an_unlimited_balance_reports_a_large_number() -> None:
    body = balance_body(CreditLedger())
    assert body["balance"] == UNLIMITED_BALANCE and body["lowBalance"] is False

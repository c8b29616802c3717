"""One test per operation of each spec; it passes when the target meets that contract."""

from __future__ import annotations

import pytest

from mock_server.contract import ContractReport


def test_operation_meets_its_contract(
    contract_report: ContractReport, contract_operation: str
) -> None:
    result = contract_report.operations[contract_operation]
    if result.skipped:
        pytest.skip(result.skipped)
    problems = contract_report.problems_for(contract_operation)
    assert not problems, "\n".join(problems)


def test_run_had_no_errors(contract_report: ContractReport) -> None:
    assert not contract_report.errors, "\n".join(contract_report.errors)

"""Options of the contract suite; the suite itself is ``mock_server.contract``.

pytest contracts/                                     # the fake, in-process (default)
pytest contracts/ --contract-target url --contract-base-url http://127.0.0.1:8000
AIMLAPI_KEY=... pytest contracts/ --contract-target real --contract-allow-remote
"""

from __future__ import annotations

import os

import pytest

from mock_server.contract import (
    KEY_VARIABLE,
    ContractError,
    ContractReport,
    ContractSettings,
    run_contract,
)
from mock_server.contract.documents import load_documents
from mock_server.contract.settings import CONTRACT_OPTIONS, settings_from_options

REPORT = pytest.StashKey[ContractReport]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aimlapi-contract", "aimlapi-mock contract suite (contracts/)")
    group.addoption(
        "--contract-target",
        choices=("fake", "url", "real"),
        default="fake",
        help="fake: the fake in-process (default); url: --contract-base-url; real: the real API "
        f"(cost guard on, key from {KEY_VARIABLE})",
    )
    for option in CONTRACT_OPTIONS:
        if option.in_pytest:
            option.add(group.addoption, prefix="--contract-")


def contract_settings(config: pytest.Config) -> ContractSettings:
    target = config.getoption("contract_target")
    given = vars(config.option)
    if target == "url" and not given.get("contract_base_url"):
        raise pytest.UsageError("--contract-target url needs --contract-base-url")
    fixed: dict[str, object] = {"real": target == "real"}
    if target == "fake":
        fixed["base_url"] = None
    return settings_from_options(
        given, prefix="--contract-", api_key=os.environ.get(KEY_VARIABLE) or None, **fixed
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "contract_operation" in metafunc.fixturenames:
        settings = contract_settings(metafunc.config)
        # Files a directory holds that cannot be used are skipped, as run_contract skips them.
        documents = load_documents(settings.specs, skipped=[])
        labels = [f"{doc.name} {label}" for doc in documents for label in doc.labels]
        metafunc.parametrize("contract_operation", labels, ids=labels)


@pytest.fixture(scope="session")
def contract_report(pytestconfig: pytest.Config) -> ContractReport:
    """The whole suite, run once against the chosen target."""
    try:
        report = run_contract(contract_settings(pytestconfig))
    except ContractError as error:
        pytest.fail(str(error), pytrace=False)
    pytestconfig.stash[REPORT] = report
    return report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    report = config.stash.get(REPORT, None)
    if report is not None:
        terminalreporter.write_sep("-", "aimlapi-mock contract summary")
        terminalreporter.write_line(report.summary())

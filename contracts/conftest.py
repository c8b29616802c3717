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
    group.addoption("--contract-base-url", metavar="URL", help="server for the url/real targets")
    group.addoption(
        "--contract-spec", action="append", metavar="PATH", help="spec file or directory"
    )
    group.addoption("--contract-examples", type=int, metavar="N", help="examples per operation")
    group.addoption(
        "--contract-max-requests",
        type=int,
        metavar="N",
        help="cap on requests that can create images (default 5 for the real API)",
    )
    group.addoption(
        "--contract-allow-remote", action="store_true", help="allow a host off this machine"
    )
    group.addoption(
        "--contract-rate-limit", metavar="RATE", help="e.g. 2/s (default 1/s for the real API)"
    )
    group.addoption("--contract-seed", type=int, metavar="N")


def contract_settings(config: pytest.Config) -> ContractSettings:
    target = config.getoption("contract_target")
    base_url = config.getoption("contract_base_url")
    if target == "url" and not base_url:
        raise pytest.UsageError("--contract-target url needs --contract-base-url")
    return ContractSettings(
        base_url=base_url if target != "fake" else None,
        real=target == "real",
        specs=tuple(config.getoption("contract_spec") or ()),
        max_examples=config.getoption("contract_examples"),
        max_requests=config.getoption("contract_max_requests"),
        allow_remote=config.getoption("contract_allow_remote"),
        seed=config.getoption("contract_seed"),
        rate_limit=config.getoption("contract_rate_limit"),
        api_key=os.environ.get(KEY_VARIABLE) or None,
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

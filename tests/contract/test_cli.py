"""The two shells of the contract suite: ``aimlapi-mock contract`` and ``pytest contracts/``."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mock_server.cli import build_parser, main
from mock_server.spec.load import bundled_specs_dir
from tests.served import serve_fake

ROOT = Path(__file__).parents[2]
FLUX2 = str(bundled_specs_dir() / "flux-2.yaml")
QUICK = ["--spec", FLUX2, "--phases", "examples,fuzzing", "--max-examples", "5", "--seed", "2"]
CANARY = "sk-CANARY-7f3a9c1e5b2d4086-do-not-print"


def run(args: list[str], cwd: Path, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "AIMLAPI_KEY"}
    if key is not None:
        env["AIMLAPI_KEY"] = key
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_contract_passes_with_status_0_and_writes_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["contract", *QUICK, "--report-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "PASSED: every check passed" in out
    assert f"Reports: {tmp_path / 'contract-junit.xml'}" in out
    assert ET.parse(tmp_path / "contract-junit.xml").getroot().get("failures") == "0"
    assert "PASSED" in (tmp_path / "contract-summary.txt").read_text()


def test_contract_fails_with_status_1_on_drift(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["contract", *QUICK, "--deviation", "data-null", "--report-dir", str(tmp_path)]) == 1
    )
    out = capsys.readouterr().out
    assert "1. data is null in a successful response, 1 image requested" in out
    assert out.rstrip().splitlines()[-2].startswith("FAILED (1 finding(s);")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--base-url", "http://192.0.2.1"], "is not on this machine", id="remote"),
        pytest.param(["--real", "--allow-remote"], "needs a key: set AIMLAPI_KEY", id="no-key"),
        pytest.param(["--spec", "nope.yaml"], "no such file", id="spec"),
    ],
)
def test_contract_refuses_to_start_with_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    os.environ.pop("AIMLAPI_KEY", None)
    assert main(["contract", *args, "--report-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_key_never_appears_in_any_output_or_report(tmp_path: Path) -> None:
    """Runs that find drift, dry-run, fail to connect and pass, with a recognisable key."""
    outputs: list[str] = []
    with serve_fake(
        auth="keys", api_keys=(CANARY,), deviations=("problem-json", "tokens-used")
    ) as (deviating, deviating_fake):
        drift = run(
            [
                "-m",
                "mock_server",
                "contract",
                "--real",
                "--base-url",
                deviating,
                *QUICK,
                "--rate-limit",
                "100/s",
                "--report-dir",
                "drift",
            ],
            tmp_path,
            CANARY,
        )
        dry = run(
            [
                "-m",
                "mock_server",
                "contract",
                "--real",
                "--dry-run",
                "--base-url",
                deviating,
                "--report-dir",
                "dry",
            ],
            tmp_path,
            CANARY,
        )
    assert drift.returncode == 1, drift.stdout + drift.stderr
    assert "error body is application/problem+json" in drift.stdout
    assert deviating_fake.generations(CANARY)  # the key did reach the target, and only it
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Dry run: nothing was sent." in dry.stdout
    unreachable = run(
        [
            "-m",
            "mock_server",
            "contract",
            "--base-url",
            "http://127.0.0.1:9",
            *QUICK,
            "--report-dir",
            "unreachable",
        ],
        tmp_path,
        CANARY,
    )
    assert unreachable.returncode == 1
    with serve_fake(auth="keys", api_keys=(CANARY,)) as (clean, _):
        pytest_run = run(
            [
                "-m",
                "pytest",
                str(ROOT / "contracts"),
                "-p",
                "no:cacheprovider",
                "--contract-target",
                "real",
                "--contract-base-url",
                clean,
                "--contract-spec",
                FLUX2,
                "--contract-seed",
                "2",
                "--contract-rate-limit",
                "100/s",
                "--junitxml",
                "pytest.xml",
            ],
            tmp_path,
            CANARY,
        )
    assert pytest_run.returncode == 0, pytest_run.stdout + pytest_run.stderr
    assert "3 passed" in pytest_run.stdout
    assert "aimlapi-mock contract summary" in pytest_run.stdout
    for result in (drift, dry, unreachable, pytest_run):
        outputs.extend([result.stdout, result.stderr])
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert {"contract-junit.xml", "contract-summary.txt", "pytest.xml"} <= {p.name for p in files}
    outputs.extend(path.read_text(errors="replace") for path in files)
    assert all(CANARY not in text for text in outputs)
    assert any("[redacted]" in text or "Bearer" not in text for text in outputs)


def test_pytest_entry_point_against_a_url(tmp_path: Path) -> None:
    with serve_fake(
        auth="keys", api_keys=("aimlapi-mock-contract",), deviations=("usd-spent",)
    ) as (
        base_url,
        recorder,
    ):
        result = run(
            [
                "-m",
                "pytest",
                str(ROOT / "contracts"),
                "-p",
                "no:cacheprovider",
                "--contract-target",
                "url",
                "--contract-base-url",
                base_url,
                "--contract-max-examples",
                "5",
                "--contract-phases",
                "examples,fuzzing",
                "--contract-spec",
                FLUX2,
                "--contract-seed",
                "2",
            ],
            tmp_path,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 failed, 1 passed" in result.stdout
    assert "meta.usage.usd_spent present, spec does not document it" in result.stdout
    assert recorder.generations("aimlapi-mock-contract")


def test_the_dry_run_of_an_unguarded_target_prices_it_and_says_it_is_not_guarded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["contract", *QUICK, "--base-url", "http://example.test", "--dry-run"]
    assert main([*args, "--report-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    estimate = out.split("Estimated cost: ~", 1)[1].split(" credits", 1)[0]
    assert int(estimate.replace(",", "")) > 0
    assert "http://example.test is not cost-guarded" in out
    assert "able to create images:" in out and " 0 of them able" not in out


def test_an_unknown_check_is_an_error_listing_the_valid_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["contract", *QUICK, "--exclude-check", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown check 'nope'" in err and "not_a_server_error" in err


def test_every_contract_setting_is_declared_once_for_the_cli_and_pytest() -> None:
    from dataclasses import fields

    from mock_server.contract.settings import (
        CONTRACT_OPTIONS,
        ContractSettings,
        settings_from_options,
    )

    declared = [option.field for option in CONTRACT_OPTIONS]
    assert sorted(declared) == sorted(
        f.name for f in fields(ContractSettings) if f.name != "api_key"
    )
    args = build_parser().parse_args(
        ["contract", "--spec", "a.yaml", "--spec", "b", "--max-examples", "3", "--phases",
         "examples, fuzzing", "--deviation", "status-201", "--exclude-check", "x", "--dry-run"]
    )  # fmt: skip
    settings = settings_from_options(vars(args))
    assert settings.specs == ("a.yaml", "b") and settings.max_examples == 3
    assert settings.phases == ("examples", "fuzzing") and settings.deviations == ("status-201",)
    assert settings.exclude_checks == ("x",) and settings.dry_run is True
    # pytest's options carry the --contract- prefix, and only those a pytest run can use.
    pytest_given = {"contract_specs": ["s.yaml"], "contract_seed": 7, "contract_real": True}
    from_pytest = settings_from_options(pytest_given, prefix="--contract-")
    assert (from_pytest.specs, from_pytest.seed, from_pytest.real) == (("s.yaml",), 7, False)

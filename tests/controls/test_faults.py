"""Fault and latency syntax, rules, and their settings from the CLI and the environment."""

import os
import random
import subprocess
import sys
import time

import pytest
import requests

from mock_server.cli import build_parser, settings_from_args
from mock_server.config import Settings
from mock_server.controls.faults import FORCEABLE_STATUSES, Fault, FaultPlan, FaultRule
from mock_server.controls.latency import Latency
from mock_server.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "fault"),
    [
        pytest.param("code=503", Fault(503), id="status"),
        pytest.param("code=429, retry-after=0", Fault(429, retry_after=0), id="retry-after"),
        pytest.param(" CODE = 500 ; q=1 ,delay=0.25", Fault(500, delay=0.25), id="spacing-params"),
        pytest.param("delay=1.5", Fault(delay=1.5), id="delay"),
        pytest.param("close", Fault(transport="close"), id="close"),
        pytest.param("truncate", Fault(transport="truncate"), id="truncate"),
        pytest.param("slow-body", Fault(transport="slow-body"), id="slow-body"),
        pytest.param("slow-body=2", Fault(transport="slow-body", slow_body=2), id="slow-body-2"),
        pytest.param("code=502, truncate", Fault(502, transport="truncate"), id="status-truncate"),
    ],
)
def test_fault_syntax(text: str, fault: Fault) -> None:
    assert Fault.parse(text) == fault
    assert Fault.parse(str(fault)) == fault


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("code=418", "expected one of 400, 401, 403, 404", id="status"),
        pytest.param("code=abc", "code='abc' is not a whole number", id="not-a-number"),
        pytest.param("delay=-1", "delay=-1.0 must be a number of seconds", id="negative-delay"),
        pytest.param("close, truncate", "choose one of close, truncate", id="two-transports"),
        pytest.param("close=1", "close takes no value", id="flag-value"),
        pytest.param("retry-after=2", "a fault needs code=STATUS", id="nothing-to-do"),
        pytest.param("code=503, times=2", "times= only applies to scripted faults", id="scripted"),
        pytest.param("cod=503", "unknown token 'cod'", id="typo"),
    ],
)
def test_bad_faults_are_refused_with_the_reason(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Fault.parse(text)


def test_prefer_ignores_preferences_it_does_not_know() -> None:
    assert Fault.from_prefer("wait=5, return=minimal") is None
    assert Fault.from_prefer("wait=5, code=504") == Fault(504)
    with pytest.raises(ConfigError, match="times= only applies"):
        Fault.from_prefer("code=503, times=1")


def test_forced_429_says_when_to_retry() -> None:
    assert FORCEABLE_STATUSES == (400, 401, 403, 404, 413, 415, 429, 500, 502, 503, 504)
    assert Fault(429).headers == {"Retry-After": "1"}
    assert Fault(429, retry_after=0).headers == {"Retry-After": "0"}
    assert Fault(503).headers == {}
    assert Fault(503, retry_after=7).headers == {"Retry-After": "7"}


def test_rule_syntax_round_trips() -> None:
    text = "code=500, probability=0.25, seed=7, model=blackforestlabs/flux-2-max, times=3"
    rule = FaultRule.parse(text)
    assert (rule.fault, rule.times, rule.probability, rule.seed, rule.model) == (
        Fault(500),
        3,
        0.25,
        7,
        "blackforestlabs/flux-2-max",
    )
    assert FaultRule.parse(str(rule)) == rule
    with pytest.raises(ConfigError, match=r"probability=1\.5 must lie between 0 and 1"):
        FaultRule.parse("code=500, probability=1.5")
    with pytest.raises(ConfigError, match="times=0 must be at least 1"):
        FaultRule.parse("code=500, times=0")


def test_fail_next_n_then_the_rule_is_gone() -> None:
    plan = FaultPlan()
    rule = plan.fail(503, times=2)
    picks = [plan.pick(lambda: None) for _ in range(3)]
    assert picks == [Fault(503), Fault(503), None]
    assert rule.times == 0 and plan.rules == [] and plan.idle


def test_model_rule_only_fails_that_model_and_reads_the_model_lazily() -> None:
    plan = FaultPlan(["code=500, model=m2"])
    assert plan.pick(lambda: "m1") is None
    assert plan.pick(lambda: "m2") == Fault(500)
    plan = FaultPlan(["code=500"])

    def never() -> str:
        raise AssertionError("no rule filters by model")

    assert plan.pick(never) == Fault(500)


def test_probability_is_reproducible_for_a_seed() -> None:
    def run(seed: int) -> list[bool]:
        plan = FaultPlan()
        plan.fail(503, probability=0.3, seed=seed)
        return [plan.pick(lambda: None) is not None for _ in range(200)]

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert 40 <= sum(first) <= 80


def test_first_rule_that_fires_wins() -> None:
    plan = FaultPlan(["code=429, times=1", "code=503"])
    assert [plan.pick(lambda: None) for _ in range(2)] == [Fault(429), Fault(503)]


@pytest.mark.parametrize(
    ("text", "latency"),
    [
        pytest.param("0.5", Latency("fixed", 0.5), id="bare-number"),
        pytest.param("fixed=0.5", Latency("fixed", 0.5), id="fixed"),
        pytest.param("uniform=0.2..1.5", Latency("uniform", 0.2, 1.5), id="uniform"),
        pytest.param(
            "lognormal=8, sigma=0.4, max=30, seed=3",
            Latency("lognormal", 8, sigma=0.4, cap=30, seed=3),
            id="lognormal",
        ),
        pytest.param("fixed=2, per=megapixel", Latency("fixed", 2, per="megapixel"), id="per-mp"),
        pytest.param(
            "uniform=1..2, per=image", Latency("uniform", 1, 2, per="image"), id="per-img"
        ),
    ],
)
def test_latency_syntax(text: str, latency: Latency) -> None:
    assert Latency.parse(text) == latency
    assert Latency.parse(str(latency)) == latency


@pytest.mark.parametrize("text", ["", "off", "none", "0"])
def test_latency_off(text: str) -> None:
    assert Latency.parse(text) is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("uniform=2..1", "LOW <= HIGH", id="uniform-reversed"),
        pytest.param("uniform=1", "needs LOW..HIGH", id="uniform-one"),
        pytest.param("lognormal=0", "median above 0", id="lognormal-zero"),
        pytest.param("gamma=1", "must start with fixed=S", id="unknown-distribution"),
        pytest.param("fixed=1, per=pixel", "per='pixel' is not one of", id="per"),
        pytest.param("fixed=1, jitter=2", "unknown token 'jitter'", id="unknown-token"),
    ],
)
def test_bad_latency_is_refused(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Latency.parse(text)


def test_latency_samples() -> None:
    rng = random.Random(0)
    assert Latency("fixed", 0.5).sample(rng, scale=3) == 0.5
    assert Latency("fixed", 0.5, per="image").sample(rng, scale=3) == 1.5
    assert Latency("fixed", 10, per="megapixel", cap=4).sample(rng, scale=2) == 4
    uniform = [Latency("uniform", 1, 2).sample(rng) for _ in range(100)]
    assert all(1 <= value <= 2 for value in uniform)
    lognormal = sorted(Latency("lognormal", 2, sigma=0.5).sample(rng) for _ in range(401))
    assert 1.6 < lognormal[200] < 2.4  # the median


def test_latency_draws_are_reproducible_and_follow_the_seed() -> None:
    def draws(seed: int) -> list[float]:
        plan = FaultPlan(latency=f"uniform=0..1, seed={seed}")
        return [plan.delay_for(lambda: 1.0) for _ in range(5)]

    assert draws(5) == draws(5)
    assert draws(5) != draws(6)
    assert len(set(draws(5))) == 5 and all(0 <= d <= 1 for d in draws(5))


def test_settings_check_faults_and_latency_early() -> None:
    with pytest.raises(ConfigError, match="code=418"):
        Settings(faults=("code=418",))
    with pytest.raises(ConfigError, match="must start with"):
        Settings(latency="sometimes")
    with pytest.raises(ConfigError, match="journal_size must not be negative"):
        Settings(journal_size=-1)


def test_controls_survive_the_trip_through_the_environment() -> None:
    settings = Settings(
        admin=False,
        journal_size=5,
        faults=("code=503, times=2", "code=429, retry-after=0, probability=0.5, seed=1"),
        latency="uniform=0.1..0.2, per=image",
    )
    assert Settings.from_env(settings.to_env()) == settings
    assert Settings.from_env(Settings().to_env()) == Settings()


@pytest.mark.parametrize(("raw", "admin"), [("off", False), ("0", False), ("ON", True)])
def test_admin_switch_from_the_environment(raw: str, admin: bool) -> None:
    assert Settings.from_env({"AIMLAPI_MOCK_ADMIN": raw}).admin is admin


def test_bad_admin_switch_is_reported() -> None:
    with pytest.raises(ConfigError, match="AIMLAPI_MOCK_ADMIN: 'maybe' is not on or off"):
        Settings.from_env({"AIMLAPI_MOCK_ADMIN": "maybe"})


def test_cli_options_override_the_environment() -> None:
    base = Settings.from_env({"AIMLAPI_MOCK_FAULTS": "code=500", "AIMLAPI_MOCK_LATENCY": "fixed=1"})
    args = build_parser().parse_args(
        [
            "serve",
            "--no-admin",
            "--journal-size",
            "3",
            "--fault",
            "code=503, times=1",
            "--fault",
            "close, probability=0.1",
            "--latency",
            "uniform=0.1..0.2",
        ]
    )
    settings = settings_from_args(args, base)
    assert (settings.admin, settings.journal_size, settings.latency) == (
        False,
        3,
        "uniform=0.1..0.2",
    )
    assert settings.faults == ("code=503, times=1", "close, probability=0.1")
    untouched = settings_from_args(build_parser().parse_args(["serve"]), base)
    assert (untouched.admin, untouched.faults, untouched.latency) == (
        True,
        ("code=500",),
        "fixed=1",
    )


def test_a_long_running_server_takes_faults_from_cli_and_environment() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mock_server",
            "serve",
            "--port",
            "0",
            "--no-access-log",
            "--fault",
            "code=503, times=1",
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "AIMLAPI_MOCK_LATENCY": "fixed=0.01"},
    )
    assert process.stdout is not None
    try:
        base_url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        deadline = time.monotonic() + 15
        while True:
            try:
                faults = requests.get(base_url + "/__mock/faults", timeout=1).json()
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.05)
        assert faults == {"faults": ["code=503, times=1"], "latency": "fixed=0.01"}
        body = {"model": "blackforestlabs/flux-2", "prompt": "p"}
        statuses = [
            requests.post(
                base_url + "/v1/images/generations",
                json=body,
                headers={"Authorization": "Bearer k"},
                timeout=10,
            ).status_code
            for _ in range(2)
        ]
        assert statuses == [503, 200]
        journal = requests.get(base_url + "/__mock/requests", timeout=5).json()
        assert [(e["status"], e["fault"]) for e in journal] == [(503, "code=503"), (200, None)]
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest
import requests

from mock_server.cli import build_parser, main, settings_from_args
from mock_server.config import OPTIONS, Settings
from mock_server.errors import ConfigError
from tests.conftest import BUNDLED_MODELS

SPECS = Path(__file__).parent / "specs"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mock_server", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(
            ["--spec", str(SPECS / "broken" / "not-json.json")], "not valid JSON", id="not-json"
        ),
        pytest.param(
            ["--spec", str(SPECS / "broken" / "swagger2.yaml")], "Swagger 2.0", id="swagger"
        ),
        pytest.param(["--spec", str(SPECS / "missing.yaml")], "no such file", id="missing"),
        pytest.param(["--auth", "any", "key-1"], "cannot be combined", id="auth-mix"),
        pytest.param(["--workers", "0"], "workers must be at least 1", id="workers"),
        pytest.param(["--public-url", "ftp://x"], "must start with http", id="public-url"),
    ],
)
def test_serve_refuses_bad_input_with_status_2_and_no_traceback(
    args: list[str], fragment: str
) -> None:
    result = run_cli("serve", *args)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr
    if "--spec" in args:
        assert Path(args[1]).name in result.stderr


def test_bad_environment_variable_is_reported() -> None:
    result = run_cli("serve", env={"AIMLAPI_MOCK_PORT": "eighty"})
    assert result.returncode == 2
    assert "AIMLAPI_MOCK_PORT: 'eighty' is not a whole number" in result.stderr


def test_no_command_prints_help_and_fails() -> None:
    assert main([]) == 2


def test_options_override_the_environment() -> None:
    base = Settings.from_env(
        {
            "AIMLAPI_MOCK_PORT": "9000",
            "AIMLAPI_MOCK_AUTH": "k1,k2",
            "AIMLAPI_MOCK_HOST": "0.0.0.0",
            "AIMLAPI_MOCK_SPECS": os.pathsep.join(["a.yaml", "b.yaml"]),
        }
    )
    assert (base.port, base.auth, base.api_keys, base.host) == (
        9000,
        "keys",
        ("k1", "k2"),
        "0.0.0.0",
    )
    assert base.specs == ("a.yaml", "b.yaml")
    args = build_parser().parse_args(["serve", "--port", "9100", "--auth", "off", "--spec", "c"])
    settings = settings_from_args(args, base)
    assert (settings.port, settings.auth, settings.host, settings.specs) == (
        9100,
        "off",
        "0.0.0.0",
        ("c",),
    )


def test_settings_survive_the_trip_through_the_environment() -> None:
    # Worker processes get their settings only this way, so every field must make the trip.
    settings = Settings(
        specs=("a", "b"),
        auth="keys",
        api_keys=("x", "y"),
        port=1234,
        workers=3,
        public_base_url="https://cdn.test",
        url_secret="s",
        max_body_bytes=10,
        image_cache_bytes=0,
        host="::1",
        admin=False,
        journal_size=5,
        faults=("code=503, times=2", "code=429"),
        latency="fixed=0.1",
        deviations=("status-201", "usd-spent"),
        credits=0,
        fetch_input_images=True,
        cors_origins=("http://localhost:3000", "https://app.test"),
        replay=("cassettes/a", "cassettes/b"),
        replay_miss="error",
        replay_ignore=("seed", "image_size.width"),
        render_memory_bytes=7,
        journal_bytes=100,
        journal_body_bytes=10,
        redact_headers=("x-session", "x-other"),
        admin_token="t0k",
        max_header_bytes=2048,
        header_timeout=1.5,
        body_timeout=2.5,
    )
    defaults = Settings()
    untried = [
        f.name for f in fields(Settings) if getattr(settings, f.name) == getattr(defaults, f.name)
    ]
    assert untried == [], "give these fields a non-default value above"
    assert Settings.from_env(settings.to_env()) == settings


def test_keys_mode_needs_keys() -> None:
    with pytest.raises(ConfigError, match="needs at least one API key"):
        Settings(auth="keys")


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[str]]]:
    """``aimlapi-mock serve`` in a child process on a free port; yields (base URL, output lines)."""
    extra: list[str] = getattr(request, "param", [])
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_server", "serve", "--port", "0", "--no-access-log", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = [process.stdout.readline().strip() for _ in range(3)]
    base_url = lines[0].rsplit(" ", 1)[-1]
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                requests.get(base_url + "/", timeout=1)
                break
            # The port is bound before "serving" is printed: workers still starting leave the
            # connection waiting rather than refused.
            except (requests.ConnectionError, requests.Timeout):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
        yield base_url, lines
    finally:
        process.terminate()
        process.wait(timeout=10)
        process.stdout.close()


def test_serve_prints_the_base_url_and_models(served: tuple[str, list[str]]) -> None:
    base_url, lines = served
    assert base_url.startswith("http://127.0.0.1:")
    family = ", ".join(BUNDLED_MODELS)
    assert lines[1:] == [
        f"POST /images/generations: {family}",
        f"POST /v1/images/generations: {family}",
    ]
    response = requests.post(
        base_url + "/v1/images/generations",
        json={"model": "blackforestlabs/flux-2", "prompt": "p"},
        headers={"Authorization": "Bearer k"},
        timeout=10,
    )
    assert response.status_code == 200


@pytest.mark.parametrize("served", [["--workers", "2"]], indirect=True)
def test_workers_serve_each_others_image_urls(served: tuple[str, list[str]]) -> None:
    base_url, _ = served
    session = requests.Session()
    urls = [
        session.post(
            base_url + "/v1/images/generations",
            json={"model": "blackforestlabs/flux-2", "prompt": f"p{i}", "image_size": "square"},
            headers={"Authorization": "Bearer k", "Connection": "close"},
            timeout=10,
        ).json()["data"][0]["url"]
        for i in range(6)
    ]
    for url in urls:
        # New connections land on either worker; every one of them serves every URL.
        assert requests.get(url, headers={"Connection": "close"}, timeout=10).status_code == 200


def test_every_setting_is_declared_once_and_reachable_everywhere() -> None:
    declared = [option.field for option in OPTIONS]
    assert sorted(declared) == sorted({f.name for f in fields(Settings)} - {"api_keys"})
    assert len(set(declared)) == len(declared)
    help_text = build_parser()._subparsers._group_actions[0].choices["serve"].format_help()  # type: ignore[union-attr]
    for option in OPTIONS:
        assert option.flag in help_text and option.variable in help_text
    # The pytest marker takes every field but where the server listens.
    marker = {"specs": ["x.yaml"], "auth": ["k"], "public_base_url": "http://h", "admin": False,
              "max_body_bytes": 5, "image_cache_bytes": 0, "url_secret": "s", "journal_size": 2,
              "faults": "code=503", "latency": "fixed=0.1", "deviations": "status-201",
              "credits": 10, "fetch_input_images": True, "cors_origins": "http://a"}  # fmt: skip
    changed = Settings().changed(marker)
    assert (changed.specs, changed.auth, changed.api_keys, changed.faults) == (
        ("x.yaml",),
        "keys",
        ("k",),
        ("code=503",),
    )
    for name in ("host", "port", "workers", "admin_token", "max_header_bytes"):
        with pytest.raises(ConfigError, match=f"unknown option '{name}'"):
            Settings().changed({name: 1})


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_spec_path_under_the_admin_routes_stops_serve_before_it_starts(
    tmp_path: Path, workers: str
) -> None:
    """Refused once, in the parent: a worker failing at start would be restarted in a loop."""
    spec = tmp_path / "clash.yaml"
    spec.write_text(
        (Path(__file__).parents[1] / "fixtures" / "specs" / "flux-2.yaml")
        .read_text()
        .replace("  /v1/images/generations:", "  /__mock/generate:")
    )
    result = run_cli("serve", "--port", "0", "--workers", workers, "--spec", str(spec))
    assert result.returncode == 2
    assert "'/__mock/generate' collides with the admin routes" in result.stderr
    assert "Traceback" not in result.stderr
    assert "serving" not in result.stdout

"""Start-up and shutdown of ``aimlapi-mock serve`` as a user meets them, in a subprocess."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mock_server.cli import main

SERVE = [sys.executable, "-m", "mock_server", "serve", "--no-access-log"]
CLI = [sys.executable, "-m", "mock_server"]
BODY = json.dumps({"model": "blackforestlabs/flux-2", "prompt": "held"}).encode()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``serve`` with ``args`` in this process (what the command runs): status, out, err."""
    status = main(["serve", "--no-access-log", *args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "70000"], "port 70000 is outside 0..65535"),
        (["--port", "-1"], "port -1 is outside 0..65535"),
        (["--host", "999.1.1.1", "--port", "0"], "cannot listen on host '999.1.1.1'"),
        (["--header-timeout", "nan"], "--header-timeout: 'nan' is not a finite number"),
        (["--max-header-bytes", "10"], "max_header_bytes must be at least 1024"),
    ],
)
def test_bad_listening_options_fail_in_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    status, out, err = run(capsys, *args)
    assert status == 2
    assert err.strip().count("\n") == 0, err
    assert message in err
    assert out == ""


def test_a_port_in_use_fails_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, out, err = run(capsys, "--port", str(port))
    assert status == 2
    assert err == f"aimlapi-mock: error: port {port} is in use on 127.0.0.1\n"
    assert out == ""  # not "serving ..." first


@contextmanager
def serving(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    process = subprocess.Popen(
        [*SERVE, "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "serving http://" in line, line
        url = line.split()[-1]
        _wait_until_up(url)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def _wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/files/none.png", timeout=1):
                return
        except urllib.error.HTTPError as answered:
            answered.close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} did not come up")


def _held_request(url: str, outcome: list[str]) -> None:
    request = urllib.request.Request(
        url + "/v1/images/generations",
        data=BODY,
        headers={"Authorization": "Bearer k", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=20):
            outcome.append("answered")
    except urllib.error.HTTPError as error:
        error.close()
        outcome.append(f"HTTP {error.code}")
    except OSError as error:
        outcome.append(type(error).__name__)


@pytest.mark.parametrize("presses", [1, 2], ids=["once", "twice"])
def test_ctrl_c_cuts_held_requests_and_exits_quietly(presses: int) -> None:
    with serving("--latency", "fixed=60") as (process, url):
        outcome: list[str] = []
        client = threading.Thread(target=_held_request, args=(url, outcome))
        client.start()
        time.sleep(0.5)  # the request is now held by the latency
        started = time.monotonic()
        for _ in range(presses):
            process.send_signal(signal.SIGINT)
            time.sleep(0.1)
        _, err = process.communicate(timeout=10)
        took = time.monotonic() - started
        client.join(timeout=10)
    assert process.returncode == 0
    assert took < (3.5 if presses == 1 else 2.0)  # a loaded machine adds a little
    assert "Traceback" not in err and "Error" not in err, err
    assert outcome and outcome[0] != "answered"


def test_the_url_secret_is_never_printed() -> None:
    given = "a-very-particular-secret-1234"
    with serving("--url-secret", given, "--log-level", "debug") as (process, _):
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    assert given not in out + err


def test_the_admin_token_guards_a_served_fake() -> None:
    with serving("--admin-token", "tok-123") as (process, url):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "/__mock/requests", timeout=5)
        refused.value.close()
        assert refused.value.code == 401
        allowed = urllib.request.Request(
            url + "/__mock/requests", headers={"Authorization": "Bearer tok-123"}
        )
        with urllib.request.urlopen(allowed, timeout=5) as listed:
            assert listed.status == 200
        process.send_signal(signal.SIGINT)


def test_output_into_a_closed_pipe_is_not_an_error(tmp_path: Path) -> None:
    shell = subprocess.run(
        f"{sys.executable} -m mock_server serve --help | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "Traceback" not in shell.stderr and "BrokenPipe" not in shell.stderr
    piped = subprocess.Popen(
        [*CLI, "contract", "--real", "--dry-run", "--max-requests", "2", "--phases", "examples"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert piped.stdout is not None and piped.stderr is not None
    piped.stdout.readline()
    piped.stdout.close()  # what `| head -1` does
    err = piped.stderr.read().decode()
    piped.stderr.close()
    assert piped.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err


@pytest.mark.parametrize("workers", [1, 2])
def test_requests_answered_just_before_ctrl_c_are_still_shown(workers: int) -> None:
    """The request log writes in batches; what is pending when the fake stops is written too,
    by each worker process as well."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "mock_server", "serve", "--port", str(port)]
    command += ["--workers", str(workers)]
    # In a session of its own, so Ctrl-C reaches the workers too, as in a terminal.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url)
        time.sleep(0.3)  # the probe's own line goes out first
        outcome: list[str] = []
        _held_request(url, outcome)
        assert outcome == ["answered"]
        os.killpg(process.pid, signal.SIGINT)  # at once: before the next batch is written
        _, err = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
    assert process.returncode == 0
    assert " POST /v1/images/generations 200 " in err, err
    assert "application startup" not in err and "application shutdown" not in err, err

"""The servers under test as child processes: started, timed to their first 200, measured."""

from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.workload import AUTHORIZATION, GENERATIONS, URL_SECRET, VALID_BODY, Request

REPO = Path(__file__).resolve().parent.parent
PRISM_PACKAGE = "@stoplight/prism-cli"
VALID_PROBE = Request.post(GENERATIONS, VALID_BODY)


@dataclass
class Server:
    """A server under test, running in a child process on 127.0.0.1."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    startup_seconds: float

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_bytes(self, field: str = "VmRSS") -> int:
        """Resident memory of the process (``VmHWM``: its peak), from ``/proc``."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no {field} in /proc/{self.process.pid}/status")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def fake_command(port: int) -> list[str]:
    """The fake as a user starts it, with its defaults (request log on; uvloop, httptools).

    Only the URL secret is fixed, so the image URLs the workload replays stay valid.
    """
    return [
        sys.executable, "-m", "mock_server", "serve", "--port", str(port),
        "--url-secret", URL_SECRET,
    ]  # fmt: skip


def floor_command(port: int) -> list[str]:
    return [sys.executable, "-m", "bench.floor", "--port", str(port)]


def prism_executable() -> str | None:
    """Prism's own executable, installed into npx's cache on first use; None without Node."""
    npx = shutil.which("npx")
    if npx is None:
        return None
    try:
        found = subprocess.run(
            [npx, "--yes", "-p", PRISM_PACKAGE, "-c", "command -v prism"],
            capture_output=True,
            text=True,
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        return None
    path = found.stdout.strip().splitlines()[-1:] if found.returncode == 0 else []
    return path[0] if path and Path(path[0]).exists() else None


def prism_command(prism: str, port: int, spec: Path) -> list[str]:
    return [prism, "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)]


def start(
    name: str,
    command: Sequence[str],
    port: int,
    probe: Request = VALID_PROBE,
    timeout: float = 60.0,
) -> Server:
    """Start ``command`` and wait until ``probe`` gets a 200; the wait is the start-up time."""
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    # As Python runs by default: modules cached as bytecode after their first import (a test
    # runner or CI image may turn that off; then every start compiles the fake's ~60 modules).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = path
    started = time.perf_counter()
    process = subprocess.Popen(
        list(command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, env=env
    )
    deadline = time.monotonic() + timeout
    while True:
        status = _probe(port, probe)
        if status == 200:
            return Server(name, process, port, time.perf_counter() - started)
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"{name} did not answer 200 (last: {status}): {' '.join(command)}")
        time.sleep(0.002)


def _probe(port: int, request: Request) -> int | None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        headers = {"Authorization": AUTHORIZATION}
        if request.body is not None:
            headers["Content-Type"] = "application/json"
        connection.request(request.method, request.path, request.body, headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except OSError:
        return None
    finally:
        connection.close()

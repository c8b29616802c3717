"""The README's examples run as written."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_record_once_replay_offline_example(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.search(
        r"<!-- readme-test: run by tests/record/[^>]*-->\n```sh\n(.*?)```", readme, re.S
    )
    assert found is not None
    script = found.group(1)
    for port in ("8101", "8102", "8103"):
        script = script.replace(port, str(free_port()))
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    env.pop("AIMLAPI_KEY", None)
    run = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert out.count('"credits_used":25200') == 2, out
    assert "recorder exit status 1" in out
    assert "success status 201, spec documents 200" in out
    assert "2 exchange(s), 2 image file(s)" in out
    assert "verify exit status 1" in out
    assert "which differs in prompt" in out
    assert (tmp_path / "cat.png").read_bytes().startswith(b"\x89PNG")
    for path in (tmp_path / "cassettes").rglob("*"):
        assert not path.is_file() or b"sk-stand-in-0123456789abcdef" not in path.read_bytes()

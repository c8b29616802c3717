import os
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import mock_server
from mock_server.spec.load import load_specs

ROOT = Path(__file__).parents[2]


def test_every_public_name_is_exported() -> None:
    """Everything ``mock_server`` offers, but its sub-packages, is in ``__all__``, and resolves."""
    for name in mock_server.__all__:
        assert getattr(mock_server, name) is not None
    offered = {
        name
        for name in dir(mock_server)
        if not name.startswith("_") and not isinstance(getattr(mock_server, name), ModuleType)
    }
    assert offered == set(mock_server.__all__) - {"__version__"}


def test_users_reach_the_testing_surface_from_the_top() -> None:
    from mock_server.controls.journal import JournalAssertionError
    from mock_server.testing.fake import MockServer

    assert mock_server.MockServer is MockServer
    assert issubclass(mock_server.JournalAssertionError, AssertionError)
    assert mock_server.JournalAssertionError is JournalAssertionError


def test_the_pytest_plugin_imports_no_server_libraries() -> None:
    """Every pytest run of a project that installs us loads the plugin: it must stay light."""
    code = (
        "import sys, mock_server.testing.plugin; "
        "heavy = [m for m in ('starlette', 'PIL', 'jsonschema_rs', 'jsonschema', 'uvicorn') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


SERVE_FIRST_GENERATION = """
import asyncio, json, sys
from mock_server.cli import build_parser
from mock_server.config import Settings
from mock_server.http.app import create_app
from mock_server.http.server import uvicorn_config

build_parser()
app = create_app(Settings(url_secret="s"))
uvicorn_config(app, "127.0.0.1", 0).load()
body = json.dumps({"model": "blackforestlabs/flux-2", "prompt": "p"}).encode()
scope = {"type": "http", "method": "POST", "path": "/v1/images/generations", "headers": [
    (b"host", b"h"), (b"authorization", b"Bearer k"), (b"content-type", b"application/json")]}
sent = []

async def receive():
    return {"type": "http.request", "body": body}

async def send(message):
    sent.append(message)

asyncio.run(app(scope, receive, send))
assert sent[0]["status"] == 200, sent
print(sorted(set(sys.modules) & set(sys.argv[1:])))
"""


def test_a_start_from_the_spec_cache_loads_only_what_serving_needs(tmp_path: Path) -> None:
    """Start-up time: the admin routes' framework, the renderer, the metrics exposition, the
    recorder and the full validator are imported when first used, PyYAML when a spec file is not
    in the spec cache, websockets never."""
    heavy = ["starlette.applications", "PIL.Image", "prometheus_client", "jsonschema", "yaml"]
    heavy += ["mock_server.record.recorder", "wsproto", "websockets"]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    command = [sys.executable, "-c", SERVE_FIRST_GENERATION, *heavy]
    first = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert first.stdout.strip() == "['yaml']"  # specs loaded, then cached
    again = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    assert again.stdout.strip() == "[]"


def test_wheel_carries_the_specs_and_serves_them(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path / "dist")],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("aimlapi_mock-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path / "site")
    assert "mock_server/specs/flux-2.yaml" in names
    for name in ("flux-2-max", "flux-2-pro", "flux-2-lora", "flux-2-edit", "flux-2-pro-edit"):
        assert f"mock_server/specs/{name}.yaml" in names
    assert "mock_server/specs/flux-2-lora-edit.yaml" in names
    assert "mock_server/py.typed" in names
    for asset in ("journal.html", "journal.js", "journal.css", "icon.svg"):
        assert f"mock_server/http/assets/{asset}" in names  # the journal page works offline
    assert any(name.endswith("entry_points.txt") for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "aimlapi-mock = mock_server.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    )
    # Import the package from the unpacked wheel, far from the source tree.
    probe = (
        "import mock_server, mock_server.spec.load as s; "
        "print(mock_server.__file__); print(s.bundled_specs_dir()); print(s.load_specs().models); "
        "from mock_server.http.page import _asset; assert b'journal.js' in _asset('journal.html')"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"},
    )
    module_file, specs_dir, models = result.stdout.splitlines()
    assert module_file.startswith(str(tmp_path / "site"))
    assert specs_dir == str(tmp_path / "site" / "mock_server" / "specs")
    assert models == repr(load_specs().models)
    assert len(load_specs().models) == 7

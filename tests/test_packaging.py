import subprocess
import sys
import zipfile
from pathlib import Path

import mock_server

ROOT = Path(__file__).parent.parent


def test_public_api_is_chosen_on_purpose() -> None:
    assert sorted(mock_server.__all__) == [
        "ApiError",
        "ConfigError",
        "ImageRequest",
        "ImageSpec",
        "Operation",
        "Settings",
        "SpecError",
        "SpecSet",
        "Violation",
        "__version__",
        "create_app",
        "load_specs",
    ]
    for name in mock_server.__all__:
        assert hasattr(mock_server, name)


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
    assert "mock_server/specs/flux-2-max.yaml" in names
    assert "mock_server/py.typed" in names
    assert any(name.endswith("entry_points.txt") for name in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "aimlapi-mock = mock_server.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    )
    # Import the package from the unpacked wheel, far from the source tree.
    probe = (
        "import mock_server, mock_server.specs as s; "
        "print(mock_server.__file__); print(s.bundled_specs_dir()); print(s.load_specs().models)"
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
    assert models == "['blackforestlabs/flux-2', 'blackforestlabs/flux-2-max']"

"""The cache of loaded spec files: used when nothing changed, never stale, never in the way."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mock_server.errors import SpecError
from mock_server.spec import cache, load
from mock_server.spec.load import bundled_specs_dir, load_specs

FLUX_2 = bundled_specs_dir() / "flux-2.yaml"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "aimlapi-mock" / "specs"


def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the files the loader parses (cache hits parse none)."""
    seen: list[str] = []
    real = load._document

    def counting(source: str, suffix: str, raw: bytes) -> dict[str, object]:
        seen.append(source)
        return real(source, suffix, raw)

    monkeypatch.setattr(load, "_document", counting)
    return seen


def spec_copy(tmp_path: Path, name: str = "flux-2.yaml") -> Path:
    path = tmp_path / name
    shutil.copy(FLUX_2, path)
    return path


def test_a_second_load_reads_the_cache_and_serves_the_same_operations(
    monkeypatch: pytest.MonkeyPatch, own_cache: Path
) -> None:
    seen = parses(monkeypatch)
    first = load_specs()
    assert len(seen) == 7
    assert len(list(own_cache.glob("*.json"))) == 7
    second = load_specs()
    assert len(seen) == 7  # nothing parsed again
    assert second.operations == first.operations
    assert second.sources == first.sources and second.warnings == first.warnings


def test_models_of_one_operation_still_share_their_schema(tmp_path: Path) -> None:
    """The engine compiles one validator per schema object, so sharing must survive the cache."""
    path = spec_copy(tmp_path)
    one_model = "enum: [blackforestlabs/flux-2]"
    assert one_model in path.read_text()
    path.write_text(path.read_text().replace(one_model, "enum: [blackforestlabs/flux-2, m/two]"))
    for _ in range(2):  # loaded, then cached
        by_model = load_specs([path]).models_for("POST", "/v1/images/generations")
        assert sorted(by_model) == ["blackforestlabs/flux-2", "m/two"]
        assert by_model["m/two"].request_schema is by_model["blackforestlabs/flux-2"].request_schema


def test_a_changed_file_is_loaded_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = spec_copy(tmp_path)
    seen = parses(monkeypatch)
    before = load_specs([path])
    text = path.read_text().replace("maximum: 2048", "maximum: 1024", 1)
    assert text != FLUX_2.read_text()
    path.write_text(text)
    os.utime(path, ns=(0, 0))  # even with its old modification time: the bytes decide
    after = load_specs([path])
    assert len(seen) == 2
    assert after.operations != before.operations


def test_the_same_bytes_at_another_path_are_their_own_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = parses(monkeypatch)
    one, other = spec_copy(tmp_path, "a.yaml"), spec_copy(tmp_path, "b.yaml")
    assert [op.source for op in load_specs([one])] == [str(one)] * 2
    assert {op.source for op in load_specs([other])} == {str(other)}
    assert len(seen) == 2


def test_a_broken_or_foreign_entry_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_cache: Path
) -> None:
    path = spec_copy(tmp_path)
    expected = load_specs([path]).operations
    (entry,) = own_cache.glob("*.json")
    seen = parses(monkeypatch)
    junks = (b"", b"not json", entry.read_bytes()[:50], b"null", b"[]", b'{"operations": []}')
    junks += (b'{"operations": [], "schemas": []}',)  # a file always yields an operation
    for junk in junks:
        entry.write_bytes(junk)
        assert load_specs([path]).operations == expected
    assert len(seen) == len(junks)
    assert load_specs([path]).operations == expected
    assert len(seen) == len(junks)  # rewritten whole the last time


def test_a_file_that_does_not_load_is_never_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_cache: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("openapi: 3.0.0\npaths: [")
    for _ in range(2):
        with pytest.raises(SpecError, match="not valid YAML"):
            load_specs([broken])
    assert not own_cache.exists() or not list(own_cache.iterdir())


def test_an_unwritable_cache_costs_nothing_but_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    seen = parses(monkeypatch)
    assert load_specs().models == load_specs().models
    assert len(seen) == 14


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="POSIX owners and modes")
@pytest.mark.parametrize("opened", ["directory", "entry"])
def test_entries_someone_else_could_write_are_never_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_cache: Path, opened: str
) -> None:
    path = spec_copy(tmp_path)
    load_specs([path])
    (entry,) = own_cache.glob("*.json")
    # What another user could have put there: a valid entry serving a model of their choosing.
    entry.write_text(entry.read_text().replace("blackforestlabs/flux-2", "planted/model"))
    (own_cache if opened == "directory" else entry).chmod(0o777 if opened == "directory" else 0o666)
    seen = parses(monkeypatch)
    assert load_specs([path]).models == ["blackforestlabs/flux-2"]
    assert len(seen) == 1
    if opened == "entry":  # a private directory: the entry is replaced by one of ours
        assert "planted" not in entry.read_text() and entry.stat().st_mode & 0o077 == 0
    else:  # nothing is written into a directory others may write
        assert "planted" in entry.read_text()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX named pipes")
def test_a_pipe_or_a_directory_at_an_entry_neither_blocks_nor_leaves_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_cache: Path
) -> None:
    path = spec_copy(tmp_path)
    load_specs([path])
    (entry,) = own_cache.glob("*.json")
    entry.unlink()
    os.mkfifo(entry)  # reading it would wait for a writer for ever
    assert load_specs([path]).models == ["blackforestlabs/flux-2"]
    entry.unlink()
    entry.mkdir()  # the entry cannot be replaced: the store fails
    for _ in range(3):
        assert load_specs([path]).models == ["blackforestlabs/flux-2"]
    assert sorted(p.name for p in own_cache.iterdir()) == [entry.name]  # no partial files


def test_a_relative_cache_home_is_ignored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative-cache")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.spec_cache_directory() == tmp_path / "home" / ".cache" / "aimlapi-mock" / "specs"


def test_the_least_recently_used_entries_beyond_the_limit_are_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_cache: Path
) -> None:
    monkeypatch.setattr(cache, "MAX_ENTRIES", 3)
    paths = [spec_copy(tmp_path, f"{n}.yaml") for n in range(5)]

    def age_all() -> None:  # make the order of use unambiguous
        for entry in own_cache.glob("*.json"):
            os.utime(entry, (entry.stat().st_mtime - 10,) * 2)

    for path in paths[:3]:
        load_specs([path])
        age_all()
    load_specs([paths[0]])  # used again: now the most recent
    age_all()
    for path in paths[3:]:
        load_specs([path])
        age_all()
    assert len(list(own_cache.iterdir())) == 3
    seen = parses(monkeypatch)
    for path in (paths[0], paths[3], paths[4]):
        load_specs([path])
    assert seen == []  # kept: the one used again and the two newest
    load_specs([paths[1]])
    assert seen == [str(paths[1])]

"""Handing freed memory back to the system after renders: at most once a second, and after the
last render of a burst too."""

from __future__ import annotations

import threading
import time

import pytest

from mock_server.images import memory


@pytest.fixture
def trims(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Each trim's time; the allocator counts as tuned, with a short interval."""
    made: list[float] = []
    done = threading.Event()

    def trim(pad: int) -> int:
        made.append(time.monotonic())
        done.set()
        return 1

    monkeypatch.setattr(memory, "_malloc_trim", trim)
    monkeypatch.setattr(memory, "_last_trim", 0.0)
    monkeypatch.setattr(memory, "_trim_timer", None)
    monkeypatch.setattr(memory, "TRIM_INTERVAL_SECONDS", 0.3)
    return made


def test_a_burst_of_renders_trims_once_then_once_after_it(trims: list[float]) -> None:
    started = time.monotonic()
    for number in range(5):
        assert memory.then_trim(lambda n: n * 2, number) == number * 2
    assert len(trims) == 1  # the first render; the others fall within the interval
    deadline = time.monotonic() + 5
    while len(trims) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(trims) == 2  # the one the burst left due
    assert trims[1] - trims[0] >= 0.3 - 0.01
    time.sleep(0.5)
    assert len(trims) == 2  # and nothing more while idle
    assert time.monotonic() - started < 5


def test_a_render_that_fails_still_trims(trims: list[float]) -> None:
    def broken(_: None) -> None:
        raise ValueError("no picture")

    with pytest.raises(ValueError, match="no picture"):
        memory.then_trim(broken, None)
    assert len(trims) == 1


def test_nothing_is_trimmed_unless_the_allocator_was_tuned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memory, "_malloc_trim", None)
    assert memory.then_trim(str, 5) == "5"
    assert memory._trim_timer is None

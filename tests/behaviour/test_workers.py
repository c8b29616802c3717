"""``serve --workers 2``: the admin API answers for the whole server, whichever worker it reaches.

With one worker paused (SIGSTOP), the other alone accepts connections, so each request's worker
is certain.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mock_server.controls.journal import JournalEntry
from mock_server.controls.shared import TRIM_EVERY, SharedJournal, SharedStore
from tests.behaviour.test_robustness import (
    VALID,
    _free_port,
    _wait_until_serving,
    _worker_pids,
    serve_workers,
    stop,
)

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc, uses SIGSTOP"
)


def call(port: int, method: str, path: str, body: object = None) -> tuple[int, object]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": "Bearer k", "Connection": "close"}
        content = None
        if body is not None:
            content = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        connection.request(method, path, body=content, headers=headers)
        response = connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None
    finally:
        connection.close()


@contextmanager
def only(worker: int, workers: list[int], port: int) -> Iterator[None]:
    """Every worker but ``worker`` paused.

    A worker journals a request just after answering it, into the store the workers share; one
    paused in between would hold the store's lock. So the block ends with a request the running
    worker answers only once its earlier requests are journalled (its event loop runs one task
    step at a time), and only then may the test pause it.
    """
    others = [pid for pid in workers if pid != worker]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
        call(port, "GET", "/__mock/health")
    finally:
        for pid in others:
            with contextlib.suppress(ProcessLookupError):  # not to hide what failed
                os.kill(pid, signal.SIGCONT)


def test_the_journal_and_counted_faults_span_the_workers() -> None:
    port = _free_port()
    process = serve_workers(port)
    try:
        workers = _worker_pids(process.pid, 2)
        _wait_until_serving(port)
        time.sleep(0.3)  # the probe is journalled just after it is answered: before the reset
        first, second = workers
        with only(second, workers, port):
            assert call(port, "POST", "/__mock/reset")[0] == 204  # for both workers
            assert call(port, "POST", "/__mock/faults", "code=503, times=2")[0] == 201
        statuses = []
        for worker in (first, second, first, second, first, second):
            with only(worker, workers, port):
                statuses.append(call(port, "POST", "/v1/images/generations", VALID)[0])
        # Each worker alone would have fired the rule twice.
        assert statuses == [503, 503, 200, 200, 200, 200]  # each block ended journalled
        for worker in workers:
            with only(worker, workers, port):
                status, listed = call(port, "GET", "/__mock/requests")
                faults = call(port, "GET", "/__mock/faults")[1]
            assert status == 200
            assert isinstance(listed, list)
            assert [entry["status"] for entry in listed] == statuses
            assert all(entry["headers"]["authorization"] == "Bearer <redacted>" for entry in listed)
            assert faults == {"faults": [], "latency": None}
        with only(second, workers, port):
            assert call(port, "DELETE", "/__mock/requests")[0] == 204
        with only(first, workers, port):
            assert call(port, "GET", "/__mock/requests")[1] == []
    finally:
        stop(process)  # resumes paused workers first


def test_the_store_keeps_entries_bounded_and_without_secrets(tmp_path: Path) -> None:
    store = SharedStore(tmp_path)
    journal = SharedJournal(store, 5, 40_000, 10_000)
    for number in range(TRIM_EVERY * 2):
        body = json.dumps({"prompt": f"p{number}", "api_key": "sk-body-secret", "x": "y" * 9000})
        entry = JournalEntry(
            float(number), "POST", "/v1/images/generations", b"",
            [(b"authorization", b"Bearer sk-header-secret"), (b"cookie", b"c=sk-cookie")],
            body.encode(), True, 200, [], None, 0.0,
        )  # fmt: skip
        journal.record(entry)
    entries, total = journal.page()
    assert total == len(entries) <= 4  # 5 by count; ~10 kB each against 40 kB
    assert entries[-1].body["prompt"] == f"p{TRIM_EVERY * 2 - 1}"
    assert entries[-1].body["api_key"] == "<redacted>"
    assert entries[-1].headers["cookie"] == "<redacted>"
    store.close()
    for file in tmp_path.iterdir():
        assert b"sk-" not in file.read_bytes(), file

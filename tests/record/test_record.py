"""The recording proxy: forwarding with the key only, cassettes, drift, the cap, bad upstreams."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import requests
from starlette.types import Receive, Scope, Send

from mock_server import Settings, create_app
from mock_server.cli import main
from mock_server.http.server import BackgroundServer
from mock_server.record import load_cassette
from tests.record.recording import (
    CALLER,
    FLUX,
    FLUX_MAX,
    GENERATIONS,
    KEY,
    Recording,
    proxy,
    upstream,
)


def post_with_requests(base_url: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        base_url + GENERATIONS, json=body, headers={"Authorization": CALLER}, timeout=30
    )


def post_like_the_sdk(base_url: str, body: dict[str, Any]) -> httpx.Response:
    """As the OpenAI-style SDK does: base URL ending in /v1, the path with a trailing slash."""
    with httpx.Client(base_url=base_url + "/v1", headers={"Authorization": CALLER}) as client:
        return client.post("/images/generations/", json=body, timeout=30)


CLIENTS: dict[str, Callable[[str, dict[str, Any]], Any]] = {
    "requests": post_with_requests,
    "sdk": post_like_the_sdk,
}


@pytest.fixture
def recorded(tmp_path: Path) -> Iterator[Recording]:
    with upstream() as (url, app), proxy(tmp_path / "cassette", url, app) as recording:
        yield recording


def without_host(body: Any) -> Any:
    text = json.dumps(body, sort_keys=True)
    return json.loads(re.sub(r"http://[^/\"]+", "http://HOST", text))


@pytest.mark.parametrize("client", CLIENTS, ids=list(CLIENTS))
def test_record_then_replay_offline(tmp_path: Path, client: str) -> None:
    post = CLIENTS[client]
    cassette = tmp_path / "cassette"
    with upstream() as (url, app), proxy(cassette, url, app) as recording:
        proxied = [post(recording.proxy_url, body) for body in (FLUX, FLUX_MAX)]
        assert [answer.status_code for answer in proxied] == [200, 200]
        upstream_images = {}
        for exchange in load_cassette(cassette).exchanges:
            for image in exchange.images:
                upstream_images[image.url] = requests.get(image.url, timeout=10).content
        # Only the upstream's key went upstream, never the caller's.
        assert [r.authorization for r in app.generations(KEY)] == [f"Bearer {KEY}"] * 2
        assert not [r for r in app.received if "caller-key" in r.authorization]
    # The upstream is gone: replay from the cassette alone.
    replay = create_app(Settings(replay=(str(cassette),)))
    with BackgroundServer(replay) as server:
        for sent, body in zip(proxied, (FLUX, FLUX_MAX), strict=True):
            again = post(server.base_url, body)
            assert again.status_code == 200
            assert without_host(again.json()) == without_host(sent.json())
            (url,) = [entry["url"] for entry in again.json()["data"]]
            assert url.startswith(server.base_url + "/files/")
            image = requests.get(url, timeout=10)
            (original,) = [data for up, data in upstream_images.items() if up.split("/")[-1] in url]
            assert image.content == original
            assert image.headers["content-type"] in ("image/png", "image/jpeg")
        sources = [entry.source for entry in replay.journal]
        assert sources[0] is not None and sources[0].startswith("replay ")
        assert "recorded image" in sources


def test_the_key_is_nowhere_on_disk(recorded: Recording) -> None:
    secret = {**FLUX_MAX, "prompt": f"a dog holding a note that says {KEY}"}
    answers = [
        post_with_requests(recorded.proxy_url, body)
        for body in (FLUX, secret, {**FLUX, "prompt": f"Bearer {KEY}"})
    ]
    # A PNG keeps its prompt as text: one holding the key is refused, not written.
    assert [answer.status_code for answer in answers] == [200, 200, 502]
    assert "contains the API key" in answers[2].json()["message"]
    assert KEY not in answers[2].text
    written = [path for path in recorded.cassette.rglob("*") if path.is_file()]
    assert len([p for p in written if p.suffix == ".json"]) == 2
    for path in written:
        data = path.read_bytes()
        assert KEY.encode() not in data, path
        assert b"caller-key" not in data, path
        assert b"authorization" not in data.lower() or path.suffix != ".json", path
    prompts = [e.body["prompt"] for e in load_cassette(recorded.cassette).exchanges]
    assert prompts[1] == "a dog holding a note that says [redacted]"


def test_a_clean_upstream_gives_no_findings_and_verifies(
    recorded: Recording, capsys: pytest.CaptureFixture[str]
) -> None:
    post_with_requests(recorded.proxy_url, FLUX)
    post_with_requests(recorded.proxy_url, {**FLUX, "image_size": {"width": 100, "height": 64}})
    assert recorded.findings == []
    assert main(["cassette", "verify", str(recorded.cassette)]) == 0
    assert "no findings" in capsys.readouterr().out


def test_drift_is_named_while_recording_and_by_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cassette = tmp_path / "drifted"
    with (
        upstream("tokens-used", "status-201", "wrong-size") as (url, app),
        proxy(cassette, url, app) as recording,
    ):
        answer = post_with_requests(recording.proxy_url, FLUX)
        assert answer.status_code == 201  # the upstream's answer, as it came
    expected = [
        "success status 201, spec documents 200",
        "meta.usage.tokens_used present, spec requires credits_used",
        "images of the wrong size: 256×256 served for a 512×512 request",
    ]
    for sentence in expected:
        assert any(sentence in line for line in recording.findings), recording.findings
    (exchange,) = load_cassette(cassette).exchanges
    assert exchange.findings == expected
    assert main(["cassette", "verify", str(cassette)]) == 1
    out = capsys.readouterr().out
    assert all(sentence in out for sentence in expected)
    assert "3 finding(s)" in out


def test_at_most_max_requests_go_upstream(tmp_path: Path) -> None:
    with upstream() as (url, app), proxy(tmp_path / "c", url, app, max_requests=1) as recording:
        first = post_with_requests(recording.proxy_url, FLUX)
        second = post_with_requests(recording.proxy_url, {**FLUX, "seed": 8})
        assert first.status_code == 200
        assert second.status_code == 429
        assert "cap of 1 image-creating requests" in second.json()["message"]
        assert second.json()["statusCode"] == 429
        assert len(app.generations(KEY)) == 1
    assert len(load_cassette(tmp_path / "c").exchanges) == 1


class _Slow:
    """An upstream that takes its time."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await anyio.sleep(1)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def test_an_unreachable_upstream_gets_a_502_and_nothing_is_written(tmp_path: Path) -> None:
    with upstream() as (url, app):
        pass  # now nothing listens there
    with proxy(tmp_path / "c", url, app) as recording:
        answer = post_with_requests(recording.proxy_url, FLUX)
    assert answer.status_code == 502
    assert answer.json()["statusCode"] == 502
    assert "could not be reached" in answer.json()["message"]
    assert any("could not be reached" in line for line in recording.findings)
    assert load_cassette(tmp_path / "c").exchanges == []


def test_a_slow_upstream_gets_a_504(tmp_path: Path) -> None:
    with BackgroundServer(_Slow()) as slow:
        with proxy(tmp_path / "c", slow.base_url, None, timeout=0.3) as recording:  # type: ignore[arg-type]
            answer = post_with_requests(recording.proxy_url, FLUX)
        assert answer.status_code == 504
        assert "within 0.3 s" in answer.json()["message"]
    assert load_cassette(tmp_path / "c").exchanges == []


def test_concurrent_clients_each_get_their_own_exchange(recorded: Recording) -> None:
    results: list[int] = []

    def one(number: int) -> None:
        results.append(post_with_requests(recorded.proxy_url, {**FLUX, "seed": number}).status_code)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(1, 6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200] * 5
    exchanges = load_cassette(recorded.cassette).exchanges
    assert sorted(e.body["seed"] for e in exchanges) == [1, 2, 3, 4, 5]
    assert len({e.file for e in exchanges}) == 5


def test_record_refuses_to_start_without_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AIMLAPI_KEY", raising=False)
    assert main(["record", "--cassette", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "aimlapi-mock: error: recording needs the upstream's API key in AIMLAPI_KEY"
    monkeypatch.setenv("AIMLAPI_KEY", KEY)
    assert main(["record", "--cassette", str(tmp_path / "c"), "--upstream", "http://x.test"]) == 2
    assert "pass --allow-remote" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_a_recorder_killed_mid_run_leaves_a_cassette_that_loads(tmp_path: Path) -> None:
    cassette = tmp_path / "c"
    with upstream() as (url, _app):
        command = [sys.executable, "-m", "mock_server", "record", "--cassette", str(cassette)]
        command += ["--upstream", url, "--port", "0", "--max-requests", "50", "--no-access-log"]
        env = {**os.environ, "AIMLAPI_KEY": KEY}
        recorder = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert recorder.stdout is not None
            base = ""
            while not base:
                line = recorder.stdout.readline()
                assert line, "the recorder stopped before serving"
                found = re.search(r"serving (http://\S+)", line)
                base = found.group(1) if found else ""
            _wait_for(base)
            stop = threading.Event()

            def keep_posting(offset: int) -> None:
                seed = offset
                while not stop.is_set():
                    seed += 2
                    try:
                        post_with_requests(base, {**FLUX, "seed": seed})
                    except requests.RequestException:
                        return

            clients = [threading.Thread(target=keep_posting, args=(n,)) for n in (0, 1)]
            for client in clients:
                client.start()
            deadline = time.monotonic() + 20
            while len(list((cassette / "exchanges").glob("*.json"))) < 3:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            recorder.send_signal(signal.SIGKILL)
            recorder.wait(10)
            stop.set()
            for client in clients:
                client.join()
        finally:
            recorder.kill()
            recorder.wait()
            if recorder.stdout is not None:
                recorder.stdout.close()
    loaded = load_cassette(cassette)
    assert len(loaded.exchanges) >= 3
    assert all(e.status == 200 and len(e.images) == 1 for e in loaded.exchanges)


def _wait_for(base: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        try:
            requests.get(base + "/__mock/health", timeout=1)
            return
        except requests.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.05)

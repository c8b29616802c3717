"""The journal's queries and assertion helpers, and how they report a mismatch."""

import contextlib
import json
import threading
import time
from collections.abc import Callable
from unittest.mock import ANY

import httpx
import pytest

from mock_server import Settings, create_app
from mock_server.controls.display import TOO_DEEP
from mock_server.controls.journal import (
    HEADER_VALUE_BYTES,
    Journal,
    JournalAssertionError,
    JournalEntry,
)
from mock_server.http.app import FakeApp
from mock_server.http.server import BackgroundServer
from tests.conftest import AUTH, client_for

pytestmark = pytest.mark.anyio

FLUX2 = "blackforestlabs/flux-2"
FLUX2_MAX = "blackforestlabs/flux-2-max"
GENERATIONS = "/v1/images/generations"
JSON_AUTH = {**AUTH, "Content-Type": "application/json"}


@pytest.fixture
def journal(app: FakeApp) -> Journal:
    journal: Journal = app.journal
    return journal


async def generate(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await client.post(GENERATIONS, json={"model": FLUX2, **body}, headers=AUTH)


async def test_failures_are_assertion_errors(journal: Journal) -> None:
    assert issubclass(JournalAssertionError, AssertionError)
    with pytest.raises(JournalAssertionError, match=r"^aimlapi-mock received no request$"):
        _ = journal.last
    with pytest.raises(JournalAssertionError, match="received no generation request"):
        _ = journal.last_generation


async def test_queries(client: httpx.AsyncClient, journal: Journal) -> None:
    url = (await generate(client, prompt="a")).json()["data"][0]["url"]
    await client.get(url)
    await generate(client, prompt="b", model=FLUX2_MAX)
    await generate(client, prompt="c", seed=0)
    assert [e.body["prompt"] for e in journal.generations()] == ["a", "b", "c"]
    assert [e.body["prompt"] for e in journal.generations(FLUX2)] == ["a", "c"]
    assert [e.body["prompt"] for e in journal.filter(model=FLUX2_MAX)] == ["b"]
    assert [e.body["prompt"] for e in journal.filter(status=400)] == ["c"]
    assert [e.status for e in journal.filter(method="get")] == [200]
    assert journal.last_generation.body["prompt"] == "c"
    assert journal.last.body["prompt"] == "c"
    assert journal[1].method == "GET" and len(journal) == 4
    assert "POST /v1/images/generations 400" in repr(journal.last)


async def test_assertions_that_hold(client: httpx.AsyncClient, journal: Journal) -> None:
    journal.assert_not_called()
    await generate(client, prompt="a cat", num_images=2)
    entry = journal.assert_called_once_with(prompt="a cat", num_images=2, model=ANY)
    assert entry is journal.last_generation
    await generate(client, prompt="a dog")
    journal.assert_called()
    journal.assert_called(times=2)
    journal.assert_called(times=2, model=FLUX2)
    journal.assert_called_with(prompt="a dog")
    assert journal.assert_any_call(prompt="a cat").body["num_images"] == 2


async def test_called_with_shows_each_difference(
    client: httpx.AsyncClient, journal: Journal
) -> None:
    await generate(client, prompt="a dog", image_size={"width": 1024, "height": 768})
    with pytest.raises(JournalAssertionError) as failure:
        journal.assert_called_with(
            prompt="a cat", num_images=2, image_size={"width": 512, "height": 768}
        )
    assert str(failure.value).splitlines() == [
        "the last generation request (#1: POST /v1/images/generations) does not match:",
        "  prompt: expected 'a cat', received 'a dog'",
        "  num_images: expected 2, but the field is absent",
        "  image_size: expected {'width': 512, 'height': 768}, "
        "received {'width': 1024, 'height': 768}",
        'received body: {"image_size": {"height": 768, "width": 1024}, '
        '"model": "blackforestlabs/flux-2", "prompt": "a dog"}',
    ]


async def test_long_values_get_a_diff(client: httpx.AsyncClient, journal: Journal) -> None:
    await generate(client, prompt="A T-Rex relaxing on a beach, lying on a sun lounger")
    with pytest.raises(JournalAssertionError) as failure:
        journal.assert_called_with(prompt="A T-Rex relaxing on a beach, lying on a deck chair")
    assert "    (- expected, + received)" in str(failure.value).splitlines()
    assert "    - 'A T-Rex relaxing on a beach, lying on a deck chair'" in str(failure.value)
    assert "    + 'A T-Rex relaxing on a beach, lying on a sun lounger'" in str(failure.value)


async def test_call_counts_list_what_arrived(client: httpx.AsyncClient, journal: Journal) -> None:
    await generate(client, prompt="a")
    await generate(client, prompt="b", seed=-1)
    with pytest.raises(JournalAssertionError) as failure:
        journal.assert_called_once_with(prompt="b")
    assert str(failure.value).splitlines() == [
        "expected 1 generation request, aimlapi-mock received 2:",
        '  #1 POST /v1/images/generations -> 200: {"model": "blackforestlabs/flux-2", '
        '"prompt": "a"}',
        '  #2 POST /v1/images/generations -> 400: {"model": "blackforestlabs/flux-2", '
        '"prompt": "b", "seed": -1}',
    ]
    with pytest.raises(JournalAssertionError, match="expected 0 generation requests, aimlapi"):
        journal.assert_not_called()
    with pytest.raises(JournalAssertionError, match="for 'blackforestlabs/flux-2-max'"):
        journal.assert_called(model=FLUX2_MAX)


async def test_any_call_explains_every_request(client: httpx.AsyncClient, journal: Journal) -> None:
    await generate(client, prompt="a")
    await generate(client, prompt="b")
    with pytest.raises(JournalAssertionError) as failure:
        journal.assert_any_call(prompt="c")
    assert str(failure.value).splitlines() == [
        "no generation request has prompt='c'; aimlapi-mock received 2:",
        "  #1 POST /v1/images/generations:",
        "    prompt: expected 'c', received 'a'",
        "  #2 POST /v1/images/generations:",
        "    prompt: expected 'c', received 'b'",
    ]


async def test_last_generation_mentions_other_requests(
    client: httpx.AsyncClient, journal: Journal
) -> None:
    await client.get("/v1/nope")
    with pytest.raises(JournalAssertionError) as failure:
        journal.assert_called_with(prompt="x")
    assert str(failure.value).splitlines() == [
        "aimlapi-mock received no generation request, only:",
        "  #1 GET /v1/nope -> 404: null",
    ]


async def test_non_json_bodies_are_kept_as_text(
    client: httpx.AsyncClient, journal: Journal
) -> None:
    await client.post(GENERATIONS, content=b"prompt=x", headers={**AUTH, "content-type": "text/x"})
    assert journal.last.body == "prompt=x"
    assert journal.last.raw_body == b"prompt=x"
    assert journal.last.model is None
    with pytest.raises(JournalAssertionError, match="prompt: expected 'x', but the field"):
        journal.assert_called_with(prompt="x")


async def test_clear_forgets_entries_and_errors(
    client: httpx.AsyncClient, journal: Journal
) -> None:
    await generate(client, prompt="a")
    journal.errors.append(RuntimeError("x"))
    journal.clear()
    assert (len(journal), journal.errors) == (0, [])


# Whatever arrived, the journal can show it --------------------------------------------------

HOSTILE = [
    pytest.param(b'{"model": "blackforestlabs/flux-2", "prompt": NaN, "seed": Infinity}', id="nan"),
    pytest.param(b'{"prompt": "x", "seed": 1e999, "n": -Infinity}', id="huge-number"),
    pytest.param(b"[" * 1000 + b"]" * 1000, id="deep-1000"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep-100000"),
    pytest.param(b'{"model": "blackforestlabs/flux-2", "prompt": "\\ud800x"}', id="lone-surrogate"),
    pytest.param(b'{"\\udfff": 1}', id="surrogate-key"),
    pytest.param(b"\xff\xfe not utf-8 \xc3", id="not-utf-8"),
    pytest.param(b'{"n": ' + b"9" * 5000 + b"}", id="long-integer"),
]


@pytest.mark.parametrize("raw", HOSTILE)
async def test_every_entry_is_readable_and_serialisable(
    client: httpx.AsyncClient, journal: Journal, raw: bytes
) -> None:
    await client.post(
        GENERATIONS, content=raw, headers={**AUTH, "Content-Type": "application/json"}
    )
    entry = journal.last
    assert entry.raw_body == raw
    repr(entry)
    json.dumps(entry.as_json(), allow_nan=False).encode("utf-8")  # what the admin route sends
    journal.assert_called(times=1)
    listed = await client.get("/__mock/requests")
    assert listed.status_code == 200
    assert listed.json()[0]["body_size"] == len(raw)


async def test_display_keeps_odd_values_as_text(
    client: httpx.AsyncClient, journal: Journal
) -> None:
    raw = b'{"a": NaN, "b": 1e999, "c": "\\ud800x", "d": ' + b"[" * 80 + b"]" * 80 + b"}"
    await client.post(
        GENERATIONS, content=raw, headers={**AUTH, "Content-Type": "application/json"}
    )
    body = journal.last.body
    assert body["a"] == "NaN"
    assert body["b"] == "1e999"
    assert body["c"] == "\\ud800x"
    depth, value = 0, body["d"]
    while isinstance(value, list):
        depth, value = depth + 1, value[0]
    assert depth < 80 and value == TOO_DEEP


# Credentials never come back ----------------------------------------------------------------


async def test_credentials_are_redacted(make_app: Callable[..., FakeApp]) -> None:
    app = make_app(redact_headers=("x-session",))
    headers = {
        **AUTH,
        "Proxy-Authorization": "Basic dXNlcjpwdw==",
        "X-Api-Key": "sk-secret-1",
        "Api-Key": "sk-secret-2",
        "Cookie": "session=secret-3",
        "X-Session": "secret-4",
        "X-Trace": "kept",
    }
    body = {"model": FLUX2, "prompt": "p", "api_key": "sk-secret-5", "clientSecret": "secret-6",
            "nested": {"access_token": "secret-7"}, "max_tokens": 9}  # fmt: skip
    async with client_for(app) as client:
        await client.post(GENERATIONS, json=body, headers=headers)
        listed = (await client.get("/__mock/requests")).text
    # Long enough never to occur by chance in an image URL (short ones did, now and then).
    assert "secret-" not in listed
    for secret in ("test-key", "dXNlcjpwdw"):
        assert secret not in listed
    entry = app.journal.last
    assert entry.headers["authorization"] == "Bearer <redacted>"
    assert entry.headers["proxy-authorization"] == "Basic <redacted>"
    assert entry.headers["x-trace"] == "kept"
    assert entry.body["nested"] == {"access_token": "<redacted>"}
    assert entry.body["max_tokens"] == 9


# Bounded in bytes, paged ----------------------------------------------------------------------


def entry_with(body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> JournalEntry:
    return JournalEntry(
        0.0, "POST", GENERATIONS, b"", headers or [], body, True, 200, [], None, 0.0
    )


def test_the_journal_is_bounded_in_bytes() -> None:
    journal = Journal(limit=1000, max_bytes=2_000_000, body_bytes=100_000)
    for _ in range(100):
        journal.record(entry_with(b"x" * 1_000_000))
    assert journal.size_in_bytes <= 2_000_000
    assert 10 <= len(journal) <= 20
    entry = journal.last
    assert (entry.body_truncated, entry.body_size, len(entry.raw_body)) == (
        True,
        1_000_000,
        100_000,
    )


def test_long_header_values_are_kept_truncated() -> None:
    journal = Journal()
    journal.record(entry_with(b"{}", [(b"x-long", b"v" * 50_000), (b"host", b"t")]))
    entry = journal.last
    assert entry.headers_truncated
    assert len(entry.headers["x-long"]) == HEADER_VALUE_BYTES
    assert entry.headers["host"] == "t"


async def test_the_admin_route_pages(client: httpx.AsyncClient) -> None:
    for number in range(7):
        await generate(client, prompt=f"p{number}")
    first = await client.get("/__mock/requests", params={"limit": 3})
    assert [e["body"]["prompt"] for e in first.json()] == ["p0", "p1", "p2"]
    assert first.headers["x-total-count"] == "7"
    following = first.headers["link"].partition(">")[0].removeprefix("<")
    second = await client.get(following)
    assert [e["body"]["prompt"] for e in second.json()] == ["p3", "p4", "p5"]
    last = await client.get("/__mock/requests", params={"offset": 6, "limit": 3})
    assert [e["body"]["prompt"] for e in last.json()] == ["p6"]
    assert "link" not in last.headers
    bad = await client.get("/__mock/requests", params={"limit": "lots"})
    assert bad.status_code == 400
    assert "limit='lots'" in bad.json()["message"]


# In flight, and after a transport fault, over a socket ----------------------------------------


def test_held_and_closed_requests_are_listed() -> None:
    import requests

    app = create_app(Settings(latency="fixed=30"))
    with BackgroundServer(app) as server:
        url = server.base_url + GENERATIONS
        body = {"model": FLUX2, "prompt": "held"}
        held = threading.Thread(
            target=lambda: _quietly(requests.post, url, json=body, headers=AUTH, timeout=1.5)
        )
        held.start()
        deadline = time.monotonic() + 5
        while not len(app.journal) and time.monotonic() < deadline:
            time.sleep(0.01)
        listed = requests.get(server.base_url + "/__mock/requests", timeout=5)
        assert listed.status_code == 200
        assert listed.json()[0]["body"]["prompt"] == "held"
        held.join()
        with pytest.raises(requests.ConnectionError):
            # An invalid body: latency holds only successful generations.
            requests.post(url, json={}, headers={**AUTH, "Prefer": "close"}, timeout=5)
        listed = requests.get(server.base_url + "/__mock/requests", timeout=5)
        assert listed.status_code == 200
        closed = listed.json()[-1]
        assert (closed["status"], closed["request_id"], closed["fault"]) == (None, None, "close")
        assert app.journal.last.request_id is None


def _quietly(call: Callable[..., object], *args: object, **kwargs: object) -> None:
    with contextlib.suppress(Exception):
        call(*args, **kwargs)

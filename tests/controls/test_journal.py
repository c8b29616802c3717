"""The journal's queries and assertion helpers, and how they report a mismatch."""

from unittest.mock import ANY

import httpx
import pytest

from mock_server.controls.journal import Journal, JournalAssertionError
from mock_server.http.app import FakeApp
from tests.conftest import AUTH

pytestmark = pytest.mark.anyio

FLUX2 = "blackforestlabs/flux-2"
FLUX2_MAX = "blackforestlabs/flux-2-max"
GENERATIONS = "/v1/images/generations"


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

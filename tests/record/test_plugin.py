"""Cassettes in the pytest plugin, the way a user meets them: ``pytester`` runs a small suite."""

import pytest

from mock_server.record import load_cassette
from tests.record.recording import KEY, upstream
from tests.record.test_replay import BODY, write_cassette

pytest_plugins = ["pytester"]

SUITE = """
import pytest
import requests

BODY = {"model": "blackforestlabs/flux-2", "prompt": "a cat", "image_size": "square"}


def post(fake, **body):
    return requests.post(
        fake.base_url + "/v1/images/generations",
        json={**BODY, **body},
        headers={"Authorization": "Bearer " + fake.api_key},
        timeout=10,
    )


@pytest.mark.aimlapi_mock(cassette="cassettes/cats")
def test_two_cats(aimlapi_mock):
    first, second = post(aimlapi_mock, seed=1), post(aimlapi_mock, seed=2)
    assert (first.status_code, second.status_code) == (200, 200), second.text
    image = requests.get(first.json()["data"][0]["url"], timeout=10)
    assert image.headers["content-type"] == "image/png"
    print("SOURCES", [entry.source for entry in aimlapi_mock.journal])
"""


def test_the_marker_replays_a_cassette_without_the_network(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AIMLAPI_KEY", raising=False)
    write_cassette(pytester.path / "cassettes" / "cats", (BODY, 200, "first"))
    pytester.makepyfile(
        """
        import pytest
        import requests

        from tests.record.test_replay import BODY, PNG


        @pytest.mark.aimlapi_mock(cassette="cassettes/cats", replay_miss="error")
        def test_replayed(aimlapi_mock):
            headers = {"Authorization": "Bearer " + aimlapi_mock.api_key}
            url = aimlapi_mock.base_url + "/v1/images/generations"
            answer = requests.post(url, json=BODY, headers=headers, timeout=10)
            assert answer.headers["x-request-id"] == "first"
            image = requests.get(answer.json()["data"][0]["url"], timeout=10)
            assert image.content == PNG
            missed = requests.post(url, json={**BODY, "seed": 5}, headers=headers, timeout=10)
            assert missed.status_code == 404
            assert "differs in seed" in missed.json()["message"]


        @pytest.mark.aimlapi_mock(cassette="cassettes/none-such")
        def test_missing_cassette(aimlapi_mock):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.aimlapi_mock: *none-such: not a cassette*"])


def test_record_new_then_replay_then_all(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(SUITE)
    cassette = pytester.path / "cassettes" / "cats"
    monkeypatch.setenv("AIMLAPI_KEY", KEY)
    with upstream() as (url, app):
        recorded = pytester.runpytest(
            "-p", "no:cacheprovider", "-s", "--aimlapi-record=new", f"--aimlapi-upstream={url}"
        )
        recorded.assert_outcomes(passed=1)
        assert len(app.generations(KEY)) == 2
    recorded.stdout.fnmatch_lines(["*SOURCES ?'upstream', 'upstream', 'recorded image'?"])
    first = load_cassette(cassette).exchanges
    assert [e.body["seed"] for e in first] == [1, 2]

    # The upstream is gone: the default mode replays, offline.
    replayed = pytester.runpytest("-p", "no:cacheprovider", "-s")
    replayed.assert_outcomes(passed=1)
    replayed.stdout.fnmatch_lines(["*SOURCES ?'replay *0001.json', 'replay *0002.json', *"])

    # 'all' records afresh, under the cap of the whole run.
    with upstream() as (url, app):
        capped = pytester.runpytest(
            "-p", "no:cacheprovider", "--aimlapi-record=all", f"--aimlapi-upstream={url}",
            "--aimlapi-max-requests=1",
        )  # fmt: skip
        capped.assert_outcomes(failed=1)
        capped.stdout.fnmatch_lines(
            ["*cap of 1 image-creating requests*", "*assert (200, 429) == (200, 200)"]
        )
        assert len(app.generations(KEY)) == 1
    assert load_cassette(cassette).exchanges == first  # a failed 'all' run keeps the old one

    with upstream() as (url, app):
        fresh = pytester.runpytest(
            "-p", "no:cacheprovider", "--aimlapi-record=all", f"--aimlapi-upstream={url}"
        )
        fresh.assert_outcomes(passed=1)
    again = load_cassette(cassette).exchanges
    assert [e.body["seed"] for e in again] == [1, 2]
    assert {e.response_headers["x-request-id"] for e in again}.isdisjoint(
        e.response_headers["x-request-id"] for e in first
    )
    assert not cassette.with_name("cats.recording").exists()

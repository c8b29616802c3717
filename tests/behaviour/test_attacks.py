"""What an attacker found answered 500 once: each must now get a proper answer, and leave the
admin routes working."""

from __future__ import annotations

import random

import pytest

from mock_server.controls.latency import MAX_DELAY_SECONDS, Latency
from mock_server.http import events
from mock_server.http.app import FakeApp
from tests.conftest import AUTH, GENERATIONS, client_for

pytestmark = pytest.mark.anyio


async def test_a_lone_surrogate_model_does_not_break_the_metrics(app: FakeApp) -> None:
    async with client_for(app) as client:
        refused = await client.post(
            GENERATIONS,
            content=b'{"model": "\\udfff", "prompt": "x"}',
            headers={**AUTH, "Content-Type": "application/json"},
        )
        metrics = await client.get("/__mock/metrics")
    assert refused.status_code == 400
    assert metrics.status_code == 200 and b"aimlapi_mock_requests_total" in metrics.content


async def test_a_lone_surrogate_in_a_fault_rule_does_not_break_the_faults_route(
    app: FakeApp,
) -> None:
    async with client_for(app) as client:
        added = await client.post(
            "/__mock/faults",
            content=b'"code=503, model=\\ud800"',  # the escape a JSON client sends
            headers={"Content-Type": "application/json"},
        )
        listed = await client.get("/__mock/faults")
    assert added.status_code == 201 and listed.status_code == 200
    assert listed.json()["faults"] == ["code=503, model=\\ud800"]


def test_latency_draws_never_overflow_and_stay_bounded() -> None:
    wild = Latency.parse("lognormal=1, sigma=1000, max=1")
    assert wild is not None
    rng = random.Random(1)
    draws = [wild.sample(rng) for _ in range(200)]
    assert all(0 <= draw <= 1 for draw in draws)
    huge = Latency.parse("fixed=1e308, per=megapixel")
    assert huge is not None and huge.sample(rng, 4.0) == MAX_DELAY_SECONDS


@pytest.mark.parametrize(
    "query",
    [
        {"start": "0001-01-01T00:00:00+14:00", "end": "0001-01-02"},
        {"start": "9999-12-31T00:00:00-12:00", "end": "9999-12-31T23:59:59-12:00"},
    ],
    ids=["before-year-1", "after-year-9999"],
)
async def test_dates_at_the_ends_of_the_calendar_get_a_400_from_the_logs(
    app: FakeApp, query: dict[str, str]
) -> None:
    async with client_for(app) as client:
        response = await client.get("/v2/logs", params=query, headers=AUTH)
    assert response.status_code == 400
    assert "Date out of range" in response.json()["message"]


async def test_journal_streams_are_bounded_in_number(
    app: FakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events, "MAX_LISTENERS", 0)
    async with client_for(app) as client:
        response = await client.get("/__mock/events")
    assert response.status_code == 429
    assert "journal streams" in response.json()["message"]


async def test_a_long_body_is_shown_cut_on_the_page(app: FakeApp) -> None:
    async with client_for(app) as client:
        await client.post(GENERATIONS, json={"model": "x", "pad": "y" * 200_000}, headers=AUTH)
    shown = events.page_json(app.journal.last)
    assert isinstance(shown["body"], str)
    assert len(shown["body"]) < events.SHOWN_TEXT_CHARS + 100
    assert shown["body"].endswith("(cut: see GET /__mock/requests)")

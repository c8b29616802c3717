"""``GET /__mock/metrics``: what the fake did, in the Prometheus text format."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mock_server.http.app import FakeApp
from mock_server.http.metrics import BATCH
from tests.conftest import AUTH, client_for

pytestmark = pytest.mark.anyio

FLUX2 = "blackforestlabs/flux-2"
FLUX2_MAX = "blackforestlabs/flux-2-max"
GENERATIONS = "/v1/images/generations"


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = await client.get("/__mock/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def requests_total(route: str, status: str, model: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    labels = {"route": route, "status": status, "model": model}
    return "aimlapi_mock_requests_total", tuple(sorted(labels.items()))


async def test_requests_by_route_status_and_model(client: httpx.AsyncClient) -> None:
    made = await client.post(GENERATIONS, json={"model": FLUX2, "prompt": "p"}, headers=AUTH)
    await client.post(GENERATIONS + "/", json={"model": FLUX2, "prompt": "p"}, headers=AUTH)
    await client.post(GENERATIONS, json={"model": FLUX2_MAX, "prompt": 1}, headers=AUTH)
    await client.post(GENERATIONS, json={"model": "not-served", "prompt": "p"}, headers=AUTH)
    await client.post(GENERATIONS, json={"prompt": "p", "extra": {"a": "model"}}, headers=AUTH)
    await client.post(GENERATIONS, json={"model": FLUX2, "prompt": "p"})  # no key: 401
    url = made.json()["data"][0]["url"]
    for _ in range(3):
        await client.get(url)
    await client.get("/nowhere/at/all")
    await client.post(
        GENERATIONS, json={"model": FLUX2, "prompt": "p"}, headers={**AUTH, "Prefer": "code=503"}
    )
    metrics = await scrape(client)
    assert metrics[requests_total(GENERATIONS, "200", FLUX2)] == 2
    assert metrics[requests_total(GENERATIONS, "400", FLUX2_MAX)] == 1
    assert metrics[requests_total(GENERATIONS, "400", "other")] == 1
    assert metrics[requests_total(GENERATIONS, "400", "")] == 1
    assert metrics[requests_total(GENERATIONS, "401", FLUX2)] == 1
    assert metrics[requests_total(GENERATIONS, "503", FLUX2)] == 1
    assert metrics[requests_total("/files", "200", "")] == 3
    assert metrics[requests_total("other", "404", "")] == 1
    # Admin calls are not counted: they are not requests to the fake's API.
    assert not any("__mock" in str(key) for key in metrics)

    durations = "aimlapi_mock_request_duration_seconds"
    assert metrics[(f"{durations}_count", (("route", GENERATIONS),))] == 7
    assert metrics[(f"{durations}_bucket", (("le", "+Inf"), ("route", "/files")))] == 3
    assert metrics[(f"{durations}_bucket", (("le", "60.0"), ("route", "/files")))] == 3
    assert 0 < metrics[(f"{durations}_sum", (("route", "/files"),))] < 30

    assert metrics[("aimlapi_mock_faults_injected_total", (("kind", "status"),))] == 1
    assert metrics[("aimlapi_mock_image_renders_total", ())] == 1
    assert metrics[("aimlapi_mock_image_cache_hits_total", ())] == 2
    assert metrics[("aimlapi_mock_image_cache_misses_total", ())] == 1
    assert metrics[("aimlapi_mock_image_cache_images", ())] == 1
    assert metrics[("aimlapi_mock_image_cache_bytes", ())] > 1000
    assert metrics[("aimlapi_mock_journal_entries", ())] == 11


@pytest.mark.parametrize(
    ("body", "model"),
    [
        pytest.param(b'{"model":"blackforestlabs/flux-2","prompt":"p"}', FLUX2, id="compact"),
        pytest.param(b'{"model" :\n "blackforestlabs/flux-2-max"}', FLUX2_MAX, id="spaced"),
        pytest.param(b'{"prompt": "model", "model": "blackforestlabs/flux-2"}', FLUX2, id="twice"),
        pytest.param(b'{"model": "blackforestlabs\\/flux-2"}', FLUX2, id="escaped"),
        pytest.param(b'{"model": "blackforestlabs/flux-2-maxi"}', "other", id="not-served"),
        pytest.param(b'{"model": 7}', "", id="not-a-string"),
        pytest.param(b"not json", "", id="not-json"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "", id="too-deep"),
    ],
)
async def test_the_model_label_matches_the_decoded_body(
    app: FakeApp, body: bytes, model: str
) -> None:
    async with client_for(app) as client:
        await client.post(
            GENERATIONS, content=body, headers={**AUTH, "content-type": "application/json"}
        )
        (entry,) = app.journal.entries
        assert app.metrics._model(entry.raw_body) == model
        if model not in ("", "other"):
            assert entry.model == model


async def test_each_app_counts_its_own(make_app: Callable[..., FakeApp]) -> None:
    first, second = make_app(), make_app()
    async with client_for(first) as one, client_for(second) as other:
        await one.post(GENERATIONS, json={"model": FLUX2, "prompt": "p"}, headers=AUTH)
        assert (await scrape(one))[requests_total(GENERATIONS, "200", FLUX2)] == 1
        assert requests_total(GENERATIONS, "200", FLUX2) not in await scrape(other)


@pytest.mark.parametrize(
    ("prefer", "kind"),
    [("close", "close"), ("truncate", "truncate"), ("delay=0.01", "delay")],
)
async def test_faults_by_kind(client: httpx.AsyncClient, prefer: str, kind: str) -> None:
    # In process, a transport fault reaches the caller as ConnectionResetError.
    with contextlib.suppress(ConnectionResetError):
        await client.post(
            GENERATIONS, json={"model": FLUX2, "prompt": "p"}, headers={**AUTH, "Prefer": prefer}
        )
    metrics = await scrape(client)
    assert metrics[("aimlapi_mock_faults_injected_total", (("kind", kind),))] == 1


async def test_requests_are_counted_in_bounded_batches(app: FakeApp) -> None:
    async with client_for(app) as client:
        for _ in range(BATCH + 3):
            await client.get("/nowhere")
    assert len(app.metrics._pending) == 3  # the first BATCH were counted as the batch filled
    cells, _ = app.metrics.snapshot()
    assert cells[("other", 404, "")][0] == BATCH + 3
    assert not app.metrics._pending

"""Faults, latency and journaling in front of the fake, and the admin routes, in process."""

import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml
from jsonschema import Draft7Validator

from mock_server import ConfigError, SpecSet, create_app
from mock_server.controls.faults import FORCEABLE_STATUSES, FaultPlan
from mock_server.controls.journal import Journal
from mock_server.errors import STATUS_MESSAGES
from mock_server.http.app import FakeApp
from mock_server.spec.load import bundled_specs_dir
from tests.conftest import AUTH

pytestmark = pytest.mark.anyio

FLUX2 = "blackforestlabs/flux-2"
FLUX2_MAX = "blackforestlabs/flux-2-max"
GENERATIONS = "/v1/images/generations"
BODY = {"model": FLUX2, "prompt": "a lighthouse at dusk"}


def client_for(app: FakeApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def journal_of(app: FakeApp) -> Journal:
    journal: Journal = app.journal
    return journal


def faults_of(app: FakeApp) -> FaultPlan:
    plan: FaultPlan = app.faults
    return plan


# --- forced errors look like the real API's ---------------------------------------------------


@pytest.mark.parametrize("model", [FLUX2, FLUX2_MAX])
@pytest.mark.parametrize("status", FORCEABLE_STATUSES)
async def test_forced_errors_match_their_documented_schema(
    client: httpx.AsyncClient, bundled: SpecSet, model: str, status: int
) -> None:
    response = await client.post(
        GENERATIONS,
        json={"model": model, "prompt": "p"},
        headers={**AUTH, "Prefer": f"code={status}"},
    )
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    body = response.json()
    assert body["message"] == STATUS_MESSAGES[status]
    assert body["requestId"] == response.headers["x-request-id"]
    for path in (GENERATIONS, "/images/generations"):
        documented = bundled.models_for("POST", path)[model].response_schemas[status]
        assert documented is not None
        assert list(Draft7Validator(documented).iter_errors(body)) == []


async def test_forced_429_carries_a_retry_after_the_spec_allows(client: httpx.AsyncClient) -> None:
    document = yaml.safe_load((bundled_specs_dir() / "flux-2.yaml").read_text())
    schema = document["components"]["headers"]["RetryAfter"]["schema"]
    for prefer, expected in (("code=429", 1), ("code=429, retry-after=0", 0)):
        response = await client.post(GENERATIONS, json=BODY, headers={**AUTH, "Prefer": prefer})
        assert response.status_code == 429
        Draft7Validator(schema).validate(int(response.headers["retry-after"]))
        assert int(response.headers["retry-after"]) == expected


async def test_scripted_faults_send_the_same_envelope(app: FakeApp) -> None:
    faults_of(app).fail(502, times=1)
    async with client_for(app) as client:
        first = await client.post(GENERATIONS, json=BODY, headers=AUTH)
        second = await client.post(GENERATIONS, json=BODY, headers=AUTH)
    assert (first.status_code, first.json()["message"]) == (502, "Bad Gateway")
    assert first.json()["path"] == GENERATIONS
    assert second.status_code == 200
    assert [(e.status, e.fault) for e in journal_of(app)] == [(502, "code=502"), (200, None)]


async def test_a_fault_wins_but_the_journal_keeps_the_violations(app: FakeApp) -> None:
    async with client_for(app) as client:
        response = await client.post(
            GENERATIONS, json={**BODY, "seed": -1}, headers={**AUTH, "Prefer": "code=503"}
        )
    assert response.status_code == 503
    entry = journal_of(app).last
    assert (entry.status, entry.fault) == (503, "code=503")
    assert [v.field for v in entry.violations] == ["seed"]
    assert entry.image_urls == []


async def test_prefer_and_rules_together(app: FakeApp) -> None:
    faults_of(app).fail(503, times=1)
    async with client_for(app) as client:
        forced = await client.post(GENERATIONS, json=BODY, headers={**AUTH, "Prefer": "code=429"})
        started = time.monotonic()
        delayed = await client.post(GENERATIONS, json=BODY, headers={**AUTH, "Prefer": "delay=0.1"})
        elapsed = time.monotonic() - started
        after = await client.post(GENERATIONS, json=BODY, headers=AUTH)
    # A Prefer status wins and leaves the rule for the next request; a Prefer delay adds to it.
    assert [forced.status_code, delayed.status_code, after.status_code] == [429, 503, 200]
    assert elapsed >= 0.1
    assert journal_of(app)[1].fault == "code=503, delay=0.1"


async def test_bad_prefer_values_are_refused_with_the_reason(client: httpx.AsyncClient) -> None:
    response = await client.post(GENERATIONS, json=BODY, headers={**AUTH, "Prefer": "code=418"})
    assert response.status_code == 400
    assert response.json()["message"].startswith("Prefer header: code=418 is not a status")


async def test_unknown_preferences_are_ignored(client: httpx.AsyncClient) -> None:
    response = await client.post(
        GENERATIONS, json=BODY, headers={**AUTH, "Prefer": "wait=5, return=minimal"}
    )
    assert response.status_code == 200


async def test_rules_fail_api_requests_only_but_prefer_reaches_downloads(app: FakeApp) -> None:
    async with client_for(app) as client:
        url = (await client.post(GENERATIONS, json=BODY, headers=AUTH)).json()["data"][0]["url"]
        faults_of(app).fail(500)
        assert (await client.get(url)).status_code == 200
        assert (await client.get("/nope")).status_code == 404
        assert (await client.get(url, headers={"Prefer": "code=503"})).status_code == 503
        assert (await client.post(GENERATIONS, json=BODY, headers=AUTH)).status_code == 500


async def test_model_rule_leaves_other_models_alone(app: FakeApp) -> None:
    faults_of(app).fail("code=500, model=blackforestlabs/flux-2-max")
    async with client_for(app) as client:
        flux2 = await client.post(GENERATIONS, json=BODY, headers=AUTH)
        flux2_max = await client.post(GENERATIONS, json={**BODY, "model": FLUX2_MAX}, headers=AUTH)
    assert (flux2.status_code, flux2_max.status_code) == (200, 500)


async def test_transport_faults_in_process_reach_the_caller_as_connection_errors(
    client: httpx.AsyncClient,
) -> None:
    for prefer in ("close", "truncate"):
        with pytest.raises(ConnectionResetError):
            await client.post(GENERATIONS, json=BODY, headers={**AUTH, "Prefer": prefer})


# --- latency and delays --------------------------------------------------------------------


async def test_prefer_delay_holds_the_answer(client: httpx.AsyncClient) -> None:
    started = time.monotonic()
    response = await client.post(GENERATIONS, json=BODY, headers={**AUTH, "Prefer": "delay=0.2"})
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


async def test_latency_applies_to_successful_generations_only(
    app: FakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = faults_of(app)
    plan.set_latency("fixed=0.5, per=megapixel")
    scales: list[float] = []

    def spy(scale: Callable[[], float]) -> float:
        scales.append(scale())
        return 0.0

    monkeypatch.setattr(plan, "delay_for", spy)
    async with client_for(app) as client:
        await client.post(
            GENERATIONS,
            json={**BODY, "num_images": 2, "image_size": {"width": 2048, "height": 1024}},
            headers=AUTH,
        )
        await client.post(GENERATIONS, json={**BODY, "seed": -1}, headers=AUTH)
        await client.post(GENERATIONS, json=BODY)  # 401
        await client.post(GENERATIONS, json=BODY, headers={**AUTH, "Prefer": "code=503"})
    assert scales == [4.0]  # 2 MP × 2 images; errors answer at once


async def test_latency_delays_a_generation(make_app: Callable[..., FakeApp]) -> None:
    app = make_app(latency="fixed=0.05, per=image")
    async with client_for(app) as client:
        started = time.monotonic()
        response = await client.post(GENERATIONS, json={**BODY, "num_images": 4}, headers=AUTH)
    assert response.status_code == 200
    assert time.monotonic() - started >= 0.2


# --- the journal as the interceptor fills it ------------------------------------------------


async def test_every_request_is_journaled_with_what_the_fake_answered(app: FakeApp) -> None:
    async with client_for(app) as client:
        ok = await client.post(GENERATIONS, json=BODY, headers={**AUTH, "X-Title": "demo"})
        url = ok.json()["data"][0]["url"]
        await client.get(url)
        await client.post(GENERATIONS, json=BODY)
        await client.post(GENERATIONS, json={**BODY, "output_format": "gif"}, headers=AUTH)
        await client.get("/v1/nope?x=1")
    generation, download, unauthorised, invalid, unknown = journal_of(app)
    assert (generation.method, generation.path, generation.status) == ("POST", GENERATIONS, 200)
    assert generation.body == BODY and generation.model == FLUX2
    assert generation.headers["authorization"] == "Bearer <redacted>"
    assert generation.headers["x-title"] == "demo"
    assert generation.image_urls == [url]
    assert generation.request_id == ok.headers["x-request-id"]
    assert generation.duration is not None and generation.duration >= 0
    assert (download.path, download.status, download.is_generation) == (
        url.removeprefix("http://t"),
        200,
        False,
    )
    assert download.response_body is None  # image bytes are not kept
    assert (unauthorised.status, unauthorised.body) == (401, BODY)  # body kept though unread
    assert "authorization" not in unauthorised.headers
    assert [v.field for v in invalid.violations] == ["output_format"]
    assert (unknown.status, unknown.query, unknown.is_generation) == (404, "x=1", False)


async def test_journal_keeps_the_latest_entries_and_can_be_off(
    make_app: Callable[..., FakeApp],
) -> None:
    small, off = make_app(journal_size=2), make_app(journal_size=0)
    for app in (small, off):
        async with client_for(app) as client:
            for prompt in "abc":
                await client.post(GENERATIONS, json={**BODY, "prompt": prompt}, headers=AUTH)
    assert [entry.body["prompt"] for entry in journal_of(small)] == ["b", "c"]
    assert len(journal_of(off)) == 0


async def test_exceptions_inside_the_fake_are_kept(
    app: FakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(app.service, "generate", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(GENERATIONS, json=BODY, headers=AUTH)
    assert response.status_code == 500
    (error,) = journal_of(app).errors
    assert str(error) == "boom"
    assert journal_of(app).last.error is error and journal_of(app).last.status == 500


# --- admin routes -----------------------------------------------------------------------------


async def test_journal_over_http(client: httpx.AsyncClient) -> None:
    await client.post(GENERATIONS, json=BODY, headers=AUTH)
    await client.post(GENERATIONS, json={**BODY, "model": FLUX2_MAX}, headers=AUTH)
    listed = (await client.get("/__mock/requests")).json()
    assert [(e["method"], e["path"], e["status"], e["model"]) for e in listed] == [
        ("POST", GENERATIONS, 200, FLUX2),
        ("POST", GENERATIONS, 200, FLUX2_MAX),
    ]
    assert listed[0]["headers"]["authorization"] == "Bearer <redacted>"
    assert listed[0]["body"] == BODY and listed[0]["time"].endswith("Z")
    assert len(listed[0]["image_urls"]) == 1
    only_max = (await client.get("/__mock/requests", params={"model": FLUX2_MAX})).json()
    assert [e["model"] for e in only_max] == [FLUX2_MAX]
    assert (await client.delete("/__mock/requests")).status_code == 204
    assert (await client.get("/__mock/requests")).json() == []  # admin calls are not journaled


async def test_fault_controls_over_http(client: httpx.AsyncClient) -> None:
    added = await client.post("/__mock/faults", json="code=503, times=1")
    assert (added.status_code, added.json()) == (201, {"fault": "code=503, times=1"})
    added = await client.post(
        "/__mock/faults", json={"code": 429, "retry_after": 0, "model": FLUX2}
    )
    assert added.json() == {"fault": f"code=429, retry-after=0, model={FLUX2}"}
    latency = await client.put("/__mock/latency", json="fixed=0.01")
    assert latency.json() == {"latency": "fixed=0.01"}
    assert (await client.get("/__mock/faults")).json() == {
        "faults": ["code=503, times=1", f"code=429, retry-after=0, model={FLUX2}"],
        "latency": "fixed=0.01",
    }
    statuses = [(await client.post(GENERATIONS, json=BODY, headers=AUTH)).status_code for _ in "ab"]
    assert statuses == [503, 429]
    assert (await client.delete("/__mock/faults")).status_code == 204
    assert (await client.get("/__mock/faults")).json() == {"faults": [], "latency": "fixed=0.01"}
    assert (await client.delete("/__mock/latency")).status_code == 204
    assert (await client.post(GENERATIONS, json=BODY, headers=AUTH)).status_code == 200


async def test_reset_over_http_returns_to_the_configured_faults(
    make_app: Callable[..., FakeApp],
) -> None:
    app = make_app(faults=("code=500, times=1",))
    async with client_for(app) as client:
        assert (await client.post(GENERATIONS, json=BODY, headers=AUTH)).status_code == 500
        await client.post("/__mock/faults", json="close")
        assert (await client.post("/__mock/reset")).status_code == 204
        assert (await client.get("/__mock/faults")).json()["faults"] == ["code=500, times=1"]
        assert (await client.get("/__mock/requests")).json() == []


@pytest.mark.parametrize(
    ("method", "path", "body", "fragment"),
    [
        ("POST", "/__mock/faults", "code=999", "Fault rule: code=999 is not a status"),
        ("POST", "/__mock/faults", 17, "expected a rule such as"),
        ("PUT", "/__mock/latency", "uniform=3..1", "Latency: uniform latency needs LOW..HIGH"),
        ("PUT", "/__mock/latency", [1], "expected latency such as"),
    ],
)
async def test_bad_controls_over_http_get_400(
    client: httpx.AsyncClient, method: str, path: str, body: object, fragment: str
) -> None:
    response = await client.request(method, path, json=body)
    assert response.status_code == 400
    assert fragment in response.json()["message"]


async def test_a_rule_can_be_sent_as_plain_text(client: httpx.AsyncClient) -> None:
    response = await client.post("/__mock/faults", content=b"code=504, times=2")
    assert response.json() == {"fault": "code=504, times=2"}


async def test_admin_routes_can_be_switched_off(make_app: Callable[..., FakeApp]) -> None:
    async with client_for(make_app(admin=False)) as client:
        response = await client.get("/__mock/requests")
    assert response.status_code == 404
    assert response.json()["message"] == "Cannot GET /__mock/requests"


def test_spec_paths_under_the_admin_prefix_are_refused(tmp_path: Path) -> None:
    document = yaml.safe_load((bundled_specs_dir() / "flux-2.yaml").read_text())
    document["paths"] = {"/__mock/generate": document["paths"][GENERATIONS]}
    spec = tmp_path / "clash.yaml"
    spec.write_text(yaml.safe_dump(document))
    from mock_server import Settings

    with pytest.raises(ConfigError, match="'/__mock/generate' collides with the admin routes"):
        create_app(Settings(specs=(str(spec),)))
    create_app(Settings(specs=(str(spec),), admin=False))

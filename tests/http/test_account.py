"""What the real API adds around a generation: tracing and cost headers, CORS, the ledger, the
model list, the balance and the logs. In process, and over a real socket for the client's view."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

import httpx
import pytest
import requests

from mock_server import MockServer
from mock_server.http.app import FakeApp
from tests.conftest import AUTH, client_for

pytestmark = pytest.mark.anyio

GENERATIONS = "/v1/images/generations"
FLUX2 = "blackforestlabs/flux-2"
EDIT = "blackforestlabs/flux-2-edit"
BODY = {"model": FLUX2, "prompt": "A T-Rex", "image_size": {"width": 1472, "height": 512}}
EXPOSED = {"x-inference-id", "x-client-request-id", "x-aimlapi-credits-used", "x-aimlapi-usd-spent"}


async def test_every_generation_answer_carries_the_tracing_and_cost_headers(app: FakeApp) -> None:
    async with client_for(app) as client:
        ok = await client.post(GENERATIONS, json=BODY, headers=AUTH)
        bad = await client.post(GENERATIONS, json={**BODY, "seed": 0}, headers=AUTH)
        unauthorised = await client.post(GENERATIONS, json=BODY)
    for response in (ok, bad, unauthorised):
        assert re.fullmatch(r"[A-Za-z0-9_-]{21}", response.headers["x-inference-id"])
        exposed = {h.strip() for h in response.headers["access-control-expose-headers"].split(",")}
        assert exposed == EXPOSED
    assert ok.headers["x-aimlapi-credits-used"] == "25200"  # the docs' 1472×512 example
    assert ok.headers["x-aimlapi-usd-spent"] == "0.012600000"
    assert ok.json()["meta"]["usage"]["credits_used"] == 25200
    assert (bad.headers["x-aimlapi-credits-used"], bad.headers["x-aimlapi-usd-spent"]) == (
        "0",
        "0.000000000",
    )
    assert ok.headers["x-inference-id"] != bad.headers["x-inference-id"]
    assert app.journal[0].inference_id == ok.headers["x-inference-id"]


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ("order-8f21c4", "order-8f21c4"),
        ("a.b_c:d-E9", "a.b_c:d-E9"),
        ("x" * 128, "x" * 128),
        ("x" * 129, None),
        ("has space", None),
        ("ünïcode", None),
        ("", None),
    ],
    ids=["doc-example", "every-allowed-kind", "128", "129", "space", "non-ascii", "empty"],
)
async def test_client_request_id_is_echoed_only_when_valid(
    app: FakeApp, sent: str, echoed: str | None
) -> None:
    async with client_for(app) as client:  # the raw UTF-8 bytes, as a client would send them
        headers = {**AUTH, "X-Client-Request-Id": sent.encode("utf-8")}
        response = await client.post(GENERATIONS, json=BODY, headers=headers)
    assert response.status_code == 200  # a malformed id never fails the request
    assert response.headers.get("x-client-request-id") == echoed


async def test_usd_in_the_body_equals_credits_over_two_million_and_the_headers(
    app: FakeApp,
) -> None:
    # flux-2-edit's success schema requires usd_spent; two issued 1024×768 inputs.
    async with client_for(app) as client:
        made = await client.post(GENERATIONS, json={**BODY, "num_images": 2}, headers=AUTH)
        urls = [item["url"] for item in made.json()["data"]]
        edit = await client.post(
            GENERATIONS, json={"model": EDIT, "prompt": "p", "image_urls": urls}, headers=AUTH
        )
    assert edit.status_code == 200, edit.text
    usage = edit.json()["meta"]["usage"]
    credits = usage["credits_used"]
    assert usage["usd_spent"] == credits / 2_000_000
    assert edit.headers["x-aimlapi-credits-used"] == str(credits)
    assert Decimal(edit.headers["x-aimlapi-usd-spent"]) == Decimal(credits) / 2_000_000
    # Output 1024×768 (1 MP) + two 1472×512 inputs (1 MP each): 3× the text-to-image price.
    assert credits == 3 * 25_200


async def test_trailing_slash_answers_like_the_path_without_it(app: FakeApp) -> None:
    async with client_for(app) as client:
        response = await client.post(GENERATIONS + "/", json=BODY, headers=AUTH)
    assert response.status_code == 200 and "location" not in response.headers


async def test_cors_lets_browser_apps_call_the_api_but_not_the_admin_routes(
    make_app: Callable[..., FakeApp],
) -> None:
    app = make_app(cors_origins=("http://localhost:3000",))
    origin = {"Origin": "http://localhost:3000"}
    async with client_for(app) as client:
        preflight = await client.options(
            GENERATIONS,
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        answer = await client.post(GENERATIONS, json=BODY, headers={**AUTH, **origin})
        foreign = await client.post(
            GENERATIONS, json=BODY, headers={**AUTH, "Origin": "https://evil.test"}
        )
        admin = await client.get("/__mock/requests", headers=origin)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == "authorization, content-type"
    assert answer.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert "access-control-allow-origin" not in foreign.headers
    assert "access-control-allow-origin" not in admin.headers


async def test_any_origin_by_default(app: FakeApp) -> None:
    async with client_for(app) as client:
        answer = await client.post(GENERATIONS, json=BODY, headers={**AUTH, "Origin": "http://x"})
    assert answer.headers["access-control-allow-origin"] == "*"


async def test_credits_run_out_with_the_apis_403(make_app: Callable[..., FakeApp]) -> None:
    app = make_app(credits=60_000)
    async with client_for(app) as client:
        first = await client.post(GENERATIONS, json=BODY, headers=AUTH)  # 25,200
        second = await client.post(GENERATIONS, json=BODY, headers=AUTH)  # 25,200
        third = await client.post(GENERATIONS, json=BODY, headers=AUTH)  # 9,600 left
        balance = await client.get("/v1/billing/balance", headers=AUTH)
        invalid = await client.post(GENERATIONS, json={**BODY, "seed": 0}, headers=AUTH)
    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 403]
    assert third.json()["message"].startswith("You've run out of credits.")
    assert third.headers["x-aimlapi-credits-used"] == "0"
    assert balance.json()["balance"] == 60_000 - 2 * 25_200
    assert balance.json()["lowBalance"] is True
    assert invalid.status_code == 400  # a bad body still gets its 400 first


async def test_a_forced_error_is_not_charged(make_app: Callable[..., FakeApp]) -> None:
    app = make_app(credits=30_000)
    async with client_for(app) as client:
        forced = await client.post(GENERATIONS, json=BODY, headers={**AUTH, "Prefer": "code=503"})
        after = await client.post(GENERATIONS, json=BODY, headers=AUTH)
    assert forced.status_code == 503 and forced.headers["x-aimlapi-credits-used"] == "0"
    assert after.status_code == 200
    assert app.ledger.balance == 30_000 - 25_200


async def test_credits_from_the_admin_route(app: FakeApp) -> None:
    async with client_for(app) as client:
        assert (await client.get("/__mock/credits")).json() == {"credits": None}
        assert (await client.put("/__mock/credits", json=10)).json() == {"credits": 10}
        refused = await client.post(GENERATIONS, json=BODY, headers=AUTH)
        bad = await client.put("/__mock/credits", json=-1)
        text = await client.put("/__mock/credits", json="lots")
        assert (await client.put("/__mock/credits", json=None)).json() == {"credits": None}
        allowed = await client.post(GENERATIONS, json=BODY, headers=AUTH)
    assert refused.status_code == 403 and allowed.status_code == 200
    assert bad.status_code == 400 and "must not be negative" in bad.json()["message"]
    assert text.status_code == 400 and "whole number" in text.json()["message"]


async def test_models_are_listed_without_a_key_with_filters_and_an_etag(app: FakeApp) -> None:
    async with client_for(app) as client:
        listed = await client.get("/v1/models")
        same = await client.get("/models")
        one = await client.get("/v1/models", params={"id": "flux-2-pro"})
        none = await client.get("/v1/models", params={"type": "chat-completion"})
        cached = await client.get("/v1/models", headers={"If-None-Match": listed.headers["etag"]})
    assert listed.status_code == 200 and listed.json()["object"] == "list"
    ids = [item["id"] for item in listed.json()["data"]]
    assert FLUX2 in ids and EDIT in ids and len(ids) == 7
    for item in listed.json()["data"]:
        assert {"id", "aliases", "type", "info", "tags"} <= set(item)
        assert {"name", "developer"} <= set(item["info"])
    assert same.json() == listed.json()
    assert [item["id"] for item in one.json()["data"]] == ["blackforestlabs/flux-2-pro"]
    assert none.json()["data"] == []
    assert listed.headers["etag"].startswith('W/"')
    assert cached.status_code == 304 and cached.content == b""


async def test_logs_list_this_runs_generations_newest_first(app: FakeApp) -> None:
    async with client_for(app) as client:
        ok = await client.post(
            GENERATIONS, json=BODY, headers={**AUTH, "X-Client-Request-Id": "order-1"}
        )
        failed = await client.post(GENERATIONS, json={**BODY, "seed": 0}, headers=AUTH)
        await client.post(GENERATIONS, json=BODY)  # no key: never reached a model
        logs = await client.get("/v2/logs", params={"period": "1h"}, headers=AUTH)
        only_failed = await client.get(
            "/v2/logs", params={"period": "1h", "status": "failed"}, headers=AUTH
        )
        unauthorised = await client.get("/v2/logs", params={"period": "1h"})
        no_window = await client.get("/v2/logs", headers=AUTH)
    rows = logs.json()["data"]
    assert [row["status"] for row in rows] == ["failed", "succeeded"]
    assert rows[1]["inference_id"] == ok.headers["x-inference-id"]
    assert rows[1]["request_id"] == ok.headers["x-request-id"]
    assert rows[1]["client_request_id"] == "order-1"
    assert rows[1]["cost"] == {"usd": 0.0126, "credits": 25_200}
    assert rows[0]["cost"] == {"usd": 0.0, "credits": 0}
    assert rows[0]["inference_id"] == failed.headers["x-inference-id"]
    assert logs.json()["pagination"]["total"] == 2
    assert [row["status"] for row in only_failed.json()["data"]] == ["failed"]
    assert unauthorised.status_code == 401
    assert no_window.status_code == 400 and no_window.json()["statusCode"] == 400


async def test_ignored_fields_are_listed_in_the_journal(app: FakeApp) -> None:
    # What the openai SDK's images.generate sends; the API ignores what the schema lacks.
    body = {**BODY, "size": "1024x1024", "n": 2, "response_format": "url"}
    async with client_for(app) as client:
        response = await client.post(GENERATIONS, json=body, headers=AUTH)
    assert response.status_code == 200 and len(response.json()["data"]) == 1
    entry = app.journal.last
    assert entry.ignored_fields == ["n", "response_format", "size"]
    assert entry.as_json()["ignored_fields"] == ["n", "response_format", "size"]


def test_the_same_over_a_real_socket_with_requests() -> None:
    with MockServer() as fake:
        fake.set_credits(30_000)
        url = fake.base_url + GENERATIONS + "/"
        headers = {"Authorization": f"Bearer {fake.api_key}", "X-Client-Request-Id": "run-7"}
        first = requests.post(url, json=BODY, headers=headers, timeout=10)
        second = requests.post(url, json=BODY, headers=headers, timeout=10)
        models = httpx.get(fake.base_url + "/v1/models", timeout=10)
        assert fake.credits == 30_000 - 25_200
        fake.reset()
        assert fake.credits is None
    assert first.status_code == 200 and second.status_code == 403
    assert first.headers["x-client-request-id"] == "run-7"
    assert first.headers["x-aimlapi-credits-used"] == "25200"
    assert models.status_code == 200 and models.headers["etag"]


def test_cors_logs_balance_and_the_edit_chain_over_a_real_socket() -> None:
    with MockServer() as fake:
        fake.configure(cors_origins=["http://localhost:3000"], credits=1_000_000)
        api = fake.base_url + GENERATIONS
        auth = {"Authorization": f"Bearer {fake.api_key}"}
        with httpx.Client(timeout=10) as client:
            preflight = client.options(
                api,
                headers={
                    "Origin": "http://localhost:3000",
                    "Access-Control-Request-Method": "POST",
                },
            )
            made = client.post(api, headers=auth, json={**BODY, "num_images": 2})
            urls = [item["url"] for item in made.json()["data"]]
            edit = client.post(
                api, headers=auth, json={"model": EDIT, "prompt": "p", "image_urls": urls}
            )
            picture = client.get(edit.json()["data"][0]["url"])
            logs = client.get(fake.base_url + "/v2/logs", params={"period": "1h"}, headers=auth)
            balance = client.get(fake.base_url + "/v1/billing/balance", headers=auth)
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert edit.status_code == 200 and picture.status_code == 200
    credits = [
        made.json()["meta"]["usage"]["credits_used"],
        edit.json()["meta"]["usage"]["credits_used"],
    ]
    assert [row["model"] for row in logs.json()["data"]] == [EDIT, FLUX2]
    assert [row["cost"]["credits"] for row in logs.json()["data"]] == credits[::-1]
    assert balance.json()["balance"] == 1_000_000 - sum(credits)

"""Real HTTP clients' retry logic, exercised against the ``aimlapi_mock`` fixture's faults."""

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Iterator
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from mock_server.testing.fake import MockServer

FLUX2 = "blackforestlabs/flux-2"
BODY = {"model": FLUX2, "prompt": "a lighthouse at dusk"}
RETRIED = (408, 409, 429, 500, 502, 503, 504)


# --- an official-SDK-style client --------------------------------------------------------------
# The official SDK (OpenAI-style) retries twice on 408, 409, 429, 5xx, timeouts and broken
# connections; it waits what Retry-After says (when 0 < it <= 60 s), otherwise 0.5 s doubling up
# to 8 s, less up to 25 % jitter.


class APIStatusError(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code}: {response.json()['message']}")
        self.status_code = response.status_code


def should_retry(response: httpx.Response) -> bool:
    return response.status_code in RETRIED or response.status_code >= 500


def retry_wait(attempt: int, response: httpx.Response | None) -> float:
    header = response.headers.get("retry-after") if response is not None else None
    if header is not None:
        try:
            seconds = float(header)
        except ValueError:
            seconds = parsedate_to_datetime(header).timestamp()
        if 0 < seconds <= 60:
            return seconds
    return min(0.5 * 2**attempt, 8.0) * (1 - 0.25 * random.random())


class Sdk:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        max_retries: int = 2,
        timeout: float = 600,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout
        )
        self.max_retries = max_retries
        self.waits: list[float] = []
        self.sleep = sleep or self.waits.append

    def generate(self, extra_headers: dict[str, str] | None = None, **body: Any) -> Any:
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = self.client.post(
                    "/images/generations", json={**BODY, **body}, headers=extra_headers
                )
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError):
                if last:
                    raise
                self.sleep(retry_wait(attempt, None))
                continue
            if response.is_success:
                return response.json()
            if last or not should_retry(response):
                raise APIStatusError(response)
            self.sleep(retry_wait(attempt, response))
        raise AssertionError("unreachable")


class AsyncSdk:
    def __init__(self, base_url: str, api_key: str, *, max_retries: int = 2) -> None:
        self.client = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}
        )
        self.max_retries = max_retries
        self.waits: list[float] = []

    async def generate(self, **body: Any) -> Any:
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            try:
                response = await self.client.post("/images/generations", json={**BODY, **body})
            except (httpx.NetworkError, httpx.RemoteProtocolError):
                if last:
                    raise
                self.waits.append(retry_wait(attempt, None))
                continue
            if response.is_success:
                return response.json()
            if last or not should_retry(response):
                raise APIStatusError(response)
            self.waits.append(retry_wait(attempt, response))
        raise AssertionError("unreachable")


@pytest.fixture
def make_sdk(aimlapi_mock: MockServer) -> Iterator[Callable[..., Sdk]]:
    """SDK clients pointed at the fake (closed after the test)."""
    made: list[Sdk] = []

    def make(**options: Any) -> Sdk:
        made.append(Sdk(aimlapi_mock.base_url + "/v1", aimlapi_mock.api_key, **options))
        return made[-1]

    yield make
    for sdk in made:
        sdk.client.close()


@pytest.fixture
def sdk(make_sdk: Callable[..., Sdk]) -> Sdk:
    return make_sdk()


def statuses(fake: MockServer) -> list[int | None]:
    return [entry.status for entry in fake.journal.generations()]


def test_sdk_retries_server_errors_then_succeeds(aimlapi_mock: MockServer, sdk: Sdk) -> None:
    aimlapi_mock.fail(503, times=2)
    result = sdk.generate()
    assert len(result["data"]) == 1
    assert statuses(aimlapi_mock) == [503, 503, 200]
    assert 0.375 <= sdk.waits[0] <= 0.5 and 0.75 <= sdk.waits[1] <= 1.0  # backoff with jitter


def test_sdk_waits_what_retry_after_says(aimlapi_mock: MockServer, sdk: Sdk) -> None:
    aimlapi_mock.fail("code=429, retry-after=3, times=1")
    aimlapi_mock.fail(429, times=1)  # Retry-After: 1 by default
    sdk.generate()
    assert sdk.waits == [3.0, 1.0]
    assert statuses(aimlapi_mock) == [429, 429, 200]


def test_sdk_gives_up_after_two_retries(aimlapi_mock: MockServer, sdk: Sdk) -> None:
    aimlapi_mock.fail(500)
    with pytest.raises(APIStatusError, match="500: Internal server error"):
        sdk.generate()
    assert statuses(aimlapi_mock) == [500, 500, 500]


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_sdk_does_not_retry_client_errors(aimlapi_mock: MockServer, sdk: Sdk, status: int) -> None:
    aimlapi_mock.fail(status, times=1)
    with pytest.raises(APIStatusError) as failure:
        sdk.generate()
    assert failure.value.status_code == status
    assert statuses(aimlapi_mock) == [status]


@pytest.mark.parametrize("transport", ["close", "truncate"])
def test_sdk_retries_broken_connections(aimlapi_mock: MockServer, sdk: Sdk, transport: Any) -> None:
    aimlapi_mock.fail(transport=transport, times=1)
    sdk.generate()
    first, second = aimlapi_mock.journal.generations()
    assert (first.fault, second.status) == (transport, 200)
    assert first.status == (None if transport == "close" else 200)


def test_sdk_retries_a_timeout(aimlapi_mock: MockServer, make_sdk: Callable[..., Sdk]) -> None:
    aimlapi_mock.fail(delay=1, times=1)
    aimlapi_mock.fail("slow-body=5, times=1")  # 0.5 s between pieces
    sdk = make_sdk(timeout=0.3)
    sdk.generate()
    assert [e.fault for e in aimlapi_mock.journal.generations()] == ["delay=1", "slow-body=5", None]


def test_sdk_per_request_fault_through_extra_headers(aimlapi_mock: MockServer, sdk: Sdk) -> None:
    with pytest.raises(APIStatusError, match="403: You've run out of credits"):
        sdk.generate(extra_headers={"Prefer": "code=403"})
    assert statuses(aimlapi_mock) == [403]


def test_random_failures_replay_the_same_way(
    aimlapi_mock: MockServer, make_sdk: Callable[..., Sdk]
) -> None:
    def run() -> list[int | None]:
        aimlapi_mock.reset()
        aimlapi_mock.fail(503, probability=0.5, seed=11)
        sdk = make_sdk()
        for _ in range(4):
            with contextlib.suppress(APIStatusError):
                sdk.generate()
        return statuses(aimlapi_mock)

    first = run()
    assert run() == first
    assert 503 in first and 200 in first


# --- requests with urllib3's Retry ------------------------------------------------------------


def test_requests_with_urllib3_retry(aimlapi_mock: MockServer) -> None:
    aimlapi_mock.fail(502, times=1)
    aimlapi_mock.fail("code=429, retry-after=0, times=1")
    retry = Retry(
        total=2,
        status_forcelist=RETRIED,
        allowed_methods=None,  # POST too: generation is what this client retries
        backoff_factor=0,
        raise_on_status=False,
    )
    with requests.Session() as session:
        session.mount("http://", HTTPAdapter(max_retries=retry))
        response = session.post(
            aimlapi_mock.base_url + "/v1/images/generations",
            json=BODY,
            headers={"Authorization": f"Bearer {aimlapi_mock.api_key}"},
            timeout=10,
        )
    assert response.status_code == 200
    assert statuses(aimlapi_mock) == [502, 429, 200]


def test_requests_without_retries_sees_each_failure(aimlapi_mock: MockServer) -> None:
    aimlapi_mock.fail(504, times=1)
    url = aimlapi_mock.base_url + "/v1/images/generations"
    headers = {"Authorization": f"Bearer {aimlapi_mock.api_key}"}
    first = requests.post(url, json=BODY, headers=headers, timeout=10)
    assert (first.status_code, first.json()["message"]) == (504, "Generation timeout")
    assert requests.post(url, json=BODY, headers=headers, timeout=10).status_code == 200


# --- httpx, async ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_sdk_retries_concurrent_requests(aimlapi_mock: MockServer) -> None:
    aimlapi_mock.fail(502, times=2)
    aimlapi_mock.set_latency("uniform=0.01..0.05")
    sdk = AsyncSdk(aimlapi_mock.base_url + "/v1", aimlapi_mock.api_key)
    async with sdk.client:
        results = await asyncio.gather(*(sdk.generate(prompt=f"p{i}") for i in range(4)))
    assert len(results) == 4
    assert sorted(statuses(aimlapi_mock), key=str) == [200, 200, 200, 200, 502, 502]


@pytest.mark.anyio
async def test_async_in_process_client_with_a_retry_loop(
    aimlapi_async_client: httpx.AsyncClient, aimlapi_mock: MockServer
) -> None:
    aimlapi_mock.fail(503, times=1)

    async def call() -> httpx.Response:
        return await aimlapi_async_client.post("/v1/images/generations", json=BODY)

    response = await retrying(call)
    assert response.status_code == 200
    assert statuses(aimlapi_mock) == [503, 200]


async def retrying(call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
    for _ in range(3):
        response = await call()
        if response.status_code not in RETRIED:
            return response
    return response


def test_sync_in_process_client(aimlapi_client: httpx.Client, aimlapi_mock: MockServer) -> None:
    aimlapi_mock.fail(500, times=1)
    assert aimlapi_client.post("/v1/images/generations", json=BODY).status_code == 500
    response = aimlapi_client.post("/v1/images/generations", json=BODY)
    assert response.status_code == 200
    image = aimlapi_client.get(response.json()["data"][0]["url"])
    assert image.headers["content-type"] == "image/png"

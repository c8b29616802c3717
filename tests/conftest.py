import atexit
import io
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from PIL import Image

from mock_server import Settings, SpecSet, create_app, load_specs
from mock_server.http.app import FakeApp

SPECS = Path(__file__).parent / "specs"

# The installation's URL secret (and anything else cached) goes to a directory of this run, for
# the tests here and the servers they start.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="aimlapi-mock-cache-")
atexit.register(shutil.rmtree, os.environ["XDG_CACHE_HOME"], ignore_errors=True)
AUTH = {"Authorization": "Bearer test-key"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def bundled() -> SpecSet:
    return load_specs()


@pytest.fixture
def make_app(bundled: SpecSet) -> Callable[..., FakeApp]:
    """Build an app from Settings fields; the bundled specs unless ``specs`` is given."""

    def make(**fields: object) -> FakeApp:
        settings = Settings(**fields)  # type: ignore[arg-type]
        return create_app(settings, spec_set=None if settings.specs else bundled)

    return make


@pytest.fixture
def app(make_app: Callable[..., FakeApp]) -> FakeApp:
    return make_app()


def client_for(app: FakeApp, base_url: str = "http://t") -> httpx.AsyncClient:
    """An in-process client of ``app`` (use as ``async with client_for(app) as client:``)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


@pytest.fixture
async def client(app: FakeApp) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app, "http://testserver") as client:
        yield client


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``long`` (the soak) run only with ``AIMLAPI_MOCK_LONG_TESTS=1``."""
    if os.environ.get("AIMLAPI_MOCK_LONG_TESTS") == "1":
        return
    long = [item for item in items if item.get_closest_marker("long")]
    if long:
        config.hook.pytest_deselected(items=long)
        items[:] = [item for item in items if not item.get_closest_marker("long")]


# Shared by the tests of what the fake answers ----------------------------------------------------

FLUX2 = "blackforestlabs/flux-2"
FLUX2_MAX = "blackforestlabs/flux-2-max"
BUNDLED_MODELS = [
    "blackforestlabs/flux-2",
    "blackforestlabs/flux-2-edit",
    "blackforestlabs/flux-2-lora",
    "blackforestlabs/flux-2-lora-edit",
    "blackforestlabs/flux-2-max",
    "blackforestlabs/flux-2-pro",
    "blackforestlabs/flux-2-pro-edit",
]
"""Every model the bundled specs serve, sorted."""
PROMPT = "A T-Rex relaxing on a beach, lying on a sun lounger and wearing sunglasses."
GENERATIONS = "/v1/images/generations"
JSON_TYPE = "application/json; charset=utf-8"
MESSAGE_401 = (
    "This request requires a valid API key. "
    "You can create a new API key on the Billing page: https://aimlapi.com/app/keys"
)


async def generate(
    client: httpx.AsyncClient, path: str = GENERATIONS, **body: object
) -> httpx.Response:
    return await client.post(path, json={"model": FLUX2, "prompt": PROMPT, **body}, headers=AUTH)


async def download(client: httpx.AsyncClient, url: str) -> tuple[httpx.Response, Image.Image]:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    return response, Image.open(io.BytesIO(response.content))


def assert_envelope(response: httpx.Response, status: int, path: str) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == JSON_TYPE
    body = response.json()
    assert body["statusCode"] == status
    assert body["path"] == path
    assert body["requestId"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(body["timestamp"]))
    sent = datetime.fromisoformat(str(body["timestamp"]).replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - sent).total_seconds()) < 5
    assert isinstance(body["message"], str) and body["message"]
    return body


async def post_raw(
    client: httpx.AsyncClient, content: bytes, content_type: str | None = "application/json"
) -> httpx.Response:
    headers = dict(AUTH)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return await client.post(GENERATIONS, content=content, headers=headers)

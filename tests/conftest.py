import atexit
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

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

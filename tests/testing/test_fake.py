"""MockServer without pytest's help, the in-process clients, and the chosen public names."""

from collections.abc import Iterator

import httpx
import pytest
import requests

from mock_server import ConfigError
from mock_server.testing import clients
from mock_server.testing.fake import DEFAULT_API_KEY, MockServer
from tests.conftest import SPECS

BODY = {"model": "blackforestlabs/flux-2", "prompt": "p"}


@pytest.fixture(scope="module")
def fake() -> Iterator[MockServer]:
    with MockServer() as running:
        yield running


def post(fake: MockServer, key: str | None = None, **body: object) -> requests.Response:
    return requests.post(
        fake.base_url + "/v1/images/generations",
        json={**BODY, **body},
        headers={"Authorization": f"Bearer {key or fake.api_key}"},
        timeout=10,
    )


def test_configure_switches_settings_and_starts_afresh(fake: MockServer) -> None:
    fake.reset()
    post(fake)
    fake.configure(auth=["k1", "k2"], faults=["code=503, times=1"], latency="fixed=0.01")
    assert (fake.settings.auth, fake.settings.api_keys, fake.api_key) == (
        "keys",
        ("k1", "k2"),
        "k1",
    )
    assert len(fake.journal) == 0
    assert [post(fake).status_code, post(fake, key="k2").status_code] == [503, 200]
    assert post(fake, key="nope").status_code == 401
    fake.reset()
    assert (fake.settings.auth, fake.api_key, fake.faults.idle) == ("any", DEFAULT_API_KEY, True)
    assert post(fake, key="nope").status_code == 200


def test_apps_are_kept_per_settings(fake: MockServer) -> None:
    fake.configure(auth="off")
    app = fake.app
    fake.configure(auth="off", faults=["code=500"])  # faults change no app
    assert fake.app is app
    fake.reset()
    assert fake.app is not app
    fake.configure(auth="off")
    assert fake.app is app
    fake.reset()


def test_option_shapes(fake: MockServer) -> None:
    settings = fake.settings_for({"specs": SPECS / "created-201.yaml", "api_keys": "only"})
    assert settings.specs == (str(SPECS / "created-201.yaml"),)
    assert (settings.auth, settings.api_keys) == ("keys", ("only",))
    assert fake.settings_for({"faults": "code=500"}).faults == ("code=500",)
    assert fake.settings_for({"auth": "secret"}).api_keys == ("secret",)
    with pytest.raises(ConfigError, match="unknown option 'port'"):
        fake.settings_for({"port": 1})


def test_environment_templates(fake: MockServer) -> None:
    fake.reset()
    assert fake.environ({"URL": "{base_url}/v1", "KEY": "{api_key}", "PLAIN": "x"}) == {
        "URL": fake.base_url + "/v1",
        "KEY": DEFAULT_API_KEY,
        "PLAIN": "x",
    }
    with pytest.raises(ConfigError, match=r"only \{base_url\} and \{api_key\}"):
        fake.environ({"URL": "{host}"})


def test_errors_are_kept_for_the_test_not_logged_by_uvicorn(
    fake: MockServer, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    fake.reset()

    def broken(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(fake.service, "generate", broken)
    assert post(fake).status_code == 500
    (error,) = fake.take_errors()
    assert str(error) == "boom"
    assert fake.take_errors() == []
    assert "Exception in ASGI application" not in capfd.readouterr().err


def test_base_url_needs_a_running_server() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = MockServer().base_url


def test_sync_in_process_client_passes_app_exceptions_through(fake: MockServer) -> None:
    fake.reset()
    with clients.sync_client(fake.app, api_key=fake.api_key) as client:
        assert client.post("/v1/images/generations", json=BODY).status_code == 200
        with pytest.raises(ConnectionResetError):
            client.post("/v1/images/generations", json=BODY, headers={"Prefer": "close"})
    unauthenticated = clients.sync_client(fake.app)
    assert unauthenticated.post("/v1/images/generations", json=BODY).status_code == 401
    unauthenticated.close()


@pytest.mark.anyio
async def test_async_in_process_client(fake: MockServer) -> None:
    fake.reset()
    async with clients.async_client(fake.app, api_key=fake.api_key) as client:
        response = await client.post("/v1/images/generations", json=BODY)
    assert response.status_code == 200
    assert isinstance(client, httpx.AsyncClient)

"""The admin routes over a real socket: the token, cross-origin refusal, hostile bodies, 405s."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from mock_server import Settings, create_app
from mock_server.cli import exposure, is_loopback
from mock_server.http.server import BackgroundServer
from tests.conftest import AUTH

TOKEN = "admin-t0ken"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
VALID = {"model": "blackforestlabs/flux-2", "prompt": "a cat", "image_size": "square"}


@pytest.fixture(scope="module")
def guarded() -> Iterator[str]:
    with BackgroundServer(create_app(Settings(admin_token=TOKEN))) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def open_admin() -> Iterator[str]:
    with BackgroundServer(create_app(Settings())) as server:
        yield server.base_url


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}],
    ids=["none", "wrong", "no-scheme"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/__mock/requests"), ("POST", "/__mock/reset"), ("DELETE", "/__mock/faults")],
)
def test_admin_routes_need_the_token(
    guarded: str, headers: dict[str, str], method: str, path: str
) -> None:
    response = requests.request(method, guarded + path, headers=headers, timeout=5)
    assert response.status_code == 401
    assert "admin token" in response.json()["message"]


def test_the_token_opens_the_admin_routes_and_the_api_ignores_it(guarded: str) -> None:
    assert requests.post(guarded + "/__mock/reset", headers=ADMIN, timeout=5).status_code == 204
    api = requests.post(guarded + "/v1/images/generations", json=VALID, headers=AUTH, timeout=5)
    assert api.status_code == 200
    listed = requests.get(guarded + "/__mock/requests", headers=ADMIN, timeout=5)
    assert listed.status_code == 200 and len(listed.json()) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example", "Content-Type": "application/json"},
        {"Origin": "null", "Content-Type": "application/json"},
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"},
        {"Sec-Fetch-Site": "same-site", "Content-Type": "application/json"},
        {"Content-Type": "text/plain"},
        {"Content-Type": "application/x-www-form-urlencoded"},
    ],
    ids=["foreign-origin", "null-origin", "cross-site", "same-site", "text-plain", "form"],
)
def test_state_changing_calls_from_web_pages_are_refused(
    open_admin: str, headers: dict[str, str]
) -> None:
    response = requests.post(
        open_admin + "/__mock/faults", data=b'"code=503"', headers=headers, timeout=5
    )
    assert response.status_code == 403
    assert "Forbidden" in response.json()["message"]
    assert requests.get(open_admin + "/__mock/faults", timeout=5).json()["faults"] == []


def test_same_origin_and_tool_calls_are_taken(open_admin: str) -> None:
    same_origin = {"Origin": open_admin, "Sec-Fetch-Site": "same-origin"}
    taken = requests.post(
        open_admin + "/__mock/faults", json="code=503, times=1", headers=same_origin, timeout=5
    )
    assert taken.status_code == 201
    bare = requests.post(open_admin + "/__mock/faults", data=b"code=502, times=1", timeout=5)
    assert bare.status_code == 201  # no Content-Type: not a browser's simple request
    assert requests.delete(open_admin + "/__mock/faults", timeout=5).status_code == 204


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        (b"[" * 5000 + b"]" * 5000, 400, "nested too deeply"),
        (b'"' + b"a" * 200_000 + b'"', 413, "at most 65536 bytes"),
        (b'{"code": 503, "model": {"x": 1}}', 400, "field 'model' must be a string"),
        (b'{"code": "503"}', 400, "field 'code' must be an integer"),
        (b'{"code": 503, "times": true}', 400, "field 'times' must be an integer"),
        (b'{"code": 503, "colour": 1}', 400, "unknown field 'colour'"),
        (b'{"code": NaN}', 400, "NaN is not a JSON number"),
    ],
    ids=["deep", "huge", "model-object", "code-text", "times-bool", "unknown", "nan"],
)
def test_bad_admin_bodies_get_a_clear_4xx(
    open_admin: str, body: bytes, status: int, fragment: str
) -> None:
    response = requests.post(
        open_admin + "/__mock/faults",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert response.status_code == status
    assert fragment in response.json()["message"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", "/__mock/faults", "DELETE, GET, HEAD, POST"),
        ("GET", "/__mock/reset", "POST"),
        ("POST", "/__mock/latency", "DELETE, PUT"),
        ("PUT", "/__mock/requests", "DELETE, GET, HEAD"),
    ],
)
def test_405_lists_the_methods_the_route_takes(
    open_admin: str, method: str, path: str, allow: str
) -> None:
    response = requests.request(method, open_admin + path, timeout=5)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert allow in response.json()["message"]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.5.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.4", False),
        ("example.test", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_non_loopback_bind_gets_a_made_up_token_and_a_warning() -> None:
    settings, warnings = exposure(Settings(host="0.0.0.0"))
    assert settings.admin_token and len(settings.admin_token) >= 24
    text = "\n".join(warnings)
    assert "/__mock/" in text and settings.admin_token in text and "any bearer token" in text
    given, warnings = exposure(Settings(host="0.0.0.0", admin_token="mine", auth="keys",
                                        api_keys=("k",)))  # fmt: skip
    assert given.admin_token == "mine" and "mine" not in "\n".join(warnings)
    assert exposure(Settings()) == (Settings(), [])

"""The pytest plugin, the way a user meets it: small test files run by ``pytester``."""

import json
from importlib.metadata import entry_points
from pathlib import Path

import httpcore  # noqa: F401  (imported here so in-process runs share httpx's exception map)
import pytest
from anyio.pytest_plugin import get_available_backends

from tests.conftest import SPECS

pytest_plugins = ["pytester"]

# The code under test in these suites: it finds the API through the environment, like most
# applications do, and is pointed at the fake by ``aimlapi_mock_env``.
IMAGEGEN = """
import os

import requests


def generate(prompt, **extra):
    response = requests.post(
        os.environ["IMAGEGEN_API_URL"] + "/images/generations",
        json={"model": "blackforestlabs/flux-2", "prompt": prompt, **extra},
        headers={"Authorization": "Bearer " + os.environ["IMAGEGEN_API_KEY"]},
        timeout=10,
    )
    response.raise_for_status()
    return [item["url"] for item in response.json()["data"]]
"""

INI = """
[pytest]
aimlapi_mock_env =
    IMAGEGEN_API_URL={base_url}/v1
    IMAGEGEN_API_KEY={api_key}
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(imagegen=IMAGEGEN)
    pytester.makeini(INI)
    return pytester


def test_each_fixture_in_a_user_suite(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import os

        import httpx
        import pytest
        import requests

        import imagegen

        BODY = {"model": "blackforestlabs/flux-2", "prompt": "a red fox"}


        def test_code_under_test_finds_the_fake_through_the_environment(aimlapi_mock):
            assert aimlapi_mock.base_url.startswith("http://127.0.0.1:")
            assert os.environ["IMAGEGEN_API_URL"] == aimlapi_mock.base_url + "/v1"
            (url,) = imagegen.generate("a red fox")
            image = requests.get(url, timeout=10)
            assert image.headers["content-type"] == "image/png"
            aimlapi_mock.journal.assert_called_once_with(prompt="a red fox")
            assert aimlapi_mock.journal.last_generation.image_urls == [url]


        def test_the_fake_is_reset_before_each_test(aimlapi_mock):
            assert len(aimlapi_mock.journal) == 0


        def test_the_asgi_app(aimlapi_app):
            models = aimlapi_app.service.spec_set.models
            assert "blackforestlabs/flux-2" in models and "blackforestlabs/flux-2-max" in models
            assert "blackforestlabs/flux-2-edit" in models and len(models) == 7


        def test_the_in_process_client(aimlapi_client, aimlapi_mock):
            response = aimlapi_client.post("/v1/images/generations", json=BODY)
            assert response.status_code == 200
            url = response.json()["data"][0]["url"]
            assert url.startswith("http://testserver/files/")
            assert aimlapi_client.get(url).headers["content-type"] == "image/png"
            aimlapi_mock.journal.assert_called_with(prompt="a red fox")


        @pytest.mark.anyio
        async def test_the_async_in_process_client(aimlapi_async_client, aimlapi_mock):
            response = await aimlapi_async_client.post("/v1/images/generations", json=BODY)
            assert response.status_code == 200
            assert len(aimlapi_mock.journal.generations()) == 1


        @pytest.mark.anyio
        async def test_an_async_test_over_the_socket(aimlapi_mock):
            async with httpx.AsyncClient(base_url=aimlapi_mock.base_url) as client:
                response = await client.post(
                    "/images/generations",
                    json=BODY,
                    headers={"Authorization": f"Bearer {aimlapi_mock.api_key}"},
                )
            assert response.status_code == 200


        def test_the_environment_is_restored(aimlapi_mock_session):
            assert "IMAGEGEN_API_URL" not in os.environ
        """
    )
    result = suite.runpytest("-p", "no:cacheprovider")
    # anyio runs each of the two async tests on every backend installed (trio comes with selenium).
    result.assert_outcomes(passed=5 + 2 * len(get_available_backends()))


def test_the_marker_configures_one_test(suite: pytest.Pytester) -> None:
    created = SPECS / "created-201.yaml"
    suite.makepyfile(
        f"""
        import os
        import time

        import pytest
        import requests

        import imagegen

        pytestmark = pytest.mark.aimlapi_mock(latency="fixed=0.01")


        @pytest.mark.aimlapi_mock(auth=["s3cret"])
        def test_auth_with_keys(aimlapi_mock):
            assert aimlapi_mock.api_key == os.environ["IMAGEGEN_API_KEY"] == "s3cret"
            imagegen.generate("a")
            os.environ["IMAGEGEN_API_KEY"] = "wrong"
            with pytest.raises(requests.HTTPError, match="401"):
                imagegen.generate("a")


        @pytest.mark.aimlapi_mock(auth="off")
        def test_auth_off(aimlapi_mock):
            response = requests.post(
                aimlapi_mock.base_url + "/v1/images/generations",
                json={{"model": "blackforestlabs/flux-2", "prompt": "p"}},
                timeout=10,
            )
            assert response.status_code == 200


        @pytest.mark.aimlapi_mock(specs=[{str(created)!r}])
        def test_other_specs(aimlapi_mock):
            response = requests.post(
                aimlapi_mock.base_url + "/v1/images/generations",
                json={{"model": "test/created", "prompt": "p"}},
                headers={{"Authorization": "Bearer k"}},
                timeout=10,
            )
            assert response.status_code == 201


        @pytest.mark.aimlapi_mock(faults=["code=503, times=1"])
        def test_faults(aimlapi_mock):
            with pytest.raises(requests.HTTPError, match="503"):
                imagegen.generate("a")
            imagegen.generate("a")


        @pytest.mark.aimlapi_mock(latency="fixed=0.2")
        def test_latency_closest_marker_wins(aimlapi_mock):
            started = time.monotonic()
            imagegen.generate("a")
            assert time.monotonic() - started >= 0.2


        @pytest.mark.aimlapi_mock(env={{"OTHER_URL": "{{base_url}}/v1"}})
        def test_env(aimlapi_mock):
            assert os.environ["OTHER_URL"] == aimlapi_mock.base_url + "/v1"


        def test_module_marker_alone(aimlapi_mock):
            assert str(aimlapi_mock.faults.latency) == "fixed=0.01"
            assert aimlapi_mock.faults.rules == []
            assert aimlapi_mock.settings.auth == "any"
            assert "OTHER_URL" not in os.environ
            imagegen.generate("a")
        """
    )
    result = suite.runpytest("-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=7)


def test_bad_marker_options_are_reported(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import pytest


        @pytest.mark.aimlapi_mock(colour="red")
        def test_unknown_option(aimlapi_mock):
            pass


        @pytest.mark.aimlapi_mock(faults=["code=418"])
        def test_bad_fault(aimlapi_mock):
            pass


        @pytest.mark.aimlapi_mock("off")
        def test_positional(aimlapi_mock):
            pass
        """
    )
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=3)
    result.stdout.fnmatch_lines(
        [
            "*@pytest.mark.aimlapi_mock: unknown option 'colour'; expected one of admin,*",
            "*@pytest.mark.aimlapi_mock: code=418 is not a status the fake can force*",
            "*@pytest.mark.aimlapi_mock takes keyword options only*",
        ]
    )


def test_journal_assertions_pass_and_fail_readably(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import imagegen


        def test_passes(aimlapi_mock):
            imagegen.generate("a cat", num_images=2)
            aimlapi_mock.journal.assert_called_once_with(prompt="a cat", num_images=2)
            assert len(aimlapi_mock.journal.last_generation.image_urls) == 2


        def test_wrong_prompt(aimlapi_mock):
            imagegen.generate("a dog")
            aimlapi_mock.journal.assert_called_with(prompt="a cat")


        def test_never_called(aimlapi_mock):
            aimlapi_mock.journal.assert_called()
        """
    )
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*JournalAssertionError: the last generation request (#1: POST "
            "/v1/images/generations) does not match:",
            "E         prompt: expected 'a cat', received 'a dog'",
            'E       received body: {"model": "blackforestlabs/flux-2", "prompt": "a dog"}',
            "*JournalAssertionError: expected at least one generation request, aimlapi-mock "
            "received 0",
        ]
    )


def test_an_exception_in_the_fake_fails_the_test_that_caused_it(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import pytest
        import requests

        import imagegen


        @pytest.fixture
        def broken(aimlapi_mock, monkeypatch):
            def explode(*args):
                raise RuntimeError("the fake broke")

            monkeypatch.setattr(aimlapi_mock.service, "generate", explode)


        def test_client_sees_a_500_and_the_test_fails(broken):
            with pytest.raises(requests.HTTPError, match="500"):
                imagegen.generate("a")


        def test_failure_names_the_cause(broken):
            imagegen.generate("a")


        def test_in_process(broken, aimlapi_client):
            aimlapi_client.post("/v1/images/generations", json={})


        def test_next_test_is_clean(aimlapi_mock):
            imagegen.generate("a")
        """
    )
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=3)
    crashes = {
        report.nodeid.rpartition("::")[2]: str(report.longrepr.reprcrash.message)  # type: ignore[union-attr]
        for report in result.reprec.getfailures()  # type: ignore[attr-defined]
    }
    note = (
        "raised inside aimlapi-mock while serving POST /v1/images/generations; the client got a 500"
    )
    assert crashes == {
        "test_client_sees_a_500_and_the_test_fails": f"RuntimeError: the fake broke\n{note}",
        "test_failure_names_the_cause": crashes["test_failure_names_the_cause"],
        "test_in_process": "RuntimeError: the fake broke",
    }
    # The test's own failure is shown as caused by the fake's exception.
    assert crashes["test_failure_names_the_cause"].startswith("requests.exceptions.HTTPError: 500")
    text = result.stdout.str()
    assert "The above exception was the direct cause of the following exception" in text
    assert "Exception in ASGI application" not in text  # reported once, in the test


def test_each_fault_from_a_user_suite(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import time

        import httpx
        import pytest
        import requests

        import imagegen

        BODY = {"model": "blackforestlabs/flux-2", "prompt": "p"}


        @pytest.fixture
        def post(aimlapi_mock):
            def post(prefer=None, **body):
                headers = {"Authorization": f"Bearer {aimlapi_mock.api_key}"}
                if prefer:
                    headers["Prefer"] = prefer
                return requests.post(
                    aimlapi_mock.base_url + "/v1/images/generations",
                    json={**BODY, **body},
                    headers=headers,
                    timeout=10,
                )

            return post


        @pytest.mark.parametrize("status", [400, 401, 403, 429, 500, 502, 503, 504])
        def test_prefer_forces_a_status(post, status):
            response = post(f"code={status}")
            assert response.status_code == status
            assert response.json()["statusCode"] == status


        def test_forced_429_says_when_to_retry(post):
            assert post("code=429").headers["Retry-After"] == "1"
            assert post("code=429, retry-after=3").headers["Retry-After"] == "3"


        def test_prefer_delay(post):
            started = time.monotonic()
            assert post("delay=0.2").status_code == 200
            assert time.monotonic() - started >= 0.2


        def test_close(post, aimlapi_mock):
            with pytest.raises(requests.ConnectionError):
                post("close")
            assert aimlapi_mock.journal.last.status is None


        def test_truncate(aimlapi_mock):
            with httpx.Client(base_url=aimlapi_mock.base_url) as client:
                with pytest.raises(httpx.RemoteProtocolError, match="incomplete|complete message"):
                    client.post("/v1/images/generations", json=BODY, headers={"Prefer": "truncate"})


        def test_slow_body(aimlapi_mock):
            with httpx.Client(base_url=aimlapi_mock.base_url) as client:
                with pytest.raises(httpx.ReadTimeout):
                    client.post(
                        "/v1/images/generations",
                        json=BODY,
                        headers={"Prefer": "slow-body=1"},
                        timeout=httpx.Timeout(5, read=0.05),
                    )
                started = time.monotonic()
                response = client.post(
                    "/v1/images/generations",
                    json=BODY,
                    headers={"Prefer": "slow-body=0.2", "Authorization": "Bearer k"},
                )
                assert response.status_code == 200 and response.json()["data"]
                assert time.monotonic() - started >= 0.2


        def test_fail_next_n(aimlapi_mock, post):
            aimlapi_mock.fail(503, times=2)
            assert [post().status_code for _ in range(3)] == [503, 503, 200]


        def test_fail_with_probability_is_reproducible(aimlapi_mock, post):
            aimlapi_mock.fail(500, probability=0.5, seed=42)
            first = [post().status_code for _ in range(12)]
            aimlapi_mock.reset()
            aimlapi_mock.fail(500, probability=0.5, seed=42)
            assert [post().status_code for _ in range(12)] == first
            assert set(first) == {200, 500}


        def test_fail_only_one_model(aimlapi_mock, post):
            aimlapi_mock.fail(502, model="blackforestlabs/flux-2-max")
            assert post().status_code == 200
            assert post(model="blackforestlabs/flux-2-max").status_code == 502


        def test_scripted_transport_fault(aimlapi_mock):
            aimlapi_mock.fail(transport="close", times=1)
            with pytest.raises(requests.ConnectionError):
                imagegen.generate("a")
            assert imagegen.generate("a")


        def test_latency_scaled_by_images(aimlapi_mock):
            aimlapi_mock.set_latency("fixed=0.05, per=image")
            started = time.monotonic()
            assert len(imagegen.generate("a", num_images=4)) == 4
            assert time.monotonic() - started >= 0.2
        """
    )
    result = suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=18)


def test_settings_for_a_whole_suite_and_wider_fixtures(suite: pytest.Pytester) -> None:
    suite.makeconftest(
        """
        import pytest

        from mock_server import Settings


        @pytest.fixture(scope="session")
        def aimlapi_mock_settings():
            return Settings(auth="keys", api_keys=("suite-key",))


        @pytest.fixture(scope="module")
        def api_url(aimlapi_mock_session):
            return aimlapi_mock_session.base_url + "/v1"
        """
    )
    suite.makepyfile(
        """
        import os

        import imagegen


        def test_suite_settings(aimlapi_mock, api_url):
            assert os.environ["IMAGEGEN_API_KEY"] == "suite-key"
            assert api_url == os.environ["IMAGEGEN_API_URL"]
            imagegen.generate("a")
        """
    )
    suite.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_each_xdist_worker_has_its_own_fake(suite: pytest.Pytester) -> None:
    suite.makepyfile(
        """
        import json
        import os
        import time

        import pytest

        import imagegen


        @pytest.mark.parametrize("n", range(6))
        def test_generate(aimlapi_mock, n):
            imagegen.generate(f"prompt {n}")
            time.sleep(0.05)  # let both workers get tests
            aimlapi_mock.journal.assert_called_once_with(prompt=f"prompt {n}")
            with open(f"seen-{n}.json", "w") as seen:
                json.dump([os.environ["PYTEST_XDIST_WORKER"], aimlapi_mock.base_url], seen)
        """
    )
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=6)
    seen = [json.loads(path.read_text()) for path in Path(suite.path).glob("seen-*.json")]
    by_worker = {worker: url for worker, url in seen}
    assert len(by_worker) == 2
    assert len(set(by_worker.values())) == 2
    assert len({tuple(pair) for pair in seen}) == 2  # one fake per worker, for all its tests


def test_the_readme_example_runs(pytester: pytest.Pytester) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Testing your code with pytest", 1)[1].split("\n## ", 1)[0]
    blocks = [block.split("\n", 1) for block in section.split("```")[1::2]]
    (code, tests), (ini,) = (
        [body for lang, body in blocks if lang == "python"],
        [body for lang, body in blocks if lang == "ini"],
    )
    pytester.makepyfile(imagegen=code, test_imagegen=tests)
    pytester.makefile(".ini", pytest=ini)
    pytester.runpytest("-p", "no:cacheprovider", "--strict-markers").assert_outcomes(passed=3)


def test_the_plugin_is_registered_by_its_entry_point() -> None:
    (entry_point,) = [e for e in entry_points(group="pytest11") if e.name == "aimlapi_mock"]
    assert entry_point.value == "mock_server.testing.plugin"


@pytest.mark.parametrize(
    ("ini", "marker", "reason"),
    [
        pytest.param(
            "[pytest]\naimlapi_mock_env =\n    IMAGEGEN_API_URL\n",
            "",
            "aimlapi_mock_env: line 'IMAGEGEN_API_URL' is not NAME=template",
            id="ini-line-without-equals",
        ),
        pytest.param(
            INI,
            "@pytest.mark.aimlapi_mock(specs=['no/such/spec.yaml'])",
            "@pytest.mark.aimlapi_mock: no/such/spec.yaml",
            id="missing-spec-file",
        ),
    ],
)
def test_configuration_errors_fail_with_a_one_line_reason(
    pytester: pytest.Pytester, ini: str, marker: str, reason: str
) -> None:
    pytester.makeini(ini)
    pytester.makepyfile(
        f"""
        import pytest

        {marker}
        def test_uses_the_fake(aimlapi_mock):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=1)
    output = result.stdout.str()
    assert reason in output
    assert "Traceback" not in output and "mock_server/" not in output

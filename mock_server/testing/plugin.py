"""pytest plugin (registered through the ``pytest11`` entry point): the fake as fixtures.

A thin shell around :class:`mock_server.testing.MockServer`; the README documents the fixtures.
"""

from __future__ import annotations

import shutil
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..config import Settings
from ..errors import CassetteError, ConfigError, SpecError

if TYPE_CHECKING:
    import httpx

    from ..record.upstream import Budget
    from .fake import MockServer

MARKER = "aimlapi_mock"
RECORD_MODES = ("none", "new", "all")
_RUNNING = pytest.StashKey["MockServer"]()
_BUDGET: pytest.StashKey[Budget] = pytest.StashKey()
_RERECORDED: pytest.StashKey[set[Path]] = pytest.StashKey()
_FAILED: pytest.StashKey[bool] = pytest.StashKey()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aimlapi-mock", "aimlapi-mock cassettes")
    group.addoption(
        "--aimlapi-record",
        choices=RECORD_MODES,
        default="none",
        help="cassettes of @pytest.mark.aimlapi_mock(cassette=...): 'none' replays only and never "
        "touches the network (default); 'new' records what a cassette lacks; 'all' records "
        "every request afresh. Recording forwards to --aimlapi-upstream with AIMLAPI_KEY.",
    )
    group.addoption(
        "--aimlapi-upstream",
        metavar="URL",
        default=None,
        help="where --aimlapi-record forwards to (default https://api.aimlapi.com)",
    )
    group.addoption(
        "--aimlapi-max-requests",
        metavar="N",
        type=int,
        default=None,
        help="image-creating requests the whole run may send upstream (default 5)",
    )
    parser.addini(
        "aimlapi_mock_env",
        type="linelist",
        help="NAME=template lines: environment variables set for tests using aimlapi_mock; "
        "templates may name {base_url} and {api_key}",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): configure the fake for this test: Settings fields (specs, auth, "
        "api_keys, faults, latency, ...), env={NAME: template} and cassette='dir' (replayed; "
        "relative to the test file)",
    )


@pytest.fixture(scope="session")
def aimlapi_mock_settings() -> Settings:
    """Settings of the session's fake; override this fixture to change them for a whole suite."""
    return Settings()


@pytest.fixture(scope="session")
def aimlapi_mock_session(aimlapi_mock_settings: Settings) -> Iterator[MockServer]:
    """The session's fake, without the per-test reset (for fixtures wider than one test)."""
    from .fake import MockServer  # the fake loads only in runs that use it

    with MockServer(aimlapi_mock_settings) as fake:
        yield fake


@pytest.fixture
def aimlapi_mock(
    aimlapi_mock_session: MockServer, request: pytest.FixtureRequest
) -> Iterator[MockServer]:
    """The fake on a real socket, reset for this test and configured by its marker."""
    options: dict[str, Any] = {}
    for mark in reversed(list(request.node.iter_markers(MARKER))):
        if mark.args:
            pytest.fail(f"@pytest.mark.{MARKER} takes keyword options only", pytrace=False)
        options.update(mark.kwargs)
    templates = _env_lines(request.config.getini("aimlapi_mock_env"))
    templates.update(options.pop("env", {}))
    cassette = options.pop("cassette", None)
    mode = request.config.getoption("aimlapi_record")
    target: Path | None = None
    try:
        if cassette is not None:
            directory = Path(request.node.path).parent / str(cassette)
            target = _prepare_cassette(request.config, directory, mode, options)
        aimlapi_mock_session.configure(**options)
        if target is not None:
            _start_recording(request.config, aimlapi_mock_session, target)
        environ = aimlapi_mock_session.environ(templates)
    except (ConfigError, CassetteError, SpecError) as error:
        pytest.fail(f"@pytest.mark.{MARKER}: {error}", pytrace=False)
    request.node.stash[_RUNNING] = aimlapi_mock_session
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environ.items():
            patch.setenv(name, value)
        yield aimlapi_mock_session
    if target is not None and cassette is not None and target.name.endswith(_FRESH):
        if request.node.stash.get(_FAILED, False):
            shutil.rmtree(target, ignore_errors=True)  # keep the old cassette
        else:
            _swap_in(target, Path(request.node.path).parent / str(cassette))


@pytest.fixture
def aimlapi_app(aimlapi_mock: MockServer) -> Any:
    """The ASGI app of this test's fake (the one ``aimlapi_mock`` serves)."""
    return aimlapi_mock.app


@pytest.fixture
def aimlapi_client(aimlapi_mock: MockServer) -> Iterator[httpx.Client]:
    """An ``httpx.Client`` calling the fake in process, with the API key set."""
    from .clients import sync_client

    with sync_client(aimlapi_mock.app, api_key=aimlapi_mock.api_key) as client:
        yield client


@pytest.fixture
def aimlapi_async_client(aimlapi_mock: MockServer) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` calling the fake in process, with the API key set.

    A plain fixture, so it works under anyio, pytest-asyncio or any other async runner; its
    transport holds no connections, so it needs no closing.
    """
    from .clients import async_client

    return async_client(aimlapi_mock.app, api_key=aimlapi_mock.api_key)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """Re-raise in the test an exception the fake raised while serving it."""
    fake = item.stash.get(_RUNNING, None)
    try:
        result = yield
    except (Exception, pytest.fail.Exception) as failure:
        item.stash[_FAILED] = True
        errors = fake.take_errors() if fake is not None else []
        if errors and not _caused_by(failure, errors[0]) and failure.__cause__ is None:
            failure.__cause__ = _noted(fake, errors)
        raise
    errors = fake.take_errors() if fake is not None else []
    if errors:
        raise _noted(fake, errors)
    return result


def _env_lines(lines: list[str]) -> dict[str, str]:
    """The ``aimlapi_mock_env`` ini lines as names and templates; fails naming a bad line."""
    templates = {}
    for line in lines:
        name, equals, template = line.partition("=")
        if not equals or not name.strip() or any(c.isspace() for c in name.strip()):
            pytest.fail(
                f"aimlapi_mock_env: line {line!r} is not NAME=template "
                "(e.g. OPENAI_BASE_URL={base_url})",
                pytrace=False,
            )
        templates[name.strip()] = template
    return templates


def _noted(fake: MockServer | None, errors: list[BaseException]) -> BaseException:
    error = errors[0]
    entry = next((e for e in fake.journal if e.error is error), None) if fake else None
    where = f" while serving {entry.method} {entry.path}" if entry is not None else ""
    more = f" ({len(errors) - 1} more after it)" if len(errors) > 1 else ""
    error.add_note(f"raised inside aimlapi-mock{where}; the client got a 500{more}")
    return error


def _caused_by(failure: BaseException, error: BaseException) -> bool:
    seen: BaseException | None = failure
    while seen is not None:
        if seen is error:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


_FRESH = ".recording"


def _prepare_cassette(
    config: pytest.Config, directory: Path, mode: str, options: dict[str, Any]
) -> Path | None:
    """Set ``options`` to replay ``directory`` as ``mode`` says; the directory to record into
    (None: replay only). ``all`` records a cassette afresh beside it, once per run."""
    if mode == "none":
        options["replay"] = (str(directory),)
        return None
    done = config.stash.setdefault(_RERECORDED, set())
    if mode == "all" and directory not in done:
        done.add(directory)
        fresh = directory.with_name(directory.name + _FRESH)
        shutil.rmtree(fresh, ignore_errors=True)
        return fresh
    if (directory / "exchanges").is_dir():
        options["replay"] = (str(directory),)
    return directory


def _start_recording(config: pytest.Config, fake: MockServer, directory: Path) -> None:
    from ..record.settings import DEFAULT_MAX_REQUESTS, RecordSettings, key_from_env
    from ..record.upstream import Budget

    upstream = config.getoption("aimlapi_upstream")
    cap = config.getoption("aimlapi_max_requests")
    settings = RecordSettings(
        str(directory),
        **({"upstream": upstream} if upstream else {}),
        max_requests=DEFAULT_MAX_REQUESTS if cap is None else cap,
    )
    budget = config.stash.get(_BUDGET, None)
    if budget is None:
        budget = config.stash[_BUDGET] = Budget(settings.max_requests)
    fake.record(settings, key_from_env(), budget)


def _swap_in(fresh: Path, directory: Path) -> None:
    """Replace ``directory`` by the cassette recorded afresh beside it."""
    old = directory.with_name(directory.name + ".previous")
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    fresh.rename(directory)
    shutil.rmtree(old, ignore_errors=True)

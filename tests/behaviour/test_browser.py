"""The journal page in a real browser: Debian's headless Chromium, driven by Selenium.

Needs ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); screenshots go to
``reports/screenshots/``.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait
from starlette.types import Receive, Scope, Send

from mock_server import BackgroundServer, Settings, create_app
from mock_server.http.app import FakeApp

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).parents[2] / "reports" / "screenshots"
TOKEN = "page-token-123"
FLUX = "blackforestlabs/flux-2"
FLUX_MAX = "blackforestlabs/flux-2-max"
GENERATIONS = "/v1/images/generations"


class AdminHeaders:
    """Serves ``app``, noting the ``Authorization`` header of every admin request the page made."""

    def __init__(self, app: FakeApp) -> None:
        self.app = app
        self.seen: list[tuple[str, str | None]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/__mock/"):
            headers = dict(scope["headers"])
            token = headers.get(b"authorization")
            self.seen.append((scope["path"], token.decode() if token else None))
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    profile = tempfile.mkdtemp(prefix="aimlapi-mock-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1440,900",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def served(browser: WebDriver) -> Iterator[tuple[str, FakeApp, AdminHeaders]]:
    app = create_app(Settings(auth="keys", api_keys=("k",)))
    recorder = AdminHeaders(app)
    with BackgroundServer(recorder) as server:
        yield server.base_url, app, recorder
        browser.get("about:blank")  # closes the page's stream: the server stops at once


def generate(base_url: str, **fields: Any) -> requests.Response:
    body = {"model": FLUX, "prompt": "A T-Rex relaxing on a beach", **fields}
    return requests.post(
        base_url + GENERATIONS, json=body, headers={"Authorization": "Bearer k"}, timeout=10
    )


def wait_for(driver: WebDriver, condition: Any, timeout: float = 10) -> Any:
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)
    except TimeoutException:
        screenshot(driver, "timed-out")
        logs = "\n".join(str(line) for line in driver.get_log("browser"))
        raise AssertionError(f"the page did not get there; its console:\n{logs}") from None


def rows(driver: WebDriver) -> list[WebElement]:
    return driver.find_elements(By.CSS_SELECTOR, "#rows tr.entry")


def cells(row: WebElement) -> list[str]:
    return [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]


def screenshot(driver: WebDriver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_requests_appear_live_open_filter_and_fail_through_the_form(
    browser: WebDriver, served: tuple[str, FakeApp, AdminHeaders]
) -> None:
    base_url, app, recorder = served
    browser.get(f"{base_url}/__mock/#token={TOKEN}")
    wait_for(browser, lambda d: d.find_element(By.ID, "live").get_attribute("data-state") == "live")
    assert rows(browser) == []
    wait_for(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ledger"))
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-ledger") == "present"
    assert browser.find_element(By.ID, "credits-panel").is_displayed()
    wait_for(browser, lambda d: d.find_element(By.ID, "credits-now").text == "unlimited")
    browser.find_element(By.ID, "filter-generations").click()  # image downloads are rows too

    # A generation sent from Python shows up without a reload.
    assert generate(base_url, num_images=2).status_code == 200
    wait_for(browser, lambda d: len(rows(d)) == 1)
    clock, method, path, model, status, _, credits, fault, violations, request_id = cells(
        rows(browser)[0]
    )
    assert (method, path, model, status) == ("POST", GENERATIONS, FLUX, "200")
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d\d\d", clock)
    assert credits == "50,400"  # 2 images of one megapixel at 25,200
    assert (fault, violations) == ("", "")
    assert len(request_id) == 8
    assert (app.journal.last_generation.request_id or "").startswith(request_id)

    # Opened, it shows the request, the answer and both images, decoded.
    rows(browser)[0].click()
    images = wait_for(
        browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".images img")) == 2 or None
    )
    images = browser.find_elements(By.CSS_SELECTOR, ".images img")
    assert all(image.get_attribute("loading") == "lazy" for image in images)
    wait_for(
        browser,
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('.images img')]"
            ".every(i => i.complete && i.naturalWidth > 0)"
        ),
    )
    assert browser.execute_script(
        "return [...document.querySelectorAll('.images img')].map(i => i.naturalWidth)"
    ) == [1024, 1024]
    detail = browser.find_element(By.CSS_SELECTOR, ".detail")
    assert (
        '"prompt": "A T-Rex relaxing on a beach"'
        in detail.find_element(By.CSS_SELECTOR, ".request-body").text
    )
    assert "credits_used" in detail.find_element(By.CSS_SELECTOR, ".answer").text
    everything = detail.get_attribute("textContent") or ""  # the headers too, folded away
    assert "Bearer <redacted>" in everything  # the journal's redaction, not the key
    assert "Bearer k" not in everything

    detail.find_element(By.CSS_SELECTOR, '[data-copy="curl"]').click()
    copied = wait_for(
        browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-copied")
    )
    assert copied.startswith(f"curl -s '{base_url}{GENERATIONS}'")
    assert '"Authorization: Bearer $AIMLAPI_KEY"' in copied
    detail.find_element(By.CSS_SELECTOR, '[data-copy="assert"]').click()
    copied = wait_for(
        browser,
        lambda d: (
            (d.find_element(By.TAG_NAME, "body").get_attribute("data-copied") or "").startswith(
                "aimlapi_mock.journal"
            )
            and d.find_element(By.TAG_NAME, "body").get_attribute("data-copied")
        ),
    )
    assert 'prompt="A T-Rex relaxing on a beach"' in copied
    assert "num_images=2" in copied

    # A bad request for the other model: its violations, then the filters.
    assert (
        generate(base_url, model=FLUX_MAX, image_size={"width": 1000, "height": 4096}).status_code
        == 400
    )
    wait_for(browser, lambda d: len(rows(d)) == 2)
    newest = cells(rows(browser)[0])
    assert (newest[3], newest[4], newest[8]) == (FLUX_MAX, "400", "2")
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("4")
    wait_for(browser, lambda d: [cells(r)[4] for r in rows(d)] == ["400"])
    Select(browser.find_element(By.ID, "filter-status")).select_by_value("")
    Select(browser.find_element(By.ID, "filter-model")).select_by_value(FLUX)
    wait_for(browser, lambda d: [cells(r)[3] for r in rows(d)] == [FLUX])
    Select(browser.find_element(By.ID, "filter-model")).select_by_value("")
    wait_for(browser, lambda d: len(rows(d)) == 2)

    # A fault added with the form fails the next request.
    browser.find_element(By.ID, "fault-rule").send_keys("code=503, times=1")
    browser.find_element(By.CSS_SELECTOR, "#fault-form button[type=submit]").click()
    wait_for(
        browser,
        lambda d: (
            [li.text for li in d.find_elements(By.CSS_SELECTOR, "#fault-list li")]
            == ["code=503, times=1"]
        ),
    )
    assert app.faults.describe()["faults"] == ["code=503, times=1"]
    assert generate(base_url).status_code == 503
    wait_for(browser, lambda d: len(rows(d)) == 3)
    failed = cells(rows(browser)[0])
    assert (failed[4], failed[7]) == ("503", "code=503")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#fault-list li") == [])
    screenshot(browser, "journal-page")

    # The latency form sets the fake's latency.
    browser.find_element(By.ID, "latency-value").send_keys("fixed=0.01")
    browser.find_element(By.CSS_SELECTOR, "#latency-form button[type=submit]").click()
    wait_for(browser, lambda d: d.find_element(By.ID, "latency-now").text == "fixed=0.01")
    assert app.faults.describe()["latency"] == "fixed=0.01"

    # Export: the rows the filters keep, one journal entry per line, oldest first.
    browser.execute_script(
        "const make = URL.createObjectURL;"
        "URL.createObjectURL = (blob) => { window.exported = blob; return make(blob); };"
    )
    browser.find_element(By.ID, "export").click()
    exported = browser.execute_async_script("window.exported.text().then(arguments[0])")
    lines = [json.loads(line) for line in exported.splitlines()]
    assert [line["status"] for line in lines] == [200, 400, 503]
    assert lines[0]["body"]["num_images"] == 2
    assert lines[0]["request_id"] == app.journal.generations()[0].request_id

    # The page's own thumbnail downloads are in the journal, marked, and left off the page.
    own = [entry for entry in app.journal.entries if entry.query == "via=journal-page"]
    assert len(own) == 2
    browser.find_element(By.ID, "filter-generations").click()
    wait_for(browser, lambda d: [cells(r)[4] for r in rows(d)] == ["503", "400", "200"])

    # Clear empties the journal and the page.
    browser.find_element(By.ID, "clear").click()
    wait_for(browser, lambda d: rows(d) == [])
    assert len(app.journal) == 0
    assert "0 requests" in browser.find_element(By.ID, "summary").text

    # Every admin call the page made carried the token from the URL's fragment.
    assert {path for path, _ in recorder.seen} >= {
        "/__mock/",
        "/__mock/events",
        "/__mock/faults",
        "/__mock/health",
    }
    page_calls = [
        (path, token)
        for path, token in recorder.seen
        if not path.endswith(("/", ".css", ".js", ".svg"))
    ]
    assert page_calls and all(token == f"Bearer {TOKEN}" for _, token in page_calls)


def test_a_thousand_requests_render_without_stalling(
    browser: WebDriver, served: tuple[str, FakeApp, AdminHeaders]
) -> None:
    base_url, app, _ = served
    bodies = [
        {"model": FLUX, "prompt": f"request {number}"} if number % 10 else {"model": FLUX}
        for number in range(1000)
    ]
    asyncio.run(send_in_process(app, bodies))  # in a blink: this test is about the page
    assert len(app.journal) == 1000
    browser.get(f"{base_url}/__mock/")
    wait_for(browser, lambda d: "1,000 requests" in d.find_element(By.ID, "summary").text)
    # The DOM holds a page of rows, the rest a click away a page at a time: what keeps the
    # page responsive (its speed is not timed here: a test on a busy machine cannot).
    assert len(rows(browser)) == 200
    assert browser.find_element(By.ID, "show-more").text == "Show 200 more of 800"
    browser.find_element(By.ID, "show-more").click()
    assert len(rows(browser)) == 400
    assert browser.find_element(By.ID, "show-more").text == "Show 200 more of 600"
    # Live entries still arrive, on top.
    generate(base_url, prompt="the newest")
    wait_for(browser, lambda d: "1,001 requests" in d.find_element(By.ID, "summary").text)
    assert cells(rows(browser)[0])[4] == "200"
    assert len(rows(browser)) == 400
    browser.execute_script("window.scrollTo(0, 0)")
    screenshot(browser, "journal-page-1000-rows")


async def send_in_process(app: FakeApp, bodies: list[dict[str, Any]]) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as client:
        for body in bodies:
            await client.post(GENERATIONS, json=body, headers={"Authorization": "Bearer k"})


def test_the_credits_control_sets_the_ledger(browser: WebDriver) -> None:
    app = create_app(Settings(credits=1000))
    with BackgroundServer(app) as server:
        browser.get(f"{server.base_url}/__mock/")
        wait_for(browser, lambda d: d.find_element(By.ID, "credits-panel").is_displayed())
        wait_for(browser, lambda d: d.find_element(By.ID, "credits-now").text == "1,000 credits")
        browser.find_element(By.ID, "credits-value").send_keys("5000")
        browser.find_element(By.CSS_SELECTOR, "#credits-form button[type=submit]").click()
        wait_for(browser, lambda d: d.find_element(By.ID, "credits-now").text == "5,000 credits")
        assert app.ledger.balance == 5000
        browser.get("about:blank")

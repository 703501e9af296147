"""The dashboard in a real headless Chromium (Debian's chromium and chromium-driver, installed by
scripts/browser.sh): it loads, takes a token, shows live figures while records flow, lists the
dead letters, and its 重新投递 button redrives one, which then reaches the (fixed) target.

Selenium is synchronous and the gateway serves from this test's event loop, so every browser step
runs in a thread (``asyncio.to_thread``) while the loop keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from gateway.auth import hash_api_key
from tests.conftest import SAMPLES
from tests.peers.national_platform_server import APP_ID, APP_SECRET, NationalPlatformServer
from tests.servers import embedded_runtime, serving

pytestmark = pytest.mark.integration

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1400,1000")
KEY = "sgw_test_key_dashboard_department"
OPS = "ops-token-for-the-dashboard-test"
WAIT_S = 20.0
T = TypeVar("T")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if shutil.which(p) is None]
    assert not missing, f"{missing} not installed: run scripts/browser.sh (apt: chromium chromium-driver)"
    options = Options()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def penalties() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        (SAMPLES / "eco-rest" / "penalties-page-1.json").read_text(encoding="utf-8"))["items"]
    return items


def cell_text(driver: WebDriver, css: str) -> str:
    """The text of the first element matching ``css`` ("" when absent or redrawn meanwhile)."""
    try:
        found = driver.find_elements(By.CSS_SELECTOR, css)
        return found[0].text if found else ""
    except StaleElementReferenceException:
        return ""


async def until(driver: WebDriver, condition: Callable[[WebDriver], T], what: str) -> T:
    """Wait in a thread for the page to show ``condition`` (polled by WebDriverWait)."""
    def wait() -> T:
        # The page redraws a table when its figures change: an element found a moment ago may be gone.
        result: T = WebDriverWait(driver, WAIT_S, poll_frequency=0.1,
                                  ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)
                                  ).until(condition, message=what)
        return result
    return await asyncio.to_thread(wait)


async def test_dashboard_shows_live_figures_and_redrives_a_dead_letter(
        tmp_path: Path, browser: WebDriver) -> None:
    async with NationalPlatformServer() as national:
        runtime = embedded_runtime(
            tmp_path, [{"id": "eco-push", "type": "http_push", "mapping": "eco-rest.penalty", "department": "eco"}],
            departments=[{"code": "eco", "name": "生态环境", "api_key_hashes": [hash_api_key(KEY)]}],
            api={"tokens": [{"name": "night-shift", "role": "ops", "token_hash": hash_api_key(OPS)}]},
            delivery={"max_attempts": 1},  # the first failure dead-letters the record
            adapters=[{"id": "national", "type": "national_platform",
                       "options": {"base_url": national.url, "app_id": APP_ID, "app_secret": APP_SECRET}}],
            routing=[{"kinds": ["*"], "adapters": ["national"]}])
        national.fail(1000, 503)  # the platform is down
        async with serving(runtime) as base, httpx.AsyncClient(base_url=base) as client:
            page = await client.get("/dashboard/")
            assert page.status_code == 200 and "运行监控" in page.text
            assert "default-src 'self'" in page.headers["content-security-policy"]
            assert (await client.get("/dashboard")).headers["location"] == "dashboard/"
            assert (await client.get("/dashboard/__init__.py")).status_code == 404  # only the page's assets
            await asyncio.to_thread(browser.get, f"{base}/dashboard/?refresh_ms=500")
            assert await until(browser, lambda d: d.find_element(By.ID, "token").is_displayed(), "the token form")

            def log_in() -> None:
                browser.find_element(By.ID, "token").send_keys(OPS)
                browser.find_element(By.ID, "login-button").click()
            await asyncio.to_thread(log_in)
            connector = 'tr[data-connector="eco-push"]'
            await until(browser, lambda d: cell_text(d, f"{connector} td.accepted") == "0", "eco-push with 0 records")
            assert not await asyncio.to_thread(lambda: browser.find_element(By.ID, "login").is_displayed())
            assert await asyncio.to_thread(browser.execute_script, "return sessionStorage.getItem('sgw-token')") == OPS

            pushed = await client.post("/ingest/eco-push", json=penalties(), headers={"X-API-Key": KEY})
            assert pushed.json()["counts"]["accepted"] == 2, pushed.text
            await until(browser, lambda d: cell_text(d, f"{connector} td.accepted") == "2", "2 accepted, live")
            assert await asyncio.to_thread(cell_text, browser, f"{connector} td.per-minute") == "2"

            await until(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "button.redrive")) == 2,
                        "two dead letters with a redrive button")
            assert await asyncio.to_thread(cell_text, browser, 'tr[data-target="national"] td.dead') == "2"
            chosen = await until(browser, lambda d: d.find_element(By.CSS_SELECTOR, "button.redrive")
                                 .get_attribute("data-id"), "the first dead letter's id")
            assert await asyncio.to_thread(cell_text, browser, f'tr[data-dead-letter="{chosen}"] td') == chosen

            national.fail(0)  # fixed

            def click_redrive(d: WebDriver) -> bool:
                d.find_element(By.CSS_SELECTOR, f'button.redrive[data-id="{chosen}"]').click()
                return True
            await until(browser, click_redrive, "a click on 重新投递")
            notice = await until(browser, lambda d: cell_text(d, "#notice") if "已重新投递 1" in cell_text(d, "#notice")
                                 else False, "the redrive notice")
            assert chosen in notice
            await until(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "button.redrive")) == 1,
                        "one dead letter left")
            await until(browser, lambda d: cell_text(d, 'tr[data-target="national"] td.delivered') == "1",
                        "the redriven record delivered")

            left = (await client.get("/admin/dead-letters", headers={"Authorization": f"Bearer {OPS}"})).json()
    assert chosen not in {d["id"] for d in left["items"]} and len(left["items"]) == 1
    redriven_record = next(r for r in national.stored)
    assert national.stored == {redriven_record: 1}
    assert redriven_record != left["items"][0]["record_id"]

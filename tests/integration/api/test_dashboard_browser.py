"""The dashboard in a real browser: Debian's chromium driven by Playwright (never a download).

It opens the dashboard of a running service fed telemetry, sees the header change without a
reload (the live stream), finds every request on loopback (all assets local), and saves a
screenshot to var/dashboard.png.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.fixtures.gridcoord_process import ROOT
from tests.integration.api.conftest import TOKENS, RunningService

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def feeding(service: RunningService) -> Iterator[None]:
    """Telemetry with a changing PV output, until the test ends."""
    stop = threading.Event()

    def feed() -> None:
        step = 0
        while not stop.wait(0.3):
            step += 1
            service.publish("pv-roof-01", {"power_w": 5_000.0 + 500.0 * (step % 20)})
            if step % 5 == 0:
                service.report_chargers_and_meters()

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(5)


def test_dashboard_live_local_and_screenshot(service: RunningService, feeding: None) -> None:
    if shutil.which(CHROMIUM) is None:
        pytest.fail("chromium is not installed: run `make test` (installs it as root)")
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("request", lambda r: requests.append(r.url))
            page.add_init_script(f"sessionStorage.setItem('gridcoord-token', '{TOKENS['viewer']}')")
            page.goto(service.url + "/", wait_until="domcontentloaded")
            page.wait_for_function(
                "document.getElementById('kpi-renewable').textContent.endsWith('kW')",
                timeout=30_000,
            )
            first = page.inner_text("#kpi-renewable")
            navigations = len([u for u in requests if urlsplit(u).path == "/"])
            page.wait_for_function(
                f"document.getElementById('kpi-renewable').textContent !== {first!r}",
                timeout=30_000,
            )
            assert len([u for u in requests if urlsplit(u).path == "/"]) == navigations == 1
            page.wait_for_selector("#zones [data-zone='lt-01']", timeout=30_000)
            page.wait_for_selector("#chargers [data-charger='charger-001']", timeout=30_000)
            page.wait_for_selector("#chart polyline", timeout=30_000)
            assert page.locator("#live.on").count() == 1
            # No horizontal scrollbar at 1280x800.
            assert page.evaluate("document.documentElement.scrollWidth <= 1280")
            (ROOT / "var").mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT / "var" / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    hosts = {urlsplit(u).hostname for u in requests if not u.startswith("data:")}
    assert hosts == {"127.0.0.1"}, sorted(set(requests))

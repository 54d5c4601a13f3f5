"""The dashboard in a real browser: Debian's chromium + chromium-driver driven by Selenium 4.

Every chart of every page must be drawn by Plotly with data points (read back from the graph
divs), the page must load Plotly from the dashboard itself (no CDN), and the browser console
must stay free of errors. Screenshots go to <stack>/screenshots/<page>.png.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hospital.dashboard import server
from hospital.dashboard.queries import PAGES
from hospital.settings import Settings
from tests.integration.test_dashboard import free_port, seed_hospital

pytestmark = pytest.mark.integration

CHROMEDRIVER = Path("/usr/bin/chromedriver")

# Sum of points per trace of each Plotly graph div on the page, by chart id.
POINTS_JS = """
const out = {};
for (const div of document.querySelectorAll('.chart')) {
  const data = div.data || [];
  out[div.id.replace('chart-', '')] = data.map(t => (t.y || []).length + 0);
}
return out;
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMEDRIVER.exists() or not shutil.which("chromium"):
        pytest.fail("chromium and chromium-driver are not installed (bootstrap installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="hospital-chromium-")
    options = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1500",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or "chromium"
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def dashboard_url(stack: Settings) -> Iterator[tuple[Settings, str]]:
    settings = stack.model_copy(update={"dashboard_port": free_port(stack.host)})
    server.stop(settings)
    seed_hospital(settings)
    address = server.start_background(settings)
    try:
        yield settings, address
    finally:
        server.stop(settings)


@pytest.mark.parametrize("page", list(PAGES))
def test_every_chart_renders_with_data(
    browser: Any, dashboard_url: tuple[Settings, str], page: str
) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    settings, address = dashboard_url
    browser.get(f"{address}/{page}")
    WebDriverWait(browser, 60).until(
        lambda d: int(d.execute_script("return document.body.dataset.renders || 0")) >= 1
    )
    points: dict[str, list[int]] = browser.execute_script(POINTS_JS)
    _title, charts = PAGES[page]
    assert set(points) == {c.id for c in charts}
    empty = [chart for chart, per_trace in points.items() if sum(per_trace) == 0]
    assert not empty, f"charts drawn without data on /{page}: {empty}"

    # Plotly came from the dashboard, not from a CDN.
    scripts = browser.execute_script(
        "return Array.from(document.scripts).map(s => s.src).filter(Boolean)"
    )
    assert f"{address}/static/plotly.min.js" in scripts
    assert all(src.startswith(address) for src in scripts)
    assert browser.execute_script("return typeof Plotly.version") == "string"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors

    folder = settings.stack_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / f"{page}.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000

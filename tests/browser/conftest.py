"""Browser fixtures: the test app served on a real port, and the machine's Chromium through Playwright.

Playwright's own browser download is not used: tests drive the Debian Chromium at
``/usr/bin/chromium``. Without it (or without the ``playwright`` package) the browser tests are
skipped locally, but they *fail* when the ``CI`` environment variable is set, so that CI never
passes by silently skipping them.

The test files take Playwright's ``Page`` and ``expect`` from here (both ``None`` without the
package, so that they still import), with ``log_in`` and the screen sizes.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.factories import PASSWORD

try:
    from playwright.sync_api import Page, expect
except ImportError:  # the browser fixture then skips (or, in CI, fails) with the reason
    Page = expect = None

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 812}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _unavailable(reason: str):
    """Skip locally; fail in CI, where a missing browser must never pass unnoticed."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so browser tests must not be skipped)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def live_server(app):
    """The test ``app`` (SQLite, and PostgreSQL when configured) served on a free local port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="formloom-live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[test]')")
    if not os.path.exists(CHROMIUM):
        _unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    expect.set_options(timeout=10_000)  # as the pages' own default: a loaded CI machine is slow to answer
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    except Exception:
        playwright.stop()
        raise
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def context(browser):
    """A fresh browser context (own cookies, English, desktop size) for each test."""
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    context.set_default_timeout(10_000)
    context.set_default_navigation_timeout(15_000)
    yield context
    context.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(request, context, tmp_path):
    """A page that records uncaught JavaScript errors in ``page.js_errors``.

    When the test fails, the page as it was is saved as ``failure.png`` in the test's tmp_path.
    """
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed and not page.is_closed():
        path = tmp_path / "failure.png"
        try:
            page.screenshot(path=str(path), full_page=True)
            print(f"browser screenshot of the failure: {path}  (page {page.url})")
        except Exception as exc:  # a broken page must not hide the real failure
            print(f"no failure screenshot: {exc}")


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


def whole_page(page, path) -> None:
    """The whole page in one picture, taken in a viewport as tall as the page (sticky bars stay on top)."""
    size = page.viewport_size
    page.set_viewport_size({**size, "height": page.evaluate("document.documentElement.scrollHeight")})
    page.screenshot(path=str(path))
    page.set_viewport_size(size)


def log_in(page: Page, base: str, username: str, display_name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".topbar .who")).to_have_text(display_name)

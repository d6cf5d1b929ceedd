"""The API reference page in a real browser: reached from the top bar, readable, no script errors.

The screenshot for the docs lands in docs/screenshots/api-reference.png.
"""
from __future__ import annotations

import pytest

from formloom.templates_library import install
from tests.browser.conftest import DESKTOP, PHONE, Page, expect, log_in

pytestmark = pytest.mark.browser


def test_admin_reads_the_api_reference(live_server, page: Page, db, admin, screenshots):
    install(db, admin)
    db.commit()
    base = live_server
    log_in(page, base, "admin", "Ada Admin")
    page.get_by_role("link", name="API", exact=True).click()
    expect(page.get_by_role("heading", name="API reference")).to_be_visible()
    opportunity = page.locator("#tag-crm\\.opportunity")
    expect(opportunity.get_by_role("heading", name="Opportunity", exact=True)).to_be_visible()
    transition = page.locator("#op-records\\.crm\\.opportunity\\.transition")
    expect(transition.locator(".api-path")).to_have_text("/api/v1/apps/crm/records/opportunity/{id}/transition")
    # A field row: key, label, type, and its required mark.
    name_row = page.locator("#schema-crm\\.opportunity\\.Data tr.depth-0").filter(has_text="Opportunity name")
    expect(name_row.locator(".req")).to_be_visible()
    page.locator(".api-toc").get_by_role("link", name="Opportunity", exact=True).click()
    expect(opportunity).to_be_in_viewport()
    page.locator("#op-records\\.crm\\.opportunity\\.update").scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "api-reference-operation.png"))
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(screenshots / "api-reference.png"))
    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "page overflows at 375 px"
    page.set_viewport_size(DESKTOP)
    assert page.js_errors == []

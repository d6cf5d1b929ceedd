"""A rep's record flow in a real browser: log in, fail validation, save, find, edit, see the history.

Runs on every backend the ``app`` fixture offers (SQLite, and PostgreSQL when
FORMLOOM_TEST_DATABASE_URL is set). Screenshots for the docs land in docs/screenshots/.
"""
from __future__ import annotations

import re

import pytest

from tests.browser.conftest import DESKTOP, PHONE, Page, expect, log_in

pytestmark = pytest.mark.browser


def diff_item(page: Page, field_label: str):
    """The history's diff line for one field (the newest change is listed first or last: any will do)."""
    return page.locator("section.history ul.diff li").filter(
        has=page.locator("span.field-name", has_text=re.compile(rf"^{re.escape(field_label)}$")))


def test_rep_creates_finds_and_edits_a_deal(live_server, page: Page, rep, screenshots):
    base = live_server
    log_in(page, base, "rep", "Rita Rep")

    # A phone-width view of the empty form (before any errors), then back to desktop.
    page.set_viewport_size(PHONE)
    page.goto(f"{base}/apps/sales/deal/new")
    expect(page.locator("#f_name")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "form overflows at 375 px"
    page.screenshot(path=str(screenshots / "form-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)

    # Bad values: each message beside its own field, the typed text kept, the summary focused.
    page.goto(f"{base}/apps/sales/deal/new")
    page.fill("#f_name", "")
    page.fill("#f_contact_email", "abc")
    page.fill("#f_amount", "12.345")
    page.fill("#f_seats", "0")
    page.get_by_role("button", name="Save").click()

    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    expect(page.locator("#f_name-error")).to_contain_text("Deal name is required.")
    expect(page.locator("#f_contact_email-error")).to_contain_text("e-mail address")
    expect(page.locator("#f_amount-error")).to_contain_text("2 decimal places")
    expect(page.locator("#f_seats-error")).to_contain_text("at least 1")
    for key in ("name", "contact_email", "amount", "seats"):
        error = page.locator(f"#f_{key}-error")
        field = page.locator(f".field:has(#f_{key})")
        expect(field.locator(f"#f_{key}-error")).to_have_count(1)  # beside its own input
        expect(page.locator(f"#f_{key}")).to_have_attribute("aria-invalid", "true")
        expect(page.locator(f"#f_{key}")).to_have_attribute("aria-describedby", re.compile(rf"\bf_{key}-error\b"))
        expect(error).to_be_visible()
    expect(page.locator("p.error")).to_have_count(4)  # no message for the fields left alone
    expect(page.locator("#f_contact_email")).to_have_value("abc")
    expect(page.locator("#f_amount")).to_have_value("12.345")
    expect(page.locator("#f_seats")).to_have_value("0")
    assert page.input_value("#f_name") == ""
    page.screenshot(path=str(screenshots / "form-errors.png"), full_page=True)

    # Corrected values save and land on the record page.
    page.fill("#f_name", "Shanghai Metro rollout")
    page.fill("#f_contact_email", "buyer@metro.example.com")
    page.fill("#f_amount", "250000.50")
    page.fill("#f_seats", "40")
    page.select_option("#f_stage", "proposal")
    page.locator(".field-multiselect").get_by_label("CRM", exact=True).check()
    page.get_by_role("button", name="Save").click()

    expect(page).to_have_url(re.compile(r"/apps/sales/deal/\d+$"))
    record_url = page.url
    expect(page.locator("h1")).to_contain_text("Shanghai Metro rollout")
    expect(page.locator('.value-row[data-field="amount"] dd')).to_have_text("¥250,000.50")
    expect(page.locator('.value-row[data-field="stage"] dd')).to_have_text("Proposal")
    expect(page.locator('.value-row[data-field="products"] dd')).to_contain_text("CRM")
    expect(page.locator('.value-row[data-field="seats"] dd')).to_contain_text("40")

    # The list shows the row, and so does a search for it; a search for nothing shows none.
    page.goto(f"{base}/apps/sales/deal/")
    rows = page.locator("table.records tbody tr")
    expect(rows.filter(has_text="Shanghai Metro rollout")).to_have_count(1)
    page.screenshot(path=str(screenshots / "record-list.png"), full_page=True)

    page.fill("#q", "metro")
    page.locator("#q").press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]q=metro\b"))
    expect(rows.filter(has_text="Shanghai Metro rollout")).to_have_count(1)

    page.fill("#q", "zzz")
    page.locator("#q").press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]q=zzz\b"))
    expect(page.get_by_text("No records match.")).to_be_visible()
    expect(rows).to_have_count(0)

    # Open it from the search results, edit it, and read the change in its history.
    page.fill("#q", "metro")
    page.locator("#q").press("Enter")
    page.get_by_role("link", name="Shanghai Metro rollout").click()
    expect(page).to_have_url(record_url)
    page.get_by_role("link", name="Edit").click()
    expect(page).to_have_url(re.compile(r"/apps/sales/deal/\d+/edit$"))
    expect(page.locator("#f_amount")).to_have_value(re.compile(r"^250000\.50?$"))
    page.fill("#f_amount", "260000")
    page.select_option("#f_stage", label="Won")
    page.get_by_role("button", name="Save").click()

    expect(page).to_have_url(record_url)
    expect(page.locator('.value-row[data-field="amount"] dd')).to_have_text("¥260,000.00")
    amount = diff_item(page, "Amount")
    expect(amount).to_have_count(1)
    expect(amount.locator("del")).to_have_text("¥250,000.50")
    expect(amount.locator("ins")).to_have_text("¥260,000.00")
    stage = diff_item(page, "Stage")
    expect(stage).to_have_count(1)
    expect(stage.locator("del")).to_have_text("Proposal")
    expect(stage.locator("ins")).to_have_text("Won")
    expect(page.locator("section.history ul.diff li")).to_have_count(2)  # nothing else changed
    page.screenshot(path=str(screenshots / "record-page.png"), full_page=True)

    assert page.js_errors == []


def test_member_without_access_gets_not_allowed(live_server, page: Page, outsider):
    base = live_server
    log_in(page, base, "outsider", "Otto Outsider")
    response = page.goto(f"{base}/apps/sales/deal/new")
    assert response is not None and response.status == 403
    expect(page.locator("main h1")).to_have_text("Not allowed")
    expect(page.locator("form.record-form")).to_have_count(0)
    assert page.js_errors == []


def test_relation_picker_searches_companies_and_saves_the_choice(live_server, page: Page, db, admin, sales, rep):
    from formloom.platform.auth import Cause
    from formloom.runtime import records

    for name in ("Acme Robotics", "Globex Foods", "Initech Software"):
        records.create(db, admin, Cause.for_user(admin), sales, "company", {"name": name})
    db.commit()
    log_in(page, live_server, "rep", "Rita Rep")
    page.goto(f"{live_server}/apps/sales/deal/new")
    search = page.get_by_placeholder("Search…")
    search.fill("glob")
    expect(page.locator("#f_company option")).to_have_count(2)  # the blank choice and Globex
    page.select_option("#f_company", label="Globex Foods")
    page.fill("#f_name", "Snack supply")
    page.get_by_role("button", name="Save").click()
    expect(page.locator('[data-field="company"] dd a')).to_have_text("Globex Foods")

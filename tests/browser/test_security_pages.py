"""The API tokens page and the admin audit in a real browser. Screenshots land in docs/screenshots/."""
from __future__ import annotations

import re

import pytest

from formloom.platform import auth
from tests.browser.conftest import Page, expect, log_in

pytestmark = pytest.mark.browser


def test_a_token_is_created_copied_and_revoked_then_the_admin_reads_the_audit(live_server, page: Page, db, admin,
                                                                              sales, screenshots):
    base = live_server
    auth.create_token(db, admin, "Nightly export", ["records:read", "app:sales"])
    db.commit()
    page.goto(f"{base}/login")  # one failed login, for the audit
    page.fill("#username", "admin")
    page.fill("#password", "not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".flash-error")).to_have_text("Wrong username or password.")
    log_in(page, base, "admin", "Ada Admin")

    page.get_by_role("link", name="API tokens").click()
    page.fill("#token-name", "Sheets sync")
    page.get_by_label(re.compile(r"^records:read")).check()
    page.get_by_label(re.compile(r"^Sales")).check()
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-secret")
    expect(secret).to_have_value(re.compile(r"^flm_"))
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    row = page.locator("tr", has_text="Sheets sync")
    expect(row).to_contain_text("records:read")
    expect(row).to_contain_text("app:sales")
    page.screenshot(path=str(screenshots / "account-tokens.png"), full_page=True)

    page.get_by_role("button", name="Revoke: Nightly export").click()
    expect(page.locator(".flash-success")).to_have_text("Token 'Nightly export' is revoked; it no longer works.")
    expect(page.locator("#new-secret")).to_have_count(0)  # the secret was shown once

    page.get_by_role("link", name="Audit").click()
    entries = page.locator("table.audit-table tbody tr")
    expect(entries.first).to_contain_text("API token revoked")
    expect(page.locator("tr[data-kind=login_failed]")).to_contain_text("admin")
    page.select_option("#kind", "token_created")
    page.get_by_role("button", name="Filter").click()
    expect(entries).to_have_count(1)
    expect(entries.first).to_contain_text("Sheets sync")
    page.goto(f"{base}/admin/audit")
    page.screenshot(path=str(screenshots / "admin-audit.png"), full_page=True)
    assert page.js_errors == []

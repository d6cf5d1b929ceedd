"""The import flow in Chromium: upload → map → dry run → commit (as a job, with progress) → rollback.

Screenshots: docs/screenshots/import-mapping.png, import-dry-run.png, import-done.png, import-history.png.
"""
from __future__ import annotations

import pytest

from tests.browser.conftest import Page, expect, log_in, whole_page
from tests.factories import make_people_app


@pytest.fixture
def people(db, admin):
    return make_people_app(db, admin)


def test_import_upload_map_dry_run_commit_and_rollback(app, live_server, page: Page, people, tmp_path, screenshots):
    app.config["IMPORT_INLINE_ROWS"] = 50  # the dry run answers at once; the commit runs as a job
    lines = ["姓名,Mail,Age,Tier,Remarks"]
    for i in range(120):
        lines.append(f"{'' if i == 3 else f'王伟 {i}'},w{i}@example.cn,{'abc' if i == 7 else 20 + i},"
                     f"{'z' if i == 9 else 'a'},note {i}")
    path = tmp_path / "客户名单.csv"
    path.write_bytes(("\n".join(lines) + "\n").encode("gbk"))
    log_in(page, live_server, "admin", "Ada Admin")
    page.goto(f"{live_server}/apps/people/person/")
    page.get_by_role("link", name="Import", exact=True).click()
    page.set_input_files("#import-file", str(path))
    page.get_by_role("button", name="Upload and map columns").click()
    expect(page.locator("#column-0")).to_have_value("name")
    page.select_option("#column-1", "email")
    page.select_option("#match", "email")
    whole_page(page, screenshots / "import-mapping.png")
    page.get_by_role("button", name="Check (dry run)").click()
    expect(page.locator(".import-status")).to_have_text("Dry run: nothing written")
    expect(page.locator(".import-error strong")).to_have_text("3")
    page.get_by_role("link", name="Only rows with problems").click()
    expect(page.locator(".import-results tbody tr")).to_have_count(3)
    expect(page.locator(".import-results")).to_contain_text("Name is required.")
    whole_page(page, screenshots / "import-dry-run.png")
    page.get_by_role("button", name="Import the valid rows").click()
    expect(page.locator(".import-status")).to_have_text("Done", timeout=60_000)
    expect(page.locator(".import-create strong")).to_have_text("117")
    whole_page(page, screenshots / "import-done.png")
    page.get_by_role("button", name="Roll back this import").click()
    expect(page.locator(".flash-success")).to_have_text("Rolled back: 117 record(s) removed, 0 restored.")
    page.get_by_role("link", name="Import history").click()
    expect(page.locator(".import-history tbody tr")).to_have_count(2)
    whole_page(page, screenshots / "import-history.png")
    assert page.js_errors == []

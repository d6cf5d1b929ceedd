"""The form engine in a real browser: rules as the rep types, sub-table totals, linked fields,
cascading choices, files and signatures, the Chinese UI, the keyboard, and the phone layout.

Runs on every backend the ``app`` fixture offers (SQLite, and PostgreSQL when
FORMLOOM_TEST_DATABASE_URL is set). Screenshots for the docs land in docs/screenshots/.
"""
from __future__ import annotations

import re

import pytest

from formloom.platform.auth import Cause
from formloom.platform.models import Record
from formloom.runtime import records
from tests.browser.conftest import DESKTOP, PHONE, Page, expect, log_in

pytestmark = pytest.mark.browser

NEW_QUOTE = "/apps/quotes/quote/new"
RECORD_URL = re.compile(r"/apps/quotes/quote/(\d+)$")


@pytest.fixture
def acme(db, rep, quotes):
    record = records.create(db, rep, Cause.for_user(rep), quotes, "customer", {
        "name": "Acme Trading", "phone": "+86 138-0000-0001", "tier": "a",
        "address": {"province": "广东省", "city": "深圳市", "district": "南山区", "street": "科技园路1号"}})
    db.commit()
    return record


@pytest.fixture
def rep_page(live_server, page: Page, quotes) -> Page:
    """The rep, logged in, on an empty quote form."""
    log_in(page, live_server, "rep", "Rita Rep")
    page.base = live_server
    page.goto(f"{live_server}{NEW_QUOTE}")
    expect(page.locator("#f_title")).to_be_visible()
    return page


def field(page: Page, key: str):
    return page.locator(f'.field[data-field="f_{key}"]')


def cell(page: Page, row: int, column: str):
    """The input of a sub-table cell; ``row`` counts from 1, as the rep sees it."""
    return page.locator('[data-table="f_lines"] tbody tr[data-row]').nth(row - 1).locator(
        f'[name$="-f_{column}"]')


def shown_value(page: Page, key: str):
    return page.locator(f'.value-row[data-field="{key}"] dd')


def add_row(page: Page) -> None:
    rows = page.locator('[data-table="f_lines"] tbody tr[data-row]')
    before = rows.count()
    page.get_by_role("button", name="Add row").click()
    expect(rows).to_have_count(before + 1)


def fill_line(page: Page, row: int, product: str, qty: str, price: str) -> None:
    cell(page, row, "product").fill(product)
    cell(page, row, "qty").fill(qty)
    cell(page, row, "price").fill(price)


def save(page: Page) -> int:
    """Saves the form and returns the id of the record page it lands on."""
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(RECORD_URL)
    expect(page.locator(".error-summary")).to_have_count(0)
    return int(RECORD_URL.search(page.url).group(1))


def stored(db, record_id: int) -> dict:
    """The record's data as the database holds it now (written by the server, not this session)."""
    db.expire_all()
    data = db.get(Record, record_id).data
    db.rollback()
    return data


def draw_signature(page: Page) -> None:
    pad = page.locator("canvas.signature-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + w * 0.1, y + h * 0.7)
    page.mouse.down()
    for i in range(1, 13):  # a wavy stroke across the pad
        page.mouse.move(x + w * (0.1 + 0.06 * i), y + h * (0.7 - 0.4 * (i % 2)), steps=3)
    page.mouse.up()
    expect(page.locator("#f_signature")).to_have_value(re.compile(r"^data:image/png;base64,"))


# --- 1. visibility and required-when ----------------------------------------------------------

def test_rules_react_as_the_rep_chooses_a_stage(rep_page: Page):
    page = rep_page
    lost_reason = field(page, "lost_reason")
    close_date = field(page, "close_date")
    expect(page.locator("#f_stage")).to_have_value("draft")
    expect(lost_reason).to_be_hidden()
    expect(close_date.locator(".req-when")).to_have_count(0)
    expect(page.locator("#f_close_date")).not_to_have_attribute("aria-required", "true")

    page.select_option("#f_stage", label="Lost")
    expect(lost_reason).to_be_visible()
    expect(page.get_by_label("Why was it lost?")).to_be_editable()

    page.select_option("#f_stage", label="Draft")
    expect(lost_reason).to_be_hidden()

    page.select_option("#f_stage", label="Sent")
    expect(lost_reason).to_be_hidden()
    expect(close_date.locator("label .req-when")).to_be_visible()
    expect(page.locator("#f_close_date")).to_have_attribute("aria-required", "true")
    expect(page.get_by_label(re.compile(r"^Expected close date.*required"))).to_have_count(1)

    page.select_option("#f_stage", label="Draft")
    expect(close_date.locator(".req-when")).to_have_count(0)
    expect(page.locator("#f_close_date")).to_have_attribute("aria-required", "false")
    assert page.js_errors == []


# --- 2. hidden required fields ----------------------------------------------------------------

def test_hidden_required_field_does_not_block_saving(rep_page: Page, db):
    page = rep_page
    page.fill("#f_title", "Office chairs")
    fill_line(page, 1, "Chair", "4", "350")
    # The reason typed while the quote was "Lost" goes away with the field once it is hidden.
    page.select_option("#f_stage", label="Lost")
    page.get_by_label("Why was it lost?").fill("Too expensive")
    page.select_option("#f_stage", label="Draft")
    expect(field(page, "lost_reason")).to_be_hidden()
    record_id = save(page)
    expect(page.locator("h1")).to_contain_text("Office chairs")
    expect(shown_value(page, "stage")).to_have_text("Draft")
    expect(page.locator('.value-row[data-field="lost_reason"]')).to_have_count(0)  # hidden: not shown
    assert "lost_reason" not in stored(db, record_id)
    assert page.js_errors == []


# --- 3. sub-table totals ----------------------------------------------------------------------

def test_sub_table_total_is_live_exact_and_stored(rep_page: Page, db):
    page = rep_page
    rows = page.locator('[data-table="f_lines"] tbody tr[data-row]')
    expect(rows).to_have_count(1)
    for _ in range(3):
        add_row(page)
    fill_line(page, 1, "Licence", "3", "19.99")
    fill_line(page, 2, "Mistake", "5", "100")
    fill_line(page, 3, "Setup", "1", "0.10")
    fill_line(page, 4, "Training", "2", "0.20")
    expect(page.locator("#f_total")).to_have_value("¥560.47")
    expect(cell(page, 2, "amount")).to_have_value("¥500.00")

    # Removing the second row renumbers the rest: row numbers, names and labels.
    page.get_by_role("button", name="Remove row 2").click()
    expect(rows).to_have_count(3)
    expect(rows.locator(".row-number")).to_have_text(["1", "2", "3"])
    expect(page.get_by_label("Product 2", exact=True)).to_have_value("Setup")
    expect(page.get_by_label("Product 3", exact=True)).to_have_value("Training")
    assert page.eval_on_selector_all('[data-table="f_lines"] tbody [name]', "els => els.map(e => e.name)") == [
        f"f_lines-{i}-f_{c}" for i in range(3) for c in ("product", "qty", "price", "amount")]
    expect(page.get_by_role("button", name=re.compile(r"^Remove row \d$"))).to_have_count(3)

    # 59.97 + 0.10 + 0.40: binary floats would say 60.470000000000006.
    expect(page.locator("#f_total")).to_have_value("¥60.47")
    expect(cell(page, 1, "amount")).to_have_value("¥59.97")
    expect(cell(page, 2, "amount")).to_have_value("¥0.10")
    expect(cell(page, 3, "amount")).to_have_value("¥0.40")
    page.fill("#f_discount", "10")
    expect(page.locator("#f_net")).to_have_value("¥54.42")

    page.fill("#f_title", "Three lines")
    record_id = save(page)
    expect(shown_value(page, "total")).to_have_text("¥60.47")
    expect(shown_value(page, "net")).to_have_text("¥54.42")
    expect(shown_value(page, "lines").locator("tbody tr")).to_have_count(3)
    data = stored(db, record_id)
    assert data["total"] == "60.47"
    assert [row["amount"] for row in data["lines"]] == ["59.97", "0.10", "0.40"]
    assert [row["product"] for row in data["lines"]] == ["Licence", "Setup", "Training"]
    assert page.js_errors == []


# --- 4. linked fields -------------------------------------------------------------------------

def test_choosing_a_customer_fills_linked_fields(rep_page: Page, db, acme):
    page = rep_page
    page.reload()  # the picker lists the customer created after the page was first opened
    page.select_option("#f_customer", label="Acme Trading")
    expect(page.locator("#f_contact_phone")).to_have_value("+86 138-0000-0001")
    expect(page.locator("#f_ship_to-province")).to_have_value("广东省")
    expect(page.locator("#f_ship_to-city")).to_have_value("深圳市")
    expect(page.locator("#f_ship_to-street")).to_have_value("科技园路1号")
    expect(page.locator("#f_tier")).to_have_value("A")  # the customer's tier, by its option label

    # The rep may still change what was filled in; a later recomputation keeps it.
    with page.expect_response(lambda r: "/compute" in r.url):
        page.fill("#f_contact_phone", "+86 139-1111-2222")
    page.fill("#f_title", "Linked")
    fill_line(page, 1, "Licence", "1", "10")
    expect(page.locator("#f_total")).to_have_value("¥10.00")
    expect(page.locator("#f_contact_phone")).to_have_value("+86 139-1111-2222")
    record_id = save(page)
    expect(shown_value(page, "customer")).to_have_text("Acme Trading")
    expect(shown_value(page, "contact_phone")).to_have_text("+86 139-1111-2222")
    expect(shown_value(page, "ship_to")).to_contain_text("科技园路1号")
    expect(shown_value(page, "tier")).to_have_text("A")
    data = stored(db, record_id)
    assert data["contact_phone"] == "+86 139-1111-2222"
    assert data["tier"] == "a"
    assert page.js_errors == []


def test_choosing_another_customer_fills_that_customers_values(rep_page: Page, db, rep, quotes, acme):
    records.create(db, rep, Cause.for_user(rep), quotes, "customer", {
        "name": "Globex Foods", "phone": "+86 138-0000-0002", "tier": "b",
        "address": {"province": "浙江省", "city": "杭州市", "street": "文三路2号"}})
    db.commit()
    page = rep_page
    page.reload()
    page.select_option("#f_customer", label="Acme Trading")
    expect(page.locator("#f_contact_phone")).to_have_value("+86 138-0000-0001")
    with page.expect_response(lambda r: "/compute" in r.url and "changed=f_customer" in r.url):
        page.select_option("#f_customer", label="Globex Foods")
    expect(page.locator("#f_tier")).to_have_value("B")
    expect(page.locator("#f_contact_phone")).to_have_value("+86 138-0000-0002")
    expect(page.locator("#f_ship_to-street")).to_have_value("文三路2号")


def test_choosing_another_customer_on_an_existing_quote_fills_its_values(rep_page: Page, db, rep, quotes, acme):
    globex = records.create(db, rep, Cause.for_user(rep), quotes, "customer", {
        "name": "Globex Foods", "phone": "+86 138-0000-0002"})
    quote = records.create(db, rep, Cause.for_user(rep), quotes, "quote", {
        "title": "Existing", "customer": acme.id, "lines": [{"product": "Licence", "qty": 1}]})
    db.commit()
    assert quote.data["contact_phone"] == "+86 138-0000-0001"
    page = rep_page
    page.goto(f"{page.base}/apps/quotes/quote/{quote.id}/edit")
    expect(page.locator("#f_contact_phone")).to_have_value("+86 138-0000-0001")
    with page.expect_response(lambda r: "/compute" in r.url and "changed=f_customer" in r.url):
        page.select_option("#f_customer", str(globex.id))
    expect(page.locator("#f_contact_phone")).to_have_value("+86 138-0000-0002", timeout=3000)


# --- 5. cascading choices ---------------------------------------------------------------------

def choosable(page: Page, select: str) -> list[str]:
    return page.eval_on_selector(select, "s => Array.from(s.options).filter(o => !o.disabled && !o.hidden)"
                                         ".map(o => o.textContent.trim())")


def test_city_choices_follow_the_province(rep_page: Page):
    page = rep_page
    assert choosable(page, "#f_city") == ["—"]
    page.select_option("#f_province", label="Guangdong")
    assert choosable(page, "#f_city") == ["—", "Shenzhen", "Guangzhou"]
    page.select_option("#f_city", label="Shenzhen")
    expect(page.locator("#f_city")).to_have_value("sz")

    page.select_option("#f_province", label="Zhejiang")
    expect(page.locator("#f_city")).to_have_value("")  # Shenzhen is not in Zhejiang
    assert choosable(page, "#f_city") == ["—", "Hangzhou"]
    page.select_option("#f_city", label="Hangzhou")
    page.fill("#f_title", "Cascade")
    fill_line(page, 1, "Licence", "1", "10")
    save(page)
    expect(shown_value(page, "province")).to_have_text("Zhejiang")
    expect(shown_value(page, "city")).to_have_text("Hangzhou")
    assert page.js_errors == []


# --- 6. files and signatures ------------------------------------------------------------------

QUOTE_TXT = b"Quote terms: net 30 days.\n\xe6\x8a\xa5\xe4\xbb\xb7\n"


def test_file_and_signature_are_saved_and_kept_on_edit(rep_page: Page, db):
    page = rep_page
    base = page.base
    page.fill("#f_title", "Signed quote")
    fill_line(page, 1, "Licence", "1", "10")
    page.set_input_files("#f_attachments", files=[{"name": "terms.txt", "mimeType": "text/plain",
                                                    "buffer": QUOTE_TXT}])
    draw_signature(page)
    record_id = save(page)

    link = shown_value(page, "attachments").get_by_role("link", name="terms.txt")
    expect(link).to_be_visible()
    download = page.request.get(base + link.get_attribute("href"))
    assert download.ok and download.body() == QUOTE_TXT
    signature = shown_value(page, "signature").locator("img")
    expect(signature).to_have_count(1)
    signature.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=signature.element_handle())
    png = page.request.get(base + signature.get_attribute("src"))
    assert png.ok and png.body().startswith(b"\x89PNG\r\n\x1a\n")
    before = stored(db, record_id)
    assert [f["name"] for f in before["attachments"]] == ["terms.txt"]
    assert len(before["signature"]) == 1

    # Editing other fields and saving keeps both files as they were.
    page.get_by_role("link", name="Edit").click()
    expect(page).to_have_url(re.compile(rf"/apps/quotes/quote/{record_id}/edit$"))
    expect(page.locator("#f_title")).to_have_value("Signed quote")
    expect(field(page, "attachments").get_by_role("link", name="terms.txt")).to_be_visible()
    expect(field(page, "signature").locator("img.signature-image")).to_be_visible()
    page.fill("#f_title", "Signed quote, revised")
    save(page)
    expect(page.locator("h1")).to_contain_text("Signed quote, revised")
    link = shown_value(page, "attachments").get_by_role("link", name="terms.txt")
    assert page.request.get(base + link.get_attribute("href")).body() == QUOTE_TXT
    signature = shown_value(page, "signature").locator("img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=signature.element_handle())
    after = stored(db, record_id)
    assert after["attachments"] == before["attachments"]
    assert after["signature"] == before["signature"]

    # A signature on file is shown instead of the pad; clearing it brings the pad back for a new one.
    page.get_by_role("link", name="Edit").click()
    expect(page).to_have_url(re.compile(rf"/apps/quotes/quote/{record_id}/edit$"))
    pad = page.locator("canvas.signature-pad")
    expect(pad).to_be_hidden()
    page.get_by_role("button", name="Clear signature").click()
    expect(field(page, "signature").locator("img")).to_have_count(0)
    expect(pad).to_be_visible()
    expect(page.locator("#f_signature")).to_have_value("")
    draw_signature(page)
    save(page)
    signature = shown_value(page, "signature").locator("img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=signature.element_handle())
    redrawn = stored(db, record_id)
    assert len(redrawn["signature"]) == 1 and redrawn["signature"] != before["signature"]
    assert redrawn["attachments"] == before["attachments"]
    assert page.js_errors == []


# --- 7. the Chinese UI ------------------------------------------------------------------------

def test_chinese_ui_shows_chinese_labels_and_messages(rep_page: Page):
    page = rep_page
    page.goto(f"{page.base}{NEW_QUOTE}?lang=zh-CN")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("legend", has_text="报价明细")).to_be_visible()
    expect(page.get_by_role("button", name="添加一行")).to_be_visible()
    fill_line(page, 1, "许可证", "2", "99.50")
    expect(page.locator("#f_total")).to_have_value("¥199.00")
    page.get_by_role("button", name="保存").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("请修正标出的字段。")
    expect(summary.get_by_role("link", name="标题为必填项。")).to_be_visible()
    expect(page.locator("#f_title-error")).to_have_text("标题为必填项。")
    expect(page.get_by_label("标题")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field label", has_text="预计成交日期")).to_be_visible()
    expect(page.get_by_label("产品 1", exact=True)).to_have_value("许可证")
    assert page.js_errors == []


# --- 8. the keyboard --------------------------------------------------------------------------

def test_keyboard_error_summary_and_add_row(rep_page: Page):
    page = rep_page
    page.select_option("#f_stage", label="Sent")
    page.get_by_role("button", name="Save").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_focused()
    links = summary.get_by_role("link")
    expect(links).to_have_count(3)
    expect(links).to_have_text(["Title is required.", "Expected close date is required.",
                                "Line items needs at least 1 row."])

    page.keyboard.press("Tab")
    expect(links.nth(0)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#f_title")).to_be_focused()
    page.keyboard.type("Typed after the error")

    summary.focus()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(links.nth(1)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#f_close_date")).to_be_focused()

    summary.focus()
    for _ in range(3):
        page.keyboard.press("Tab")
    expect(links.nth(2)).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Product 1", exact=True)).to_be_focused()

    # Add row with Enter and with Space; the new row's first cell gets the focus.
    add = page.get_by_role("button", name="Add row")
    add.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Product 2", exact=True)).to_be_focused()
    add.focus()
    page.keyboard.press("Space")
    expect(page.get_by_label("Product 3", exact=True)).to_be_focused()
    page.keyboard.type("Keyboard row")
    expect(page.get_by_label("Product 3", exact=True)).to_have_value("Keyboard row")
    expect(page.locator("#f_title")).to_have_value("Typed after the error")
    assert page.js_errors == []


# --- 9. layout and screenshots ----------------------------------------------------------------

def fill_everything(page: Page) -> None:
    page.fill("#f_title", "Shenzhen office fit-out")
    page.select_option("#f_customer", label="Acme Trading")
    expect(page.locator("#f_contact_phone")).to_have_value("+86 138-0000-0001")
    page.select_option("#f_stage", label="Sent")
    page.fill("#f_close_date", "2099-06-30")
    page.select_option("#f_province", label="Guangdong")
    page.select_option("#f_city", label="Shenzhen")
    for _ in range(2):
        add_row(page)
    fill_line(page, 1, "Licence", "3", "19.99")
    fill_line(page, 2, "Setup", "1", "0.10")
    fill_line(page, 3, "Training", "2", "0.20")
    page.fill("#f_discount", "10")
    page.locator(".field-rating label.star").nth(3).click()
    page.fill("#f_call_at", "14:30")
    page.fill("#f_effort", "1h 30m")
    page.fill("#f_labels", "vip, 渠道")
    page.fill("#f_site-lat", "22.543100")
    page.fill("#f_site-lng", "114.057900")
    page.select_option("#f_team", label="Ada Admin")
    page.set_input_files("#f_attachments", files=[{"name": "terms.txt", "mimeType": "text/plain",
                                                    "buffer": QUOTE_TXT}])
    draw_signature(page)
    expect(page.locator("#f_total")).to_have_value("¥60.47")
    expect(page.locator("#f_net")).to_have_value("¥54.42")


def overflowing(page: Page) -> list[str]:
    """Elements reaching past the right edge of the viewport (what makes a phone scroll sideways)."""
    return page.evaluate("""() => {
        const width = document.documentElement.clientWidth;
        return Array.from(document.querySelectorAll("body *"))
          .filter((el) => el.getClientRects().length && el.getBoundingClientRect().right > width + 0.5)
          .filter((el) => !el.closest(".table-wrap") || el.matches(".table-wrap"))
          .map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (el.className ? "." + el.className : ""));
    }""")


def test_full_form_on_desktop_and_phone(rep_page: Page, acme, screenshots):
    page = rep_page
    page.reload()
    fill_everything(page)
    page.locator("#f_title").focus()
    page.screenshot(path=str(screenshots / "form-engine-desktop.png"), full_page=True)
    assert overflowing(page) == []

    page.set_viewport_size(PHONE)
    expect(page.locator("#f_title")).to_be_visible()
    page.wait_for_function("() => document.documentElement.clientWidth <= 375")
    assert overflowing(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "form overflows at 375 px"
    # Each sub-table row is a card on a phone: no cell is cut off or needs sideways scrolling.
    wrap = page.locator(".field-table .table-wrap")
    assert wrap.evaluate("el => el.scrollWidth <= el.clientWidth")
    pad = page.locator("canvas.signature-pad").bounding_box()
    assert pad["width"] <= PHONE["width"] and pad["width"] > 200
    page.screenshot(path=str(screenshots / "form-engine-phone.png"), full_page=True)

    # The phone-sized form still saves everything that was typed in.
    page.set_viewport_size(DESKTOP)
    save(page)
    expect(shown_value(page, "total")).to_have_text("¥60.47")
    expect(shown_value(page, "city")).to_have_text("Shenzhen")
    expect(shown_value(page, "labels")).to_contain_text("渠道")
    assert page.js_errors == []

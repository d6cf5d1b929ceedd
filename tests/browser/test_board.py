"""The kanban board of a pipeline in a real browser: drag a deal to another stage and see the
counts and sums change (and stay after a reload); a gate that refuses a move explains itself on
the card; approvals and checklists; the filters; the Move menu for keyboards; desktop and phone.

Runs on every backend the ``app`` fixture offers (SQLite, and PostgreSQL when
FORMLOOM_TEST_DATABASE_URL is set). Screenshots for the docs land in docs/screenshots/.
"""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from formloom.platform import auth
from formloom.platform.auth import Cause
from formloom.platform.db import new_session
from formloom.platform.models import AppMember, Record
from formloom.runtime import records
from tests.browser.conftest import DESKTOP, PHONE, Page, expect, log_in
from tests.factories import make_pipeline_app, make_user

pytestmark = pytest.mark.browser

BOARD = "/apps/pipes/pipelines/deals/"


@pytest.fixture
def deals(db, admin, rep):
    """The pipeline app, open to the rep, with deals in several stages.

    Lead holds three of the rep's deals (¥1,000 complete, ¥2,000 complete, one with neither amount
    nor customer: ¥3,000 in all); Qualified holds the admin's ¥500 deal.
    """
    app = make_pipeline_app(db, admin)
    auth.grant_app(db, rep, app)
    manager = make_user(db, "mia", display_name="Mia Manager")
    auth.grant_app(db, manager, app)
    db.get(AppMember, (app.id, manager.id)).role = "manager"  # approves big discounts
    db.commit()

    def create(user, **values):
        return records.create(db, user, Cause.for_user(user), app, "deal", values)

    acme = records.create(db, rep, Cause.for_user(rep), app, "company", {"name": "Acme Trading"})
    beta = records.create(db, rep, Cause.for_user(rep), app, "company", {"name": "Beta Foods"})
    made = SimpleNamespace(
        app=app,
        complete=create(rep, name="Acme rollout", amount="1000", company=acme.id, close_date="2026-06-30"),
        second=create(rep, name="Beta expansion", amount="2000", company=beta.id),
        bare=create(rep, name="Cold call lead"),
        admins=create(admin, name="Admin's own deal", amount="500", stage="qualified"),
        discounted=create(rep, name="Discounted renewal", amount="8000", company=acme.id, discount="30",
                          close_date="2026-05-31", stage="proposal"),
        closing=create(rep, name="Closing deal", amount="12000", company=beta.id, close_date="2026-04-30",
                       stage="negotiation"),
    )
    db.commit()
    return made


def column(page: Page, stage: str):
    return page.locator(f'.board-column[data-stage="{stage}"]')


def card(page: Page, record: Record):
    return page.locator(f'.board-card[data-id="{record.id}"]')


def drag(page: Page, record: Record, stage: str) -> None:
    """Drag a card by the mouse (HTML5 drag and drop) onto a stage's column."""
    page.drag_and_drop(f'.board-card[data-id="{record.id}"]', f'.board-column[data-stage="{stage}"]')


def expect_column(page: Page, stage: str, count: int, total: str) -> None:
    """What the column's header says (and the hooks the script keeps in step with it)."""
    expect(column(page, stage).locator(".column-count")).to_have_text(str(count))
    expect(column(page, stage).locator(".column-total")).to_have_text(total)
    expect(column(page, stage)).to_have_attribute("data-count", str(count))


def stage_in_db(app, record: Record) -> str:
    """The record's stage as a fresh database session reads it (not the test's cached objects)."""
    session = new_session(app)
    try:
        return session.get(Record, record.id).data["stage"]
    finally:
        session.close()


@pytest.fixture
def board(live_server, page: Page, deals) -> Page:
    """The rep, logged in, on the board."""
    log_in(page, live_server, "rep", "Rita Rep")
    page.base = live_server
    page.goto(f"{live_server}{BOARD}")
    expect(column(page, "lead")).to_be_visible()
    return page


def test_the_board_shows_stages_counts_sums_and_cards(board: Page, deals):
    page = board
    expect(page.locator("main h1")).to_contain_text("Deals")
    expect(page.get_by_role("link", name="Statistics")).to_have_attribute("href", f"{BOARD}stats")
    expect(page.locator(".board-column .column-title")).to_have_text(
        ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"])
    expect_column(page, "lead", 3, "¥3,000.00")
    expect_column(page, "qualified", 1, "¥500.00")
    expect_column(page, "proposal", 1, "¥8,000.00")
    expect_column(page, "won", 0, "¥0.00")
    expect(column(page, "won").locator(".column-empty")).to_be_visible()
    expect(column(page, "lead").locator(".column-probability")).to_have_text("10%")
    # The stage colour reaches the column's stripe (set by the script: the CSP forbids inline styles).
    stripe = page.evaluate("getComputedStyle(document.querySelector('#column-qualified')).borderTopColor")
    assert stripe == "rgb(66, 165, 245)"

    complete = card(page, deals.complete)
    expect(complete.locator(".card-title a")).to_have_attribute("href", f"/apps/pipes/deal/{deals.complete.id}")
    expect(complete.locator('.card-field[data-field="company"]')).to_have_text(re.compile(r"Customer:?\s*Acme Trading"))
    expect(complete.locator('.card-field[data-field="close_date"]')).to_contain_text("2026-06-30")
    expect(complete.locator(".card-amount")).to_have_text("¥1,000.00")
    expect(complete.locator(".card-owner")).to_have_text("Rita Rep")
    expect(card(page, deals.admins).locator(".card-owner")).to_have_text("Ada Admin")
    expect(complete).to_have_attribute("draggable", "true")
    assert page.js_errors == []


def test_dragging_a_complete_deal_moves_it_and_updates_both_columns(board: Page, deals, app):
    page = board
    expect_column(page, "lead", 3, "¥3,000.00")
    expect_column(page, "qualified", 1, "¥500.00")

    drag(page, deals.complete, "qualified")

    expect(column(page, "qualified").locator(f'.board-card[data-id="{deals.complete.id}"]')).to_have_count(1)
    expect(column(page, "lead").locator(f'.board-card[data-id="{deals.complete.id}"]')).to_have_count(0)
    expect_column(page, "lead", 2, "¥2,000.00")
    expect_column(page, "qualified", 2, "¥1,500.00")
    moved = card(page, deals.complete)
    expect(moved).to_have_attribute("data-version", str(deals.complete.version + 1))
    expect(moved.locator(".card-message")).to_have_count(0)
    expect(page.locator(".board-status")).to_have_text("Moved Acme rollout to Qualified.")
    # Its Move menu now offers the moves from Qualified.
    expect(moved.locator(".card-move li:not([hidden])")).to_have_text(["Move to Proposal", "Move to Lost"])

    # The server agrees: after a reload the card is still there, and the database says qualified.
    page.reload()
    expect(column(page, "qualified").locator(f'.board-card[data-id="{deals.complete.id}"]')).to_have_count(1)
    expect_column(page, "lead", 2, "¥2,000.00")
    expect_column(page, "qualified", 2, "¥1,500.00")
    assert stage_in_db(app, deals.complete) == "qualified"
    assert page.js_errors == []


def test_the_drop_target_is_highlighted_while_dragging(board: Page, deals):
    """Mid-drag states, by dispatching the drag events a mouse drag fires (Playwright's drag is atomic)."""
    page = board
    page.evaluate("""(id) => {
      const dt = new DataTransfer();
      window.boardDrag = dt;
      document.querySelector(`.board-card[data-id="${id}"]`).dispatchEvent(
        new DragEvent("dragstart", {bubbles: true, cancelable: true, dataTransfer: dt}));
      document.querySelector("#column-proposal .column-head").dispatchEvent(
        new DragEvent("dragover", {bubbles: true, cancelable: true, dataTransfer: dt}));
    }""", deals.complete.id)
    expect(card(page, deals.complete)).to_have_class(re.compile(r"\bis-dragging\b"))
    expect(page.locator(".board-column.is-drop-target")).to_have_count(1)
    expect(column(page, "proposal")).to_have_class(re.compile(r"\bis-drop-target\b"))
    expect(column(page, "lead")).not_to_have_class(re.compile(r"\bis-drop-(target|candidate)\b"))  # its own column
    assert page.evaluate("getComputedStyle(document.querySelector('#column-proposal')).backgroundColor") \
        != page.evaluate("getComputedStyle(document.querySelector('#column-won')).backgroundColor")

    page.evaluate("""(id) => document.querySelector(`.board-card[data-id="${id}"]`).dispatchEvent(
        new DragEvent("dragend", {bubbles: true, dataTransfer: window.boardDrag}))""", deals.complete.id)
    expect(page.locator(".board-column.is-drop-target, .board-column.is-drop-candidate")).to_have_count(0)
    expect(card(page, deals.complete)).not_to_have_class(re.compile(r"\bis-dragging\b"))
    expect_column(page, "lead", 3, "¥3,000.00")  # a drag that ends nowhere changes nothing
    assert page.js_errors == []


def test_a_gate_refuses_the_move_and_says_what_is_missing_on_the_card(board: Page, deals, app, screenshots):
    page = board
    drag(page, deals.bare, "proposal")

    bare = card(page, deals.bare)
    message = bare.locator(".card-message")
    expect(message).to_be_visible()
    expect(message).to_have_attribute("role", "alert")
    expect(message).to_contain_text("To enter Proposal, fill Amount and Customer.")
    expect(message.locator(".card-message-items li")).to_have_text(["Amount", "Customer"])
    expect(message.get_by_role("link", name="Fill them in and move")).to_have_attribute(
        "href", f"/apps/pipes/deal/{deals.bare.id}/move?to=proposal")
    # The card stays in Lead and nothing is counted twice.
    expect(column(page, "lead").locator(f'.board-card[data-id="{deals.bare.id}"]')).to_have_count(1)
    expect(column(page, "proposal").locator(f'.board-card[data-id="{deals.bare.id}"]')).to_have_count(0)
    expect_column(page, "lead", 3, "¥3,000.00")
    expect_column(page, "proposal", 1, "¥8,000.00")
    expect(bare).to_have_attribute("data-version", str(deals.bare.version))
    expect(page.locator(".board-column.is-drop-target")).to_have_count(0)  # the highlight is gone
    page.screenshot(path=str(screenshots / "board-desktop.png"), full_page=True)
    assert stage_in_db(app, deals.bare) == "lead"

    # A move the transitions do not allow is explained the same way; the message can be dismissed.
    drag(page, deals.bare, "won")
    expect(message).to_contain_text("It cannot move from Lead to Won; it can move to: Qualified, Proposal and Lost.")
    message.get_by_role("button", name="Dismiss").click()
    expect(message).to_have_count(0)
    expect(bare.locator(".card-title a")).to_be_focused()
    assert stage_in_db(app, deals.bare) == "lead"
    assert page.js_errors == []


def test_the_gate_message_comes_in_the_page_language(board: Page, deals):
    page = board
    page.goto(f"{page.base}{BOARD}?lang=zh-CN")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    drag(page, deals.bare, "proposal")
    expect(card(page, deals.bare).locator(".card-message")).to_contain_text("进入“方案”前，请填写金额和Customer。")
    expect(card(page, deals.bare).locator(".card-message")).to_contain_text("填写并推进")
    expect_column(page, "lead", 3, "¥3,000.00")
    assert page.js_errors == []


def test_a_checklist_gate_links_to_the_move_page(board: Page, deals, app):
    page = board
    drag(page, deals.closing, "won")
    message = card(page, deals.closing).locator(".card-message")
    expect(message).to_contain_text("To enter Won, confirm: Contract signed.")
    expect(message.get_by_role("link", name="Tick the checklist on the Move page")).to_have_attribute(
        "href", f"/apps/pipes/deal/{deals.closing.id}/move?to=won")
    expect(column(page, "negotiation").locator(f'.board-card[data-id="{deals.closing.id}"]')).to_have_count(1)
    expect_column(page, "won", 0, "¥0.00")
    assert stage_in_db(app, deals.closing) == "negotiation"
    assert page.js_errors == []


def test_a_move_that_needs_approval_leaves_the_card_waiting(board: Page, deals, app):
    page = board
    drag(page, deals.discounted, "negotiation")
    waiting = card(page, deals.discounted)
    expect(waiting.locator(".badge-waiting")).to_have_text("Waiting for approval")
    expect(waiting.locator(".card-message")).to_have_attribute("role", "status")
    expect(waiting.locator(".card-message")).to_contain_text("Approval requested")
    expect(column(page, "proposal").locator(f'.board-card[data-id="{deals.discounted.id}"]')).to_have_count(1)
    expect_column(page, "proposal", 1, "¥8,000.00")
    expect_column(page, "negotiation", 1, "¥12,000.00")
    assert stage_in_db(app, deals.discounted) == "proposal"

    # The server remembers the pending request: the badge is there after a reload too, and another
    # move is refused until the request is decided.
    page.reload()
    expect(card(page, deals.discounted).locator(".badge-waiting")).to_have_text("Waiting for approval")
    drag(page, deals.discounted, "lost")
    expect(card(page, deals.discounted).locator(".card-message")).to_contain_text("waiting for approval")
    expect_column(page, "lost", 0, "¥0.00")
    assert page.js_errors == []


def test_filters_show_mine_one_owner_or_a_search(board: Page, deals):
    page = board
    expect(card(page, deals.admins)).to_have_count(1)  # everyone's deals by default

    page.select_option("#board-scope", "mine")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"[?&]scope=mine\b"))
    expect(page.locator("#board-scope")).to_have_value("mine")
    expect(card(page, deals.admins)).to_have_count(0)
    expect(page.locator(".board-card .card-owner")).to_have_text(["Rita Rep"] * 5)
    expect_column(page, "qualified", 0, "¥0.00")
    expect_column(page, "lead", 3, "¥3,000.00")

    page.select_option("#board-scope", "all")
    page.select_option("#board-owner", label="Ada Admin")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(".board-card")).to_have_count(1)
    expect(card(page, deals.admins)).to_have_count(1)
    expect_column(page, "qualified", 1, "¥500.00")

    page.goto(f"{page.base}{BOARD}?q=beta")
    expect(page.locator("#board-q")).to_have_value("beta")
    expect(page.locator(".board-card .card-title")).to_have_text(["Beta expansion"])

    # The date range is on the pipeline's date field, labelled with it.
    expect(page.get_by_label("Expected close from")).to_be_visible()
    page.goto(f"{page.base}{BOARD}?from=2026-05-01&to=2026-06-30")
    expect(page.locator(".board-card .card-title")).to_have_text(["Acme rollout", "Discounted renewal"])

    page.goto(f"{page.base}{BOARD}?scope=nobody")
    expect(page.locator(".flash-error")).to_contain_text("Parameter 'scope' must be one of")
    assert page.js_errors == []


def test_a_full_column_links_to_the_rest_of_its_records(live_server, page: Page, deals, monkeypatch):
    from functools import partial

    from formloom.runtime import board as board_module

    monkeypatch.setattr(board_module, "load", partial(board_module.load, per_column=2))  # the server's own
    log_in(page, live_server, "rep", "Rita Rep")
    page.goto(f"{live_server}{BOARD}")
    lead = column(page, "lead")
    expect(lead.locator(".board-card")).to_have_count(2)
    expect_column(page, "lead", 3, "¥3,000.00")  # counts and sums are over every record, not the cards shown
    more = lead.locator(".column-more")
    expect(more).to_have_text("1 more…")
    expect(more).to_have_attribute("href", "/apps/pipes/deal/?f.stage=lead")
    expect(column(page, "qualified").locator(".column-more")).to_have_count(0)
    more.click()
    expect(page).to_have_url(re.compile(r"/apps/pipes/deal/\?f\.stage=lead$"))
    expect(page.locator("table.records tbody tr")).to_have_count(3)
    assert page.js_errors == []


def test_the_move_menu_works_from_the_keyboard(board: Page, deals):
    page = board
    summary = card(page, deals.complete).locator(".card-move summary")
    summary.focus()
    page.keyboard.press("Enter")
    menu = card(page, deals.complete).locator(".card-move li:not([hidden]) a")
    expect(menu).to_have_text(["Move to Qualified", "Move to Proposal", "Move to Lost"])
    expect(menu.first).to_be_visible()
    expect(menu.first).to_have_attribute("href", f"/apps/pipes/deal/{deals.complete.id}/move?to=qualified")
    page.keyboard.press("Tab")
    expect(menu.first).to_be_focused()
    assert page.js_errors == []


def test_outside_records_are_counted_and_the_phone_layout_scrolls(board: Page, deals, db, rep, screenshots):
    page = board
    records.create(db, rep, Cause.for_user(rep), deals.app, "deal", {"name": "Old archived deal", "stage": "archived"})
    db.commit()
    page.set_viewport_size(PHONE)
    page.reload()
    expect(page.locator(".board-outside")).to_have_text("1 record is in a stage outside this pipeline.")
    expect(column(page, "lead")).to_be_visible()
    # The page itself does not overflow at 375 px: the board scrolls sideways on its own.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], "board page overflows at 375 px"
    assert page.evaluate("(() => { const b = document.querySelector('.board'); return b.scrollWidth > b.clientWidth; })()")
    width = page.evaluate("document.querySelector('#column-lead').getBoundingClientRect().width")
    assert 240 <= width <= PHONE["width"], f"a column is {width}px wide on a phone"
    page.screenshot(path=str(screenshots / "board-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    assert page.js_errors == []

"""The form designer (builder-form.js) in a real browser: an admin arranges a form by drag and drop
and by the keyboard controls, gives a field a width, a help text and a "show when" condition built
from pickers, and the draft holds exactly that; the published form then behaves so for a rep;
server problems show inline and in the list; JSON mode and back leaves the body as it was.

Runs on every backend the ``app`` fixture offers (SQLite, and PostgreSQL when
FORMLOOM_TEST_DATABASE_URL is set). Screenshots for the docs land in docs/screenshots/.
"""
from __future__ import annotations

import copy
import json
import re

import pytest

from formloom.builder import definitions
from tests.browser.conftest import DESKTOP, PHONE, Page, expect, log_in, whole_page

pytestmark = pytest.mark.browser

FORM = "deal_quick"
EDITOR = f"/apps/pipes/admin/form/{FORM}/"
API = f"/api/v1/apps/pipes/definitions/form/{FORM}"

LOST_WHEN = {"field": "stage", "op": "eq", "value": "lost"}
ARRANGED = [
    {"label": "Basics", "fields": [{"text": "Fill in the basics."}, "name", "stage"]},
    {"label": "Outcome", "fields": [
        {"field": "lost_reason", "width": "half", "help": "Why did we lose?", "visible_when": LOST_WHEN},
        "amount", "close_date"]},
]


def quick_form(sections=None) -> dict:
    """A form for the pipeline app's deals (entity fields: name*, company, amount, discount,
    close_date, stage, lost_reason, owner)."""
    return {"formloom": 1, "kind": "form", "key": FORM, "label": {"en": "Quick deal", "zh-CN": "快速商机"},
            "entity": "deal",
            "sections": sections if sections is not None else [
                {"label": "Basics", "fields": [{"text": "Fill in the basics."}, "name", "stage", "amount", "close_date"]}]}


@pytest.fixture
def form_draft(db, admin, pipes):
    """The pipeline app (the rep is a member) with a draft form of its deals, never published."""
    definitions.save_draft(db, admin, pipes, "form", FORM, quick_form())
    db.commit()
    return pipes


def open_designer(page: Page, base: str) -> None:
    log_in(page, base, "admin", "Ada Admin")
    page.goto(f"{base}{EDITOR}")
    expect(page.locator("[data-form-designer]")).to_be_visible()


def section(page: Page, n: int):
    return page.locator(f'.fd-section[data-path="$.sections[{n}]"]')


def placed(page: Page, key: str):
    return page.locator(f'.fd-item[data-key="{key}"]')


def chip(page: Page, key: str):
    return page.locator(f'.fd-chip[data-key="{key}"]')


def keys_in(page: Page, n: int) -> list[str]:
    """What section n shows, in order: field keys, and "text" for text blocks."""
    return section(page, n).locator(".fd-item").evaluate_all(
        "items => items.map((el) => el.dataset.key || (el.classList.contains('fd-item-text') ? 'text' : '?'))")


def wait_saved(page: Page, problems: int = 0) -> None:
    state = page.locator("[data-save-state]")
    if problems:
        expect(state).to_have_text(f"Draft saved · {problems} problem{'s' if problems != 1 else ''}")
    else:
        expect(state).to_have_text("Draft saved")


def stored_draft(page: Page, base: str) -> dict:
    response = page.request.get(f"{base}{API}")
    assert response.ok, response.text()
    return response.json()["draft"]


def body_now(page: Page) -> dict:
    return page.evaluate("JSON.parse(JSON.stringify(window.formloomBuilder.body))")


def test_admin_arranges_fields_by_drag_and_drop_and_keyboard(live_server, page: Page, form_draft, screenshots):
    base = live_server
    open_designer(page, base)
    expect(section(page, 0).locator(".fd-section-name")).to_have_text("Basics")
    assert keys_in(page, 0) == ["text", "name", "stage", "amount", "close_date"]
    expect(chip(page, "lost_reason")).to_be_visible()
    expect(chip(page, "name")).to_have_count(0)  # placed fields are not offered again

    # A new section opens with its title selected, ready to type over.
    page.locator("[data-fd-add-section]").click()
    title = section(page, 1).locator('[data-path="$.sections[1].label"] input[data-lang="en"]')
    expect(title).to_be_focused()
    title.fill("Outcome")
    expect(section(page, 1).locator(".fd-section-name")).to_have_text("Outcome")
    expect(section(page, 1).locator(".fd-empty")).to_be_visible()

    # Drag and drop: a field from the palette into the empty section...
    chip(page, "lost_reason").drag_to(section(page, 1).locator(".fd-empty"))
    assert keys_in(page, 1) == ["lost_reason"]
    expect(chip(page, "lost_reason")).to_have_count(0)
    # ...and a placed field into another section, above the field it is dropped on.
    placed(page, "amount").locator(".fd-handle").drag_to(placed(page, "lost_reason"), target_position={"x": 40, "y": 4})
    assert keys_in(page, 0) == ["text", "name", "stage", "close_date"]
    assert keys_in(page, 1) == ["amount", "lost_reason"]

    # The keyboard: "Move up" keeps the focus on the moved field (its "down" button, at the top).
    placed(page, "lost_reason").locator('[data-control="up"]').focus()
    page.keyboard.press("Enter")
    assert keys_in(page, 1) == ["lost_reason", "amount"]
    expect(placed(page, "lost_reason").locator('[data-control="down"]')).to_be_focused()
    # "Move to section" puts the field at the end of the chosen section, and the focus follows it.
    mover = placed(page, "close_date").locator('[data-control="move-to"]')
    expect(mover).to_have_accessible_name("Move Expected close to section")
    mover.focus()
    mover.select_option("1")
    assert keys_in(page, 0) == ["text", "name", "stage"]
    assert keys_in(page, 1) == ["lost_reason", "amount", "close_date"]
    expect(placed(page, "close_date").locator('[data-control="move-to"]')).to_be_focused()

    # The field's own settings: width, help and a condition picked from lists.
    field = placed(page, "lost_reason")
    toggle = field.locator('[data-control="toggle"]')
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    field = placed(page, "lost_reason")
    expect(field.locator('[data-control="toggle"]')).to_have_attribute("aria-expanded", "true")
    field.get_by_label("Width").select_option("half")
    field.get_by_label("Help (English)").fill("Why did we lose?")
    field.locator("[data-add-condition]").click()
    field.get_by_label("Field", exact=True).select_option(label="Stage")
    field.get_by_label("Operator").select_option(label="is")
    field.get_by_label("Value", exact=True).select_option(label="Lost")
    expect(field.locator(".fd-badges")).to_have_text(re.compile("Half width.*Help.*Conditional"))
    unnamed = page.evaluate("""() => Array.from(document.querySelectorAll(
        '[data-form-designer] :is(button, input, select, textarea)')).filter((el) => !(el.getAttribute('aria-label') ||
        el.labels.length || (el.tagName === 'BUTTON' && el.textContent.trim()))).map((el) => el.outerHTML)""")
    assert unnamed == [], "controls without an accessible name"
    wait_saved(page)

    draft = stored_draft(page, base)
    assert draft == quick_form(ARRANGED)
    assert body_now(page) == draft
    assert page.js_errors == []

    page.locator("[data-fd-add-to]").select_option("0")  # the palette then adds to Basics
    section(page, 1).locator('.fd-section-head [data-control="toggle"]').click()  # the section's settings closed
    expect(section(page, 1).locator(".fd-section-settings")).to_have_count(0)
    assert body_now(page) == draft
    page.mouse.move(0, 0)
    page.evaluate("window.scrollTo(0, 0)")  # sticky bars stay at the top of a full-page picture
    whole_page(page, screenshots / "builder-form.png")
    page.set_viewport_size(PHONE)
    expect(placed(page, "lost_reason").locator("[data-fd-width]")).to_be_visible()
    page.evaluate("window.scrollTo(0, 0)")
    whole_page(page, screenshots / "builder-form-phone.png")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the designer is wider than a phone: {width}px"
    page.set_viewport_size(DESKTOP)
    assert page.js_errors == []


def test_published_form_places_the_field_as_designed_for_the_rep(live_server, page: Page, db, admin, form_draft):
    base = live_server
    definitions.save_draft(db, admin, form_draft, "form", FORM, quick_form(copy.deepcopy(ARRANGED)))
    db.commit()
    open_designer(page, base)
    page.locator("[data-publish]").click()
    dialog = page.locator("[data-publish-dialog]")
    expect(dialog).to_be_visible()
    dialog.locator("[data-publish-confirm]").click()
    expect(page.locator("[data-save-state]")).to_have_text("Published as version 1")
    response = page.request.get(f"{base}{API}")
    assert response.json()["published_version"] == 1 and response.json()["draft"] is None
    assert page.js_errors == []

    page.context.clear_cookies()
    log_in(page, base, "rep", "Rita Rep")
    page.goto(f"{base}/apps/pipes/deal/new?form={FORM}")
    outcome = page.locator("fieldset.section").filter(has=page.locator("legend", has_text="Outcome"))
    expect(outcome).to_be_visible()
    expect(page.locator("fieldset.section legend")).to_have_text(["Basics", "Outcome"])
    expect(page.locator("fieldset.section").first.locator(".description")).to_have_text("Fill in the basics.")
    lost = page.locator('[data-field="f_lost_reason"]')
    expect(lost).to_have_class(re.compile(r"\bwidth-half\b"))
    expect(lost.locator("#f_lost_reason-help")).to_have_text("Why did we lose?")
    expect(lost).to_be_hidden()  # the stage starts as "lead"
    page.select_option("#f_stage", "lost")
    expect(lost).to_be_visible()
    expect(page.get_by_label("Lost reason")).to_be_editable()
    page.get_by_label("Lost reason").fill("Price")
    page.select_option("#f_stage", "won")
    expect(lost).to_be_hidden()
    page.select_option("#f_stage", "lost")
    expect(lost).to_be_visible()
    # Half width: it shares its row with the next field on a desktop.
    box, next_box = lost.bounding_box(), page.locator('[data-field="f_amount"]').bounding_box()
    assert next_box["x"] > box["x"] + box["width"] - 1 and abs(next_box["y"] - box["y"]) < 2
    assert page.js_errors == []


def test_problems_show_inline_and_in_the_list(live_server, page: Page, form_draft):
    base = live_server
    open_designer(page, base)
    expect(page.locator("[data-no-problems]")).to_be_visible()

    # Taking a required field off the form: the server says so, above the sections and in the list,
    # and the palette offers it again, marked as required.
    placed(page, "name").locator('[data-control="remove"]').click()
    wait_saved(page, problems=1)
    message = "Field 'name' is required by entity 'deal' but is not on this form; add it to a section."
    expect(page.locator("[data-problems] li")).to_have_count(1)
    expect(page.locator('[data-problems] li[data-problem-path="$.sections"]')).to_contain_text(message)
    expect(page.locator('.fd-sections-head[data-path="$.sections"] .problem-note')).to_have_text(message)
    expect(chip(page, "name")).to_have_class(re.compile(r"\bfd-chip-required\b"))
    expect(chip(page, "name")).to_contain_text("Required: place it on the form")
    # The focus moved to the next field's remove button, for removing several in a row.
    expect(placed(page, "stage").locator('[data-control="remove"]')).to_be_focused()

    # An empty section: its problem shows on the section itself.
    page.locator("[data-fd-add-section]").click()
    wait_saved(page, problems=2)
    empty = section(page, 1)
    expect(empty).to_have_class(re.compile(r"\bhas-problem\b"))
    expect(empty.locator(":scope > .problem-note")).to_have_text("This section has no fields; add one or remove the section.")
    expect(page.locator('[data-problems] li[data-problem-path="$.sections[1].fields"]')).to_be_visible()
    # The list's link leads to the place.
    page.locator('[data-problems] li[data-problem-path="$.sections[1].fields"] button').click()
    expect(empty.locator("input, select, textarea, button").first).to_be_focused()

    # Fixing both: "Add" puts the field in the chosen section; the problems go away.
    chip(page, "name").get_by_role("button", name="Add Deal name to the form").click()
    wait_saved(page)
    assert keys_in(page, 1) == ["name"]
    expect(page.locator("[data-problems] li")).to_have_count(0)
    expect(page.locator(".problem-note")).to_have_count(0)
    assert page.js_errors == []


def test_json_mode_and_back_leaves_the_body_as_it_was(live_server, page: Page, db, admin, form_draft):
    base = live_server
    # Shapes the designer must keep as they are: a placement object without settings, a text in two
    # languages, a section without a title, a condition it can only show as JSON.
    odd = quick_form([
        {"label": {"en": "Basics", "zh-CN": "基本信息"}, "help": "Start here.",
         "visible_when": {"any": [{"field": "amount", "op": "gt", "value": 100},
                                  {"field": "close_date", "op": "lt", "value": {"$today": 30}}]},
         "fields": [{"text": {"en": "Fill in the basics.", "zh-CN": "填写基本信息。"}}, "name",
                    {"field": "amount"}, {"field": "stage", "width": "third"}]},
        {"fields": ["close_date", {"field": "discount", "help": {"zh-CN": "百分比"}}]},
    ])
    definitions.save_draft(db, admin, form_draft, "form", FORM, odd)
    db.commit()
    open_designer(page, base)
    # Opening everything renders every control; none of it may touch the body.
    section(page, 0).locator('[data-control="toggle"]').first.click()
    for key in ("amount", "stage", "discount"):
        placed(page, key).locator('[data-control="toggle"]').click()
    section(page, 0).locator(".fd-item-text [data-control='toggle']").click()
    expect(section(page, 0).locator(".fd-section-settings .condition-builder")).to_be_visible()
    expect(placed(page, "stage").get_by_label("Width")).to_have_value("third")
    expect(placed(page, "discount").get_by_label("Help (中文)")).to_have_value("百分比")
    expect(section(page, 1).locator(".fd-section-name")).to_have_text("Section 2")
    before = body_now(page)
    assert before == odd

    page.locator('[data-mode="json"]').click()
    text = page.locator("[data-json-text]")
    expect(text).to_be_visible()
    assert json.loads(text.input_value()) == odd
    page.locator('[data-mode="visual"]').click()
    expect(page.locator("[data-form-designer]")).to_be_visible()
    assert body_now(page) == before
    expect(placed(page, "amount").locator('[data-control="toggle"]')).to_have_attribute("aria-expanded", "true")

    # Clearing the only setting of a placement makes it a plain key again; a new one makes it an object.
    placed(page, "stage").get_by_label("Width").select_option("")
    placed(page, "name").locator('[data-control="toggle"]').click()
    placed(page, "name").get_by_label("Width").select_option("full")
    wait_saved(page)
    draft = stored_draft(page, base)
    assert draft["sections"][0]["fields"][1:] == [{"field": "name", "width": "full"}, {"field": "amount"}, "stage"]
    assert draft["sections"][0]["visible_when"] == odd["sections"][0]["visible_when"]
    assert draft["sections"][1] == odd["sections"][1]
    assert page.js_errors == []


def test_sections_and_text_blocks(live_server, page: Page, form_draft):
    base = live_server
    open_designer(page, base)
    # Within a section, a dragged field shows where it will land (Playwright's drag sends no
    # "dragover" until the drop, so the marks are checked with events of our own)...
    events = page.evaluate_handle("() => new DataTransfer()")
    placed(page, "close_date").locator(".fd-head").dispatch_event("dragstart", {"dataTransfer": events})
    expect(page.locator("[data-form-designer]")).to_have_class(re.compile(r"\bfd-dragging\b"))
    box = placed(page, "name").bounding_box()
    placed(page, "name").dispatch_event("dragover", {"dataTransfer": events, "clientY": box["y"] + 3})
    expect(placed(page, "name")).to_have_class(re.compile(r"\bfd-drop-before\b"))
    placed(page, "close_date").locator(".fd-head").dispatch_event("dragend", {"dataTransfer": events})
    expect(page.locator(".fd-drop-before, .fd-dragging")).to_have_count(0)
    # ...then lands there.
    placed(page, "close_date").locator(".fd-handle").drag_to(placed(page, "name"), target_position={"x": 60, "y": 3})
    assert keys_in(page, 0) == ["text", "close_date", "name", "stage", "amount"]
    # Dropped below the last field, it goes to the end.
    placed(page, "close_date").locator(".fd-handle").drag_to(section(page, 0).locator(".fd-section-foot"))
    assert keys_in(page, 0) == ["text", "name", "stage", "amount", "close_date"]

    page.locator("[data-fd-add-section]").click()
    section(page, 1).locator('[data-path="$.sections[1].label"] input[data-lang="en"]').fill("Outcome")
    section(page, 1).get_by_label("Help (English)").fill("Only for lost deals.")
    # A section condition, through the pickers.
    section(page, 1).locator("[data-add-condition]").click()
    section(page, 1).get_by_label("Field", exact=True).select_option(label="Stage")
    section(page, 1).get_by_label("Value", exact=True).select_option(label="Lost")
    chip(page, "lost_reason").get_by_role("button", name="Add Lost reason to the form").click()
    expect(chip(page, "owner").get_by_role("button", name="Add Owner to the form")).to_be_focused()  # the next one

    # A text block: added, written, moved up, removed and brought back.
    section(page, 1).locator("[data-fd-add-text]").click()
    text = section(page, 1).get_by_label("Text (English)")
    expect(text).to_be_focused()
    text.fill("Tell us what happened.")
    block = section(page, 1).locator(".fd-item-text")
    expect(block.locator(".fd-text-preview")).to_have_text("Tell us what happened.")
    block.locator('[data-control="up"]').click()
    assert keys_in(page, 1) == ["text", "lost_reason"]
    section(page, 1).locator(".fd-item-text").get_by_role("button", name="Remove text block 1 from the form").click()
    assert keys_in(page, 1) == ["lost_reason"]
    page.locator("[data-fd-undo]").click()
    assert keys_in(page, 1) == ["text", "lost_reason"]

    # Sections reorder by the keyboard and by drag and drop.
    section(page, 1).locator('.fd-section-head [data-control="up"]').click()
    expect(section(page, 0).locator(".fd-section-name")).to_have_text("Outcome")
    expect(section(page, 0).locator('.fd-section-head [data-control="down"]')).to_be_focused()
    section(page, 0).locator('.fd-section-head [data-control="toggle"]').click()  # its settings closed
    expect(section(page, 0).locator(".fd-section-settings")).to_have_count(0)
    # Both heads in view, below the sticky bar: drag_to presses, scrolls to the target and releases
    # without a move, so no drag would start if it had to scroll.
    section(page, 0).evaluate("(el) => { el.scrollIntoView({ block: 'start' }); window.scrollBy(0, -140); }")
    section(page, 1).locator(".fd-section-head .fd-handle").drag_to(section(page, 0).locator(".fd-section-name"))
    expect(section(page, 0).locator(".fd-section-name")).to_have_text("Basics")
    wait_saved(page)
    draft = stored_draft(page, base)
    assert draft["sections"] == [
        quick_form()["sections"][0],
        {"label": "Outcome", "help": "Only for lost deals.", "visible_when": LOST_WHEN,
         "fields": [{"text": "Tell us what happened."}, "lost_reason"]},
    ]

    # Removing a section gives its fields back to the palette.
    section(page, 1).get_by_role("button", name="Remove section Outcome").click()
    expect(chip(page, "lost_reason")).to_be_visible()
    expect(page.locator(".fd-section")).to_have_count(1)
    wait_saved(page)
    assert stored_draft(page, base)["sections"] == quick_form()["sections"]
    assert page.js_errors == []


ODD_BODIES = [
    {},
    None,
    [],
    "form",
    {"entity": "deal", "sections": "not a list"},
    {"entity": "nope", "label": 5, "description": ["x"], "sections": [
        None, 3, "s", [], {"fields": "x"}, {"label": {"fr": "Titre"}, "help": 3, "visible_when": [1], "fields": [
            None, 5, [], {}, {"field": 3}, {"field": "zzz"}, {"text": None}, {"text": 5, "extra": 1},
            {"field": "name", "width": "huge", "help": 7, "visible_when": "odd", "extra": True}]}]},
    {"entity": "deal", "sections": [{"fields": [
        "name", "name", {"field": "stage", "visible_when": {"not": {"field": "amount", "op": "empty"}}},
        {"field": "amount", "visible_when": {"all": []}}, {"text": {"zh-CN": "只有中文"}}]}]},
]


def test_rendering_odd_bodies_changes_nothing(live_server, page: Page, form_draft):
    """Whatever the draft holds, the designer shows it without throwing and without touching it,
    with every item and section open (so every control is built)."""
    open_designer(page, live_server)
    for body in ODD_BODIES:
        after = page.evaluate("""(body) => {
            const ed = window.formloomBuilder;
            ed.body = body;
            ed.rerender();
            for (const toggle of document.querySelectorAll('[data-form-designer] [data-control="toggle"][aria-expanded="false"]')) {
                const path = toggle.closest("[data-path]").dataset.path;
                toggle.click();
                const again = document.querySelector(`[data-path="${path}"] [data-control="toggle"]`);
                if (again && again.getAttribute("aria-expanded") !== "true") throw new Error("not opened: " + path);
            }
            return JSON.stringify(ed.body);
        }""", body)
        assert json.loads(after) == body

    # With nowhere to put it, "Add" makes a section for the field.
    for sections, expected in ((None, [{"fields": ["name"]}]), ([None], [None, {"fields": ["name"]}])):
        body = {"formloom": 1, "kind": "form", "key": FORM, "label": "Quick", "entity": "deal"}
        if sections is not None:
            body["sections"] = sections
        page.evaluate("(body) => { window.formloomBuilder.body = body; window.formloomBuilder.rerender(); }", body)
        chip(page, "name").get_by_role("button", name="Add Deal name to the form").click()
        assert body_now(page)["sections"] == expected
    assert page.js_errors == []

"""The access editor of the builder in a real browser.

A business admin sets up access (the built-in roles written out), adds a custom role with its key
and names in two languages, lets it read only the deals in one stage and hides a field from it,
and publishes; a member in that role then sees only those deals, without the field. The matrix
works with the keyboard, every control has a name, the editor fits a 375 px screen (the matrix
scrolls inside its own box), problems show where they are, and rendering never changes the body.

Runs on every backend the ``app`` fixture offers (SQLite, and PostgreSQL when
FORMLOOM_TEST_DATABASE_URL is set). Screenshots for the docs land in docs/screenshots/.
"""
from __future__ import annotations

import re
import time

import pytest
from hypothesis import strategies as st

from formloom.builder import definitions
from formloom.builder.views import access_starter
from formloom.platform import auth
from formloom.platform.auth import Cause
from formloom.runtime import records
from tests.browser.builder_helpers import OPEN_EVERY_STAGE_AND_MOVE, assert_round_trips_unchanged
from tests.browser.conftest import DESKTOP, PHONE, Page, expect, log_in, whole_page
from tests.factories import make_pipeline_app, make_user

pytestmark = pytest.mark.browser

ADMIN_AREA = "/apps/pipes/admin/"
EDITOR = "/apps/pipes/admin/access/access/"
API = "/api/v1/apps/pipes/definitions/access/access"


@pytest.fixture
def pipes(db, admin):
    """The pipeline app; Emma holds the role 'east', which no access definition names yet; three deals."""
    app = make_pipeline_app(db, admin)
    emma = make_user(db, "emma", display_name="Emma East")
    auth.grant_app(db, emma, app, "east")
    cause = Cause.for_user(admin)
    for name, stage, amount in (("Harbour expansion", "qualified", 98765), ("Quiet renewal", "lead", 4321),
                                ("Lost tender", "lost", 1000)):
        records.create(db, admin, cause, app, "deal", {"name": name, "stage": stage, "amount": amount,
                                                       "lost_reason": "Price" if stage == "lost" else None})
    db.commit()
    return app


@pytest.fixture
def builder(live_server, page: Page, pipes) -> Page:
    log_in(page, live_server, "admin", "Ada Admin")
    page.base = live_server
    return page


def draft(page: Page) -> dict:
    response = page.request.get(f"{page.base}{API}")
    assert response.ok, response.text()
    return response.json()["draft"]


def wait_for_draft(page: Page, expected: dict) -> dict:
    """The saved draft once it equals ``expected`` (autosave is debounced), or the last one seen."""
    expect(page.locator("[data-save-state]")).to_have_text(re.compile(r"^Draft saved"))
    deadline = time.monotonic() + 10
    while True:
        saved = draft(page)
        if saved == expected or time.monotonic() > deadline:
            return saved
        page.wait_for_timeout(200)


def set_up(page: Page) -> None:
    page.goto(f"{page.base}{ADMIN_AREA}")
    page.get_by_role("button", name="Set up access").click()
    expect(page.locator(".ac-editor")).to_be_visible()


def role_item(page: Page, key: str):
    return page.locator(f'.ac-roles > li[data-role="{key}"]')


def test_a_custom_role_reads_only_its_deals_and_never_sees_the_hidden_field(builder: Page, browser, screenshots):
    page = builder
    set_up(page)
    assert page.url.endswith(EDITOR)
    expect(page.locator(".ac-roles > li .pr-item-title")).to_have_text(["App admin", "Rep", "Manager", "Viewer"])
    expect(role_item(page, "admin")).to_contain_text("Everything")
    expect(role_item(page, "admin").locator("button, input, select")).to_have_count(0)
    expect(role_item(page, "rep").locator(".ac-badge")).to_have_text(["built-in"])
    # Emma's role is named nowhere yet: the editor says so.
    expect(page.locator(".ac-unlisted")).to_contain_text("1 member of the app has the role east")

    # A custom role: its names in both languages and the key members hold.
    page.get_by_label("Name (English)").fill("East region")
    page.get_by_label("Name (中文)").fill("华东区")
    expect(page.locator("[data-new-role-key]")).to_have_value("east_region")
    page.locator("[data-new-role-key]").fill("east")
    page.get_by_role("button", name="+ Add role", exact=True).click()
    east = role_item(page, "east")
    expect(east.get_by_label("Role name (English)")).to_be_focused()
    expect(east.get_by_label("Role name (中文)")).to_have_value("华东区")
    expect(page.locator(".ac-unlisted .pr-notice")).to_have_count(0)
    # A new role may do nothing: every cell says so.
    expect(east.get_by_label("Deal: read", exact=True)).to_have_value("")
    expect(east.get_by_label("All other entities: read", exact=True)).to_have_value("none")

    # Deals: read all, only when the stage is Qualified; companies: read all.
    east.get_by_label("Deal: read", exact=True).select_option("all")
    expect(east.get_by_label("Deal: read", exact=True)).to_be_focused()
    east.get_by_role("button", name="Only read Deal records when a condition holds").click()
    condition = east.locator('.condition-builder[data-path="$.roles[3].entities.deal.read.when"]')
    expect(condition.locator("[data-cond-field] option")).to_have_text(["Deal name", "Customer", "Stage", "Lost reason",
                                                                         "Owner"])
    condition.locator("[data-cond-field]").select_option("stage")
    expect(condition.locator("[data-cond-op] option")).to_have_count(6)  # only tests that mean the same in SQL
    condition.locator("[data-cond-value]").select_option("qualified")
    east.get_by_label("Company: read", exact=True).select_option("all")

    # Fields: the amount of a deal is hidden; its name (the title) cannot be.
    east.get_by_label("Fields of").select_option("deal")
    name_rule = east.get_by_label("Deal name: East region finds it")
    expect(name_rule.locator('option[value="hidden"]')).to_be_disabled()
    expect(east.get_by_text("Names the record everywhere, so it is never hidden.")).to_be_visible()
    east.get_by_label("Amount: East region finds it").select_option("hidden")
    expect(east.locator(".pr-meta")).to_have_text("other entities: read none · 2 entities set apart · 1 hidden field")
    expect(east.locator(".ac-warning")).to_contain_text("This includes changing access")

    expected = access_starter()
    expected["roles"].append({
        "key": "east", "label": {"en": "East region", "zh-CN": "华东区"},
        "entities": {"deal": {"read": {"scope": "all", "when": {"field": "stage", "op": "eq", "value": "qualified"}}},
                     "company": {"read": "all"}},
        "fields": {"deal": {"amount": "hidden"}}})
    assert wait_for_draft(page, expected) == expected
    expect(page.locator("[data-no-problems]")).to_be_visible()
    whole_page(page, screenshots / "builder-access.png")
    page.set_viewport_size(PHONE)
    east.locator(".pr-sub h3").first.evaluate("(el) => window.scrollTo(0, el.getBoundingClientRect().top + window.scrollY - 8)")
    expect(east.locator(".ac-matrix tbody th").first).to_be_visible()
    page.wait_for_timeout(300)  # sticky cells are painted after the scroll settles
    page.screenshot(path=str(screenshots / "builder-access-phone.png"))
    page.set_viewport_size(DESKTOP)

    page.get_by_role("button", name="Publish", exact=True).click()
    dialog = page.locator("[data-publish-dialog]")
    expect(dialog.locator("[data-publish-changes] li")).to_have_text(['Access definition "Access" (access) created.'])
    dialog.locator("[data-publish-confirm]").click()
    expect(page.locator("[data-save-state]")).to_have_text("Published as version 1")
    assert page.js_errors == []

    # Emma, in the role: the qualified deal only, and no amount on it.
    other = browser.new_context(viewport=DESKTOP, locale="en-US")
    try:
        emma = other.new_page()
        log_in(emma, page.base, "emma", "Emma East")
        emma.goto(f"{page.base}/apps/pipes/deal/")
        listed = emma.locator("main")
        expect(listed).to_contain_text("Harbour expansion")
        expect(listed).not_to_contain_text("Quiet renewal")
        expect(listed).not_to_contain_text("Lost tender")
        emma.get_by_role("link", name="Harbour expansion").first.click()
        expect(emma.locator("h1")).to_contain_text("Harbour expansion")
        shown = emma.locator("main").inner_text()
        assert "Amount" not in shown and "98,765" not in shown and "98765" not in shown
        assert "Stage" in shown  # the record page is there, only without the hidden field
    finally:
        other.close()


def test_the_matrix_works_with_the_keyboard_and_follows_the_row_for_other_entities(builder: Page):
    page = builder
    set_up(page)
    rep = role_item(page, "rep")
    rep.get_by_role("button", name="Edit role Rep").press("Enter")
    read = rep.get_by_label("Deal: read", exact=True)
    expect(read).to_be_visible()
    expect(read.locator("option").first).to_have_text("as * (all)")
    # The row of every other entity: reps read their own records there; a deal's row follows it.
    rep.get_by_label("All other entities: read", exact=True).focus()
    page.keyboard.press("ArrowUp")  # all -> team
    expect(rep.get_by_label("All other entities: read", exact=True)).to_have_value("team")
    expect(rep.get_by_label("Deal: read", exact=True).locator("option").first).to_have_text("as * (team)")
    # A checkbox of a row that names nothing shows the other entities' value, dimmed, and says so.
    create = rep.get_by_label("Deal: create (as for all other entities)")
    expect(create).to_be_checked()
    create.focus()
    page.keyboard.press("Space")
    expect(rep.get_by_label("Deal: create", exact=True)).not_to_be_checked()
    expect(rep.get_by_label("Deal: create", exact=True)).to_be_focused()
    rep.get_by_label("Deal: delete", exact=True).select_option("none")
    expected = access_starter()
    expected["roles"][0]["entities"]["*"]["read"] = "team"
    expected["roles"][0]["entities"]["deal"] = {"create": False, "delete": False}
    assert wait_for_draft(page, expected) == expected
    # Back to "as *": the row names nothing again and leaves the body as it was.
    rep.get_by_label("Deal: delete", exact=True).select_option("")
    expected["roles"][0]["entities"]["deal"] = {"create": False}
    assert wait_for_draft(page, expected) == expected

    # Reps change only the deals whose owner they are: "the person asking" without typing JSON.
    rep.get_by_label("Deal: change", exact=True).select_option("all")
    rep.get_by_role("button", name="Only change Deal records when a condition holds").click()
    when = rep.locator('.condition-builder[data-path="$.roles[0].entities.deal.update.when"]')
    expect(when.locator("[data-cond-field]")).to_be_focused()
    rep.get_by_role("button", name="+ Owner is the person asking").click()
    expect(rep.get_by_role("button", name="+ Owner is the person asking")).to_be_focused()
    when.get_by_role("button", name="Remove this test").first.click()
    expected["roles"][0]["entities"]["deal"]["update"] = {
        "scope": "all", "when": {"all": [{"field": "owner", "op": "eq", "value": {"$user": True}}]}}
    assert wait_for_draft(page, expected) == expected
    expect(page.locator("[data-no-problems]")).to_be_visible()
    assert page.js_errors == []


def test_every_control_has_a_name_and_the_phone_layout_scrolls_only_the_matrix(builder: Page, db, admin, pipes):
    body = access_starter()
    body["roles"][0]["entities"]["deal"] = {"read": {"scope": "own", "when": {"field": "stage", "op": "eq", "value": "won"}}}
    definitions.save_draft(db, admin, pipes, "access", "access", body)
    db.commit()
    page = builder
    page.set_viewport_size(PHONE)
    page.goto(f"{page.base}{EDITOR}")
    page.evaluate(OPEN_EVERY_STAGE_AND_MOVE)
    expect(page.locator(".ac-matrix")).to_have_count(3)
    unnamed = page.evaluate("""() => [...document.querySelectorAll('.ac-editor input, .ac-editor select, .ac-editor button')]
      .filter((el) => {
        const label = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby') ||
          (el.id && document.querySelector(`label[for="${el.id}"]`)) || el.closest('label');
        return !(label || (el.tagName === 'BUTTON' && el.textContent.trim()));
      }).map((el) => el.outerHTML.slice(0, 120))""")
    assert unnamed == []
    # Nothing but the matrices' own boxes is wider than the screen; they scroll sideways.
    overflow = page.evaluate("""() => [...document.querySelectorAll('.ac-editor *')]
      .filter((el) => !el.closest('.ac-scroll') && el.offsetParent !== null &&
                      el.getBoundingClientRect().right > window.innerWidth + 1)
      .map((el) => el.tagName + '.' + el.className).slice(0, 5)""")
    assert overflow == []
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    scroller = page.locator(".ac-scroll").first
    assert scroller.evaluate("(el) => el.scrollWidth > el.clientWidth")
    scroller.focus()
    page.keyboard.press("ArrowRight")
    # Keyboard scrolling is animated: wait for it rather than read the offset at once.
    page.wait_for_function("() => document.querySelector('.ac-scroll').scrollLeft > 0", timeout=5000)
    assert page.js_errors == []


def test_problems_show_at_their_cell_and_the_role_opens_from_the_list(builder: Page, db, admin, pipes):
    body = access_starter()
    body["roles"].append({"key": "east", "entities": {
        "deal": {"read": {"scope": "all", "when": {"field": "amount", "op": "gt", "value": 5}}}},
        "fields": {"deal": {"ghost": "hidden"}}})
    definitions.save_draft(db, admin, pipes, "access", "access", body)
    db.commit()
    page = builder
    page.goto(f"{page.base}{EDITOR}")
    expect(page.locator("[data-problem-count]")).to_have_text("3")
    east = role_item(page, "east")
    expect(east.locator(".pr-panel")).to_be_hidden()
    expect(east.locator(".problem-note")).to_have_count(3)  # on the closed role, all three
    page.locator('[data-problem-path="$.roles[3].entities.deal.read.when.op"] button').click()
    expect(east.locator(".pr-panel")).to_be_visible()
    when = east.locator('.condition-builder[data-path="$.roles[3].entities.deal.read.when"]')
    expect(when.locator(".problem-note").first).to_contain_text("'gt' cannot be used to choose which records")
    # The unknown field is listed so its rule can be removed; setting it editable does that.
    rule = east.locator('[data-path="$.roles[3].fields.deal.ghost"]')
    expect(rule.locator(".problem-note")).to_have_text("Entity 'deal' has no field 'ghost'.")
    rule.locator("select").select_option("editable")
    when.get_by_role("button", name="Remove this test").click()
    expected = access_starter()
    expected["roles"].append({"key": "east", "entities": {"deal": {"read": {"scope": "all"}}}})
    assert wait_for_draft(page, expected) == expected
    expect(page.locator("[data-no-problems]")).to_be_visible()
    assert page.js_errors == []


def test_removing_a_role_can_be_undone_and_a_built_in_one_comes_back_with_its_defaults(builder: Page):
    page = builder
    set_up(page)
    page.get_by_role("button", name="Remove role Viewer").click()
    notice = page.locator('.pr-notice[role="status"]')
    expect(notice).to_contain_text("Role “Viewer” removed. Its members keep the built-in defaults of viewer.")
    expect(notice.get_by_role("button", name="Undo")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".ac-roles > li .pr-item-title")).to_have_text(["App admin", "Rep", "Manager", "Viewer"])
    page.get_by_role("button", name="Remove role Manager").click()
    page.get_by_role("button", name="+ Manager").click()
    expected = access_starter()
    expected["roles"].append(expected["roles"].pop(1))
    assert wait_for_draft(page, expected) == expected
    assert page.js_errors == []


# --- any body, however odd, comes back as it went in -----------------------------------------------

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6)
_json = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | _text,
                     lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.sampled_from(["a", "scope", "x"]),
                                                                                  inner, max_size=2), max_leaves=4)
_label = st.one_of(_text, st.fixed_dictionaries({}, optional={"en": _text, "zh-CN": _text}))
_scope = st.sampled_from([True, False, "own", "team", "all", "odd"])
_leaf = st.fixed_dictionaries({"field": st.sampled_from(["stage", "owner", "amount", "ghost"]),
                               "op": st.sampled_from(["eq", "in", "contains", "gt"])}, optional={"value": _json})
_grant = st.one_of(_scope, st.fixed_dictionaries({"scope": _scope}, optional={"when": _leaf | _json}), _json)
_entry = st.fixed_dictionaries({}, optional={a: _grant for a in ("create", "read", "update", "delete", "export", "import")})
_role = st.one_of(st.fixed_dictionaries({"key": st.sampled_from(["rep", "manager", "east", "admin", ""])}, optional={
    "label": _label, "description": _label,
    "entities": st.dictionaries(st.sampled_from(["*", "deal", "company", "ghost"]), _entry | _json, max_size=3) | _json,
    "fields": st.dictionaries(st.sampled_from(["deal", "company", "ghost"]),
                              st.dictionaries(st.sampled_from(["name", "amount", "ghost"]),
                                              st.sampled_from(["hidden", "read_only", "editable", "odd"]), max_size=2)
                              | _json, max_size=2) | _json,
    "build": st.booleans(), "members": st.booleans() | _json}), _json)
_access = st.fixed_dictionaries({"formloom": st.just(1), "kind": st.just("access"), "key": st.just("access"),
                                 "roles": st.lists(_role, max_size=3) | _json},
                                optional={"label": _label, "unknown": _json})


def test_any_body_goes_through_the_visual_editor_unchanged(builder: Page):
    page = builder
    set_up(page)
    before = draft(page)
    page.locator('[data-mode="json"]').click()
    page.locator('[data-mode="visual"]').click()
    page.evaluate(OPEN_EVERY_STAGE_AND_MOVE)
    assert page.evaluate("window.formloomBuilder.body") == before
    assert draft(page) == before
    assert_round_trips_unchanged(page, _access, OPEN_EVERY_STAGE_AND_MOVE)
    assert page.js_errors == []

"""The builder in a real browser: an admin who never opens JSON mode builds an app, an entity of
every common kind of field and a form with a show-when rule, publishes, and a rep fills it; JSON
mode points at problems while the admin types; switching modes never loses anything.

Screenshots for the docs land in docs/screenshots/builder-*.png.
"""
from __future__ import annotations

import json
import re

import pytest
from hypothesis import strategies as st
from sqlalchemy import select

from formloom.builder import definitions
from formloom.platform import auth
from formloom.platform.models import App, Record
from tests.browser.builder_helpers import OPEN_EVERY_FIELD, assert_round_trips_unchanged
from tests.browser.conftest import DESKTOP, PHONE, Page, expect, log_in, whole_page
from tests.factories import make_pipeline_app

pytestmark = pytest.mark.browser


def saved(page: Page) -> None:
    expect(page.locator("[data-save-state]")).to_have_text(re.compile(r"^Draft saved"), timeout=10_000)


def add_field(page: Page, label: str, type_label: str) -> None:
    page.locator("[data-new-field-label]").last.fill(label)
    page.locator("[data-new-field-type]").last.select_option(label=type_label)
    page.locator("[data-add-field]").last.click()
    expect(page.locator("[data-new-field-label]").last).to_have_value("")  # drawn again with the new field
    saved(page)


def card(page: Page, key: str):
    return page.locator(f"[data-field-card='{key}']")


def publish(page: Page, version: int) -> None:
    page.get_by_role("button", name="Publish", exact=True).click()
    dialog = page.locator("[data-publish-dialog]")
    expect(dialog).to_be_visible()
    dialog.locator("[data-publish-confirm]").click()
    expect(page.locator("[data-save-state]")).to_have_text(f"Published as version {version}")


def test_an_admin_builds_an_app_without_json_and_a_rep_fills_its_form(live_server, page, context, db, admin, rep,
                                                                        screenshots):
    base = live_server
    log_in(page, base, "admin", "Ada Admin")
    page.goto(f"{base}/")
    page.get_by_role("link", name="+ New app").click()
    page.fill("#label_en", "Field visits")
    page.fill("#label_zh", "外勤拜访")
    expect(page.locator("#key")).to_have_value("field_visits")
    page.screenshot(path=str(screenshots / "builder-new-app.png"))
    page.get_by_role("button", name="Create app").click()
    expect(page.locator("h1")).to_have_text("Build Field visits")

    # A client entity to relate visits to: the starter draft, published as it is.
    page.get_by_role("link", name="+ New entity").click()
    page.fill("#label_en", "Client")
    expect(page.locator("#key")).to_have_value("client")
    page.get_by_role("button", name="Create draft").click()
    publish(page, 1)

    page.goto(f"{base}/apps/field_visits/admin/entity/new")
    page.fill("#label_zh", "拜访")
    page.fill("#label_en", "Visit")
    page.get_by_role("button", name="Create draft").click()
    expect(page.locator(".builder-bar h1")).to_contain_text("Visit")

    add_field(page, "Visit date", "Date")
    add_field(page, "Budget", "Currency")
    add_field(page, "Outcome", "Single choice")
    outcome = card(page, "outcome")
    outcome.locator("[data-add-option]").click()
    saved(page)
    rows = outcome.locator(".b-option")
    expect(rows).to_have_count(3)
    for n, (en, zh) in enumerate([("Promising", "有希望"), ("Neutral", "一般"), ("Lost", "丢失")]):
        rows.nth(n).get_by_label(re.compile(r"\(English\)$")).fill(en)
        rows.nth(n).get_by_label(re.compile(r"\(中文\)$")).fill(zh)
    rows.nth(0).get_by_label("Colour for choice 1").check()
    rows.nth(0).get_by_label("Colour of choice 1").fill("#2e7d32")
    rows.nth(2).get_by_label("Colour for choice 3").check()
    rows.nth(2).get_by_label("Colour of choice 3").fill("#c62828")
    saved(page)
    whole_page(page, screenshots / "builder-entity-choices.png")
    outcome.locator("[data-edit-field]").click()

    add_field(page, "Client", "Related record")
    expect(card(page, "client").locator("[data-field-target]")).to_have_value("client")
    card(page, "client").locator("[data-edit-field]").click()
    add_field(page, "Items", "Sub-table")
    columns = card(page, "items").locator(".b-columns")
    expect(columns.locator(".b-field")).to_have_count(2)  # a new sub-table starts with two sample columns
    for _ in range(2):
        card(page, "items").locator(".b-columns .b-field").first.get_by_role(
            "button", name=re.compile("^Remove field")).click()
    expect(columns.locator(".b-field")).to_have_count(0)
    columns.locator("[data-new-field-label]").fill("Product")
    columns.locator("[data-new-field-type]").select_option(label="Text")
    columns.locator("[data-add-field]").click()
    expect(columns.locator("[data-new-field-label]")).to_have_value("")
    saved(page)
    columns = card(page, "items").locator(".b-columns")
    columns.locator("[data-new-field-label]").fill("Qty")
    columns.locator("[data-new-field-type]").select_option(label="Whole number")
    columns.locator("[data-add-field]").click()
    expect(columns.locator("[data-new-field-label]")).to_have_value("")
    saved(page)
    card(page, "items").locator("[data-edit-field='items']").click()
    add_field(page, "Follow-up needed", "Yes / no")
    card(page, "follow_up_needed").locator("[data-edit-field]").click()
    add_field(page, "Follow-up plan", "Multi-line text")
    plan = card(page, "follow_up_plan")
    plan.get_by_role("checkbox", name="Required").check()
    plan.locator(".condition-builder").first.locator("[data-add-condition]").click()
    condition = plan.locator(".condition-builder").first
    condition.get_by_label("Field", exact=True).select_option("follow_up_needed")
    condition.get_by_label("Operator").select_option("eq")
    condition.get_by_label("Value").select_option("true")
    saved(page)
    whole_page(page, screenshots / "builder-entity.png")
    plan.locator("[data-edit-field]").click()
    add_field(page, "Satisfaction", "Rating")
    assert page.js_errors == []

    body = page.evaluate("window.formloomBuilder.body")
    fields = {f["key"]: f for f in body["fields"]}
    assert list(fields) == ["name", "visit_date", "budget", "outcome", "client", "items", "follow_up_needed",
                            "follow_up_plan", "satisfaction"]
    assert fields["outcome"]["options"] == [
        {"value": "promising", "label": {"en": "Promising", "zh-CN": "有希望"}, "color": "#2e7d32"},
        {"value": "neutral", "label": {"en": "Neutral", "zh-CN": "一般"}},
        {"value": "lost", "label": {"en": "Lost", "zh-CN": "丢失"}, "color": "#c62828"}]
    assert fields["client"]["target"] == "client"
    assert [(c["key"], c["type"]) for c in fields["items"]["fields"]] == [("product", "text"), ("qty", "integer")]
    assert fields["follow_up_plan"]["visible_when"] == {"field": "follow_up_needed", "op": "eq", "value": True}
    assert fields["follow_up_plan"]["required"] is True

    # Preview at phone width, then publish.
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("button", name="Phone").click()
    frame = page.frame_locator("[data-preview-frame]")
    expect(frame.locator("h1")).to_contain_text("Visit")
    expect(frame.locator("[data-field=f_follow_up_plan]")).to_be_hidden()
    frame.locator("#f_follow_up_needed").check()
    expect(frame.locator("[data-field=f_follow_up_plan]")).to_be_visible()
    whole_page(page, screenshots / "builder-preview.png")
    publish(page, 1)

    # A form of the visit with its own show-when rule: the budget only for promising visits.
    page.goto(f"{base}/apps/field_visits/admin/form/new?entity=visit")
    page.fill("#label_en", "Quick visit")
    page.get_by_role("button", name="Create draft").click()
    expect(page.locator(".builder-bar h1")).to_contain_text("Quick visit")
    page.wait_for_function("() => window.formloomBuilder !== undefined")
    form_key = page.evaluate("window.formloomBuilder.data.key")
    form_body = page.evaluate("window.formloomBuilder.body")
    section = form_body["sections"][0]
    index = section["fields"].index("budget")
    placed = page.locator(f"li[data-path='$.sections[0].fields[{index}]']")
    placed.locator("[data-control=toggle]").click()
    placed.locator("[data-fd-width]").select_option("half")
    placed.locator("[data-add-condition]").first.click()
    rule = placed.locator(".condition-builder").first
    rule.get_by_label("Field", exact=True).select_option("outcome")
    rule.get_by_label("Value").select_option("promising")
    saved(page)
    whole_page(page, screenshots / "builder-form-rule.png")
    publish(page, 1)
    assert page.js_errors == []
    db.rollback()
    app = db.scalar(select(App).where(App.key == "field_visits"))
    item = definitions.current_body(db, definitions.get(db, app, "form", form_key))["sections"][0]["fields"][index]
    assert item == {"field": "budget", "width": "half",
                    "visible_when": {"field": "outcome", "op": "eq", "value": "promising"}}

    # The rep fills the generated form.
    auth.grant_app(db, rep, app)
    db.commit()
    rep_page = context.browser.new_context(viewport=DESKTOP, locale="en-US").new_page()
    rep_page.js_errors = []
    rep_page.on("pageerror", lambda error: rep_page.js_errors.append(str(error)))
    log_in(rep_page, base, "rep", "Rita Rep")
    rep_page.goto(f"{base}/apps/field_visits/client/new")
    rep_page.fill("#f_name", "Acme Trading")
    rep_page.get_by_role("button", name="Save").click()
    expect(rep_page.locator("h1")).to_contain_text("Acme Trading")
    rep_page.goto(f"{base}/apps/field_visits/visit/new?form={form_key}")
    expect(rep_page.locator("[data-field=f_budget]")).to_be_hidden()
    rep_page.fill("#f_name", "First visit")
    rep_page.fill("#f_visit_date", "2026-11-20")
    rep_page.select_option("#f_outcome", "promising")
    expect(rep_page.locator("[data-field=f_budget]")).to_be_visible()
    rep_page.fill("#f_budget", "12000")
    rep_page.select_option("#f_client", label="Acme Trading")
    rep_page.check("#f_follow_up_needed")
    rep_page.get_by_role("button", name="Save").click()
    expect(rep_page.locator(".error-summary")).to_contain_text("Follow-up plan")  # required while shown
    rep_page.fill("#f_follow_up_plan", "Send the proposal on Monday")
    rep_page.get_by_role("button", name="Save").click()
    expect(rep_page.locator("h1")).to_contain_text("First visit")
    assert rep_page.js_errors == []
    db.expire_all()
    record = db.scalar(select(Record).where(Record.app_id == app.id, Record.entity_key == "visit"))
    assert record.data["outcome"] == "promising" and record.data["budget"] == "12000.00"
    assert record.data["follow_up_plan"] == "Send the proposal on Monday"
    rep_page.context.close()


# --- JSON mode ------------------------------------------------------------------------------------

@pytest.fixture
def built(db, admin):
    app = make_pipeline_app(db, admin)
    db.commit()
    return app


def test_json_mode_points_at_problems_while_typing(live_server, page, built, screenshots):
    log_in(page, live_server, "admin", "Ada Admin")
    page.goto(f"{live_server}/apps/pipes/admin/entity/deal/")
    page.get_by_role("button", name="JSON").click()
    text = page.locator("[data-json-text]")
    source = text.input_value()
    assert json.loads(source) == page.evaluate("window.formloomBuilder.body")
    broken = source.replace('"type": "currency"', '"type": "money"', 1)
    text.fill(broken)
    problem = page.locator("[data-problems] li").filter(has_text="money")
    expect(problem).to_have_count(1, timeout=10_000)
    path_button = problem.locator(".problem-path")
    line = broken[:broken.index('"money"')].count("\n") + 1
    expect(path_button).to_have_text(re.compile(rf"^\$\.fields\[\d+\]\.type · line {line}$"))
    path_button.click()
    selected = page.evaluate("(() => { const t = document.querySelector('[data-json-text]');"
                             " return t.value.slice(t.selectionStart, t.selectionEnd); })()")
    assert selected == '"money"'
    page.screenshot(path=str(screenshots / "builder-json.png"), full_page=False)

    text.fill(broken[:-3])  # cut the closing braces: not JSON any more
    expect(page.locator("[data-problems] li", has_text="not valid JSON")).to_have_count(1)
    page.get_by_role("button", name="Visual").click()  # refused while the text is not JSON
    expect(page.locator("[data-json]")).to_be_visible()
    text.fill(source)
    saved(page)
    expect(page.locator("[data-problems] li")).to_have_count(0)
    page.get_by_role("button", name="Visual").click()
    expect(page.locator("[data-visual]")).to_be_visible()
    assert page.js_errors == []


# --- switching modes is lossless --------------------------------------------------------------------

_label = st.one_of(st.text(min_size=1, max_size=12),
                   st.fixed_dictionaries({"en": st.text(min_size=1, max_size=12)},
                                         optional={"zh-CN": st.sampled_from(["商机", "客户", "<b>粗</b>", "金额 💰"])}))
_int = st.integers(-(2**53) + 1, 2**53 - 1)  # larger ones are refused: browsers cannot hold them exactly
_key = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
_condition = st.recursive(
    st.fixed_dictionaries({"field": _key, "op": st.sampled_from(["eq", "ne", "in", "empty", "gt"])},
                          optional={"value": st.one_of(_int, st.text(max_size=5), st.booleans(),
                                                       st.lists(st.text(max_size=3), max_size=3),
                                                       st.just({"$today": 3}))}),
    lambda inner: st.one_of(st.fixed_dictionaries({"all": st.lists(inner, max_size=3)}),
                            st.fixed_dictionaries({"any": st.lists(inner, max_size=3)}),
                            st.fixed_dictionaries({"not": inner})),
    max_leaves=5)
_option = st.fixed_dictionaries({"value": _key, "label": _label},
                                optional={"color": st.sampled_from(["#112233", "#abcdef"]),
                                          "parent": st.one_of(_key, st.lists(_key, max_size=2))})


@st.composite
def _field(draw, nested=False):
    kind = draw(st.sampled_from(["text", "integer", "currency", "select", "multiselect", "date", "boolean",
                                 "relation", "formula", "user", "textarea"] + ([] if nested else ["table"])))
    field = {"key": draw(_key), "type": kind, "label": draw(_label)}
    extras = {"required": st.booleans(), "help": _label, "placeholder": _label, "default": _int,
              "visible_when": _condition, "required_when": _condition, "readonly_when": _condition,
              "unique": st.booleans(), "max_length": st.integers(1, 99), "min": _int, "unknown_prop": _label}
    for name in draw(st.lists(st.sampled_from(sorted(extras)), max_size=4, unique=True)):
        field[name] = draw(extras[name])
    if kind in ("select", "multiselect"):
        field["options"] = draw(st.lists(_option, max_size=4))
    if kind == "relation":
        field["target"] = draw(st.sampled_from(["company", "deal", "nope"]))
    if kind == "formula":
        field["expression"] = draw(st.sampled_from(["amount * 2", "IF(", "seats + 1"]))
    if kind == "table":
        field["fields"] = draw(st.lists(_field(nested=True), max_size=3))
    return field


_entity = st.fixed_dictionaries(
    {"formloom": st.just(1), "kind": st.just("entity"), "key": st.just("deal"), "label": _label,
     "fields": st.lists(_field(), min_size=1, max_size=6)},
    optional={"title_field": _key, "owner_field": _key, "description": _label, "checks": st.just([])})


def test_switching_between_visual_and_json_mode_loses_nothing(live_server, page, built):
    log_in(page, live_server, "admin", "Ada Admin")
    page.goto(f"{live_server}/apps/pipes/admin/entity/deal/")
    expect(page.locator("[data-visual] .b-field").first).to_be_visible()
    assert_round_trips_unchanged(page, _entity, OPEN_EVERY_FIELD)
    assert page.js_errors == []


def test_the_editors_work_at_phone_width(live_server, context, built, screenshots):
    page = context.new_page()
    page.set_viewport_size(PHONE)
    log_in(page, live_server, "admin", "Ada Admin")
    page.goto(f"{live_server}/apps/pipes/admin/entity/deal/")
    page.locator("[data-edit-field='stage']").click()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"] + 1, f"the editor scrolls sideways at phone width ({width}px)"
    whole_page(page, screenshots / "builder-entity-phone.png")
    page.goto(f"{live_server}/apps/pipes/admin/")
    whole_page(page, screenshots / "builder-admin.png")

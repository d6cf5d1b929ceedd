"""The pipeline and rule editors of the builder in a real browser.

A business admin adds a stage (colour, probability), orders it by drag and drop and by the ↑/↓
buttons, gives it a gate and publishes it, and the board shows the new column; removing a stage
that holds records asks where they go and moves them; a rule gets a new trigger, a condition and
two actions without any JSON; a problem typed in JSON mode shows at its action; and rendering
(JSON mode and back included) never changes the definition.

Runs on every backend the ``app`` fixture offers (SQLite, and PostgreSQL when
FORMLOOM_TEST_DATABASE_URL is set). Screenshots for the docs land in docs/screenshots/.
"""
from __future__ import annotations

import copy
import json
import re
import time

import pytest
from hypothesis import strategies as st

from formloom.builder import definitions
from formloom.platform.auth import Cause
from formloom.platform.db import new_session
from formloom.platform.models import Record
from formloom.runtime import records
from tests.browser.builder_helpers import OPEN_EVERY_STAGE_AND_MOVE, add_condition, assert_round_trips_unchanged
from tests.browser.conftest import PHONE, Page, expect, log_in, whole_page
from tests.factories import make_pipeline_app, make_user, pipeline_body

pytestmark = pytest.mark.browser

PIPELINE_EDITOR = "/apps/pipes/admin/pipeline/deals/"
PIPELINE_API = "/api/v1/apps/pipes/definitions/pipeline/deals"
RULE_EDITOR = "/apps/pipes/admin/rule/deal_watch/"
RULE_API = "/api/v1/apps/pipes/definitions/rule/deal_watch"


def rule_body(**overrides) -> dict:
    body = {"formloom": 1, "kind": "rule", "key": "deal_watch", "label": "Watch deals", "entity": "deal",
            "enabled": False, "trigger": {"type": "created"},
            "actions": [{"type": "notify", "to": {"owner": True}, "title": "New deal: {title}"}]}
    body.update(overrides)
    return body


@pytest.fixture
def pipes(db, admin):
    app = make_pipeline_app(db, admin)
    for username, name in (("li.wei", "Li Wei"), ("emma", "Emma Stone")):
        make_user(db, username, display_name=name)
    definitions.save_draft(db, admin, app, "rule", "deal_watch", rule_body())
    db.commit()
    return app


@pytest.fixture
def builder(live_server, page: Page, pipes) -> Page:
    """The admin, logged in."""
    log_in(page, live_server, "admin", "Ada Admin")
    page.base = live_server
    return page


def open_editor(page: Page, path: str) -> None:
    page.goto(f"{page.base}{path}")
    expect(page.locator(".pr-editor")).to_be_visible()


def body_now(page: Page) -> str:
    return page.evaluate("JSON.stringify(window.formloomBuilder.body)")


def draft(page: Page, api: str) -> dict:
    response = page.request.get(f"{page.base}{api}")
    assert response.ok, response.text()
    return response.json()["draft"]


def wait_for_draft(page: Page, api: str, expected: dict) -> dict:
    """The saved draft once it equals ``expected`` (autosave is debounced), or the last one seen."""
    expect(page.locator("[data-save-state]")).to_have_text(re.compile(r"^Draft saved"))
    deadline = time.monotonic() + 10
    while True:
        saved = draft(page, api)
        if saved == expected or time.monotonic() > deadline:
            return saved
        page.wait_for_timeout(200)


def stage_item(page: Page, key: str):
    return page.locator(".pr-stages > li").filter(has=page.locator(".pr-item-name code", has_text=re.compile(f"^{key}$")))


def stage_keys(page: Page) -> list[str]:
    return page.locator(".pr-stages > li .pr-item-name code").all_inner_texts()


def test_pipeline_stage_added_ordered_gated_and_published_to_the_board(builder: Page, screenshots):
    page = builder
    open_editor(page, PIPELINE_EDITOR)
    assert stage_keys(page) == ["lead", "qualified", "proposal", "negotiation", "won", "lost"]
    # A published stage keeps its key; the only stage-field option not yet in the pipeline is offered.
    expect(page.locator("[data-add-option]")).to_have_text(["+ Archived"])

    page.get_by_label("New stage").fill("Archived")
    page.get_by_role("button", name="+ Add stage").click()
    expect(page.locator(".pr-stages > li")).to_have_count(7)
    archived = stage_item(page, "archived")
    expect(archived.locator(".pr-panel")).to_be_visible()  # a new stage opens, its name focused
    expect(archived.get_by_label("Stage name (English)")).to_be_focused()
    expect(archived.get_by_label("Key")).to_have_value("archived")  # from the name, editable until published
    archived.get_by_label("Colour").fill("#8e24aa")
    archived.get_by_label("Win probability (%)").fill("5")
    expect(archived.locator(".pr-meta")).to_have_text("5%")
    expect(page.locator("[data-add-option]")).to_have_count(0)

    # Drag it by its header onto "Won": it lands before it.
    page.drag_and_drop(".pr-stages > li:nth-child(7) > .pr-item-head", ".pr-stages > li:nth-child(5) > .pr-item-head")
    expect(page.locator(".pr-stages > li .pr-item-name code")).to_have_text(
        ["lead", "qualified", "proposal", "negotiation", "archived", "won", "lost"])
    # ↑ moves it once more, and the focus follows it.
    page.get_by_role("button", name="Move stage Archived up").click()
    expect(page.locator(".pr-stages > li .pr-item-name code")).to_have_text(
        ["lead", "qualified", "proposal", "archived", "negotiation", "won", "lost"])
    expect(page.get_by_role("button", name="Move stage Archived up")).to_be_focused()
    page.keyboard.press("Enter")  # keyboard: up once more, then down again
    expect(page.locator(".pr-stages > li:nth-child(3) .pr-item-name code")).to_have_text("archived")
    page.get_by_role("button", name="Move stage Archived down").press("Enter")
    expect(page.locator(".pr-stages > li:nth-child(4) .pr-item-name code")).to_have_text("archived")

    # Its gate: a required field and a checklist item (key from the label).
    archived = stage_item(page, "archived")
    gate = archived.locator('[data-path="$.stages[3].gate"]')
    gate.get_by_role("checkbox", name="Lost reason").check()
    gate.get_by_label("New checklist item").fill("Finance approved")
    gate.get_by_role("button", name="+ Item").click()
    expect(gate.locator(".pr-check-item")).to_have_count(1)
    expect(gate.get_by_label("Key of item 1")).to_have_value("finance_approved")
    expect(archived.locator(".pr-meta")).to_have_text("5% · gate: 2 checks")

    expected = pipeline_body()
    expected["stages"].insert(3, {"key": "archived", "label": "Archived", "color": "#8e24aa", "probability": 5,
                                  "gate": {"required": ["lost_reason"],
                                           "checklist": [{"key": "finance_approved", "label": "Finance approved"}]}})
    assert wait_for_draft(page, PIPELINE_API, expected) == expected
    expect(page.locator("[data-no-problems]")).to_be_visible()
    whole_page(page, screenshots / "builder-pipeline.png")

    # Publish through the dialog; the board has the new column, in its place and colour.
    page.get_by_role("button", name="Publish", exact=True).click()
    dialog = page.locator("[data-publish-dialog]")
    expect(dialog).to_be_visible()
    expect(dialog.locator("[data-impacts] [data-impact]")).to_have_count(0)
    dialog.locator("[data-publish-confirm]").click()
    expect(page.locator("[data-save-state]")).to_have_text("Published as version 2")
    page.goto(f"{page.base}/apps/pipes/pipelines/deals/")
    expect(page.locator(".board-column .column-title")).to_have_text(
        ["Lead", "Qualified", "Proposal", "Archived", "Negotiation", "Won", "Lost"])
    expect(page.locator('.board-column[data-stage="archived"] .column-probability')).to_have_text("5%")
    assert page.js_errors == []


def test_removing_a_stage_with_records_asks_where_they_go_and_moves_them(builder: Page, app, db, admin, pipes):
    page = builder

    def deal(name, stage):
        return records.create(db, admin, Cause.for_user(admin), pipes, "deal", {"name": name, "stage": stage})

    waiting = [deal("First qualified", "qualified"), deal("Second qualified", "qualified")]
    other = deal("Still a lead", "lead")
    db.commit()

    open_editor(page, PIPELINE_EDITOR)
    page.get_by_role("button", name="Remove stage Qualified").click()
    assert stage_keys(page) == ["lead", "proposal", "negotiation", "won", "lost"]
    notice = page.locator(".pr-notice")
    expect(notice).to_contain_text("Stage “Qualified” removed with the 1 move that named it.")
    expect(notice.get_by_role("button", name="Undo")).to_be_focused()
    # Undo puts the stage and its moves back as they were; then it goes for good.
    page.keyboard.press("Enter")
    assert stage_keys(page) == ["lead", "qualified", "proposal", "negotiation", "won", "lost"]
    assert wait_for_draft(page, PIPELINE_API, pipeline_body()) == pipeline_body()
    page.get_by_role("button", name="Remove stage Qualified").click()
    # The moves that named it went with it: lead → qualified, and qualified among the sources of → proposal.
    expected = pipeline_body()
    del expected["stages"][1]
    expected["transitions"] = [{"from": ["lead"], "to": "proposal"}, *expected["transitions"][2:]]
    assert wait_for_draft(page, PIPELINE_API, expected) == expected

    page.get_by_role("button", name="Publish", exact=True).click()
    dialog = page.locator("[data-publish-dialog]")
    impact = dialog.locator('[data-impact="stage_removed:deals.qualified"]')
    expect(impact).to_be_visible()
    expect(impact.locator("legend")).to_contain_text("Stage 'Qualified' (qualified) is removed")
    expect(impact.locator("legend")).to_contain_text("2 live Deal records are in it")
    expect(impact.get_by_text("Move them to")).to_be_visible()
    target = impact.locator("select[data-target]")
    expect(target.locator("option")).to_have_text(["Lead (lead)", "Proposal (proposal)", "Negotiation (negotiation)",
                                                   "Won (won)", "Lost (lost)"])
    target.select_option("proposal")
    dialog.locator("[data-publish-confirm]").click()
    expect(page.locator("[data-save-state]")).to_have_text("Published as version 2")

    session = new_session(app)  # a fresh session: what the database holds now
    try:
        assert [session.get(Record, r.id).data["stage"] for r in waiting] == ["proposal", "proposal"]
        assert session.get(Record, other.id).data["stage"] == "lead"
    finally:
        session.close()
    assert page.js_errors == []


def test_stage_approval_in_steps_and_the_allowed_moves(builder: Page):
    page = builder
    open_editor(page, PIPELINE_EDITOR)
    stage_item(page, "won").get_by_role("button", name="Edit stage Won").click()
    approval = page.locator('[data-path="$.stages[4].approval"]')
    approval.get_by_label("Entering this stage needs approval").check()
    expect(approval.get_by_label("Members with the role")).to_have_value("manager")
    approval.get_by_label("Steps, one after another").check()
    expect(approval.get_by_label("Steps, one after another")).to_be_focused()
    approval.get_by_role("button", name="+ Step").click()
    second = page.locator('[data-path="$.stages[4].approval.steps[1]"]')
    second.get_by_label("Members with the role").select_option("")
    second.get_by_role("checkbox", name="emma").check()
    approval.get_by_label("The person asking may approve their own request").uncheck()

    # Moves: the first one from two stages; a new one with its own condition and message.
    first = page.locator('[data-path="$.transitions[0]"]')
    first.locator("[data-move-from]").select_option("+several")
    expect(first.locator("[data-move-from]")).to_be_focused()
    first.get_by_role("checkbox", name="Proposal").check()
    page.get_by_role("button", name="+ Move").click()
    added = page.locator('[data-path="$.transitions[7]"]')
    expect(added.locator("[data-move-from]")).to_be_focused()
    added.locator("[data-move-to]").select_option("won")
    added.get_by_role("button", name="More for move 8").click()
    add_condition(added.locator('.condition-builder[data-path="$.transitions[7].condition"]'), "amount", "gt", "0")
    added.get_by_label("Message when the condition fails (English)").fill("Add an amount first.")

    expected = pipeline_body()
    expected["stages"][4]["approval"] = {"steps": [{"approvers": {"role": "manager"}, "mode": "any"},
                                                   {"approvers": {"users": ["emma"]}, "mode": "any"}],
                                         "self_approval": False}
    expected["transitions"][0]["from"] = ["lead", "proposal"]
    expected["transitions"].append({"from": "lead", "to": "won", "condition": {"field": "amount", "op": "gt", "value": 0},
                                    "message": "Add an amount first."})
    assert wait_for_draft(page, PIPELINE_API, expected) == expected
    expect(page.locator("[data-no-problems]")).to_be_visible()

    # "Any stage may move to any stage" replaces the list; unticking it again brings the list back.
    page.get_by_label("Any stage may move to any stage").check()
    expect(page.locator(".pr-moves")).to_have_count(0)
    assert wait_for_draft(page, PIPELINE_API, {**expected, "transitions": "any"})["transitions"] == "any"
    page.get_by_label("Any stage may move to any stage").uncheck()
    assert wait_for_draft(page, PIPELINE_API, expected) == expected
    assert page.js_errors == []


def test_a_problem_in_a_closed_stage_shows_on_it_and_its_link_opens_it(builder: Page):
    page = builder
    open_editor(page, PIPELINE_EDITOR)
    page.locator('[data-mode="json"]').click()
    typed = json.loads(page.locator("[data-json-text]").input_value())
    typed["stages"][1]["gate"] = {"required": ["ghost"]}
    page.locator("[data-json-text]").fill(json.dumps(typed, indent=2))
    expect(page.locator("[data-save-state]")).to_have_text("Draft saved · 1 problem")
    page.locator('[data-mode="visual"]').click()
    qualified = page.locator('[data-path="$.stages[1]"]')
    expect(qualified.locator(".pr-panel")).to_be_hidden()
    message = "The gate requires field 'ghost', which the entity does not have."
    expect(qualified.locator(".problem-note")).to_have_text(message)
    page.locator('[data-problem-path="$.stages[1].gate.required[0]"] button').click()
    required = qualified.locator('[data-path="$.stages[1].gate.required"]')
    expect(qualified.locator(".pr-panel")).to_be_visible()
    expect(required.locator(".problem-note")).to_have_text(message)
    expect(required.locator("input").first).to_be_focused()
    # The unknown field is listed (ticked) so it can be unticked; that fixes the draft.
    required.get_by_role("checkbox", name="ghost (not found)").uncheck()
    expect(page.locator("[data-save-state]")).to_have_text("Draft saved")
    assert draft(page, PIPELINE_API) == pipeline_body()
    assert page.js_errors == []


def test_rule_trigger_condition_and_actions_without_json(builder: Page, screenshots):
    page = builder
    open_editor(page, RULE_EDITOR)
    expect(page.locator("[data-trigger-type]")).to_have_value("created")

    # When: the stage field changes to Won.
    page.locator("[data-trigger-type]").select_option("field_changed")
    expect(page.locator("[data-trigger-type]")).to_be_focused()
    page.locator("[data-trigger-field]").select_option("stage")
    trigger = page.locator('section[data-path="$.trigger"]')
    trigger.get_by_label("Changed to").select_option("won")

    # Only when: the amount is more than 1000.
    add_condition(page.locator('.condition-builder[data-path="$.condition"]'), "amount", "gt", "1000")

    # Then: notify the managers (not the owner), and assign the owner in turn among two people.
    page.get_by_label("New action").select_option("notify")
    page.get_by_role("button", name="+ Add action").click()
    notify = page.locator('[data-path="$.actions[1]"]')
    expect(notify.locator("[data-action-type]")).to_be_focused()
    notify.get_by_label("The record's owner").uncheck()
    notify.locator("[data-to-role]").select_option("manager")
    notify.get_by_label("Title (English)").fill("Deal won: {title}")
    page.get_by_label("New action").select_option("assign")
    page.get_by_role("button", name="+ Add action").click()
    assign = page.locator('[data-path="$.actions[2]"]')
    expect(assign.locator("[data-assign-field]")).to_have_value("owner")
    assign.get_by_role("checkbox", name="li.wei").check()
    assign.get_by_role("checkbox", name="emma").check()

    expected = rule_body(
        trigger={"type": "field_changed", "field": "stage", "to": "won"},
        condition={"field": "amount", "op": "gt", "value": 1000},
        actions=[{"type": "notify", "to": {"owner": True}, "title": "New deal: {title}"},
                 {"type": "notify", "to": {"role": "manager"}, "title": "Deal won: {title}"},
                 {"type": "assign", "field": "owner", "strategy": "round_robin", "users": ["li.wei", "emma"]}])
    assert wait_for_draft(page, RULE_API, expected) == expected
    expect(page.locator("[data-no-problems]")).to_be_visible()
    whole_page(page, screenshots / "builder-rule.png")

    # A problem typed in JSON mode (an update of a field the deal does not have) shows at its action.
    page.locator('[data-mode="json"]').click()
    typed = json.loads(page.locator("[data-json-text]").input_value())
    typed["actions"].append({"type": "update", "values": {"no_such_field": 1}})
    page.locator("[data-json-text]").fill(json.dumps(typed, indent=2))
    expect(page.locator("[data-save-state]")).to_have_text("Draft saved · 1 problem")
    page.locator('[data-mode="visual"]').click()
    update = page.locator('[data-path="$.actions[3]"]')
    expect(update.locator("[data-action-type]")).to_have_value("update")
    expect(update.locator(".problem-note")).to_have_text("Entity 'deal' has no field 'no_such_field'.")
    expect(page.locator('[data-problems] [data-problem-path="$.actions[3].values.no_such_field"]')).to_be_visible()
    # Removing the action clears the problem.
    update.get_by_role("button", name="Remove action 4").click()
    expect(page.locator("[data-save-state]")).to_have_text("Draft saved")
    expect(page.locator(".problem-note")).to_have_count(0)
    assert draft(page, RULE_API) == expected
    assert page.js_errors == []


# Bodies that exercise every part of the two editors, odd shapes and unknown keys included.
ODD_PIPELINE = pipeline_body(
    description={"en": "Deals from first call to signature"},
    transitions=[{"from": "*", "to": "lost", "label": {"en": "Lose", "zh-CN": "输单"}, "message": "Say why.",
                  "condition": {"any": [{"field": "amount", "op": "gt", "value": 0}, {"$today": 3}]},
                  "approval": {"steps": [{"approvers": {"users": ["emma", "ghost"]}, "mode": "all"},
                                         {"label": "Then", "approvers": {"owner_manager": True, "role": "boss"}}],
                               "self_approval": False}},
                 {"from": ["lead"], "to": "qualified"}, {"from": "nowhere", "to": "gone"}, "not a move"],
    stages=[*copy.deepcopy(pipeline_body()["stages"]),
            {"key": "archived", "label": {"zh-CN": "归档"}, "color": "#abc", "probability": "high", "outcome": "open",
             "gate": {"required": [], "conditions": [{"condition": {"field": "nope", "op": "odd"}, "message": ""}],
                      "checklist": [{"key": "a", "label": "A"}, "junk"]},
             "approval": {"approvers": {}, "steps": [], "mode": "any"}, "extra": [1, {"deep": None}]}],
    card_fields=["company", "ghost"], custom_key={"kept": True})
ODD_RULES = [
    rule_body(trigger={"type": "schedule", "every": "day", "weekday": "monday", "at": "09:00", "x": 1},
              condition={"all": [{"field": "stage", "op": "in", "value": ["lead"]}, {"not": {"field": "name"}}]},
              actions=[{"type": "assign", "field": "owner", "strategy": "by_field", "map_field": "stage",
                        "map": {"lead": "emma", "gone": "ghost"}, "only_if_empty": False},
                       {"type": "assign", "field": "owner", "strategy": "least_open", "role": "rep",
                        "open_when": {"field": "stage", "op": "ne", "value": "won"}},
                       {"type": "email", "to": {"field": "owner", "users": ["ghost"]}, "subject": {"zh-CN": "主题"},
                        "body": "Hello"},
                       {"type": "update", "values": {"discount": 5, "stage": "won", "weird": [1]},
                        "formulas": {"amount": "amount * 1.1"}},
                       {"type": "create", "entity": "company", "link_field": "nope", "values": {"name": "X"}},
                       {"type": "webhook", "url": "https://example.com/hook", "max_attempts": 3},
                       {"type": "move", "stage": "won", "comment": "Auto"}, {"type": "mystery", "what": 1}, 7]),
    rule_body(trigger={"type": "inactivity", "days": 7, "activity": {"entity": "company", "field": "x"}}),
    rule_body(trigger={"type": "date_reached", "field": "close_date", "offset_days": -3}, enabled=True),
    rule_body(trigger={"type": "field_changed", "field": "discount", "from": 10, "to": {"$today": 0}}),
    rule_body(trigger={"type": "stage_left", "stage": "gone"}, description="Plain text"),
    rule_body(trigger={"type": "approval_decided", "decision": "sent_back"}, actions="not a list"),
    rule_body(trigger="not an object"),
]


def rerender_with(page: Page, body: dict) -> str:
    """Render ``body`` (every stage and move opened) and return it as the page holds it afterwards."""
    return page.evaluate("""(body) => {
        const ed = window.formloomBuilder;
        ed.body = body;
        ed.rerender();
        for (let round = 0; round < 3; round++) {
            const closed = [...document.querySelectorAll('.pr-toggle[aria-expanded="false"]')];
            if (!closed.length) break;
            closed.forEach((b) => b.click());
        }
        return JSON.stringify(ed.body);
    }""", body)


def test_rendering_and_json_mode_never_change_the_definition(builder: Page):
    page = builder
    for path, bodies in ((PIPELINE_EDITOR, [ODD_PIPELINE, pipeline_body(transitions="any"),
                                            pipeline_body(stages="oops")]), (RULE_EDITOR, ODD_RULES)):
        open_editor(page, path)
        before = body_now(page)
        page.locator('[data-mode="json"]').click()
        expect(page.locator("[data-json-text]")).to_be_visible()
        page.locator('[data-mode="visual"]').click()
        expect(page.locator(".pr-editor")).to_be_visible()
        assert body_now(page) == before
        for body in bodies:
            assert json.loads(rerender_with(page, body)) == body, body
    assert page.js_errors == []


# --- any body, however odd, comes back as it went in -----------------------------------------------

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=6)
_key = st.sampled_from(["lead", "qualified", "won", "lost", "amount", "stage", "owner", "company", "close_date",
                        "discount", "ghost", ""])
_label = st.one_of(_text, st.fixed_dictionaries({}, optional={"en": _text, "zh-CN": _text}))
_json = st.recursive(st.none() | st.booleans() | st.integers(-1000, 1000) | st.sampled_from([0.5, -2.25]) | _text,
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["a", "b", "type", "x"]),
                                                                                  inner, max_size=3),
                     max_leaves=6)
_value = st.one_of(st.none(), st.booleans(), st.integers(-100, 100), _text, st.sampled_from(["won", "lead"]),
                   st.just({"$today": 1}), st.lists(_text, max_size=2))
_leaf = st.fixed_dictionaries({"field": _key, "op": st.sampled_from(["eq", "gt", "in", "between", "empty", "odd"])},
                              optional={"value": _value})
_condition = st.one_of(_leaf, st.fixed_dictionaries({"all": st.lists(_leaf, max_size=2)}),
                       st.fixed_dictionaries({"any": st.lists(_leaf | _json, max_size=2)}), st.just({"not": {"field": "x"}}))
_users = st.lists(st.sampled_from(["emma", "li.wei", "ghost"]), max_size=3, unique=True)
_people = st.fixed_dictionaries({}, optional={"role": _key, "users": _users, "owner_manager": st.booleans(),
                                              "owner": st.booleans(), "field": _key, "junk": _json})
_step = st.fixed_dictionaries({}, optional={"label": _label, "approvers": _people | _json,
                                            "mode": st.sampled_from(["any", "all", "odd"])})
_approval = st.fixed_dictionaries({}, optional={
    "label": _label, "when": _condition, "approvers": _people | _json, "mode": st.sampled_from(["any", "all", "odd"]),
    "steps": st.lists(_step | _json, max_size=2) | _json, "self_approval": st.booleans(), "extra": _json})
_gate = st.fixed_dictionaries({}, optional={
    "required": st.lists(_key, max_size=3) | _json,
    "conditions": st.lists(st.fixed_dictionaries({}, optional={"condition": _condition | _json, "message": _label}) | _json,
                           max_size=2),
    "checklist": st.lists(st.fixed_dictionaries({"key": _key, "label": _label}) | _json, max_size=2), "x": _json})
_stage = st.one_of(st.fixed_dictionaries({"key": _key}, optional={
    "label": _label, "color": st.sampled_from(["#112233", "#ABCDEF", "#abc", "red"]),
    "probability": st.one_of(st.integers(-5, 120), st.just(12.5), _text), "outcome": st.sampled_from(["open", "won", "lost", "odd"]),
    "help": _label, "gate": _gate | _json, "approval": _approval | _json, "extra": _json}), _json)
_transition = st.one_of(st.fixed_dictionaries({}, optional={
    "from": st.one_of(_key, st.just("*"), st.lists(_key, max_size=3), _json), "to": _key | _json, "label": _label,
    "condition": _condition | _json, "message": _label, "approval": _approval | _json, "x": _json}), _json)
_pipeline = st.fixed_dictionaries(
    {"formloom": st.just(1), "kind": st.just("pipeline"), "key": st.just("deals"), "label": _label,
     "entity": st.sampled_from(["deal", "deal", "company", "ghost"]), "stages": st.lists(_stage, max_size=5) | _json},
    optional={"stage_field": _key, "amount_field": _key, "date_field": _key, "card_fields": st.lists(_key, max_size=7) | _json,
              "transitions": st.one_of(st.just("any"), st.lists(_transition, max_size=4), _json),
              "description": _label, "unknown": _json})
_TRIGGERS = ["created", "updated", "deleted", "field_changed", "stage_entered", "stage_left", "approval_decided",
             "date_reached", "schedule", "inactivity", "odd"]
_trigger = st.one_of(st.builds(lambda kind, extra: {"type": kind, **extra}, st.sampled_from(_TRIGGERS),
                               st.fixed_dictionaries({}, optional={
                                   "field": _key, "from": _value, "to": _value, "stage": _key,
                                   "decision": st.sampled_from(["approved", "rejected", "sent_back", "odd"]),
                                   "offset_days": st.integers(-10, 10), "at": st.sampled_from(["09:00", "25:99", ""]),
                                   "every": st.sampled_from(["hour", "day", "week", "month", "odd"]),
                                   "weekday": st.sampled_from(["monday", "funday"]), "day": st.integers(0, 40),
                                   "days": st.integers(0, 9), "x": _json,
                                   "activity": st.fixed_dictionaries({"entity": st.sampled_from(["company", "ghost"]),
                                                                      "field": _key}) | _json})), _json)
_ACTIONS = ["assign", "notify", "request_approval", "move", "update", "create", "webhook", "email", "odd"]
_action = st.one_of(st.builds(lambda kind, extra: {"type": kind, **extra}, st.sampled_from(_ACTIONS),
                              st.fixed_dictionaries({}, optional={
                                  "field": _key, "strategy": st.sampled_from(["round_robin", "least_open", "by_field", "odd"]),
                                  "users": _users, "role": _key, "open_when": _condition | _json, "map_field": _key,
                                  "map": st.dictionaries(st.sampled_from(["lead", "won", "x"]), st.sampled_from(["emma", "ghost"]),
                                                         max_size=3) | _json,
                                  "only_if_empty": st.booleans(), "to": _people | _json, "title": _label, "message": _label,
                                  "email": st.booleans(), "stage": _key, "comment": _text,
                                  "values": st.dictionaries(_key, _value, max_size=3) | _json,
                                  "formulas": st.dictionaries(_key, _text, max_size=2) | _json,
                                  "entity": st.sampled_from(["company", "deal", "ghost"]), "link_field": _key,
                                  "url": _text, "secret": _text, "max_attempts": st.integers(0, 12), "subject": _label,
                                  "body": _label, "x": _json})), _json)
_rule = st.fixed_dictionaries(
    {"formloom": st.just(1), "kind": st.just("rule"), "key": st.just("deal_watch"), "label": _label,
     "entity": st.sampled_from(["deal", "deal", "company", "ghost"]), "trigger": _trigger,
     "actions": st.lists(_action, max_size=4) | _json},
    optional={"description": _label, "enabled": st.booleans(), "condition": _condition | _json, "unknown": _json})


@pytest.mark.parametrize(("path", "bodies"), [(PIPELINE_EDITOR, _pipeline), (RULE_EDITOR, _rule)], ids=["pipeline", "rule"])
def test_any_body_goes_through_the_visual_editor_unchanged(builder: Page, path, bodies):
    page = builder
    open_editor(page, path)
    assert_round_trips_unchanged(page, bodies, OPEN_EVERY_STAGE_AND_MOVE)
    assert page.js_errors == []


def test_editors_at_phone_width(builder: Page, tmp_path):
    page = builder
    page.set_viewport_size(PHONE)
    for path in (PIPELINE_EDITOR, RULE_EDITOR):
        open_editor(page, path)
        if path == PIPELINE_EDITOR:
            page.locator(".pr-stages > li:nth-child(4) .pr-toggle").click()
        # Nothing wider than the screen.
        overflow = page.evaluate("""() => [...document.querySelectorAll('.pr-editor *')]
            .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1 && el.offsetParent !== null)
            .map((el) => el.tagName + '.' + el.className).slice(0, 5)""")
        assert overflow == [], overflow
        page.screenshot(path=str(tmp_path / f"phone-{path.split('/')[4]}.png"), full_page=True)
    assert page.js_errors == []

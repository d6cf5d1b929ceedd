"""Pipelines: definition checks, stage gates on every path, transitions, stage history, stats, board."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from formloom.builder import definitions
from formloom.platform.auth import Cause
from formloom.platform.errors import VersionConflict
from formloom.platform.models import Record, Team, TeamMember
from formloom.runtime import pipelines, records
from formloom.runtime.pipelines import MoveStatus, StageGateError
from formloom.runtime.validation import Situation
from tests.factories import csrf_token, login, make_user, pipeline_body

BASE = "/api/v1/apps/pipes"
T0 = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
HOUR = 3600
PROPOSAL_GATE = "To enter Proposal, fill Amount and Customer."


def company(db, user, app, name="Acme"):
    return records.create(db, user, Cause.for_user(user), app, "company", {"name": name})


def deal(db, user, app, hours=0, **values):
    values.setdefault("name", "Deal")
    record = records.create(db, user, Cause.for_user(user), app, "deal", values,
                            situation=Situation(user_id=user.id, now=T0 + timedelta(hours=hours)))
    db.commit()
    return record


def ready_deal(db, user, app, stage="lead", hours=0, **values):
    """A deal with everything the gates before Won and Lost ask for."""
    values = {"amount": "1000", "company": company(db, user, app).id, "close_date": "2025-06-30",
              "stage": stage, **values}
    return deal(db, user, app, hours, **values)


def move(db, user, app, record, to, hours=0, **options):
    result = pipelines.move(db, user, Cause.for_user(user), app, record, to,
                            situation=Situation(user_id=user.id, now=T0 + timedelta(hours=hours)), **options)
    db.commit()
    return result


def gate_failure(db, user, app, record, to, **options) -> StageGateError:
    with pytest.raises(StageGateError) as caught:
        move(db, user, app, record, to, **options)
    db.rollback()
    return caught.value


def publish(db, admin, app, body):
    definitions.save_and_publish(db, admin, app, body)
    db.commit()


def fresh(db, record) -> Record:
    db.commit()
    db.refresh(record)
    return record


# --- definition checks -----------------------------------------------------------------------

def _not_an_option(body):
    body["stages"].append({"key": "frozen", "label": "Frozen"})


def _unknown_target(body):
    body["transitions"].append({"from": "lead", "to": "limbo"})


def _unknown_gate_field(body):
    body["stages"][2]["gate"]["required"].append("budget")


def _bad_condition(body):
    body["stages"][3]["gate"]["conditions"][0]["condition"] = {"field": "close_date", "op": "bogus"}


def _approvers_and_steps(body):
    body["stages"][3]["approval"]["steps"] = [{"approvers": {"users": ["admin"]}}]


@pytest.mark.parametrize("change, key, path, words", [
    (lambda b: b.update(entity="nope"), "deals", "$.entity", "no entity 'nope'"),
    (lambda b: b.update(stage_field="name"), "deals", "$.stage_field", "must be a select field"),
    (_not_an_option, "deals", "$.stages[6].key", "'frozen' is not an option of field 'stage'"),
    (_unknown_target, "deals", "$.transitions[7].to", "no stage 'limbo'"),
    (_unknown_gate_field, "deals", "$.stages[2].gate.required[2]", "field 'budget'"),
    (_bad_condition, "deals", "$.stages[3].gate.conditions[0].condition.op", '"bogus"'),
    (_approvers_and_steps, "deals", "$.stages[3].approval", "either 'approvers'"),
    (lambda b: None, "deals_two", "$.entity", "already has pipeline 'deals'"),
], ids=["missing_entity", "stage_field_not_select", "stage_not_an_option", "transition_to_unknown_stage",
        "gate_requires_unknown_field", "bad_gate_condition", "approval_with_approvers_and_steps",
        "second_pipeline_on_entity"])
def test_definition_problem_is_reported_at_its_path(db, pipes, change, key, path, words):
    body = pipeline_body(key=key)
    change(body)
    problems = definitions.check(db, pipes, "pipeline", key, body)
    assert any(p.path == path and words in p.message for p in problems), problems


def test_builder_api_reports_pipeline_problems_with_paths(client, pipes, admin_headers):
    body = pipeline_body()
    _unknown_gate_field(body)
    response = client.put(f"{BASE}/definitions/pipeline/deals", json=body, headers=admin_headers)
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["valid"] is False
    assert {"path": "$.stages[2].gate.required[2]",
            "message": "The gate requires field 'budget', which the entity does not have."} in answer["problems"]


# --- gates on every path ---------------------------------------------------------------------

def test_service_move_lists_missing_gate_fields(db, rep, pipes):
    record = deal(db, rep, pipes)
    error = gate_failure(db, rep, pipes, record, "proposal")
    assert error.message == PROPOSAL_GATE
    assert [(m["kind"], m["field"]) for m in error.missing] == [("field", "amount"), ("field", "company")]
    assert error.fields == {"amount": ["Fill Amount to enter Proposal."], "company": ["Fill Customer to enter Proposal."]}
    assert fresh(db, record).data["stage"] == "lead"


def test_rest_transition_gives_422_with_every_missing_field(db, client, rep, rep_headers, pipes):
    record = deal(db, rep, pipes)
    response = client.post(f"{BASE}/records/deal/{record.id}/transition", json={"to": "proposal"},
                           headers=rep_headers)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "stage_gate" and error["message"] == PROPOSAL_GATE
    assert [m["message"] for m in error["missing"]] == ["Amount", "Customer"]
    assert error["stage"] == "proposal"


def test_rest_patch_of_stage_passes_the_same_gate(db, client, rep, rep_headers, pipes):
    record = deal(db, rep, pipes)
    response = client.patch(f"{BASE}/records/deal/{record.id}", json={"version": 1, "data": {"stage": "proposal"}},
                            headers=rep_headers)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "stage_gate"
    assert response.get_json()["error"]["message"] == PROPOSAL_GATE
    assert fresh(db, record).data["stage"] == "lead"


def test_service_create_directly_in_a_stage_passes_its_gate(db, rep, pipes):
    with pytest.raises(StageGateError) as caught:
        records.create(db, rep, Cause.for_user(rep), pipes, "deal", {"name": "Direct", "stage": "proposal"})
    assert caught.value.message == PROPOSAL_GATE


def test_rest_create_directly_in_a_stage_passes_its_gate(db, client, rep, rep_headers, pipes):
    response = client.post(f"{BASE}/records/deal", json={"data": {"name": "Direct", "stage": "proposal"}},
                           headers=rep_headers)
    assert response.status_code == 422
    assert response.get_json()["error"]["message"] == PROPOSAL_GATE
    assert db.query(Record).filter_by(entity_key="deal").count() == 0


def test_html_form_create_in_a_gated_stage_shows_the_gate_message(db, client, rep, pipes):
    login(client, "rep")
    url = "/apps/pipes/deal/new"
    token = csrf_token(client, url)
    response = client.post(url, data={"csrf_token": token, "f_name": "Web deal", "f_stage": "proposal"},
                           content_type="multipart/form-data")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert PROPOSAL_GATE in page
    assert 'value="Web deal"' in page and "Fill Amount to enter Proposal." in page  # the form again, kept
    assert db.query(Record).filter_by(entity_key="deal").count() == 0


def test_every_missing_item_is_listed_at_once(db, admin, rep, pipes):
    body = pipeline_body()
    body["stages"][2]["gate"] = {
        "required": ["amount", "company"],
        "conditions": [{"condition": {"field": "close_date", "op": "not_empty"}, "message": "Set the close date."}],
        "checklist": [{"key": "needs_met", "label": "Needs analysed"}]}
    publish(db, admin, pipes, body)
    error = gate_failure(db, rep, pipes, deal(db, rep, pipes), "proposal")
    assert [m["kind"] for m in error.missing] == ["field", "field", "condition", "checklist"]
    assert error.message == ("To enter Proposal, fill Amount and Customer. Set the close date. "
                             "To enter Proposal, confirm: Needs analysed.")


# --- transitions -----------------------------------------------------------------------------

def test_move_outside_the_transitions_names_the_allowed_stages(db, rep, pipes):
    error = gate_failure(db, rep, pipes, ready_deal(db, rep, pipes), "won", checklist=["contract_signed"])
    assert error.missing[0]["kind"] == "transition"
    assert error.message == "It cannot move from Lead to Won; it can move to: Qualified, Proposal and Lost."


@pytest.mark.parametrize("stage", ["lead", "qualified", "proposal", "negotiation"])
def test_any_stage_may_move_to_lost(db, rep, pipes, stage):
    record = ready_deal(db, rep, pipes, stage=stage, lost_reason="Budget cut")
    assert move(db, rep, pipes, record, "lost").status is MoveStatus.MOVED
    assert fresh(db, record).data["stage"] == "lost"


def test_lost_requires_a_lost_reason(db, rep, pipes):
    error = gate_failure(db, rep, pipes, ready_deal(db, rep, pipes), "lost")
    assert error.message == "To enter Lost, fill Lost reason."
    assert error.missing == [{"kind": "field", "field": "lost_reason", "message": "Lost reason"}]


def test_won_needs_its_checklist_ticked(db, rep, pipes):
    error = gate_failure(db, rep, pipes, ready_deal(db, rep, pipes, stage="negotiation"), "won")
    assert error.message == "To enter Won, confirm: Contract signed."
    assert error.missing == [{"kind": "checklist", "item": "contract_signed", "message": "Contract signed"}]


def test_ticked_checklist_is_stored_on_the_stage_visit(db, rep, pipes):
    record = ready_deal(db, rep, pipes, stage="negotiation")
    result = move(db, rep, pipes, record, "won", checklist=["contract_signed"], comment="Signed today")
    assert result.status is MoveStatus.MOVED
    last = pipelines.visits(db, record)[-1]
    assert (last.stage, last.checklist, last.comment) == ("won", ["contract_signed"], "Signed today")


def test_rest_transition_stores_the_ticked_checklist(db, client, rep, rep_headers, pipes):
    record = ready_deal(db, rep, pipes, stage="negotiation")
    url = f"{BASE}/records/deal/{record.id}"
    moved = client.post(f"{url}/transition", json={"to": "won", "checklist": ["contract_signed"]}, headers=rep_headers)
    assert moved.status_code == 200, moved.get_json()
    last = client.get(f"{url}/stages", headers=rep_headers).get_json()["visits"][-1]
    assert (last["stage"], last["checklist"]) == ("won", ["contract_signed"])


def test_move_to_the_current_stage_is_unchanged(db, client, rep, rep_headers, pipes):
    record = ready_deal(db, rep, pipes, stage="qualified")
    assert move(db, rep, pipes, record, "qualified").status is MoveStatus.UNCHANGED
    response = client.post(f"{BASE}/records/deal/{record.id}/transition", json={"to": "qualified"},
                           headers=rep_headers)
    assert response.status_code == 200
    assert response.get_json()["status"] == "unchanged"
    assert response.get_json()["record"]["version"] == 1


def test_rest_transition_moves_and_returns_the_record(db, client, rep, rep_headers, pipes):
    record = ready_deal(db, rep, pipes)
    response = client.post(f"{BASE}/records/deal/{record.id}/transition", json={"to": "proposal", "version": 1},
                           headers=rep_headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "moved"
    assert response.get_json()["record"]["data"]["stage"] == "proposal"


def test_stale_version_in_transition_is_a_version_conflict(db, client, rep, rep_headers, pipes):
    record = ready_deal(db, rep, pipes)
    records.update(db, rep, Cause.for_user(rep), pipes, record, {"amount": "2000"}, 1)
    db.commit()
    response = client.post(f"{BASE}/records/deal/{record.id}/transition", json={"to": "proposal", "version": 1},
                           headers=rep_headers)
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "version_conflict" and error["current_version"] == 2
    assert fresh(db, record).data["stage"] == "lead"


def test_stale_version_in_service_move_raises_version_conflict(db, rep, pipes):
    record = ready_deal(db, rep, pipes)
    move(db, rep, pipes, record, "qualified")
    with pytest.raises(VersionConflict):
        move(db, rep, pipes, record, "proposal", expected_version=1)


# --- stage history ---------------------------------------------------------------------------

def _history(db, rep, admin, pipes):
    """lead 2h → qualified 22h → lost 24h → lead (current), with two actors."""
    record = ready_deal(db, rep, pipes, lost_reason="Paused")
    move(db, rep, pipes, record, "qualified", hours=2)
    move(db, admin, pipes, record, "lost", hours=24)
    move(db, rep, pipes, record, "lead", hours=48)
    return record


def test_visits_record_entries_and_exits_with_times_and_actors(db, admin, rep, pipes):
    record = _history(db, rep, admin, pipes)
    rows = [(v.stage, v.entered_at, v.entered_by, v.left_at, v.left_by) for v in pipelines.visits(db, record)]
    assert rows == [
        ("lead", T0, rep.id, T0 + timedelta(hours=2), rep.id),
        ("qualified", T0 + timedelta(hours=2), rep.id, T0 + timedelta(hours=24), admin.id),
        ("lost", T0 + timedelta(hours=24), admin.id, T0 + timedelta(hours=48), rep.id),
        ("lead", T0 + timedelta(hours=48), rep.id, None, None)]


def test_time_in_stages_adds_up_repeated_stays(db, admin, rep, pipes):
    record = _history(db, rep, admin, pipes)
    spent = pipelines.time_in_stages(pipelines.visits(db, record), T0 + timedelta(hours=72))
    assert spent == {"lead": 26 * HOUR, "qualified": 22 * HOUR, "lost": 24 * HOUR}


def test_stages_endpoint_lists_visits_with_seconds(db, client, admin, rep, rep_headers, pipes):
    record = _history(db, rep, admin, pipes)
    answer = client.get(f"{BASE}/records/deal/{record.id}/stages", headers=rep_headers).get_json()
    assert answer["stage"] == "lead" and answer["pending_approval"] is None
    assert [(v["stage"], v["entered_at"], v["left_at"]) for v in answer["visits"][:3]] == [
        ("lead", "2025-01-06T09:00:00Z", "2025-01-06T11:00:00Z"),
        ("qualified", "2025-01-06T11:00:00Z", "2025-01-07T09:00:00Z"),
        ("lost", "2025-01-07T09:00:00Z", "2025-01-08T09:00:00Z")]
    assert [v["seconds"] for v in answer["visits"][:3]] == [2 * HOUR, 22 * HOUR, 24 * HOUR]
    assert answer["time_in_stage"]["qualified"] == 22 * HOUR
    assert answer["time_in_stage"]["lead"] > 2 * HOUR  # the current stay counts until now
    assert answer["next_stages"] == ["qualified", "proposal", "lost"]


# --- conversion and median -------------------------------------------------------------------

def _funnel(db, rep, pipes):
    """Four deals enter lead; three reach qualified, two proposal, one negotiation; two are lost."""
    a, b, c, d = (ready_deal(db, rep, pipes, name=f"D{i}", lost_reason="No budget") for i in range(4))
    move(db, rep, pipes, a, "qualified", hours=1)
    move(db, rep, pipes, a, "proposal", hours=3)  # qualified 2h, then stays in proposal
    move(db, rep, pipes, b, "qualified", hours=3)
    move(db, rep, pipes, b, "proposal", hours=7)  # qualified 4h
    move(db, rep, pipes, b, "negotiation", hours=12)  # proposal 5h, then stays in negotiation
    move(db, rep, pipes, c, "qualified", hours=5)
    move(db, rep, pipes, c, "lost", hours=11)  # qualified 6h
    move(db, rep, pipes, d, "lost", hours=7)  # lead 7h
    # finished lead stays: 1h, 3h, 5h, 7h


EXPECTED_FUNNEL = {
    # stage: (entered, current, converted, conversion, median hours)
    "lead": (4, 0, 3, 0.75, 4),
    "qualified": (3, 0, 2, 2 / 3, 4),
    "proposal": (2, 1, 1, 0.5, 5),
    "negotiation": (1, 1, 0, 0.0, None),
    "won": (0, 0, 0, None, None),
    "lost": (2, 2, 0, None, None),
}


def test_pipeline_stats_count_conversion_and_median(db, rep, pipes):
    _funnel(db, rep, pipes)
    pipeline = pipelines.pipeline_for(db, pipes, "deal")
    stats = pipelines.pipeline_stats(db, rep, pipes, pipeline, T0 + timedelta(days=30))
    got = {s.stage.key: (s.entered, s.current, s.converted, s.conversion,
                         None if s.median_seconds is None else s.median_seconds / HOUR) for s in stats}
    assert got == EXPECTED_FUNNEL


def test_stats_endpoint_reports_the_same_numbers(db, client, rep, rep_headers, pipes):
    _funnel(db, rep, pipes)
    response = client.get(f"{BASE}/pipelines/deals/stats", headers=rep_headers)
    assert response.status_code == 200
    got = {s["stage"]: (s["entered"], s["current"], s["converted"], s["conversion_rate"],
                        None if s["median_seconds"] is None else s["median_seconds"] / HOUR)
           for s in response.get_json()["stages"]}
    assert got == EXPECTED_FUNNEL


def test_pipelines_endpoint_lists_the_pipeline_with_its_stages(db, client, rep_headers, pipes):
    items = client.get(f"{BASE}/pipelines", headers=rep_headers).get_json()["items"]
    assert [(p["key"], p["entity"]) for p in items] == [("deals", "deal")]
    assert [s["key"] for s in items[0]["stages"]] == ["lead", "qualified", "proposal", "negotiation", "won", "lost"]


# --- board -----------------------------------------------------------------------------------

@pytest.fixture
def board(db, admin, rep, pipes):
    """Deals of the rep, a teammate (team 'east', managed by boss) and someone outside the team."""
    mate, other, boss = (make_user(db, name) for name in ("mate", "other", "boss"))
    team = Team(key="east", name="East", manager_id=boss.id)
    db.add(team)
    db.flush()
    db.add_all([TeamMember(team_id=team.id, user_id=rep.id), TeamMember(team_id=team.id, user_id=mate.id)])
    db.commit()
    for name, owner, stage, amount, close in [
            ("Rita big", rep, "lead", "100", "2025-02-10"), ("Rita small", rep, "lead", "50.5", "2025-03-10"),
            ("Rita proposal", rep, "proposal", "300", "2025-04-10"), ("Mate lead", mate, "lead", "20", "2025-02-20"),
            ("Other lead", other, "lead", "7", "2025-05-01")]:
        ready_deal(db, admin, pipes, stage=stage, name=name, owner=owner.id, amount=amount, close_date=close)
    return {"mate": mate, "other": other}


def columns(client, headers, query=""):
    response = client.get(f"{BASE}/pipelines/deals/board{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return {c["stage"]: (c["count"], c["total"]) for c in response.get_json()["columns"] if c["count"]}


def test_board_counts_and_sums_amounts_per_column(client, rep_headers, board):
    assert columns(client, rep_headers) == {"lead": (4, 177.5), "proposal": (1, 300.0)}


@pytest.mark.parametrize("scope, expected", [
    ("mine", {"lead": (2, 150.5), "proposal": (1, 300.0)}),
    ("team", {"lead": (3, 170.5), "proposal": (1, 300.0)}),
    ("all", {"lead": (4, 177.5), "proposal": (1, 300.0)}),
])
def test_board_scope(client, rep_headers, board, scope, expected):
    assert columns(client, rep_headers, f"?scope={scope}") == expected


def test_board_filters_by_owner(client, rep_headers, board):
    assert columns(client, rep_headers, f"?owner={board['mate'].id}") == {"lead": (1, 20.0)}


def test_board_filters_by_close_date_range(client, rep_headers, board):
    assert columns(client, rep_headers, "?from=2025-02-15&to=2025-04-10") == {"lead": (2, 70.5),
                                                                             "proposal": (1, 300.0)}


@pytest.mark.parametrize("q, expected", [
    ("rita", {"lead": (2, 150.5), "proposal": (1, 300.0)}),
    ("MATE", {"lead": (1, 20.0)}),
    ("%", {}),
    ("_", {}),
])
def test_board_filters_by_search(client, rep_headers, board, q, expected):
    assert columns(client, rep_headers, f"?q={quote(q)}") == expected


def test_board_cards_show_the_records(client, rep_headers, board):
    answer = client.get(f"{BASE}/pipelines/deals/board?scope=mine", headers=rep_headers).get_json()
    lead = next(c for c in answer["columns"] if c["stage"] == "lead")
    assert sorted(card["title"] for card in lead["cards"]) == ["Rita big", "Rita small"]


def test_board_bad_scope_is_a_400_naming_scope(client, rep_headers, pipes):
    response = client.get(f"{BASE}/pipelines/deals/board?scope=everyone", headers=rep_headers)
    assert response.status_code == 400
    assert "'scope'" in response.get_json()["error"]["message"]


# --- publishing a pipeline that drops a stage ---------------------------------------------------

def _without_negotiation() -> dict:
    body = pipeline_body()
    body["stages"] = [s for s in body["stages"] if s["key"] != "negotiation"]
    body["transitions"] = [{"from": "lead", "to": "qualified"}, {"from": ["lead", "qualified"], "to": "proposal"},
                           {"from": "proposal", "to": "won"}, {"from": "*", "to": "lost"},
                           {"from": "lost", "to": "lead"}]
    return body


def _stranded(db, client, rep, pipes, admin_headers):
    held = [ready_deal(db, rep, pipes, stage="negotiation", name=f"N{i}") for i in range(2)]
    saved = client.put(f"{BASE}/definitions/pipeline/deals", json=_without_negotiation(), headers=admin_headers)
    assert saved.get_json()["valid"] is True, saved.get_json()
    return held


def test_publish_dropping_a_stage_with_records_is_refused(db, client, rep, pipes, admin_headers):
    held = _stranded(db, client, rep, pipes, admin_headers)
    response = client.post(f"{BASE}/definitions/pipeline/deals/publish", json={}, headers=admin_headers)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "definition_invalid"
    (message,) = error["fields"]["$.stages"]
    assert "Stage 'negotiation' is removed but 2 deal records are in it" in message
    assert fresh(db, held[0]).data["stage"] == "negotiation"


def test_publish_with_stage_moves_moves_the_records(db, client, rep, pipes, admin_headers):
    held = _stranded(db, client, rep, pipes, admin_headers)
    response = client.post(f"{BASE}/definitions/pipeline/deals/publish",
                           json={"stage_moves": {"negotiation": "proposal"}}, headers=admin_headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["version"] == 2
    assert [fresh(db, r).data["stage"] for r in held] == ["proposal", "proposal"]
    assert pipelines.visits(db, held[0])[-1].stage == "proposal"


def test_stage_moves_show_in_record_history_as_a_definition_change(db, client, rep, pipes, admin_headers):
    held = _stranded(db, client, rep, pipes, admin_headers)
    client.post(f"{BASE}/definitions/pipeline/deals/publish", json={"stage_moves": {"negotiation": "proposal"}},
                headers=admin_headers)
    items = client.get(f"{BASE}/records/deal/{held[0].id}/history", headers=admin_headers).get_json()["items"]
    latest = items[0]
    assert latest["cause"]["kind"] == "definition"
    assert latest["changes"] == {"stage": ["negotiation", "proposal"]}


def test_stage_moves_to_a_stage_not_kept_is_refused(db, client, rep, pipes, admin_headers):
    _stranded(db, client, rep, pipes, admin_headers)
    response = client.post(f"{BASE}/definitions/pipeline/deals/publish",
                           json={"stage_moves": {"negotiation": "negotiation"}}, headers=admin_headers)
    assert response.status_code == 422
    assert "stage_moves.negotiation" in response.get_json()["error"]["fields"]


# --- permissions -----------------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("post", "/records/deal/{id}/transition"),
    ("get", "/records/deal/{id}/stages"),
    ("get", "/pipelines/deals/board"),
    ("get", "/pipelines/deals/stats"),
    ("get", "/pipelines"),
])
def test_outsider_cannot_reach_pipeline_endpoints(db, client, rep, pipes, outsider_headers, method, path):
    record = ready_deal(db, rep, pipes)
    response = getattr(client, method)(BASE + path.format(id=record.id), json={"to": "proposal"},
                                       headers=outsider_headers)
    assert response.status_code in (403, 404)
    assert "error" in response.get_json() and "data" not in response.get_data(as_text=True)
    assert fresh(db, record).data["stage"] == "lead"


@pytest.mark.parametrize("seconds, locale, text", [
    (None, "en", "—"), (59, "en", "0m"), (12 * 60, "en", "12m"), (5 * 3600, "en", "5h"),
    (5 * 3600 + 600, "en", "5h 10m"), (3 * 86400 + 4 * 3600 + 59, "en", "3d 4h"), (2 * 86400, "en", "2d"),
    (3 * 86400 + 4 * 3600, "zh-CN", "3天4小时"), (600, "zh-CN", "10分钟"),
])
def test_time_in_stage_reads_in_days_hours_and_minutes(seconds, locale, text):
    from formloom.runtime.pipelines_views import duration_text

    assert duration_text(seconds, locale) == text


@pytest.mark.parametrize("comment, words", [("bad\u0000text", "NUL character"), ("bad \ud800", "broken character"),
                                            ("x" * 2001, "keep it to 2000")])
def test_a_comment_that_cannot_be_stored_is_refused_with_a_clear_message(db, client, rep, rep_headers, pipes,
                                                                        comment, words):
    record = records.create(db, rep, Cause.for_user(rep), pipes, "deal", {"name": "Deal"})
    db.commit()
    body = json.dumps({"to": "qualified", "comment": comment})  # escapes a lone surrogate as \ud800
    response = client.post(f"{BASE}/records/deal/{record.id}/transition", data=body,
                           headers={**rep_headers, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert words in response.get_json()["error"]["message"]


def test_a_board_search_with_a_nul_character_is_a_clear_400(client, rep_headers, pipes):
    response = client.get(f"{BASE}/pipelines/deals/board?q=a%00b", headers=rep_headers)
    assert response.status_code == 400
    assert "NUL character" in response.get_json()["error"]["message"]

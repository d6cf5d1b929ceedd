"""Impact check before publishing: what a draft does to live data, counted exactly, and the admin's choice."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from formloom.builder import definitions, impact
from formloom.builder.impact import ImpactUnresolved
from formloom.platform.auth import Cause
from formloom.platform.errors import DefinitionError, RecordValidationError
from formloom.platform.models import ChangeLog, DefinitionVersion, Record
from formloom.runtime import catalog, pipelines, records
from tests.factories import deal_body, pipeline_body, pipeline_deal_body

BASE = "/api/v1/apps/sales"


# --- helpers ---------------------------------------------------------------------------------

def deal(db, user, app, **values) -> Record:
    values.setdefault("name", "Deal")
    record = records.create(db, user, Cause.for_user(user), app, "deal", values)
    db.commit()
    return record


def deleted(db, user, app, **values) -> Record:
    record = deal(db, user, app, **values)
    records.delete(db, user, Cause.for_user(user), app, record)
    db.commit()
    return record


def store_raw(db, record: Record, **values) -> Record:
    """Store shapes no form writes ("" and null) straight into the record's document."""
    record.data = {**record.data, **values}
    db.commit()
    return record


def fresh(db, record: Record) -> Record:
    db.expire_all()
    return db.get(Record, record.id)


def field(body: dict, key: str) -> dict:
    return next(f for f in body["fields"] if f["key"] == key)


def without_option(body: dict, key: str, value: str) -> dict:
    spec = field(body, key)
    spec["options"] = [o for o in spec["options"] if o["value"] != value]
    return body


def draft(db, admin, app, body: dict) -> None:
    _, problems = definitions.save_draft(db, admin, app, body["kind"], body["key"], body)
    assert problems == []
    db.commit()


def impacts_of(db, app, kind: str = "entity", key: str = "deal") -> dict[str, impact.Impact]:
    return {i.id: i for i in impact.preview(db, app, kind, key)}


def publish(db, admin, app, choices: dict | None, kind: str = "entity", key: str = "deal", **options):
    version = definitions.publish(db, admin, app, kind, key, impact_choices=choices, **options)
    db.commit()
    return version


def refused(db, admin, app, choices: dict | None, kind: str = "entity", key: str = "deal") -> ImpactUnresolved:
    with pytest.raises(ImpactUnresolved) as caught:
        definitions.publish(db, admin, app, kind, key, impact_choices=choices)
    db.rollback()
    return caught.value


def changes(db, record: Record) -> list[ChangeLog]:
    return list(db.scalars(select(ChangeLog).where(ChangeLog.record_id == record.id).order_by(ChangeLog.id)))


WON = "option_removed:deal.stage.won"


def won_removed(db, admin, sales):
    """Two live deals in Won (one more deleted) and one in Lead; a draft without the Won option."""
    won = [deal(db, admin, sales, stage="won", name=f"W{i}") for i in range(2)]
    deleted(db, admin, sales, stage="won")
    lead = deal(db, admin, sales, stage="lead")
    draft(db, admin, sales, without_option(deal_body(), "stage", "won"))
    return won, lead


# --- counting --------------------------------------------------------------------------------

def test_removed_option_counts_live_records_holding_it(db, admin, sales):
    won, _ = won_removed(db, admin, sales)
    (found,) = impact.preview(db, sales, "entity", "deal")
    assert found.to_json() == {
        "id": WON, "code": "option_removed", "count": 2, "message": found.message,
        "choices": ["migrate", "proceed", "block"], "targets": ["lead", "proposal"],
        "sample": [r.id for r in won], "rules": []}
    assert "Option 'Won' (won) is removed from field 'Stage' of Deal, and 2 live Deal records hold it" in found.message


def test_removed_multiselect_option_counts_records_containing_it(db, admin, sales):
    deal(db, admin, sales, products=["crm", "bi"])
    deal(db, admin, sales, products=["bi"])
    deal(db, admin, sales, products=["erp"])
    deal(db, admin, sales)
    deleted(db, admin, sales, products=["bi"])
    draft(db, admin, sales, without_option(deal_body(), "products", "bi"))
    found = impacts_of(db, sales)["option_removed:deal.products.bi"]
    assert found.count == 2
    assert "2 live Deal records contain it" in found.message


def test_newly_required_counts_missing_null_and_empty_text_but_not_deleted_records(db, admin, sales):
    deal(db, admin, sales, website="https://acme.example.com")
    missing = deal(db, admin, sales)
    null = store_raw(db, deal(db, admin, sales), website=None)
    empty = store_raw(db, deal(db, admin, sales), website="")
    deleted(db, admin, sales)
    body = deal_body()
    field(body, "website")["required"] = True
    draft(db, admin, sales, body)
    found = impacts_of(db, sales)["newly_required:deal.website"]
    assert (found.count, found.sample) == (3, [missing.id, null.id, empty.id])
    assert found.choices == ["migrate", "proceed", "block"] and found.targets == []
    assert "Field 'Website' of Deal becomes required, and 3 live Deal records have no value in it" in found.message


def test_newly_required_list_counts_empty_lists_and_text_counts_only_empty_text(db, admin, sales):
    store_raw(db, deal(db, admin, sales), products=[])
    deal(db, admin, sales)
    deal(db, admin, sales, products=["crm"], notes="[]")  # "[]" is text here, not an empty list
    body = deal_body()
    field(body, "products")["required"] = True
    field(body, "notes")["required"] = True
    draft(db, admin, sales, body)
    found = impacts_of(db, sales)
    assert found["newly_required:deal.products"].count == 2
    assert found["newly_required:deal.products"].targets == ["crm", "erp", "bi"]
    assert found["newly_required:deal.notes"].count == 2


def test_a_new_required_field_counts_every_live_record_and_fills_a_picked_option(db, admin, sales):
    live = [deal(db, admin, sales) for _ in range(3)]
    deleted(db, admin, sales)
    body = deal_body()
    body["fields"].append({"key": "region", "type": "select", "label": "Region", "required": True,
                           "options": [{"value": "east", "label": "East"}, {"value": "west", "label": "West"}]})
    draft(db, admin, sales, body)
    found = impacts_of(db, sales)["newly_required:deal.region"]
    assert (found.count, found.targets) == (3, ["east", "west"])
    # A value picked from the targets may come as "to" (as for options and stages) or as "value".
    version = publish(db, admin, sales, {found.id: {"action": "migrate", "to": "west"}})
    assert version.impact[0]["value"] == "west"
    assert {fresh(db, r).data["region"] for r in live} == {"west"}


def test_a_required_field_shown_under_a_condition_counts_only_records_showing_it(db, admin, sales):
    won = deal(db, admin, sales, stage="won")
    deal(db, admin, sales, stage="lead")
    body = deal_body()
    body["fields"].append({"key": "win_reason", "type": "text", "label": "Why we won", "required": True,
                           "visible_when": {"field": "stage", "op": "eq", "value": "won"}})
    draft(db, admin, sales, body)
    found = impacts_of(db, sales)["newly_required:deal.win_reason"]
    assert (found.count, found.sample) == (1, [won.id])


def test_unique_fields_cannot_be_filled_with_one_value(db, admin, sales):
    deal(db, admin, sales)
    body = deal_body()
    field(body, "contact_email").update(required=True, unique=True)
    draft(db, admin, sales, body)
    assert impacts_of(db, sales)["newly_required:deal.contact_email"].choices == ["proceed", "block"]


def flag_rule() -> dict:
    return {"formloom": 1, "kind": "rule", "key": "flag_strategic", "label": "Flag strategic deals", "entity": "deal",
            "trigger": {"type": "created"}, "condition": {"field": "strategic", "op": "eq", "value": True},
            "actions": [{"type": "update", "values": {"notes": "Strategic"}}]}


def test_removed_field_used_by_rules_and_forms_counts_the_definitions(db, admin, sales):
    definitions.save_and_publish(db, admin, sales, flag_rule())
    definitions.save_and_publish(db, admin, sales, {
        "formloom": 1, "kind": "form", "key": "deal_quick", "label": "Quick deal", "entity": "deal",
        "sections": [{"label": "Main", "fields": ["name", "seats", "notes"]}]})
    db.commit()
    body = deal_body()
    body["fields"] = [f for f in body["fields"] if f["key"] not in ("strategic", "notes", "seats", "website")]
    draft(db, admin, sales, body)
    found = {i.id: i.to_json() for i in impact.preview(db, sales, "entity", "deal")}
    assert sorted(found) == ["form_field_removed:deal.notes", "form_field_removed:deal.seats",
                             "rule_field_removed:deal.notes", "rule_field_removed:deal.strategic"]
    rule = found["rule_field_removed:deal.strategic"]
    assert (rule["count"], rule["rules"], rule["choices"]) == (1, ["flag_strategic"], ["proceed", "block"])
    assert "Field 'Strategic' (strategic) is removed from Deal, but 1 published rule (flag_strategic) uses it" \
        in rule["message"]


def test_unchanged_options_and_fields_have_no_impact(db, admin, sales):
    deal(db, admin, sales, stage="won", products=["bi"])
    body = deal_body()
    field(body, "stage")["options"].append({"value": "lost", "label": "Lost"})
    field(body, "name")["label"] = "Title"
    draft(db, admin, sales, body)
    assert impact.preview(db, sales, "entity", "deal") == []


def test_preview_is_empty_without_a_draft_a_published_version_or_a_sound_shape(db, admin, sales):
    deal(db, admin, sales, stage="won")
    assert impact.preview(db, sales, "entity", "deal") == []
    assert impact.preview(db, sales, "entity", "nothing") == []
    body = without_option(deal_body(), "stage", "won")
    field(body, "products")["options"] = "crm, erp"  # saved as a draft with a problem; not publishable
    _, problems = definitions.save_draft(db, admin, sales, "entity", "deal", body)
    assert [p.path for p in problems] == ["$.fields[10].options"]
    assert impact.preview(db, sales, "entity", "deal") == []


# --- choices ---------------------------------------------------------------------------------

def test_migrate_moves_values_and_writes_history_caused_by_the_definition(db, admin, sales):
    won, lead = won_removed(db, admin, sales)
    before = [(r.version, r.updated_at) for r in won]
    version = publish(db, admin, sales, {WON: {"action": "migrate", "to": "proposal"}})
    assert version.version == 2
    assert version.impact == [{"id": WON, "code": "option_removed", "count": 2, "action": "migrate",
                               "to": "proposal"}]
    for record, (number, updated_at) in zip(won, before, strict=True):
        record = fresh(db, record)
        assert record.data["stage"] == "proposal"
        assert record.version == number + 1 and record.updated_at > updated_at
        last = changes(db, record)[-1]
        assert (last.action, last.diff, last.cause_kind, last.cause_ref, last.actor_id) == (
            "update", {"stage": ["won", "proposal"]}, "definition", "entity:deal@2", admin.id)
    assert len(changes(db, fresh(db, lead))) == 1  # only its creation


def test_migrate_replaces_a_multiselect_option_without_duplicates(db, admin, sales):
    both = deal(db, admin, sales, products=["crm", "bi"])
    only = deal(db, admin, sales, products=["bi", "erp"])
    gone = deleted(db, admin, sales, products=["bi"])
    draft(db, admin, sales, without_option(deal_body(), "products", "bi"))
    publish(db, admin, sales, {"option_removed:deal.products.bi": {"action": "migrate", "to": "crm"}})
    assert fresh(db, both).data["products"] == ["crm"]
    assert fresh(db, only).data["products"] == ["crm", "erp"]
    assert fresh(db, gone).data["products"] == ["bi"]  # deleted records are left as they were


def test_one_history_entry_per_record_for_several_migrations(db, admin, sales):
    record = deal(db, admin, sales, stage="won")
    body = without_option(deal_body(), "stage", "won")
    field(body, "seats")["required"] = True
    draft(db, admin, sales, body)
    version = publish(db, admin, sales, {WON: {"action": "migrate", "to": "lead"},
                                         "newly_required:deal.seats": {"action": "migrate", "value": "12"}})
    record = fresh(db, record)
    assert record.data["stage"] == "lead" and record.data["seats"] == 12  # the fill value is coerced
    assert record.version == 2
    assert changes(db, record)[-1].diff == {"stage": ["won", "lead"], "seats": [None, 12]}
    assert version.impact == [  # in the order of the entity's fields
        {"id": "newly_required:deal.seats", "code": "newly_required", "count": 1, "action": "migrate", "value": 12},
        {"id": WON, "code": "option_removed", "count": 1, "action": "migrate", "to": "lead"}]


def test_block_refuses_and_changes_nothing(db, admin, sales):
    won, _ = won_removed(db, admin, sales)
    error = refused(db, admin, sales, {WON: {"action": "block"}})
    assert error.field_messages() == {f"impact.{WON}": [error.problems[0].message]}
    assert error.problems[0].message.startswith("Publishing is blocked by your choice: Option 'Won'")
    assert fresh(db, won[0]).data["stage"] == "won"
    assert catalog.published_version(db, sales, "entity", "deal").version == 1
    assert definitions.get(db, sales, "entity", "deal").draft is not None  # the draft is kept


def test_proceed_keeps_stored_values_and_records_the_decision(db, admin, sales):
    won, _ = won_removed(db, admin, sales)
    version = publish(db, admin, sales, {WON: {"action": "proceed"}}, note="Won moves to the pipeline")
    assert version.impact == [{"id": WON, "code": "option_removed", "count": 2, "action": "proceed"}]
    assert version.note == "Won moves to the pipeline"
    record = fresh(db, won[0])
    assert record.data["stage"] == "won" and len(changes(db, record)) == 1
    # The value stays stored; editing the record under the new version asks for a listed option.
    with pytest.raises(RecordValidationError) as caught:
        records.update(db, admin, Cause.for_user(admin), sales, record, {"name": "Renamed"}, record.version)
    assert caught.value.fields == {"stage": ["Stage must be one of: Lead, Proposal; got 'won'."]}


def test_a_missing_choice_is_refused_naming_every_impact(db, admin, sales):
    deal(db, admin, sales, stage="won")
    body = without_option(deal_body(), "stage", "won")
    field(body, "seats")["required"] = True
    draft(db, admin, sales, body)
    error = refused(db, admin, sales, {WON: {"action": "proceed"}, "newly_required:deal.seats": {"action": "maybe"}})
    assert [p.path for p in error.problems] == ["impact.newly_required:deal.seats"]
    assert "Got the choice 'maybe'; say what happens (migrate / proceed / block)" in error.problems[0].message
    assert [i["id"] for i in error.extra()["impacts"]] == ["newly_required:deal.seats", WON]
    error = refused(db, admin, sales, {})
    assert [p.path for p in error.problems] == ["impact.newly_required:deal.seats", f"impact.{WON}"]
    assert error.code == "definition_invalid" and error.http_status == 422


@pytest.mark.parametrize("spec, value, fragment", [
    ("seats", "many", "The value to fill Seats with must be a whole number, got 'many'; give a valid one."),
    ("seats", 0, "The value to fill Seats with must be at least 1; give a valid one."),
    ("seats", "", "Give the value to fill Seats with in the 1 records"),
    ("website", "ftp://x", "The value to fill Website with must be a web address"),
    ("owner", 999, "The value to fill Owner with must be an active member; #999 is not one."),
    ("products", "hr", "The value to fill Products with must be one of: CRM, ERP, BI; got 'hr'; give a valid one."),
])
def test_a_bad_fill_value_is_refused_naming_the_field(db, admin, sales, spec, value, fragment):
    record = deal(db, admin, sales)
    body = deal_body()
    field(body, spec)["required"] = True
    draft(db, admin, sales, body)
    error = refused(db, admin, sales, {f"newly_required:deal.{spec}": {"action": "migrate", "value": value}})
    (problem,) = error.problems
    assert problem.path == f"impact.newly_required:deal.{spec}" and fragment in problem.message
    assert spec not in fresh(db, record).data


def test_a_migration_target_must_be_a_remaining_option(db, admin, sales):
    won_removed(db, admin, sales)
    error = refused(db, admin, sales, {WON: {"action": "migrate", "to": "won"}})
    assert error.field_messages() == {f"impact.{WON}": [
        "'won' is not a place to migrate to for option_removed:deal.stage.won; use one of: lead, proposal."]}


def test_callers_without_choices_proceed_by_default_and_it_is_recorded(db, admin, sales):
    won, _ = won_removed(db, admin, sales)
    version = definitions.save_and_publish(db, admin, sales, without_option(deal_body(), "stage", "won"))
    assert version.impact == [{"id": WON, "code": "option_removed", "count": 2, "action": "proceed",
                               "default": True}]
    assert fresh(db, won[0]).data["stage"] == "won"


def test_a_publish_without_impact_stores_no_decisions(db, admin, sales):
    deal(db, admin, sales)
    body = deal_body()
    body["fields"].append({"key": "region", "type": "text", "label": "Region"})
    draft(db, admin, sales, body)
    version = publish(db, admin, sales, {})
    assert version.version == 2 and version.impact is None and version.note is None


# --- pipelines -------------------------------------------------------------------------------

def without_negotiation() -> dict:
    body = pipeline_body()
    body["stages"] = [s for s in body["stages"] if s["key"] != "negotiation"]
    body["transitions"] = "any"
    return body


def test_removed_stage_is_an_impact_that_migrates_through_the_pipeline(db, admin, rep, pipes):
    company = records.create(db, rep, Cause.for_user(rep), pipes, "company", {"name": "Acme"})
    held = [records.create(db, rep, Cause.for_user(rep), pipes, "deal",
                           {"name": f"N{i}", "stage": "negotiation", "amount": "10", "company": company.id,
                            "close_date": "2030-01-01"}) for i in range(2)]
    db.commit()
    draft(db, admin, pipes, without_negotiation())
    (found,) = impact.preview(db, pipes, "pipeline", "deals")
    assert (found.id, found.count, found.choices) == ("stage_removed:deals.negotiation", 2, ["migrate", "block"])
    assert found.targets == ["lead", "qualified", "proposal", "won", "lost"]
    assert "Stage 'Negotiation' (negotiation) is removed from pipeline 'Deals', and 2 live Deal records are in it" \
        in found.message
    error = refused(db, admin, pipes, {found.id: {"action": "proceed"}}, "pipeline", "deals")
    assert "Stage 'negotiation' is removed but 2 deal records are in it" in error.field_messages()["$.stages"][0]
    version = publish(db, admin, pipes, {found.id: {"action": "migrate", "to": "proposal"}}, "pipeline", "deals")
    assert version.impact == [{"id": found.id, "code": "stage_removed", "count": 2, "action": "migrate",
                               "to": "proposal"}]
    record = fresh(db, held[0])
    assert record.data["stage"] == "proposal"
    assert pipelines.visits(db, record)[-1].stage == "proposal"
    assert changes(db, record)[-1].cause_ref == "pipeline:deals@2"


def test_stage_moves_still_work_as_shorthand(db, admin, rep, pipes):
    company = records.create(db, rep, Cause.for_user(rep), pipes, "company", {"name": "Acme"})
    record = records.create(db, rep, Cause.for_user(rep), pipes, "deal", {
        "name": "N", "stage": "negotiation", "amount": "10", "company": company.id, "close_date": "2030-01-01"})
    db.commit()
    draft(db, admin, pipes, without_negotiation())
    version = publish(db, admin, pipes, None, "pipeline", "deals", stage_moves={"negotiation": "lead"})
    assert version.impact[0]["to"] == "lead" and fresh(db, record).data["stage"] == "lead"


def test_removing_the_stage_field_can_only_be_blocked(db, admin, pipes):
    body = pipeline_deal_body()
    body["fields"] = [f for f in body["fields"] if f["key"] not in ("stage", "discount")]
    draft(db, admin, pipes, body)
    found = impacts_of(db, pipes)
    assert found["pipeline_field_removed:deal.stage"].choices == ["block"]
    assert found["pipeline_field_removed:deal.discount"].choices == ["proceed", "block"]
    with pytest.raises(DefinitionError):
        definitions.publish(db, admin, pipes, "entity", "deal")


# --- REST ------------------------------------------------------------------------------------

def test_rest_publish_without_choices_answers_422_with_the_impacts(db, client, admin, sales, admin_headers):
    won, _ = won_removed(db, admin, sales)
    response = client.post(f"{BASE}/definitions/entity/deal/publish", json={}, headers=admin_headers)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "definition_invalid"
    assert list(error["fields"]) == [f"impact.{WON}"]
    (item,) = error["impacts"]
    assert {k: item[k] for k in ("id", "code", "count", "choices", "targets", "sample")} == {
        "id": WON, "code": "option_removed", "count": 2, "choices": ["migrate", "proceed", "block"],
        "targets": ["lead", "proposal"], "sample": [r.id for r in won]}
    assert fresh(db, won[0]).data["stage"] == "won"
    assert client.post(f"{BASE}/definitions/entity/deal/publish", headers=admin_headers).status_code == 422


def test_rest_publish_with_choices_migrates_and_stores_the_decisions(db, client, admin, sales, admin_headers):
    won, _ = won_removed(db, admin, sales)
    response = client.post(f"{BASE}/definitions/entity/deal/publish", headers=admin_headers, json={
        "impact": {WON: {"action": "migrate", "to": "lead"}}, "note": "Won deals live in the pipeline now"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    decisions = [{"id": WON, "code": "option_removed", "count": 2, "action": "migrate", "to": "lead"}]
    assert (body["version"], body["impact"], body["note"]) == (2, decisions, "Won deals live in the pipeline now")
    db.expire_all()
    stored = db.scalar(select(DefinitionVersion).where(DefinitionVersion.version == 2,
                                                       DefinitionVersion.body["key"].as_string() == "deal"))
    assert stored.impact == decisions
    history = client.get(f"{BASE}/records/deal/{won[0].id}/history", headers=admin_headers).get_json()["items"]
    assert history[0]["cause"] == {"kind": "definition", "ref": "entity:deal@2"}
    assert history[0]["changes"] == {"stage": ["won", "lead"]}


def test_rest_block_answers_422_and_changes_nothing(db, client, admin, sales, admin_headers):
    won, _ = won_removed(db, admin, sales)
    response = client.post(f"{BASE}/definitions/entity/deal/publish", headers=admin_headers,
                           json={"impact": {WON: {"action": "block"}}})
    assert response.status_code == 422
    assert "you chose to block it" in response.get_json()["error"]["message"]
    assert fresh(db, won[0]).data["stage"] == "won"
    assert catalog.published_version(db, sales, "entity", "deal").version == 1


@pytest.mark.parametrize("payload, fragment", [
    ([], "must be a JSON object"),
    ({"impact": []}, "'impact' must map impact ids to choices"),
    ({"impact": {WON: "migrate"}}, f"'impact.{WON}' must be an object with \"action\""),
    ({"impact": {WON: {"action": "delete"}}}, f"'impact.{WON}' must be an object with \"action\""),
    ({"impact": {WON: {"action": "proceed", "default": True}}}, "unknown key default"),
    ({"stage_moves": {"won": 3}}, "'stage_moves' must map removed stage keys"),
    ({"note": 5}, "'note' must be text of at most 500 characters"),
    ({"note": "x" * 501}, "'note' must be text of at most 500 characters"),
])
def test_rest_malformed_choices_are_a_clear_400(db, client, admin, sales, admin_headers, payload, fragment):
    won_removed(db, admin, sales)
    response = client.post(f"{BASE}/definitions/entity/deal/publish", json=payload, headers=admin_headers)
    assert response.status_code == 400
    assert fragment in response.get_json()["error"]["message"]

"""The ``aggregate`` rule action: totals of linked records, computed in SQL on a controlled clock."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from formloom.builder import definitions
from formloom.platform.auth import Cause
from formloom.platform.errors import DefinitionError
from formloom.platform.models import ChangeLog, Record
from formloom.runtime import dispatch, records
from formloom.runtime.validation import Situation
from tests.conftest import bearer
from tests.factories import company_body

NIGHT = datetime(2030, 6, 15, 2, 0, tzinfo=UTC)  # 02:00 UTC, the schedule's time (the app runs in UTC)
TIERED = company_body(fields=[
    {"key": "name", "type": "text", "label": "Company name", "required": True},
    {"key": "won_12m", "type": "currency", "label": "Won in 12 months"},
    {"key": "deals_won", "type": "integer", "label": "Deals won"},
    {"key": "last_win", "type": "date", "label": "Last win"},
    {"key": "tier", "type": "select", "label": "Tier",
     "options": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}, {"value": "c", "label": "C"}]}])
WON_LAST_YEAR = {"all": [{"field": "stage", "op": "eq", "value": "won"},
                         {"field": "close_date", "op": "gte", "value": {"$today": -365}}]}


def aggregate(field: str, function: str, value_field: str | None = "amount", where: dict | None = WON_LAST_YEAR) -> dict:
    source = {"entity": "deal", "link_field": "company", "function": function}
    if value_field:
        source["value_field"] = value_field
    if where is not None:
        source["where"] = where
    return {"type": "aggregate", "field": field, "source": source}


def tier_rule(*actions: dict) -> dict:
    return {"formloom": 1, "kind": "rule", "key": "nightly_tier", "label": "Nightly tier", "entity": "company",
            "trigger": {"type": "schedule", "every": "day", "at": "02:00"},
            "actions": list(actions) or [
                aggregate("won_12m", "sum"),
                {"type": "update", "formulas": {
                    "tier": 'IF(won_12m >= 500000, "a", IF(won_12m >= 100000, "b", "c"))'}}]}


@pytest.fixture
def tiered(db, admin, sales):
    definitions.save_and_publish(db, admin, sales, TIERED)
    db.commit()
    return sales


def company(db, admin, app, name: str = "Acme") -> Record:
    record = records.create(db, admin, Cause.for_user(admin), app, "company", {"name": name})
    db.commit()
    return record


def deal(db, admin, app, company_id: int, amount: str, closed: datetime, stage: str = "won") -> Record:
    record = records.create(db, admin, Cause.for_user(admin), app, "deal",
                            {"name": f"Deal {amount}", "company": company_id, "amount": amount, "stage": stage,
                             "close_date": closed.date().isoformat()},
                            situation=Situation(user_id=admin.id, now=NIGHT))
    db.commit()
    return record


def run_night(app, db, night: datetime) -> None:
    """Schedule the nightly run (from the evening before) and let it fire at 02:00."""
    dispatch.run_pending(app, now=night - timedelta(hours=6))
    dispatch.run_pending(app, now=night)
    db.rollback()
    db.expire_all()


def test_only_deals_won_in_the_last_twelve_months_count(app, db, admin, tiered):
    definitions.save_and_publish(db, admin, tiered, tier_rule())
    db.commit()
    acme = company(db, admin, tiered)
    deal(db, admin, tiered, acme.id, "300000", NIGHT - timedelta(days=395))  # 13 months ago
    deal(db, admin, tiered, acme.id, "40000", NIGHT - timedelta(days=30))  # last month
    deal(db, admin, tiered, acme.id, "90000", NIGHT - timedelta(days=10), stage="proposal")  # not won
    run_night(app, db, NIGHT)
    assert db.get(Record, acme.id).data["won_12m"] == "40000.00"
    assert db.get(Record, acme.id).data["tier"] == "c"


def test_tier_moves_from_c_to_b_to_a_as_won_amounts_grow(app, db, admin, tiered):
    definitions.save_and_publish(db, admin, tiered, tier_rule())
    db.commit()
    acme = company(db, admin, tiered)
    tiers = []
    for day, amount in enumerate(("50000", "60000", "400000")):
        deal(db, admin, tiered, acme.id, amount, NIGHT - timedelta(days=40))
        run_night(app, db, NIGHT + timedelta(days=day))
        tiers.append((db.get(Record, acme.id).data["won_12m"], db.get(Record, acme.id).data["tier"]))
    assert tiers == [("50000.00", "c"), ("110000.00", "b"), ("510000.00", "a")]


def test_deleted_deals_do_not_count_and_an_unchanged_total_leaves_no_history(app, db, admin, tiered):
    definitions.save_and_publish(db, admin, tiered, tier_rule())
    db.commit()
    acme = company(db, admin, tiered)
    keep = deal(db, admin, tiered, acme.id, "120000", NIGHT - timedelta(days=5))
    gone = deal(db, admin, tiered, acme.id, "450000", NIGHT - timedelta(days=5))
    records.delete(db, admin, Cause.for_user(admin), tiered, gone)
    db.commit()
    run_night(app, db, NIGHT)
    assert (db.get(Record, acme.id).data["won_12m"], db.get(Record, acme.id).data["tier"]) == ("120000.00", "b")
    changes = db.scalar(select(ChangeLog).where(ChangeLog.record_id == acme.id, ChangeLog.cause_kind == "rule"))
    assert changes is not None and changes.cause_ref.startswith("run:")
    logged = len(list(db.scalars(select(ChangeLog).where(ChangeLog.record_id == acme.id))))
    run_night(app, db, NIGHT + timedelta(days=1))  # nothing changed: nothing written
    assert len(list(db.scalars(select(ChangeLog).where(ChangeLog.record_id == acme.id)))) == logged
    assert keep.id


def test_count_min_and_max_of_linked_deals(app, db, admin, tiered):
    definitions.save_and_publish(db, admin, tiered, tier_rule(
        aggregate("deals_won", "count", value_field=None), aggregate("last_win", "max", value_field="close_date")))
    db.commit()
    acme, other = company(db, admin, tiered), company(db, admin, tiered, "Other")
    deal(db, admin, tiered, acme.id, "10", NIGHT - timedelta(days=3))
    deal(db, admin, tiered, acme.id, "10", NIGHT - timedelta(days=100))
    deal(db, admin, tiered, other.id, "10", NIGHT - timedelta(days=1))
    run_night(app, db, NIGHT)
    data = db.get(Record, acme.id).data
    assert (data["deals_won"], data["last_win"]) == (2, (NIGHT - timedelta(days=3)).date().isoformat())
    assert db.get(Record, other.id).data["deals_won"] == 1


BAD = {
    "link_field_not_a_relation_back": (
        {"type": "aggregate", "field": "won_12m",
         "source": {"entity": "deal", "link_field": "name", "function": "sum", "value_field": "amount"}},
        "$.actions[0].source.link_field", "relation field of 'deal' pointing to 'company'"),
    "sum_of_text": (aggregate("won_12m", "sum", value_field="name"),
                    "$.actions[0].source.value_field", "needs a number field"),
    "unknown_target": (aggregate("revenue", "sum"), "$.actions[0].field", "has no field 'revenue'"),
    "date_into_number": (aggregate("won_12m", "max", value_field="close_date"), "$.actions[0].field",
                         "gives a date value"),
    "where_not_sql": (aggregate("won_12m", "sum", where={"field": "name", "op": "starts_with", "value": "A"}),
                      "$.actions[0].source.where.op", "runs in the database"),
    "sum_without_value": (aggregate("won_12m", "sum", value_field=None), "$.actions[0].source",
                          "needs 'value_field'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_wrong_aggregate_is_refused_at_its_path(db, admin, tiered, case):
    action, path, words = BAD[case]
    with pytest.raises(DefinitionError) as caught:
        definitions.save_and_publish(db, admin, tiered, tier_rule(action))
    db.rollback()
    problems = {p.path: p.message for p in caught.value.problems}
    assert path in problems, problems
    assert words in problems[path]


def test_a_dry_run_shows_the_total_and_tier_and_changes_nothing(client, db, admin, tiered):
    definitions.save_and_publish(db, admin, tiered, tier_rule())
    db.commit()
    acme = company(db, admin, tiered)
    deal(db, admin, tiered, acme.id, "150000", datetime.now(UTC) - timedelta(days=3))
    response = client.post("/api/v1/apps/sales/rules/nightly_tier/dry-run", json={}, headers=bearer(db, admin))
    assert response.status_code == 200, response.get_data(as_text=True)
    [item] = [i for i in response.get_json()["items"] if i["record_id"] == acme.id]
    assert item["actions"][0]["result"] == {"field": "won_12m", "value": "150000.00", "changed": True}
    assert item["actions"][1]["status"] == "succeeded"
    db.expire_all()
    assert "won_12m" not in db.get(Record, acme.id).data and "tier" not in db.get(Record, acme.id).data

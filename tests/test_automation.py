"""Automation: rule checks, triggers, timed rules on a controlled clock, actions, webhooks, loops, retries.

Everything runs in-process with :func:`dispatch.run_pending` at a chosen ``now``; the database is
the only state, so "a restart" is a new Flask app on the same database.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from formloom import create_app
from formloom.builder import definitions
from formloom.platform import auth
from formloom.platform.auth import Cause
from formloom.platform.errors import DefinitionError
from formloom.platform.models import (
    ActionRun,
    ChangeLog,
    Notification,
    Record,
    RuleRun,
    ScheduledJob,
    WebhookDelivery,
)
from formloom.runtime import approvals, automation, catalog, dispatch, notifications, pipelines, records
from formloom.runtime.pipelines import MoveStatus
from formloom.runtime.validation import Situation
from tests.factories import make_user

T0 = datetime(2030, 1, 2, 3, 0, tzinfo=UTC)  # a Wednesday; 11:00 in Shanghai
SHANGHAI = "Asia/Shanghai"  # UTC+8, no daylight saving


# --- helpers ---------------------------------------------------------------------------------

def rule(key: str, trigger: dict, actions: list[dict], entity: str = "deal", **extra) -> dict:
    return {"formloom": 1, "kind": "rule", "key": key, "label": key.replace("_", " ").capitalize(),
            "entity": entity, "trigger": trigger, "actions": actions, **extra}


def publish(db, admin, app, body: dict) -> None:
    definitions.save_and_publish(db, admin, app, body)
    db.commit()


def set_app_options(db, admin, app, **options) -> None:
    """Publish the app definition again with ``time_zone``, ``quiet_hours``..."""
    body = dict(catalog.published_version(db, app, "app", app.key).body)
    body.update(options)
    publish(db, admin, app, body)


def member(db, app, username: str, role: str = "rep", **extra):
    user = make_user(db, username, display_name=username.capitalize(), **extra)
    auth.grant_app(db, user, app, role=role)
    db.commit()
    return user


def new_deal(db, user, app, now: datetime | None = None, **values) -> Record:
    values.setdefault("name", "Big deal")
    record = records.create(db, user, Cause.for_user(user), app, "deal", values,
                            situation=Situation(user_id=user.id, now=now or T0))
    db.commit()
    return record


def edit(db, user, app, record: Record, now: datetime | None = None, **values) -> Record:
    records.update(db, user, Cause.for_user(user), app, record, values, record.version,
                   situation=Situation(user_id=user.id, now=now or T0))
    db.commit()
    return record


def run(app, db, now: datetime | None = None) -> int:
    """Run everything due at ``now``, then read the database afresh."""
    count = dispatch.run_pending(app, now=now)
    db.rollback()
    db.expire_all()
    return count


def runs(db, rule_key: str | None = None) -> list[RuleRun]:
    query = select(RuleRun).order_by(RuleRun.id)
    if rule_key is not None:
        query = query.where(RuleRun.rule_key == rule_key)
    return list(db.scalars(query))


def inbox_titles(db, user, now: datetime | None = None) -> list[str]:
    return [n.title for n in notifications.inbox(db, user, now=now)]


def job_for(db, rule_key: str, record: Record) -> ScheduledJob:
    return db.scalar(select(ScheduledJob).where(ScheduledJob.rule_key == rule_key,
                                                ScheduledJob.record_id == record.id))


def notify_owner(title: str) -> dict:
    return {"type": "notify", "to": {"owner": True}, "title": title}


# --- rule definitions are checked where they go wrong -------------------------------------------

def _assign(**extra) -> dict:
    return {"type": "assign", "field": "owner", "strategy": "round_robin", "users": ["rep"], **extra}


BAD_RULES = {
    "unknown_entity": (
        rule("r", {"type": "created"}, [notify_owner("x")], entity="invoice"),
        "$.entity", "no entity 'invoice'"),
    "field_changed_missing_field": (
        rule("r", {"type": "field_changed", "field": "colour"}, [notify_owner("x")]),
        "$.trigger.field", "no field 'colour'"),
    "date_reached_on_a_number": (
        rule("r", {"type": "date_reached", "field": "amount"}, [notify_owner("x")]),
        "$.trigger.field", "must be a date or date-and-time field"),
    "stage_entered_without_pipeline": (
        rule("r", {"type": "stage_entered", "stage": "lead"}, [notify_owner("x")], entity="company"),
        "$.trigger.type", "has no pipeline"),
    "stage_entered_unknown_stage": (
        rule("r", {"type": "stage_entered", "stage": "signed"}, [notify_owner("x")]),
        "$.trigger.stage", "no stage 'signed'"),
    "assign_to_a_text_field": (
        rule("r", {"type": "created"}, [_assign(field="name")]),
        "$.actions[0].field", "must be a user field"),
    "assign_without_people": (
        rule("r", {"type": "created"}, [{"type": "assign", "field": "owner", "strategy": "least_open"}]),
        "$.actions[0]", "'users' (usernames) or 'role'"),
    "create_link_not_pointing_back": (
        rule("r", {"type": "created"}, [{"type": "create", "entity": "deal", "link_field": "company",
                                         "values": {"name": "Follow-up"}}]),
        "$.actions[0].link_field", "must be a relation field of 'deal' pointing to 'deal'"),
    "update_unknown_field": (
        rule("r", {"type": "created"}, [{"type": "update", "values": {"priority": "high"}}]),
        "$.actions[0].values.priority", "no field 'priority'"),
    "formula_that_does_not_compile": (
        rule("r", {"type": "created"}, [{"type": "update", "formulas": {"amount": "amount * * 2"}}]),
        "$.actions[0].formulas.amount", ""),
    "webhook_url_without_http": (
        rule("r", {"type": "created"}, [{"type": "webhook", "url": "ftp://example.com/hook"}]),
        "$.actions[0].url", "starts with https://"),
}


@pytest.mark.parametrize("case", list(BAD_RULES))
def test_rule_definition_problem_is_reported_at_its_path(db, admin, pipes, case):
    body, path, words = BAD_RULES[case]
    with pytest.raises(DefinitionError) as caught:
        definitions.save_and_publish(db, admin, pipes, body)
    db.rollback()
    problems = {p.path: p.message for p in caught.value.problems}
    assert path in problems, problems
    assert words in problems[path]
    assert catalog.published_version(db, pipes, "rule", "r") is None


def test_a_correct_rule_publishes(db, admin, pipes):
    publish(db, admin, pipes, rule("ok", {"type": "field_changed", "field": "stage", "to": "won"},
                                   [notify_owner("Won: {title}"), _assign()]))
    assert catalog.published_version(db, pipes, "rule", "ok").version == 1


# --- event triggers ----------------------------------------------------------------------------

def test_created_updated_and_deleted_rules_fire_on_their_own_event(app, db, admin, rep, pipes):
    for kind in ("created", "updated", "deleted"):
        publish(db, admin, pipes, rule(f"on_{kind}", {"type": kind}, [notify_owner(f"{kind}: {{title}}")]))
    deal = new_deal(db, rep, pipes)
    run(app, db)
    assert Counter(r.rule_key for r in runs(db)) == {"on_created": 1}
    edit(db, rep, pipes, deal, amount="10")
    run(app, db)
    assert Counter(r.rule_key for r in runs(db)) == {"on_created": 1, "on_updated": 1}
    records.delete(db, rep, Cause.for_user(rep), pipes, deal)
    db.commit()
    run(app, db)
    assert Counter(r.rule_key for r in runs(db)) == {"on_created": 1, "on_updated": 1, "on_deleted": 1}
    assert {r.status for r in runs(db)} == {"succeeded"}
    assert inbox_titles(db, rep) == ["deleted: Big deal", "updated: Big deal", "created: Big deal"]


def test_field_changed_fires_only_for_the_matching_from_and_to(app, db, admin, rep, pipes):
    publish(db, admin, pipes, rule("renamed", {"type": "field_changed", "field": "name", "from": "A", "to": "B"},
                                   [notify_owner("Renamed {title}")]))
    deal = new_deal(db, rep, pipes, name="A")
    edit(db, rep, pipes, deal, amount="5")  # another field
    edit(db, rep, pipes, deal, name="C")  # from A, but not to B
    edit(db, rep, pipes, deal, name="A")  # to A
    run(app, db)
    assert runs(db, "renamed") == []
    edit(db, rep, pipes, deal, name="B")
    run(app, db)
    assert [r.status for r in runs(db, "renamed")] == ["succeeded"]
    assert inbox_titles(db, rep) == ["Renamed B"]


def test_stage_entered_and_left_fire_on_a_move(app, db, admin, rep, pipes):
    publish(db, admin, pipes, rule("entered_qualified", {"type": "stage_entered", "stage": "qualified"},
                                   [notify_owner("Qualified: {title}")]))
    publish(db, admin, pipes, rule("left_lead", {"type": "stage_left", "stage": "lead"},
                                   [notify_owner("Out of lead: {title}")]))
    company = records.create(db, rep, Cause.for_user(rep), pipes, "company", {"name": "Acme"})
    deal = new_deal(db, rep, pipes, amount="100", company=company.id)
    run(app, db)
    assert runs(db) == []  # entering lead on creation is neither rule's business
    result = pipelines.move(db, rep, Cause.for_user(rep), pipes, deal, "qualified")
    db.commit()
    assert result.status is MoveStatus.MOVED
    run(app, db)
    assert Counter(r.rule_key for r in runs(db)) == {"entered_qualified": 1, "left_lead": 1}
    pipelines.move(db, rep, Cause.for_user(rep), pipes, db.get(Record, deal.id), "proposal")
    db.commit()
    run(app, db)
    assert Counter(r.rule_key for r in runs(db)) == {"entered_qualified": 1, "left_lead": 1}
    assert sorted(inbox_titles(db, rep)) == ["Out of lead: Big deal", "Qualified: Big deal"]


def test_approval_decided_fires_once_for_the_decision_it_names(app, db, admin, rep, pipes):
    manager = member(db, pipes, "max", role="manager")
    publish(db, admin, pipes, rule("approved", {"type": "approval_decided", "decision": "approved"},
                                   [notify_owner("Approved: {title}")]))
    publish(db, admin, pipes, rule("rejected", {"type": "approval_decided", "decision": "rejected"},
                                   [notify_owner("Rejected: {title}")]))
    company = records.create(db, rep, Cause.for_user(rep), pipes, "company", {"name": "Acme"})
    deal = new_deal(db, rep, pipes, amount="1000", company=company.id, close_date="2030-06-30", discount="30",
                    stage="proposal")
    result = pipelines.move(db, rep, Cause.for_user(rep), pipes, deal, "negotiation", comment="Needs 30% off")
    db.commit()
    assert result.status is MoveStatus.PENDING_APPROVAL
    run(app, db)
    assert runs(db) == []
    approvals.decide(db, manager, result.request.id, "approve")
    db.commit()
    run(app, db)
    run(app, db)
    assert [(r.rule_key, r.trigger, r.status) for r in runs(db)] == [("approved", "approval_decided", "succeeded")]
    assert db.get(Record, deal.id).data["stage"] == "negotiation"
    assert inbox_titles(db, rep) == ["Approved: Big deal"]


# --- date reached, inactivity and schedules on a controlled clock ---------------------------------

REMINDER = {"type": "date_reached", "field": "close_date", "offset_days": -1, "at": "09:00"}
DUE = datetime(2030, 3, 14, 1, 0, tzinfo=UTC)  # 2030-03-14 09:00 in Shanghai: a day before 2030-03-15


@pytest.fixture
def reminder(db, admin, pipes):
    """The pipes app in Shanghai time with a reminder the day before a deal's close date, at 09:00."""
    set_app_options(db, admin, pipes, time_zone=SHANGHAI)
    publish(db, admin, pipes, rule("closing", REMINDER, [notify_owner("Closing tomorrow: {title}")],
                                   condition={"field": "lost_reason", "op": "empty"}))
    return pipes


def test_date_reached_fires_at_the_due_moment_in_the_app_time_zone(app, db, rep, reminder):
    deal = new_deal(db, rep, reminder, close_date="2030-03-15")
    assert job_for(db, "closing", deal).due_at == DUE
    run(app, db, DUE - timedelta(minutes=1))
    assert runs(db, "closing") == []
    assert notifications.unread_count(db, rep, now=DUE) == 0
    run(app, db, DUE)
    assert [(r.trigger, r.status, r.record_id) for r in runs(db, "closing")] == [("date_reached", "succeeded",
                                                                                  deal.id)]
    assert inbox_titles(db, rep, now=DUE) == ["Closing tomorrow: Big deal"]
    run(app, db, DUE + timedelta(days=1))
    assert len(runs(db, "closing")) == 1


def test_changing_the_date_moves_the_reminder(app, db, rep, reminder):
    deal = new_deal(db, rep, reminder, close_date="2030-03-15")
    edit(db, rep, reminder, deal, close_date="2030-03-20")
    new_due = DUE + timedelta(days=5)
    assert job_for(db, "closing", deal).due_at == new_due
    run(app, db, DUE)
    assert runs(db, "closing") == []
    run(app, db, new_due - timedelta(minutes=1))
    assert runs(db, "closing") == []
    run(app, db, new_due)
    assert [r.status for r in runs(db, "closing")] == ["succeeded"]
    assert inbox_titles(db, rep, now=new_due) == ["Closing tomorrow: Big deal"]


def test_reminder_for_a_record_no_longer_matching_the_condition_is_skipped(app, db, rep, reminder):
    deal = new_deal(db, rep, reminder, close_date="2030-03-15")
    edit(db, rep, reminder, deal, lost_reason="Went with a competitor")
    run(app, db, DUE)
    [skipped] = runs(db, "closing")
    assert (skipped.status, skipped.matched) == ("skipped", False)
    assert skipped.actions == []
    assert db.scalar(select(func.count()).select_from(Notification)) == 0


def test_deleting_a_record_cancels_its_reminder(app, db, rep, reminder):
    deal = new_deal(db, rep, reminder, close_date="2030-03-15")
    records.delete(db, rep, Cause.for_user(rep), reminder, deal)
    db.commit()
    assert job_for(db, "closing", deal).status == "cancelled"
    run(app, db, DUE + timedelta(days=1))
    assert runs(db, "closing") == []
    assert db.scalar(select(func.count()).select_from(Notification)) == 0


def test_reminder_survives_a_restart(app, db, rep, reminder):
    deal = new_deal(db, rep, reminder, close_date="2030-03-15")
    run(app, db, T0)  # the first process handles the creation, then goes away
    app.extensions["formloom.engine"].dispose()
    restarted = create_app({"INSTANCE_PATH": app.config["INSTANCE_PATH"], "DATABASE_URL": app.config["DATABASE_URL"],
                            "TESTING": True, "SECRET_KEY": "test-secret"})
    try:
        assert dispatch.run_pending(restarted, now=DUE) >= 1
    finally:
        restarted.extensions["formloom.engine"].dispose()
    db.rollback()
    db.expire_all()
    assert [(r.status, r.record_id) for r in runs(db, "closing")] == [("succeeded", deal.id)]
    assert inbox_titles(db, rep, now=DUE) == ["Closing tomorrow: Big deal"]


def test_reminder_fires_again_when_the_date_moves_after_it_fired(app, db, rep, reminder):
    deal = new_deal(db, rep, reminder, close_date="2030-03-15")
    run(app, db, DUE)
    assert len(runs(db, "closing")) == 1
    edit(db, rep, reminder, deal, now=DUE + timedelta(hours=1), close_date="2030-04-15")  # the deal slipped
    new_due = datetime(2030, 4, 14, 1, 0, tzinfo=UTC)
    assert job_for(db, "closing", deal).due_at == new_due
    run(app, db, new_due)
    assert [r.status for r in runs(db, "closing")] == ["succeeded", "succeeded"]
    assert notifications.unread_count(db, rep, now=new_due) == 2


def test_restoring_a_deleted_record_brings_its_reminder_back(app, db, rep, reminder):
    deal = new_deal(db, rep, reminder, close_date="2030-03-15")
    records.delete(db, rep, Cause.for_user(rep), reminder, deal)
    db.commit()
    records.restore(db, rep, Cause.for_user(rep), reminder, deal)
    db.commit()
    run(app, db, DUE)
    assert [(r.status, r.record_id) for r in runs(db, "closing")] == [("succeeded", deal.id)]


def test_changing_a_reminder_rule_moves_the_pending_reminders(app, db, admin, rep, reminder):
    deal = new_deal(db, rep, reminder, close_date="2030-03-15")
    publish(db, admin, reminder, rule("closing", {**REMINDER, "offset_days": -2},
                                      [notify_owner("Closing in two days: {title}")]))
    earlier = DUE - timedelta(days=1)
    run(app, db, earlier)
    assert [(r.status, r.record_id, r.rule_version) for r in runs(db, "closing")] == [("succeeded", deal.id, 2)]
    assert inbox_titles(db, rep, now=earlier) == ["Closing in two days: Big deal"]


def test_inactivity_fires_after_days_without_a_change_and_a_change_resets_it(app, db, admin, rep, pipes):
    publish(db, admin, pipes, rule("stale", {"type": "inactivity", "days": 7}, [notify_owner("Stale: {title}")]))
    deal = new_deal(db, rep, pipes)
    assert job_for(db, "stale", deal).due_at == T0 + timedelta(days=7)
    edit(db, rep, pipes, deal, now=T0 + timedelta(days=3), amount="50")
    assert job_for(db, "stale", deal).due_at == T0 + timedelta(days=10)
    run(app, db, T0 + timedelta(days=7))
    assert runs(db, "stale") == []
    run(app, db, T0 + timedelta(days=10))
    assert [(r.trigger, r.status) for r in runs(db, "stale")] == [("inactivity", "succeeded")]
    assert inbox_titles(db, rep, now=T0 + timedelta(days=10)) == ["Stale: Big deal"]


def test_weekly_schedule_runs_once_per_record_at_app_time_and_schedules_next_week(app, db, admin, rep, pipes):
    set_app_options(db, admin, pipes, time_zone=SHANGHAI)
    publish(db, admin, pipes, rule("weekly", {"type": "schedule", "every": "week", "weekday": "monday",
                                              "at": "09:00"}, [notify_owner("Weekly: {title}")]))
    first, second = new_deal(db, rep, pipes, name="First"), new_deal(db, rep, pipes, name="Second")
    run(app, db, T0)
    monday = datetime(2030, 1, 7, 1, 0, tzinfo=UTC)  # Monday 09:00 in Shanghai
    [job] = db.scalars(select(ScheduledJob).where(ScheduledJob.kind == "schedule"))
    assert (job.due_at, job.status) == (monday, "pending")
    run(app, db, monday - timedelta(minutes=1))
    assert runs(db, "weekly") == []
    run(app, db, monday)
    assert sorted(r.record_id for r in runs(db, "weekly")) == [first.id, second.id]
    assert {(r.trigger, r.status) for r in runs(db, "weekly")} == {("schedule", "succeeded")}
    assert sorted(inbox_titles(db, rep, now=monday)) == ["Weekly: First", "Weekly: Second"]
    run(app, db, monday + timedelta(hours=1))
    assert len(runs(db, "weekly")) == 2
    jobs = list(db.scalars(select(ScheduledJob).where(ScheduledJob.kind == "schedule").order_by(ScheduledJob.due_at)))
    assert [(j.due_at, j.status) for j in jobs] == [(monday, "done"), (monday + timedelta(days=7), "pending")]


def test_inactivity_fires_again_after_a_second_quiet_spell(app, db, admin, rep, pipes):
    publish(db, admin, pipes, rule("stale", {"type": "inactivity", "days": 7}, [notify_owner("Stale: {title}")]))
    deal = new_deal(db, rep, pipes)
    run(app, db, T0 + timedelta(days=7))
    assert len(runs(db, "stale")) == 1
    edit(db, rep, pipes, deal, now=T0 + timedelta(days=8), amount="50")  # someone worked on it
    run(app, db, T0 + timedelta(days=15))
    assert [r.status for r in runs(db, "stale")] == ["succeeded", "succeeded"]
    assert notifications.unread_count(db, rep, now=T0 + timedelta(days=15)) == 2


def test_republishing_a_schedule_replaces_its_pending_run(app, db, admin, rep, pipes):
    set_app_options(db, admin, pipes, time_zone=SHANGHAI)
    weekly = rule("weekly", {"type": "schedule", "every": "week", "weekday": "monday", "at": "09:00"},
                  [notify_owner("Weekly: {title}")])
    publish(db, admin, pipes, weekly)
    new_deal(db, rep, pipes)
    run(app, db, T0)
    weekly["trigger"]["weekday"] = "tuesday"
    publish(db, admin, pipes, weekly)
    run(app, db, T0 + timedelta(hours=1))
    monday, tuesday = datetime(2030, 1, 7, 1, 0, tzinfo=UTC), datetime(2030, 1, 8, 1, 0, tzinfo=UTC)
    run(app, db, monday)
    assert runs(db, "weekly") == []  # the rule now runs on Tuesdays
    run(app, db, tuesday)
    assert [(r.rule_version, r.status) for r in runs(db, "weekly")] == [(2, "succeeded")]


# --- assignment --------------------------------------------------------------------------------

def test_round_robin_skips_the_rep_who_is_away_and_says_why(app, db, admin, pipes):
    reps = [member(db, pipes, name) for name in ("rosa", "ruth", "rick")]
    reps[2].away_until = datetime.now(UTC) + timedelta(days=30)
    db.commit()
    publish(db, admin, pipes, rule("spread", {"type": "created"}, [
        {"type": "assign", "field": "owner", "strategy": "round_robin", "users": ["rosa", "ruth", "rick"]}]))
    for i in range(300):
        records.create(db, admin, Cause.for_user(admin), pipes, "deal", {"name": f"Deal {i}", "owner": None})
    db.commit()
    run(app, db)
    owners = Counter(db.scalars(select(Record.owner_id).where(Record.entity_key == "deal")))
    assert owners == {reps[0].id: 150, reps[1].id: 150}
    results = [a.result for a in db.scalars(select(ActionRun).where(ActionRun.kind == "assign").order_by(ActionRun.id))]
    assert len(results) == 300
    for result in results:
        assert result["why"].startswith("Round-robin among Rosa, Ruth:")
        assert "Skipped: Rick (away until" in result["why"]
    assert Counter(r["name"] for r in results) == {"Rosa": 150, "Ruth": 150}
    last = db.scalar(select(Record).where(Record.entity_key == "deal").order_by(Record.id.desc()))
    [entry] = [e for e in records.history(db, admin, pipes, last) if e.action == "update"]
    assert entry.cause_kind == "rule"
    assert entry.diff["owner"] == [None, last.owner_id]
    assert entry.detail == {"why": results[-1]["why"], "rule": "spread"}


def test_least_open_assigns_the_rep_with_fewest_open_records(app, db, admin, pipes):
    ann, bob = member(db, pipes, "ann"), member(db, pipes, "bob")
    for i in range(2):
        new_deal(db, admin, pipes, name=f"Ann open {i}", owner=ann.id)
    new_deal(db, admin, pipes, name="Bob open", owner=bob.id)
    for i in range(3):  # closed deals do not count
        new_deal(db, admin, pipes, name=f"Bob lost {i}", owner=bob.id, stage="lost", lost_reason="Price")
    run(app, db)
    publish(db, admin, pipes, rule("balance", {"type": "created"}, [
        {"type": "assign", "field": "owner", "strategy": "least_open", "users": ["ann", "bob"]}]))
    deal = new_deal(db, admin, pipes, name="New", owner=None)
    run(app, db)
    assert db.get(Record, deal.id).owner_id == bob.id
    [action] = runs(db, "balance")[0].actions
    assert action.result["why"] == "Fewest open records (Ann 2, Bob 1): Bob."


def test_by_field_assigns_from_the_map(app, db, admin, pipes):
    member(db, pipes, "lee")
    quinn = member(db, pipes, "quinn")
    publish(db, admin, pipes, rule("route", {"type": "created"}, [
        {"type": "assign", "field": "owner", "strategy": "by_field", "map_field": "stage",
         "map": {"lead": "lee", "qualified": "quinn"}}]))
    deal = new_deal(db, admin, pipes, owner=None, stage="qualified")
    run(app, db)
    assert db.get(Record, deal.id).owner_id == quinn.id
    [action] = runs(db, "route")[0].actions
    assert action.result == {"assigned": quinn.id, "name": "Quinn",
                             "why": "stage is 'qualified', which the rule maps to Quinn."}


# --- actions -----------------------------------------------------------------------------------

def test_update_action_sets_values_and_formulas(app, db, admin, rep, pipes):
    publish(db, admin, pipes, rule("double", {"type": "created"}, [
        {"type": "update", "values": {"lost_reason": "Set by a rule"}, "formulas": {"amount": "amount * 2"}}]))
    deal = new_deal(db, rep, pipes, amount="150")
    run(app, db)
    data = db.get(Record, deal.id).data
    assert (data["amount"], data["lost_reason"]) == ("300.00", "Set by a rule")
    [action] = runs(db, "double")[0].actions
    assert action.result == {"updated": ["amount", "lost_reason"]}
    entry = db.scalar(select(ChangeLog).where(ChangeLog.record_id == deal.id, ChangeLog.action == "update"))
    assert entry.cause_kind == "rule" and entry.diff["amount"] == ["150.00", "300.00"]


def test_create_action_makes_a_record_linked_to_the_trigger(app, db, admin, rep, pipes):
    publish(db, admin, pipes, rule("first_deal", {"type": "created"}, [
        {"type": "create", "entity": "deal", "link_field": "company", "values": {"amount": "500"},
         "formulas": {"name": 'CONCAT(name, " renewal")'}}], entity="company"))
    company = records.create(db, rep, Cause.for_user(rep), pipes, "company", {"name": "Acme"})
    db.commit()
    run(app, db)
    [deal] = db.scalars(select(Record).where(Record.entity_key == "deal"))
    assert (deal.title, deal.data["company"], deal.data["amount"]) == ("Acme renewal", company.id, "500.00")
    [action] = runs(db, "first_deal")[0].actions
    assert action.result == {"created": deal.id, "entity": "deal", "title": "Acme renewal"}


def test_notify_reaches_owner_manager_role_and_users_and_the_inbox_works(app, db, admin, pipes):
    olga, max_, mia, uma = (member(db, pipes, "olga"), member(db, pipes, "max"),
                            member(db, pipes, "mia", role="manager"), member(db, pipes, "uma"))
    auth.add_team(db, "east", "East", max_, [olga])
    db.commit()
    publish(db, admin, pipes, rule("tell", {"type": "created"}, [
        {"type": "notify", "to": {"owner": True}, "title": "Owner: {title}"},
        {"type": "notify", "to": {"owner_manager": True}, "title": "Manager: {title}"},
        {"type": "notify", "to": {"role": "manager"}, "title": "Role: {title}"},
        {"type": "notify", "to": {"users": ["uma"]}, "title": "Users: {title}", "message": "Have a look."}]))
    new_deal(db, olga, pipes)
    run(app, db)
    assert {u.username: inbox_titles(db, u) for u in (olga, max_, mia, uma, admin)} == {
        "olga": ["Owner: Big deal"], "max": ["Manager: Big deal"], "mia": ["Role: Big deal"],
        "uma": ["Users: Big deal"], "admin": []}
    assert [notifications.unread_count(db, u) for u in (olga, max_, mia, uma)] == [1, 1, 1, 1]
    note = notifications.inbox(db, olga)[0]
    assert notifications.mark_read(db, olga, note.id) == 1
    db.commit()
    assert notifications.unread_count(db, olga) == 0
    now = datetime.now(UTC)
    later = notifications.inbox(db, uma)[0]
    assert later.body == "Have a look."
    notifications.snooze(db, uma, later.id, now + timedelta(hours=2))
    db.commit()
    assert notifications.unread_count(db, uma, now=now) == 0
    assert inbox_titles(db, uma, now=now) == []
    assert notifications.unread_count(db, uma, now=now + timedelta(hours=2, seconds=1)) == 1


def test_email_without_smtp_records_that_it_was_not_sent(app, db, admin, pipes):
    ella = member(db, pipes, "ella", email="ella@example.com")
    publish(db, admin, pipes, rule("mail", {"type": "created"}, [
        {"type": "email", "to": {"owner": True}, "subject": "New: {title}", "body": "See {title}."}]))
    new_deal(db, ella, pipes)
    run(app, db)
    [action] = runs(db, "mail")[0].actions
    assert action.result == {"emailed": ["ella@example.com"], "smtp": False}
    [job] = db.scalars(select(ScheduledJob).where(ScheduledJob.kind == "email"))
    assert job.status == "done"
    assert job.payload["to"] == "ella@example.com" and job.payload["subject"] == "New: Big deal"
    assert job.payload["result"].startswith("not sent: no SMTP server is configured")


def test_quiet_hours_hold_email_until_they_end_in_app_time(app, db, admin, pipes):
    ella = member(db, pipes, "ella", email="ella@example.com")
    set_app_options(db, admin, pipes, time_zone=SHANGHAI, quiet_hours={"from": "22:00", "to": "08:00"})
    publish(db, admin, pipes, rule("late", {"type": "date_reached", "field": "close_date", "at": "23:00"}, [
        {"type": "email", "to": {"owner": True}, "subject": "Closing: {title}"}]))
    new_deal(db, ella, pipes, close_date="2030-03-15")
    late = datetime(2030, 3, 15, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai
    morning = datetime(2030, 3, 16, 0, 0, tzinfo=UTC)  # 08:00 the next day in Shanghai
    run(app, db, late)
    [job] = db.scalars(select(ScheduledJob).where(ScheduledJob.kind == "email"))
    assert (job.due_at, job.status) == (morning, "pending")
    run(app, db, morning - timedelta(minutes=1))
    assert db.get(ScheduledJob, job.id).status == "pending"
    run(app, db, morning)
    assert db.get(ScheduledJob, job.id).status == "done"


# --- webhooks ----------------------------------------------------------------------------------

class Receiver:
    """A loopback HTTP server answering each path with a script of status codes (the last repeats)."""

    def __init__(self, scripts: dict[str, list[int]]):
        self.scripts = scripts
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    seen = sum(1 for r in receiver.requests if r["path"] == self.path)
                script = receiver.scripts.get(self.path, [404])
                self.send_response(script[min(seen, len(script)) - 1])
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def to(self, path: str) -> list[dict]:
        return [r for r in self.requests if r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver(app):
    """The loopback receiver, which webhooks may reach only because the setting allows it."""
    app.config["WEBHOOK_ALLOWED_HOSTS"] = ["127.0.0.1"]
    server = Receiver({"/flaky": [500, 500, 200], "/down": [500]})
    yield server
    server.close()


SECRET = "s3cret-value"


def test_webhook_is_signed_and_retried_with_backoff_until_it_succeeds(app, db, admin, rep, pipes, receiver):
    app.config["WEBHOOK_BACKOFF_SECONDS"] = [10, 60]
    with app.app_context():  # where the rule check reads WEBHOOK_ALLOWED_HOSTS
        publish(db, admin, pipes, rule("hook", {"type": "created"}, [
            {"type": "webhook", "url": f"{receiver.url}/flaky", "secret": SECRET}]))
    deal = new_deal(db, rep, pipes)
    t = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    run(app, db, t)
    assert len(receiver.to("/flaky")) == 1
    run(app, db, t + timedelta(seconds=9))
    assert len(receiver.to("/flaky")) == 1  # the first backoff is not over yet
    run(app, db, t + timedelta(seconds=10))
    run(app, db, t + timedelta(seconds=69))
    assert len(receiver.to("/flaky")) == 2
    run(app, db, t + timedelta(seconds=70))
    run(app, db, t + timedelta(days=1))
    sent = receiver.to("/flaky")
    assert len(sent) == 3
    [action] = runs(db, "hook")[0].actions
    assert {r["headers"]["X-Formloom-Delivery"] for r in sent} == {action.key}
    assert [r["headers"]["X-Formloom-Attempt"] for r in sent] == ["1", "2", "3"]
    assert [r["headers"]["X-Formloom-Timestamp"] for r in sent] == [
        str(int((t + timedelta(seconds=s)).timestamp())) for s in (0, 10, 70)]
    for request in sent:
        headers = request["headers"]
        expected = hmac.new(SECRET.encode(), headers["X-Formloom-Timestamp"].encode() + b"." + request["body"],
                            hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["X-Formloom-Signature"], f"sha256={expected}")
        payload = json.loads(request["body"])
        assert (payload["rule"], payload["record"]["id"], payload["delivery"]) == ("hook", deal.id, action.key)
    deliveries = list(db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.attempt)))
    assert [(d.attempt, d.status_code, d.action_key) for d in deliveries] == [
        (1, 500, action.key), (2, 500, action.key), (3, 200, action.key)]
    assert [d.next_attempt_at for d in deliveries] == [t + timedelta(seconds=10), t + timedelta(seconds=70), None]
    [job] = db.scalars(select(ScheduledJob).where(ScheduledJob.kind == "webhook"))
    assert (job.status, job.payload["attempt"]) == ("done", 3)


def test_webhook_that_always_fails_stops_after_max_attempts(app, db, admin, rep, pipes, receiver):
    app.config["WEBHOOK_BACKOFF_SECONDS"] = [1]
    with app.app_context():
        publish(db, admin, pipes, rule("hook", {"type": "created"}, [
            {"type": "webhook", "url": f"{receiver.url}/down", "secret": SECRET, "max_attempts": 3}]))
    new_deal(db, rep, pipes)
    t = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
    for seconds in range(0, 10):
        run(app, db, t + timedelta(seconds=seconds))
    run(app, db, t + timedelta(days=30))
    assert [r["headers"]["X-Formloom-Attempt"] for r in receiver.to("/down")] == ["1", "2", "3"]
    deliveries = list(db.scalars(select(WebhookDelivery).order_by(WebhookDelivery.attempt)))
    assert [(d.attempt, d.status_code) for d in deliveries] == [(1, 500), (2, 500), (3, 500)]
    assert deliveries[-1].next_attempt_at is None
    [job] = db.scalars(select(ScheduledJob).where(ScheduledJob.kind == "webhook"))
    assert job.status == "done"


# --- loops and failures ------------------------------------------------------------------------

def test_a_rule_that_retriggers_itself_stops_at_depth_five(app, db, admin, rep, pipes):
    publish(db, admin, pipes, rule("bump", {"type": "updated"}, [
        {"type": "update", "formulas": {"amount": "amount + 1"}}]))
    deal = new_deal(db, rep, pipes, amount="1")
    edit(db, rep, pipes, deal, name="Bigger deal")
    ran = run(app, db)
    assert 0 < ran < 50
    assert dispatch.run_pending(app) == 0  # nothing left: it terminated
    db.rollback()
    db.expire_all()
    bumps = db.scalars(select(ChangeLog).where(ChangeLog.record_id == deal.id, ChangeLog.cause_kind == "rule"))
    assert [e.diff["amount"] for e in bumps] == [[f"{n}.00", f"{n + 1}.00"] for n in range(1, 6)]
    assert db.get(Record, deal.id).data["amount"] == "6.00"
    history = [(r.depth, r.status) for r in runs(db, "bump")]
    assert history == [(0, "succeeded"), (1, "succeeded"), (2, "succeeded"), (3, "succeeded"), (4, "succeeded"),
                       (5, "stopped")]
    stopped = runs(db, "bump")[-1]
    assert "the limit is 5" in stopped.reason
    assert stopped.actions == []


def test_failed_action_is_logged_and_a_retry_does_not_repeat_what_succeeded(app, db, admin, pipes):
    lee = member(db, pipes, "lee")
    body = rule("route", {"type": "created"}, [
        {"type": "update", "formulas": {"amount": "amount + 1"}},
        {"type": "assign", "field": "owner", "strategy": "by_field", "map_field": "stage", "map": {"won": "lee"}}])
    publish(db, admin, pipes, body)
    deal = new_deal(db, admin, pipes, amount="10", owner=None)
    run(app, db)
    [failed] = runs(db, "route")
    assert failed.status == "failed"
    assert "Action 2 (assign) failed" in failed.reason and "No one is mapped for stage = 'lead'" in failed.reason
    assert [(a.position, a.status) for a in failed.actions] == [(0, "succeeded"), (1, "failed")]
    assert "No one is mapped" in failed.actions[1].error
    first_done = failed.actions[0].finished_at
    assert db.get(Record, deal.id).data["amount"] == "11.00"

    body["actions"][1]["map"]["lead"] = "lee"
    publish(db, admin, pipes, body)
    retried = automation.retry_run(db, failed.id, dispatch.settings_of(app))
    db.rollback()
    db.expire_all()
    retried = db.get(RuleRun, failed.id)
    assert (retried.status, retried.reason, retried.attempts) == ("succeeded", None, 2)
    assert [(a.position, a.status, a.error) for a in retried.actions] == [(0, "succeeded", None),
                                                                        (1, "succeeded", None)]
    assert retried.actions[0].finished_at == first_done
    record = db.get(Record, deal.id)
    assert (record.data["amount"], record.owner_id) == ("11.00", lee.id)
    assert retried.actions[1].result["why"] == "stage is 'lead', which the rule maps to Lee."
    assert len(runs(db, "route")) == 1

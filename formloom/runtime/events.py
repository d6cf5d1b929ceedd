"""The outbox: events and scheduled work written in the same transaction as the change behind them.

Nothing here talks to Redis. :mod:`formloom.runtime.dispatch` hands what is written here to the
queue; if the process dies after the commit, the work is still in the database.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from formloom.platform.db import utcnow
from formloom.platform.models import App, Event, Record, ScheduledJob, WorkStatus
from formloom.runtime import rules as rules_module
from formloom.runtime.rules import EventKind, Rule, Trigger

DEPTH = "formloom.automation_depth"  # session.info: how deep in rule actions this change is
MUTED = "formloom.events_muted"  # session.info: the cause refs whose changes raise no rule events


def emit(session: Session, app: App, kind: EventKind, record: Record, payload: Mapping[str, Any],
         actor_id: int | None, at: datetime | None = None) -> None:
    """Record that something happened to ``record`` (flushed with the change), and keep its timers."""
    at = at or utcnow()
    if not session.info.get(MUTED):
        session.add(Event(app_id=app.id, kind=kind.value, entity_key=record.entity_key, record_id=record.id,
                          payload=dict(payload), actor_id=actor_id, depth=session.info.get(DEPTH, 0),
                          created_at=at))
    if kind in (EventKind.CREATED, EventKind.UPDATED, EventKind.DELETED):
        schedule_timers(session, app, record, at, deleted=kind is EventKind.DELETED)


@contextmanager
def muted(session: Session, cause_ref: str) -> Iterator[None]:
    """Changes made inside raise no rule events (an import run with automations off).

    Only the events are held back: a record's own timers (date reached, inactivity) are still
    kept, as they belong to its data, not to the change that wrote it.
    """
    refs = session.info.setdefault(MUTED, [])
    refs.append(cause_ref)
    try:
        yield
    finally:
        refs.remove(cause_ref)


def schedule_timers(session: Session, app: App, record: Record, at: datetime, *, deleted: bool = False) -> None:
    """(Re)schedule the record's date-reached and inactivity checks; cancel them when it is deleted."""
    timed = [r for r in rules_module.rules_of(session, app) if r.trigger in (Trigger.DATE_REACHED, Trigger.INACTIVITY)]
    if not timed:
        return
    zone = rules_module.app_zone(session, app)
    for rule in timed:
        if rule.entity_key == record.entity_key:
            if rule.trigger is Trigger.DATE_REACHED:
                due = None if deleted else rules_module.date_due(rule, record.data.get(rule.options["field"]), zone)
                _put(session, app, f"date:{rule.key}:{record.id}", rule, record.id, due)
            else:
                due = None if deleted else at + _days(rule)
                _put(session, app, f"idle:{rule.key}:{record.id}", rule, record.id, due)
        activity = rule.options.get("activity") if rule.trigger is Trigger.INACTIVITY else None
        if activity and activity["entity"] == record.entity_key and not deleted:
            linked = record.data.get(activity["field"])
            if isinstance(linked, int):  # activity logged on the record it relates to resets its timer
                _put(session, app, f"idle:{rule.key}:{linked}", rule, linked, at + _days(rule))


def _days(rule: Rule):
    from datetime import timedelta

    return timedelta(days=rule.options["days"])


def _put(session: Session, app: App, key: str, rule: Rule, record_id: int | None, due: datetime | None) -> None:
    """Keep one pending job per key at ``due`` (None cancels it)."""
    job = session.scalar(select(ScheduledJob).where(ScheduledJob.key == key))
    if due is None:
        if job is not None and job.status in (WorkStatus.PENDING.value, WorkStatus.ENQUEUED.value):
            job.status = WorkStatus.CANCELLED.value
        return
    if job is None:
        session.add(ScheduledJob(app_id=app.id, key=key, kind=rule.trigger.value, rule_key=rule.key,
                                 record_id=record_id, due_at=due, payload=_payload(rule, due)))
    elif job.due_at != due or job.status == WorkStatus.CANCELLED.value:
        job.due_at, job.payload, job.status, job.attempts = due, _payload(rule, due), WorkStatus.PENDING.value, 0
        job.enqueued_at = job.done_at = None


def _payload(rule: Rule, due: datetime) -> dict:
    payload = {"due": due.isoformat()}
    if rule.trigger is Trigger.INACTIVITY:
        payload["days"] = rule.options["days"]
    return payload


def schedule_recurring(session: Session, app: App, now: datetime) -> None:
    """Make sure every enabled scheduled rule has its next run waiting in the database."""
    zone = None
    for rule in rules_module.rules_of(session, app):
        if rule.trigger is not Trigger.SCHEDULE or not rule.enabled:
            continue
        zone = zone or rules_module.app_zone(session, app)
        key = f"schedule:{rule.key}:v{rule.version}"
        # Runs waiting for an earlier version of the rule give way to the current one.
        session.execute(update(ScheduledJob).where(
            ScheduledJob.key.like(f"schedule:{rule.key}:v%"), ScheduledJob.key.not_like(f"{key}:%"),
            ScheduledJob.status.in_([WorkStatus.PENDING.value, WorkStatus.ENQUEUED.value]))
            .values(status=WorkStatus.CANCELLED.value))
        if session.scalar(select(ScheduledJob.id).where(ScheduledJob.key.like(f"{key}:%"),
                                                        ScheduledJob.status.in_([WorkStatus.PENDING.value,
                                                                                 WorkStatus.ENQUEUED.value]))):
            continue
        due = rules_module.next_occurrence(rule, now, zone)
        _put(session, app, f"{key}:{due.isoformat()}", rule, None, due)


def reschedule_rule(session: Session, app: App, rule_key: str, now: datetime) -> int:
    """After a timed rule is published: put every live record's check at its new time.

    Checks of a rule that is now off, or no longer timed, are cancelled. Returns how many records
    were (re)scheduled.
    """
    rule = rules_module.get_rule(session, app, rule_key)
    for prefix in ("date", "idle"):
        if rule is None or not rule.enabled or rule.trigger not in (Trigger.DATE_REACHED, Trigger.INACTIVITY) \
                or prefix != ("date" if rule.trigger is Trigger.DATE_REACHED else "idle"):
            session.execute(update(ScheduledJob).where(
                ScheduledJob.key.like(f"{prefix}:{rule_key}:%"),
                ScheduledJob.status.in_([WorkStatus.PENDING.value, WorkStatus.ENQUEUED.value]))
                .values(status=WorkStatus.CANCELLED.value))
    if rule is None or not rule.enabled or rule.trigger not in (Trigger.DATE_REACHED, Trigger.INACTIVITY):
        return 0
    zone = rules_module.app_zone(session, app)
    count = 0
    for record in session.scalars(select(Record).where(Record.app_id == app.id, Record.entity_key == rule.entity_key,
                                                      Record.deleted_at.is_(None))):
        if rule.trigger is Trigger.DATE_REACHED:
            due = rules_module.date_due(rule, record.data.get(rule.options["field"]), zone)
            if due is not None and due < now:
                continue  # a date already past when the rule appeared: no late reminder
            _put(session, app, f"date:{rule.key}:{record.id}", rule, record.id, due)
        else:
            key = f"idle:{rule.key}:{record.id}"
            job = session.scalar(select(ScheduledJob).where(ScheduledJob.key == key))
            last = job.due_at - _days_of(job, rule) if job is not None else record.updated_at
            _put(session, app, key, rule, record.id, max(last, record.updated_at) + _days(rule))
        count += 1
    return count


def _days_of(job: ScheduledJob, rule: Rule):
    """The quiet spell a stored inactivity job was made with (its rule may have changed since)."""
    from datetime import timedelta

    return timedelta(days=job.payload.get("days", rule.options["days"]))

"""The rule engine: run the rules an event or a due job triggers, each action exactly once.

A run is keyed by its trigger and rule (``RuleRun.key``), an action by the run and its position
(``ActionRun.key``). Each action commits its effect together with its ``ActionRun`` row, so a job
that runs twice (a worker killed mid-job, a job handed to the queue again) finds the actions
already done and skips them: their effects happen once. Loop protection: an event caused by a
rule's action carries its depth; at ``AUTOMATION_MAX_DEPTH`` the run stops and says why.
"""
from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from formloom.platform.db import utcnow
from formloom.platform.errors import FormloomError
from formloom.platform.models import (
    ActionRun,
    App,
    Event,
    Record,
    RuleRun,
    RunStatus,
    ScheduledJob,
    User,
    WorkStatus,
)
from formloom.runtime import catalog, conditions, events
from formloom.runtime import rules as rules_module
from formloom.runtime.rules import Rule, Trigger


@dataclass(frozen=True)
class Settings:
    max_depth: int = 5
    webhook_timeout: float = 10.0
    webhook_backoff: tuple[int, ...] = (10, 60, 300, 1800, 7200)
    smtp: Mapping[str, Any] | None = None
    webhook_allowed_hosts: tuple[str, ...] = ()  # hosts and networks webhooks may reach though not public

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        smtp = {k[5:].lower(): v for k, v in config.items() if k.startswith("SMTP_")} if config.get("SMTP_HOST") \
            else None
        allowed = config.get("WEBHOOK_ALLOWED_HOSTS") or ()
        return cls(max_depth=int(config.get("AUTOMATION_MAX_DEPTH", 5)),
                   webhook_timeout=float(config.get("WEBHOOK_TIMEOUT_SECONDS", 10)),
                   webhook_backoff=tuple(config.get("WEBHOOK_BACKOFF_SECONDS") or (10,)), smtp=smtp,
                   webhook_allowed_hosts=tuple(allowed.split(",") if isinstance(allowed, str) else allowed))


@dataclass
class Context:
    """What an action needs: the session, the app, the rule, the run, the record and the clock."""

    session: Session
    app: App
    rule: Rule
    run: RuleRun
    record: Record | None
    now: datetime
    settings: Settings
    dry_run: bool = False

    @property
    def actor(self) -> User:
        """Rules act as the admin who published them (the app's first admin if that one is gone)."""
        user = self.session.get(User, self.rule.published_by) if self.rule.published_by else None
        if user is None or not user.is_active:
            user = self.session.scalar(select(User).where(User.role == "admin", User.is_active).order_by(User.id))
        return user


class ActionFailed(FormloomError):
    """An action could not do its work; the run log shows the message."""

    code = "action_failed"


# --- entry points (the queue's jobs call these) ---------------------------------------------------

def process_event(session: Session, event_id: int, settings: Settings, now: datetime | None = None) -> int:
    """Run every rule the event triggers; returns how many rules ran. Safe to call twice."""
    event = session.get(Event, event_id)
    if event is None or event.status == WorkStatus.DONE.value:
        return 0
    app = session.get(App, event.app_id)
    record = session.get(Record, event.record_id) if event.record_id else None
    ran = 0
    for rule in rules_module.rules_of(session, app):
        if rule.answers(event.kind, event.entity_key, event.payload):
            run_rule(session, app, rule, record, f"event:{event.id}", rule.trigger.value, settings,
                     now=now, depth=event.depth, event_id=event.id)
            ran += 1
    _finish(session, Event, event_id, now)
    return ran


def process_job(session: Session, job_id: int, settings: Settings, now: datetime | None = None) -> int:
    """Run a due scheduled job (a timed rule for a record, a recurring rule, a delivery)."""
    from formloom.runtime import deliveries

    job = session.get(ScheduledJob, job_id)
    if job is None or job.status in (WorkStatus.DONE.value, WorkStatus.CANCELLED.value):
        return 0
    now = now or utcnow()
    app = session.get(App, job.app_id)
    if job.kind in deliveries.KINDS:
        deliveries.deliver(session, app, job, settings, now)
        return 1
    rule = rules_module.get_rule(session, app, job.rule_key)
    ran = 0
    if rule is not None and rule.enabled:
        if job.kind == Trigger.SCHEDULE.value:
            ran = _run_schedule(session, app, rule, job, settings, now) if _current_version(job, rule) else 0
        else:
            due = _due_now(session, app, rule, job)
            if due is not None and due > job.due_at:  # the date (or the rule) moved it later: wait for that
                job.due_at, job.status, job.enqueued_at = due, WorkStatus.PENDING.value, None
                session.commit()
                return 0
            if due == job.due_at:
                # A job row serves one rule and record for good; its run is keyed by the moment it is for.
                trigger_key = f"job:{job.id}@{int(job.due_at.timestamp())}"
                run_rule(session, app, rule, session.get(Record, job.record_id), trigger_key, job.kind, settings,
                         now=now, job_id=job.id)
                ran = 1
    _finish(session, ScheduledJob, job_id, now)
    if job.kind == Trigger.SCHEDULE.value:
        events.schedule_recurring(session, app, now)
        session.commit()
    return ran


def _due_now(session: Session, app: App, rule: Rule, job: ScheduledJob) -> datetime | None:
    """When the job's rule is due for its record now (None: not at all any more).

    A timed rule fires only if its record still exists and, for a date, the date still says so.
    """
    record = session.get(Record, job.record_id) if job.record_id else None
    if record is None or record.deleted_at is not None or record.entity_key != rule.entity_key:
        return None
    if rule.trigger is Trigger.DATE_REACHED:
        return rules_module.date_due(rule, record.data.get(rule.options["field"]), rules_module.app_zone(session, app))
    if rule.trigger is Trigger.INACTIVITY:
        return job.due_at
    return None


def _current_version(job: ScheduledJob, rule: Rule) -> bool:
    """A recurring job made for an earlier version of its rule does not run (the new one is scheduled)."""
    return job.key.startswith(f"schedule:{rule.key}:v{rule.version}:")


def _run_schedule(session: Session, app: App, rule: Rule, job: ScheduledJob, settings: Settings,
                  now: datetime) -> int:
    """A recurring rule runs for every live record of its entity (its condition decides which act)."""
    ids = list(session.scalars(select(Record.id).where(Record.app_id == app.id, Record.entity_key == rule.entity_key,
                                                       Record.deleted_at.is_(None)).order_by(Record.id)))
    for record_id in ids:
        run_rule(session, app, rule, session.get(Record, record_id), f"job:{job.id}:{record_id}", job.kind,
                 settings, now=now, job_id=job.id)
    return len(ids)


def _finish(session: Session, model, row_id: int, now: datetime | None) -> None:
    row = session.get(model, row_id)
    row.status, row.done_at = WorkStatus.DONE.value, now or utcnow()
    session.commit()


# --- one run ------------------------------------------------------------------------------------

def run_rule(session: Session, app: App, rule: Rule, record: Record | None, trigger_key: str, trigger: str,
             settings: Settings, *, now: datetime | None = None, depth: int = 0, event_id: int | None = None,
             job_id: int | None = None) -> RuleRun:
    """Run ``rule`` once for this trigger: the condition, then each action not done yet."""
    now = now or utcnow()
    run = _claim_run(session, app, rule, record, trigger_key, trigger, depth, event_id, job_id, now)
    if run.status in (RunStatus.SUCCEEDED.value, RunStatus.SKIPPED.value, RunStatus.STOPPED.value):
        return run
    if depth >= settings.max_depth:
        return _close(session, run, RunStatus.STOPPED,
                      f"Stopped: this event is {depth} rule actions deep (the limit is {settings.max_depth}); "
                      f"a rule's action probably triggers the rule again. Change its trigger or condition.")
    ctx = Context(session, app, rule, run, record, now, settings)
    try:
        matched = matches(ctx)
    except Exception as exc:
        return _close(session, run, RunStatus.FAILED, f"The condition could not be checked: {exc}")
    run.matched = matched
    if not matched:
        return _close(session, run, RunStatus.SKIPPED, "The condition does not hold for this record.")
    failed = None
    for position, action in enumerate(rule.actions):
        outcome = run_action(ctx, position, action)
        if outcome.status == RunStatus.FAILED.value:
            failed = f"Action {position + 1} ({action['type']}) failed: {outcome.error}"
            break
    return _close(session, run, RunStatus.FAILED if failed else RunStatus.SUCCEEDED, failed)


def matches(ctx: Context) -> bool:
    if ctx.rule.condition is None:
        return True
    if ctx.record is None:
        return False
    entity = catalog.entity(ctx.session, ctx.app, ctx.rule.entity_key)
    return conditions.evaluate(ctx.rule.condition, ctx.record.data, entity.kinds, today=ctx.now.date(),
                               now=ctx.now, user_id=ctx.record.owner_id)


def _claim_run(session: Session, app: App, rule: Rule, record: Record | None, key: str, trigger: str, depth: int,
               event_id: int | None, job_id: int | None, now: datetime) -> RuleRun:
    run_key = f"{key}:{rule.key}"
    run = session.scalar(select(RuleRun).where(RuleRun.key == run_key))
    if run is not None:
        if run.status in (RunStatus.RUNNING.value, RunStatus.FAILED.value):
            run.attempts += 1
            run.status, run.finished_at = RunStatus.RUNNING.value, None
            session.commit()
        return run
    run = RuleRun(app_id=app.id, key=run_key, rule_key=rule.key, rule_version=rule.version, trigger=trigger,
                  event_id=event_id, job_id=job_id, record_id=record.id if record else None, depth=depth,
                  started_at=now)
    session.add(run)
    try:
        session.commit()
    except IntegrityError:  # another worker claimed it at the same moment: use theirs
        session.rollback()
        run = session.scalar(select(RuleRun).where(RuleRun.key == run_key))
    return run


def _close(session: Session, run: RuleRun, status: RunStatus, reason: str | None) -> RuleRun:
    run.status, run.reason = status.value, reason
    run.finished_at = utcnow()
    session.commit()
    return run


@dataclass
class Outcome:
    status: str
    result: dict | None = None
    error: str | None = None


def run_action(ctx: Context, position: int, action: Mapping[str, Any]) -> Outcome:
    """Do one action and record it with its idempotency key, in one transaction."""
    from formloom.runtime.actions import ACTIONS

    session = ctx.session
    key = f"{ctx.run.key}:{position}"
    done = session.scalar(select(ActionRun).where(ActionRun.key == key))
    if done is not None and done.status == RunStatus.SUCCEEDED.value:
        return Outcome(done.status, done.result)
    started = utcnow()
    session.info[events.DEPTH] = ctx.run.depth + 1
    try:
        result = ACTIONS[action["type"]](ctx, action, key)
        _record_action(session, ctx.run, position, action, key, RunStatus.SUCCEEDED, result, None, started)
        session.commit()
        return Outcome(RunStatus.SUCCEEDED.value, result)
    except Exception as exc:
        session.rollback()
        message = exc.message if isinstance(exc, FormloomError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, FormloomError):
            message += "\n" + traceback.format_exc(limit=3)
        _record_action(session, session.get(RuleRun, ctx.run.id), position, action, key, RunStatus.FAILED, None,
                       message, started)
        session.commit()
        return Outcome(RunStatus.FAILED.value, None, message)
    finally:
        session.info.pop(events.DEPTH, None)


def _record_action(session: Session, run: RuleRun, position: int, action: Mapping[str, Any], key: str,
                   status: RunStatus, result: dict | None, error: str | None, started: datetime) -> None:
    row = session.scalar(select(ActionRun).where(ActionRun.key == key))
    if row is None:
        row = ActionRun(run_id=run.id, position=position, kind=action["type"], key=key)
        session.add(row)
    row.status, row.result, row.error, row.started_at, row.finished_at = status.value, result, error, started, utcnow()


def retry_run(session: Session, run_id: int, settings: Settings) -> RuleRun:
    """Run a failed run again: the actions that succeeded are not repeated."""
    run = session.get(RuleRun, run_id)
    if run is None:
        raise FormloomError(f"There is no rule run #{run_id}.")
    if run.status != RunStatus.FAILED.value:
        raise FormloomError(f"Run #{run_id} did not fail (it {run.status}); only failed runs can be retried.")
    app = session.get(App, run.app_id)
    rule = rules_module.get_rule(session, app, run.rule_key)
    if rule is None:
        raise FormloomError(f"Rule '{run.rule_key}' is no longer published; publish it to retry its runs.")
    record = session.get(Record, run.record_id) if run.record_id else None
    trigger_key = run.key[: -len(rule.key) - 1]
    return run_rule(session, app, rule, record, trigger_key, run.trigger, settings, depth=run.depth,
                    event_id=run.event_id, job_id=run.job_id)



# --- dry run ---------------------------------------------------------------------------------

@dataclass
class DryRunItem:
    record_id: int | None
    title: str
    trigger: str
    matched: bool | None
    status: str
    reason: str | None
    actions: list[dict]


def dry_run(engine, app_id: int, rule_body: Mapping[str, Any], settings: Settings, *, days: int | None = None,
            limit: int = 100, now: datetime | None = None) -> list[DryRunItem]:
    """What ``rule_body`` would do, with no side effects.

    With ``days``, the rule is run against the events of the last ``days`` days that it answers;
    without, against the entity's live records (newest first). Everything runs inside one
    database transaction that is rolled back at the end: the run log, assignments, records,
    notifications and deliveries it would make are computed for real and then discarded, so
    an assignment shows who would have got each record, in turn.
    """
    from sqlalchemy.orm import Session as OrmSession

    now = now or utcnow()
    out: list[DryRunItem] = []
    # A writer's connection (SQLite takes its write lock at BEGIN), rolled back at the end.
    with engine.execution_options(formloom_write=True).connect() as connection:
        outer = connection.begin()
        session = OrmSession(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            app = session.get(App, app_id)
            rule_body = {**rule_body, "enabled": True}  # a disabled rule can be tried before it is switched on
            rule = Rule(key=rule_body["key"], version=0, body=rule_body, entity_key=rule_body["entity"],
                        trigger=Trigger(rule_body["trigger"]["type"]), published_by=None)
            for record, trigger_key, trigger in _dry_targets(session, app, rule, days, limit, now):
                run = run_rule(session, app, rule, record, f"dry:{trigger_key}", trigger, settings, now=now)
                out.append(DryRunItem(record.id if record else None, record.title if record else "", trigger,
                                      run.matched, run.status, run.reason,
                                      [{"type": a.kind, "status": a.status, "result": a.result, "error": a.error}
                                       for a in run.actions]))
        finally:
            session.close()
            outer.rollback()
    return out


def _dry_targets(session: Session, app: App, rule: Rule, days: int | None, limit: int, now: datetime):
    from datetime import timedelta

    if days is not None and rule.trigger not in rules_module.TIMED:
        rows = session.scalars(select(Event).where(Event.app_id == app.id, Event.entity_key == rule.entity_key,
                                                   Event.created_at >= now - timedelta(days=days))
                               .order_by(Event.id))
        count = 0
        for event in rows:
            if count >= limit:
                break
            if rule.answers(event.kind, event.entity_key, event.payload):
                count += 1
                record = session.get(Record, event.record_id) if event.record_id else None
                yield record, f"event:{event.id}", rule.trigger.value
        return
    ids = list(session.scalars(select(Record.id).where(Record.app_id == app.id, Record.entity_key == rule.entity_key,
                                                       Record.deleted_at.is_(None))
                               .order_by(Record.id.desc()).limit(limit)))
    for record_id in reversed(ids):  # oldest of the newest first, the order they arrived in
        yield session.get(Record, record_id), f"record:{record_id}", rule.trigger.value


# --- health ----------------------------------------------------------------------------------

def health(session: Session, now: datetime | None = None, app_id: int | None = None) -> dict:
    """What the queue holds: waiting, handed to the queue, failed runs, the oldest overdue item."""
    from sqlalchemy import func

    now = now or utcnow()

    def count(model, *where) -> int:
        query = select(func.count()).select_from(model).where(*where)
        if app_id is not None:
            query = query.where(model.app_id == app_id)
        return session.scalar(query) or 0

    def oldest(model, column, *where):
        query = select(func.min(column)).where(*where)
        if app_id is not None:
            query = query.where(model.app_id == app_id)
        return session.scalar(query)

    waiting = (WorkStatus.PENDING.value,)
    oldest_event = oldest(Event, Event.created_at, Event.status.in_(waiting + (WorkStatus.ENQUEUED.value,)))
    oldest_job = oldest(ScheduledJob, ScheduledJob.due_at, ScheduledJob.due_at <= now,
                        ScheduledJob.status.in_(waiting + (WorkStatus.ENQUEUED.value,)))
    candidates = [m for m in (oldest_event, oldest_job) if m is not None]
    oldest_due = min(candidates) if candidates else None
    return {
        "events_waiting": count(Event, Event.status == WorkStatus.PENDING.value),
        "events_running": count(Event, Event.status == WorkStatus.ENQUEUED.value),
        "jobs_due": count(ScheduledJob, ScheduledJob.status == WorkStatus.PENDING.value, ScheduledJob.due_at <= now),
        "jobs_running": count(ScheduledJob, ScheduledJob.status == WorkStatus.ENQUEUED.value),
        "jobs_scheduled": count(ScheduledJob, ScheduledJob.status == WorkStatus.PENDING.value,
                                ScheduledJob.due_at > now),
        "runs_failed": count(RuleRun, RuleRun.status == RunStatus.FAILED.value),
        "runs_stopped": count(RuleRun, RuleRun.status == RunStatus.STOPPED.value),
        "oldest_due_at": oldest_due,
        "oldest_due_seconds": (now - oldest_due).total_seconds() if oldest_due else None,
    }

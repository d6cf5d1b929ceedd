"""What a rule can do. Each action takes the run's context, its definition and its idempotency key,
does its work in the context's session (committed by the engine together with the action's row)
and returns what the run log shows.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from formloom.platform.auth import Cause
from formloom.platform.db import json_value
from formloom.platform.models import (
    AppMember,
    AssignmentCursor,
    CauseKind,
    Record,
    ScheduledJob,
    User,
)
from formloom.runtime import catalog, notifications, pipelines, records
from formloom.runtime.automation import ActionFailed, Context
from formloom.runtime.labels import text_of
from formloom.runtime.validation import Situation


def _cause(ctx: Context) -> Cause:
    return Cause(CauseKind.RULE, ctx.actor.id, f"run:{ctx.run.id}")


def _record(ctx: Context) -> Record:
    if ctx.record is None or ctx.record.deleted_at is not None:
        raise ActionFailed("The record is gone (deleted); there is nothing to act on.")
    return ctx.record


# --- assign ----------------------------------------------------------------------------------

def _available(ctx: Context, action: Mapping[str, Any]) -> tuple[list[User], list[str]]:
    """Who may be assigned, in a stable order, and who was skipped and why."""
    query = select(User).order_by(User.id)
    if "users" in action:
        query = query.where(User.username.in_(action["users"]))
    else:
        query = query.join(AppMember, AppMember.user_id == User.id).where(
            AppMember.app_id == ctx.app.id, AppMember.role == action["role"])
    people, skipped = [], []
    for user in ctx.session.scalars(query):
        if not user.is_active:
            skipped.append(f"{user.display_name} (inactive)")
        elif user.away_until is not None and user.away_until > ctx.now:
            skipped.append(f"{user.display_name} (away until {user.away_until:%Y-%m-%d})")
        else:
            people.append(user)
    return people, skipped


def assign(ctx: Context, action: Mapping[str, Any], key: str) -> dict:
    record = _record(ctx)
    field = action["field"]
    if action.get("only_if_empty", True) and record.data.get(field) is not None:
        return {"assigned": None, "why": f"Already assigned; {field} is set, so nothing changed."}
    strategy = action["strategy"]
    if strategy == "by_field":
        chosen, why = _by_field(ctx, action, record)
    else:
        people, skipped = _available(ctx, action)
        if not people:
            raise ActionFailed("No one can be assigned: every candidate is inactive or away"
                               + (f" ({', '.join(skipped)})" if skipped else "") + ".")
        chosen, why = (_round_robin if strategy == "round_robin" else _least_open)(ctx, action, record, people)
        if skipped:
            why += f" Skipped: {', '.join(skipped)}."
    records.update(ctx.session, ctx.actor, _cause(ctx), ctx.app, record, {field: chosen.id}, record.version,
                   situation=Situation(user_id=ctx.actor.id, record_id=record.id, now=ctx.now),
                   detail={"why": why, "rule": ctx.rule.key})
    return {"assigned": chosen.id, "name": chosen.display_name, "why": why}


def _round_robin(ctx: Context, action: Mapping[str, Any], record: Record, people: list[User]) -> tuple[User, str]:
    cursor_key = f"{ctx.rule.key}:{action['field']}"
    cursor = ctx.session.scalar(select(AssignmentCursor).where(
        AssignmentCursor.app_id == ctx.app.id, AssignmentCursor.key == cursor_key).with_for_update())
    if cursor is None:
        cursor = AssignmentCursor(app_id=ctx.app.id, key=cursor_key, last_user_id=None)
        ctx.session.add(cursor)
    after = [u for u in people if cursor.last_user_id is not None and u.id > cursor.last_user_id]
    chosen = (after or people)[0]
    previous = ctx.session.get(User, cursor.last_user_id) if cursor.last_user_id else None
    cursor.last_user_id = chosen.id
    order = ", ".join(u.display_name for u in people)
    return chosen, (f"Round-robin among {order}: next after {previous.display_name}." if previous
                    else f"Round-robin among {order}: first in turn.")


def _least_open(ctx: Context, action: Mapping[str, Any], record: Record, people: list[User]) -> tuple[User, str]:
    field = action["field"]
    owner = json_value(Record.data, field, numeric=True)
    query = select(owner, func.count()).where(
        Record.app_id == ctx.app.id, Record.entity_key == record.entity_key, Record.deleted_at.is_(None),
        Record.id != record.id, owner.in_([u.id for u in people])).group_by(owner)
    pipeline = pipelines.pipeline_for(ctx.session, ctx.app, record.entity_key)
    if pipeline is not None:  # open records: those in an open stage
        open_stages = [s.key for s in pipeline.stages if s.outcome.value == "open"]
        query = query.where(json_value(Record.data, pipeline.stage_field).in_(open_stages))
    counts = {int(uid): n for uid, n in ctx.session.execute(query)}
    chosen = min(people, key=lambda u: (counts.get(u.id, 0), u.id))
    load = ", ".join(f"{u.display_name} {counts.get(u.id, 0)}" for u in people)
    return chosen, f"Fewest open records ({load}): {chosen.display_name}."


def _by_field(ctx: Context, action: Mapping[str, Any], record: Record) -> tuple[User, str]:
    value = record.data.get(action["map_field"])
    username = action["map"].get(str(value)) if value is not None else None
    if username is None:
        raise ActionFailed(f"No one is mapped for {action['map_field']} = {value!r}; add it to the rule's map.")
    user = ctx.session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active or (user.away_until is not None and user.away_until > ctx.now):
        raise ActionFailed(f"{username}, mapped for {action['map_field']} = {value!r}, is inactive, away or unknown.")
    return user, f"{action['map_field']} is {value!r}, which the rule maps to {user.display_name}."


# --- notify and e-mail -----------------------------------------------------------------------

def recipients(ctx: Context, to: Mapping[str, Any]) -> list[User]:
    """The active users a ``to`` spec names for this record."""
    from formloom.runtime.approvals import managers_of

    ids: list[int] = []
    record = ctx.record
    if to.get("owner") and record is not None and record.owner_id:
        ids.append(record.owner_id)
    if to.get("owner_manager") and record is not None and record.owner_id:
        ids += managers_of(ctx.session, record.owner_id)
    if "field" in to and record is not None:
        value = record.data.get(to["field"])
        ids += [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, int)]
    if "role" in to:
        ids += ctx.session.scalars(select(AppMember.user_id).where(AppMember.app_id == ctx.app.id,
                                                                   AppMember.role == to["role"]))
    if "users" in to:
        ids += ctx.session.scalars(select(User.id).where(User.username.in_(to["users"])))
    ids = list(dict.fromkeys(ids))
    return [u for u in (ctx.session.get(User, i) for i in ids) if u is not None and u.is_active]


def _text(value: Any, locale: str | None, record: Record | None) -> str:
    text = text_of(value, locale or "en")
    title = record.title if record is not None else ""
    return text.replace("{title}", title)


def notify(ctx: Context, action: Mapping[str, Any], key: str) -> dict:
    people = recipients(ctx, action["to"])
    sent = []
    for user in people:
        note = notifications.notify(
            ctx.session, user.id, _text(action["title"], user.locale, ctx.record),
            body=_text(action.get("message"), user.locale, ctx.record) or None, app_id=ctx.app.id,
            record_id=ctx.record.id if ctx.record else None, entity_key=ctx.rule.entity_key,
            key=f"{key}:{user.id}", at=ctx.now)
        if action.get("email") and user.email:
            _queue_email(ctx, f"{key}:{user.id}", user, note.title, note.body or "")
            note.email_status = "queued" if ctx.settings.smtp else "not configured"
        sent.append(user.display_name)
    return {"notified": sent}


def email(ctx: Context, action: Mapping[str, Any], key: str) -> dict:
    people = [u for u in recipients(ctx, action["to"]) if u.email]
    for user in people:
        _queue_email(ctx, f"{key}:{user.id}", user, _text(action["subject"], user.locale, ctx.record),
                     _text(action.get("body"), user.locale, ctx.record))
    return {"emailed": [u.email for u in people], "smtp": bool(ctx.settings.smtp)}


def _queue_email(ctx: Context, key: str, user: User, subject: str, body: str) -> None:
    from formloom.runtime.deliveries import email_due

    _schedule(ctx, f"email:{key}", "email", email_due(ctx.session, ctx.app, ctx.now),
              {"to": user.email, "subject": subject, "body": body})


def _schedule(ctx: Context, key: str, kind: str, due: datetime, payload: dict) -> None:
    if ctx.session.scalar(select(ScheduledJob.id).where(ScheduledJob.key == key)) is None:
        ctx.session.add(ScheduledJob(app_id=ctx.app.id, key=key, kind=kind, rule_key=ctx.rule.key,
                                     record_id=ctx.record.id if ctx.record else None, due_at=due, payload=payload))


# --- pipelines -------------------------------------------------------------------------------

def move(ctx: Context, action: Mapping[str, Any], key: str) -> dict:
    """Move the record (its gate applies; a move needing approval asks for it)."""
    record = _record(ctx)
    requester = ctx.session.get(User, record.owner_id) if record.owner_id else None
    user = requester if requester is not None and requester.is_active else ctx.actor
    result = pipelines.move(ctx.session, user, _cause(ctx), ctx.app, record, action["stage"],
                            comment=action.get("comment"), situation=Situation(user_id=user.id, now=ctx.now))
    out = {"status": result.status.value, "stage": action["stage"]}
    if result.request is not None:
        out["approval"] = result.request.id
    return out


# --- values ----------------------------------------------------------------------------------

def _values(ctx: Context, action: Mapping[str, Any], target_entity: str) -> dict:
    from formloom.runtime.compiler import formula_fields
    from formloom.runtime.formulas import FormulaError, FormulaRuntimeError, compile_formula, to_stored

    values = dict(action.get("values") or {})
    if action.get("formulas"):
        source = catalog.entity(ctx.session, ctx.app, ctx.rule.entity_key)
        target = catalog.entity(ctx.session, ctx.app, target_entity)
        info = formula_fields(list(source.body["fields"]), source.related)
        data = ctx.record.data if ctx.record is not None else {}
        for field_key, expression in action["formulas"].items():
            try:
                value = compile_formula(expression, info).evaluate(data, today=ctx.now.date(), now=ctx.now)
            except (FormulaError, FormulaRuntimeError) as exc:
                raise ActionFailed(f"The formula for {field_key} could not be computed: {exc}") from None
            spec = target.by_key[field_key]
            values[field_key] = to_stored(value, target.kinds[field_key], spec.definition.get("precision", 2))
    return values


def update(ctx: Context, action: Mapping[str, Any], key: str) -> dict:
    record = _record(ctx)
    values = _values(ctx, action, record.entity_key)
    records.update(ctx.session, ctx.actor, _cause(ctx), ctx.app, record, values, record.version,
                   situation=Situation(user_id=ctx.actor.id, record_id=record.id, now=ctx.now))
    return {"updated": sorted(values)}


def create(ctx: Context, action: Mapping[str, Any], key: str) -> dict:
    values = _values(ctx, action, action["entity"])
    if action.get("link_field") and ctx.record is not None:
        values[action["link_field"]] = ctx.record.id
    created = records.create(ctx.session, ctx.actor, _cause(ctx), ctx.app, action["entity"], values,
                             situation=Situation(user_id=ctx.actor.id, now=ctx.now))
    return {"created": created.id, "entity": action["entity"], "title": created.title}


# --- aggregate -------------------------------------------------------------------------------

_AGGREGATES = {"sum": func.sum, "min": func.min, "max": func.max, "avg": func.avg}


def aggregate(ctx: Context, action: Mapping[str, Any], key: str) -> dict:
    """Sum, count, ... the live records linked to this one (in SQL) and write the result to ``field``.

    Deleted records never count; the result is stored like a formula's (numbers as decimal text
    with the field's places), and an unchanged value changes nothing, so a nightly run of the
    same data leaves no trace in the history.
    """
    from formloom.runtime.filters import filter_sql
    from formloom.runtime.formulas import to_stored
    from formloom.runtime.rules import app_zone

    record = _record(ctx)
    source = action["source"]
    other = catalog.entity(ctx.session, ctx.app, source["entity"])
    where = [Record.app_id == ctx.app.id, Record.entity_key == other.key, Record.deleted_at.is_(None),
             json_value(Record.data, source["link_field"], numeric=True) == record.id]
    if source.get("where"):
        today = ctx.now.astimezone(app_zone(ctx.session, ctx.app)).date()
        where.append(filter_sql(source["where"], other.kinds, user_id=record.owner_id,
                                dialect=ctx.session.get_bind().dialect.name, today=today, now=ctx.now))
    function = source["function"]
    if function == "count":
        result = ctx.session.scalar(select(func.count(Record.id)).where(*where))
    else:
        value_field = source["value_field"]
        numeric = other.kinds[value_field] == "number"
        column = json_value(Record.data, value_field, numeric=numeric)
        result = ctx.session.scalar(select(_AGGREGATES[function](column)).where(*where, column.is_not(None)))
        if function == "sum" and result is None:
            result = 0  # nothing linked: the sum is zero (min, max and avg stay empty)
    entity = catalog.entity(ctx.session, ctx.app, record.entity_key)
    spec = entity.by_key[action["field"]]
    kind = entity.kinds[action["field"]]
    value = result  # min and max of dates and moments: their stored ISO text already
    if kind == "number" and result is not None:
        value = to_stored(Decimal(str(result)), kind, spec.definition.get("precision", 2))
        if spec.type.name == "integer":
            value = int(Decimal(value))
    if record.data.get(action["field"]) == value:
        return {"field": action["field"], "value": value, "changed": False}
    records.update(ctx.session, ctx.actor, _cause(ctx), ctx.app, record, {action["field"]: value}, record.version,
                   situation=Situation(user_id=ctx.actor.id, record_id=record.id, now=ctx.now),
                   detail={"rule": ctx.rule.key, "aggregate": f"{function} of {other.key}"})
    return {"field": action["field"], "value": value, "changed": True}


# --- webhook ---------------------------------------------------------------------------------

def webhook(ctx: Context, action: Mapping[str, Any], key: str) -> dict:
    """Queue the delivery (in the database); the delivery job signs, sends and retries it."""
    from formloom.runtime.deliveries import webhook_payload

    _schedule(ctx, f"webhook:{key}", "webhook", ctx.now, {
        "url": action["url"], "secret": action.get("secret"), "max_attempts": action.get("max_attempts", 5),
        "body": webhook_payload(ctx, key, action.get("role")), "attempt": 0})
    return {"queued": action["url"]}


ACTIONS = {"assign": assign, "notify": notify, "email": email, "move": move, "request_approval": move,
           "update": update, "create": create, "webhook": webhook, "aggregate": aggregate}

"""The public pool (公海): records nobody owns, which reps claim and give back.

An entity with ``"pool": {"field": "owner"}`` has a pool: its records whose pool field is empty.
Claiming one is a conditional UPDATE (only while the field is still empty, at the version read),
so of two reps claiming at once exactly one wins and the other is told who was faster. Claims
and returns are written like any other change: a change-log row (cause: the user or token),
the version bumped, an ``updated`` event for the rules. Who may do what (``docs/pool.md``):

- claim: whoever may read the record and may update records of the entity;
- return: the record's holder, or someone whose update scope over it is their team's or all.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from formloom.platform.auth import Action, Cause, authorize
from formloom.platform.db import json_value, utcnow
from formloom.platform.errors import Conflict, Forbidden, FormloomError, NotFound
from formloom.platform.models import App, ChangeAction, ChangeLog, Record, User
from formloom.runtime import access, catalog, events, pipelines, records
from formloom.runtime.access import RecordAction, Scope
from formloom.runtime.compiler import CompiledEntity
from formloom.runtime.fields import ID_LIMIT
from formloom.runtime.rules import EventKind

REASON_MAX = 2000


class AlreadyClaimed(Conflict):
    code = "already_claimed"


class PoolLimitReached(Conflict):
    code = "pool_limit_reached"


def pool_of(entity: CompiledEntity) -> Mapping[str, Any] | None:
    return entity.body.get("pool")


def _pool(session: Session, app: App, entity_key: str) -> tuple[CompiledEntity, Mapping[str, Any]]:
    entity = catalog.entity(session, app, entity_key)
    pool = pool_of(entity)
    if pool is None:
        raise NotFound(f"Entity '{entity_key}' has no public pool.")
    return entity, pool


def in_pool(session: Session, user: User, app: App, entity_key: str, limit: int = 200) -> list[Record]:
    """The pool's records the user may read, newest first."""
    authorize(session, user, Action.READ_RECORDS, app)
    _, pool = _pool(session, app, entity_key)
    rules = access.policy(session, user, app)
    rules.require(entity_key, RecordAction.READ)
    return list(session.scalars(select(Record).where(
        Record.app_id == app.id, Record.entity_key == entity_key, Record.deleted_at.is_(None),
        rules.scope(entity_key), json_value(Record.data, pool["field"]).is_(None))
        .order_by(Record.updated_at.desc(), Record.id.desc()).limit(limit)))


def record_to_claim(session: Session, user: User, app: App, entity_key: str, record_id: int) -> Record:
    """The record a claim is about; 409 naming the holder for one just claimed out of sight.

    A record someone else claimed may fall out of the claimer's read scope at once (reps read the
    pool and their own leads): the one who was slower is told who was faster instead of "not
    found", but only when the record's last change was that claim, so no other record is revealed.
    """
    try:
        return records.get(session, user, app, entity_key, record_id)
    except NotFound:
        record = session.get(Record, record_id) if 1 <= record_id <= ID_LIMIT else None
        if record is None or record.app_id != app.id or record.entity_key != entity_key or record.deleted_at:
            raise
        entity = catalog.entity(session, app, entity_key)
        last = session.scalar(select(ChangeLog.detail).where(ChangeLog.record_id == record.id)
                              .order_by(ChangeLog.id.desc()).limit(1))
        if pool_of(entity) is None or not isinstance(last, dict) or last.get("pool") != "claimed":
            raise
        raise _taken(session, entity, record, pool_of(entity)["field"], user) from None


def claim(session: Session, user: User, cause: Cause, app: App, record: Record,
          now: datetime | None = None) -> Record:
    """Give a pool record to ``user`` (the caller commits); 409 when someone else has it or at the limit."""
    now = now or utcnow()
    authorize(session, user, Action.UPDATE_RECORD, app)
    entity, pool = _pool(session, app, record.entity_key)
    rules = access.policy(session, user, app)
    rules.check(session, record, RecordAction.READ)
    rules.require(entity.key, RecordAction.UPDATE)
    field = pool["field"]
    if record.data.get(field) is not None:
        raise _taken(session, entity, record, field, user)
    if "max_per_user" in pool:
        _within_limit(session, app, entity, field, user, pool["max_per_user"])
    return _write(session, user, cause, app, entity, record, {field: user.id}, expect_empty=field, now=now,
                  detail={"pool": "claimed"})


def give_back(session: Session, user: User, cause: Cause, app: App, record: Record, reason: str,
              now: datetime | None = None) -> Record:
    """Return a record to the pool with a reason (the caller commits)."""
    now = now or utcnow()
    authorize(session, user, Action.UPDATE_RECORD, app)
    entity, pool = _pool(session, app, record.entity_key)
    rules = access.policy(session, user, app)
    rules.check(session, record, RecordAction.READ)
    field = pool["field"]
    reason = (reason or "").strip()
    if not reason:
        raise FormloomError("Say why the record goes back to the pool: the reason is required.")
    if len(reason) > REASON_MAX or "\x00" in reason:
        raise FormloomError(f"The reason must be text of at most {REASON_MAX} characters.")
    holder = record.data.get(field)
    if holder is None:
        raise Conflict(f"{_name(entity, record)} is already in the pool.")
    if holder != user.id and not _may_return_others(session, rules, record):
        raise Forbidden(f"Only the holder of {_name(entity, record)}, or someone who may update their team's or "
                        f"all {entity.key} records, can return it to the pool.")
    values: dict[str, Any] = {field: None}
    if pool.get("returned_at_field"):
        moment = now.astimezone(UTC)
        kind = entity.by_key[pool["returned_at_field"]].type.name
        values[pool["returned_at_field"]] = (moment.date().isoformat() if kind == "date"
                                             else moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
    if pool.get("reason_field"):
        values[pool["reason_field"]] = reason
    return _write(session, user, cause, app, entity, record, values, expect_holder=(field, holder), now=now,
                  detail={"pool": "returned", "reason": reason})


def _may_return_others(session: Session, rules: access.Policy, record: Record) -> bool:
    grant = rules.grant(record.entity_key, RecordAction.UPDATE)
    return grant.scope in (Scope.TEAM, Scope.ALL) and rules.permits(session, record, RecordAction.UPDATE)


def _within_limit(session: Session, app: App, entity: CompiledEntity, field: str, user: User, limit: int) -> None:
    """At most ``limit`` open claims: records held in the pool field (in an open stage, with a pipeline)."""
    query = select(func.count(Record.id)).where(
        Record.app_id == app.id, Record.entity_key == entity.key, Record.deleted_at.is_(None),
        json_value(Record.data, field, numeric=True) == user.id)
    pipeline = pipelines.pipeline_for(session, app, entity.key)
    if pipeline is not None:
        open_stages = [s.key for s in pipeline.stages if s.outcome.value == "open"]
        query = query.where(json_value(Record.data, pipeline.stage_field).in_(open_stages))
    held = session.scalar(query) or 0
    if held >= limit:
        raise PoolLimitReached(f"You already hold {held} open {entity.key} records, the most one person may claim "
                               f"from the pool ({limit}); close or return one first.")


def _write(session: Session, user: User, cause: Cause, app: App, entity: CompiledEntity, record: Record,
           values: Mapping[str, Any], *, now: datetime, detail: dict, expect_empty: str | None = None,
           expect_holder: tuple[str, int] | None = None) -> Record:
    """One conditional UPDATE at the version read; then the change log and the event, like records.update."""
    before = dict(record.data)
    data = {**before, **values}
    changes = records.diff(before, data)
    version = record.version
    owner_id = record.owner_id
    if entity.body.get("owner_field") in values:
        owner_id = values[entity.body["owner_field"]]  # in the pool: owned by no one
    where = [Record.id == record.id, Record.version == version, Record.deleted_at.is_(None)]
    if expect_empty:
        where.append(json_value(Record.data, expect_empty).is_(None))
    if expect_holder:
        where.append(json_value(Record.data, expect_holder[0], numeric=True) == expect_holder[1])
    try:
        done = session.execute(update(Record).where(*where).values(
            data=data, version=version + 1, owner_id=owner_id, updated_at=now, updated_by=user.id)
            .execution_options(synchronize_session=False))
        matched = done.rowcount
    except OperationalError:  # SQLite: another writer holds the database; answer as for a lost race
        matched = 0
    if matched != 1:
        session.rollback()
        fresh = session.get(Record, record.id)
        session.refresh(fresh)
        if expect_empty and fresh.data.get(expect_empty) is not None:
            raise _taken(session, entity, fresh, expect_empty, user)
        raise Conflict(f"{_name(entity, fresh)} changed while you were looking at it; reload it and try again.")
    session.refresh(record)
    records._log(session, record, ChangeAction.UPDATE, changes, cause, record_version=version + 1, at=now,
                 detail=detail)
    events.emit(session, app, EventKind.UPDATED, record, {"changes": changes}, user.id, now)
    session.flush()
    return record


def _taken(session: Session, entity: CompiledEntity, record: Record, field: str, user: User) -> AlreadyClaimed:
    holder = session.get(User, record.data.get(field))
    if holder is not None and holder.id == user.id:
        return AlreadyClaimed(f"You already hold {_name(entity, record)}.")
    who = holder.display_name if holder is not None else f"user #{record.data.get(field)}"
    return AlreadyClaimed(f"{_name(entity, record)} was already claimed by {who}.")


def _name(entity: CompiledEntity, record: Record) -> str:
    return f"{entity.key.capitalize()} '{record.title or '#' + str(record.id)}'"

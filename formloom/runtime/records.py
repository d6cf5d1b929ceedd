"""Records: create, read, update, soft-delete and restore, each change written to the change log.

Views, the API and the CLI all go through these functions; they take the session and the acting
user and never look at the request.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, true
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from formloom.platform.auth import Action, Cause, authorize
from formloom.platform.db import json_value, utcnow
from formloom.platform.errors import Conflict, NotFound, VersionConflict
from formloom.platform.models import App, ChangeAction, ChangeLog, Record, User
from formloom.runtime import access, catalog, events, pipelines, serials
from formloom.runtime.access import RecordAction
from formloom.runtime.compiler import CompiledEntity
from formloom.runtime.fields import ID_LIMIT
from formloom.runtime.rules import EventKind
from formloom.runtime.validation import Situation, defaults, validate_values

TITLE_MAX = 500


class DatabaseResolver:
    """Checks members and related records against the database, within one app.

    With a ``user`` (not a superuser of the app), a record may only refer to records that user
    may read, and only to files they uploaded or that ``kept_files`` (the record's own) holds:
    ids are guessable, and a reference must not become a way to read what one may not.

    ``values`` (an import's :class:`~formloom.runtime.imports.ValueIndex`) answers the unique
    checks of the fields it covers from memory instead of one query per row.
    """

    def __init__(self, session: Session, app: App, user: User | None = None, kept_files: Iterable[int] = (),
                 values: Any = None):
        self.session = session
        self.values = values
        self.app = app
        rules = access.policy(session, user, app) if user is not None else None
        self.rules = None if rules is None or rules.superuser else rules
        self.kept_files = set(kept_files)

    def existing_users(self, ids: Iterable[int]) -> set[int]:
        return set(self.session.scalars(select(User.id).where(User.id.in_(list(ids)), User.is_active)))

    def existing_records(self, entity_key: str, ids: Iterable[int]) -> set[int]:
        readable = self.rules.scope(entity_key) if self.rules is not None else true()
        return set(self.session.scalars(select(Record.id).where(
            Record.id.in_(list(ids)), Record.app_id == self.app.id,
            Record.entity_key == entity_key, Record.deleted_at.is_(None), readable)))

    def record_values(self, entity_key: str, record_id: int) -> Mapping | None:
        record = self.session.get(Record, record_id)
        if (record is None or record.app_id != self.app.id or record.entity_key != entity_key
                or record.deleted_at is not None):
            return None
        return record.data

    def duplicate(self, entity_key: str, field_key: str, value: Any, exclude_id: int | None) -> str | None:
        """The title of another live record of the entity holding ``value`` in ``field_key``."""
        if self.values is not None and self.values.covers(entity_key, field_key):
            return self.values.duplicate(field_key, value, exclude_id)
        numeric = isinstance(value, int) and not isinstance(value, bool)
        query = select(Record.id, Record.title).where(
            Record.app_id == self.app.id, Record.entity_key == entity_key, Record.deleted_at.is_(None),
            json_value(Record.data, field_key, numeric=numeric) == value)
        if exclude_id is not None:
            query = query.where(Record.id != exclude_id)
        row = self.session.execute(query.limit(1)).first()
        return None if row is None else (row.title or f"#{row.id}")

    def file_values(self, ids: Iterable[int]) -> dict[int, dict]:
        from formloom.runtime.files import existing_files, file_value

        found = existing_files(self.session, self.app.id, list(ids))
        return {i: file_value(f) for i, f in found.items()
                if self.rules is None or i in self.kept_files or f.created_by == self.rules.user.id}


def file_ids(entity: CompiledEntity, data: Mapping) -> set[int]:
    """The ids of the files a record's file, image and signature fields hold."""
    from formloom.runtime.fields import FILE_TYPES

    return {i for spec in entity.fields if spec.type.name in FILE_TYPES
            for i in spec.type.file_ids(data.get(spec.key) or [])}


def title_of(entity: CompiledEntity, data: Mapping) -> str:
    value = data.get(entity.title_field) if entity.title_field else None
    return "" if value is None else str(value)[:TITLE_MAX]


def diff(before: Mapping, after: Mapping) -> dict[str, list]:
    """Field diffs as ``{key: [old, new]}`` (None where a side has no value)."""
    return {key: [before.get(key), after.get(key)]
            for key in list(before) + [k for k in after if k not in before]
            if before.get(key) != after.get(key)}


def _log(session: Session, record: Record, action: ChangeAction, changes: dict, cause: Cause,
         record_version: int, at: datetime | None = None, detail: dict | None = None) -> None:
    """Add the change-log row; it is written in the same flush as the record change."""
    session.add(ChangeLog(record=record, record_version=record_version,
                          entity_version=record.entity_version, action=action.value, diff=changes,
                          actor_id=cause.user_id, cause_kind=cause.kind.value, cause_ref=cause.ref,
                          at=at or utcnow(), detail=detail))


def owner_of(entity: CompiledEntity, data: Mapping, fallback: int | None) -> int | None:
    """The record's owner: the entity's owner field when it names one, else ``fallback``."""
    owner_field = entity.body.get("owner_field")
    value = data.get(owner_field) if owner_field else None
    return value if isinstance(value, int) and not isinstance(value, bool) else fallback


def write_change(session: Session, record: Record, changes: dict, cause: Cause, at: datetime | None = None) -> None:
    """Log an update made outside :func:`update` (an admin's migration of values)."""
    _log(session, record, ChangeAction.UPDATE, changes, cause, record_version=record.version + 1, at=at)


def log_change(session: Session, record: Record, action: ChangeAction, changes: dict, cause: Cause) -> None:
    """Log a delete or an update made outside this module (an import rolled back)."""
    _log(session, record, action, changes, cause, record_version=record.version + 1)


def log_event(session: Session, record: Record, cause: Cause, detail: dict, at: datetime | None = None) -> None:
    """Write an entry that changes no value (an approval asked for or decided) to the history."""
    session.add(ChangeLog(record=record, record_version=record.version, entity_version=record.entity_version,
                          action=ChangeAction.APPROVAL.value, diff={}, actor_id=cause.user_id,
                          cause_kind=cause.kind.value, cause_ref=cause.ref, detail=detail, at=at or utcnow()))


def create(session: Session, user: User, cause: Cause, app: App, entity_key: str,
           values: Mapping[str, Any], *, locale: str = "en", situation: Situation | None = None,
           known: Any = None) -> Record:
    """Validate ``values`` against the latest published entity and store a new record.

    A record of an entity with a pipeline must meet the gate of the stage it starts in.
    """
    authorize(session, user, Action.CREATE_RECORD, app)
    entity = catalog.entity(session, app, entity_key)
    rules = access.policy(session, user, app)
    rules.require(entity.key, RecordAction.CREATE)
    situation = situation or Situation(user_id=user.id)
    # Fields the input does not mention start at their default (the HTML form shows it pre-filled).
    starting = {k: v for k, v in defaults(entity, situation).items() if k not in values}
    data = validate_values(entity, {**starting, **values}, resolver=DatabaseResolver(session, app, user, values=known),
                           locale=locale, situation=situation)
    rules.refuse_locked_fields(entity.key, values, defaults(entity, situation), data)
    pipeline = pipelines.check_stage_change(session, app, entity, None, data, {}, situation, None, locale)
    now = situation.now
    for spec in entity.fields:
        if spec.type.name == "serial":
            data[spec.key] = serials.next_value(session, app.id, entity.key, spec.key,
                                                spec.definition["pattern"], situation.now)
    record = Record(app_id=app.id, entity_key=entity.key, entity_version=entity.version, data=data,
                    title=title_of(entity, data), owner_id=owner_of(entity, data, user.id), created_at=now,
                    created_by=user.id, updated_at=now, updated_by=user.id)
    session.add(record)
    changes = diff({}, data)
    _log(session, record, ChangeAction.CREATE, changes, cause, record_version=1, at=now)
    session.flush()
    events.emit(session, app, EventKind.CREATED, record, {"changes": changes}, user.id, now)
    if pipeline is not None:
        pipelines.record_entry(session, app, pipeline, record, data[pipeline.stage_field], user.id, situation.now)
    return record


def get(session: Session, user: User, app: App, entity_key: str, record_id: int, *,
        include_deleted: bool = False) -> Record:
    authorize(session, user, Action.READ_RECORDS, app)
    record = session.get(Record, record_id) if 1 <= record_id <= ID_LIMIT else None
    if (record is None or record.app_id != app.id or record.entity_key != entity_key
            or (record.deleted_at is not None and not include_deleted)):
        raise NotFound(f"There is no {entity_key} record #{record_id}.")
    access.policy(session, user, app).check(session, record, RecordAction.READ)  # 404 outside one's scope
    return record


def update(session: Session, user: User, cause: Cause, app: App, record: Record,
           values: Mapping[str, Any], expected_version: int, *, locale: str = "en",
           situation: Situation | None = None, move: pipelines.Move | None = None,
           detail: dict | None = None, known: Any = None) -> Record:
    """Apply ``values`` (some or all fields) to a record last seen at ``expected_version``.

    A stale ``expected_version`` raises :class:`VersionConflict` naming what changed meanwhile;
    the database re-checks the version in the UPDATE itself, so two writers that both passed
    the first check still cannot both win. A change of the stage field must pass the stage's
    gate (``move`` carries what a move through :func:`pipelines.move` added).
    """
    authorize(session, user, Action.UPDATE_RECORD, app)
    rules = access.policy(session, user, app)
    rules.check(session, record, RecordAction.UPDATE)
    if record.deleted_at is not None:
        raise NotFound(f"{record.entity_key.capitalize()} #{record.id} is deleted; restore it first.")
    if record.version != expected_version:
        raise version_conflict(session, record, expected_version)
    entity = catalog.entity(session, app, record.entity_key)
    before = dict(record.data)
    situation = situation or Situation(user_id=user.id)
    situation.record_id = record.id
    data = validate_values(entity, values, base=before,
                           resolver=DatabaseResolver(session, app, user, file_ids(entity, before), known),
                           locale=locale, situation=situation)
    rules.refuse_locked_fields(entity.key, values, before, data)
    changes = diff(before, data)
    if not changes:
        return record
    pipeline = pipelines.check_stage_change(session, app, entity, record, data, before, situation, move, locale)
    record.data = data  # a new dict: in-place edits of JSON are not detected
    record.title = title_of(entity, data)
    owner_field = entity.body.get("owner_field")
    if owner_field in changes and owner_of(entity, data, None) is None:
        record.owner_id = None  # the owner field was emptied: owned by no one (a record back in its pool)
    else:
        record.owner_id = owner_of(entity, data, record.owner_id)
    record.entity_version = entity.version
    record.updated_at = situation.now
    record.updated_by = user.id
    _log(session, record, ChangeAction.UPDATE, changes, cause, record_version=expected_version + 1,
         at=situation.now, detail=detail)
    try:
        session.flush()
    except (StaleDataError, OperationalError) as exc:
        # StaleDataError: the UPDATE matched no row at our version. OperationalError on SQLite:
        # a read transaction could not take the write lock because another write came first.
        session.rollback()
        fresh = session.get(Record, record.id)
        if fresh.version == expected_version:
            raise Conflict("The database is busy with another change to this record; try again.") from exc
        raise version_conflict(session, fresh, expected_version) from None
    events.emit(session, app, EventKind.UPDATED, record, {"changes": changes}, user.id, situation.now)
    if pipeline is not None:
        pipelines.record_entry(session, app, pipeline, record, data.get(pipeline.stage_field), user.id,
                               situation.now, move)
    return record


def version_conflict(session: Session, record: Record, expected_version: int) -> VersionConflict:
    session.refresh(record)
    changed: dict[str, list] = {}
    for row in session.scalars(select(ChangeLog).where(ChangeLog.record_id == record.id,
                                                       ChangeLog.record_version > expected_version)
                               .order_by(ChangeLog.id)):
        for key, (old, new) in row.diff.items():
            changed[key] = [changed.get(key, [old])[0], new]
    return VersionConflict(
        f"This record was changed by someone else while you were editing it (you edited version "
        f"{expected_version}, it is now at version {record.version}). Nothing of yours was saved; "
        f"review the changes and save again.", record.version, changed)


def delete(session: Session, user: User, cause: Cause, app: App, record: Record) -> Record:
    """Soft-delete: the record leaves lists and pickers, and can be restored with its values."""
    authorize(session, user, Action.DELETE_RECORD, app)
    access.policy(session, user, app).check(session, record, RecordAction.DELETE)
    if record.deleted_at is None:
        record.deleted_at = utcnow()
        _log(session, record, ChangeAction.DELETE, {}, cause, record_version=record.version + 1)
        session.flush()
        events.emit(session, app, EventKind.DELETED, record, {}, user.id)
    return record


def restore(session: Session, user: User, cause: Cause, app: App, record: Record) -> Record:
    authorize(session, user, Action.DELETE_RECORD, app)
    access.policy(session, user, app).check(session, record, RecordAction.DELETE)
    if record.deleted_at is not None:
        record.deleted_at = None
        _log(session, record, ChangeAction.RESTORE, {}, cause, record_version=record.version + 1)
        session.flush()
        events.schedule_timers(session, app, record, utcnow())  # its reminders come back
    return record


@dataclass(frozen=True)
class HistoryEntry:
    """One change-log row as a user may see it: values of fields hidden from them left out."""

    id: int
    action: str
    record_version: int
    entity_version: int
    diff: dict
    actor_id: int | None
    cause_kind: str
    cause_ref: str | None
    at: datetime
    detail: dict | None


def history(session: Session, user: User, app: App, record: Record) -> list[HistoryEntry]:
    authorize(session, user, Action.READ_RECORDS, app)
    rules = access.policy(session, user, app)
    rules.check(session, record, RecordAction.READ)
    hidden = rules.hidden(record.entity_key)
    entries = []
    for row in session.scalars(select(ChangeLog).where(ChangeLog.record_id == record.id)
                               .order_by(ChangeLog.id.desc())):
        visible = {k: v for k, v in row.diff.items() if k not in hidden}
        if row.diff and not visible and row.action == ChangeAction.UPDATE.value:
            continue  # a change of hidden fields only: no trace of it
        entries.append(HistoryEntry(row.id, row.action, row.record_version, row.entity_version, visible,
                                    row.actor_id, row.cause_kind, row.cause_ref, row.at,
                                    _visible_detail(row.detail, hidden)))
    return entries


def _visible_detail(detail: dict | None, hidden: frozenset[str]) -> dict | None:
    """An approval entry's detail without values of hidden fields (a gate's filled-in fields)."""
    if not detail or not hidden:
        return detail
    return {k: ({f: x for f, x in v.items() if f not in hidden} if isinstance(v, dict) else v)
            for k, v in detail.items()}

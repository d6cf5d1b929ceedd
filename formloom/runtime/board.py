"""The kanban board of a pipeline: a column per stage with its count, amount total and cards.

Counts and totals are computed in SQL over every record the filters admit; each column shows its
most recently updated cards up to a limit.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from formloom.platform.auth import Action, authorize
from formloom.platform.db import json_value
from formloom.platform.errors import FormloomError
from formloom.platform.models import App, Record, User
from formloom.runtime import access
from formloom.runtime.pipelines import Pipeline, Stage

CARDS_PER_COLUMN = 50


class Scope(str, Enum):
    MINE = "mine"
    TEAM = "team"
    ALL = "all"


class BoardError(FormloomError):
    code = "invalid_query"


@dataclass
class BoardFilter:
    scope: Scope = Scope.ALL
    owner_id: int | None = None  # one owner's records (within the scope)
    date_from: date | None = None  # on the pipeline's date field (else the creation date)
    date_to: date | None = None
    search: str = ""


@dataclass
class Column:
    stage: Stage
    count: int = 0
    total: float = 0.0
    cards: list[Record] = field(default_factory=list)


@dataclass
class Board:
    pipeline: Pipeline
    columns: list[Column]
    outside: int  # records whose stage is not one of the pipeline's


def parse_filter(args) -> BoardFilter:
    """Read ``scope``, ``owner``, ``from``, ``to`` and ``q`` from query parameters."""
    try:
        scope = Scope(args.get("scope") or "all")
    except ValueError:
        raise BoardError(f"Parameter 'scope' must be one of: {', '.join(s.value for s in Scope)}.") from None
    owner = args.get("owner") or None
    if owner is not None and not (owner.isascii() and owner.isdigit() and 0 < int(owner) < 2**31):
        raise BoardError(f"Parameter 'owner' must be a user id, got '{owner}'.")
    if "\x00" in (args.get("q") or ""):
        raise BoardError("The search text contains a NUL character (U+0000); remove it.")
    return BoardFilter(scope=scope, owner_id=int(owner) if owner else None, date_from=_date(args, "from"),
                       date_to=_date(args, "to"), search=(args.get("q") or "").strip()[:200])


def _date(args, name: str) -> date | None:
    raw = args.get(name) or None
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise BoardError(f"Parameter '{name}' must be a date written YYYY-MM-DD, got '{raw}'.") from None


def _conditions(session: Session, user: User, app: App, pipeline: Pipeline, flt: BoardFilter) -> list:
    rules = access.policy(session, user, app)
    rules.require(pipeline.entity_key, access.RecordAction.READ)
    where = [Record.app_id == app.id, Record.entity_key == pipeline.entity_key, Record.deleted_at.is_(None),
             rules.scope(pipeline.entity_key)]
    if flt.scope is Scope.MINE:
        where.append(Record.owner_id == user.id)
    elif flt.scope is Scope.TEAM:
        where.append(Record.owner_id.in_(sorted(rules.team_ids)))
    if flt.owner_id is not None:
        where.append(Record.owner_id == flt.owner_id)
    if pipeline.date_field:
        day = func.substr(json_value(Record.data, pipeline.date_field), 1, 10)  # dates and date-and-times
        if flt.date_from:
            where.append(day >= flt.date_from.isoformat())
        if flt.date_to:
            where.append(day <= flt.date_to.isoformat())
    else:
        if flt.date_from:
            where.append(Record.created_at >= datetime.combine(flt.date_from, time(), UTC))
        if flt.date_to:
            where.append(Record.created_at < datetime.combine(flt.date_to + timedelta(days=1), time(), UTC))
    if flt.search:
        escaped = flt.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(Record.title.ilike(f"%{escaped}%", escape="\\"))
    return where


def load(session: Session, user: User, app: App, pipeline: Pipeline, flt: BoardFilter,
         per_column: int = CARDS_PER_COLUMN) -> Board:
    """The board for ``user`` with ``flt`` applied."""
    authorize(session, user, Action.READ_RECORDS, app)
    where = _conditions(session, user, app, pipeline, flt)
    stage = json_value(Record.data, pipeline.stage_field)
    shown_amount = pipeline.amount_field and pipeline.amount_field not in access.policy(
        session, user, app).hidden(pipeline.entity_key)
    amount = (func.coalesce(func.sum(json_value(Record.data, pipeline.amount_field, numeric=True)), 0)
              if shown_amount else func.count() * 0)
    totals = {key: (count, float(total or 0)) for key, count, total in
              session.execute(select(stage, func.count(), amount).where(*where).group_by(stage))}
    columns = []
    for s in pipeline.stages:
        count, total = totals.pop(s.key, (0, 0.0))
        cards = list(session.scalars(select(Record).where(*where, stage == s.key)
                                     .order_by(Record.updated_at.desc(), Record.id.desc()).limit(per_column)))
        columns.append(Column(s, count, total, cards))
    return Board(pipeline, columns, outside=sum(count for count, _ in totals.values()))

"""Incentives: commission plans (definitions of kind ``commission``) turned into statements and a leaderboard.

A plan names an entity (payments), the amount, date and person fields, a condition (which records
count) and rates: the first rate whose ``when`` matches a record applies, else ``default_rate``
(percent). Everything is computed in SQL, ``SUM(amount * CASE WHEN ... THEN rate ... END) / 100``:

- the **leaderboard** (every app member): per person, the amount and the commission, ranked. It
  holds totals only; a role the amount field is hidden from is refused (no sums of hidden fields).
- a **statement** (one person's lines): read under the viewer's access policy (the entity's read
  scope); a rep sees their own, a manager their teams' people, an app admin everyone's.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.expression import ColumnElement

from formloom.platform.db import json_value
from formloom.platform.errors import Forbidden, NotFound, RecordValidationError
from formloom.platform.models import App, Record, User
from formloom.runtime import access, catalog
from formloom.runtime.access import RecordAction

PERIOD_KINDS = ("month", "quarter", "year")
_PERIOD_RE = re.compile(r"^(\d{4})(?:-(?:(0[1-9]|1[0-2])|Q([1-4])))?$")


@dataclass(frozen=True)
class Period:
    """A month (``2026-11``), a quarter (``2026-Q4``) or a year (``2026``): ``start <= day < end``."""

    code: str
    kind: str
    start: date
    end: date


def parse_period(code: str | None, today: date) -> Period:
    """The period a ``period`` argument names (default: this month); a bad one names the accepted forms."""
    code = (code or f"{today:%Y-%m}").strip()
    match = _PERIOD_RE.match(code)
    if match is None:
        raise RecordValidationError({"period": [f"'{code}' is not a period; use a month (2026-11), a quarter "
                                                f"(2026-Q4) or a year (2026)."]}, f"Period '{code}' is not valid.")
    year, month, quarter = int(match[1]), match[2], match[3]
    if month:
        start, kind = date(year, int(month), 1), "month"
        end = date(year + (start.month == 12), start.month % 12 + 1, 1)
    elif quarter:
        first = 3 * (int(quarter) - 1) + 1
        start, kind = date(year, first, 1), "quarter"
        end = date(year + (first == 10), (first + 2) % 12 + 1, 1)
    else:
        start, end, kind = date(year, 1, 1), date(year + 1, 1, 1), "year"
    return Period(code, kind, start, end)


def recent_periods(today: date) -> list[str]:
    """The periods offered by the page's picker: this and the last 11 months, 4 quarters, 2 years."""
    months = []
    year, month = today.year, today.month
    for _ in range(12):
        months.append(f"{year}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    quarter = (today.month - 1) // 3 + 1
    quarters = [f"{today.year - (quarter - i <= 0)}-Q{(quarter - i - 1) % 4 + 1}" for i in range(4)]
    return months + quarters + [str(today.year), str(today.year - 1)]


# --- plans ------------------------------------------------------------------------------------

def plans(session: Session, app: App) -> list[dict]:
    """The app's published commission plans, by key."""
    return sorted(catalog.published_bodies(session, app, "commission"), key=lambda b: b["key"])


def plan(session: Session, app: App, key: str | None) -> dict:
    """Plan ``key`` (default: the first); 404 naming the plans when there is none such."""
    found = plans(session, app)
    if key:
        found = [p for p in found if p["key"] == key]
    if not found:
        raise NotFound(f"App '{app.key}' has no commission plan{f' {key!r}' if key else ''}; an app admin "
                       f"publishes one (a definition of kind 'commission').")
    return found[0]


# --- the SQL ----------------------------------------------------------------------------------

def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _counted(session: Session, app: App, body: dict, period: Period) -> ColumnElement:
    """The records a plan counts in ``period``: live, matching its condition, dated within the period."""
    day = json_value(Record.data, body["date_field"])
    person = json_value(Record.data, body["person_field"])
    clause = and_(Record.app_id == app.id, Record.entity_key == body["entity"], Record.deleted_at.is_(None),
                  person.is_not(None), day >= period.start.isoformat(), day < period.end.isoformat())
    if body.get("condition"):
        clause = and_(clause, access.condition_sql(body["condition"], 0, _dialect(session)))
    return clause


def _rate(session: Session, body: dict) -> ColumnElement:
    """``CASE WHEN <first rate's condition> THEN rate ... ELSE default_rate END``: the first match wins."""
    whens = [(access.condition_sql(r["when"], 0, _dialect(session)), literal(float(r["rate"])))
             for r in body.get("rates") or []]
    default = literal(float(body["default_rate"]))
    return case(*whens, else_=default) if whens else default


def _amount(body: dict) -> ColumnElement:
    return func.coalesce(json_value(Record.data, body["amount_field"], numeric=True), 0)


def _person(session: Session, body: dict) -> ColumnElement:
    return cast(json_value(Record.data, body["person_field"]), Integer)


def leaderboard(session: Session, user: User, app: App, body: dict, period: Period) -> dict:
    """Every person's totals in ``period``, ranked by commission (ties share a rank)."""
    access.require_member(session, user, app)
    _require_amounts(access.policy(session, user, app), body)
    amount, person = _amount(body), _person(session, body)
    commission = func.sum(amount * _rate(session, body) / 100)
    rows = session.execute(
        select(person.label("person"), func.sum(amount).label("amount"), commission.label("commission"),
               func.rank().over(order_by=commission.desc()).label("rank"), func.count().label("lines"))
        .where(_counted(session, app, body, period)).group_by(person).order_by(commission.desc(), person))
    rows = list(rows)
    names = _names(session, [r.person for r in rows])
    out = [{"user": row.person, "name": names.get(row.person, f"#{row.person}"), "rank": row.rank,
            "amount": _money(row.amount), "commission": _money(row.commission)} for row in rows]
    return {"plan": body["key"], "period": period.code, "start": period.start.isoformat(),
            "end": period.end.isoformat(), "rows": out}


def may_see_statement(session: Session, user: User, app: App, person_id: int) -> bool:
    """One's own; a manager's teams' people; an app admin's (or global admin's) everyone's."""
    rules = access.policy(session, user, app)
    return rules.superuser or person_id == user.id or (rules.role == "manager" and person_id in rules.team_ids)


def statement(session: Session, user: User, app: App, body: dict, period: Period, person_id: int) -> dict:
    """``person_id``'s lines in ``period`` with their rate and commission, and the totals.

    The lines are read under the viewer's read scope of the entity, and fields hidden from the
    viewer's role are neither shown nor summed (their columns are left out).
    """
    access.require_member(session, user, app)
    if not may_see_statement(session, user, app, person_id):
        raise Forbidden("You may see your own commission statement (managers: their teams' people; app admins: "
                        "everyone's), not this person's.")
    rules = access.policy(session, user, app)
    rules.require(body["entity"], RecordAction.READ)
    _require_amounts(rules, body)
    hidden = rules.hidden(body["entity"])
    entity = catalog.entity(session, app, body["entity"])
    relations = [s.key for s in entity.fields if s.type.name == "relation" and s.key not in hidden]
    amount, rate = _amount(body), _rate(session, body)
    joined = {key: aliased(Record, name=f"rel_{key}") for key in relations}
    columns = [Record.id.label("id"), Record.title.label("title"),
               json_value(Record.data, body["date_field"]).label("date"), amount.label("amount"),
               rate.label("rate"), (amount * rate / 100).label("commission")]
    columns += [joined[key].title.label(f"rel_{key}") for key in relations]
    where = and_(_counted(session, app, body, period), _person(session, body) == person_id,
                 rules.scope(body["entity"], RecordAction.READ))
    query = select(*columns).select_from(Record).where(where)
    for key, other in joined.items():
        query = query.outerjoin(other, and_(other.id == cast(json_value(Record.data, key), Integer),
                                            other.deleted_at.is_(None)))
    lines = [{"id": row.id, "title": row.title, "date": str(row.date)[:10], "amount": _money(row.amount),
              "rate": float(row.rate), "commission": _money(row.commission),
              **{key: getattr(row, f"rel_{key}") for key in relations}}
             for row in session.execute(query.order_by(json_value(Record.data, body["date_field"]), Record.id))]
    totals = session.execute(select(func.coalesce(func.sum(amount), 0),
                                    func.coalesce(func.sum(amount * rate / 100), 0), func.count())
                             .select_from(Record).where(where)).one()
    names = _names(session, [person_id])
    return {"plan": body["key"], "period": period.code, "start": period.start.isoformat(),
            "end": period.end.isoformat(), "user": person_id, "name": names.get(person_id, f"#{person_id}"),
            "relations": relations, "lines": lines,
            "totals": {"amount": _money(totals[0]), "commission": _money(totals[1]), "lines": totals[2]}}


def _require_amounts(rules: access.Policy, body: dict) -> None:
    """A role the amount field is hidden from sees no sums of it, nor ranks made from them."""
    if body["amount_field"] in rules.hidden(body["entity"]):
        raise Forbidden(f"Your role may not see field '{body['amount_field']}' of {body['entity']} records, "
                        f"so it cannot see commissions computed from it.")


def _names(session: Session, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    return {u.id: u.display_name or u.username for u in session.scalars(select(User).where(User.id.in_(ids)))}


def _money(value: Any) -> float:
    return round(float(value or 0), 2)


__all__ = ["PERIOD_KINDS", "Period", "leaderboard", "parse_period", "plan", "plans", "recent_periods", "statement"]

"""Conditions that choose records in SQL: saved views' filters and aggregate actions' ``where``.

They are written in the shared condition language (``formloom/runtime/conditions.py``) and run
as a WHERE clause, so only the tests that mean the same in SQL are allowed: the scope subset of
``access.py`` (equality, lists, emptiness, holding a value) plus ordering on numbers, dates and
moments (``gt``, ``gte``, ``lt``, ``lte``, ``between``). Besides fixed values a filter may compare
with ``{"$user": true}`` (the person looking), ``{"$today": N}`` (a date N days from today) and
``{"$now": true}``; ``{"$field": ...}`` cannot be used (a filter compares fields with values).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, false, not_, or_, true
from sqlalchemy.sql.expression import ColumnElement

from formloom.platform.db import json_value
from formloom.platform.models import Record
from formloom.runtime import access

_ORDERING = ("eq", "ne", "gt", "gte", "lt", "lte", "between", "empty", "not_empty")
FILTER_OPERATORS_BY_KIND: dict[str, tuple[str, ...]] = {
    **access.WHEN_OPERATORS_BY_KIND,
    "number": _ORDERING, "date": _ORDERING, "datetime": _ORDERING,
}
_COMPARE = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}


def filter_sql(node: Mapping, kinds: Mapping[str, str], *, user_id: int | None, dialect: str,
               today: date, now: datetime | None = None) -> ColumnElement:
    """The WHERE clause of a checked filter (see :func:`filter_problems`)."""
    def walk(item: Mapping) -> ColumnElement:
        if "all" in item:
            return and_(true(), *[walk(n) for n in item["all"]])
        if "any" in item:
            return or_(false(), *[walk(n) for n in item["any"]])
        if "not" in item:
            return not_(walk(item["not"]))
        kind = kinds.get(item["field"])
        if kind in ("number", "date", "datetime") and item["op"] not in ("empty", "not_empty"):
            return _ordered(item, kind, today, now or datetime.now(UTC))
        # No one signed in (a rule's run): {"$user": true} is id 0, which matches no record.
        return access.condition_sql(item, user_id or 0, dialect)
    return walk(node)


def _operand(value: Any, kind: str, today: date, now: datetime) -> Any:
    if isinstance(value, Mapping) and "$today" in value:
        value = (today + timedelta(days=value["$today"])).isoformat()
    elif isinstance(value, Mapping) and "$now" in value:
        value = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Decimal(str(value)) if kind == "number" and value is not None else value


def _ordered(node: Mapping, kind: str, today: date, now: datetime) -> ColumnElement:
    """Numbers compare as numbers; dates and moments as their ISO text (which sorts the same)."""
    column = json_value(Record.data, node["field"], numeric=kind == "number")
    op = node["op"]
    if op == "between":
        low, high = (_operand(v, kind, today, now) for v in node["value"])
        return and_(column.is_not(None), column >= low, column <= high)
    value = _operand(node.get("value"), kind, today, now)
    if op in ("eq", "ne"):
        equal = column.is_(None) if value is None else and_(column.is_not(None), column == value)
        return equal if op == "eq" else not_(equal)
    return and_(column.is_not(None), getattr(column, _COMPARE[op])(value))


def filter_problems(condition: Any, kinds: Mapping[str, str], path: str) -> list[tuple[str, str]]:
    """Problems of a filter: the condition language's own, then what SQL cannot run."""
    from formloom.runtime import conditions

    problems = list(conditions.check(condition, kinds, path))
    return problems or list(_subset_problems(condition, kinds, path))


def _subset_problems(node: Any, kinds: Mapping[str, str], path: str) -> Iterator[tuple[str, str]]:
    for combinator in ("all", "any"):
        if combinator in node:
            for i, child in enumerate(node[combinator]):
                yield from _subset_problems(child, kinds, f"{path}.{combinator}[{i}]")
            return
    if "not" in node:
        yield from _subset_problems(node["not"], kinds, f"{path}.not")
        return
    kind, op = kinds.get(node["field"]), node["op"]
    allowed = FILTER_OPERATORS_BY_KIND.get(kind)
    if allowed is None:
        yield (f"{path}.field", f"A filter runs in the database and may test choice, text, number, date, "
                                f"yes/no, user and relation fields; '{node['field']}' holds {kind} values.")
    elif op not in allowed:
        yield (f"{path}.op", f"A filter runs in the database; on field '{node['field']}' it may use "
                             f"{', '.join(allowed)}, not '{op}'.")
    values = node.get("value") if isinstance(node.get("value"), list) else [node.get("value")]
    for value in values:
        if isinstance(value, Mapping) and "$field" in value:
            yield (f"{path}.value", 'A filter compares a field with fixed values, {"$user": true}, '
                                    '{"$today": N} or {"$now": true}; it cannot refer to another field.')

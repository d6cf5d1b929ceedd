"""Conditions: declarative JSON tests over the values of one record.

A condition is a leaf ``{"field": "stage", "op": "in", "value": ["won", "lost"]}`` or a combination
``{"all": [...]}``, ``{"any": [...]}``, ``{"not": ...}``. Forms use conditions for visibility and
required-when rules, pipelines for stage gates, rules and views for their filters.

Evaluation is typed: the caller says for each field key which *kind* of value it holds (``text``,
``number``, ``date``, ...). Numbers compare as exact decimals, never as binary floats. The same
language is evaluated in the browser by ``formloom/platform/static/conditions.js``; both are run
against the shared cases in ``tests/cases/conditions/``, so a form and the server never disagree.
``docs/conditions.md`` is the reference for admins.
"""
from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

MAX_DEPTH = 10
MAX_NODES = 200
TODAY_OFFSET_LIMIT = 36_500  # about a century either way

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "contains", "not_contains",
             "starts_with", "empty", "not_empty", "between")
_ORDERED = ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "empty", "not_empty")
_COLLECTION = ("eq", "ne", "contains", "not_contains", "in", "not_in", "empty", "not_empty")
OPERATORS_BY_KIND: Mapping[str, tuple[str, ...]] = {
    # Text has no ordering: Python and JavaScript order non-BMP characters differently.
    "text": ("eq", "ne", "contains", "not_contains", "starts_with", "in", "not_in", "empty",
             "not_empty"),
    "number": _ORDERED,
    "date": _ORDERED,
    "datetime": _ORDERED,
    "time": _ORDERED,
    "boolean": ("eq", "ne", "empty", "not_empty"),
    "list": _COLLECTION,
    "id": ("eq", "ne", "in", "not_in", "empty", "not_empty"),
    "ids": _COLLECTION,
    "object": ("empty", "not_empty"),
}
KINDS = tuple(OPERATORS_BY_KIND)
ELEMENT_KINDS: Mapping[str, str] = {"list": "text", "ids": "id"}  # collection kind -> its items
_COLLECTION_OF = {element: kind for kind, element in ELEMENT_KINDS.items()}
_NO_VALUE = ("empty", "not_empty")
_NEGATIONS = {"ne": "eq", "not_in": "in", "not_contains": "contains"}
_NULL_ALLOWED = ("eq", "ne")
REFERENCES = ("$field", "$today", "$now", "$user")
_LEAF_KEYS = ("field", "op", "value")
_COMBINATORS = ("all", "any", "not")

# Plain ASCII patterns (re.ASCII): Python's \d would also accept other scripts' digits.
_DECIMAL_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})", re.ASCII)
_DATETIME_RE = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z", re.ASCII)
_TIME_RE = re.compile(r"([0-9]{2}):([0-9]{2})", re.ASCII)
_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
# Case folding is limited to characters whose lowercase Python and JavaScript agree on (Latin,
# Greek, Cyrillic); scripts without case, such as CJK, are compared as they are.
_FOLDED_BELOW = "\u0530"


class _Marker:
    """A parsed value that is not a value: the field is empty, or holds the wrong type."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_EMPTY = _Marker("EMPTY")
_INVALID = _Marker("INVALID")


# --- values ----------------------------------------------------------------------------------

def is_empty(raw: Any) -> bool:
    """Missing (None), "" and [] are empty; 0, false and "0" are values."""
    return raw is None or (isinstance(raw, str) and raw == "") or (isinstance(raw, (list, tuple)) and not raw)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _valid_date_text(text: str) -> bool:
    match = _DATE_RE.fullmatch(text)
    if not match:
        return False
    year, month, day = (int(part) for part in match.groups())
    return year >= 1 and 1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)


def _parse_text(raw: Any) -> Any:
    return raw if isinstance(raw, str) else _INVALID


def _parse_number(raw: Any) -> Any:
    if isinstance(raw, bool):
        return _INVALID
    if isinstance(raw, int):
        return Decimal(raw)
    if isinstance(raw, float):
        # A float literal means the decimal it is written as: 0.3 is exactly 3/10, as in JavaScript.
        return Decimal(repr(raw)) if math.isfinite(raw) else _INVALID
    if isinstance(raw, str) and _DECIMAL_RE.fullmatch(raw):
        return Decimal(raw)
    return _INVALID


def _parse_date(raw: Any) -> Any:
    return raw if isinstance(raw, str) and _valid_date_text(raw) else _INVALID


def _parse_datetime(raw: Any) -> Any:
    match = _DATETIME_RE.fullmatch(raw) if isinstance(raw, str) else None
    if not match or not _valid_date_text(match[1]):
        return _INVALID
    hour, minute, second = int(match[2]), int(match[3]), int(match[4])
    return raw if hour < 24 and minute < 60 and second < 60 else _INVALID


def _parse_time(raw: Any) -> Any:
    match = _TIME_RE.fullmatch(raw) if isinstance(raw, str) else None
    return raw if match and int(match[1]) < 24 and int(match[2]) < 60 else _INVALID


def _parse_boolean(raw: Any) -> Any:
    return raw if isinstance(raw, bool) else _INVALID


def _parse_id(raw: Any) -> Any:
    if isinstance(raw, bool):
        return _INVALID
    if isinstance(raw, int):
        return raw
    # JSON readers in the browser cannot tell 5.0 from 5, so neither does the server.
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    return _INVALID


def _parse_object(raw: Any) -> Any:
    return raw


_SCALAR_PARSERS: Mapping[str, Callable[[Any], Any]] = {
    "text": _parse_text, "number": _parse_number, "date": _parse_date,
    "datetime": _parse_datetime, "time": _parse_time, "boolean": _parse_boolean, "id": _parse_id,
    "object": _parse_object,
}


def _parse(raw: Any, kind: str) -> Any:
    """The typed value (str, Decimal, bool, int, or a tuple for collections), _EMPTY or _INVALID."""
    if is_empty(raw):
        return _EMPTY
    element = ELEMENT_KINDS.get(kind)
    if element is None:
        return _SCALAR_PARSERS.get(kind, lambda _raw: _INVALID)(raw)
    if not isinstance(raw, (list, tuple)):
        return _INVALID
    items = tuple(_SCALAR_PARSERS[element](item) for item in raw)
    return _INVALID if any(item is _INVALID for item in items) else items


def _present(parsed: Any) -> bool:
    return parsed is not _EMPTY and parsed is not _INVALID


def _fold(text: str) -> str:
    return "".join(char.lower() if char < _FOLDED_BELOW else char for char in text)


# --- evaluation ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Context:
    values: Mapping[str, Any]
    kinds: Mapping[str, str]
    today: date
    now_text: str
    user_id: int | None

    def resolve(self, operand: Any) -> Any:
        """The raw value an operand stands for: itself, or what its reference points at.

        A reference to another field gives that field's value, empty or not. ``$user`` with no one
        signed in, or ``$today`` beyond the calendar, gives _INVALID: it matches nothing.
        """
        if not _is_reference(operand):
            return operand
        ((name, argument),) = operand.items()
        if name == "$field":
            return self.values.get(argument) if isinstance(argument, str) else None
        if name == "$today":
            return _shift(self.today, argument)
        if name == "$now":
            return self.now_text
        return _INVALID if self.user_id is None else self.user_id


def _is_reference(operand: Any) -> bool:
    return isinstance(operand, Mapping) and len(operand) == 1 and next(iter(operand)) in REFERENCES


def _shift(today: date, days: Any) -> Any:
    if isinstance(days, bool) or not isinstance(days, int):
        return _INVALID
    try:
        return (today + timedelta(days=days)).isoformat()
    except OverflowError:  # before year 1 or after 9999: no such date
        return _INVALID


def _utc_text(moment: datetime) -> str:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def _eq(value: Any, operand: Any, kind: str, ctx: _Context) -> bool:
    other = _parse(ctx.resolve(operand), kind)
    if value is _EMPTY or other is _EMPTY:
        return value is other  # empty equals empty (the null literal), and nothing else
    if value is _INVALID or other is _INVALID:
        return False
    if kind in ELEMENT_KINDS:
        return set(value) == set(other)
    return value == other


def _ordering(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any, str, _Context], bool]:
    def test(value: Any, operand: Any, kind: str, ctx: _Context) -> bool:
        other = _parse(ctx.resolve(operand), kind)
        return _present(value) and _present(other) and compare(value, other)
    return test


def _between(value: Any, operand: Any, kind: str, ctx: _Context) -> bool:
    if not isinstance(operand, list) or len(operand) != 2:
        return False
    low, high = (_parse(ctx.resolve(bound), kind) for bound in operand)
    return _present(value) and _present(low) and _present(high) and low <= value <= high


def _items(operand: Any, element: str, ctx: _Context) -> list[Any]:
    """The parsed items of an 'in' operand: a literal list, or a reference to a list field."""
    if isinstance(operand, list):
        return [_parse(ctx.resolve(item), element) for item in operand]
    referenced = _parse(ctx.resolve(operand), _COLLECTION_OF.get(element, ""))
    return list(referenced) if isinstance(referenced, tuple) else []


def _in(value: Any, operand: Any, kind: str, ctx: _Context) -> bool:
    items = _items(operand, ELEMENT_KINDS.get(kind, kind), ctx)
    if value is _EMPTY:
        return any(item is _EMPTY for item in items)  # a null item stands for "empty"
    if value is _INVALID:
        return False
    members = value if kind in ELEMENT_KINDS else (value,)
    return any(member == item for member in members for item in items if _present(item))


def _contains(value: Any, operand: Any, kind: str, ctx: _Context) -> bool:
    needle = _parse(ctx.resolve(operand), ELEMENT_KINDS.get(kind, kind))
    if not (_present(value) and _present(needle)):
        return False
    return _fold(needle) in _fold(value) if kind == "text" else needle in value


def _starts_with(value: Any, operand: Any, kind: str, ctx: _Context) -> bool:
    prefix = _parse(ctx.resolve(operand), kind)
    return _present(value) and _present(prefix) and _fold(value).startswith(_fold(prefix))


_TESTS: Mapping[str, Callable[[Any, Any, str, _Context], bool]] = {
    "eq": _eq, "gt": _ordering(operator.gt), "gte": _ordering(operator.ge),
    "lt": _ordering(operator.lt), "lte": _ordering(operator.le), "between": _between,
    "in": _in, "contains": _contains, "starts_with": _starts_with,
}


def _evaluate_leaf(node: Mapping[str, Any], ctx: _Context) -> bool:
    field, op = node.get("field"), node.get("op")
    if not isinstance(field, str):
        return False
    kind = ctx.kinds.get(field)
    kind = kind if kind in OPERATORS_BY_KIND else "object"
    if op not in OPERATORS_BY_KIND[kind]:
        return False
    raw = ctx.values.get(field)
    if op in _NO_VALUE:
        return is_empty(raw) == (op == "empty")
    test = _TESTS[_NEGATIONS.get(op, op)]
    return test(_parse(raw, kind), node.get("value"), kind, ctx) != (op in _NEGATIONS)


def _evaluate_node(node: Any, ctx: _Context) -> bool:
    if not isinstance(node, Mapping):
        return False
    for combinator in ("all", "any"):
        if combinator in node:
            children = node[combinator]
            if not isinstance(children, list):
                return False
            combine = all if combinator == "all" else any
            return combine(_evaluate_node(child, ctx) for child in children)
    if "not" in node:
        return not _evaluate_node(node["not"], ctx)
    return _evaluate_leaf(node, ctx)


def evaluate(condition: Any, values: Mapping[str, Any], kinds: Mapping[str, str], *,
             today: date, now: datetime | None = None, user_id: int | None = None) -> bool:
    """Whether the record's ``values`` meet ``condition`` (which must have passed ``check``).

    ``kinds`` maps field keys to kinds; ``today`` anchors ``{"$today": N}``, ``now`` (default: the
    current moment; a naive datetime is read as UTC) anchors ``{"$now": true}`` and ``user_id`` is
    ``{"$user": true}`` (None: no one is signed in). Values of the wrong type never raise: they
    simply do not match.
    """
    if isinstance(today, datetime):
        today = today.date()
    now_text = _utc_text(now if now is not None else datetime.now(UTC))
    return _evaluate_node(condition, _Context(values, kinds, today, now_text, user_id))


# --- checking a definition -------------------------------------------------------------------

_KIND_NAMES = {
    "text": "a text", "number": "a number", "date": "a date", "datetime": "a date-and-time",
    "time": "a time", "boolean": "a yes/no", "list": "a list", "id": "an id", "ids": "an id list",
    "object": "a compound",
}
_LITERAL_HINTS = {
    "text": "text in quotes",
    "number": 'a number such as 12.5 or a decimal string such as "12.50"',
    "date": 'a date written "YYYY-MM-DD" or {"$today": N}',
    "datetime": 'a UTC moment written "YYYY-MM-DDTHH:MM:SSZ" or {"$now": true}',
    "time": 'a time written "HH:MM"',
    "boolean": "true or false",
    "id": 'a whole-number id or {"$user": true}',
}


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= 60 else text[:57] + "..."


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if _KEY_RE.fullmatch(key) else f"{path}[{json.dumps(key, ensure_ascii=False)}]"


@dataclass(frozen=True)
class _Slot:
    """Where an operand goes: the field and operator it serves and the kind of value it needs."""

    field: str
    op: str
    kind: str  # a scalar kind, or a collection kind ('list', 'ids') for a whole list operand
    allow_empty: bool = False

    def describe(self) -> str:
        return f"Operator '{self.op}' on field '{self.field}'"


class _Checker:
    """Walks one condition, collecting every problem with its JSON path."""

    def __init__(self, kinds: Mapping[str, str]) -> None:
        self.kinds = kinds
        self.nodes = 0
        self.problems: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    def node(self, node: Any, path: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            return
        if depth > MAX_DEPTH:
            self.add(path, f"Condition is nested more than {MAX_DEPTH} levels deep here; "
                           "flatten it, for example by merging nested 'all' lists.")
            return
        if not isinstance(node, Mapping):
            self.add(path, "Condition must be an object such as "
                           '{"field": "stage", "op": "eq", "value": "won"} or {"all": [...]}; '
                           f"got {_show(node)}.")
        elif "field" in node or "op" in node:
            self.leaf(node, path)
        elif any(key in node for key in _COMBINATORS):
            self.combination(node, path, depth)
        else:
            self.add(path, "Condition must have 'field' and 'op', or exactly one of 'all', 'any' "
                           f"or 'not'; it has {', '.join(map(repr, node)) or 'no keys'}.")

    def combination(self, node: Mapping[str, Any], path: str, depth: int) -> None:
        combinator = next(key for key in _COMBINATORS if key in node)
        for key in node:
            if key != combinator:
                self.add(_child(path, str(key)),
                         f"Condition combining with '{combinator}' has an unknown key '{key}'; "
                         "a combination has exactly one key, 'all', 'any' or 'not': nest the others.")
        children = node[combinator]
        if combinator == "not":
            self.node(children, _child(path, "not"), depth + 1)
        elif not isinstance(children, list):
            self.add(_child(path, combinator),
                     f"Condition's '{combinator}' must be a list of conditions; got {_show(children)}.")
        else:
            for index, child in enumerate(children):
                self.node(child, f"{path}.{combinator}[{index}]", depth + 1)

    def leaf(self, node: Mapping[str, Any], path: str) -> None:
        for key in node:
            if key not in _LEAF_KEYS:
                self.add(_child(path, str(key)),
                         f"Condition has an unknown key '{key}'; a condition on a field has only "
                         "'field', 'op' and 'value' (combine conditions with 'all', 'any' or 'not').")
        field = self.field(node, path)
        op = self.operator(node, path, field)
        if field is None or op is None:
            return
        kind = self.kinds[field]
        if op not in OPERATORS_BY_KIND.get(kind, ()):
            allowed = ", ".join(OPERATORS_BY_KIND.get(kind, ()))
            self.add(f"{path}.op", f"Operator '{op}' does not apply to field '{field}', which holds "
                                   f"{_KIND_NAMES.get(kind, repr(kind))} value; use one of: {allowed}.")
            return
        self.value(node, path, field, op, kind)

    def field(self, node: Mapping[str, Any], path: str) -> str | None:
        known = ", ".join(self.kinds)
        field = node.get("field")
        if "field" not in node:
            self.add(path, f"Condition has no 'field'; name the field to test, one of: {known}.")
        elif not isinstance(field, str):
            self.add(f"{path}.field", f"Condition's 'field' must be a field key in quotes, one of: "
                                      f"{known}; got {_show(field)}.")
        elif field not in self.kinds:
            self.add(f"{path}.field", f"Condition names field '{field}', which this entity does not "
                                      f"have; use one of: {known}.")
        else:
            return field
        return None

    def operator(self, node: Mapping[str, Any], path: str, field: str | None) -> str | None:
        op = node.get("op")
        subject = f"Condition on field '{field}'" if field else "Condition"
        if "op" not in node:
            self.add(path, f"{subject} has no 'op'; use one of: {', '.join(OPERATORS)}.")
        elif op not in OPERATORS:
            self.add(f"{path}.op", f"{subject} uses operator {_show(op)}, which does not exist; "
                                   f"use one of: {', '.join(OPERATORS)}.")
        else:
            return op
        return None

    def value(self, node: Mapping[str, Any], path: str, field: str, op: str, kind: str) -> None:
        value_path = f"{path}.value"
        if op in _NO_VALUE:
            if "value" in node:
                self.add(value_path, f"Operator '{op}' on field '{field}' takes no 'value'; remove it.")
            return
        if "value" not in node:
            self.add(path, f"Operator '{op}' on field '{field}' needs a 'value' to compare with; add one.")
            return
        operand = node["value"]
        element = ELEMENT_KINDS.get(kind, kind)
        if op in ("in", "not_in") or (op in _NULL_ALLOWED and kind in ELEMENT_KINDS):
            self.list_operand(operand, value_path, _Slot(field, op, element))
        elif op == "between":
            self.bounds(operand, value_path, _Slot(field, op, kind))
        else:
            self.scalar(operand, value_path, _Slot(field, op, element, op in _NULL_ALLOWED))

    def bounds(self, operand: Any, path: str, slot: _Slot) -> None:
        if not isinstance(operand, list) or len(operand) != 2:
            self.add(path, f"{slot.describe()} needs a list of exactly two bounds, [low, high]; "
                           f"got {_show(operand)}.")
            return
        for index, bound in enumerate(operand):
            self.scalar(bound, f"{path}[{index}]", slot)

    def list_operand(self, operand: Any, path: str, slot: _Slot) -> None:
        """A list of items of ``slot.kind``: 'in' lists, and 'eq' on list and id-list fields."""
        collection = _COLLECTION_OF.get(slot.kind)
        if _is_reference(operand) and collection:
            self.reference(operand, path, _Slot(slot.field, slot.op, collection))
        elif is_empty(operand) and slot.op in _NULL_ALLOWED:
            return  # eq null / eq []: the field is empty
        elif not isinstance(operand, list) or not operand:
            whole = f', or {{"$field": ...}} naming {_KIND_NAMES[collection]} field' if collection else ""
            self.add(path, f"{slot.describe()} needs a non-empty list of values, each "
                           f"{_LITERAL_HINTS[slot.kind]}{whole}; got {_show(operand)}.")
        else:
            item_slot = _Slot(slot.field, slot.op, slot.kind, allow_empty=slot.op in ("in", "not_in"))
            for index, item in enumerate(operand):
                self.scalar(item, f"{path}[{index}]", item_slot)

    def scalar(self, operand: Any, path: str, slot: _Slot) -> None:
        if _is_reference(operand):
            self.reference(operand, path, slot)
        elif isinstance(operand, Mapping):
            self.add(path, f"{slot.describe()} has {_show(operand)} as its value, which is neither a "
                           'value nor a reference; references are {"$field": "key"}, '
                           '{"$today": N}, {"$now": true} and {"$user": true}.')
        elif is_empty(operand):
            if not slot.allow_empty:
                self.add(path, f"{slot.describe()} needs a value to compare with, and "
                               f"{_show(operand)} is empty; give {_LITERAL_HINTS[slot.kind]}.")
        elif _parse(operand, slot.kind) is _INVALID:
            self.add(path, f"{slot.describe()} compares {_KIND_NAMES[slot.kind]} value, so it needs "
                           f"{_LITERAL_HINTS[slot.kind]}; got {_show(operand)}.")

    def reference(self, operand: Mapping[str, Any], path: str, slot: _Slot) -> None:
        ((name, argument),) = operand.items()
        if name == "$field":
            self.field_reference(argument, path, slot)
            return
        needs = {"$today": "date", "$now": "datetime", "$user": "id"}[name]
        if slot.kind != needs:
            self.add(path, f"{slot.describe()} compares {_KIND_NAMES[slot.kind]} value, and "
                           f"{{{json.dumps(name)}: ...}} stands for {_KIND_NAMES[needs]}; "
                           f"give {_LITERAL_HINTS.get(slot.kind, 'a list')} instead.")
        elif name == "$today" and not _is_offset(argument):
            self.add(path, f'{slot.describe()} uses {{"$today": N}}, where N must be a whole number '
                           f"of days between -{TODAY_OFFSET_LIMIT} and {TODAY_OFFSET_LIMIT}; "
                           f"got {_show(argument)}.")
        elif name in ("$now", "$user") and argument is not True:
            self.add(path, f"{slot.describe()} must write {{{json.dumps(name)}: true}}; "
                           f"got {_show(argument)}.")

    def field_reference(self, target: Any, path: str, slot: _Slot) -> None:
        target_kind = self.kinds.get(target) if isinstance(target, str) else None
        if target_kind is None:
            self.add(path, f'{slot.describe()} refers with "$field" to {_show(target)}, which this '
                           f"entity does not have; use one of: {', '.join(self.kinds)}.")
        elif target_kind != slot.kind:
            compatible = [key for key, kind in self.kinds.items() if kind == slot.kind and key != slot.field]
            self.add(path, f"{slot.describe()} needs {_KIND_NAMES[slot.kind]} value, but field "
                           f"'{target}' holds {_KIND_NAMES.get(target_kind, repr(target_kind))} value; "
                           f"refer to a field of the same kind ({', '.join(compatible) or 'none here'}).")


def _is_offset(argument: Any) -> bool:
    return (isinstance(argument, int) and not isinstance(argument, bool)
            and abs(argument) <= TODAY_OFFSET_LIMIT)


def check(condition: Any, kinds: Mapping[str, str], path: str = "$") -> list[tuple[str, str]]:
    """Every problem of a condition being saved, as (JSON path, message) pairs; [] when valid.

    ``path`` is where the condition sits in its definition, e.g. ``$.fields[3].visible_when``.
    """
    checker = _Checker(kinds)
    checker.node(condition, path, 1)
    if checker.nodes > MAX_NODES:
        message = (f"Condition has more than {MAX_NODES} parts; split it into simpler conditions "
                   "or use 'in' with a list of values.")
        checker.problems.insert(0, (path, message))
    return checker.problems


# --- fields a condition reads ----------------------------------------------------------------

def _operand_fields(operand: Any) -> Iterator[str]:
    if _is_reference(operand) and isinstance(operand.get("$field"), str):
        yield operand["$field"]
    elif isinstance(operand, list):
        for item in operand:
            yield from _operand_fields(item)


def _node_fields(node: Any) -> Iterator[str]:
    if not isinstance(node, Mapping):
        return
    if isinstance(node.get("field"), str):
        yield node["field"]
    yield from _operand_fields(node.get("value"))
    for combinator in ("all", "any"):
        if isinstance(node.get(combinator), list):
            for child in node[combinator]:
                yield from _node_fields(child)
    yield from _node_fields(node.get("not"))


def fields_used(condition: Any) -> set[str]:
    """Every field key a condition reads, including fields named by {"$field": ...} operands."""
    return set(_node_fields(condition))

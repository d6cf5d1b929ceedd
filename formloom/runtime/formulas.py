"""Formulas of computed fields: a small language parsed once and run by an allow-list evaluator.

An admin writes ``SUM(lines.qty * lines.price) * (1 - discount)``. :func:`compile_formula` parses
it with Python's ``ast`` in ``eval`` mode, refuses every construct that is not on the allow-list,
bounds its size, checks its types against the entity's fields and returns a :class:`Formula`
whose ``evaluate`` runs a tree of small closures. Admin text never reaches ``eval``.

Numbers are exact decimals computed in a decimal context of their own (``0.1 + 0.2`` is ``0.3``);
empty values follow spreadsheet habits: 0 in arithmetic, skipped by aggregates, "" in CONCAT.
``docs/formulas.md`` describes the language as admins see it.
"""
from __future__ import annotations

import ast
import calendar
import difflib
import graphlib
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import (
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
)
from typing import Any, NamedTuple

__all__ = ["FUNCTIONS", "FieldInfo", "Formula", "FormulaError", "FormulaRuntimeError", "compile_formula",
           "evaluation_order", "to_stored"]

# Limits: every one keeps a hostile or careless formula from costing more than a few milliseconds.
MAX_SOURCE_LENGTH = 2000
MAX_NODES = 300
MAX_DEPTH = 30
MAX_LITERAL_LENGTH = 1000
MAX_TEXT_LENGTH = 10_000
MAX_ITEMS = 1000
MAX_EXPONENT = 20
MAX_PLACES = 15
LIMIT = Decimal(10**18)
UNITS = ("day", "month", "year")

ZERO = Decimal(0)
DATES = ("date", "datetime")
MICROSECONDS_PER_DAY = 86_400_000_000


class FormulaError(ValueError):
    """The formula itself is wrong: found when it is defined, before any record is computed."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class FormulaRuntimeError(ValueError):
    """Computing a formula for one record failed; the caller decides to store empty."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class _OutOfRange(FormulaRuntimeError):
    """A number grew past the limit (also refused at definition time when it is constant)."""

    def __init__(self) -> None:
        super().__init__("out of range")


@dataclass(frozen=True)
class FieldInfo:
    """What a formula may know about one field of the entity."""

    kind: str
    columns: Mapping[str, str] = field(default_factory=dict)
    target: Mapping[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Types and values

class Ty(NamedTuple):
    """Static type of a sub-expression; ``many`` for a list, ``table`` the sub-table it comes from."""

    kind: str  # number | text | boolean | date | datetime | any | null
    many: bool = False
    table: str | None = None


_ONE_NAMES = {"number": "a number", "text": "a text", "boolean": "a yes/no value", "date": "a date",
              "datetime": "a date and time", "any": "a value", "null": "NULL", "list": "a list"}
_MANY_NAMES = {"number": "numbers", "text": "texts", "boolean": "yes/no values", "date": "dates",
               "datetime": "dates and times", "any": "values", "null": "empty values"}


def describe(ty: Ty) -> str:
    """'a number', 'a list of dates': how messages name a type."""
    if not ty.many:
        return _ONE_NAMES[ty.kind]
    return f"a list of {_MANY_NAMES[ty.kind]}"


def kind_of(value: Any) -> str:
    """The formula type of a runtime value (booleans before numbers, datetimes before dates)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, Decimal):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "datetime"
    if isinstance(value, date):
        return "date"
    if isinstance(value, list):
        return "list"
    return "any"


def _is_empty(value: Any) -> bool:
    # An empty text is empty too: forms store "" for a cleared text, and users see no difference.
    return value is None or value == ""


def _context() -> Context:
    """A decimal context of our own: the process-wide one belongs to whoever else runs here."""
    return Context(prec=34, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])


def _checked(number: Decimal) -> Decimal:
    """Refuse numbers past the limit; turn -0 into 0 so it never shows as '-0'."""
    if not number.is_finite() or number.copy_abs() > LIMIT:
        raise _OutOfRange()
    return number.copy_abs() if number.is_zero() else number


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _as_datetime(moment: date) -> datetime:
    if isinstance(moment, datetime):
        return moment
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC)


def _is_whole(number: Decimal) -> bool:
    return number == Decimal(int(number))


def render(value: Any) -> str:
    """Text of a value as CONCAT shows it: plain numbers, ISO dates, TRUE/FALSE, empty as ''."""
    if _is_empty(value):
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


# ---------------------------------------------------------------------------------------------
# Reading stored values

def _bad_value(raw: Any, label: str, expected: str) -> FormulaRuntimeError:
    shown = repr(raw) if len(repr(raw)) <= 40 else repr(raw)[:37] + "..."
    return FormulaRuntimeError(f"{label} holds {shown}, which is not {expected}.")


def _read_number(raw: Any, label: str) -> Decimal | None:
    if _is_empty(raw):
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):  # bool is an int: refused below
        if abs(raw) > 10**18:  # before Decimal(): a huge int would be slow to convert
            raise _OutOfRange()
        return Decimal(raw)
    if not isinstance(raw, (str, float, Decimal)):
        raise _bad_value(raw, label, "a number")
    try:  # a float by its shortest text, so 0.1 is one tenth and not its binary neighbour
        number = Decimal(repr(raw) if isinstance(raw, float) else raw)
    except (ArithmeticError, ValueError):
        raise _bad_value(raw, label, "a number") from None
    if not number.is_finite():
        raise _bad_value(raw, label, "a number")
    return _checked(number)


def _read_text(raw: Any, label: str) -> str | None:
    if _is_empty(raw):
        return None
    if not isinstance(raw, str):
        raise _bad_value(raw, label, "a text")
    return raw


def _read_boolean(raw: Any, label: str) -> bool | None:
    if raw is None:
        return None
    if not isinstance(raw, bool):
        raise _bad_value(raw, label, "yes or no")
    return raw


def _read_date(raw: Any, label: str) -> date | None:
    if _is_empty(raw):
        return None
    if isinstance(raw, datetime):
        return _utc(raw).date()
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(raw)
    except (TypeError, ValueError):
        raise _bad_value(raw, label, "a date (YYYY-MM-DD)") from None


def _read_datetime(raw: Any, label: str) -> datetime | None:
    if _is_empty(raw):
        return None
    if isinstance(raw, date):
        return _utc(raw) if isinstance(raw, datetime) else _as_datetime(raw)
    try:
        return _utc(datetime.fromisoformat(raw))
    except (TypeError, ValueError):
        raise _bad_value(raw, label, "a date and time (YYYY-MM-DDTHH:MM:SSZ)") from None


def _read_any(raw: Any, label: str) -> Any:
    """Ids and other untyped values: numbers become decimals, texts stay texts."""
    if _is_empty(raw) or isinstance(raw, (bool, str)):
        return None if raw == "" else raw
    return _read_number(raw, label)


_READERS: dict[str, Callable[[Any, str], Any]] = {
    "number": _read_number, "text": _read_text, "time": _read_text, "boolean": _read_boolean,
    "date": _read_date, "datetime": _read_datetime, "id": _read_any,
}
# Field kinds as formulas see them; "time" is compared as "HH:MM" text.
_FIELD_KINDS = {"number": "number", "text": "text", "time": "text", "boolean": "boolean",
                "date": "date", "datetime": "datetime", "id": "any"}


def _read_list(raw: Any, label: str, read: Callable[[Any, str], Any]) -> list:
    if raw is None or raw == "":
        return []
    if not isinstance(raw, list):
        raise _bad_value(raw, label, "a list")
    if len(raw) > MAX_ITEMS:
        raise FormulaRuntimeError(f"{label} has more than {MAX_ITEMS:,} items.")
    return [read(item, label) for item in raw]


def _read_column(raw: Any, table: str, column: str, read: Callable[[Any, str], Any]) -> list:
    label = f"Column '{table}.{column}'"
    rows = _read_list(raw, f"Sub-table '{table}'", lambda row, _label: row)
    if not all(isinstance(row, Mapping) for row in rows):
        raise FormulaRuntimeError(f"Sub-table '{table}' holds rows that are not records.")
    return [read(row.get(column), label) for row in rows]


# ---------------------------------------------------------------------------------------------
# Operations on values

@dataclass
class _Env:
    """Everything one evaluation needs; a fresh one per call, so evaluations share nothing."""

    values: Mapping[str, Any]
    today: date | None
    now: datetime | None
    related: Callable[[str], Mapping | None] | None
    ctx: Context = field(default_factory=_context)
    records: dict[str, Mapping | None] = field(default_factory=dict)

    def related_record(self, key: str) -> Mapping | None:
        if key not in self.records:
            record = self.related(key) if self.related is not None else None
            if record is not None and not isinstance(record, Mapping):
                raise FormulaRuntimeError(f"The record that '{key}' points to cannot be read.")
            self.records[key] = record
        return self.records[key]


def _or_zero(value: Any) -> Any:
    return ZERO if value is None else value


def _number(value: Any, what: str) -> Decimal:
    if not isinstance(value, Decimal):
        raise FormulaRuntimeError(f"{what} needs a number, got {_ONE_NAMES[kind_of(value)]}.")
    return value


def _whole(value: Decimal, low: int, high: int, message: str) -> int:
    if not _is_whole(value) or not low <= value <= high:
        raise FormulaRuntimeError(message)
    return int(value)


def _divide(ctx: Context, a: Decimal, b: Decimal) -> Decimal:
    if b.is_zero():
        raise FormulaRuntimeError("division by zero")
    return ctx.divide(a, b)


def _modulo(ctx: Context, a: Decimal, b: Decimal) -> Decimal:
    """Remainder with the sign of the divisor, like a spreadsheet's MOD (-7 % 3 is 2)."""
    if b.is_zero():
        raise FormulaRuntimeError("division by zero")
    rest = ctx.remainder(a, b)
    if not rest.is_zero() and rest.is_signed() != b.is_signed():
        rest = ctx.add(rest, b)
    return rest


_EXPONENT_RULE = f"The exponent of ** must be a whole number between -{MAX_EXPONENT} and {MAX_EXPONENT}."


def _is_exponent(value: Any) -> bool:
    """Whether a constant exponent is allowed (empty counts as 0)."""
    return value is None or (_is_whole(value) and value.copy_abs() <= MAX_EXPONENT)


def _power(ctx: Context, a: Decimal, b: Decimal) -> Decimal:
    exponent = _whole(b, -MAX_EXPONENT, MAX_EXPONENT, _EXPONENT_RULE)
    if exponent == 0:
        return Decimal(1)
    if a.is_zero() and exponent < 0:
        raise FormulaRuntimeError("division by zero")
    return ctx.power(a, Decimal(exponent))


_NUMBER_OPS: dict[str, Callable[[Context, Decimal, Decimal], Decimal]] = {
    "+": lambda ctx, a, b: ctx.add(a, b), "-": lambda ctx, a, b: ctx.subtract(a, b),
    "*": lambda ctx, a, b: ctx.multiply(a, b), "/": _divide, "%": _modulo, "**": _power,
}


def _shift(ctx: Context, moment: date, days: Decimal) -> date:
    """A date or datetime moved by a number of days (whole days for a date)."""
    try:
        if isinstance(moment, datetime):
            micro = ctx.multiply(days, Decimal(MICROSECONDS_PER_DAY))
            return moment + timedelta(microseconds=int(micro.to_integral_value(ROUND_HALF_UP, ctx)))
        if not _is_whole(days):
            raise FormulaRuntimeError("A date moves by whole days; use ROUND on the number of days.")
        return moment + timedelta(days=int(days))
    except OverflowError:
        raise _OutOfRange() from None


def _elapsed_days(ctx: Context, end: date, start: date) -> Decimal:
    """end - start in days: whole for two dates, with a fraction when a time is involved."""
    if not isinstance(end, datetime) and not isinstance(start, datetime):
        return Decimal((end - start).days)
    delta = _as_datetime(end) - _as_datetime(start)
    micro = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return ctx.divide(Decimal(micro), Decimal(MICROSECONDS_PER_DAY))


def _date_op(ctx: Context, op: str, a: Any, b: Any) -> Any:
    ka, kb = kind_of(a), kind_of(b)
    if op == "+" and ka in DATES and kb == "number":
        return _shift(ctx, a, b)
    if op == "+" and kb in DATES and ka == "number":
        return _shift(ctx, b, a)
    if op == "-" and ka in DATES and kb == "number":
        return _shift(ctx, a, b.copy_negate())
    if op == "-" and ka in DATES and kb in DATES:
        return _elapsed_days(ctx, a, b)
    raise FormulaRuntimeError(f"'{op}' does not work on {_ONE_NAMES[ka]} and {_ONE_NAMES[kb]}.")


def _scalar_op(ctx: Context, op: str, a: Any, b: Any, datey: tuple[bool, bool]) -> Any:
    """One arithmetic step; an empty number counts as 0, an empty date makes the result empty."""
    if (a is None and datey[0]) or (b is None and datey[1]):
        return None
    a, b = ZERO if a is None else a, ZERO if b is None else b
    if isinstance(a, bool) or isinstance(b, bool):
        raise FormulaRuntimeError("Arithmetic on yes/no values is not allowed.")
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        # every intermediate result is checked, so no chain of operations can build a huge number
        return _checked(_NUMBER_OPS[op](ctx, a, b))
    return _date_op(ctx, op, a, b)


def _pairwise(step: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    """Apply ``step`` row by row when a side is a list; a single value meets every row."""
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            raise FormulaRuntimeError(f"Lists of {len(a)} and {len(b)} rows cannot be combined row by row.")
        return [step(x, y) for x, y in zip(a, b)]
    if isinstance(a, list):
        return [step(x, b) for x in a]
    if isinstance(b, list):
        return [step(a, y) for y in b]
    return step(a, b)


def _each(step: Callable[[Any], Any], value: Any) -> Any:
    return [step(item) for item in value] if isinstance(value, list) else step(value)


_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
          "==": operator.eq, "!=": operator.ne}


def _compare(op: str, a: Any, b: Any) -> bool:
    """Compare two values; with an empty side only == and != can be true."""
    if _is_empty(a) or _is_empty(b):
        both = _is_empty(a) and _is_empty(b)
        return {"==": both, "!=": not both}.get(op, False)
    ka, kb = kind_of(a), kind_of(b)  # by kind, not by Python: TRUE == 1 must not hold
    if ka in DATES and kb in DATES and ka != kb:
        a, b, ka, kb = _as_datetime(a), _as_datetime(b), "datetime", "datetime"
    if "list" in (ka, kb) or (ka != kb and op not in ("==", "!=")):
        raise FormulaRuntimeError(f"Cannot compare {_ONE_NAMES[ka]} with {_ONE_NAMES[kb]}.")
    if ka != kb:
        return op == "!="
    if ka == "boolean" and op not in ("==", "!="):
        raise FormulaRuntimeError("Yes/no values can only be compared with == and !=.")
    return _ORDER[op](a, b)


def _truth(value: Any, what: str) -> bool:
    """A condition: yes/no, where empty counts as no."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise FormulaRuntimeError(f"{what} needs a yes/no value, got {_ONE_NAMES[kind_of(value)]}.")
    return value


def _present(runs: list[Callable[[_Env], Any]], env: _Env) -> list:
    """Values of an aggregate's arguments, lists spread out, empties left out."""
    found: list = []
    for run in runs:
        value = run(env)
        if isinstance(value, list):
            found.extend(item for item in value if not _is_empty(item))
        elif not _is_empty(value):
            found.append(value)
    return found


def _add_month(moment: date, months: int) -> date:
    """Move by calendar months; a day past the end of the new month becomes its last day."""
    years, month0 = divmod(moment.month - 1 + months, 12)
    year = moment.year + years
    if not 1 <= year <= 9999:
        raise _OutOfRange()
    day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
    return moment.replace(year=year, month=month0 + 1, day=day)


def _date_add(ctx: Context, moment: date, amount: Decimal, unit: Any) -> date:
    if unit not in UNITS:
        raise FormulaRuntimeError(f"DATEADD counts in one of: {', '.join(UNITS)}; got {unit!r}.")
    if not _is_whole(amount):
        raise FormulaRuntimeError("DATEADD adds a whole number of days, months or years.")
    count = int(amount)
    if unit == "day":
        return _shift(ctx, moment, Decimal(count))
    return _add_month(moment, count * (12 if unit == "year" else 1))


def _round(ctx: Context, value: Any, places: int) -> Decimal | None:
    """Half away from zero, like a spreadsheet: ROUND(2.5) is 3, ROUND(-2.5) is -3."""
    if value is None:
        return None
    number = _number(value, "ROUND")
    rounded = number.quantize(Decimal((0, (1,), -places)), rounding=ROUND_HALF_UP, context=ctx)
    if places < 0:  # 1.2E+3 -> 1200
        rounded = rounded.quantize(Decimal(1), context=ctx)
    return _checked(rounded)


# ---------------------------------------------------------------------------------------------
# Static checks

def _arith_kind(op: str, a: str, b: str) -> str:
    """Result kind of ``a op b``, or FormulaError for a combination that can never work."""
    for kind in (a, b):
        if kind == "boolean":
            raise FormulaError(f"Arithmetic ('{op}') on yes/no values is not allowed; "
                               "use IF to turn them into numbers.")
        if kind == "text":
            raise FormulaError(f"Arithmetic ('{op}') on text is not allowed; use CONCAT to join texts.")
    if "any" in (a, b):
        return "any"
    numeric = ("number", "null")  # an empty number counts as 0
    if a in numeric and b in numeric:
        return "number"
    if op in ("+", "-") and a in DATES and b in numeric:
        return a
    if op == "+" and a in numeric and b in DATES:
        return b
    if op == "-" and a in DATES and b in DATES:
        return "number"
    if op == "+" and a in DATES and b in DATES:
        raise FormulaError("Two dates cannot be added; subtract them to count the days between them.")
    if op in ("+", "-"):
        raise FormulaError(f"'{op}' does not work on {_ONE_NAMES[a]} and {_ONE_NAMES[b]}.")
    raise FormulaError(f"'{op}' does not work on dates; dates can only be moved with + and - or compared.")


def _arith_type(op: str, a: Ty, b: Ty) -> Ty:
    if a.many and b.many and a.table and b.table and a.table != b.table:
        raise FormulaError(f"Columns of '{a.table}' and '{b.table}' cannot be combined row by row; "
                           "total each one first, e.g. SUM(...).")
    return Ty(_arith_kind(op, a.kind, b.kind), a.many or b.many, a.table or b.table)


def _require(ty: Ty, kinds: tuple[str, ...], what: str, many: bool = False) -> None:
    """FormulaError unless ``ty`` is one of ``kinds`` (empty and unknown always pass)."""
    if ty.many and not many:
        raise FormulaError(f"{what} needs a single value, not {describe(ty)}; reduce it first with SUM, "
                           "COUNT, MIN or MAX.")
    if ty.kind not in kinds + ("any", "null"):
        wanted = " or ".join(_ONE_NAMES[k] for k in kinds)
        hint = " Compare it to get one, e.g. amount > 0." if kinds == ("boolean",) and ty.kind == "number" else ""
        raise FormulaError(f"{what} needs {wanted}, got {describe(ty)}.{hint}")


def _check_comparison(op: str, a: Ty, b: Ty) -> None:
    for ty in (a, b):
        _require(ty, ("number", "text", "boolean", "date", "datetime"), f"Comparison '{op}'")
    if {"any", "null"} & {a.kind, b.kind} or (a.kind in DATES and b.kind in DATES):
        return
    if a.kind != b.kind:
        raise FormulaError(f"Cannot compare {describe(a)} with {describe(b)}.")
    if a.kind == "boolean" and op not in ("==", "!="):
        raise FormulaError("Yes/no values can only be compared with == and !=.")


def _unify(a: Ty, b: Ty, what: str) -> Ty:
    """The type of a value that is either ``a`` or ``b`` (IF's two results, IFEMPTY)."""
    if a.kind == "null":
        return b
    if b.kind == "null":
        return a
    if a.many != b.many:
        raise FormulaError(f"{what} must give the same shape either way, but one choice is {describe(a)} "
                           f"and the other {describe(b)}.")
    if a.kind != b.kind and "any" not in (a.kind, b.kind):
        raise FormulaError(f"{what} must give one type of value, but one choice is {describe(a)} "
                           f"and the other {describe(b)}.")
    kind = a.kind if a.kind == b.kind else "any"
    return Ty(kind, a.many, a.table if a.table == b.table else None)


# ---------------------------------------------------------------------------------------------
# Functions

Run = Callable[[_Env], Any]


@dataclass(frozen=True)
class Part:
    """A checked sub-expression: its type, how to compute it, and its value when constant."""

    ty: Ty
    run: Run
    const: bool = False
    folded: bool = False
    value: Any = None


def _constant(ty: Ty, value: Any) -> Part:
    return Part(ty, lambda env: value, const=True, folded=True, value=value)


NULL = _constant(Ty("null"), None)
NUMBER = Ty("number")


def _fn_if(args: list[Part]) -> tuple[Ty, Run]:
    cond, yes, no = args[0], args[1], args[2] if len(args) == 3 else NULL
    _require(cond.ty, ("boolean",), "IF's condition")
    check, then, otherwise = cond.run, yes.run, no.run
    return _unify(yes.ty, no.ty, "IF"), lambda env: then(env) if _truth(check(env), "IF") else otherwise(env)


def _conditions(args: list[Part], what: str) -> list[Run]:
    for arg in args:
        _require(arg.ty, ("boolean",), what)
    return [arg.run for arg in args]


def _fn_and(args: list[Part]) -> tuple[Ty, Run]:
    runs = _conditions(args, "AND")
    return Ty("boolean"), lambda env: all(_truth(run(env), "AND") for run in runs)


def _fn_or(args: list[Part]) -> tuple[Ty, Run]:
    runs = _conditions(args, "OR")
    return Ty("boolean"), lambda env: any(_truth(run(env), "OR") for run in runs)


def _fn_not(args: list[Part]) -> tuple[Ty, Run]:
    (run,) = _conditions(args, "NOT")
    return Ty("boolean"), lambda env: not _truth(run(env), "NOT")


def _numbers(args: list[Part], what: str) -> list[Run]:
    for arg in args:
        _require(arg.ty, ("number",), what, many=True)
    return [arg.run for arg in args]


def _total(env: _Env, numbers: list, what: str = "SUM") -> Decimal:
    total = ZERO
    for number in numbers:
        total = _checked(env.ctx.add(total, _number(number, what)))
    return total


def _fn_sum(args: list[Part]) -> tuple[Ty, Run]:
    runs = _numbers(args, "SUM")
    return NUMBER, lambda env: _total(env, _present(runs, env))


def _average(env: _Env, numbers: list) -> Decimal | None:
    if not numbers:
        return None
    return _checked(env.ctx.divide(_total(env, numbers, "AVG"), Decimal(len(numbers))))


def _fn_avg(args: list[Part]) -> tuple[Ty, Run]:
    runs = _numbers(args, "AVG")
    return NUMBER, lambda env: _average(env, _present(runs, env))


def _extreme(pick: Callable, name: str) -> Callable[[list[Part]], tuple[Ty, Run]]:
    """MIN or MAX: of numbers, dates or datetimes, all of one kind; empty when nothing is there."""
    def build(args: list[Part]) -> tuple[Ty, Run]:
        for arg in args:
            _require(arg.ty, ("number", "date", "datetime"), name, many=True)
        kinds = {arg.ty.kind for arg in args} - {"any", "null"}
        if len(kinds) > 1:
            raise FormulaError(f"{name} compares values of one type, got {' and '.join(sorted(kinds))}.")
        runs = [arg.run for arg in args]

        def run(env: _Env) -> Any:
            found = _present(runs, env)
            if len({kind_of(value) for value in found}) > 1:
                raise FormulaRuntimeError(f"{name} compares values of one type.")
            return pick(found) if found else None
        return Ty(kinds.pop() if kinds else "any"), run
    return build


def _fn_count(args: list[Part]) -> tuple[Ty, Run]:
    runs = [arg.run for arg in args]
    return NUMBER, lambda env: Decimal(len(_present(runs, env)))


def _places(arg: Part | None) -> Callable[[_Env], int]:
    rule = f"ROUND keeps a whole number of places between -{MAX_PLACES} and {MAX_PLACES}."
    if arg is None:
        return lambda env: 0
    _require(arg.ty, ("number",), "ROUND's places")
    if arg.folded and arg.value is not None:
        try:
            _whole(arg.value, -MAX_PLACES, MAX_PLACES, rule)
        except FormulaRuntimeError as exc:
            raise FormulaError(exc.message) from None
    run = arg.run
    return lambda env: _whole(_number(_or_zero(run(env)), "ROUND"), -MAX_PLACES, MAX_PLACES, rule)


def _fn_round(args: list[Part]) -> tuple[Ty, Run]:
    _require(args[0].ty, ("number",), "ROUND", many=True)
    value, places = args[0].run, _places(args[1] if len(args) > 1 else None)

    def run(env: _Env) -> Any:
        keep = places(env)
        return _each(lambda item: _round(env.ctx, item, keep), value(env))
    return Ty("number", args[0].ty.many, args[0].ty.table), run


def _fn_abs(args: list[Part]) -> tuple[Ty, Run]:
    _require(args[0].ty, ("number",), "ABS", many=True)
    value = args[0].run

    def run(env: _Env) -> Any:
        return _each(lambda item: None if item is None else _number(item, "ABS").copy_abs(), value(env))
    return Ty("number", args[0].ty.many, args[0].ty.table), run


def _join(env: _Env, runs: list[Run]) -> str:
    pieces: list[str] = []
    length = 0
    for run in runs:
        value = run(env)
        for item in value if isinstance(value, list) else [value]:
            pieces.append(render(item))
            length += len(pieces[-1])
            if length > MAX_TEXT_LENGTH:
                raise FormulaRuntimeError(f"CONCAT would make a text longer than {MAX_TEXT_LENGTH:,} characters.")
    return "".join(pieces)


def _fn_concat(args: list[Part]) -> tuple[Ty, Run]:
    runs = [arg.run for arg in args]
    return Ty("text"), lambda env: _join(env, runs)


def _length(value: Any) -> Decimal:
    if value is None:
        return ZERO
    if not isinstance(value, str):
        raise FormulaRuntimeError(f"LEN needs a text, got {_ONE_NAMES[kind_of(value)]}.")
    return Decimal(len(value))


def _fn_len(args: list[Part]) -> tuple[Ty, Run]:
    _require(args[0].ty, ("text",), "LEN")
    run = args[0].run
    return NUMBER, lambda env: _length(run(env))


def _today(env: _Env) -> date:
    if env.today is None:
        raise FormulaRuntimeError("TODAY() needs today's date.")
    return env.today


def _now(env: _Env) -> datetime:
    if env.now is None:
        raise FormulaRuntimeError("NOW() needs the current time.")
    return env.now


def _fn_today(args: list[Part]) -> tuple[Ty, Run]:
    return Ty("date"), _today


def _fn_now(args: list[Part]) -> tuple[Ty, Run]:
    return Ty("datetime"), _now


def _moment(value: Any, what: str) -> date:
    if kind_of(value) not in DATES:
        raise FormulaRuntimeError(f"{what} needs a date, got {_ONE_NAMES[kind_of(value)]}.")
    return value


def _calendar_days(end: Any, start: Any) -> Decimal | None:
    """Calendar days from start to end; datetimes count by their UTC date."""
    if end is None or start is None:
        return None
    end, start = _moment(end, "DAYS"), _moment(start, "DAYS")
    end = _utc(end).date() if isinstance(end, datetime) else end
    start = _utc(start).date() if isinstance(start, datetime) else start
    return Decimal((end - start).days)


def _fn_days(args: list[Part]) -> tuple[Ty, Run]:
    for arg in args:
        _require(arg.ty, DATES, "DAYS")
    end, start = args[0].run, args[1].run
    return NUMBER, lambda env: _calendar_days(end(env), start(env))


def _fn_dateadd(args: list[Part]) -> tuple[Ty, Run]:
    moment, amount, unit = args
    _require(moment.ty, DATES, "DATEADD")
    _require(amount.ty, ("number",), "DATEADD's amount")
    _require(unit.ty, ("text",), "DATEADD's unit")
    if unit.folded and unit.value not in UNITS:
        raise FormulaError(f"DATEADD counts in one of: {', '.join(repr(u) for u in UNITS)}; got {unit.value!r}.")
    when, count, per = moment.run, amount.run, unit.run

    def run(env: _Env) -> date | None:
        start = when(env)
        if start is None:
            return None
        amount = _number(_or_zero(count(env)), "DATEADD")
        return _date_add(env.ctx, _moment(start, "DATEADD"), amount, per(env))
    return Ty(moment.ty.kind if moment.ty.kind in DATES else "any"), run


def _date_part(name: str, attribute: str) -> Callable[[list[Part]], tuple[Ty, Run]]:
    def build(args: list[Part]) -> tuple[Ty, Run]:
        _require(args[0].ty, DATES, name)
        value = args[0].run

        def run(env: _Env) -> Decimal | None:
            moment = value(env)
            return None if moment is None else Decimal(getattr(_moment(moment, name), attribute))
        return NUMBER, run
    return build


def _fn_ifempty(args: list[Part]) -> tuple[Ty, Run]:
    value, fallback = args[0], args[1]
    if value.ty.many and not fallback.ty.many:  # fill the empty rows of a column
        ty = _unify(Ty(value.ty.kind), fallback.ty, "IFEMPTY")
        ty = Ty(ty.kind, True, value.ty.table)
    else:
        ty = _unify(value.ty, fallback.ty, "IFEMPTY")
    first, second = value.run, fallback.run

    def run(env: _Env) -> Any:
        found = first(env)
        if isinstance(found, list):
            return [second(env) if _is_empty(item) else item for item in found]
        return second(env) if _is_empty(found) else found
    return ty, run


class Function(NamedTuple):
    """One function of the language: how many values it takes and how it is checked and built."""

    min_args: int
    max_args: int | None
    build: Callable[[list[Part]], tuple[Ty, Run]]
    pure: bool = True  # False when the result depends on the moment (TODAY, NOW)


FUNCTIONS: dict[str, Function] = {
    "IF": Function(2, 3, _fn_if),
    "AND": Function(1, None, _fn_and),
    "OR": Function(1, None, _fn_or),
    "NOT": Function(1, 1, _fn_not),
    "SUM": Function(1, None, _fn_sum),
    "AVG": Function(1, None, _fn_avg),
    "MIN": Function(1, None, _extreme(min, "MIN")),
    "MAX": Function(1, None, _extreme(max, "MAX")),
    "COUNT": Function(1, None, _fn_count),
    "ROUND": Function(1, 2, _fn_round),
    "ABS": Function(1, 1, _fn_abs),
    "CONCAT": Function(1, None, _fn_concat),
    "LEN": Function(1, 1, _fn_len),
    "TODAY": Function(0, 0, _fn_today, pure=False),
    "NOW": Function(0, 0, _fn_now, pure=False),
    "DAYS": Function(2, 2, _fn_days),
    "DATEADD": Function(3, 3, _fn_dateadd),
    "YEAR": Function(1, 1, _date_part("YEAR", "year")),
    "MONTH": Function(1, 1, _date_part("MONTH", "month")),
    "DAY": Function(1, 1, _date_part("DAY", "day")),
    "IFEMPTY": Function(2, 2, _fn_ifempty),
}


def _arity(name: str, spec: Function, got: int) -> str:
    def values(n: int) -> str:
        return f"{n} value" if n == 1 else f"{n} values"
    if spec.max_args is None:
        need = f"at least {values(spec.min_args)}"
    elif spec.min_args == spec.max_args:
        need = "no values" if spec.max_args == 0 else f"exactly {values(spec.min_args)}"
    else:
        need = f"{spec.min_args} to {values(spec.max_args)}"
    return f"{name} takes {need}, got {got}."


# ---------------------------------------------------------------------------------------------
# Source checks before parsing

_TOKEN = re.compile(r"""\s*(?:
    (?P<string>(?P<prefix>(?i:br|rb|fr|rf|[rubf])?)(?P<quote>'''|\"\"\"|'|\"))
  | (?P<word>[^\W\d]\w*)
  | (?P<number>\.?\d[\w.]*)
  | (?P<open>[(\[{])
  | (?P<close>[)\]}])
  | (?P<sign>[-+~])
  | (?P<other>\S)
)""", re.VERBOSE)
_INFIX_WORDS = {"and", "or", "in", "is", "if", "else", "for", "lambda", "await", "yield", "from", "async"}


def _string_end(source: str, start: int, quote: str) -> int:
    """Index just past the string literal whose body starts at ``start`` (the end if unclosed)."""
    pos = start
    while pos < len(source):
        if source[pos] == "\\":
            pos += 2
        elif source.startswith(quote, pos):
            return pos + len(quote)
        else:
            pos += 1
    return len(source)


def nesting_depth(source: str, limit: int = MAX_DEPTH) -> int:
    """Brackets plus runs of prefix operators (``-``, ``not``), measured on the raw text.

    Runs before the parser, because a very deep input is exactly what makes a parser slow or
    crash. Text literals are skipped; counting stops as soon as ``limit`` is passed.
    """
    stack: list[int] = []  # open brackets, each with the prefix operators pending before it
    pending = deepest = run = 0
    expecting, pos = True, 0
    while deepest <= limit and (match := _TOKEN.match(source, pos)):
        pos, kind = match.end(), match.lastgroup
        word = match.group("word")
        if match.group("string") is not None:
            if "f" in match.group("prefix").lower():  # f-strings hold code: refused unread
                raise FormulaError(_REFUSED[ast.JoinedStr])
            pos, kind = _string_end(source, pos, match.group("quote")), "word"
        if kind == "open":
            stack.append(run)
            pending, run, expecting = pending + run, 0, True
        elif kind == "close":
            pending -= stack.pop() if stack else 0
            run, expecting = 0, False
        elif expecting and (kind == "sign" or word == "not"):
            run += 1
        elif kind in ("sign", "other") or word in _INFIX_WORDS or word == "not":
            expecting = True
        else:
            run, expecting = 0, False
        deepest = max(deepest, len(stack) + pending + run)
    return deepest


def _parse(source: str) -> ast.Expression:
    if not isinstance(source, str):
        raise FormulaError("A formula must be a text.")
    text = source.strip()
    if not text:
        raise FormulaError("The formula is empty.")
    if len(text) > MAX_SOURCE_LENGTH:
        raise FormulaError(f"The formula is {len(text):,} characters long; at most {MAX_SOURCE_LENGTH:,} are allowed.")
    if nesting_depth(text) > MAX_DEPTH:
        raise FormulaError(f"The formula is nested too deeply: at most {MAX_DEPTH} levels of brackets "
                           "and signs are allowed.")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        where = f" at character {exc.offset}" if exc.offset else ""
        raise FormulaError(f"The formula is not valid{where}: {exc.msg}.") from None
    except ValueError:  # null bytes, on Python versions that do not call them a syntax error
        raise FormulaError("The formula is not valid: it holds characters that are not allowed.") from None
    except (MemoryError, RecursionError):  # only when called with little memory or stack left
        raise FormulaError("The formula is too complex to read; split it into several computed fields.") from None
    # ast.walk is iterative, so counting is safe on any tree the parser accepted
    parts = sum(1 for node in ast.walk(tree) if isinstance(node, ast.expr))
    if parts > MAX_NODES:
        raise FormulaError(f"The formula has {parts} parts; at most {MAX_NODES} are allowed. Split it into "
                           "several computed fields.")
    return tree


# ---------------------------------------------------------------------------------------------
# The allow-list walk

_REFUSED: dict[type, str] = {
    ast.Subscript: "Indexing with [...] is not allowed in formulas.",
    ast.Slice: "Slices ([a:b]) are not allowed in formulas.",
    ast.Lambda: "lambda is not allowed in formulas.",
    ast.ListComp: "Comprehensions (... for ... in ...) are not allowed in formulas.",
    ast.SetComp: "Comprehensions (... for ... in ...) are not allowed in formulas.",
    ast.DictComp: "Comprehensions (... for ... in ...) are not allowed in formulas.",
    ast.GeneratorExp: "Comprehensions (... for ... in ...) are not allowed in formulas.",
    ast.JoinedStr: "f-strings are not allowed in formulas; use CONCAT to build a text.",
    ast.FormattedValue: "f-strings are not allowed in formulas; use CONCAT to build a text.",
    ast.Starred: "'*' before a value is not allowed in formulas.",
    ast.NamedExpr: "':=' is not allowed in formulas.",
    ast.IfExp: "'x if condition else y' is not allowed in formulas; use IF(condition, x, y).",
    ast.Dict: "Dictionaries ({...}) are not allowed in formulas.",
    ast.Set: "Sets ({...}) are not allowed in formulas.",
    ast.List: "Lists ([...]) are not allowed in formulas.",
    ast.Tuple: "Tuples ((a, b)) are not allowed in formulas.",
    ast.Await: "'await' is not allowed in formulas.",
    ast.Yield: "'yield' is not allowed in formulas.",
    ast.YieldFrom: "'yield' is not allowed in formulas.",
}
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%", ast.Pow: "**"}
_OPERATOR_HINTS = {ast.BitAnd: "'&' is not allowed in formulas; use CONCAT to join texts or AND(...) for conditions.",
                   ast.BitOr: "'|' is not allowed in formulas; use OR(...) for conditions.",
                   ast.FloorDiv: "'//' is not allowed in formulas; use / and ROUND.",
                   ast.BitXor: "'^' is not allowed in formulas; use ** for powers.",
                   ast.MatMult: "'@' is not allowed in formulas.",
                   ast.LShift: "'<<' is not allowed in formulas.", ast.RShift: "'>>' is not allowed in formulas.",
                   ast.Invert: "'~' is not allowed in formulas.",
                   ast.In: "'in' is not allowed in formulas.", ast.NotIn: "'not in' is not allowed in formulas.",
                   ast.Is: "'is' is not allowed in formulas; use == or !=.",
                   ast.IsNot: "'is not' is not allowed in formulas; use !=."}
_COMPARISONS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_LITERALS = {"TRUE": (Ty("boolean"), True), "FALSE": (Ty("boolean"), False), "NULL": (Ty("null"), None)}
_VISITORS = {ast.Expression: "_visit_expression", ast.Constant: "_visit_constant", ast.Name: "_visit_name",
             ast.Attribute: "_visit_attribute", ast.BinOp: "_visit_binop", ast.UnaryOp: "_visit_unaryop",
             ast.BoolOp: "_visit_boolop", ast.Compare: "_visit_compare", ast.Call: "_visit_call"}
_DOT_RULE = "Attribute access is not allowed except field.column (a sub-table column or a field of a related record)"


def _refused(node: ast.AST) -> str:
    return _REFUSED.get(type(node), f"'{type(node).__name__}' is not allowed in formulas.")


def _clip(text: str, size: int = 60) -> str:
    return text if len(text) <= size else text[: size - 3] + "..."


class _Checker:
    """Walks the parsed formula, refusing anything off the allow-list, and builds its Parts."""

    def __init__(self, source: str, fields: Mapping[str, FieldInfo]):
        self.source = source
        self.fields = fields
        self.references: set[str] = set()
        self.related: set[tuple[str, str]] = set()

    def check(self, node: ast.AST) -> Part:
        visitor = _VISITORS.get(type(node))
        if visitor is None:
            raise FormulaError(_refused(node))
        return getattr(self, visitor)(node)

    def snippet(self, node: ast.AST) -> str:
        return _clip(ast.get_source_segment(self.source, node) or type(node).__name__)

    def fold(self, part: Part, node: ast.AST) -> Part:
        """Compute a constant sub-expression now, so an out-of-range one is refused at once."""
        if not part.const or part.folded:
            return part
        try:
            value = part.run(_Env({}, None, None, None))
        except _OutOfRange:
            raise FormulaError(f"'{self.snippet(node)}' gives a number out of range; formulas work with "
                               "numbers up to 10^18 in size.") from None
        except (FormulaRuntimeError, ArithmeticError):
            return part  # e.g. 1/0 in a branch IF may never take: it fails only if it is computed
        return _constant(part.ty, value)

    # --- names and fields

    def field_info(self, name: str) -> FieldInfo:
        if name.startswith("_"):
            raise FormulaError(f"Names starting with '_' are not allowed in formulas ('{_clip(name)}').")
        info = self.fields.get(name)
        if info is None:
            raise FormulaError(self.unknown_field(name))
        self.references.add(name)
        return info

    def unknown_field(self, name: str) -> str:
        known = sorted(self.fields)
        listed = ", ".join(known[:40]) + (f" and {len(known) - 40} more" if len(known) > 40 else "")
        message = f"Formula refers to '{_clip(name)}', which is not a field; fields: {listed or 'none'}."
        if name.upper() in _LITERALS:
            return message + f" Write {name.upper()} in capitals for the value."
        if name.upper() in FUNCTIONS:
            return message + f" {name.upper()} is a function: call it with brackets, {name.upper()}(...)."
        close = difflib.get_close_matches(name, known, n=1)
        return message + (f" Did you mean '{close[0]}'?" if close else "")

    def _visit_expression(self, node: ast.Expression) -> Part:
        return self.check(node.body)

    def _visit_name(self, node: ast.Name) -> Part:
        if node.id in _LITERALS:
            return _constant(*_LITERALS[node.id])
        info = self.field_info(node.id)
        key = node.id
        if info.kind == "table":
            columns = ", ".join(sorted(info.columns)) or "none"
            raise FormulaError(f"'{key}' is a sub-table; use one of its columns with a dot, e.g. "
                               f"{key}.column (columns: {columns}).")
        ty, read = _value_reader(key, info.kind, f"Field '{key}'")
        return Part(ty, lambda env: read(env.values.get(key)))

    def _visit_attribute(self, node: ast.Attribute) -> Part:
        if isinstance(node.value, ast.Attribute):
            raise FormulaError(f"{_DOT_RULE}: '{self.snippet(node)}' goes more than one level deep.")
        if not isinstance(node.value, ast.Name):
            raise FormulaError(f"{_DOT_RULE}: '{self.snippet(node)}' is not allowed.")
        if node.attr.startswith("_") or node.value.id.startswith("_"):
            raise FormulaError(f"Names starting with '_' are not allowed in formulas ('{self.snippet(node)}').")
        base, info = node.value.id, self.field_info(node.value.id)
        if info.kind == "table":
            return self.column(base, node.attr, info)
        if info.kind == "id" and info.target:
            return self.related_field(base, node.attr, info)
        raise FormulaError(f"{_DOT_RULE}: '{base}' is {_field_noun(info.kind)}, so "
                           f"'{base}.{_clip(node.attr)}' is not allowed.")

    def column(self, table: str, column: str, info: FieldInfo) -> Part:
        kind = info.columns.get(column)
        if kind is None:
            raise FormulaError(f"Sub-table '{table}' has no column '{_clip(column)}'; columns: "
                               f"{', '.join(sorted(info.columns)) or 'none'}.")
        if kind not in _READERS:
            raise FormulaError(f"Column '{table}.{column}' holds {_field_noun(kind)}, which formulas cannot use.")
        read = _READERS[kind]
        return Part(Ty(_FIELD_KINDS[kind], True, table),
                    lambda env: _read_column(env.values.get(table), table, column, read))

    def related_field(self, relation: str, key: str, info: FieldInfo) -> Part:
        kind = info.target.get(key)
        if kind is None:
            raise FormulaError(f"The record that '{relation}' points to has no field '{_clip(key)}'; its fields: "
                               f"{', '.join(sorted(info.target)) or 'none'}.")
        ty, read = _value_reader(f"{relation}.{key}", kind, f"Field '{relation}.{key}'")
        self.related.add((relation, key))

        def run(env: _Env) -> Any:
            record = env.related_record(relation)
            return read(None if record is None else record.get(key))
        return Part(ty, run)

    # --- values and operators

    def _visit_constant(self, node: ast.Constant) -> Part:
        value = node.value
        if isinstance(value, bool) or value is None:
            return _constant(Ty("boolean") if isinstance(value, bool) else Ty("null"), value)
        if isinstance(value, (int, float)):
            return _constant(NUMBER, self.literal_number(node))
        if isinstance(value, str):
            if len(value) > MAX_LITERAL_LENGTH:
                raise FormulaError(f"A text in the formula is {len(value):,} characters long; at most "
                                   f"{MAX_LITERAL_LENGTH:,} are allowed.")
            return _constant(Ty("text"), value)
        if isinstance(value, bytes):
            raise FormulaError("Byte strings (b'...') are not allowed in formulas.")
        if isinstance(value, complex):
            raise FormulaError("Imaginary numbers (like 2j) are not allowed in formulas.")
        raise FormulaError(f"'{self.snippet(node)}' is not allowed in formulas.")

    def literal_number(self, node: ast.Constant) -> Decimal:
        """The number as written: 0.1 is exactly one tenth, not the nearest binary fraction."""
        value = node.value
        try:
            if isinstance(value, int):
                if abs(value) > 10**18:
                    raise _OutOfRange()
                return Decimal(value)
            return _checked(Decimal(ast.get_source_segment(self.source, node) or repr(value)))
        except _OutOfRange:
            raise FormulaError(f"The number {self.snippet(node)} is out of range; formulas work with numbers "
                               "up to 10^18 in size.") from None
        except (ArithmeticError, ValueError):
            raise FormulaError(f"The number {self.snippet(node)} cannot be read.") from None

    def _visit_binop(self, node: ast.BinOp) -> Part:
        op = _BINARY.get(type(node.op))
        if op is None:
            raise FormulaError(_OPERATOR_HINTS.get(type(node.op), "This operator is not allowed in formulas."))
        left, right = self.check(node.left), self.check(node.right)
        ty = _arith_type(op, left.ty, right.ty)
        if op == "**" and right.folded and not _is_exponent(right.value):
            raise FormulaError(f"{_EXPONENT_RULE} '{self.snippet(node)}' is not allowed.")
        datey = (left.ty.kind in DATES, right.ty.kind in DATES)
        first, second = left.run, right.run

        def run(env: _Env) -> Any:
            return _pairwise(lambda a, b: _scalar_op(env.ctx, op, a, b, datey), first(env), second(env))
        return self.fold(Part(ty, run, const=left.const and right.const), node)

    def _visit_unaryop(self, node: ast.UnaryOp) -> Part:
        operand = self.check(node.operand)
        if isinstance(node.op, ast.Not):
            (value,) = _conditions([operand], "'not'")
            return self.fold(Part(Ty("boolean"), lambda env: not _truth(value(env), "'not'"),
                                  const=operand.const), node)
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise FormulaError(_OPERATOR_HINTS.get(type(node.op), "This operator is not allowed in formulas."))
        sign = "-" if isinstance(node.op, ast.USub) else "+"
        _require(operand.ty, ("number",), f"'{sign}' before a value", many=True)
        kind = "any" if operand.ty.kind == "any" else "number"
        value, datey = operand.run, (False, False)

        def run(env: _Env) -> Any:
            return _pairwise(lambda a, b: _scalar_op(env.ctx, sign, a, b, datey), ZERO, value(env))
        return self.fold(Part(Ty(kind, operand.ty.many, operand.ty.table), run, const=operand.const), node)

    def _visit_boolop(self, node: ast.BoolOp) -> Part:
        parts = [self.check(value) for value in node.values]
        name = "AND" if isinstance(node.op, ast.And) else "OR"
        ty, run = (_fn_and if name == "AND" else _fn_or)(parts)
        return self.fold(Part(ty, run, const=all(part.const for part in parts)), node)

    def _visit_compare(self, node: ast.Compare) -> Part:
        ops = []
        for op in node.ops:
            if type(op) not in _COMPARISONS:
                raise FormulaError(_OPERATOR_HINTS.get(type(op), "This comparison is not allowed in formulas."))
            ops.append(_COMPARISONS[type(op)])
        parts = [self.check(node.left)] + [self.check(value) for value in node.comparators]
        for op, left, right in zip(ops, parts, parts[1:]):
            _check_comparison(op, left.ty, right.ty)
        runs = [part.run for part in parts]

        def run(env: _Env) -> bool:
            left = runs[0](env)
            for op, next_run in zip(ops, runs[1:]):  # a < b < c: each value computed once
                right = next_run(env)
                if not _compare(op, left, right):
                    return False
                left = right
            return True
        return self.fold(Part(Ty("boolean"), run, const=all(part.const for part in parts)), node)

    def _visit_call(self, node: ast.Call) -> Part:
        if not isinstance(node.func, ast.Name):
            raise FormulaError(f"Only functions of formulas can be called, like SUM(...); "
                               f"'{self.snippet(node.func)}(...)' is not allowed.")
        name = node.func.id
        spec = FUNCTIONS.get(name.upper())
        if spec is None:
            raise FormulaError(f"'{_clip(name)}' is not a function of formulas; use one of: "
                               f"{', '.join(sorted(FUNCTIONS))}.")
        name = name.upper()
        for keyword in node.keywords:
            what = f"named values like '{keyword.arg}=' are" if keyword.arg else "'**' before a value is"
            raise FormulaError(f"{name} takes its values in order; {what} not allowed.")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise FormulaError(_REFUSED[ast.Starred])
        if not spec.min_args <= len(node.args) <= (spec.max_args if spec.max_args is not None else len(node.args)):
            raise FormulaError(_arity(name, spec, len(node.args)))
        args = [self.check(arg) for arg in node.args]
        ty, run = spec.build(args)
        const = spec.pure and all(arg.const for arg in args)
        return self.fold(Part(ty, run, const=const), node)


_FIELD_NOUNS = {"number": "a number field", "text": "a text field", "boolean": "a yes/no field",
                "date": "a date field", "datetime": "a date and time field", "time": "a time field",
                "id": "a reference field", "table": "a sub-table", "object": "structured data",
                "list": "a list of choices"}


def _field_noun(kind: str) -> str:
    return _FIELD_NOUNS.get(kind, f"a field of kind '{kind}'")


def _value_reader(key: str, kind: str, label: str) -> tuple[Ty, Callable[[Any], Any]]:
    """The type of a field (or a related record's field) and how to read its stored value."""
    if kind == "list":
        return Ty("text", True, key), lambda raw: _read_list(raw, label, _read_text)
    if kind not in _READERS:
        raise FormulaError(f"'{key}' is {_field_noun(kind)}, which formulas cannot use.")
    read = _READERS[kind]
    return Ty(_FIELD_KINDS[kind]), lambda raw: read(raw, label)


# ---------------------------------------------------------------------------------------------
# Public API

@dataclass(frozen=True, eq=False)
class Formula:
    """A checked formula, ready to compute for any number of records."""

    source: str
    result_kind: str
    references: frozenset[str]
    related: frozenset[tuple[str, str]]
    _run: Run = field(repr=False)

    def evaluate(self, values: Mapping[str, Any], *, today: date, now: datetime,
                 related: Callable[[str], Mapping | None] | None = None) -> Any:
        """The formula's value for one record (Decimal, str, bool, date, datetime, list or None).

        Raises FormulaRuntimeError when it cannot be computed (division by zero, a number out of
        range, a stored value of the wrong type).
        """
        env = _Env(values or {}, today, _utc(now) if now is not None else None, related)
        try:
            return self._run(env)
        except FormulaRuntimeError:
            raise
        except RecursionError:
            raise FormulaRuntimeError("The formula is too complex to compute here.") from None
        except ArithmeticError as exc:
            raise FormulaRuntimeError(f"The formula cannot be computed ({type(exc).__name__}).") from None


def compile_formula(source: str, fields: Mapping[str, FieldInfo]) -> Formula:
    """Parse, allow-list, bound and type-check a formula against the entity's fields.

    Raises FormulaError naming the problem, e.g. "Formula refers to 'amout', which is not a
    field; fields: amount, discount."
    """
    tree = _parse(source)
    checker = _Checker(source.strip(), fields)
    try:
        part = checker.check(tree)
    except RecursionError:  # only when called with little stack left: the size limits keep trees shallow
        raise FormulaError("The formula is too complex to check; split it into several computed fields.") from None
    kind = "list" if part.ty.many else ("any" if part.ty.kind == "null" else part.ty.kind)
    return Formula(source, kind, frozenset(checker.references), frozenset(checker.related), part.run)


def evaluation_order(formulas: Mapping[str, Formula]) -> list[str]:
    """Formula field keys so that each comes after the formula fields it refers to.

    Raises FormulaError naming a cycle, e.g. "total -> tax -> total".
    """
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for key, formula in formulas.items():
        sorter.add(key, *sorted(ref for ref in formula.references if ref in formulas))
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = list(reversed(exc.args[1]))[:-1]  # the sorter lists dependencies first
        first = min(range(len(cycle)), key=lambda i: list(formulas).index(cycle[i]))
        cycle = cycle[first:] + cycle[:first]
        path = " -> ".join(cycle + cycle[:1])
        raise FormulaError(f"Formulas refer to each other in a circle: {path}.") from None


def _store_number(value: Any, places: int) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = Decimal(value)
    if not isinstance(value, Decimal):
        raise FormulaRuntimeError(f"{_ONE_NAMES[kind_of(value)].capitalize()} cannot be stored as a number.")
    exponent = Decimal((0, (1,), -places))
    stored = value.quantize(exponent, rounding=ROUND_HALF_UP, context=Context(prec=80))
    return format(stored.copy_abs() if stored.is_zero() else stored, "f")  # never "-0.00"


def _store_as(kinds: tuple[str, ...], convert: Callable[[Any], Any]) -> Callable[[Any, int], Any]:
    def store(value: Any, places: int) -> Any:
        if kind_of(value) not in kinds:
            raise FormulaRuntimeError(f"{_ONE_NAMES[kind_of(value)].capitalize()} cannot be stored as "
                                      f"{_ONE_NAMES[kinds[0]]}.")
        return convert(value)
    return store


def _store_list(value: Any, places: int) -> list:
    if not isinstance(value, list):
        raise FormulaRuntimeError(f"{_ONE_NAMES[kind_of(value)].capitalize()} cannot be stored as a list.")
    return [to_stored(item, kind_of(item), places) for item in value]


def _store_id(value: Any, places: int) -> int:
    """A reference (a relation's record id, a user field's member id) copied by a rule's formula."""
    if isinstance(value, Decimal) and value == value.to_integral_value() and 1 <= value <= 2**53:
        return int(value)
    raise FormulaRuntimeError(f"{_ONE_NAMES[kind_of(value)].capitalize()} cannot be stored as a reference; "
                              f"copy a relation or user field, such as \"customer\" or \"owner\".")


_STORERS: dict[str, Callable[[Any, int], Any]] = {
    "number": _store_number,
    "text": _store_as(("text", "number", "boolean", "date", "datetime"), render),
    "boolean": _store_as(("boolean",), lambda value: value),
    "date": _store_as(("date", "datetime"), lambda value: _read_date(value, "")),
    "datetime": _store_as(("datetime", "date"), lambda value: render(_as_datetime(value))),
    "list": _store_list,
    "id": _store_id,
}


def to_stored(value: Any, kind: str, places: int = 2) -> Any:
    """A formula result in the stored encoding of a ``kind`` field.

    Numbers become decimal strings with exactly ``places`` places (half up); dates ISO strings;
    datetimes "YYYY-MM-DDTHH:MM:SSZ"; yes/no and text stay as they are; empty stays None.
    """
    if value is None:
        return None
    store = _STORERS.get(kind)
    if store is None:
        raise FormulaRuntimeError(f"Formula results cannot be stored in a {kind} field.")
    stored = store(value, places)
    return stored.isoformat() if isinstance(stored, date) else stored

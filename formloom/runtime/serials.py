"""Serial numbers (流水号) such as ``QT-202611-0001``: unique and gap-free per app, entity and field.

A pattern is literal text with tokens in braces: the date tokens ``{YYYY}``, ``{YY}``, ``{MM}``,
``{DD}`` and exactly one counter token of zeros, ``{0000}``, whose number of zeros (1 to 12) is
the width the number is padded to (wider numbers are printed in full).

The counter restarts at 1 whenever the rendered date part changes: the *period* is the date
tokens' rendered values joined in order ("202611" for ``QT-{YYYY}{MM}-{0000}``; "" when the
pattern has no date token, so it never restarts). A pattern with ``{MM}`` but no year therefore
continues each month's count from the previous year's, which keeps its numbers unique.

:func:`next_value` takes the next number inside the caller's transaction with one atomic
upsert, so the counter row stays locked until the record is committed or rolled back: a
rolled-back submission gives its number back, and concurrent submissions queue on the row.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from formloom.platform.models import SerialCounter

MAX_PATTERN_LENGTH = 60
MAX_WIDTH = 12

DATE_TOKENS = {
    "YYYY": lambda moment: f"{moment.year:04d}",
    "YY": lambda moment: f"{moment.year % 100:02d}",
    "MM": lambda moment: f"{moment.month:02d}",
    "DD": lambda moment: f"{moment.day:02d}",
}
VALID_TOKENS = "{YYYY}, {YY}, {MM}, {DD} and one counter such as {0000}"

_COUNTER = re.compile(r"0+")


@dataclass(frozen=True)
class _Part:
    kind: str  # "text", "date" or "counter"
    value: str  # the literal text, the date token's name, or the counter's zeros


def _scan(pattern: str) -> tuple[list[_Part], list[str]]:
    """Split a pattern into parts; also return the problems found on the way."""
    parts: list[_Part] = []
    problems: list[str] = []
    text: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "}":
            problems.append(f"The '}}' at position {i + 1} has no matching '{{'; "
                            "remove it or add the missing '{'.")
            i += 1
            continue
        if char != "{":
            text.append(char)
            i += 1
            continue
        end = pattern.find("}", i + 1)
        nested = pattern.find("{", i + 1)
        if end == -1 or (nested != -1 and nested < end):
            problems.append(f"The '{{' at position {i + 1} is never closed; add the missing '}}'.")
            i += 1
            continue
        if text:
            parts.append(_Part("text", "".join(text)))
            text = []
        name = pattern[i + 1:end]
        if name in DATE_TOKENS:
            parts.append(_Part("date", name))
        elif _COUNTER.fullmatch(name):
            if len(name) > MAX_WIDTH:
                problems.append(f"The counter {{{name}}} is {len(name)} digits wide; "
                                f"use 1 to {MAX_WIDTH} zeros, e.g. {{0000}}.")
            parts.append(_Part("counter", name))
        else:
            problems.append(f"Unknown token {{{name}}}; the valid tokens are {VALID_TOKENS}.")
        i = end + 1
    if text:
        parts.append(_Part("text", "".join(text)))
    return parts, problems


def check_pattern(pattern: str) -> list[str]:
    """Every problem with a serial number pattern, as sentences for the person designing it."""
    if not isinstance(pattern, str):
        return ["The pattern must be text such as 'QT-{YYYY}{MM}-{0000}'."]
    problems: list[str] = []
    if len(pattern) > MAX_PATTERN_LENGTH:
        problems.append(f"The pattern is {len(pattern)} characters long; "
                        f"the limit is {MAX_PATTERN_LENGTH}.")
    parts, found = _scan(pattern)
    problems.extend(found)
    counters = sum(1 for p in parts if p.kind == "counter")
    if counters == 0:
        problems.append("The pattern has no counter token; add one such as {0000} "
                        "(four zeros give 0001, 0002, ...).")
    elif counters > 1:
        problems.append(f"The pattern has {counters} counter tokens; keep exactly one, such as {{0000}}.")
    return problems


def _parts(pattern: str) -> list[_Part]:
    problems = check_pattern(pattern)
    if problems:
        raise ValueError(f"Invalid serial number pattern {pattern!r}: " + " ".join(problems))
    return _scan(pattern)[0]


def period_of(pattern: str, moment: datetime) -> str:
    """The rendered date part of ``pattern`` at ``moment``: the counter restarts when it changes."""
    return "".join(DATE_TOKENS[p.value](moment) for p in _parts(pattern) if p.kind == "date")


def render(pattern: str, number: int, moment: datetime) -> str:
    """The serial number ``number`` of ``pattern``, with the date tokens taken from ``moment``."""
    out = []
    for part in _parts(pattern):
        if part.kind == "text":
            out.append(part.value)
        elif part.kind == "date":
            out.append(DATE_TOKENS[part.value](moment))
        else:
            out.append(str(number).zfill(len(part.value)))
    return "".join(out)


def next_value(session: Session, app_id: int, entity_key: str, field_key: str, pattern: str,
               moment: datetime) -> str:
    """Take the next serial number in the session's current transaction and render it.

    One ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` statement: the counter row stays
    locked (PostgreSQL row lock; SQLite write transaction) until the caller commits, so the
    number is given back if the caller rolls back, and concurrent callers get consecutive
    numbers. ``moment`` decides the period and the date tokens; pass it in the time zone the
    numbers are meant to follow.
    """
    period = period_of(pattern, moment)
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        insert = postgresql.insert
    elif dialect == "sqlite":
        insert = sqlite.insert
    else:
        # Formloom keeps its data in SQLite or PostgreSQL (db.py); no other database is configured.
        raise RuntimeError(f"Serial numbers need SQLite or PostgreSQL; this database is {dialect}.")
    table = SerialCounter.__table__
    statement = (
        insert(table)
        .values(app_id=app_id, entity_key=entity_key, field_key=field_key, period=period, value=1)
        .on_conflict_do_update(index_elements=[table.c.app_id, table.c.entity_key, table.c.field_key,
                                               table.c.period],
                               set_={"value": table.c.value + 1})
        .returning(table.c.value)
    )
    number = session.execute(statement).scalar_one()
    return render(pattern, number, moment)

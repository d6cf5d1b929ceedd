"""Serial numbers: patterns, periods, and unique gap-free numbers under concurrent submissions."""
from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from formloom.platform.db import new_session
from formloom.platform.models import SerialCounter
from formloom.runtime.serials import check_pattern, next_value, period_of, render

NOV = datetime(2026, 11, 5, 9, 30)
DEC = datetime(2026, 12, 1, 0, 0)
PATTERN = "QT-{YYYY}{MM}-{0000}"


# --- patterns (no database) ------------------------------------------------------------------

@pytest.mark.parametrize("pattern, number, expected", [
    (PATTERN, 1, "QT-202611-0001"),
    ("{YY}{MM}{DD}-{000}", 42, "261105-042"),
    ("{YYYY}/{0}", 7, "2026/7"),
    ("No.{00}", 123, "No.123"),  # wider than the token: printed in full
    ("{000000000000}", 5, "000000000005"),
    ("报价-{YYYY}-{0000}", 12, "报价-2026-0012"),
    ("{0000}", 9999, "9999"),
])
def test_render_every_token(pattern, number, expected):
    assert check_pattern(pattern) == []
    assert render(pattern, number, NOV) == expected


def test_render_pads_month_and_day_and_two_digit_year():
    assert render("{YY}{MM}{DD}{0}", 1, datetime(2009, 3, 4)) == "0903041"


@pytest.mark.parametrize("pattern, period", [
    (PATTERN, "202611"),
    ("{YYYY}-{0000}", "2026"),
    ("{YY}{MM}{DD}-{000}", "261105"),
    ("{0000}-{DD}", "05"),
    ("INV-{0000}", ""),
])
def test_period_is_the_rendered_date_part(pattern, period):
    assert period_of(pattern, NOV) == period


@pytest.mark.parametrize("pattern, expected", [
    ("QT-{YYYY}", ["no counter token"]),
    ("", ["no counter token"]),
    ("{0000}-{00}", ["2 counter tokens"]),
    ("{YYYY}-{seq}-{0000}", ["Unknown token {seq}", "{YYYY}, {YY}, {MM}, {DD}"]),
    ("{yyyy}{0000}", ["Unknown token {yyyy}"]),
    ("Q" * 61 + "{0}", ["64 characters long; the limit is 60"]),
    ("QT-{YYYY-{0000}", ["'{' at position 4 is never closed"]),
    ("QT}-{0000}", ["'}' at position 3 has no matching '{'"]),
    ("{0000000000000}", ["13 digits wide; use 1 to 12 zeros"]),
])
def test_check_pattern_explains_each_problem(pattern, expected):
    problems = check_pattern(pattern)
    assert problems, pattern
    joined = " ".join(problems)
    for part in expected:
        assert part in joined
    assert all(p.endswith(".") and p[0].isupper() for p in problems)


def test_invalid_patterns_are_refused_when_rendering():
    with pytest.raises(ValueError, match="no counter token"):
        render("QT-{YYYY}", 1, NOV)


# --- counters (both backends) ----------------------------------------------------------------

def take(app, sales, pattern: str = PATTERN, moment: datetime = NOV, *, field: str = "number",
         fail: bool = False, pause: float = 0.0) -> str:
    """One submission: its own write transaction that takes a number and commits."""
    with new_session(app, write=True) as session, session.begin():
        number = next_value(session, sales.id, "quote", field, pattern, moment)
        if pause:
            time.sleep(pause)
        if fail:
            raise RuntimeError("the submission failed after taking its number")
    return number


def test_numbers_count_up_and_restart_with_the_month(app, sales):
    assert [take(app, sales) for _ in range(3)] == ["QT-202611-0001", "QT-202611-0002", "QT-202611-0003"]
    assert take(app, sales, moment=DEC) == "QT-202612-0001"
    assert take(app, sales) == "QT-202611-0004"  # a late November record continues November's count


def test_yearly_and_never_restarting_patterns(app, sales):
    assert take(app, sales, "{YYYY}-{000}", NOV, field="yearly") == "2026-001"
    assert take(app, sales, "{YYYY}-{000}", DEC, field="yearly") == "2026-002"
    assert take(app, sales, "{YYYY}-{000}", datetime(2027, 1, 1), field="yearly") == "2027-001"
    assert take(app, sales, "N{0}", NOV, field="plain") == "N1"
    assert take(app, sales, "N{0}", datetime(2030, 6, 1), field="plain") == "N2"


def test_each_field_entity_and_app_counts_on_its_own(app, db, admin, sales):
    from tests.factories import make_sales_app

    other = make_sales_app(db, admin, key="other")
    assert take(app, sales, field="a") == "QT-202611-0001"
    assert take(app, sales, field="b") == "QT-202611-0001"
    assert take(app, other, field="a") == "QT-202611-0001"
    with new_session(app, write=True) as session, session.begin():
        assert next_value(session, sales.id, "order", "a", PATTERN, NOV) == "QT-202611-0001"
    assert take(app, sales, field="a") == "QT-202611-0002"


def test_rollback_gives_the_number_back(app, sales):
    session = new_session(app, write=True)
    try:
        assert next_value(session, sales.id, "quote", "number", PATTERN, NOV) == "QT-202611-0001"
        session.rollback()
        assert next_value(session, sales.id, "quote", "number", PATTERN, NOV) == "QT-202611-0001"
        session.commit()
        assert next_value(session, sales.id, "quote", "number", PATTERN, NOV) == "QT-202611-0002"
        session.commit()
    finally:
        session.close()


def test_a_failed_submission_does_not_use_up_a_number(app, db, sales):
    assert take(app, sales) == "QT-202611-0001"
    with pytest.raises(RuntimeError):
        take(app, sales, fail=True)
    assert take(app, sales) == "QT-202611-0002"
    assert db.scalar(select(SerialCounter.value)) == 2
    assert db.scalar(select(func.count()).select_from(SerialCounter)) == 1


def test_twenty_concurrent_submissions_get_twenty_consecutive_numbers(app, sales):
    count = 20
    numbers: list[str] = []
    errors: list[BaseException] = []
    retries: list[int] = []
    start = threading.Barrier(count)
    lock = threading.Lock()

    def submit() -> None:
        try:
            start.wait()
            for attempt in range(5):
                try:
                    number = take(app, sales, pause=0.005)
                    break
                except OperationalError as exc:  # SQLite: only if a lock wait outlasted busy_timeout
                    if "locked" not in str(exc) or attempt == 4:
                        raise
                    with lock:
                        retries.append(attempt)
            with lock:
                numbers.append(number)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(numbers) == [f"QT-202611-{n:04d}" for n in range(1, count + 1)]
    assert retries == []  # the busy timeout covers the waits; no submission had to start over

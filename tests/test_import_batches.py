"""Import batches: a 10,000-row file with bad rows, dry run, commit of the valid rows, rollback."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from formloom.platform.auth import Cause
from formloom.platform.errors import Conflict
from formloom.platform.models import ChangeLog, Event, ImportStatus, Record
from formloom.runtime import imports, records
from tests.factories import make_people_app

ROWS = 10_000
# PostgreSQL runs the same test on fewer rows: what differs there is the SQL, not the row count,
# and 10,000 rows through PostgreSQL cost CI several minutes more.
PG_ROWS = 3_000
EXISTING = 50  # people already there; the file's first rows update them by e-mail
BAD_KINDS = ["name", "email", "age", "tier", "duplicate"]


@pytest.fixture
def people(db, admin):
    return make_people_app(db, admin)


def make_file(rows: int) -> tuple[bytes, dict[int, str]]:
    """A CSV of ``rows`` people, 3 % of them bad in varied ways; returns it and {line: field}."""
    lines, bad = ["Name,E-mail,Age,Tier,Code"], {}
    for i in range(rows):
        name, email, age, tier = f"Person {i}", f"user{i}@example.com", str(20 + i % 50), "ab"[i % 2]
        code = f"P{i:05d}"
        if i % 100 in (7, 37, 67):
            kind = BAD_KINDS[(i // 100 * 3 + (i % 100) // 30) % len(BAD_KINDS)]
            if kind == "name":
                name = ""
            elif kind == "email":
                email = f"user{i}-at-example.com"
            elif kind == "age":
                age = "twenty"
            elif kind == "tier":
                tier = "z"
            else:
                code = f"P{i - 1:05d}"  # the row above (a good one) has it already
            bad[i + 2] = "code" if kind == "duplicate" else kind
        lines.append(f"{name},{email},{age},{tier},{code}")
    return ("\n".join(lines) + "\n").encode(), bad


def snapshot(db, app) -> dict[int, dict]:
    db.expire_all()
    return {r.id: dict(r.data) for r in db.scalars(select(Record).where(
        Record.app_id == app.id, Record.deleted_at.is_(None)).order_by(Record.id))}


def test_ten_thousand_rows_with_bad_ones_dry_run_commit_and_rollback(db, admin, people, capsys):
    rows = ROWS if db.get_bind().dialect.name == "sqlite" else PG_ROWS
    for i in range(EXISTING):
        records.create(db, admin, Cause.for_user(admin), people, "person",
                       {"name": f"Old {i}", "email": f"user{i}@example.com", "age": "1"})
    db.commit()
    before = snapshot(db, people)
    logs_before = db.scalar(select(func.count()).select_from(ChangeLog))
    data, bad = make_file(rows)
    assert len(bad) == rows * 3 // 100
    table = imports.read_table(data, "people.csv")
    options = imports.ImportOptions(match="email")
    updates = sum(1 for i in range(EXISTING) if i + 2 not in bad)

    started = time.perf_counter()
    dry = imports.run(db, admin, imports.start(db, admin, people, "person", table, options,
                                               file_name="people.csv", dry_run=True))
    db.commit()
    timings = {"dry run": time.perf_counter() - started}
    errors = {r["line"]: r["errors"] for r in dry.results if r["action"] == "error"}
    assert {line: list(fields) for line, fields in errors.items()} == {line: [key] for line, key in bad.items()}
    assert errors[9] == {"name": ["Name is required."]}  # line 9 is row 7: a missing name
    duplicate = min(line for line, key in bad.items() if key == "code")
    assert errors[duplicate]["code"] == [f"Code already belongs to Person {duplicate - 3}."]
    assert dry.counts == {"create": rows - updates - len(bad), "update": updates, "skip": 0, "error": len(bad)}
    assert snapshot(db, people) == before  # the dry run changed nothing
    assert db.scalar(select(func.count()).select_from(ChangeLog)) == logs_before

    started = time.perf_counter()
    batch = imports.run(db, admin, imports.start(db, admin, people, "person", table, options, file_name="people.csv"))
    db.commit()
    timings["commit"] = time.perf_counter() - started
    assert batch.status == ImportStatus.DONE.value and batch.done == rows
    assert batch.counts["create"] == rows - updates - len(bad) and batch.counts["update"] == updates
    after = snapshot(db, people)
    assert len(after) == len(before) + rows - updates - len(bad)
    assert after[min(before)]["name"] == "Person 0"  # updated by its e-mail

    started = time.perf_counter()
    counts = imports.rollback(db, admin, batch)
    db.commit()
    timings["rollback"] = time.perf_counter() - started
    assert counts == {"removed": rows - updates - len(bad), "restored": updates}
    assert snapshot(db, people) == before
    assert batch.status == ImportStatus.ROLLED_BACK.value
    rolled = db.scalar(select(func.count()).select_from(ChangeLog).where(
        ChangeLog.cause_ref == f"import:{batch.id}:rollback"))
    assert rolled == rows - len(bad)
    with capsys.disabled():
        print(f"\n{rows:,}-row import: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def test_rollback_is_refused_after_a_later_edit_unless_forced(db, admin, people):
    person = records.create(db, admin, Cause.for_user(admin), people, "person", {"name": "Ann", "email": "a@x.cn"})
    db.commit()
    table = imports.read_csv("name,email,age\nAnn,a@x.cn,30\nBob,b@x.cn,40\n")
    batch = imports.run(db, admin, imports.start(db, admin, people, "person", table,
                                                 imports.ImportOptions(match="email")))
    db.commit()
    records.update(db, admin, Cause.for_user(admin), people, person, {"age": "31"}, person.version)
    db.commit()
    with pytest.raises(Conflict, match=rf"Import #{batch.id} was not rolled back: 1 of its records were changed "
                                       rf"after the import \(#{person.id}\)"):
        imports.rollback(db, admin, batch)
    db.rollback()
    assert snapshot(db, people)[person.id]["age"] == 31
    assert len(snapshot(db, people)) == 2  # nothing was changed
    imports.rollback(db, admin, batch, force=True)
    db.commit()
    assert snapshot(db, people) == {person.id: {"name": "Ann", "email": "a@x.cn"}}


def test_an_import_with_automations_off_raises_no_rule_events(db, admin, people):
    table = imports.read_csv("name,email\nAnn,a@x.cn\nBob,b@x.cn\n")
    events_before = db.scalar(select(func.count()).select_from(Event))
    batch = imports.run(db, admin, imports.start(db, admin, people, "person", table,
                                                 imports.ImportOptions(automation=False)))
    db.commit()
    assert batch.counts["create"] == 2
    assert db.scalar(select(func.count()).select_from(Event)) == events_before
    imports.run(db, admin, imports.start(db, admin, people, "person", imports.read_csv("name\nCy\n"),
                                         imports.ImportOptions()))
    db.commit()
    assert db.scalar(select(func.count()).select_from(Event)) == events_before + 1  # on: one event per change


def test_all_or_nothing_keeps_nothing_when_a_row_fails(db, admin, people):
    table = imports.read_csv("name,email\nAnn,a@x.cn\n,b@x.cn\n")
    batch = imports.run(db, admin, imports.start(db, admin, people, "person", table,
                                                 imports.ImportOptions(all_or_nothing=True)))
    db.commit()
    assert batch.status == ImportStatus.FAILED.value and "Nothing was imported" in batch.message
    assert snapshot(db, people) == {}
    batch = imports.run(db, admin, imports.start(db, admin, people, "person", table, imports.ImportOptions()))
    db.commit()
    assert batch.status == ImportStatus.DONE.value and batch.counts == {"create": 1, "update": 0, "skip": 0,
                                                                         "error": 1}
    assert [d["name"] for d in snapshot(db, people).values()] == ["Ann"]


def test_unchanged_and_empty_rows_are_skipped(db, admin, people):
    records.create(db, admin, Cause.for_user(admin), people, "person", {"name": "Ann", "email": "a@x.cn"})
    db.commit()
    table = imports.read_csv("name,email\nAnn,a@x.cn\n,\n")
    batch = imports.run(db, admin, imports.start(db, admin, people, "person", table,
                                                 imports.ImportOptions(match="email"), dry_run=True))
    assert [(r["line"], r["action"], r.get("reason")) for r in batch.results] == [
        (2, "skip", "unchanged"), (3, "skip", "empty")]

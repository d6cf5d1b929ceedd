"""Benchmark: importing N rows from a CSV file, against a raw INSERT baseline in the same process.

Measurements, each on its own fresh database (a SQLite file, or a private PostgreSQL schema):

D. ``imports.run`` as a dry run: every row created through ``records.create`` (validation,
   unique check, change log, no rule events) inside a savepoint that is rolled back.
A. ``imports.run`` committing: the same, committed every 500 rows, with the batch's progress.
   Both include reading the CSV (``imports.read_table``) and starting the batch.
R. Rollback of batch A (``imports.rollback``): N soft deletes with their change-log rows.
B. Baseline: the same N documents, already validated, by SQLAlchemy Core ``insert(records)``
   executemany, committing every 500 rows: no validation, no change log, no checks.

The entity is ``person`` (name required, e-mail unique, integer age, code unique, select tier);
3 % of the rows are bad, as in the acceptance test. Run from the repository root::

    /work/venv/bin/python bench/import_bench.py --count 10000
    /work/venv/bin/python bench/import_bench.py --count 10000 \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

This is not a test: it imports nothing from ``tests/``.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import platform
import sys
import time

from benchdb import Database
from sqlalchemy import insert

CHUNK = 500


def person_body() -> dict:
    return {"formloom": 1, "kind": "entity", "key": "person", "label": {"en": "Person", "zh-CN": "人员"},
            "title_field": "name",
            "fields": [
                {"key": "name", "type": "text", "label": {"en": "Name", "zh-CN": "姓名"}, "required": True},
                {"key": "email", "type": "email", "label": {"en": "E-mail", "zh-CN": "邮箱"}, "unique": True},
                {"key": "age", "type": "integer", "label": {"en": "Age", "zh-CN": "年龄"}, "min": 0},
                {"key": "code", "type": "text", "label": {"en": "Code", "zh-CN": "编号"}, "unique": True},
                {"key": "tier", "type": "select", "label": {"en": "Tier", "zh-CN": "等级"},
                 "options": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}]}]}


def make_csv(count: int) -> bytes:
    lines = ["Name,E-mail,Age,Code,Tier"]
    for i in range(count):
        name, email, age, code, tier = f"Person {i}", f"user{i}@example.com", str(20 + i % 50), f"P{i:06d}", "ab"[i % 2]
        bad = i % 100 in (7, 37, 67)
        if bad and i % 3 == 0:
            name = ""
        elif bad and i % 3 == 1:
            age = "twenty"
        elif bad:
            tier = "z"
        lines.append(f"{name},{email},{age},{code},{tier}")
    return ("\n".join(lines) + "\n").encode()


def setup(db: Database):
    from formloom.builder import definitions
    from formloom.platform import auth
    from formloom.platform.migrate import upgrade

    upgrade(db.engine)
    session = db.writer()
    admin = auth.create_user(session, "admin", "benchmark-pass", admin=True)
    app = definitions.create_app(session, admin, "bench", {"en": "Bench", "zh-CN": "基准"})
    definitions.save_and_publish(session, admin, app, person_body())
    session.commit()
    return session, admin, app


def run_import(database_url: str | None, data: bytes) -> dict[str, float]:
    from formloom.runtime import imports

    db = Database(database_url)
    try:
        session, admin, app = setup(db)
        options = imports.ImportOptions(automation=False)
        timings = {}
        started = time.perf_counter()
        table = imports.read_table(data, "bench.csv")
        dry = imports.run(session, admin, imports.start(session, admin, app, "person", table, options, dry_run=True))
        session.commit()
        timings["D"] = time.perf_counter() - started
        started = time.perf_counter()
        table = imports.read_table(data, "bench.csv")
        batch = imports.run(session, admin, imports.start(session, admin, app, "person", table, options))
        session.commit()
        timings["A"] = time.perf_counter() - started
        assert dry.counts == batch.counts, (dry.counts, batch.counts)
        timings["created"] = batch.counts["create"]
        started = time.perf_counter()
        imports.rollback(session, admin, batch)
        session.commit()
        timings["R"] = time.perf_counter() - started
        session.close()
        return timings
    finally:
        db.close()


def run_baseline(database_url: str | None, count: int) -> float:
    from formloom.platform.models import Record

    db = Database(database_url)
    try:
        session, admin, app = setup(db)
        rows = [{"app_id": app.id, "entity_key": "person", "entity_version": 1, "title": f"Person {i}",
                 "data": {"name": f"Person {i}", "email": f"user{i}@example.com", "age": 20 + i % 50,
                          "code": f"P{i:06d}", "tier": "ab"[i % 2]}, "version": 1, "owner_id": admin.id,
                 "created_by": admin.id, "updated_by": admin.id} for i in range(count)]
        session.close()
        started = time.perf_counter()
        for offset in range(0, count, CHUNK):
            with db.engine.begin() as conn:
                conn.execute(insert(Record.__table__), rows[offset:offset + CHUNK])
        return time.perf_counter() - started
    finally:
        db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    data = make_csv(args.count)
    timings = run_import(args.database_url, data)
    baseline = run_baseline(args.database_url, int(timings["created"]))
    n = args.count
    print(f"Import benchmark: {n} rows ({n - int(timings['created'])} bad), "
          f"{'PostgreSQL' if args.database_url else 'SQLite'}; Python {platform.python_version()}, "
          f"SQLAlchemy {importlib.metadata.version('sqlalchemy')}")
    for key, name in (("D", "dry run"), ("A", "import (commit)"), ("R", "rollback")):
        print(f"  {key} {name:<16} {timings[key]:8.2f} s  {n / timings[key]:8.0f} rows/s  "
              f"{timings[key] / n * 1e6:8.0f} µs/row")
    created = int(timings["created"])
    print(f"  B raw INSERT       {baseline:8.2f} s  {created / baseline:8.0f} rows/s  "
          f"{baseline / created * 1e6:8.0f} µs/row  ({created} rows, no validation, no change log)")
    print(f"  A/B = {timings['A'] / baseline:.0f}×")


if __name__ == "__main__":
    sys.path.insert(0, ".")
    main()

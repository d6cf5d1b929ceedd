"""Benchmark: exporting N records to CSV and XLSX, against a raw SELECT + csv.writer baseline.

Three measurements, all in this one process, on one fresh database holding N (default 10,000)
records of a 10-field ``deal`` entity (text, multi-line text, currency, whole number, percent,
date, date and time, single choice, member, related company):

A. ``formloom.runtime.exports.export_records(..., ExportFormat.CSV)`` as the admin, every chunk
   joined: the permission checks, the count, one sorted query read 500 rows at a time, names and
   titles per batch, cells as the record page displays them, formula neutralisation, CSV with a
   byte-order mark.
B. The same with ``ExportFormat.XLSX`` (openpyxl, write-only mode), the workbook's bytes.
R. Baseline: ``SELECT data FROM records WHERE app_id = ? AND entity_key = ?`` in SQLAlchemy Core
   and ``csv.writer`` writing each document's raw values, in field order, to a UTF-8 buffer: no
   names, titles, labels, ordering, batches or checks.

Each is run ``--runs`` times (default 5) after one warm-up, each in a new session; the report
gives the median, rows per second and the ratios A/R and B/R, with the versions used. Before
timing, the script checks that A and B hold N rows and that both show the same values.

Run from the repository root::

    /work/venv/bin/python bench/export_bench.py
    /work/venv/bin/python bench/export_bench.py --count 10000 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

SQLite: a file in a temporary directory, deleted afterwards. ``--database-url`` (PostgreSQL): a
private schema ``bench_<random>`` selected through ``?options=-csearch_path=...`` and dropped at
the end. The records are seeded with Core executemany, shaped as ``records.create`` stores them
(checked on a sample, rolled back).

This is not a test: it imports nothing from ``tests/``.
"""
from __future__ import annotations

import argparse
import csv
import importlib.metadata
import io
import platform
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta

from benchdb import Database
from sqlalchemy import insert, select, text

ADMIN_PASSWORD = "benchmark-pass"
APP_KEY = "bench"
ENTITY_KEY = "deal"
BATCH = 1000  # rows per executemany while seeding
SAMPLE = 20  # seeded rows re-created through records.create (and rolled back) to check their shape
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell",
             "Soylent", "Cyberdyne", "Wonka", "Gringotts"]
STAGES = ["lead", "proposal", "won", "lost"]


def company_body() -> dict:
    return {"formloom": 1, "kind": "entity", "key": "company", "label": {"en": "Company", "zh-CN": "公司"},
            "title_field": "name",
            "fields": [{"key": "name", "type": "text", "label": "Company name", "required": True}]}


def deal_body() -> dict:
    return {
        "formloom": 1, "kind": "entity", "key": ENTITY_KEY, "label": {"en": "Deal", "zh-CN": "商机"},
        "title_field": "name", "owner_field": "owner",
        "fields": [
            {"key": "name", "type": "text", "label": {"en": "Deal name", "zh-CN": "商机名称"}, "required": True},
            {"key": "notes", "type": "textarea", "label": "Notes"},
            {"key": "amount", "type": "currency", "label": "Amount", "currency": "CNY"},
            {"key": "seats", "type": "integer", "label": "Seats"},
            {"key": "discount", "type": "percent", "label": "Discount", "min": 0, "max": 100},
            {"key": "close_date", "type": "date", "label": "Expected close"},
            {"key": "meeting_at", "type": "datetime", "label": "Next meeting"},
            {"key": "stage", "type": "select", "label": "Stage",
             "options": [{"value": s, "label": {"en": s.capitalize(), "zh-CN": s}} for s in STAGES]},
            {"key": "owner", "type": "user", "label": "Owner"},
            {"key": "company", "type": "relation", "label": "Customer", "target": "company"},
        ]}


FIELD_KEYS = [f["key"] for f in deal_body()["fields"]]


def make_inputs(count: int, owner_ids: list[int], company_ids: list[int]) -> list[dict]:
    """``count`` deterministic deals as a form posts them (strings); every fifth note is a formula."""
    rows = []
    meeting0 = datetime(2026, 1, 5, 9, 0)
    for i in range(count):
        company = i % len(COMPANIES)
        rows.append({
            "name": f"{COMPANIES[company]} renewal #{i:06d}",
            "notes": "=1+1" if i % 5 == 0 else f"Call {COMPANIES[company]}, \"budget\" row {i}.\nCFO decides.",
            "amount": f"{(i * 104729) % 10_000_000 / 100 - 1000:.2f}",
            "seats": str(1 + (i * 37) % 10000),
            "discount": f"{(i * 13) % 1001 / 10:.1f}",
            "close_date": (date(2026, 1, 1) + timedelta(days=i % 365)).isoformat(),
            "meeting_at": (meeting0 + timedelta(minutes=15 * (i % 20000))).strftime("%Y-%m-%dT%H:%M"),
            "stage": STAGES[i % len(STAGES)],
            "owner": str(owner_ids[i % len(owner_ids)]),
            "company": str(company_ids[company]),
        })
    return rows


def stored(inputs: dict) -> dict:
    """The document ``records.create`` stores for ``inputs`` (checked on a sample)."""
    return {**inputs, "seats": int(inputs["seats"]), "owner": int(inputs["owner"]),
            "company": int(inputs["company"]), "meeting_at": inputs["meeting_at"] + ":00Z"}


# --- the database -------------------------------------------------------------------------------

def seed(db: Database, count: int) -> tuple[int, int, list[dict]]:
    """Definitions, users and companies through the services; the deals by Core executemany."""
    from formloom.builder import definitions
    from formloom.platform import auth
    from formloom.platform.auth import Cause
    from formloom.platform.migrate import upgrade
    from formloom.platform.models import Record
    from formloom.runtime import records

    upgrade(db.engine)
    with db.writer() as session:
        admin = auth.create_user(session, "admin", ADMIN_PASSWORD, admin=True, display_name="Ada Admin")
        owners = [admin.id] + [auth.create_user(session, f"rep{i}", ADMIN_PASSWORD, display_name=f"销售 {i}").id
                               for i in range(1, 5)]
        app = definitions.create_app(session, admin, APP_KEY, {"en": "Bench", "zh-CN": "基准"})
        definitions.save_and_publish(session, admin, app, company_body())
        version = definitions.save_and_publish(session, admin, app, deal_body()).version
        cause = Cause.for_user(admin)
        companies = [records.create(session, admin, cause, app, "company", {"name": n}).id for n in COMPANIES]
        session.commit()
        admin_id, app_id = admin.id, app.id
    inputs = make_inputs(count, owners, companies)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [{"app_id": app_id, "entity_key": ENTITY_KEY, "entity_version": version, "data": stored(row),
             "title": row["name"], "version": 1, "owner_id": int(row["owner"]),
             "created_at": start + timedelta(minutes=i), "updated_at": start + timedelta(minutes=i),
             "created_by": admin_id, "updated_by": admin_id} for i, row in enumerate(inputs)]
    with db.engine.begin() as conn:
        for offset in range(0, len(rows), BATCH):
            conn.execute(insert(Record.__table__), rows[offset:offset + BATCH])
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return admin_id, app_id, inputs


def check_shapes(db: Database, admin_id: int, app_id: int, inputs: list[dict]) -> None:
    from formloom.platform.auth import Cause
    from formloom.platform.models import App, User
    from formloom.runtime import records

    with db.writer() as session:
        admin, app = session.get(User, admin_id), session.get(App, app_id)
        for row in inputs[:SAMPLE]:
            record = records.create(session, admin, Cause.for_user(admin), app, ENTITY_KEY, row)
            if record.data != stored(row):
                raise SystemExit(f"seeded deal differs from what records.create stores:\n  seeded  "
                                 f"{stored(row)}\n  service {record.data}")
        session.rollback()


# --- the measurements ---------------------------------------------------------------------------

def run_export(db: Database, admin_id: int, app_id: int, fmt) -> tuple[float, bytes]:
    from formloom.platform.models import App, User
    from formloom.runtime import exports, listing

    with db.reader() as session:
        admin, app = session.get(User, admin_id), session.get(App, app_id)
        started = time.perf_counter()
        exported = exports.export_records(session, admin, app, ENTITY_KEY, listing.ListQuery(), fmt,
                                          max_rows=10_000_000)
        content = b"".join(exported.chunks)
        return time.perf_counter() - started, content


def run_baseline(db: Database, app_id: int) -> tuple[float, bytes]:
    from formloom.platform.models import Record

    table = Record.__table__
    query = select(table.c.data).where(table.c.app_id == app_id, table.c.entity_key == ENTITY_KEY)
    with db.engine.connect() as conn, conn.begin():
        started = time.perf_counter()
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(FIELD_KEYS)
        for (data,) in conn.execute(query):
            writer.writerow([data.get(key, "") for key in FIELD_KEYS])
        content = buffer.getvalue().encode("utf-8")
        return time.perf_counter() - started, content


def check_exports(csv_content: bytes, xlsx_content: bytes, count: int) -> None:
    from openpyxl import load_workbook

    rows = list(csv.reader(io.StringIO(csv_content.decode("utf-8-sig"), newline="")))
    sheet = list(load_workbook(io.BytesIO(xlsx_content), read_only=True).active.iter_rows(values_only=True))
    if len(rows) != count + 1 or len(sheet) != count + 1:
        raise SystemExit(f"exports hold {len(rows) - 1} (CSV) and {len(sheet) - 1} (XLSX) rows; expected {count}")
    name, notes = rows[0].index("Deal name"), rows[0].index("Notes")
    if [r[name] for r in rows[1:]] != [r[name] for r in sheet[1:]]:
        raise SystemExit("the CSV and XLSX exports hold the records in different orders")
    if not all(r[notes] == "'=1+1" for r in rows[1:] if "=" in r[notes]):
        raise SystemExit("a formula in the notes was not neutralised")


def versions(backend: str) -> str:
    import sqlalchemy

    out = (f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}, "
           f"openpyxl {importlib.metadata.version('openpyxl')}")
    if backend == "postgresql":
        out += f", psycopg {importlib.metadata.version('psycopg')}"
    return out


def main(argv: list[str] | None = None) -> int:
    from formloom.runtime.exports import ExportFormat

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="records to export (default 10000)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each measurement (default 5)")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL URL to run on (private schema, dropped after); default: SQLite")
    args = parser.parse_args(argv)
    if args.count < SAMPLE or args.runs < 1:
        parser.error(f"--count must be at least {SAMPLE} and --runs at least 1")

    db = Database(args.database_url)
    try:
        admin_id, app_id, inputs = seed(db, args.count)
        check_shapes(db, admin_id, app_id, inputs)
        times: dict[str, list[float]] = {"A": [], "B": [], "R": []}
        sizes: dict[str, int] = {}
        contents: dict[str, bytes] = {}
        for run in range(args.runs + 1):  # run 0 warms up
            for name, measure in (("R", lambda: run_baseline(db, app_id)),
                                  ("A", lambda: run_export(db, admin_id, app_id, ExportFormat.CSV)),
                                  ("B", lambda: run_export(db, admin_id, app_id, ExportFormat.XLSX))):
                seconds, content = measure()
                if run:
                    times[name].append(seconds)
                sizes[name], contents[name] = len(content), content
        check_exports(contents["A"], contents["B"], args.count)

        median = {name: statistics.median(values) for name, values in times.items()}
        n = args.count
        print(f"formloom export benchmark: {n:,} records of {len(FIELD_KEYS)} fields, "
              f"median of {args.runs} runs after a warm-up")
        print(f"database: {db.describe()}")
        print(versions(db.engine.dialect.name))
        print()
        for name, what in (("R", "raw SELECT data + csv.writer (baseline)"),
                           ("A", "export_records CSV"), ("B", "export_records XLSX")):
            seconds = median[name]
            ratio = "" if name == "R" else f"  {seconds / median['R']:5.1f} × R"
            print(f"{name}  {what:<40} {seconds * 1000:8.1f} ms  {n / seconds:9,.0f} rows/s  "
                  f"{sizes[name] / 1024:8,.0f} KiB  (min {min(times[name]) * 1000:.1f}, "
                  f"max {max(times[name]) * 1000:.1f}){ratio}")
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: what validated record creation costs compared with a raw SQLAlchemy Core insert.

Three measurements, all in this one process:

A. ``formloom.runtime.records.create`` for N rows of form input (strings, as a browser sends
   them), committing every 500 rows. Per record the service authorizes, loads the compiled
   entity, coerces and validates the values, INSERTs the record and INSERTs one change_log row.
B. The same N rows INSERTed with SQLAlchemy Core (``insert(Record.__table__)``, executemany of
   pre-built dicts holding the already-validated documents), committing every 500 rows, into
   a fresh database (SQLite) or a fresh schema (PostgreSQL) set up exactly like A's. No
   change_log rows are written here.
C. ``validate_values`` alone over the N inputs: no database at all.

Run from the repository root::

    /work/venv/bin/python bench/bench_records.py --count 10000
    /work/venv/bin/python bench/bench_records.py --count 10000 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

With ``--database-url`` every run works in private schemas (``bench_<random>_a`` / ``_b``),
selected through ``?options=-csearch_path=...`` and dropped at the end, so the shared database
is left as it was found. ``--profile`` additionally runs A under cProfile (on another fresh
database) and prints the top functions by cumulative time.

This is not a test: it imports nothing from ``tests/``.
"""
from __future__ import annotations

import argparse
import cProfile
import importlib.metadata
import io
import platform
import pstats
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

BATCH = 500
REPO = Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "benchmark-pass"
APP_KEY = "bench"
ENTITY_KEY = "deal"


# --- the definition -------------------------------------------------------------------------

def deal_body() -> dict:
    """A 12-field entity: every scalar field type a form user types into (no references)."""
    return {
        "formloom": 1, "kind": "entity", "key": ENTITY_KEY, "label": {"en": "Deal", "zh-CN": "商机"},
        "title_field": "name",
        "fields": [
            {"key": "name", "type": "text", "label": "Deal name", "required": True, "max_length": 80},
            {"key": "notes", "type": "textarea", "label": "Notes", "max_length": 2000},
            {"key": "seats", "type": "integer", "label": "Seats", "min": 1, "max": 10000},
            {"key": "weight", "type": "decimal", "label": "Weight", "precision": 3, "min": 0},
            {"key": "amount", "type": "currency", "label": "Amount", "min": 0, "currency": "CNY"},
            {"key": "discount", "type": "percent", "label": "Discount", "min": 0, "max": 100},
            {"key": "close_date", "type": "date", "label": "Expected close"},
            {"key": "meeting_at", "type": "datetime", "label": "Next meeting"},
            {"key": "strategic", "type": "boolean", "label": "Strategic"},
            {"key": "stage", "type": "select", "label": "Stage", "default": "lead",
             "options": [{"value": "lead", "label": "Lead"},
                         {"value": "proposal", "label": "Proposal"},
                         {"value": "negotiation", "label": "Negotiation"},
                         {"value": "won", "label": "Won"},
                         {"value": "lost", "label": "Lost"}]},
            {"key": "contact_email", "type": "email", "label": "Contact e-mail"},
            {"key": "contact_phone", "type": "phone", "label": "Contact phone"},
        ],
    }


COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell",
             "Soylent", "Cyberdyne", "Wonka", "Gringotts"]
STAGES = ["lead", "proposal", "negotiation", "won", "lost"]


def make_inputs(count: int) -> list[dict[str, str]]:
    """``count`` deterministic, valid rows of form input: every value a string, as POSTed."""
    rows = []
    start = date(2026, 1, 1)
    meeting0 = datetime(2026, 1, 5, 9, 0)
    for i in range(count):
        company = COMPANIES[i % len(COMPANIES)]
        rows.append({
            "name": f"{company} renewal #{i:06d}",
            "notes": f"Call {company} about seats.\r\nBudget owner: CFO (row {i}).",
            "seats": str(1 + (i * 37) % 10000),
            "weight": f"{(i * 7919) % 100000 / 1000:.3f}",
            "amount": f"{(i * 104729) % 10_000_000 / 100:.2f}",
            "discount": f"{(i * 13) % 1001 / 10:.1f}",
            "close_date": (start + timedelta(days=i % 365)).isoformat(),
            "meeting_at": (meeting0 + timedelta(minutes=15 * (i % 20000))).strftime("%Y-%m-%dT%H:%M"),
            "strategic": "y" if i % 3 == 0 else "",  # an unchecked box: blank, nothing stored
            "stage": STAGES[i % len(STAGES)],
            "contact_email": f"buyer{i}@{company.lower()}.example.com",
            "contact_phone": f"+86 1{30 + i % 60}-{1000 + i % 9000}-{1000 + (i * 7) % 9000}",
        })
    return rows


# --- databases --------------------------------------------------------------------------------

@dataclass
class Target:
    """One freshly migrated database (or schema) with an admin and the published bench app."""

    label: str
    flask_app: object
    engine: object
    admin_id: int
    app_id: int


class Databases:
    """Hands out fresh databases: SQLite files in a temp dir, or private PostgreSQL schemas."""

    def __init__(self, database_url: str | None):
        self.base_url = database_url
        self.tmpdir = tempfile.mkdtemp(prefix="formloom-bench-")
        self.prefix = f"bench_{secrets.token_hex(4)}"
        self.schemas: list[str] = []
        self.targets: list[Target] = []
        self.admin_engine = None
        if database_url:
            url = make_url(database_url)
            if not url.drivername.startswith("postgresql"):
                raise SystemExit("--database-url must be a PostgreSQL URL; the default is SQLite.")
            self.admin_engine = create_engine(url, isolation_level="AUTOCOMMIT")

    @property
    def backend(self) -> str:
        return "postgresql" if self.base_url else "sqlite"

    def url_for(self, label: str) -> str:
        if not self.base_url:
            return f"sqlite:///{self.tmpdir}/{'bench' if label == 'a' else 'bench_' + label}.db"
        schema = f"{self.prefix}_{label}"
        with self.admin_engine.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        self.schemas.append(schema)
        url = make_url(self.base_url).update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)

    def fresh(self, label: str) -> Target:
        from formloom import create_app
        from formloom.builder import definitions
        from formloom.platform import auth
        from formloom.platform.db import get_engine, new_session
        from formloom.platform.migrate import upgrade

        flask_app = create_app({"INSTANCE_PATH": self.tmpdir, "DATABASE_URL": self.url_for(label),
                                "SECRET_KEY": "bench"})
        engine = get_engine(flask_app)
        upgrade(engine)
        with new_session(flask_app) as session:
            admin = auth.create_user(session, "admin", ADMIN_PASSWORD, admin=True)
            app = definitions.create_app(session, admin, APP_KEY, "Bench")
            definitions.save_and_publish(session, admin, app, deal_body())
            session.commit()
            target = Target(label, flask_app, engine, admin.id, app.id)
        self.targets.append(target)
        return target

    def close(self) -> None:
        for target in self.targets:
            target.engine.dispose()
        if self.admin_engine is not None:
            with self.admin_engine.connect() as conn:
                for schema in self.schemas:
                    conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            self.admin_engine.dispose()
        shutil.rmtree(self.tmpdir, ignore_errors=True)


def server_version(engine) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            return "SQLite " + conn.exec_driver_sql("select sqlite_version()").scalar()
        return "PostgreSQL " + conn.exec_driver_sql("show server_version").scalar().split()[0]


def table_counts(engine) -> tuple[int, int]:
    from formloom.platform.models import ChangeLog, Record

    with engine.connect() as conn:
        return (conn.scalar(select(func.count()).select_from(Record.__table__)),
                conn.scalar(select(func.count()).select_from(ChangeLog.__table__)))


def stored_documents(engine) -> list[dict]:
    from formloom.platform.models import Record

    with engine.connect() as conn:
        return list(conn.scalars(select(Record.__table__.c.data).order_by(Record.__table__.c.id)))


# --- the measurements -------------------------------------------------------------------------

def run_service(target: Target, inputs: list[dict]) -> float:
    """A: records.create for every input, committing every BATCH rows; returns seconds."""
    from formloom.platform.auth import Cause
    from formloom.platform.db import new_session
    from formloom.platform.models import App, User
    from formloom.runtime import records

    with new_session(target.flask_app) as session:
        admin = session.get(User, target.admin_id)
        app = session.get(App, target.app_id)
        cause = Cause.for_user(admin)
        session.commit()
        started = time.perf_counter()
        for i, values in enumerate(inputs, 1):
            records.create(session, admin, cause, app, ENTITY_KEY, values)
            if i % BATCH == 0:
                session.commit()
        session.commit()
        return time.perf_counter() - started


def run_core(target: Target, rows: list[dict]) -> float:
    """B: Core executemany of pre-built rows, one transaction per BATCH rows; returns seconds."""
    from formloom.platform.models import Record

    statement = insert(Record.__table__)
    started = time.perf_counter()
    for offset in range(0, len(rows), BATCH):
        with target.engine.begin() as conn:
            conn.execute(statement, rows[offset:offset + BATCH])
    return time.perf_counter() - started


def run_validation(entity, inputs: list[dict]) -> float:
    """C: validate_values alone (no resolver, no database); returns seconds."""
    from formloom.runtime.validation import validate_values

    started = time.perf_counter()
    for values in inputs:
        validate_values(entity, values)
    return time.perf_counter() - started


def core_rows(entity, documents: list[dict], target: Target) -> list[dict]:
    """The column values the service writes for each record, with the same documents."""
    from formloom.platform.db import utcnow
    from formloom.runtime.records import title_of

    now = utcnow()
    return [{"app_id": target.app_id, "entity_key": entity.key, "entity_version": entity.version,
             "data": doc, "title": title_of(entity, doc), "version": 1, "owner_id": target.admin_id,
             "created_at": now, "updated_at": now, "created_by": target.admin_id,
             "updated_by": target.admin_id} for doc in documents]


@contextmanager
def profiled(top: int) -> Iterator[None]:
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        for order in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(order).print_stats(top)
            report = out.getvalue().split("\n\n", 1)[-1].rstrip()
            for prefix in sorted({str(Path(p)) + "/" for p in sys.path if p.endswith("-packages")}
                                 | {str(REPO) + "/"}, key=len, reverse=True):
                report = report.replace(prefix, "")
            print(f"\n--- cProfile of measurement A, top {top} by {order} ---")
            print(report)


# --- main -------------------------------------------------------------------------------------

def versions() -> str:
    import sqlalchemy

    return (f"Python {platform.python_version()} ({platform.python_implementation()}), "
            f"SQLAlchemy {sqlalchemy.__version__}, jsonschema {importlib.metadata.version('jsonschema')}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="records per measurement (default 10000)")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL URL to run on (private schemas, dropped after); "
                             "default: SQLite in a temp dir")
    parser.add_argument("--profile", action="store_true",
                        help="also run A under cProfile on another fresh database and print hotspots")
    parser.add_argument("--profile-top", type=int, default=25, help="rows of the profile to print")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")

    from formloom.platform.db import new_session
    from formloom.platform.models import App
    from formloom.runtime import catalog
    from formloom.runtime.validation import validate_values

    n = args.count
    databases = Databases(args.database_url)
    try:
        a_target = databases.fresh("a")
        b_target = databases.fresh("b")
        with new_session(a_target.flask_app) as session:
            entity = catalog.entity(session, session.get(App, a_target.app_id), ENTITY_KEY)

        inputs = make_inputs(n)
        # Outside every timing: the coerced documents B inserts (this also warms the validator).
        documents = [validate_values(entity, values) for values in inputs]
        rows = core_rows(entity, documents, b_target)

        seconds_c = run_validation(entity, inputs)
        seconds_a = run_service(a_target, inputs)
        seconds_b = run_core(b_target, rows)

        counts_a, counts_b = table_counts(a_target.engine), table_counts(b_target.engine)
        if counts_a != (n, n) or counts_b != (n, 0):
            raise SystemExit(f"unexpected row counts: A {counts_a}, B {counts_b}")
        if stored_documents(a_target.engine) != documents or stored_documents(b_target.engine) != documents:
            raise SystemExit("the stored documents of A and B differ from the validated ones")

        print(f"formloom record-insert benchmark: {n} records of a {len(entity.fields)}-field entity, "
              f"commit every {BATCH}")
        print(f"database: {server_version(a_target.engine)} "
              f"({'temp-dir files' if databases.backend == 'sqlite' else 'private schemas, dropped after'})")
        print(versions())
        print()
        rows_out = [
            ("A", "service records.create (validate + record + change_log row)", seconds_a, "records/s"),
            ("B", "raw Core insert(Record.__table__) executemany (records only)", seconds_b, "records/s"),
            ("C", "validate_values only, no database", seconds_c, "validations/s"),
        ]
        for name, what, seconds, unit in rows_out:
            print(f"{name}  {what:<62} {seconds:8.3f} s  {n / seconds:10,.0f} {unit:<13} "
                  f"{seconds / n * 1e6:8.1f} µs each")
        print()
        print(f"validated service insert is {seconds_a / seconds_b:.1f}× slower than a raw Core insert")
        print(f"validation alone is {seconds_c / seconds_a:.0%} of the service time")
        print(f"note: A also writes one change_log row per record ({counts_a[1]} rows); "
              f"B writes none ({counts_b[1]}), so B does about half of A's INSERTs.")

        if args.profile:
            p_target = databases.fresh("p")
            with profiled(args.profile_top):
                seconds_p = run_service(p_target, inputs)
            print(f"\n(A under cProfile: {seconds_p:.3f} s)")
    finally:
        databases.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

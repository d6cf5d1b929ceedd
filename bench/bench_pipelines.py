"""Benchmark: the pipeline board, stage moves and pipeline statistics on N deals.

Five measurements, all in this one process, on one fresh database holding N deals spread over
the six stages of the deal pipeline (each with an amount, a customer, an owner and one open
stage visit):

A. ``formloom.runtime.board.load(session, user, app, pipeline, BoardFilter())``: the per-stage
   counts and amount sums in SQL, then up to 50 cards per column (one query per stage).
   Median of several loads, each in a new session.
B. Baseline for A: one raw SQLAlchemy Core ``SELECT stage, count(*), sum(amount) ... GROUP BY
   stage`` over the same rows (the aggregate alone, no cards, no ORM).
C. ``formloom.runtime.pipelines.move`` of deals between two ungated stages (lead -> qualified
   and back), committing each move.
D. Baseline for C: ``formloom.runtime.records.update`` changing the deal name of the same deals,
   committing each. C/D is what a move costs over a plain edit: the transition and gate check,
   the pending-approval lookup and the stage-visit rows.
E. ``formloom.runtime.pipelines.pipeline_stats`` over the stage history (the seeded visits plus
   those C wrote). Median of several runs, each in a new session.

Run from the repository root::

    /work/venv/bin/python bench/bench_pipelines.py
    /work/venv/bin/python bench/bench_pipelines.py \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

The deals are seeded with SQLAlchemy Core executemany (records shaped as ``records.create``
stores them, which the script checks on a sample before timing), so seeding takes seconds.
SQLite: a file in a temporary directory, deleted afterwards. ``--database-url`` (PostgreSQL):
a private schema ``bench_<random>`` selected through ``?options=-csearch_path=...`` and dropped
at the end, so the shared database is left as it was found.

This is not a test: it imports nothing from ``tests/``.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import math
import platform
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from benchdb import Database
from sqlalchemy import event, func, insert, select, text

ADMIN_PASSWORD = "benchmark-pass"
APP_KEY = "pipes"
PIPELINE_KEY = "deals"
ENTITY_KEY = "deal"
BATCH = 1000  # rows per executemany while seeding
REPS = 4  # owners besides the admin
START, OTHER = "lead", "qualified"  # C moves lead deals to qualified and back (both ungated)
SAMPLE = 40  # seeded rows re-created through records.create (and rolled back) to check their shape


# --- the definitions (copied from tests/factories.py; benchmarks import nothing from tests) -----

def company_body() -> dict:
    return {"formloom": 1, "kind": "entity", "key": "company", "label": {"en": "Company", "zh-CN": "公司"},
            "title_field": "name",
            "fields": [{"key": "name", "type": "text", "label": "Company name", "required": True}]}


def pipeline_deal_body() -> dict:
    """A deal entity with a stage field (``tests/factories.py`` ``pipeline_deal_body``)."""
    return {"formloom": 1, "kind": "entity", "key": "deal", "label": {"en": "Deal", "zh-CN": "商机"},
            "title_field": "name", "owner_field": "owner",
            "fields": [
                {"key": "name", "type": "text", "label": "Deal name", "required": True},
                {"key": "company", "type": "relation", "label": "Customer", "target": "company"},
                {"key": "amount", "type": "currency", "label": {"en": "Amount", "zh-CN": "金额"}, "min": 0},
                {"key": "discount", "type": "percent", "label": "Discount", "min": 0, "max": 100},
                {"key": "close_date", "type": "date", "label": "Expected close"},
                {"key": "stage", "type": "select", "label": "Stage", "default": "lead", "options": [
                    {"value": key, "label": key.replace("_", " ").capitalize()}
                    for key in ("lead", "qualified", "proposal", "negotiation", "won", "lost", "archived")]},
                {"key": "lost_reason", "type": "textarea", "label": "Lost reason"},
                {"key": "owner", "type": "user", "label": "Owner", "default_from": "current_user"},
            ]}


def pipeline_body() -> dict:
    """The deal pipeline of ``tests/factories.py`` ``pipeline_body``: gates, a checklist, a discount
    approval and a lost reason, plus one transition qualified -> lead so that C can move deals
    back and forth between two ungated stages."""
    return {
        "formloom": 1, "kind": "pipeline", "key": PIPELINE_KEY, "label": {"en": "Deals", "zh-CN": "商机流程"},
        "entity": "deal", "stage_field": "stage", "amount_field": "amount", "date_field": "close_date",
        "card_fields": ["company", "close_date"],
        "stages": [
            {"key": "lead", "label": "Lead", "color": "#90a4ae", "probability": 10},
            {"key": "qualified", "label": "Qualified", "color": "#42a5f5", "probability": 25},
            {"key": "proposal", "label": {"en": "Proposal", "zh-CN": "方案"}, "color": "#5c6bc0", "probability": 50,
             "gate": {"required": ["amount", "company"]}},
            {"key": "negotiation", "label": "Negotiation", "color": "#ffa000", "probability": 70,
             "gate": {"conditions": [{"condition": {"field": "close_date", "op": "not_empty"},
                                      "message": "Set the expected close date."}]},
             "approval": {"label": "Discount approval", "when": {"field": "discount", "op": "gt", "value": 20},
                          "approvers": {"role": "manager"}, "mode": "any", "self_approval": False}},
            {"key": "won", "label": "Won", "color": "#2e7d32", "probability": 100, "outcome": "won",
             "gate": {"checklist": [{"key": "contract_signed", "label": "Contract signed"}]}},
            {"key": "lost", "label": "Lost", "color": "#c62828", "probability": 0, "outcome": "lost",
             "gate": {"required": ["lost_reason"]}},
        ],
        "transitions": [
            {"from": "lead", "to": "qualified"},
            {"from": "qualified", "to": "lead"},  # added for the benchmark (not in the tests' body)
            {"from": ["lead", "qualified"], "to": "proposal"},
            {"from": "proposal", "to": "negotiation"},
            {"from": "negotiation", "to": "proposal"},
            {"from": "negotiation", "to": "won"},
            {"from": "*", "to": "lost"},
            {"from": "lost", "to": "lead"},
        ],
    }


# --- the deals --------------------------------------------------------------------------------

COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell",
             "Soylent", "Cyberdyne", "Wonka", "Gringotts"]
# A funnel: of every 20 deals, 6 leads, 4 qualified, 3 proposals, 2 in negotiation, 2 won, 3 lost.
STAGE_CYCLE = (["lead"] * 6 + ["qualified"] * 4 + ["proposal"] * 3 + ["negotiation"] * 2
               + ["won"] * 2 + ["lost"] * 3)
SPREAD_MINUTES = 90 * 24 * 60  # deals were created over the last 90 days


@dataclass
class Deal:
    inputs: dict[str, str]  # as a browser form posts them
    document: dict  # as records.create stores them
    stage: str
    owner_id: int
    created_at: datetime


def make_deals(count: int, company_ids: list[int], owner_ids: list[int], now: datetime) -> list[Deal]:
    """``count`` deterministic deals that pass the gate of the stage they start in."""
    deals = []
    start = date(2026, 1, 1)
    for i in range(count):
        stage = STAGE_CYCLE[i % len(STAGE_CYCLE)]
        company = i % len(COMPANIES)
        owner = owner_ids[i % len(owner_ids)]
        inputs = {"name": f"{COMPANIES[company]} deal #{i:06d}", "company": str(company_ids[company]),
                  "amount": f"{(i * 104729) % 5_000_000 / 100:.2f}",
                  "close_date": (start + timedelta(days=i % 365)).isoformat(), "stage": stage,
                  "owner": str(owner)}
        if i % 5 == 0:
            inputs["discount"] = f"{i % 21:.1f}"  # at most 20: no approval needed to start in negotiation
        if stage == "lost":
            inputs["lost_reason"] = "Chose a competitor."
        document = {**inputs, "company": company_ids[company], "owner": owner}
        created_at = now - timedelta(days=1, minutes=(i * 7919) % SPREAD_MINUTES)
        deals.append(Deal(inputs, document, stage, owner, created_at))
    return deals


# --- the database -------------------------------------------------------------------------------

@dataclass
class Seeded:
    admin_id: int
    app_id: int
    deals: list[Deal]
    ids: list[int]  # record id of each deal
    seconds: float


def seed(db: Database, count: int) -> Seeded:
    """Definitions and users through the services; the deals and their stage visits by Core."""
    from formloom.builder import definitions
    from formloom.platform import auth
    from formloom.platform.auth import Cause
    from formloom.platform.db import utcnow
    from formloom.platform.migrate import upgrade
    from formloom.platform.models import Record, StageVisit
    from formloom.runtime import records

    upgrade(db.engine)
    started = time.perf_counter()
    with db.writer() as session:
        admin = auth.create_user(session, "admin", ADMIN_PASSWORD, admin=True)
        owners = [admin.id] + [auth.create_user(session, f"rep{i}", ADMIN_PASSWORD).id for i in range(1, REPS + 1)]
        app = definitions.create_app(session, admin, APP_KEY, {"en": "Pipes", "zh-CN": "流程"})
        definitions.save_and_publish(session, admin, app, company_body())
        entity_version = definitions.save_and_publish(session, admin, app, pipeline_deal_body()).version
        definitions.save_and_publish(session, admin, app, pipeline_body())
        cause = Cause.for_user(admin)
        company_ids = [records.create(session, admin, cause, app, "company", {"name": name}).id
                       for name in COMPANIES]
        session.commit()
        admin_id, app_id = admin.id, app.id

    now = utcnow()
    deals = make_deals(count, company_ids, owners, now)
    rows = [{"app_id": app_id, "entity_key": ENTITY_KEY, "entity_version": entity_version, "data": d.document,
             "title": d.inputs["name"], "version": 1, "owner_id": d.owner_id, "created_at": d.created_at,
             "updated_at": d.created_at, "created_by": admin_id, "updated_by": admin_id} for d in deals]
    table = Record.__table__
    with db.engine.begin() as conn:
        for offset in range(0, len(rows), BATCH):
            conn.execute(insert(table), rows[offset:offset + BATCH])
        by_title = dict(conn.execute(select(table.c.title, table.c.id).where(
            table.c.app_id == app_id, table.c.entity_key == ENTITY_KEY)).all())
        ids = [by_title[d.inputs["name"]] for d in deals]
        visits = [{"app_id": app_id, "record_id": record_id, "pipeline_key": PIPELINE_KEY, "stage": d.stage,
                   "entered_at": d.created_at, "entered_by": admin_id} for d, record_id in zip(deals, ids)]
        for offset in range(0, len(visits), BATCH):
            conn.execute(insert(StageVisit.__table__), visits[offset:offset + BATCH])
    if db.backend == "postgresql":
        with db.engine.begin() as conn:  # what autovacuum would soon do; keeps plans stable
            conn.execute(text("ANALYZE"))
    return Seeded(admin_id, app_id, deals, ids, time.perf_counter() - started)


def check_shapes(db: Database, seeded: Seeded) -> None:
    """records.create on a sample of the inputs stores the same documents as the seed (rolled back)."""
    from formloom.platform.auth import Cause
    from formloom.platform.models import App, User
    from formloom.runtime import records
    from formloom.runtime.validation import Situation

    with db.writer() as session:
        admin, app = session.get(User, seeded.admin_id), session.get(App, seeded.app_id)
        for deal in seeded.deals[:SAMPLE]:
            record = records.create(session, admin, Cause.for_user(admin), app, ENTITY_KEY, deal.inputs,
                                    situation=Situation(user_id=admin.id, now=deal.created_at))
            if (record.data, record.title, record.owner_id) != (deal.document, deal.inputs["name"], deal.owner_id):
                raise SystemExit(f"seeded deal differs from what records.create stores:\n  seeded  "
                                 f"{deal.document}\n  service {record.data}")
        session.rollback()


class StatementCounter:
    """Counts the SQL statements an engine executes while active (not SQLite's own BEGINs)."""

    def __init__(self, engine):
        self.engine, self.count = engine, 0

    def _count(self, _conn, _cursor, statement, *_args) -> None:
        if not statement.startswith("BEGIN"):
            self.count += 1

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *_exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._count)


# --- the measurements ---------------------------------------------------------------------------

def aggregate_statement(app_id: int):
    """B: the raw Core aggregate over the same rows the board counts."""
    from formloom.platform.db import json_value
    from formloom.platform.models import Record

    table = Record.__table__
    stage = json_value(table.c.data, "stage")
    return (select(stage, func.count(), func.sum(json_value(table.c.data, "amount", numeric=True)))
            .where(table.c.app_id == app_id, table.c.entity_key == ENTITY_KEY, table.c.deleted_at.is_(None))
            .group_by(stage))


def time_board(db: Database, seeded: Seeded, runs: int):
    """A and B alternately, ``runs`` times each after one warm-up; each A in a new session."""
    from formloom.platform.models import App, User
    from formloom.runtime import board, pipelines

    statement = aggregate_statement(seeded.app_id)
    times_a, times_b = [], []
    loaded = raw = None
    for run in range(runs + 1):
        with db.reader() as session:
            admin, app = session.get(User, seeded.admin_id), session.get(App, seeded.app_id)
            pipeline = pipelines.get_pipeline(session, app, PIPELINE_KEY)
            started = time.perf_counter()
            loaded = board.load(session, admin, app, pipeline, board.BoardFilter())
            elapsed = time.perf_counter() - started
            if run:
                times_a.append(elapsed)
        with db.engine.connect() as conn, conn.begin():
            started = time.perf_counter()
            raw = conn.execute(statement).all()
            elapsed = time.perf_counter() - started
            if run:
                times_b.append(elapsed)
    return times_a, times_b, loaded, raw


def count_board_statements(db: Database, seeded: Seeded) -> int:
    """The SQL statements one board load executes (outside the timings)."""
    from formloom.platform.models import App, User
    from formloom.runtime import board, pipelines

    with db.reader() as session:
        admin, app = session.get(User, seeded.admin_id), session.get(App, seeded.app_id)
        pipeline = pipelines.get_pipeline(session, app, PIPELINE_KEY)
        with StatementCounter(db.engine) as counter:
            board.load(session, admin, app, pipeline, board.BoardFilter())
        return counter.count


def check_board(loaded, raw, seeded: Seeded) -> None:
    expected = Counter(d.stage for d in seeded.deals)
    sums = {key: float(total) for key, _count, total in raw}
    for column in loaded.columns:
        key = column.stage.key
        if column.count != expected[key] or len(column.cards) != min(expected[key], 50):
            raise SystemExit(f"board column {key}: {column.count} deals, {len(column.cards)} cards; "
                             f"expected {expected[key]}")
        if not math.isclose(column.total, sums.get(key, 0.0), rel_tol=1e-9, abs_tol=0.005):
            raise SystemExit(f"board column {key}: total {column.total} but the raw aggregate says {sums.get(key)}")
    if {key: count for key, count, _total in raw} != dict(expected) or loaded.outside:
        raise SystemExit("the raw aggregate's counts differ from the seeded deals")


def move_plan(seeded: Seeded, moves: int) -> list[tuple[int, int, str]]:
    """(deal index, record id, target stage) for each timed move: lead deals to qualified, then back."""
    leads = [i for i, d in enumerate(seeded.deals) if d.stage == START][1:]  # the first one warms up
    if not leads:
        raise SystemExit(f"--count is too small: no '{START}' deals to move")
    picked = leads[:math.ceil(moves / 2)]
    plan: list[tuple[int, int, str]] = []
    while len(plan) < moves:
        plan += [(i, seeded.ids[i], OTHER) for i in picked] + [(i, seeded.ids[i], START) for i in picked]
    return plan[:moves]


def run_ops(db: Database, seeded: Seeded, plan, operation) -> tuple[float, int]:
    """Warm up on the first lead deal (forward and back, statements counted), then time ``plan``.

    ``operation(session, admin, cause, app, record, index, target)`` does one move or update;
    every operation is committed. Returns (seconds, statements per warm-up operation).
    """
    from formloom.platform.auth import Cause
    from formloom.platform.models import App, Record, User

    warm = next(i for i, d in enumerate(seeded.deals) if d.stage == START)
    with db.writer() as session:
        admin, app = session.get(User, seeded.admin_id), session.get(App, seeded.app_id)
        cause = Cause.for_user(admin)
        session.commit()
        for target in (OTHER, START):
            record = session.get(Record, seeded.ids[warm])
            with StatementCounter(db.engine) as counter:
                operation(session, admin, cause, app, record, warm, target)
                session.commit()
        started = time.perf_counter()
        for index, record_id, target in plan:
            record = session.get(Record, record_id)
            operation(session, admin, cause, app, record, index, target)
            session.commit()
        return time.perf_counter() - started, counter.count


def do_move(session, admin, cause, app, record, _index, target) -> None:
    from formloom.runtime import pipelines
    from formloom.runtime.validation import Situation

    result = pipelines.move(session, admin, cause, app, record, target, expected_version=record.version,
                            situation=Situation(user_id=admin.id))
    if result.status is not pipelines.MoveStatus.MOVED:
        raise SystemExit(f"move of #{record.id} to {target}: {result.status.value}")


def make_update(seeded: Seeded):
    """D: an edited name where C moves a deal to qualified, the original name where C moves it back."""
    from formloom.runtime import records
    from formloom.runtime.validation import Situation

    def do_update(session, admin, cause, app, record, index, target) -> None:
        name = seeded.deals[index].inputs["name"] + (" (edited)" if target == OTHER else "")
        version = record.version
        records.update(session, admin, cause, app, record, {"name": name}, version,
                       situation=Situation(user_id=admin.id))
        if record.version != version + 1:
            raise SystemExit(f"update of #{record.id} did not change it")

    return do_update


def time_stats(db: Database, seeded: Seeded, runs: int):
    """E: pipeline_stats, ``runs`` times after one warm-up, each in a new session."""
    from formloom.platform.db import utcnow
    from formloom.platform.models import App, User
    from formloom.runtime import pipelines

    times, stats = [], None
    for run in range(runs + 1):
        with db.reader() as session:
            admin, app = session.get(User, seeded.admin_id), session.get(App, seeded.app_id)
            pipeline = pipelines.get_pipeline(session, app, PIPELINE_KEY)
            now = utcnow()
            started = time.perf_counter()
            stats = pipelines.pipeline_stats(session, admin, app, pipeline, now)
            elapsed = time.perf_counter() - started
            if run:
                times.append(elapsed)
    return times, stats


def check_history(db: Database, seeded: Seeded, plan, stats) -> int:
    """The visits C wrote are all there and pipeline_stats agrees; returns the number of visits."""
    from formloom.platform.models import StageVisit

    n, moves = len(seeded.deals), len(plan) + 2  # + the warm-up's two moves
    with db.engine.connect() as conn:
        visits = conn.scalar(select(func.count()).select_from(StageVisit.__table__))
        open_visits = conn.scalar(select(func.count()).select_from(StageVisit.__table__)
                                  .where(StageVisit.__table__.c.left_at.is_(None)))
    if visits != n + moves or open_visits != n:
        raise SystemExit(f"{visits} stage visits ({open_visits} open); expected {n + moves} ({n} open)")
    current = sum(s.current for s in stats)
    finished = sum(len(s.durations) for s in stats)
    if current != n or finished != moves:
        raise SystemExit(f"pipeline_stats: {current} current, {finished} finished stays; expected {n}, {moves}")
    return visits


# --- main ---------------------------------------------------------------------------------------

def versions(backend: str) -> str:
    import sqlalchemy

    out = (f"Python {platform.python_version()} ({platform.python_implementation()}), "
           f"SQLAlchemy {sqlalchemy.__version__}")
    if backend == "postgresql":
        out += f", psycopg {importlib.metadata.version('psycopg')}"
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="deals to seed (default 10000)")
    parser.add_argument("--moves", type=int, default=500, help="timed moves, and as many updates (default 500)")
    parser.add_argument("--runs", type=int, default=7, help="timed board loads and stats runs (default 7)")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL URL to run on (private schema, dropped after); "
                             "default: SQLite in a temp dir")
    args = parser.parse_args(argv)
    if args.count < len(STAGE_CYCLE):
        parser.error(f"--count must be at least {len(STAGE_CYCLE)}")
    if args.moves < 1 or args.runs < 1:
        parser.error("--moves and --runs must be at least 1")

    db = Database(args.database_url)
    try:
        seeded = seed(db, args.count)
        check_shapes(db, seeded)
        n = args.count
        per_stage = Counter(d.stage for d in seeded.deals)

        times_a, times_b, loaded, raw = time_board(db, seeded, args.runs)
        check_board(loaded, raw, seeded)
        board_statements = count_board_statements(db, seeded)

        plan = move_plan(seeded, args.moves)
        seconds_c, statements_c = run_ops(db, seeded, plan, do_move)
        seconds_d, statements_d = run_ops(db, seeded, plan, make_update(seeded))
        times_e, stats = time_stats(db, seeded, args.runs)
        visits = check_history(db, seeded, plan, stats)

        a, b, e = (statistics.median(t) for t in (times_a, times_b, times_e))
        m = len(plan)
        deals_moved = len({record_id for _i, record_id, _t in plan})
        print(f"formloom pipeline benchmark: {n:,} deals, {args.moves:,} moves, {args.runs} runs per median")
        print(f"database: {db.describe()}")
        print(versions(db.backend))
        print(f"stages: {', '.join(f'{s.stage.key} {per_stage[s.stage.key]:,}' for s in stats)}")
        print(f"seeding: {seeded.seconds:.2f} s (definitions and {REPS + 1} users through the services, "
              f"{n:,} records + {n:,} stage visits by Core executemany)")
        print()
        print(f"A  board.load(BoardFilter()): counts + sums, ≤50 cards × {len(loaded.columns)} stages "
              f"{ms(a)} median (min {min(times_a) * 1000:.1f}, max {max(times_a) * 1000:.1f}; "
              f"{board_statements} statements, {sum(len(c.cards) for c in loaded.columns)} cards)")
        print(f"B  raw Core SELECT stage, count(*), sum(amount) GROUP BY stage  "
              f"{ms(b)} median (min {min(times_b) * 1000:.1f}, max {max(times_b) * 1000:.1f})")
        print(f"   A/B = {a / b:.1f}: a board load costs {a / b:.1f}× the bare aggregate")
        print()
        for name, what, seconds, unit, statements in (
                ("C", f"pipelines.move {START} ⇄ {OTHER}, commit each", seconds_c, "moves/s", statements_c),
                ("D", "records.update of the name, commit each", seconds_d, "updates/s", statements_d)):
            print(f"{name}  {what:<47} {m:,} in {seconds:6.2f} s  {m / seconds:8,.0f} {unit:<9} "
                  f"{seconds / m * 1000:6.2f} ms each ({statements} statements)")
        print(f"   C/D = {seconds_c / seconds_d:.2f}: a move costs {seconds_c / seconds_d:.2f}× a plain edit "
              f"({deals_moved:,} deals, each moved {START}→{OTHER} and back)")
        print()
        print(f"E  pipeline_stats over {visits:,} stage visits {ms(e)} median "
              f"(min {min(times_e) * 1000:.1f}, max {max(times_e) * 1000:.1f})")
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

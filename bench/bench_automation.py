"""Benchmark: how fast rules run, in-process and on a real ``formloom worker`` with Redis.

The app has one entity (``deal``: name, amount, stage, e-mail) and one published rule: when a deal
is created, notify the user ``rep`` with the title ``New {title}``. Every measurement creates
deals through ``records.create`` (which writes the outbox event in the record's transaction) and
waits for the rule's notification.

A. In this process, on a fresh database:
   A0. Baseline: N record creations, ``records.create`` + commit each, in one session.
   A1. ``dispatch.run_pending(app)`` over the N pending events those creations left: the relay,
       the ``InlineQueue`` and the engine (claim the run, the notify action and its ActionRun,
       close the run, mark the event done). Events/s, and its ratio to creations/s.
   A2. The same split in two, on ``--split-events`` more events (500): the relay alone
       (``relay_once`` into a queue that only collects the job ids), then the job function
       ``run_event`` for each.
B. With a real worker, on another fresh database: a throwaway ``redis-server`` on a free port and
   ``python -m formloom.platform.cli worker --redis-url ...`` as a subprocess (the relay and
   sweeper in a thread, an RQ SimpleWorker in the main thread), against the same database.
   B1. Steady: M deals created at ``--rate`` per second (one commit each) from this process.
       Latency per deal, from the creation's commit (the moment ``commit()`` returned here) to
       the notify action's ``ActionRun.finished_at`` (set by the worker just before it commits
       the notification and its ActionRun together); median, 95th percentile and maximum, and
       also from ``Event.created_at``. The latency is split into: commit -> the relay pass
       that picked the event up (``Event.enqueued_at``, the start of that pass), -> the run's
       start in the worker (``RuleRun.started_at``), -> the action's end.
   B2. Burst: M deals created in one transaction; the worker's events/s from that commit to the
       last action's end.
   For both, the worker's CPU time (both threads, from /proc on Linux) per event and as a share
   of one core: the worker is one Python process, so one core is its ceiling.

The relay polls every ``AUTOMATION_POLL_SECONDS`` (0.5 s by default; ``--poll-seconds`` passes
``FORMLOOM_AUTOMATION_POLL_SECONDS`` to the worker, a setting ``config.ENV_SETTINGS`` reads).
Timestamps written by the worker and taken here come from the same machine's clock.

Run from the repository root::

    /work/venv/bin/python bench/bench_automation.py
    /work/venv/bin/python bench/bench_automation.py \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

SQLite: files in a temporary directory, deleted afterwards. ``--database-url`` (PostgreSQL):
private schemas ``bench_<random>_a`` / ``_b`` (``_p`` with ``--profile``) selected through
``?options=-csearch_path=...`` and dropped at the end. Redis: a ``redis-server`` of this run's
own (no persistence, never port 6379), stopped at the end together with the worker.

This is not a test: it imports nothing from ``tests/``.
"""
from __future__ import annotations

import argparse
import cProfile
import importlib.metadata
import io
import os
import platform
import pstats
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "benchmark-pass"
APP_KEY = "bench"
ENTITY_KEY = "deal"
RULE_KEY = "notify_new_deal"
NOTIFIED = "rep"  # the user the rule notifies
WARM_UP = 10  # deals created and processed before each timing
STAGES = ["lead", "qualified", "proposal", "won", "lost"]
COMPANIES = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell"]


# --- the definitions --------------------------------------------------------------------------

def deal_body() -> dict:
    return {
        "formloom": 1, "kind": "entity", "key": ENTITY_KEY, "label": {"en": "Deal", "zh-CN": "商机"},
        "title_field": "name",
        "fields": [
            {"key": "name", "type": "text", "label": "Deal name", "required": True, "max_length": 80},
            {"key": "amount", "type": "currency", "label": "Amount", "min": 0, "currency": "CNY"},
            {"key": "stage", "type": "select", "label": "Stage", "default": "lead",
             "options": [{"value": s, "label": s.capitalize()} for s in STAGES]},
            {"key": "contact_email", "type": "email", "label": "Contact e-mail"},
        ],
    }


def rule_body() -> dict:
    return {"formloom": 1, "kind": "rule", "key": RULE_KEY, "label": "Notify new deals", "entity": ENTITY_KEY,
            "trigger": {"type": "created"},
            "actions": [{"type": "notify", "to": {"users": [NOTIFIED]}, "title": "New {title}"}]}


def deal_input(i: int) -> dict[str, str]:
    company = COMPANIES[i % len(COMPANIES)]
    return {"name": f"{company} deal #{i:06d}", "amount": f"{(i * 104729) % 5_000_000 / 100:.2f}",
            "stage": STAGES[i % len(STAGES)], "contact_email": f"buyer{i}@{company.lower()}.example.com"}


# --- databases --------------------------------------------------------------------------------

@dataclass
class Target:
    """One freshly migrated database (or schema) holding the app, its rule and two users."""

    label: str
    url: str
    flask_app: object
    engine: object
    admin_id: int
    rep_id: int
    app_id: int


class Databases:
    """Hands out fresh databases: SQLite files in a temp dir, or private PostgreSQL schemas."""

    def __init__(self, database_url: str | None):
        self.base_url = database_url
        self.tmpdir = Path(tempfile.mkdtemp(prefix="formloom-bench-"))
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
            return f"sqlite:///{self.tmpdir}/bench_{label}.db"
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

        url = self.url_for(label)
        flask_app = create_app({"INSTANCE_PATH": str(self.tmpdir / f"instance_{label}"), "DATABASE_URL": url,
                                "SECRET_KEY": "bench", "AUTOMATION": "off"})
        engine = get_engine(flask_app)
        upgrade(engine)
        with new_session(flask_app, write=True) as session:
            admin = auth.create_user(session, "admin", ADMIN_PASSWORD, admin=True)
            rep = auth.create_user(session, NOTIFIED, ADMIN_PASSWORD, display_name="Rep")
            app = definitions.create_app(session, admin, APP_KEY, "Bench")
            auth.grant_app(session, rep, app)
            definitions.save_and_publish(session, admin, app, deal_body())
            definitions.save_and_publish(session, admin, app, rule_body())
            session.commit()
            target = Target(label, url, flask_app, engine, admin.id, rep.id, app.id)
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


class StatementCounter:
    """Counts the SQL statements (not SQLite's own BEGINs) and commits an engine runs while active."""

    def __init__(self, engine):
        self.engine, self.statements, self.commits = engine, 0, 0

    def _statement(self, _conn, _cursor, statement, *_args) -> None:
        if not statement.startswith("BEGIN"):
            self.statements += 1

    def _commit(self, _conn) -> None:
        self.commits += 1

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(self.engine, "commit", self._commit)
        return self

    def __exit__(self, *_exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(self.engine, "commit", self._commit)


# --- creating deals ---------------------------------------------------------------------------

class Creator:
    """Creates deals through records.create in one writing session, as the admin."""

    def __init__(self, target: Target):
        from formloom.platform.auth import Cause
        from formloom.platform.db import new_session
        from formloom.platform.models import App, User

        self.session = new_session(target.flask_app, write=True)
        self.admin = self.session.get(User, target.admin_id)
        self.app = self.session.get(App, target.app_id)
        self.cause = Cause.for_user(self.admin)
        self.session.commit()
        self.serial = 0

    def create(self, commit: bool = True) -> int:
        from formloom.runtime import records

        record = records.create(self.session, self.admin, self.cause, self.app, ENTITY_KEY, deal_input(self.serial))
        self.serial += 1
        if commit:
            self.session.commit()
        return record.id

    def close(self) -> None:
        self.session.close()


@dataclass
class Tally:
    events_pending: int
    events_done: int
    runs_succeeded: int
    actions_succeeded: int
    notifications: int


def tally(target: Target) -> Tally:
    from formloom.platform.models import ActionRun, Event, Notification, RuleRun

    def count(model, *where) -> int:
        return conn.scalar(select(func.count()).select_from(model.__table__).where(*where))

    with target.engine.connect() as conn:
        return Tally(count(Event, Event.__table__.c.status != "done"), count(Event, Event.__table__.c.status == "done"),
                     count(RuleRun, RuleRun.__table__.c.status == "succeeded"),
                     count(ActionRun, ActionRun.__table__.c.status == "succeeded"),
                     count(Notification, Notification.__table__.c.user_id == target.rep_id))


def check_all_done(target: Target, expected: int) -> None:
    seen = tally(target)
    if seen != Tally(0, expected, expected, expected, expected):
        raise SystemExit(f"expected {expected} events done, each with one succeeded run, action and "
                         f"notification; found {seen}")


# --- A: in-process ------------------------------------------------------------------------------

class CollectingQueue:
    """A queue that only remembers what the relay handed it (A2: the relay without the jobs)."""

    def __init__(self):
        self.jobs: list[tuple] = []

    def enqueue(self, function, arg: int, job_id: str) -> None:
        self.jobs.append((function, arg))


def drain_inline(target: Target) -> int:
    """dispatch.run_pending until it finds nothing (one call handles up to 20 x 500)."""
    from formloom.runtime import dispatch

    total = 0
    while True:
        ran = dispatch.run_pending(target.flask_app)
        if not ran:
            return total
        total += ran


@dataclass
class Timed:
    count: int
    seconds: float
    statements: int
    commits: int


def timed(target: Target, count: int, work) -> tuple[Timed, object]:
    """Run ``work()`` with its statements and commits counted; returns the timing and its result."""
    with StatementCounter(target.engine) as counter:
        started = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - started
    return Timed(count, seconds, counter.statements, counter.commits), result


def measure_in_process(target: Target, n: int, split: int) -> list[tuple[str, str, str, Timed]]:
    """A0, A1 and (with ``split`` > 0) A2; returns (name, what, unit, timing) rows."""
    from formloom.runtime import dispatch

    def create(count: int):
        return lambda: [creator.create() for _ in range(count)]

    creator = Creator(target)
    try:
        create(WARM_UP)()
        drain_inline(target)
        a0, _ = timed(target, n, create(n))
        a1, processed = timed(target, n, lambda: drain_inline(target))
        if processed != n:
            raise SystemExit(f"run_pending processed {processed} events; expected {n}")
        check_all_done(target, WARM_UP + n)
        create(split)()  # A2's events (untimed)
    finally:
        creator.close()
    rows = [("A0", "records.create + commit (baseline)", "creations/s", a0),
            ("A1", "dispatch.run_pending: relay + InlineQueue + engine", "events/s", a1)]
    if split:
        dispatch.bind(target.flask_app)
        queue = CollectingQueue()

        def relay() -> None:
            while dispatch.relay_once(target.flask_app, queue).total:
                pass

        a2r, _ = timed(target, split, relay)
        if len(queue.jobs) != split:
            raise SystemExit(f"the relay handed {len(queue.jobs)} jobs; expected {split}")
        a2j, _ = timed(target, split, lambda: [function(arg) for function, arg in queue.jobs])
        check_all_done(target, WARM_UP + n + split)
        rows += [("A2r", f"relay_once alone (collecting queue), {split} more", "events/s", a2r),
                 ("A2j", "run_event alone for those events", "events/s", a2j)]
    return rows


def profile_in_process(target: Target, n: int, top: int) -> None:
    creator = Creator(target)
    try:
        for _ in range(n):
            creator.create()
    finally:
        creator.close()
    profile = cProfile.Profile()
    profile.enable()
    drain_inline(target)
    profile.disable()
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(order).print_stats(top)
        report = out.getvalue().split("\n\n", 1)[-1].rstrip()
        for prefix in sorted({str(Path(p)) + "/" for p in sys.path if p.endswith("-packages")} | {str(REPO) + "/"},
                             key=len, reverse=True):
            report = report.replace(prefix, "")
        print(f"\n--- cProfile of A1 run_pending over {n} events, top {top} by {order} ---")
        print(report)


# --- B: redis-server and formloom worker ---------------------------------------------------------

def free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port != 6379:
            return port


def wait_for(condition, timeout: float, what: str, explain=None, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            detail = f"\n{explain()}" if explain else ""
            raise SystemExit(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


class Process:
    """A subprocess of this run with its log file; stopped by its own pid (SIGTERM, then SIGKILL)."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict | None = None):
        self.name, self.argv, self.log_path = name, argv, log_path
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(argv, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)

    def log(self, tail: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise SystemExit(f"{self.name} exited ({self.process.returncode}):\n{self.log()}")

    def cpu_seconds(self) -> float | None:
        """User + system CPU time the process has used so far (Linux /proc; None elsewhere)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class RedisServer(Process):
    def __init__(self, directory: Path):
        from redis import Redis

        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed; B needs a throwaway one of its own.")
        directory.mkdir()
        self.port = free_port()
        self.binary = binary
        super().__init__("redis-server", [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                          "--appendonly", "no", "--daemonize", "no", "--dir", str(directory)],
                         directory / "redis.log")
        self.client = Redis(host="127.0.0.1", port=self.port, socket_timeout=2, socket_connect_timeout=2)

        def up() -> bool:
            self.check_alive()
            try:
                return bool(self.client.ping())
            except Exception:
                return False

        try:
            wait_for(up, 15, f"redis-server to answer on port {self.port}", self.log)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def version(self) -> str:
        return self.client.info("server")["redis_version"]

    def stop(self) -> None:
        self.client.close()
        super().stop()


def start_worker(target: Target, redis_url: str, directory: Path, poll_seconds: float | None) -> Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORMLOOM_")}
    env.update(FORMLOOM_DATABASE_URL=target.url, FORMLOOM_REDIS_URL=redis_url,
               FORMLOOM_INSTANCE_PATH=str(directory / "instance_worker"))
    if poll_seconds is not None:
        env["FORMLOOM_AUTOMATION_POLL_SECONDS"] = repr(poll_seconds)
    argv = [sys.executable, "-m", "formloom.platform.cli", "worker", "--redis-url", redis_url]
    return Process("formloom worker", argv, directory / "worker.log", env)


@dataclass
class Timing:
    record_id: int
    committed: datetime  # when commit() returned here
    event_created: datetime | None = None
    relayed: datetime | None = None  # Event.enqueued_at: the start of the relay pass that handed it
    run_started: datetime | None = None
    action_finished: datetime | None = None
    notified: datetime | None = None  # Notification.created_at (the run's clock when it started)


def wait_done(target: Target, worker: Process, expected: int, timeout: float) -> None:
    def done() -> bool:
        worker.check_alive()
        return tally(target).actions_succeeded >= expected

    wait_for(done, timeout, f"the worker to finish {expected} actions",
             lambda: f"{tally(target)}\n--- worker log ---\n{worker.log()}", interval=0.1)


def fill_timings(target: Target, timings: list[Timing]) -> None:
    from formloom.platform.models import ActionRun, Event, Notification, RuleRun

    by_record = {t.record_id: t for t in timings}
    e, r, a, n = Event.__table__, RuleRun.__table__, ActionRun.__table__, Notification.__table__
    query = (select(e.c.record_id, e.c.created_at, e.c.enqueued_at, r.c.started_at, a.c.finished_at, n.c.created_at)
             .join(r, r.c.event_id == e.c.id).join(a, a.c.run_id == r.c.id)
             .join(n, (n.c.record_id == e.c.record_id) & (n.c.user_id == target.rep_id))
             .where(e.c.record_id.in_(list(by_record)), a.c.status == "succeeded"))
    with target.engine.connect() as conn:
        rows = conn.execute(query).all()
    if len(rows) != len(timings):
        raise SystemExit(f"found {len(rows)} finished actions for {len(timings)} records")
    for record_id, *moments in rows:
        timing = by_record[record_id]
        (timing.event_created, timing.relayed, timing.run_started, timing.action_finished,
         timing.notified) = [m if m.tzinfo else m.replace(tzinfo=UTC) for m in moments]


@dataclass
class Phase:
    timings: list[Timing]
    seconds: float  # B1: creating the deals at the pace; B2: creating and committing them
    wall: float  # from the first creation to the last action's end seen here
    worker_cpu: float | None  # the worker's CPU seconds over ``wall``


def steady(target: Target, worker: Process, count: int, rate: float, timeout: float, before: int) -> Phase:
    """B1: ``count`` deals at ``rate`` per second, one commit each."""
    creator = Creator(target)
    timings = []
    cpu = worker.cpu_seconds()
    try:
        started = time.perf_counter()
        for i in range(count):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            record_id = creator.create()
            timings.append(Timing(record_id, datetime.now(UTC)))
        seconds = time.perf_counter() - started
    finally:
        creator.close()
    wait_done(target, worker, before + count, timeout)
    return finish_phase(target, worker, timings, seconds, started, cpu)


def burst(target: Target, worker: Process, count: int, timeout: float, before: int) -> Phase:
    """B2: ``count`` deals in one transaction."""
    creator = Creator(target)
    cpu = worker.cpu_seconds()
    try:
        started = time.perf_counter()
        ids = [creator.create(commit=False) for _ in range(count)]
        creator.session.commit()
        committed = datetime.now(UTC)
        seconds = time.perf_counter() - started
    finally:
        creator.close()
    timings = [Timing(record_id, committed) for record_id in ids]
    wait_done(target, worker, before + count, timeout)
    return finish_phase(target, worker, timings, seconds, started, cpu)


def finish_phase(target: Target, worker: Process, timings: list[Timing], seconds: float, started: float,
                 cpu: float | None) -> Phase:
    """Read the worker's CPU time and the phase's moments once its last action is done."""
    wall = time.perf_counter() - started
    cpu_after = worker.cpu_seconds()
    fill_timings(target, timings)
    return Phase(timings, seconds, wall, None if cpu is None or cpu_after is None else cpu_after - cpu)


# --- reporting ----------------------------------------------------------------------------------

def seconds_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def percentiles(values: list[float]) -> tuple[float, float, float]:
    """Median, 95th percentile (inclusive method) and maximum."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    return statistics.median(values), statistics.quantiles(values, n=100, method="inclusive")[94], max(values)


def print_latency(label: str, values: list[float]) -> None:
    median, p95, top = percentiles(values)
    print(f"  {label:<56} median {median * 1000:7.0f} ms   p95 {p95 * 1000:7.0f} ms   max {top * 1000:7.0f} ms")


def versions(backend: str) -> str:
    import sqlalchemy

    version = importlib.metadata.version
    out = (f"Python {platform.python_version()} ({platform.python_implementation()}), "
           f"SQLAlchemy {sqlalchemy.__version__}, Flask {version('flask')}, rq {version('rq')}, "
           f"redis-py {version('redis')}")
    if backend == "postgresql":
        out += f", psycopg {version('psycopg')}"
    return out


def report_in_process(rows: list[tuple[str, str, str, Timed]]) -> None:
    print(f"A. in-process (after {WARM_UP} warm-up deals)")
    for name, what, unit, t in rows:
        print(f"  {name:<4} {what:<52} {t.count:5d} {t.seconds:7.2f} s {t.count / t.seconds:7,.0f} {unit:<12}"
              f"{t.seconds / t.count * 1000:6.2f} ms, {t.statements / t.count:4.1f} statements, "
              f"{t.commits / t.count:3.1f} commits each")
    by_name = {name: t for name, _what, _unit, t in rows}
    a0, a1 = by_name["A0"], by_name["A1"]
    print(f"  A1/A0: processing an event takes {a1.seconds / a1.count / (a0.seconds / a0.count):.2f}x the time of "
          f"creating its record (events/s = {a1.count / a1.seconds / (a0.count / a0.seconds):.2f}x creations/s)")
    if "A2r" in by_name:
        relay, jobs = by_name["A2r"], by_name["A2j"]
        each = (relay.seconds + jobs.seconds) / relay.count
        print(f"  A2: the relay is {relay.seconds / (relay.seconds + jobs.seconds):.0%} of relay + jobs "
              f"({each * 1000:.2f} ms per event, A1 {a1.seconds / a1.count * 1000:.2f} ms)")


def report_worker(b1: Phase, rate: float, b2: Phase, poll: float) -> None:
    m = len(b1.timings)
    total = [seconds_between(t.committed, t.action_finished) for t in b1.timings]
    print(f"B1. steady: {m} deals at {rate:g}/s requested, {m / b1.seconds:.1f}/s achieved (one commit each)")
    print_latency("commit -> action finished (ActionRun.finished_at)", total)
    print_latency("Event.created_at (whole seconds) -> action finished",
                  [seconds_between(t.event_created, t.action_finished) for t in b1.timings])
    print_latency("commit -> Notification.created_at (the run's start)",
                  [seconds_between(t.committed, t.notified) for t in b1.timings])
    print("  where it goes:")
    print_latency("  commit -> start of the relay pass that handed it",
                  [seconds_between(t.committed, t.relayed) for t in b1.timings])
    print_latency("  that relay pass starts -> run starts in the worker",
                  [seconds_between(t.relayed, t.run_started) for t in b1.timings])
    print_latency("  run starts -> action finished",
                  [seconds_between(t.run_started, t.action_finished) for t in b1.timings])
    tenth = max(1, m // 10)
    slices = [total[i:i + tenth] for i in range(0, m, tenth)]
    print("  p95 by tenth of the run (ms): "
          + " ".join(f"{percentiles(part)[1] * 1000:.0f}" for part in slices))
    under = sum(1 for v in total if v < 1.0)
    print(f"  under 1 s: {under}/{m} ({under / m:.1%}); relay poll interval {poll:g} s")
    if b1.worker_cpu is not None:
        print(f"  worker CPU {b1.worker_cpu:.2f} s over {b1.wall:.1f} s ({b1.worker_cpu / b1.wall:.0%} of one core), "
              f"{b1.worker_cpu / m * 1000:.1f} ms per event")

    b = len(b2.timings)
    committed = b2.timings[0].committed
    finished = sorted(t.action_finished for t in b2.timings)
    started = sorted(t.run_started for t in b2.timings)
    span = seconds_between(committed, finished[-1])
    print(f"B2. burst: {b} deals created in one transaction ({b2.seconds:.2f} s to create and commit)")
    print(f"  commit -> last action finished {span:7.2f} s  {b / span:8,.0f} events/s")
    if b > 1:
        work = seconds_between(started[0], finished[-1])
        print(f"  first run started -> last action finished {work:7.2f} s  {(b - 1) / work:8,.0f} events/s "
              f"(first run started {seconds_between(committed, started[0]) * 1000:.0f} ms after the commit)")
    print_latency("commit -> action finished, per deal",
                  [seconds_between(t.committed, t.action_finished) for t in b2.timings])
    if b2.worker_cpu is not None:
        print(f"  worker CPU {b2.worker_cpu:.2f} s ({b2.worker_cpu / b * 1000:.1f} ms per event; "
              f"{b2.worker_cpu / span:.0%} of one core from the commit to the last action)")


# --- main ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="A: events processed in-process (default 2000)")
    parser.add_argument("--split-events", type=int, default=500,
                        help="A2: events for the relay/job split, 0 to skip (default 500)")
    parser.add_argument("--records", type=int, default=500, help="B: deals per worker measurement (default 500)")
    parser.add_argument("--rate", type=float, default=50.0, help="B1: deals created per second (default 50)")
    parser.add_argument("--poll-seconds", type=float, default=None,
                        help="B: FORMLOOM_AUTOMATION_POLL_SECONDS for the worker (default: unset, i.e. 0.5)")
    parser.add_argument("--timeout", type=float, default=120.0, help="B: seconds to wait for the worker (120)")
    parser.add_argument("--skip-in-process", action="store_true", help="run B only")
    parser.add_argument("--skip-worker", action="store_true", help="run A only")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL URL to run on (private schemas, dropped after); "
                             "default: SQLite in a temp dir")
    parser.add_argument("--profile", action="store_true",
                        help="also run A1 under cProfile on another fresh database and print hotspots")
    parser.add_argument("--profile-top", type=int, default=25, help="rows of the profile to print")
    args = parser.parse_args(argv)
    if args.events < 1 or args.records < 1 or args.split_events < 0 or args.rate <= 0:
        parser.error("--events and --records must be at least 1, --split-events 0 or more, --rate above 0")
    if args.poll_seconds is not None and args.poll_seconds <= 0:
        parser.error("--poll-seconds must be above 0")

    from formloom.platform import config

    poll = args.poll_seconds if args.poll_seconds is not None else config.DEFAULTS["AUTOMATION_POLL_SECONDS"]
    databases = Databases(args.database_url)
    redis_server = worker = None
    try:
        a_target = None if args.skip_in_process else databases.fresh("a")
        b_target = None if args.skip_worker else databases.fresh("b")
        some = a_target or b_target
        print(f"formloom automation benchmark: rule '{RULE_KEY}' (created -> notify {NOTIFIED}) on a "
              f"{len(deal_body()['fields'])}-field entity")
        print(f"database: {server_version(some.engine)} "
              f"({'temp-dir files' if databases.backend == 'sqlite' else 'private schemas, dropped after'})")
        print(versions(databases.backend))

        if b_target is not None:
            redis_server = RedisServer(databases.tmpdir / "redis")
            worker = start_worker(b_target, redis_server.url, databases.tmpdir, args.poll_seconds)
            print(f"redis-server {redis_server.version()} on port {redis_server.port} (own, no persistence); "
                  f"worker: {' '.join(Path(a).name if i == 0 else a for i, a in enumerate(worker.argv))}")
            print(f"relay poll interval (AUTOMATION_POLL_SECONDS): {poll:g} s"
                  + (" (default)" if args.poll_seconds is None else " (FORMLOOM_AUTOMATION_POLL_SECONDS)")
                  + f", relay batch 500, stale after {config.DEFAULTS['AUTOMATION_STALE_SECONDS']} s")
        print()

        if a_target is not None:
            report_in_process(measure_in_process(a_target, args.events, args.split_events))
            print()

        if b_target is not None:
            creator = Creator(b_target)  # warm-up: the worker is up, imported and has seen the app
            try:
                for _ in range(WARM_UP):
                    creator.create()
            finally:
                creator.close()
            wait_done(b_target, worker, WARM_UP, max(args.timeout, 60))
            b1 = steady(b_target, worker, args.records, args.rate, args.timeout, WARM_UP)
            time.sleep(max(1.0, 2 * poll))  # let the worker go idle
            b2 = burst(b_target, worker, args.records, args.timeout, WARM_UP + args.records)
            worker.check_alive()
            check_all_done(b_target, WARM_UP + 2 * args.records)
            report_worker(b1, args.rate, b2, poll)

        if args.profile:
            profile_in_process(databases.fresh("p"), args.events, args.profile_top)
    finally:
        if worker is not None:
            worker.stop()
        if redis_server is not None:
            redis_server.stop()
        databases.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

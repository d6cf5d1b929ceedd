"""Automation under faults: a worker killed mid-run, a flushed or stopped Redis, a job run twice.

What an operator would notice is counted in the database: every event ends ``done``, every rule
run succeeds, and each deal gets its effects exactly once, none lost, none doubled: a notification
(which also carries an idempotency key of its own) and a company record named after the deal
(which only the action's idempotency key protects).

Each test starts a throwaway ``redis-server`` of its own on a free port (these tests flush, stop
and kill it) and never touches a shared Redis. Without ``redis-server`` the tests are skipped,
except when ``CI`` is set: there they fail.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from sqlalchemy import func, select, update

from formloom.builder import definitions
from formloom.platform.auth import Cause
from formloom.platform.db import new_session
from formloom.platform.models import (
    ActionRun,
    Event,
    Notification,
    Record,
    RuleRun,
    RunStatus,
    WorkStatus,
)
from formloom.runtime import actions as actions_module
from formloom.runtime import automation, dispatch, records

REDIS_SERVER = shutil.which("redis-server")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


# --- helpers ---------------------------------------------------------------------------------

def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05,
             explain: Callable[[], str] | None = None):
    """Poll ``condition`` until it is truthy; fail (saying what was awaited) at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"Timed out after {timeout:.0f}s waiting for {what}." + (f"\n{explain()}" if explain else ""))
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A ``redis-server`` of this test's own: no persistence, so a restart starts it empty."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, timeout: float = 2) -> Redis:
        """A client that gives up at once when Redis is down (redis-py's default retries with
        backoff for seconds before it says so)."""
        return Redis(host="127.0.0.1", port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout,
                     retry=Retry(NoBackoff(), 0))

    def ping(self) -> bool:
        client = self.client(timeout=0.5)
        try:
            return bool(client.ping())
        except RedisError:
            return False
        finally:
            client.close()

    def start(self) -> None:
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115 - the server writes to it until it stops
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--dir", str(self.directory)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

        def up() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"redis-server on port {self.port} exited ({self.process.returncode}):\n"
                            + (self.directory / "redis.log").read_text(errors="replace")[-2000:])
            return self.ping()

        wait_for(up, 15, f"redis-server to answer PING on port {self.port}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path):
    """A running throwaway Redis on a free port; stopped (killed if need be) at the end."""
    if REDIS_SERVER is None:
        reason = "redis-server is not installed (apt-get install redis-server); the fault tests need their own"
        if in_ci():
            pytest.fail(f"{reason} (CI is set, so these tests must not be skipped)", pytrace=False)
        pytest.skip(reason)
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()


class Workers:
    """``formloom worker`` processes started by a test; whatever is left is killed at the end."""

    def __init__(self, tmp_path: Path, database_url: str):
        self.tmp_path, self.database_url = tmp_path, database_url
        self.started: list[tuple[subprocess.Popen, Path]] = []

    def start(self, redis_url: str, stale_seconds: int = 3) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FORMLOOM_")}
        env.update(FORMLOOM_DATABASE_URL=self.database_url, FORMLOOM_REDIS_URL=redis_url,
                   FORMLOOM_INSTANCE_PATH=str(self.tmp_path / "instance"),
                   FORMLOOM_AUTOMATION_STALE_SECONDS=str(stale_seconds))
        log_path = self.tmp_path / f"worker-{len(self.started) + 1}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "formloom.platform.cli", "worker"], env=env,
                                       stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True)
        self.started.append((process, log_path))
        return process

    def log(self, process: subprocess.Popen) -> str:
        path = next(p for proc, p in self.started if proc is process)
        return path.read_text(errors="replace")[-3000:]

    def alive(self, process: subprocess.Popen) -> bool:
        if process.poll() is not None:
            pytest.fail(f"The worker exited ({process.returncode}) before its work was done:\n{self.log(process)}")
        return True

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """SIGKILL the worker and its process group (no chance to clean up)."""
        for send in (lambda: os.killpg(process.pid, signal.SIGKILL), lambda: os.kill(process.pid, signal.SIGKILL)):
            with contextlib.suppress(ProcessLookupError):
                send()
        process.wait(timeout=10)

    @staticmethod
    def stop(process: subprocess.Popen) -> None:
        """A warm shutdown (SIGTERM), then SIGKILL if it does not end."""
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            Workers.kill(process)

    def stop_all(self) -> None:
        for process, _ in self.started:
            if process.poll() is None:
                self.kill(process)


@pytest.fixture
def workers(tmp_path, database_url):
    started = Workers(tmp_path, database_url)
    try:
        yield started
    finally:
        started.stop_all()


def publish_rule(db, admin, app, actions: list[dict], key: str = "welcome") -> None:
    definitions.save_and_publish(db, admin, app, {
        "formloom": 1, "kind": "rule", "key": key, "label": "Welcome new deals", "entity": "deal",
        "trigger": {"type": "created"}, "actions": actions})
    db.commit()


NOTIFY_REP = {"type": "notify", "to": {"users": ["rep"]}, "title": "New {title}"}
CREATE_COMPANY = {"type": "create", "entity": "company", "formulas": {"name": "name"}}  # named after the deal
WELCOME = [NOTIFY_REP, CREATE_COMPANY]


def create_deals(db, user, app, count: int, start: int = 0, **values) -> list[int]:
    """``count`` deals, committed in batches of 100 (each commit writes their events too)."""
    ids = []
    for i in range(count):
        record = records.create(db, user, Cause.for_user(user), app, "deal", {"name": f"Deal {start + i}", **values})
        ids.append(record.id)
        if i % 100 == 99:
            db.commit()
    db.commit()
    return ids


@dataclass
class Tally:
    events: int
    events_done: int
    events_pending: int
    events_enqueued: int
    runs: int
    runs_succeeded: int
    runs_retried: int
    actions_succeeded: int
    notifications: int
    per_record: dict[int, int]
    companies: dict[str, int]

    def __str__(self) -> str:
        return (f"events {self.events_done}/{self.events} done ({self.events_pending} pending, "
                f"{self.events_enqueued} enqueued); rule runs {self.runs_succeeded}/{self.runs} succeeded "
                f"({self.runs_retried} retried); actions succeeded {self.actions_succeeded}; "
                f"notifications {self.notifications}; companies {sum(self.companies.values())}")


def tally(app, app_id: int) -> Tally:
    """Counts read in a fresh transaction (what another process has committed by now)."""
    with new_session(app) as session:
        def count(model, *where) -> int:
            return session.scalar(select(func.count()).select_from(model).where(*where)) or 0

        by_status = dict(session.execute(select(Event.status, func.count()).where(Event.app_id == app_id)
                                         .group_by(Event.status)).all())
        per_record = dict(session.execute(select(Notification.record_id, func.count())
                                          .where(Notification.app_id == app_id)
                                          .group_by(Notification.record_id)).all())
        name = Record.data["name"].as_string()
        companies = dict(session.execute(select(name, func.count()).where(
            Record.app_id == app_id, Record.entity_key == "company").group_by(name)).all())
        return Tally(
            events=sum(by_status.values()), events_done=by_status.get(WorkStatus.DONE.value, 0),
            events_pending=by_status.get(WorkStatus.PENDING.value, 0),
            events_enqueued=by_status.get(WorkStatus.ENQUEUED.value, 0),
            runs=count(RuleRun, RuleRun.app_id == app_id),
            runs_succeeded=count(RuleRun, RuleRun.app_id == app_id, RuleRun.status == RunStatus.SUCCEEDED.value),
            runs_retried=count(RuleRun, RuleRun.app_id == app_id, RuleRun.attempts > 1),
            actions_succeeded=session.scalar(select(func.count()).select_from(ActionRun).join(RuleRun).where(
                RuleRun.app_id == app_id, ActionRun.status == RunStatus.SUCCEEDED.value)) or 0,
            notifications=count(Notification, Notification.app_id == app_id),
            per_record=per_record, companies=companies)


def assert_exactly_once(result: Tally, deal_ids: list[int]) -> None:
    """Every event done; per deal one succeeded run, one notification and one company: none lost,
    none doubled. (Deals are named "Deal <n>", n from 0, see :func:`create_deals`.)"""
    assert result.events_done == result.events, str(result)
    assert result.runs == result.runs_succeeded == len(deal_ids), str(result)
    assert result.actions_succeeded == 2 * len(deal_ids), str(result)
    assert result.notifications == len(deal_ids), str(result)
    doubled = {record: n for record, n in result.per_record.items() if n != 1}
    missing = set(deal_ids) - set(result.per_record)
    assert not doubled and not missing, f"notifications doubled: {doubled}; lost: {sorted(missing)[:20]}"
    assert set(result.per_record) == set(deal_ids)
    names = {f"Deal {n}" for n in range(len(deal_ids))}
    doubled = {name: n for name, n in result.companies.items() if n != 1}
    missing = names - set(result.companies)
    assert not doubled and not missing, f"companies doubled: {doubled}; lost: {sorted(missing)[:20]}"
    assert set(result.companies) == names


def drain(app, connection: Redis, rounds: int = 10) -> None:
    """Work the queue in this process (an RQ ``SimpleWorker`` in burst mode), relay what the jobs
    caused, and again, until nothing is left; RQ's signal handlers are put back afterwards."""
    from rq import SimpleWorker

    dispatch.bind(app)
    queue = dispatch.RedisQueue(connection)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for _ in range(rounds):
            SimpleWorker([dispatch.QUEUE_NAME], connection=connection).work(
                burst=True, with_scheduler=False, logging_level="WARNING")
            if not dispatch.relay_once(app, queue).total:
                return
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    pytest.fail(f"Work was still being relayed after {rounds} rounds.")


# --- 1. a worker killed with SIGKILL in the middle of 1,000 events ------------------------------------

def test_worker_killed_mid_burst_loses_and_doubles_nothing(app, db, admin, rep, pipes, redis_server, workers):
    publish_rule(db, admin, pipes, WELCOME)
    deal_ids = create_deals(db, admin, pipes, 1000)
    before = tally(app, pipes.id)
    assert before.events >= 1000 and before.events_pending == before.events, str(before)

    # The first worker runs with the default stale time (it never gets to sweep); it is killed
    # with SIGKILL at 70 %, mid-job or between jobs, its relay having queued the rest in Redis.
    first = workers.start(redis_server.url, stale_seconds=60)
    # Generous bounds: the suite runs in two processes on a small machine; these wait, they do not time.
    wait_for(lambda: workers.alive(first) and tally(app, pipes.id).runs_succeeded >= 700, 300,
             "the first worker to finish some rule runs", interval=0.02, explain=lambda: workers.log(first))
    workers.kill(first)
    at_kill = tally(app, pipes.id)
    assert 0 < at_kill.runs_succeeded < 1000, f"the worker was to be killed mid-burst: {at_kill}"
    assert at_kill.events_done < at_kill.events, str(at_kill)

    # The restarted worker takes the queued jobs, and its sweeper hands again, after 3 s, what
    # the killed one left enqueued but undone (the job it was running; rows marked but not queued).
    second = workers.start(redis_server.url, stale_seconds=3)

    def finished() -> bool:
        workers.alive(second)
        result = tally(app, pipes.id)
        return result.events_done == result.events and result.runs_succeeded >= 1000

    wait_for(finished, 300, "the second worker to finish every event",
             explain=lambda: f"{tally(app, pipes.id)}\n{workers.log(second)}")
    workers.stop(second)

    result = tally(app, pipes.id)
    assert_exactly_once(result, deal_ids)
    with new_session(app) as session:
        titles = set(session.scalars(select(Notification.title).where(Notification.app_id == pipes.id)))
        assert titles == {f"New Deal {i}" for i in range(1000)}
        assert session.scalar(select(func.count()).select_from(RuleRun).where(
            RuleRun.status != RunStatus.SUCCEEDED.value)) == 0


# --- 2. FLUSHALL while events are enqueued ------------------------------------------------------

def test_flushed_redis_loses_no_event(app, db, admin, rep, pipes, redis_server, workers):
    publish_rule(db, admin, pipes, WELCOME)
    deal_ids = create_deals(db, admin, pipes, 200)
    connection = redis_server.client()
    queue = dispatch.RedisQueue(connection)

    handed = dispatch.relay_once(app, queue)
    events = tally(app, pipes.id).events
    assert handed.events == events >= 200 and queue.queue.count == events
    assert tally(app, pipes.id).events_enqueued == events

    connection.flushall()  # every queued job is gone; the database still says "enqueued"
    assert queue.queue.count == 0
    assert dispatch.relay_once(app, queue).total == 0  # the relay alone does not see them: the sweeper must
    connection.close()

    worker = workers.start(redis_server.url, stale_seconds=2)

    def finished() -> bool:
        workers.alive(worker)
        result = tally(app, pipes.id)
        return result.events_done == result.events and result.runs_succeeded >= 200

    wait_for(finished, 180, "the worker to run every flushed event again",
             explain=lambda: f"{tally(app, pipes.id)}\n{workers.log(worker)}")
    workers.stop(worker)
    assert_exactly_once(tally(app, pipes.id), deal_ids)


# --- 3. Redis stopped in the middle of a burst ------------------------------------------------------

def test_records_save_while_redis_is_down_and_run_once_it_is_back(app, db, admin, rep, pipes, redis_server):
    publish_rule(db, admin, pipes, WELCOME)
    connection = redis_server.client()  # one client across the outage, as a worker's dispatcher has
    queue = dispatch.RedisQueue(connection)
    first = create_deals(db, admin, pipes, 20)
    handed = dispatch.relay_once(app, queue)
    assert handed.events == tally(app, pipes.id).events == queue.queue.count

    redis_server.stop()  # no persistence: the queued jobs die with it
    assert not redis_server.ping()
    second = create_deals(db, admin, pipes, 20, start=20)  # people keep working: records still save
    with new_session(app) as session:
        assert session.scalar(select(func.count()).select_from(Record).where(
            Record.app_id == pipes.id, Record.entity_key == "deal")) == 40

    counts = dispatch.relay_once(app, queue)  # must not raise
    assert counts.total == 0
    down = tally(app, pipes.id)
    assert down.events_done == 0 and down.events_pending == handed.events  # the new events wait in the database
    assert down.events_enqueued == handed.events  # the first ones were handed to the Redis that died
    with new_session(app) as session:  # the refused hand put them back to pending
        assert set(session.scalars(select(Event.status).where(Event.record_id.in_(second)))) \
            == {WorkStatus.PENDING.value}
    assert dispatch.sweep_once(app, queue, stale_after=0).total == 0  # the sweeper too: no raise, all pending
    assert tally(app, pipes.id).events_pending == down.events

    redis_server.start()  # the same port, empty
    again = dispatch.relay_once(app, queue)  # the same client reconnects
    assert again.events == down.events and queue.queue.count == down.events
    drain(app, connection)
    connection.close()
    assert_exactly_once(tally(app, pipes.id), first + second)


# --- 4. a job that runs twice has its effects once --------------------------------------------------

def _created_event(session, record_id: int) -> int:
    return session.scalar(select(Event.id).where(Event.record_id == record_id, Event.kind == "record.created"))


def _effects(session, record_id: int, name: str) -> tuple[int, int]:
    """(notifications about the deal, companies named after it)."""
    notes = session.scalar(select(func.count()).select_from(Notification).where(Notification.record_id == record_id))
    companies = session.scalar(select(func.count()).select_from(Record).where(
        Record.entity_key == "company", Record.data["name"].as_string() == name))
    return notes, companies


def _finished(run: RuleRun) -> list[tuple]:
    return [(a.id, a.status, a.finished_at) for a in run.actions]


class WorkerKilled(BaseException):
    """Stands for the process dying: nothing in the engine catches it, nothing after it runs."""


def _dies_mid_action(ctx, action, key):
    records.create(ctx.session, ctx.actor, Cause.for_user(ctx.actor), ctx.app, "company", {"name": "Half-written"})
    ctx.session.flush()
    raise WorkerKilled


def test_a_job_run_twice_has_its_effects_once(app, db, admin, rep, pipes, monkeypatch):
    publish_rule(db, admin, pipes, [*WELCOME, {"type": "move", "stage": "proposal"}])
    acme = records.create(db, admin, Cause.for_user(admin), pipes, "company", {"name": "Acme"})
    ready = records.create(db, admin, Cause.for_user(admin), pipes, "deal",
                           {"name": "Ready", "amount": 1000, "company": acme.id})
    blocked = records.create(db, admin, Cause.for_user(admin), pipes, "deal", {"name": "Blocked"})
    crashed = records.create(db, admin, Cause.for_user(admin), pipes, "deal",
                             {"name": "Crashed", "amount": 10, "company": acme.id})
    db.commit()
    ready_id, blocked_id, crashed_id, acme_id = ready.id, blocked.id, crashed.id, acme.id
    dispatch.bind(app)
    settings = dispatch.settings_of(app)
    session = new_session(app, write=True)
    try:
        # The same job delivered twice (a retry, a sweep): the second finds the event done.
        event_id = _created_event(session, ready_id)
        session.commit()  # on SQLite a write session's open transaction would block the job's
        assert dispatch.run_event(event_id) == 1
        assert dispatch.run_event(event_id) == 0
        session.expire_all()
        run = session.scalar(select(RuleRun).where(RuleRun.event_id == event_id))
        assert (run.status, run.attempts) == (RunStatus.SUCCEEDED.value, 1)
        assert [a.status for a in run.actions] == [RunStatus.SUCCEEDED.value] * 3
        assert _effects(session, ready_id, "Ready") == (1, 1)
        assert session.get(Record, ready_id).data["stage"] == "proposal"
        version, actions = session.get(Record, ready_id).version, _finished(run)

        # A worker killed after the last action but before the event was marked done: the event
        # is handed again and processed again; the run already succeeded, nothing repeats.
        session.execute(update(Event).where(Event.id == event_id).values(status=WorkStatus.PENDING.value))
        session.commit()
        automation.process_event(session, event_id, settings)
        session.expire_all()
        assert session.get(Event, event_id).status == WorkStatus.DONE.value
        assert (run.status, run.attempts) == (RunStatus.SUCCEEDED.value, 1)
        assert _finished(run) == actions
        assert _effects(session, ready_id, "Ready") == (1, 1) and session.get(Record, ready_id).version == version

        # Killed after the actions committed but before the run was closed: the run resumes and
        # finds each action done, so it skips them (their rows are untouched).
        session.execute(update(RuleRun).where(RuleRun.id == run.id).values(status=RunStatus.RUNNING.value,
                                                                            finished_at=None))
        session.execute(update(Event).where(Event.id == event_id).values(status=WorkStatus.ENQUEUED.value))
        session.commit()
        automation.process_event(session, event_id, settings)
        session.expire_all()
        assert (run.status, run.attempts) == (RunStatus.SUCCEEDED.value, 2)
        assert _finished(run) == actions
        assert _effects(session, ready_id, "Ready") == (1, 1) and session.get(Record, ready_id).version == version

        # A worker killed in the middle of a run, while its second action (the company) was being
        # written: the first action committed, the second did not. The job runs again: the run
        # resumes, skips the notification and does the rest, once.
        crashed_event = _created_event(session, crashed_id)
        session.commit()
        monkeypatch.setitem(actions_module.ACTIONS, "create", _dies_mid_action)
        with pytest.raises(WorkerKilled):
            dispatch.run_event(crashed_event)
        monkeypatch.undo()
        session.expire_all()
        interrupted = session.scalar(select(RuleRun).where(RuleRun.event_id == crashed_event))
        assert (interrupted.status, [a.position for a in interrupted.actions]) == (RunStatus.RUNNING.value, [0])
        assert _effects(session, crashed_id, "Crashed") == (1, 0)
        notified = _finished(interrupted)
        session.commit()
        assert dispatch.run_event(crashed_event) == 1
        session.expire_all()
        assert (interrupted.status, interrupted.attempts) == (RunStatus.SUCCEEDED.value, 2)
        assert [a.status for a in interrupted.actions] == [RunStatus.SUCCEEDED.value] * 3
        assert _finished(interrupted)[:1] == notified
        assert _effects(session, crashed_id, "Crashed") == (1, 1)
        assert session.get(Record, crashed_id).data["stage"] == "proposal"

        # A run whose last action failed (the stage gate wants an amount and a company) after the
        # first two succeeded. Retried once the deal is fixed, only the failed action runs.
        blocked_event = _created_event(session, blocked_id)
        session.commit()
        assert dispatch.run_event(blocked_event) == 1
        session.expire_all()
        failed = session.scalar(select(RuleRun).where(RuleRun.event_id == blocked_event))
        assert failed.status == RunStatus.FAILED.value and failed.reason.startswith("Action 3 (move) failed"), \
            failed.reason
        assert [a.status for a in failed.actions] == [RunStatus.SUCCEEDED.value] * 2 + [RunStatus.FAILED.value]
        done_before = _finished(failed)[:2]
        assert _effects(session, blocked_id, "Blocked") == (1, 1)
        session.commit()
        assert dispatch.run_event(blocked_event) == 0  # the event is done; the failure waits for a retry

        deal = session.get(Record, blocked_id)
        records.update(session, admin, Cause.for_user(admin), pipes, deal, {"amount": 500, "company": acme_id},
                       deal.version)
        session.commit()
        retried = automation.retry_run(session, failed.id, settings)
        session.expire_all()
        assert (retried.id, retried.status, retried.attempts) == (failed.id, RunStatus.SUCCEEDED.value, 2)
        assert [a.status for a in retried.actions] == [RunStatus.SUCCEEDED.value] * 3
        assert _finished(retried)[:2] == done_before  # skipped, not done again
        assert _effects(session, blocked_id, "Blocked") == (1, 1)
        assert session.get(Record, blocked_id).data["stage"] == "proposal"

        # The same event processed once more after the retry: still once.
        session.execute(update(Event).where(Event.id == blocked_event).values(status=WorkStatus.PENDING.value))
        session.commit()
        automation.process_event(session, blocked_event, settings)
        session.expire_all()
        assert _effects(session, blocked_id, "Blocked") == (1, 1) and retried.attempts == 2
        assert session.scalar(select(func.count()).select_from(Notification).where(
            Notification.app_id == pipes.id)) == 3
        companies = select(Record.data["name"].as_string()).where(Record.app_id == pipes.id,
                                                                   Record.entity_key == "company")
        assert sorted(session.scalars(companies)) == ["Acme", "Blocked", "Crashed", "Ready"]  # none half-written
    finally:
        session.close()


# --- 5. `formloom worker --burst` leaves nothing behind -------------------------------------------

def test_burst_worker_runs_everything_pending_before_it_exits(app, db, admin, rep, pipes, redis_server, tmp_path,
                                                               database_url):
    """``--burst`` is for scripts: when it exits, the outbox is empty, the events the rules' own
    actions caused (here: each company created) included, as :func:`dispatch.run_pending` does."""
    publish_rule(db, admin, pipes, WELCOME)
    deal_ids = create_deals(db, admin, pipes, 20)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORMLOOM_")}
    env.update(FORMLOOM_DATABASE_URL=database_url, FORMLOOM_REDIS_URL=redis_server.url,
               FORMLOOM_INSTANCE_PATH=str(tmp_path / "instance"))
    result = subprocess.run([sys.executable, "-m", "formloom.platform.cli", "worker", "--burst"], env=env,
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert_exactly_once(tally(app, pipes.id), deal_ids)


def test_the_sweeper_hands_again_a_job_a_killed_worker_took_off_the_queue(app, db, admin, rep, pipes, redis_server):
    """A worker killed while taking a job leaves it "queued" in RQ though no queue holds it."""
    publish_rule(db, admin, pipes, WELCOME)
    create_deals(db, admin, pipes, 3)
    connection = redis_server.client()
    queue = dispatch.RedisQueue(connection)
    handed = dispatch.relay_once(app, queue).events
    taken = connection.lpop(queue.queue.key)  # what the dying worker took, never to start it
    assert taken is not None and queue.queue.count == handed - 1
    later = datetime.now(UTC) + timedelta(seconds=120)
    again = dispatch.sweep_once(app, queue, now=later, stale_after=60)
    assert again.events == 1  # only the lost one; the two still waiting in the queue are left alone
    assert queue.queue.count == handed
    connection.close()

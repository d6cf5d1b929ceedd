"""Moving work from the database to the queue, and the processes that do it.

- :func:`relay_once` hands pending events and due scheduled jobs to the queue with deterministic
  job ids, then marks them enqueued; if the queue is down they stay pending and are tried again.
- :func:`sweep_once` hands again whatever was enqueued but not done within the stale time (a
  worker killed mid-job, a flushed Redis); the engine's idempotency keys make that safe.
- Queues: :class:`RedisQueue` (RQ, for ``formloom worker``) and :class:`InlineQueue` (runs the
  job at once, for the embedded default and tests). Both call the same job functions:
  :func:`run_event` and :func:`run_job`.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import or_, select, update

from formloom.platform.db import new_session, utcnow
from formloom.platform.models import App, Event, ScheduledJob, WorkStatus
from formloom.runtime import automation, events

log = logging.getLogger("formloom.automation")
QUEUE_NAME = "formloom"
_APP: Flask | None = None  # the app whose database the job functions use (set by bind)


def bind(app: Flask) -> None:
    """Tell the job functions which app (database, settings) they work for."""
    global _APP
    _APP = app


def _bound() -> Flask:
    if _APP is None:
        raise RuntimeError("formloom.runtime.dispatch.bind(app) must be called before jobs run.")
    return _APP


def settings_of(app: Flask) -> automation.Settings:
    return automation.Settings.from_config(app.config)


# --- the job functions (what RQ imports and runs) --------------------------------------------------

def run_event(event_id: int, now: str | None = None) -> int:
    app = _bound()
    with new_session(app, write=True) as session:
        moment = datetime.fromisoformat(now) if now else None
        return automation.process_event(session, event_id, settings_of(app), now=moment)


def run_job(job_id: int, now: str | None = None) -> int:
    app = _bound()
    with new_session(app, write=True) as session:
        moment = datetime.fromisoformat(now) if now else None
        return automation.process_job(session, job_id, settings_of(app), now=moment)


def run_import(batch_id: int, now: str | None = None) -> int:
    """Run an import batch (:func:`formloom.runtime.imports.run_queued`)."""
    from formloom.runtime import imports

    with new_session(_bound(), write=True) as session:
        return imports.run_queued(session, batch_id)


IMPORT_TIMEOUT = 6 * 3600  # seconds an RQ worker lets one import run (RQ's default is 180)


def enqueue_import(app: Flask, batch_id: int) -> None:
    """Hand an import batch to the queue: RQ when automation runs on Redis workers, else a thread here.

    The embedded mode runs it on a daemon thread of this process, through the same
    :class:`InlineQueue` as rule events, so a web request returns at once and the page polls.
    """
    bind(app)
    job_id = f"formloom-import-{batch_id}"
    if app.config.get("AUTOMATION") == "inline" or not app.config.get("REDIS_URL"):
        threading.Thread(target=InlineQueue().enqueue, args=(run_import, batch_id, job_id),
                         name=job_id, daemon=True).start()
        return
    from redis import Redis
    from rq import Queue

    Queue(QUEUE_NAME, connection=Redis.from_url(app.config["REDIS_URL"])).enqueue(
        run_import, batch_id, job_id=job_id, job_timeout=IMPORT_TIMEOUT)


# --- queues ----------------------------------------------------------------------------------

class InlineQueue:
    """Runs each job at once in the calling thread (the embedded mode, and tests)."""

    def __init__(self, now: datetime | None = None):
        self.now = now  # a controlled clock for scheduled jobs

    def alive(self, job_ids: list[str], since: datetime) -> list[bool]:
        return [False] * len(job_ids)  # an inline job that did not finish is gone

    def enqueue(self, function: Callable, arg: int, job_id: str) -> None:
        function(arg, self.now.isoformat() if self.now is not None else None)


class RedisQueue:
    """An RQ queue; job ids are deterministic, and a job already queued is not queued twice."""

    WAITING = frozenset({"deferred", "scheduled"})

    def __init__(self, connection, name: str = QUEUE_NAME):
        from rq import Queue

        self.queue = Queue(name, connection=connection)

    def alive(self, job_ids: list[str], since: datetime) -> list[bool]:
        """Whether the queue still holds each job: waiting in it, or running with a heartbeat since ``since``.

        A job whose worker was killed stays "started" in RQ until its own maintenance notices, or
        "queued" though no longer in the queue when the worker died taking it; both count as lost,
        as do failed, finished and missing jobs.
        """
        from rq.job import Job

        try:
            jobs = Job.fetch_many(job_ids, connection=self.queue.connection)
            waiting = {raw.decode() if isinstance(raw, bytes) else raw  # read the queue once, not once per job
                       for raw in self.queue.connection.lrange(self.queue.key, 0, -1)}
        except Exception:  # Redis unreachable: treat as lost, the relay then waits for Redis
            return [False] * len(job_ids)
        return [job is not None and self._held(job, since, waiting) for job in jobs]

    def _held(self, job, since: datetime, waiting: set[str]) -> bool:
        status = job.get_status(refresh=False)
        if status == "queued":  # and really in the queue: a worker killed while taking it leaves it "queued"
            return job.id in waiting
        if status == "started":
            beat = job.last_heartbeat
            return beat is not None and beat.replace(tzinfo=beat.tzinfo or UTC) >= since
        return status in self.WAITING

    def enqueue(self, function: Callable, arg: int, job_id: str) -> None:
        from rq import Retry

        self.queue.enqueue(function, arg, job_id=job_id, unique=True, retry=Retry(max=3, interval=[1, 5, 20]),
                           result_ttl=600, failure_ttl=86400)


# --- relay and sweeper ---------------------------------------------------------------------------

@dataclass
class Counts:
    events: int = 0
    jobs: int = 0

    @property
    def total(self) -> int:
        return self.events + self.jobs


def relay_once(app: Flask, queue, now: datetime | None = None, limit: int = 500) -> Counts:
    """Hand pending events and due jobs to ``queue``; returns how many were handed."""
    now = now or utcnow()
    counts = Counts()
    with new_session(app, write=True) as session:
        for app_row in session.scalars(select(App)):
            events.schedule_recurring(session, app_row, now)
        session.commit()
        event_ids = list(session.scalars(select(Event.id).where(Event.status == WorkStatus.PENDING.value)
                                         .order_by(Event.id).limit(limit)))
        job_ids = list(session.scalars(select(ScheduledJob.id).where(
            ScheduledJob.status == WorkStatus.PENDING.value, ScheduledJob.due_at <= now)
            .order_by(ScheduledJob.due_at, ScheduledJob.id).limit(limit)))
    counts.events = _hand(app, queue, Event, event_ids, run_event, "event", now)
    if counts.events == len(event_ids):
        counts.jobs = _hand(app, queue, ScheduledJob, job_ids, run_job, "job", now)
    return counts


def _hand(app: Flask, queue, model, ids: list[int], function: Callable, name: str, now: datetime) -> int:
    """Mark the rows enqueued (in one statement), then enqueue each; returns how many were handed.

    Only rows still pending are taken, so two dispatchers never hand the same row. If the queue
    refuses (Redis down), that row and the rest go back to pending and wait in the database.
    """
    if not ids:
        return 0
    with new_session(app, write=True) as session:
        claimed = sorted(session.execute(
            update(model).where(model.id.in_(ids), model.status == WorkStatus.PENDING.value)
            .values(status=WorkStatus.ENQUEUED.value, enqueued_at=now, attempts=model.attempts + 1)
            .returning(model.id, model.attempts)).all())
        session.commit()
    for handed, (row_id, attempt) in enumerate(claimed):
        try:
            queue.enqueue(function, row_id, f"formloom-{name}-{row_id}-{attempt}")
        except Exception as exc:
            log.warning("Could not enqueue %s %s (%s); it waits in the database and is tried again.", name, row_id, exc)
            with new_session(app, write=True) as session:
                session.execute(update(model).where(model.id.in_([r for r, _ in claimed[handed:]]),
                                                    model.status == WorkStatus.ENQUEUED.value)
                                .values(status=WorkStatus.PENDING.value, enqueued_at=None))
                session.commit()
            return handed
    return len(claimed)


def sweep_once(app: Flask, queue, now: datetime | None = None, stale_after: float | None = None) -> Counts:
    """Hand again what was enqueued but is not done after ``stale_after`` seconds.

    Work whose job the queue still holds (waiting behind a backlog, or running) is left alone;
    what the queue lost (a killed worker, a flushed Redis, a failed job) goes back to pending.
    """
    now = now or utcnow()
    cutoff = now - timedelta(seconds=stale_after if stale_after is not None
                             else app.config.get("AUTOMATION_STALE_SECONDS", 60))
    for model, name in ((Event, "event"), (ScheduledJob, "job")):
        # The queue is asked outside any transaction: on SQLite a write transaction held while
        # Redis answers would stop every job of this worker from writing.
        with new_session(app) as session:
            stale = session.execute(select(model.id, model.attempts).where(
                model.status == WorkStatus.ENQUEUED.value,
                or_(model.enqueued_at.is_(None), model.enqueued_at < cutoff))).all()
        if not stale:
            continue
        alive = queue.alive([f"formloom-{name}-{row_id}-{attempt}" for row_id, attempt in stale], cutoff)
        lost = [row_id for (row_id, _), live in zip(stale, alive) if not live]
        if lost:  # still enqueued (not taken and finished meanwhile): back to pending
            with new_session(app, write=True) as session:
                session.execute(update(model).where(model.id.in_(lost), model.status == WorkStatus.ENQUEUED.value)
                                .values(status=WorkStatus.PENDING.value))
                session.commit()
    return relay_once(app, queue, now)


def run_pending(app: Flask, now: datetime | None = None, rounds: int = 20) -> int:
    """Run everything pending and due at ``now`` in this thread (embedded mode and tests).

    Repeats until nothing is left, so events caused by rule actions run too. Returns how many
    events and jobs ran.
    """
    bind(app)
    queue = InlineQueue(now)
    total = 0
    for _ in range(rounds):
        counts = relay_once(app, queue, now)
        total += counts.total
        if not counts.total:
            break
    return total


# --- processes ---------------------------------------------------------------------------------

class Dispatcher(threading.Thread):
    """A daemon thread: relay (and sweep) every ``AUTOMATION_POLL_SECONDS``."""

    def __init__(self, app: Flask, queue, *, sweep: bool = True):
        super().__init__(name="formloom-dispatcher", daemon=True)
        self.app, self.queue, self.sweep = app, queue, sweep
        self.stopping = threading.Event()

    def run(self) -> None:
        bind(self.app)
        interval = float(self.app.config.get("AUTOMATION_POLL_SECONDS", 0.5))
        while not self.stopping.is_set():
            started = time.monotonic()
            handed = 0
            try:
                handed = (sweep_once if self.sweep else relay_once)(self.app, self.queue).total
            except Exception:
                log.exception("Dispatching automation work failed; trying again.")
            if not handed:  # busy: go again at once; idle: wait what is left of the interval
                self.stopping.wait(max(interval - (time.monotonic() - started), 0))

    def stop(self) -> None:
        self.stopping.set()


def start_embedded(app: Flask) -> Dispatcher | None:
    """The embedded default: rules run in a thread of this process, no Redis needed."""
    if app.config.get("AUTOMATION") != "inline":
        return None
    dispatcher = Dispatcher(app, InlineQueue())
    dispatcher.start()
    return dispatcher


def run_worker(app: Flask, redis_url: str, *, burst: bool = False) -> None:
    """``formloom worker``: the relay and sweeper in a thread, an RQ worker in the main thread.

    With ``burst`` it relays and works in turns in this thread until a relay finds nothing more
    (so work that rule actions create runs too), then exits.
    """
    from redis import Redis
    from rq import SimpleWorker

    connection = Redis.from_url(redis_url)
    bind(app)
    queue = RedisQueue(connection)
    if burst:
        while True:
            handed = sweep_once(app, queue).total
            SimpleWorker([QUEUE_NAME], connection=connection).work(burst=True, with_scheduler=False,
                                                                   logging_level="WARNING")
            if not handed and not queue.queue.count:
                return
    dispatcher = Dispatcher(app, queue)
    dispatcher.start()
    try:
        SimpleWorker([QUEUE_NAME], connection=connection).work(with_scheduler=False, logging_level="WARNING")
    finally:
        dispatcher.stop()

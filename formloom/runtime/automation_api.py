"""REST API for automation (``/api/v1``): run logs, retries, dry runs, queue health, notifications."""
from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy import select

from formloom.builder import definitions
from formloom.platform.api_common import BadRequest, int_arg, iso, json_body
from formloom.platform.auth import Action
from formloom.platform.db import get_engine, get_session
from formloom.platform.errors import DefinitionError, NotFound
from formloom.platform.models import App, Notification, RuleRun, WebhookDelivery
from formloom.platform.web_auth import login_required
from formloom.runtime import automation, catalog, dispatch, notifications
from formloom.runtime.fields import ID_LIMIT

bp = Blueprint("automation_api", __name__, url_prefix="/api/v1")


def run_json(run: RuleRun, with_actions: bool = True) -> dict:
    out = {"id": run.id, "rule": run.rule_key, "rule_version": run.rule_version, "trigger": run.trigger,
           "record_id": run.record_id, "event_id": run.event_id, "job_id": run.job_id, "depth": run.depth,
           "status": run.status, "matched": run.matched, "reason": run.reason, "attempts": run.attempts,
           "started_at": iso(run.started_at), "finished_at": iso(run.finished_at),
           "duration_ms": round((run.finished_at - run.started_at).total_seconds() * 1000, 1)
           if run.finished_at else None}
    if with_actions:
        out["actions"] = [{"position": a.position, "type": a.kind, "status": a.status, "result": a.result,
                           "error": a.error, "key": a.key, "started_at": iso(a.started_at),
                           "finished_at": iso(a.finished_at)} for a in run.actions]
    return out


def _admin_app(app_key: str) -> App:
    """Run logs, retries and dry runs are for those who manage the app's definitions."""
    return catalog.authorized_app(get_session(), g.user, app_key, Action.WRITE_DEFINITIONS)


def list_runs(db, app: App, rule: str | None, status: str | None, record: int | None, limit: int,
              before: int | None = None) -> list[RuleRun]:
    query = select(RuleRun).where(RuleRun.app_id == app.id)
    if rule:
        query = query.where(RuleRun.rule_key == rule)
    if status:
        query = query.where(RuleRun.status == status)
    if record:
        query = query.where(RuleRun.record_id == record)
    if before:
        query = query.where(RuleRun.id < before)
    return list(db.scalars(query.order_by(RuleRun.id.desc()).limit(limit)))


def get_run(db, app: App, run_id: int) -> RuleRun:
    run = db.get(RuleRun, run_id) if 1 <= run_id <= 2**31 - 1 else None
    if run is None or run.app_id != app.id:
        raise NotFound(f"App '{app.key}' has no rule run #{run_id}.")
    return run


def _id_arg(name: str) -> int | None:
    """An id parameter (a record, a run), None when absent; ids beyond the database's integers are refused."""
    return int_arg(name, 0, 1, ID_LIMIT) or None


def _text_arg(name: str) -> str | None:
    """A text parameter; NUL cannot be compared with stored text (PostgreSQL refuses it)."""
    value = request.args.get(name)
    if value is not None and "\x00" in value:
        raise BadRequest(f"Parameter '{name}' contains a NUL character (U+0000); remove it.")
    return value


@bp.get("/apps/<app_key>/automation/runs")
@login_required
def runs(app_key: str):
    """``?rule=&status=&record=&limit=&before=`` (newest first; ``before`` pages on)."""
    app = _admin_app(app_key)
    found = list_runs(get_session(), app, _text_arg("rule"), _text_arg("status"),
                      _id_arg("record"), int_arg("limit", 50, 1, 200), _id_arg("before"))
    return jsonify({"items": [run_json(r, with_actions=False) for r in found],
                    "next_before": found[-1].id if found else None})


@bp.get("/apps/<app_key>/automation/runs/<int:run_id>")
@login_required
def run_get(app_key: str, run_id: int):
    app = _admin_app(app_key)
    db = get_session()
    run = get_run(db, app, run_id)
    deliveries = db.scalars(select(WebhookDelivery).where(WebhookDelivery.action_key.in_(
        [f"{a.key}" for a in run.actions])).order_by(WebhookDelivery.id))
    return jsonify({**run_json(run), "deliveries": [
        {"attempt": d.attempt, "url": d.url, "status_code": d.status_code, "error": d.error, "at": iso(d.at),
         "duration_ms": d.duration_ms, "next_attempt_at": iso(d.next_attempt_at)} for d in deliveries]})


@bp.post("/apps/<app_key>/automation/runs/<int:run_id>/retry")
@login_required
def run_retry(app_key: str, run_id: int):
    app = _admin_app(app_key)
    db = get_session()
    get_run(db, app, run_id)
    run = automation.retry_run(db, run_id, dispatch.settings_of(current_app))
    return jsonify(run_json(run))


@bp.post("/apps/<app_key>/rules/<key>/dry-run")
@login_required
def rule_dry_run(app_key: str, key: str):
    """``{"days": N}`` replays the last N days of events; without it, the newest records.

    Uses the rule's draft when it has one (try before publishing), else its published version.
    """
    app = _admin_app(app_key)
    db = get_session()
    body = request.get_json(silent=True) or {}
    days = body.get("days") if isinstance(body, dict) else None
    if days is not None and (not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 365):
        raise BadRequest("'days' must be a whole number of days from 1 to 365.")
    definition = definitions.get(db, app, "rule", key)
    rule_body = definitions.current_body(db, definition)
    problems = definitions.check(db, app, "rule", key, rule_body)
    if problems:
        raise DefinitionError(problems, f"The rule '{key}' has problems; fix them before a dry run.")
    db.commit()  # end this request's transaction: the dry run works in a connection of its own
    items = automation.dry_run(get_engine(current_app), app.id, rule_body, dispatch.settings_of(current_app),
                               days=days, limit=int_arg("limit", 100, 1, 500))
    return jsonify({"rule": key, "days": days, "items": [item.__dict__ for item in items],
                    "would_act": sum(1 for i in items if i.status == "succeeded")})


@bp.get("/automation/health")
@login_required
def health():
    db = get_session()
    app_key = request.args.get("app")
    app = _admin_app(app_key) if app_key else None
    if app is None and not g.user.is_admin:
        raise BadRequest("Name the app (?app=<key>); the whole installation's health is for admins.")
    out = automation.health(db, app_id=app.id if app else None)
    out["oldest_due_at"] = iso(out["oldest_due_at"])
    out["queue"] = queue_health()
    return jsonify(out)


def queue_health() -> dict:
    """RQ's side (waiting, started, failed jobs) when Redis is configured; the embedded queue otherwise."""
    url = current_app.config.get("REDIS_URL")
    if not url:
        return {"kind": "embedded"}
    try:
        from redis import Redis
        from rq import Queue

        queue = Queue(dispatch.QUEUE_NAME, connection=Redis.from_url(url, socket_timeout=2))
        return {"kind": "redis", "waiting": queue.count, "started": queue.started_job_registry.count,
                "failed": queue.failed_job_registry.count}
    except Exception as exc:
        return {"kind": "redis", "error": f"Redis is unreachable: {exc}"}


# --- notifications ---------------------------------------------------------------------------

def notification_json(note: Notification) -> dict:
    return {"id": note.id, "title": note.title, "body": note.body, "app_id": note.app_id,
            "entity": note.entity_key, "record_id": note.record_id, "created_at": iso(note.created_at),
            "read": note.read_at is not None, "snoozed_until": iso(note.snoozed_until),
            "email": note.email_status}


@bp.get("/notifications")
@login_required
def notifications_list():
    db = get_session()
    items = notifications.inbox(db, g.user, unread_only=request.args.get("unread") in ("1", "true"),
                                limit=int_arg("limit", 50, 1, 200))
    return jsonify({"items": [notification_json(n) for n in items],
                    "unread": notifications.unread_count(db, g.user)})


@bp.post("/notifications/<int:notification_id>/read")
@login_required
def notification_read(notification_id: int):
    db = get_session()
    notifications.mark_read(db, g.user, notification_id)
    db.commit()
    return jsonify({"unread": notifications.unread_count(db, g.user)})


@bp.post("/notifications/read-all")
@login_required
def notifications_read_all():
    db = get_session()
    changed = notifications.mark_read(db, g.user)
    db.commit()
    return jsonify({"marked": changed, "unread": 0})


@bp.post("/notifications/<int:notification_id>/snooze")
@login_required
def notification_snooze(notification_id: int):
    db = get_session()
    raw = json_body().get("until")
    try:
        until = datetime.fromisoformat(raw.replace("Z", "+00:00")) if isinstance(raw, str) else None
    except ValueError:
        until = None
    if until is None or until.tzinfo is None:
        raise BadRequest("'until' must be a moment with its time zone, like \"2026-12-01T09:00:00+08:00\".")
    note = notifications.snooze(db, g.user, notification_id, until)
    db.commit()
    return jsonify(notification_json(note))

"""Pages for automation: the notification inbox, and for admins the run log, retries, dry runs and
the queue's health."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from sqlalchemy import func, select

from formloom.builder import definitions
from formloom.platform.auth import Action
from formloom.platform.db import get_engine, get_session, utcnow
from formloom.platform.errors import FormloomError
from formloom.platform.models import App, Record, RuleRun, WebhookDelivery
from formloom.platform.web_auth import login_required
from formloom.runtime import automation, catalog, dispatch, notifications, rules
from formloom.runtime.automation_api import get_run, list_runs, queue_health
from formloom.runtime.i18n import translate

bp = Blueprint("automation", __name__, template_folder="templates")


def _admin_app(app_key: str) -> App:
    return catalog.authorized_app(get_session(), g.user, app_key, Action.WRITE_DEFINITIONS)


def _nav(app: App):
    from formloom.runtime.views import _nav as entity_nav

    return entity_nav(app)


# --- notifications ---------------------------------------------------------------------------

@bp.route("/notifications/", methods=["GET", "POST"])
@login_required
def inbox():
    db = get_session()
    if request.method == "POST":
        action, note_id = request.form.get("action"), request.form.get("id", type=int)
        if action == "read_all":
            notifications.mark_read(db, g.user)
        elif action == "read" and note_id:
            notifications.mark_read(db, g.user, note_id)
        elif action in ("snooze_hour", "snooze_tomorrow") and note_id:
            notifications.snooze(db, g.user, note_id, _snooze_until(db, notifications.mine(db, g.user, note_id),
                                                                     action))
        db.commit()
        return redirect(url_for("automation.inbox", unread=request.args.get("unread")))
    unread_only = request.args.get("unread") == "1"
    items = notifications.inbox(db, g.user, unread_only=unread_only)
    apps = {a.id: a for a in db.scalars(select(App).where(App.id.in_({n.app_id for n in items if n.app_id})))}
    return render_template("notifications.html", items=items, apps=apps, unread_only=unread_only,
                           unread=notifications.unread_count(db, g.user))


def _snooze_until(db, note, action: str) -> datetime:
    """In an hour, or tomorrow at 09:00 in the note's app's time zone."""
    now = utcnow()
    if action == "snooze_hour":
        return now + timedelta(hours=1)
    app = db.get(App, note.app_id) if note.app_id else None
    zone = rules.app_zone(db, app) if app else now.tzinfo
    return datetime.combine(now.astimezone(zone).date() + timedelta(days=1), time(9, 0), zone)


@bp.app_context_processor
def unread_badge() -> dict:
    user = g.get("user")
    return {"notifications_unread": notifications.unread_count(get_session(), user) if user else 0}


# --- the run log -----------------------------------------------------------------------------

@bp.route("/apps/<app_key>/automation/")
@login_required
def run_log(app_key: str):
    app = _admin_app(app_key)
    db = get_session()
    published = rules.rules_of(db, app)
    drafts = [d for d in definitions.list_definitions(db, app, "rule") if d.published_version is None]
    stats = {(rule, status): n for rule, status, n in db.execute(
        select(RuleRun.rule_key, RuleRun.status, func.count()).where(RuleRun.app_id == app.id)
        .group_by(RuleRun.rule_key, RuleRun.status))}
    status = request.args.get("status") or None
    rule = request.args.get("rule") or None
    found = list_runs(db, app, rule, status, request.args.get("record", type=int), 100,
                      request.args.get("before", type=int))
    titles = dict(db.execute(select(Record.id, Record.title).where(
        Record.id.in_({r.record_id for r in found if r.record_id}))).all())
    return render_template("automation.html", app=app, rules=published, drafts=drafts, stats=stats, runs=found,
                           titles=titles, status=status, rule=rule, nav=_nav(app),
                           health=automation.health(db, app_id=app.id))


@bp.route("/apps/<app_key>/automation/runs/<int:run_id>", methods=["GET", "POST"])
@login_required
def run_page(app_key: str, run_id: int):
    app = _admin_app(app_key)
    db = get_session()
    run = get_run(db, app, run_id)
    if request.method == "POST":
        try:
            run = automation.retry_run(db, run_id, dispatch.settings_of(current_app))
            flash(translate("retried"), "success")
        except FormloomError as exc:
            db.rollback()
            flash(exc.message, "error")
        return redirect(url_for("automation.run_page", app_key=app.key, run_id=run_id))
    deliveries = list(db.scalars(select(WebhookDelivery).where(WebhookDelivery.action_key.in_(
        [a.key for a in run.actions])).order_by(WebhookDelivery.id)))
    record = db.get(Record, run.record_id) if run.record_id else None
    return render_template("rule_run.html", app=app, run=run, record=record, deliveries=deliveries, nav=_nav(app))


@bp.route("/apps/<app_key>/automation/health")
@login_required
def health_page(app_key: str):
    app = _admin_app(app_key)
    return render_template("automation_health.html", app=app, health=automation.health(get_session(), app_id=app.id),
                           queue=queue_health(), nav=_nav(app))


@bp.route("/apps/<app_key>/automation/rules/<key>/dry-run", methods=["GET", "POST"])
@login_required
def dry_run_page(app_key: str, key: str):
    """Try a rule (its draft if it has one) on recent records or events; nothing is kept."""
    app = _admin_app(app_key)
    db = get_session()
    definition = definitions.get(db, app, "rule", key)
    body = definitions.current_body(db, definition)
    items, error, days = None, None, request.values.get("days", type=int)
    if request.method == "POST":
        problems = definitions.check(db, app, "rule", key, body)
        if problems:
            error = "; ".join(f"{p.path}: {p.message}" for p in problems)
        elif days is not None and not 1 <= days <= 365:
            error = translate("dry_run_days")
        else:
            db.commit()  # end this request's transaction: the dry run works in a connection of its own
            items = automation.dry_run(get_engine(current_app), app.id, body, dispatch.settings_of(current_app),
                                       days=days)
    return render_template("dry_run.html", app=app, rule=body, key=key, items=items, error=error, days=days,
                           draft=definition.draft is not None, nav=_nav(app)), 422 if error else 200


@bp.app_template_filter("action_result")
def action_result(result: dict | None) -> str:
    """An action's result in words: who was assigned and why, who was told, what was made."""
    if not result:
        return ""
    if "why" in result:
        return f"{result.get('name') or '—'}: {result['why']}" if result.get("assigned") else result["why"]
    parts = []
    for key, value in result.items():
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value) or "—"
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return "; ".join(parts)

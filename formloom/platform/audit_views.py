"""The admin audit, as a page (``/admin/audit``) and in the API (``/api/v1/audit``); global admins only."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, current_app, g, jsonify, render_template, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from formloom.platform import audit, auth
from formloom.platform.api_common import BadRequest, int_arg, iso
from formloom.platform.audit import AuditKind
from formloom.platform.auth import Action
from formloom.platform.db import get_session
from formloom.platform.models import App, AuditEvent, User
from formloom.platform.web_auth import login_required
from formloom.runtime.i18n import UI_TEXT, translate

bp = Blueprint("audit", __name__, url_prefix="/admin")
api = Blueprint("audit_api", __name__, url_prefix="/api/v1")
PAGE_SIZE = 100


@dataclass
class Page:
    """One page of entries, with the users and apps they name, and where the next page starts."""

    entries: list[AuditEvent]
    users: dict[int, User]
    apps: dict[int, App]
    next_before: int | None


def _query() -> tuple[str | None, App | None, int | None]:
    """The ``kind``, ``app`` and ``before`` filters of this request, checked."""
    kind = request.args.get("kind") or None
    if kind is not None and kind not in {k.value for k in AuditKind}:
        raise BadRequest(f"Parameter 'kind' must be one of {', '.join(k.value for k in AuditKind)}, got '{kind}'.")
    key = request.args.get("app") or None
    app = get_session().scalar(select(App).where(App.key == key)) if key else None
    if key and app is None:
        raise BadRequest(f"Parameter 'app' names no app: there is no app '{key}'.")
    before = int_arg("before", 0, 0, 2**63 - 1) or None
    return kind, app, before


def read_page(session: Session, kind: str | None, app: App | None, before: int | None, limit: int) -> Page:
    rows = audit.entries(session, kind=kind, app=app, before_id=before, limit=limit + 1)
    entries = rows[:limit]
    user_ids = {e.actor_id for e in entries if e.actor_id}
    app_ids = {e.app_id for e in entries if e.app_id}
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(user_ids)))} if user_ids else {}
    apps = {a.id: a for a in session.scalars(select(App).where(App.id.in_(app_ids)))} if app_ids else {}
    return Page(entries, users, apps, entries[-1].id if len(rows) > limit else None)


def _authorize() -> None:
    auth.authorize(get_session(), g.user, Action.VIEW_AUDIT)


@bp.get("/audit")
@login_required
def audit_page():
    _authorize()
    kind, app, before = _query()
    db = get_session()
    page = read_page(db, kind, app, before, PAGE_SIZE)
    return render_template("admin_audit.html", page=page, kind=kind, app_filter=app, kinds=list(AuditKind),
                           all_apps=list(db.scalars(select(App).order_by(App.key))), describe=describe,
                           kind_label=kind_label)


def kind_label(kind: str) -> str:
    """The kind's name in the user's language (kinds added later show as they are stored)."""
    key = f"audit_{kind}"
    return translate(key) if key in UI_TEXT else kind


def describe(detail: dict | None) -> str:
    """An entry's detail as one line for the page: ``key: value`` pairs, lists joined by commas."""
    def text(value) -> str:
        if isinstance(value, list):
            return ", ".join(text(v) for v in value)
        return "—" if value is None else str(value)

    return "; ".join(f"{key}: {text(value)}" for key, value in (detail or {}).items())


@api.get("/audit")
@login_required
def audit_api():
    _authorize()
    kind, app, before = _query()
    limit = int_arg("limit", 50, 1, int(current_app.config["API_PAGE_SIZE_MAX"]))
    page = read_page(get_session(), kind, app, before, limit)
    return jsonify({"entries": [entry_json(e, page) for e in page.entries], "next_before": page.next_before})


def entry_json(entry: AuditEvent, page: Page) -> dict:
    actor = page.users.get(entry.actor_id)
    app = page.apps.get(entry.app_id)
    return {"id": entry.id, "at": iso(entry.at), "kind": entry.kind,
            "actor": {"id": actor.id, "username": actor.username, "display_name": actor.display_name}
            if actor else None,
            "app": app.key if app else None, "subject": entry.subject, "ip": entry.ip, "detail": entry.detail}

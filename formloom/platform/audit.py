"""The admin audit: who logged in (or failed to), made tokens, published definitions, changed roles."""
from __future__ import annotations

from datetime import datetime
from enum import Enum

from flask import has_request_context, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from formloom.platform.db import utcnow
from formloom.platform.models import App, AuditEvent, User


class AuditKind(str, Enum):
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGIN_THROTTLED = "login_throttled"
    LOGOUT = "logout"
    TOKEN_CREATED = "token_created"
    TOKEN_REVOKED = "token_revoked"
    DEFINITION_PUBLISHED = "definition_published"
    DEFINITION_ROLLED_BACK = "definition_rolled_back"
    MEMBER_CHANGED = "member_changed"  # a user's role in an app given, changed or taken away
    TEAM_CHANGED = "team_changed"
    USER_CHANGED = "user_changed"


def client_ip() -> str | None:
    """The address of the client of the current request (None outside a request)."""
    return request.remote_addr if has_request_context() else None


def record(session: Session, kind: AuditKind, actor: User | None, *, app: App | None = None,
           subject: str | None = None, detail: dict | None = None, at: datetime | None = None) -> AuditEvent:
    """Add one audit entry to the session (the caller's transaction commits it with the change)."""
    event = AuditEvent(kind=kind.value, actor_id=actor.id if actor is not None else None,
                       app_id=app.id if app is not None else None, subject=(subject or None) and subject[:200],
                       ip=client_ip(), detail=detail, at=at or utcnow())
    session.add(event)
    return event


def entries(session: Session, *, kind: str | None = None, app: App | None = None, limit: int = 200,
            before_id: int | None = None) -> list[AuditEvent]:
    """The latest entries first, optionally of one kind or one app."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if kind:
        query = query.where(AuditEvent.kind == kind)
    if app is not None:
        query = query.where(AuditEvent.app_id == app.id)
    if before_id is not None:
        query = query.where(AuditEvent.id < before_id)
    return list(session.scalars(query))

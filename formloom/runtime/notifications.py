"""The in-app notification inbox: unread counts, mark read, snooze; e-mail copies when configured."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from formloom.platform.db import utcnow
from formloom.platform.errors import NotFound
from formloom.platform.models import Notification, User


def notify(session: Session, user_id: int, title: str, *, body: str | None = None, app_id: int | None = None,
           record_id: int | None = None, entity_key: str | None = None, key: str | None = None,
           at: datetime | None = None) -> Notification | None:
    """Put a notification in a user's inbox; a ``key`` seen before adds nothing (idempotent)."""
    if key is not None:
        existing = session.scalar(select(Notification).where(Notification.key == key))
        if existing is not None:
            return existing
    note = Notification(user_id=user_id, app_id=app_id, record_id=record_id, entity_key=entity_key, key=key,
                        title=title[:500], body=body, created_at=at or utcnow())
    session.add(note)
    session.flush()
    return note


def _visible(user: User, now: datetime):
    return [Notification.user_id == user.id,
            or_(Notification.snoozed_until.is_(None), Notification.snoozed_until <= now)]


def inbox(session: Session, user: User, *, unread_only: bool = False, limit: int = 100,
          now: datetime | None = None) -> list[Notification]:
    """The user's notifications, newest first (snoozed ones come back when their time is up)."""
    query = select(Notification).where(*_visible(user, now or utcnow()))
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    return list(session.scalars(query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)))


def unread_count(session: Session, user: User, now: datetime | None = None) -> int:
    return session.scalar(select(func.count()).select_from(Notification).where(
        *_visible(user, now or utcnow()), Notification.read_at.is_(None))) or 0


def mine(session: Session, user: User, notification_id: int) -> Notification:
    note = session.get(Notification, notification_id) if 1 <= notification_id <= 2**31 - 1 else None
    if note is None or note.user_id != user.id:
        raise NotFound(f"There is no notification #{notification_id}.")
    return note


def mark_read(session: Session, user: User, notification_id: int | None = None) -> int:
    """Mark one notification (or, without an id, all of them) read; returns how many changed."""
    query = update(Notification).where(Notification.user_id == user.id, Notification.read_at.is_(None))
    if notification_id is not None:
        mine(session, user, notification_id)
        query = query.where(Notification.id == notification_id)
    return session.execute(query.values(read_at=utcnow())).rowcount


def snooze(session: Session, user: User, notification_id: int, until: datetime) -> Notification:
    note = mine(session, user, notification_id)
    note.snoozed_until, note.read_at = until, None
    session.flush()
    return note

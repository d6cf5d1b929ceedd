"""Saved views: named lists of one entity (a filter, columns and a sort), shown as tabs on its list.

A view is a published ``view`` definition (``docs/views.md``). Its filter runs in SQL next to the
viewer's read scope, so a view never shows a record the viewer could not open; columns hidden
from the viewer's role are left out of the view for them, and a sort on a hidden field falls
back to the list's default order. ``roles`` limits who sees the view's tab (app admins see
every view, to check them).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import exists, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from formloom.platform.errors import NotFound
from formloom.platform.models import App, ApprovalRequest, ApprovalStatus, Record, User
from formloom.runtime import access, catalog
from formloom.runtime.access import RecordAction
from formloom.runtime.compiler import CompiledEntity


@dataclass(frozen=True)
class SavedView:
    key: str
    label: Any
    entity_key: str
    body: Mapping[str, Any]

    @property
    def roles(self) -> list[str] | None:
        return self.body.get("roles")

    def shown_to(self, rules: access.Policy) -> bool:
        return rules.superuser or self.roles is None or rules.role in self.roles

    def columns(self, entity: CompiledEntity) -> list[str]:
        """The view's columns that ``entity`` (as the viewer's role sees it) has, in the view's order."""
        return [key for key in self.body.get("columns") or [] if key in entity.by_key]

    def sort(self, rules: access.Policy) -> str | None:
        sort = self.body.get("sort")
        if sort is None or sort.lstrip("-") in rules.hidden(self.entity_key):
            return None
        return sort

    def where(self, session: Session, user: User, app: App, now: datetime | None = None) -> ColumnElement:
        """The view's filter as SQL, today and "me" being the viewer's (today in the app's time zone)."""
        from formloom.runtime.filters import filter_sql
        from formloom.runtime.rules import app_zone

        clause: ColumnElement = true()
        if self.body.get("filter"):
            now = now or datetime.now(UTC)
            entity = catalog.entity(session, app, self.entity_key)
            clause = filter_sql(self.body["filter"], entity.kinds, user_id=user.id,
                                dialect=session.get_bind().dialect.name,
                                today=now.astimezone(app_zone(session, app)).date(), now=now)
        if self.body.get("pending_approval"):
            clause = clause & pending_approval()
        return clause


def pending_approval() -> ColumnElement:
    """Records with an approval request waiting for a decision (the approval_requests table)."""
    return exists(select(ApprovalRequest.id).where(ApprovalRequest.record_id == Record.id,
                                                   ApprovalRequest.status == ApprovalStatus.PENDING.value))


def views_of(session: Session, user: User, app: App, entity_key: str | None = None) -> list[SavedView]:
    """The published views the user is shown (of one entity, or of every entity they may read)."""
    rules = access.policy(session, user, app)
    found = []
    for body in catalog.published_bodies(session, app, "view"):
        view = SavedView(body["key"], body["label"], body["entity"], body)
        if entity_key is not None and view.entity_key != entity_key:
            continue
        if view.shown_to(rules) and rules.allows(view.entity_key, RecordAction.READ):
            found.append(view)
    return found


def view_for(session: Session, user: User, app: App, entity_key: str, key: str) -> SavedView:
    """The view ``key`` of ``entity_key`` as the user is shown it; 404 for one they are not shown."""
    for view in views_of(session, user, app, entity_key):
        if view.key == key:
            return view
    known = ", ".join(v.key for v in views_of(session, user, app, entity_key)) or "none"
    raise NotFound(f"There is no view '{key}' of {entity_key} for you (views: {known}).")


def view_json(view: SavedView, entity: CompiledEntity) -> dict:
    return {"key": view.key, "label": view.label, "entity": view.entity_key, "columns": view.columns(entity),
            "sort": view.body.get("sort"), "filter": view.body.get("filter"),
            "pending_approval": bool(view.body.get("pending_approval"))}

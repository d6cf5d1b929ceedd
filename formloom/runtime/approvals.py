"""Approvals: a move into a stage that waits for the people a pipeline names to decide.

A request holds the move (from → to) and one task per approver per step. Modes: ``any`` (one
approval completes the step), ``all`` (every approver of the step must approve), and ordered
steps (each step its own approvers and mode). Approvers approve or reject with a comment, send
the request back to the requester, transfer their part, or add an approver. Each decision locks
the request row and bumps its version, so two approvers deciding at the same moment produce one
outcome; the other gets a clear conflict. Every request and decision is written to the record's
history; the granted move itself goes through :func:`formloom.runtime.records.update`, gate
included.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from formloom.platform.auth import Action, Cause, can
from formloom.platform.db import utcnow
from formloom.platform.errors import Conflict, Forbidden, FormloomError, NotFound
from formloom.platform.models import (
    App,
    AppMember,
    ApprovalRequest,
    ApprovalStatus,
    ApprovalTask,
    CauseKind,
    Record,
    TaskStatus,
    Team,
    TeamMember,
    User,
)
from formloom.runtime.fields import ID_LIMIT
from formloom.runtime.labels import text_of
from formloom.runtime.messages import tr
from formloom.runtime.pipelines import clean_comment


class Decision(str, Enum):
    APPROVE = "approve"
    REJECT = "reject"
    SEND_BACK = "send_back"
    TRANSFER = "transfer"
    ADD_APPROVER = "add_approver"


class NoApprovers(FormloomError):
    http_status = 422
    code = "no_approvers"


# --- who approves ----------------------------------------------------------------------------

def approver_ids(session: Session, app: App, record: Record, spec: Mapping[str, Any]) -> list[int]:
    """The active users an approver spec names, in a stable order (role, users, owner's manager)."""
    found: list[int] = []
    if "role" in spec:
        found += session.scalars(select(AppMember.user_id).join(User, User.id == AppMember.user_id)
                                 .where(AppMember.app_id == app.id, AppMember.role == spec["role"], User.is_active)
                                 .order_by(AppMember.user_id))
    if "users" in spec:
        found += session.scalars(select(User.id).where(User.username.in_(spec["users"]), User.is_active)
                                 .order_by(User.id))
    if spec.get("owner_manager") and record.owner_id is not None:
        found += managers_of(session, record.owner_id)
    # Only people who can work in the app can carry out the move they approve.
    able = set(session.scalars(select(User.id).outerjoin(AppMember, (AppMember.user_id == User.id)
                                                         & (AppMember.app_id == app.id))
                               .where(User.id.in_(found), (AppMember.app_id.is_not(None)) | (User.role == "admin"))))
    return [uid for uid in dict.fromkeys(found) if uid in able]


def managers_of(session: Session, user_id: int) -> list[int]:
    """The active managers of the teams ``user_id`` belongs to (not the user themself)."""
    return list(session.scalars(
        select(Team.manager_id).join(TeamMember, TeamMember.team_id == Team.id)
        .join(User, User.id == Team.manager_id)
        .where(TeamMember.user_id == user_id, Team.manager_id != user_id, User.is_active)
        .order_by(Team.manager_id).distinct()))


def _describe(spec: Mapping[str, Any]) -> str:
    parts = []
    if "role" in spec:
        parts.append(f"members with role '{spec['role']}'")
    if "users" in spec:
        parts.append("users " + ", ".join(spec["users"]))
    if spec.get("owner_manager"):
        parts.append("the record owner's team manager")
    return " or ".join(parts)


def _steps_of(approval: Mapping[str, Any]) -> list[dict]:
    if approval.get("steps"):
        return [{"label": s.get("label"), "approvers": s["approvers"], "mode": s.get("mode", "any")}
                for s in approval["steps"]]
    return [{"label": approval.get("label"), "approvers": approval.get("approvers") or {},
             "mode": approval.get("mode", "any")}]


# --- asking ----------------------------------------------------------------------------------

def request(session: Session, user: User, cause: Cause, app: App, pipeline, record: Record, from_stage: str | None,
            to_stage: str, approval: Mapping[str, Any], move, now: datetime, locale: str = "en") -> ApprovalRequest:
    """Open a request for moving ``record`` to ``to_stage``, with tasks for every step's approvers."""
    self_approval = approval.get("self_approval", True)
    steps = _steps_of(approval)
    req = ApprovalRequest(app_id=app.id, record_id=record.id, entity_key=record.entity_key,
                          pipeline_key=pipeline.key, pipeline_version=pipeline.version, from_stage=from_stage,
                          to_stage=to_stage, step=0, steps=[{"label": s["label"], "mode": s["mode"]} for s in steps],
                          self_approval=self_approval, requested_by=user.id, requested_at=now, updated_at=now,
                          comment=move.comment or None, checklist=list(move.checklist) or None)
    for number, step in enumerate(steps):
        people = [uid for uid in approver_ids(session, app, record, step["approvers"])
                  if self_approval or uid != user.id]
        if not people:
            where = f"step {number + 1} of " if len(steps) > 1 else ""
            raise NoApprovers(f"No one can approve {where}this move: {_describe(step['approvers'])} gives no active "
                              f"member of this app{'' if self_approval else ' other than you'}. Ask an admin to "
                              f"assign approvers.")
        req.tasks.extend(ApprovalTask(step=number, user_id=uid) for uid in people)
    session.add(req)
    session.flush()
    _log(session, record, cause, {
        "event": "requested", "request": req.id, "from": from_stage, "to": to_stage, "comment": req.comment}, now)
    return req


def _log(session: Session, record: Record, cause: Cause, detail: dict, at: datetime) -> None:
    from formloom.runtime.records import log_event

    log_event(session, record, cause, {k: v for k, v in detail.items() if v is not None}, at)


# --- reading ---------------------------------------------------------------------------------

def get_request(session: Session, user: User, request_id: int) -> ApprovalRequest:
    """A request its reader may see: the requester, its approvers, or whoever may read the app."""
    req = session.get(ApprovalRequest, request_id) if 1 <= request_id <= ID_LIMIT else None
    if req is None or not _may_see(session, user, req):
        raise NotFound(f"There is no approval request #{request_id}.")
    return req


def _may_see(session: Session, user: User, req: ApprovalRequest) -> bool:
    """The requester, its approvers, and those who may read the record it is about."""
    if user.id == req.requested_by or any(t.user_id == user.id for t in req.tasks):
        return True
    app = session.get(App, req.app_id)
    if not can(session, user, Action.READ_RECORDS, app):
        return False
    from formloom.runtime import access

    record = session.get(Record, req.record_id)
    return record is not None and access.policy(session, user, app).permits(session, record)


def current_tasks(req: ApprovalRequest) -> list[ApprovalTask]:
    return [t for t in req.tasks if t.step == req.step]


def my_task(req: ApprovalRequest, user: User) -> ApprovalTask | None:
    """The user's open task in the request's current step, if the request waits for them."""
    if req.status != ApprovalStatus.PENDING.value:
        return None
    return next((t for t in current_tasks(req) if t.user_id == user.id and t.status == TaskStatus.PENDING.value),
                None)


def waiting_for(session: Session, user: User, limit: int = 200) -> list[ApprovalRequest]:
    """Pending requests whose current step waits for ``user``, oldest first."""
    return list(session.scalars(
        select(ApprovalRequest).join(ApprovalTask, ApprovalTask.request_id == ApprovalRequest.id)
        .where(ApprovalTask.user_id == user.id, ApprovalTask.status == TaskStatus.PENDING.value,
               ApprovalTask.step == ApprovalRequest.step, ApprovalRequest.status == ApprovalStatus.PENDING.value)
        .order_by(ApprovalRequest.requested_at, ApprovalRequest.id).distinct().limit(limit)))


def waiting_count(session: Session, user: User) -> int:
    return session.scalar(
        select(func.count(func.distinct(ApprovalRequest.id)))
        .join(ApprovalTask, ApprovalTask.request_id == ApprovalRequest.id)
        .where(ApprovalTask.user_id == user.id, ApprovalTask.status == TaskStatus.PENDING.value,
               ApprovalTask.step == ApprovalRequest.step, ApprovalRequest.status == ApprovalStatus.PENDING.value)) or 0


def requested_by(session: Session, user: User, limit: int = 200) -> list[ApprovalRequest]:
    """Requests ``user`` made: pending first, then the decided ones, newest first."""
    return list(session.scalars(
        select(ApprovalRequest).where(ApprovalRequest.requested_by == user.id)
        .order_by((ApprovalRequest.status == ApprovalStatus.PENDING.value).desc(),
                  ApprovalRequest.requested_at.desc(), ApprovalRequest.id.desc()).limit(limit)))


def for_record(session: Session, record: Record) -> list[ApprovalRequest]:
    return list(session.scalars(select(ApprovalRequest).where(ApprovalRequest.record_id == record.id)
                                .order_by(ApprovalRequest.id.desc())))


# --- deciding --------------------------------------------------------------------------------

def decide(session: Session, user: User, request_id: int, decision: Decision | str, *, comment: str | None = None,
           other_user_id: int | None = None, locale: str = "en", now: datetime | None = None) -> ApprovalRequest:
    """Record ``user``'s decision on a request; the last approval carries the move out.

    Locks the request (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writers are serial), so
    of two approvers deciding at once one wins and the other gets :class:`Conflict`.
    """
    decision = _decision(decision)
    now = now or utcnow()
    req = _locked(session, user, request_id)
    if req.status != ApprovalStatus.PENDING.value:
        raise Conflict(_already(session, req, locale))
    task = my_task(req, user)
    if task is None:
        raise Forbidden(tr(locale, "This request is not waiting for your decision."))
    if not req.self_approval and user.id == req.requested_by:
        raise Forbidden(tr(locale, "You asked for this approval; someone else must decide it."))
    record = session.get(Record, req.record_id)
    comment = clean_comment(comment, locale)
    if decision in (Decision.TRANSFER, Decision.ADD_APPROVER):
        _add_approver(session, req, task, user, decision, other_user_id, comment, now, locale)
    else:
        task.status = {Decision.APPROVE: TaskStatus.APPROVED, Decision.REJECT: TaskStatus.REJECTED,
                       Decision.SEND_BACK: TaskStatus.SENT_BACK}[decision].value
        task.comment, task.decided_at = comment, now
        if decision is Decision.APPROVE:
            _advance(req, now, user)
        else:
            _finish(req, ApprovalStatus.REJECTED if decision is Decision.REJECT else ApprovalStatus.SENT_BACK,
                    user, now)
    req.updated_at = now
    cause = Cause(CauseKind.APPROVAL, user.id, f"approval:{req.id}")
    _log(session, record, cause, {"event": decision.value, "request": req.id, "to": req.to_stage, "comment": comment,
                                  "user": other_user_id if decision in (Decision.TRANSFER, Decision.ADD_APPROVER)
                                  else None, "status": req.status}, now)
    _flush(session, req, locale)
    if req.status in (ApprovalStatus.APPROVED.value, ApprovalStatus.REJECTED.value, ApprovalStatus.SENT_BACK.value):
        from formloom.runtime import events
        from formloom.runtime.rules import EventKind

        events.emit(session, session.get(App, req.app_id), EventKind.APPROVAL_DECIDED, record,
                    {"decision": req.status, "request": req.id, "stage": req.to_stage, "from": req.from_stage,
                     "by": user.id}, user.id, now)
    if req.status == ApprovalStatus.APPROVED.value:
        _carry_out(session, user, cause, req, record, locale, now)
    return req


def withdraw(session: Session, user: User, request_id: int, *, locale: str = "en",
             now: datetime | None = None) -> ApprovalRequest:
    """The requester takes a pending request back; the record stays in its stage."""
    now = now or utcnow()
    req = _locked(session, user, request_id)
    if req.requested_by != user.id:
        raise Forbidden(tr(locale, "Only the person who asked for this approval can withdraw it."))
    if req.status != ApprovalStatus.PENDING.value:
        raise Conflict(_already(session, req, locale))
    _finish(req, ApprovalStatus.CANCELLED, user, now)
    req.updated_at = now
    _log(session, session.get(Record, req.record_id), Cause(CauseKind.USER, user.id),
         {"event": "withdrawn", "request": req.id, "to": req.to_stage}, now)
    _flush(session, req, locale)
    return req


def _locked(session: Session, user: User, request_id: int) -> ApprovalRequest:
    """The request row, locked for this transaction and read as last committed."""
    req = session.scalar(select(ApprovalRequest).where(ApprovalRequest.id == request_id).with_for_update()
                         .execution_options(populate_existing=True)) if 1 <= request_id <= ID_LIMIT else None
    if req is None or not _may_see(session, user, req):
        raise NotFound(f"There is no approval request #{request_id}.")
    session.expire(req, ["tasks"])
    return req


def _decision(value: Decision | str) -> Decision:
    try:
        return Decision(value)
    except ValueError:
        raise FormloomError(f"Unknown decision {value!r}; use one of: "
                            f"{', '.join(d.value for d in Decision)}.") from None


def _already(session: Session, req: ApprovalRequest, locale: str) -> str:
    who = session.get(User, req.decided_by) if req.decided_by else None
    status = tr(locale, {"approved": "approved", "rejected": "rejected", "sent_back": "sent back",
                         "cancelled": "withdrawn"}.get(req.status, req.status))
    return tr(locale, "This request was already {status} by {name}; nothing was changed.", status=status,
              name=who.display_name if who else "—")


def _add_approver(session: Session, req: ApprovalRequest, task: ApprovalTask, user: User, decision: Decision,
                  other_user_id: int | None, comment: str | None, now: datetime, locale: str) -> None:
    other = session.get(User, other_user_id) if isinstance(other_user_id, int) and 0 < other_user_id <= ID_LIMIT \
        else None
    app = session.get(App, req.app_id)
    if other is None or not other.is_active or not can(session, other, Action.READ_RECORDS, app):
        raise FormloomError(tr(locale, "Choose an active member of this app to pass the request to."))
    if not req.self_approval and other.id == req.requested_by:
        raise Forbidden(tr(locale, "The requester cannot approve their own request."))
    if any(t.user_id == other.id and t.status == TaskStatus.PENDING.value for t in current_tasks(req)):
        raise Conflict(tr(locale, "{name} is already an approver of this step.", name=other.display_name))
    if decision is Decision.TRANSFER:
        task.status, task.comment, task.decided_at = TaskStatus.TRANSFERRED.value, comment, now
    req.tasks.append(ApprovalTask(step=req.step, user_id=other.id, added_by=user.id))


def _step_done(req: ApprovalRequest) -> bool:
    tasks = [t for t in current_tasks(req) if t.status != TaskStatus.TRANSFERRED.value]
    if req.steps[req.step]["mode"] == "all":
        return all(t.status == TaskStatus.APPROVED.value for t in tasks)
    return any(t.status == TaskStatus.APPROVED.value for t in tasks)


def _advance(req: ApprovalRequest, now: datetime, user: User) -> None:
    if not _step_done(req):
        return
    _close_open_tasks(req, now)
    if req.step + 1 < len(req.steps):
        req.step += 1
    else:
        _finish(req, ApprovalStatus.APPROVED, user, now)


def _finish(req: ApprovalRequest, status: ApprovalStatus, user: User, now: datetime) -> None:
    req.status, req.decided_by, req.decided_at = status.value, user.id, now
    _close_open_tasks(req, now)


def _close_open_tasks(req: ApprovalRequest, now: datetime) -> None:
    for t in current_tasks(req):
        if t.status == TaskStatus.PENDING.value:
            t.status, t.decided_at = TaskStatus.CLOSED.value, now


def _flush(session: Session, req: ApprovalRequest, locale: str) -> None:
    try:
        session.flush()
    except (StaleDataError, OperationalError) as exc:
        session.rollback()
        raise Conflict(tr(locale, "Someone else decided this request at the same moment; reload it to see "
                                  "the outcome.")) from exc


def _carry_out(session: Session, user: User, cause: Cause, req: ApprovalRequest, record: Record, locale: str,
               now: datetime) -> None:
    """Move the record now that its approval is granted; its gate is checked again."""
    from formloom.runtime import records
    from formloom.runtime.pipelines import Move, pipeline_for
    from formloom.runtime.validation import Situation

    app = session.get(App, req.app_id)
    pipeline = pipeline_for(session, app, record.entity_key)
    if record.deleted_at is not None or pipeline is None:
        return
    records.update(session, user, cause, app, record, {pipeline.stage_field: req.to_stage}, record.version,
                   locale=locale, situation=Situation(user_id=user.id, now=now),
                   move=Move(tuple(req.checklist or ()), req.comment, approval=req))


# --- shown to people -------------------------------------------------------------------------

def request_json(session: Session, req: ApprovalRequest, viewer: User, locale: str = "en") -> dict:
    from formloom.platform.api_common import iso
    from formloom.runtime.pipelines import pipelines_of

    app = session.get(App, req.app_id)
    record = session.get(Record, req.record_id)
    pipeline = pipelines_of(session, app).get(req.pipeline_key)
    stages = pipeline.by_key if pipeline else {}

    def stage_label(key):
        return text_of(stages[key].label, locale) if key in stages else key

    names = dict(session.execute(select(User.id, User.display_name).where(
        User.id.in_({req.requested_by, req.decided_by or 0} | {t.user_id for t in req.tasks}))).all())
    return {
        "id": req.id, "app": app.key, "entity": req.entity_key, "record_id": req.record_id,
        "record_title": record.title if record else "", "pipeline": req.pipeline_key,
        "from_stage": req.from_stage, "to_stage": req.to_stage,
        "from_label": stage_label(req.from_stage) if req.from_stage else None, "to_label": stage_label(req.to_stage),
        "status": req.status, "step": req.step, "steps": [
            {"label": text_of(s.get("label"), locale) if s.get("label") else None, "mode": s["mode"]}
            for s in req.steps],
        "requested_by": {"id": req.requested_by, "name": names.get(req.requested_by)},
        "requested_at": iso(req.requested_at), "comment": req.comment, "checklist": req.checklist or [],
        "decided_by": {"id": req.decided_by, "name": names.get(req.decided_by)} if req.decided_by else None,
        "decided_at": iso(req.decided_at), "version": req.version,
        "tasks": [{"id": t.id, "step": t.step, "user": {"id": t.user_id, "name": names.get(t.user_id)},
                   "status": t.status, "comment": t.comment, "decided_at": iso(t.decided_at),
                   "added_by": t.added_by} for t in req.tasks],
        "waiting_for_me": my_task(req, viewer) is not None,
    }

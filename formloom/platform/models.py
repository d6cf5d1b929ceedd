"""The platform's tables. Definitions and records are stored here; ``runtime`` interprets them."""
from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import ClassVar

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from formloom.platform.db import Base, JsonDocument, utcnow


class Role(str, Enum):
    ADMIN = "admin"
    MEMBER = "member"


class CauseKind(str, Enum):
    USER = "user"
    API_TOKEN = "api_token"
    CLI = "cli"
    RULE = "rule"  # an automation rule's action; ``ref`` is "run:<id>"
    APPROVAL = "approval"  # a move carried out when its approval was granted
    DEFINITION = "definition"  # records moved by publishing a definition
    IMPORT = "import"


class AppRole(str, Enum):
    """A member's role in one app; approvals and (later) permissions name these."""

    ADMIN = "admin"
    MANAGER = "manager"
    REP = "rep"
    VIEWER = "viewer"


class ChangeAction(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    RESTORE = "restore"
    APPROVAL = "approval"  # an approval asked for or decided; ``detail`` says which


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(20), default=Role.MEMBER.value)
    locale: Mapped[str | None] = mapped_column(String(10))
    is_active: Mapped[bool] = mapped_column(default=True)
    away_until: Mapped[datetime | None]  # on leave: assignment skips them until then
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set per request when the user came with an API token that has scopes (not stored).
    token_scopes: ClassVar[frozenset[str] | None] = None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN.value


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    # What the token may do (see ``auth.TOKEN_SCOPES``); None: everything its user may.
    scopes: Mapped[list | None] = mapped_column(JsonDocument)

    user: Mapped[User] = relationship(lazy="joined")


class App(Base):
    """A named bundle of definitions (what a template installs) and its records."""

    __tablename__ = "apps"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[dict | str] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AppMember(Base):
    """A member user's access to one app (admins reach every app)."""

    __tablename__ = "app_members"

    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(64), default=AppRole.REP.value)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)


class Team(Base):
    """A sales team: its members and its manager (who approves for them and sees their board)."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    manager_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)


class Definition(Base):
    """One definition (kind + key within an app): its draft and the number of its latest version."""

    __tablename__ = "definitions"
    __table_args__ = (UniqueConstraint("app_id", "kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(64))
    draft: Mapped[dict | None] = mapped_column(JsonDocument)
    draft_updated_at: Mapped[datetime | None]
    draft_updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    app: Mapped[App] = relationship(lazy="joined")


class DefinitionVersion(Base):
    """An immutable published version of a definition."""

    __tablename__ = "definition_versions"
    __table_args__ = (UniqueConstraint("definition_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("definitions.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    body: Mapped[dict] = mapped_column(JsonDocument)
    checksum: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # What publishing did to live data: one decision per impact (see builder/impact.py); None: no impact.
    impact: Mapped[list | None] = mapped_column(JsonDocument)
    note: Mapped[str | None] = mapped_column(String(500))  # the publisher's note


class Record(Base):
    """One record of an entity: a JSON document plus the columns lists need at speed."""

    __tablename__ = "records"
    __table_args__ = (
        Index("ix_records_entity_live", "app_id", "entity_key", "deleted_at", "id"),
        Index("ix_records_entity_title", "app_id", "entity_key", "title"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    entity_key: Mapped[str] = mapped_column(String(64))
    entity_version: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict] = mapped_column(JsonDocument)
    title: Mapped[str] = mapped_column(String(500), default="")
    version: Mapped[int] = mapped_column(Integer)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    deleted_at: Mapped[datetime | None]

    __mapper_args__ = {"version_id_col": version}


class ChangeLog(Base):
    """One change of a record: what changed (field diffs), who, when and why."""

    __tablename__ = "change_log"
    __table_args__ = (Index("ix_change_log_record", "record_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    record_version: Mapped[int] = mapped_column(Integer)
    entity_version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(20))
    diff: Mapped[dict] = mapped_column(JsonDocument)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cause_kind: Mapped[str] = mapped_column(String(20))
    cause_ref: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    detail: Mapped[dict | None] = mapped_column(JsonDocument)  # approval entries: what was decided

    record: Mapped[Record] = relationship()


class SerialCounter(Base):
    """The last serial number handed out for one serial field of an entity, per period.

    ``period`` is the rendered date part of the pattern ("202611" for ``{YYYY}{MM}``, "" when the
    pattern has no date part); a new period starts again at 1.
    """

    __tablename__ = "serial_counters"

    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    entity_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    field_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    period: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


class StoredFile(Base):
    """An uploaded file (attachment, image or signature); the bytes live in the file storage."""

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_app_id", "app_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    storage_key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class StageVisit(Base):
    """One stay of a record in a pipeline stage: when it entered and left, and who moved it."""

    __tablename__ = "stage_visits"
    __table_args__ = (
        Index("ix_stage_visits_record", "record_id", "id"),
        Index("ix_stage_visits_pipeline", "app_id", "pipeline_key", "stage"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    pipeline_key: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(64))
    entered_at: Mapped[datetime]
    entered_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    left_at: Mapped[datetime | None]
    left_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    checklist: Mapped[list | None] = mapped_column(JsonDocument)  # the gate's items ticked on entry
    comment: Mapped[str | None] = mapped_column(Text)


class ApprovalStatus(str, Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SENT_BACK = "sent_back"
    CANCELLED = "cancelled"


class TaskStatus(str, Enum):
    """One approver's part in a request."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SENT_BACK = "sent_back"
    TRANSFERRED = "transferred"
    CLOSED = "closed"  # the request was decided without this approver's answer


class ApprovalRequest(Base):
    """A move of a record to another stage, waiting for approval; the record stays put meanwhile."""

    __tablename__ = "approval_requests"
    __table_args__ = (
        Index("ix_approval_requests_record", "record_id", "status"),
        Index("ix_approval_requests_requester", "requested_by", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    entity_key: Mapped[str] = mapped_column(String(64))
    pipeline_key: Mapped[str] = mapped_column(String(64))
    pipeline_version: Mapped[int] = mapped_column(Integer)
    from_stage: Mapped[str | None] = mapped_column(String(64))
    to_stage: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=ApprovalStatus.PENDING.value)
    step: Mapped[int] = mapped_column(Integer, default=0)
    steps: Mapped[list] = mapped_column(JsonDocument)  # [{"label": ..., "mode": "any"|"all"}]
    self_approval: Mapped[bool] = mapped_column(default=True)
    requested_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    comment: Mapped[str | None] = mapped_column(Text)
    checklist: Mapped[list | None] = mapped_column(JsonDocument)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)  # every decision bumps ``version``
    version: Mapped[int] = mapped_column(Integer)

    tasks: Mapped[list[ApprovalTask]] = relationship(order_by="ApprovalTask.id", back_populates="request",
                                                     cascade="all, delete-orphan")

    __mapper_args__ = {"version_id_col": version}


class ApprovalTask(Base):
    """One approver's part in one step of a request."""

    __tablename__ = "approval_tasks"
    __table_args__ = (Index("ix_approval_tasks_user", "user_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("approval_requests.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(20), default=TaskStatus.PENDING.value)
    comment: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None]
    added_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # transfers and added approvers

    request: Mapped[ApprovalRequest] = relationship(back_populates="tasks")


# --- automation ------------------------------------------------------------------------------

class WorkStatus(str, Enum):
    """Where a piece of pending work (an event or a scheduled job) stands."""

    PENDING = "pending"  # in the database, not handed to the queue yet
    ENQUEUED = "enqueued"  # handed to the queue; the sweeper hands it again if it is not done in time
    DONE = "done"
    CANCELLED = "cancelled"


class Event(Base):
    """Something that happened to a record, written in the same transaction as the change (outbox)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_status", "status", "id"),
        Index("ix_events_app_time", "app_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(40))
    entity_key: Mapped[str] = mapped_column(String(64))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    payload: Mapped[dict] = mapped_column(JsonDocument)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    depth: Mapped[int] = mapped_column(Integer, default=0)  # how many rule actions led to it
    status: Mapped[str] = mapped_column(String(20), default=WorkStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]


class ScheduledJob(Base):
    """Work due at a moment: a date-reached or inactivity check, a recurring rule, a retry.

    The schedule lives here, not only in Redis: the relay hands due jobs to the queue.
    ``key`` makes scheduling idempotent (one pending job per rule and record).
    """

    __tablename__ = "scheduled_jobs"
    __table_args__ = (Index("ix_scheduled_jobs_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    rule_key: Mapped[str | None] = mapped_column(String(64))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    due_at: Mapped[datetime]
    payload: Mapped[dict] = mapped_column(JsonDocument)
    status: Mapped[str] = mapped_column(String(20), default=WorkStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    enqueued_at: Mapped[datetime | None]
    done_at: Mapped[datetime | None]


class RunStatus(str, Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # the condition did not hold
    STOPPED = "stopped"  # loop protection


class RuleRun(Base):
    """One run of a rule for one trigger: the condition's result and each action's outcome."""

    __tablename__ = "rule_runs"
    __table_args__ = (
        Index("ix_rule_runs_rule", "app_id", "rule_key", "id"),
        Index("ix_rule_runs_status", "app_id", "status"),
        UniqueConstraint("key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(250))  # trigger + rule: a trigger runs a rule once
    rule_key: Mapped[str] = mapped_column(String(64))
    rule_version: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(40))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("scheduled_jobs.id", ondelete="SET NULL"))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id", ondelete="SET NULL"))
    depth: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.RUNNING.value)
    matched: Mapped[bool | None]
    reason: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=1)

    actions: Mapped[list[ActionRun]] = relationship(order_by="ActionRun.position", back_populates="run",
                                                    cascade="all, delete-orphan")


class ActionRun(Base):
    """One action of a run. ``key`` is its idempotency key: an action that ran is never run again."""

    __tablename__ = "action_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("rule_runs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30))
    key: Mapped[str] = mapped_column(String(250), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    result: Mapped[dict | None] = mapped_column(JsonDocument)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    run: Mapped[RuleRun] = relationship(back_populates="actions")


class Notification(Base):
    """A message in a user's in-app inbox (and, when configured, e-mailed)."""

    __tablename__ = "notifications"
    __table_args__ = (Index("ix_notifications_user", "user_id", "read_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    app_id: Mapped[int | None] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    entity_key: Mapped[str | None] = mapped_column(String(64))
    key: Mapped[str | None] = mapped_column(String(250), unique=True)  # idempotency
    title: Mapped[str] = mapped_column(String(500))
    body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]
    email_status: Mapped[str | None] = mapped_column(String(20))  # queued | sent | failed | held


class WebhookDelivery(Base):
    """One attempt to deliver a webhook: what was sent, what came back."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_action", "action_key", "attempt"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    action_key: Mapped[str] = mapped_column(String(250))
    url: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime | None]


class AssignmentCursor(Base):
    """Where a round-robin assignment left off (one row per rule action, locked while assigning)."""

    __tablename__ = "assignment_cursors"

    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_user_id: Mapped[int | None] = mapped_column(Integer)


class AuditEvent(Base):
    """An entry of the admin audit: logins, failed logins, tokens, definition publishes, roles."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"), Index("ix_audit_events_kind_at", "kind", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    app_id: Mapped[int | None] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    subject: Mapped[str | None] = mapped_column(String(200))  # e.g. the username tried, the definition
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict | None] = mapped_column(JsonDocument)


class IdempotencyKey(Base):
    """A POST's ``Idempotency-Key``: the first answer, given again to every replay."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key", name="uq_idempotency_keys_user_key"),
                      Index("ix_idempotency_keys_created_at", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer)  # None while the first request runs
    response: Mapped[dict | list | None] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ImportStatus(str, Enum):
    DRY_RUN = "dry_run"  # checked only: nothing was written
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


class ImportBatch(Base):
    """One import of a file into an entity: its options, progress, counts and per-row results.

    The change log names ``import:<id>`` as the cause of every change the batch made; a rollback
    finds them there.
    """

    __tablename__ = "import_batches"
    __table_args__ = (Index("ix_import_batches_app", "app_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    entity_key: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    file_name: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(20))
    options: Mapped[dict] = mapped_column(JsonDocument)  # mapping, match, automation, all_or_nothing, locale
    rows: Mapped[list | None] = mapped_column(JsonDocument)  # the rows to import, kept until the job ran
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict] = mapped_column(JsonDocument)  # create / update / skip / error
    results: Mapped[list | None] = mapped_column(JsonDocument)  # one entry per row, for the report
    message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    rolled_back_at: Mapped[datetime | None]
    rolled_back_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class ImportMapping(Base):
    """The column mapping last used to import into an entity, offered again next time."""

    __tablename__ = "import_mappings"
    __table_args__ = (UniqueConstraint("app_id", "entity_key", name="uq_import_mappings_entity"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"))
    entity_key: Mapped[str] = mapped_column(String(64))
    columns: Mapped[dict] = mapped_column(JsonDocument)  # column name -> field key
    match_key: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
class TemplateInstall(Base):
    """What a bundled template installed into an app: its name, version and every body it published.

    The bodies (``{"kind/key": body}``) are the common ancestor of a three-way merge when a newer
    version of the template is installed over an app its admins have changed since.
    """

    __tablename__ = "template_installs"

    id: Mapped[int] = mapped_column(primary_key=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), unique=True)
    template: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    bodies: Mapped[dict] = mapped_column(JsonDocument)
    installed_at: Mapped[datetime] = mapped_column(default=utcnow)
    upgraded_at: Mapped[datetime | None]

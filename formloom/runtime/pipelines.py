"""Stage pipelines: stages of one entity's stage field, their gates, transitions and approvals.

Every change of a stage goes through this module, whatever asked for it: a move on the board or
the record page, ``POST .../transition``, a PATCH or an import that sets the stage field, or an
approval being granted. :func:`move` is the service; :func:`check_stage_change` and
:func:`record_entry` are what :mod:`formloom.runtime.records` calls for creates and edits, so the
stage field cannot be changed around the gate.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from formloom.platform.auth import Action, Cause, authorize
from formloom.platform.errors import Conflict, FormloomError, NotFound
from formloom.platform.models import (
    App,
    ApprovalRequest,
    ApprovalStatus,
    Record,
    StageVisit,
    User,
)
from formloom.runtime import catalog, conditions
from formloom.runtime.compiler import CompiledEntity
from formloom.runtime.labels import text_of
from formloom.runtime.messages import Message, tr
from formloom.runtime.validation import Situation


class Outcome(str, Enum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class MoveStatus(str, Enum):
    MOVED = "moved"
    PENDING_APPROVAL = "pending_approval"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Stage:
    key: str
    label: str | dict
    index: int
    color: str | None
    probability: float | None
    outcome: Outcome
    gate: Mapping[str, Any]
    approval: Mapping[str, Any] | None


@dataclass(frozen=True)
class Pipeline:
    """A compiled, published pipeline definition."""

    key: str
    version: int
    body: Mapping[str, Any]
    entity_key: str
    stage_field: str
    stages: tuple[Stage, ...]
    transitions: str | tuple[Mapping[str, Any], ...]
    amount_field: str | None
    date_field: str | None
    card_fields: tuple[str, ...]

    @property
    def by_key(self) -> dict[str, Stage]:
        return {s.key: s for s in self.stages}

    def label(self, locale: str = "en") -> str:
        return text_of(self.body["label"], locale)

    def transition(self, from_stage: str | None, to_stage: str) -> Mapping[str, Any] | None:
        """The transition definition that allows ``from_stage`` → ``to_stage`` ({} for any-to-any).

        A record whose stage is not (or no longer) in the pipeline may move to any stage.
        """
        if self.transitions == "any" or from_stage not in self.by_key:
            return {}
        for transition in self.transitions:
            source = transition["from"]
            if transition["to"] == to_stage and (source == "*" or source == from_stage
                                                 or (isinstance(source, list) and from_stage in source)):
                return transition
        return None

    def next_stages(self, from_stage: str | None) -> list[Stage]:
        return [s for s in self.stages if s.key != from_stage and self.transition(from_stage, s.key) is not None]

    def approval_for(self, from_stage: str | None, to_stage: str) -> Mapping[str, Any] | None:
        """The approval a move needs (the transition's own wins over the target stage's)."""
        transition = self.transition(from_stage, to_stage) or {}
        return transition.get("approval") or self.by_key[to_stage].approval


def compile_pipeline(body: Mapping[str, Any], version: int) -> Pipeline:
    stages = tuple(
        Stage(key=s["key"], label=s["label"], index=i, color=s.get("color"), probability=s.get("probability"),
              outcome=Outcome(s.get("outcome", "open")), gate=s.get("gate") or {}, approval=s.get("approval"))
        for i, s in enumerate(body["stages"]))
    transitions = body.get("transitions", "any")
    return Pipeline(key=body["key"], version=version, body=body, entity_key=body["entity"],
                    stage_field=body["stage_field"], stages=stages,
                    transitions=transitions if transitions == "any" else tuple(transitions),
                    amount_field=body.get("amount_field"), date_field=body.get("date_field"),
                    card_fields=tuple(body.get("card_fields") or ()))


MEMO = "formloom.pipelines"


def pipelines_of(session: Session, app: App) -> dict[str, Pipeline]:
    """The app's published pipelines by key (remembered for the session, like entities)."""
    memo = session.info.setdefault(MEMO, {})
    if app.id not in memo:
        rows = catalog.published_rows(session, app, "pipeline")
        memo[app.id] = {row.body["key"]: compile_pipeline(row.body, row.version) for row in rows}
    return memo[app.id]


def pipeline_for(session: Session, app: App, entity_key: str) -> Pipeline | None:
    """The published pipeline of an entity, if it has one (an entity has at most one)."""
    return next((p for p in pipelines_of(session, app).values() if p.entity_key == entity_key), None)


def get_pipeline(session: Session, app: App, key: str) -> Pipeline:
    pipeline = pipelines_of(session, app).get(key)
    if pipeline is None:
        raise NotFound(f"App '{app.key}' has no published pipeline '{key}'.")
    return pipeline


# --- gates -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Missing:
    """One thing that keeps a record out of a stage."""

    kind: str  # transition | condition | field | checklist
    message: Message
    field: str | None = None
    item: str | None = None

    def json(self, locale: str) -> dict:
        out = {"kind": self.kind, "message": self.message.render(locale)}
        if self.field:
            out["field"] = self.field
        if self.item:
            out["item"] = self.item
        return out


class StageGateError(FormloomError):
    """A record cannot enter a stage; carries every missing item at once."""

    http_status = 422
    code = "stage_gate"

    def __init__(self, stage: str, message: str, missing: list[dict], fields: dict[str, list[str]]):
        super().__init__(message)
        self.stage = stage
        self.missing = missing
        self.fields = fields

    def field_messages(self) -> dict[str, list[str]]:
        return self.fields

    def extra(self) -> dict:
        return {"stage": self.stage, "missing": self.missing}


class ApprovalRequired(Conflict):
    """A plain edit tried to move a record into a stage that needs approval."""

    code = "approval_required"


def join_words(words: Sequence[str], locale: str) -> str:
    """``A, B and C`` (``A、B和C`` in Chinese)."""
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    if locale == "zh-CN":
        return "、".join(words[:-1]) + "和" + words[-1]
    return ", ".join(words[:-1]) + " and " + words[-1]


def gate_missing(pipeline: Pipeline, entity: CompiledEntity, from_stage: str | None, to_stage: str,
                 document: Mapping[str, Any], situation: Situation, *, checklist: Iterable[str] | None = (),
                 creating: bool = False) -> list[Missing]:
    """Everything that keeps ``document`` from entering ``to_stage`` (empty: it may enter).

    ``checklist=None`` skips the gate's checklist (a record created directly in a stage: the
    checklist is what the person moving a record confirms).
    """
    stage = pipeline.by_key[to_stage]
    missing: list[Missing] = []
    if not creating:
        transition = pipeline.transition(from_stage, to_stage)
        if transition is None:
            allowed = [s.label for s in pipeline.next_stages(from_stage)]
            message = Message("It cannot move from {from_stage} to {to_stage}; it can move to: {allowed}.",
                              from_stage=pipeline.by_key[from_stage].label, to_stage=stage.label,
                              allowed=_labels(allowed))
            return [Missing("transition", message)]
        if transition.get("condition") and not _holds(entity, transition["condition"], document, situation):
            message = transition.get("message")
            missing.append(Missing("transition", Message("{text}", text=message) if message else
                                   Message("The conditions for moving from {from_stage} to {to_stage} are not met.",
                                           from_stage=pipeline.by_key[from_stage].label, to_stage=stage.label)))
    for key in stage.gate.get("required", ()):
        spec = entity.by_key.get(key)
        if spec is not None and conditions.is_empty(document.get(key)):
            missing.append(Missing("field", Message("{field}", field=spec.definition["label"]), field=key))
    for rule in stage.gate.get("conditions", ()):
        if not _holds(entity, rule["condition"], document, situation):
            missing.append(Missing("condition", Message("{text}", text=rule["message"])))
    if checklist is not None:
        ticked = set(checklist)
        for item in stage.gate.get("checklist", ()):
            if item["key"] not in ticked:
                missing.append(Missing("checklist", Message("{text}", text=item["label"]), item=item["key"]))
    return missing


class _Labels(list):
    """Stage labels rendered as a joined list in the reader's language."""


def _labels(labels: list) -> Message:
    return Message("{items}", items=_Labels(labels))


def _holds(entity: CompiledEntity, condition: Any, document: Mapping, situation: Situation) -> bool:
    return conditions.evaluate(condition, document, entity.kinds, today=situation.today, now=situation.now,
                               user_id=situation.user_id)


def render(message: Message, locale: str) -> str:
    """A gate message in ``locale`` (lists of labels joined the way the language joins them)."""
    params = {}
    for name, value in message.params.items():
        if isinstance(value, Message):
            value = render(value, locale)
        elif isinstance(value, _Labels):
            value = join_words([text_of(v, locale) for v in value], locale) or "—"
        elif isinstance(value, dict):
            value = text_of(value, locale)
        params[name] = value
    return tr(locale, message.template, **params)


def gate_error(pipeline: Pipeline, to_stage: str, missing: list[Missing], locale: str) -> StageGateError:
    """One sentence per kind of missing item, e.g. "To enter Proposal, fill Amount and Customer."."""
    stage_label = text_of(pipeline.by_key[to_stage].label, locale)
    sentences = [render(m.message, locale) for m in missing if m.kind in ("transition", "condition")]
    fields = [render(m.message, locale) for m in missing if m.kind == "field"]
    items = [render(m.message, locale) for m in missing if m.kind == "checklist"]
    if fields:
        sentences.insert(0, tr(locale, "To enter {stage}, fill {fields}.", stage=stage_label,
                               fields=join_words(fields, locale)))
    if items:
        sentences.append(tr(locale, "To enter {stage}, confirm: {items}.", stage=stage_label,
                            items=join_words(items, locale)))
    by_field: dict[str, list[str]] = {}
    for m in missing:
        if m.kind == "field":
            by_field.setdefault(m.field, []).append(
                tr(locale, "Fill {field} to enter {stage}.", field=render(m.message, locale), stage=stage_label))
        else:
            by_field.setdefault(pipeline.stage_field, []).append(render(m.message, locale))
    return StageGateError(to_stage, " ".join(sentences), [{**m.json(locale), "message": render(m.message, locale)}
                                                           for m in missing], by_field)


# --- moving records --------------------------------------------------------------------------

@dataclass
class Move:
    """What the person moving a record added: the gate's ticked checklist items and a comment.

    ``approval`` is set when a granted approval carries the move out (its approval is then met).
    """

    checklist: tuple[str, ...] = ()
    comment: str | None = None
    approval: ApprovalRequest | None = None


@dataclass
class MoveResult:
    status: MoveStatus
    record: Record
    request: ApprovalRequest | None = None


COMMENT_MAX = 2000


def clean_comment(comment: str | None, locale: str = "en") -> str | None:
    """A comment as stored: trimmed, at most 2,000 characters, no NUL or broken characters."""
    from formloom.runtime.fields import CoercionError, refuse_nul

    comment = (comment or "").strip()
    try:
        refuse_nul(comment)
    except CoercionError as exc:
        raise FormloomError(f"The comment {exc}.") from None
    if len(comment) > COMMENT_MAX:
        raise FormloomError(tr(locale, "The comment is {length} characters long; keep it to {limit}.",
                               length=len(comment), limit=COMMENT_MAX))
    return comment or None


def pending_request(session: Session, record: Record) -> ApprovalRequest | None:
    return session.scalar(select(ApprovalRequest).where(
        ApprovalRequest.record_id == record.id, ApprovalRequest.status == ApprovalStatus.PENDING.value))


def move(session: Session, user: User, cause: Cause, app: App, record: Record, to_stage: str, *,
         expected_version: int | None = None, checklist: Iterable[str] = (), comment: str | None = None,
         values: Mapping[str, Any] | None = None, locale: str = "en",
         situation: Situation | None = None) -> MoveResult:
    """Move ``record`` to ``to_stage``: through its gate, or into an approval request.

    ``values`` (the gate's missing fields, filled in where the move is made) are saved first, in
    the same transaction, so the gate sees them.

    Raises :class:`StageGateError` listing everything missing; returns ``pending_approval``
    (with the request) when the move needs approval, the record staying in its stage.
    """
    from formloom.runtime import approvals, records

    authorize(session, user, Action.UPDATE_RECORD, app)
    pipeline = pipeline_for(session, app, record.entity_key)
    if pipeline is None:
        raise NotFound(f"Entity '{record.entity_key}' has no pipeline; its records have no stages to move through.")
    if to_stage not in pipeline.by_key:
        raise FormloomError(f"Pipeline '{pipeline.key}' has no stage '{to_stage}'; its stages are: "
                            f"{', '.join(pipeline.by_key)}.")
    if record.deleted_at is not None:
        raise NotFound(f"{record.entity_key.capitalize()} #{record.id} is deleted; restore it first.")
    if expected_version is not None and record.version != expected_version:
        conflict = records.version_conflict(session, record, expected_version)
        conflict.message = tr(locale, "This record was changed by someone else since you loaded it (you saw "
                                      "version {seen}, it is now at version {now}); reload and move it again.",
                              seen=expected_version, now=record.version)
        raise conflict
    situation = situation or Situation(user_id=user.id)
    situation.record_id = record.id
    comment = clean_comment(comment, locale)
    from_stage = record.data.get(pipeline.stage_field)
    if from_stage == to_stage:
        return MoveResult(MoveStatus.UNCHANGED, record)
    _refuse_while_pending(session, pipeline, record, locale)
    if values:
        records.update(session, user, cause, app, record, values, record.version, locale=locale,
                       situation=situation)
    entity = catalog.entity(session, app, record.entity_key)
    known = {item["key"] for item in pipeline.by_key[to_stage].gate.get("checklist", ())}
    ticked = tuple(key for key in dict.fromkeys(checklist) if key in known)
    missing = gate_missing(pipeline, entity, from_stage, to_stage, record.data, situation, checklist=ticked)
    if missing:
        raise gate_error(pipeline, to_stage, missing, locale)
    approval = needed_approval(pipeline, entity, from_stage, to_stage, record.data, situation)
    if approval is not None:
        request = approvals.request(session, user, cause, app, pipeline, record, from_stage, to_stage, approval,
                                    Move(ticked, comment), situation.now, locale)
        return MoveResult(MoveStatus.PENDING_APPROVAL, record, request)
    records.update(session, user, cause, app, record, {pipeline.stage_field: to_stage}, record.version,
                   locale=locale, situation=situation, move=Move(ticked, comment))
    return MoveResult(MoveStatus.MOVED, record)


def needed_approval(pipeline: Pipeline, entity: CompiledEntity, from_stage: str | None, to_stage: str,
                     document: Mapping, situation: Situation) -> Mapping[str, Any] | None:
    approval = pipeline.approval_for(from_stage, to_stage)
    if approval is None or ("when" in approval and not _holds(entity, approval["when"], document, situation)):
        return None
    return approval


def _refuse_while_pending(session: Session, pipeline: Pipeline, record: Record, locale: str) -> None:
    pending = pending_request(session, record)
    if pending is not None:
        target = text_of(pipeline.by_key[pending.to_stage].label, locale) if pending.to_stage in pipeline.by_key \
            else pending.to_stage
        raise Conflict(tr(locale, "This record is waiting for approval to move to {stage} (request #{id}); "
                                  "it stays in its stage until that is decided or withdrawn.",
                          stage=target, id=pending.id))


def check_stage_change(session: Session, app: App, entity: CompiledEntity, record: Record | None,
                       document: Mapping[str, Any], before: Mapping[str, Any], situation: Situation,
                       move: Move | None, locale: str) -> Pipeline | None:
    """Refuse a create or an edit whose stage value may not be entered; the pipeline if it moves.

    Called by :mod:`records` after validation, so the gate sees the values being saved.
    """
    pipeline = pipeline_for(session, app, entity.key)
    if pipeline is None:
        return None
    stage, previous = document.get(pipeline.stage_field), before.get(pipeline.stage_field)
    if stage == previous and record is not None:
        return None
    if stage not in pipeline.by_key:
        return pipeline  # cleared, or a value outside the pipeline: no gate to pass, the stay ends
    if record is not None and move is None:  # :func:`move` has looked already; a granted approval is the one
        _refuse_while_pending(session, pipeline, record, locale)
    creating = record is None
    missing = gate_missing(pipeline, entity, previous, stage, document, situation, creating=creating,
                           checklist=move.checklist if move is not None else None)
    if missing:
        raise gate_error(pipeline, stage, missing, locale)
    if move is None or move.approval is None:
        approval = needed_approval(pipeline, entity, previous, stage, document, situation)
        if approval is not None:
            stage_label = text_of(pipeline.by_key[stage].label, locale)
            if creating:
                raise ApprovalRequired(tr(locale, "A new record cannot start in {stage}: entering it needs "
                                                  "approval. Create it in an earlier stage, then move it.",
                                          stage=stage_label))
            raise ApprovalRequired(tr(locale, "Moving to {stage} needs approval: use Move (or POST .../transition) "
                                              "to ask for it.", stage=stage_label))
    return pipeline


def record_entry(session: Session, app: App, pipeline: Pipeline, record: Record, stage: str | None,
                 user_id: int | None, at: datetime, move: Move | None = None) -> None:
    """Close the record's current stage visit and open one for ``stage`` (None: leave only)."""
    from formloom.runtime import events
    from formloom.runtime.rules import EventKind

    current = session.scalar(select(StageVisit).where(StageVisit.record_id == record.id,
                                                      StageVisit.left_at.is_(None)))
    left = current.stage if current is not None else None
    if current is not None:
        current.left_at = max(at, current.entered_at)
        current.left_by = user_id
        events.emit(session, app, EventKind.STAGE_LEFT, record, {"stage": left, "to": stage, "pipeline": pipeline.key},
                    user_id, at)
    if stage is not None:
        session.add(StageVisit(app_id=app.id, record_id=record.id, pipeline_key=pipeline.key, stage=stage,
                               entered_at=at, entered_by=user_id,
                               checklist=sorted(move.checklist) if move and move.checklist else None,
                               comment=move.comment if move else None))
        events.emit(session, app, EventKind.STAGE_ENTERED, record, {"stage": stage, "from": left,
                                                                    "pipeline": pipeline.key}, user_id, at)
    session.flush()


# --- history and statistics ------------------------------------------------------------------

def visits(session: Session, record: Record) -> list[StageVisit]:
    return list(session.scalars(select(StageVisit).where(StageVisit.record_id == record.id)
                                .order_by(StageVisit.entered_at, StageVisit.id)))


def time_in_stages(rows: Iterable[StageVisit], now: datetime) -> dict[str, float]:
    """Seconds spent in each stage (all stays added up; the current stay counts until ``now``)."""
    out: dict[str, float] = {}
    for visit in rows:
        end = visit.left_at or now
        out[visit.stage] = out.get(visit.stage, 0.0) + max((end - visit.entered_at).total_seconds(), 0.0)
    return out


@dataclass
class StageStats:
    stage: Stage
    entered: int = 0  # records that ever entered the stage
    current: int = 0  # records in it now
    converted: int = 0  # of those that entered, how many later reached a further stage
    conversion: float | None = None  # converted / entered, for open stages followed by another
    median_seconds: float | None = None  # median length of the finished stays
    durations: list[float] = field(default_factory=list)


def pipeline_stats(session: Session, user: User, app: App, pipeline: Pipeline, now: datetime) -> list[StageStats]:
    """Per stage: entries, conversion to a further stage, and the median time in the stage.

    A record converts from an open stage when it later entered any stage further along the
    pipeline that is not lost (won counts); lost stages end the funnel.
    """
    from formloom.runtime import access

    authorize(session, user, Action.READ_RECORDS, app)
    rules = access.policy(session, user, app)
    rules.require(pipeline.entity_key, access.RecordAction.READ)
    rows = session.execute(
        select(StageVisit.record_id, StageVisit.stage, StageVisit.entered_at, StageVisit.left_at)
        .join(Record, Record.id == StageVisit.record_id)
        .where(StageVisit.app_id == app.id, StageVisit.pipeline_key == pipeline.key, Record.deleted_at.is_(None),
               rules.scope(pipeline.entity_key))
        .order_by(StageVisit.record_id, StageVisit.entered_at, StageVisit.id)).all()
    stats = {s.key: StageStats(s) for s in pipeline.stages}
    reached: dict[int, list[int]] = {}  # record -> stage indexes entered, in order
    for record_id, stage, entered_at, left_at in rows:
        if stage not in stats:
            continue
        reached.setdefault(record_id, []).append(pipeline.by_key[stage].index)
        if left_at is None:
            stats[stage].current += 1
        else:
            stats[stage].durations.append((left_at - entered_at).total_seconds())
    for indexes in reached.values():
        for position, index in enumerate(indexes):
            if position and index in indexes[:position]:
                continue  # re-entries count once
            stage = pipeline.stages[index]
            stats[stage.key].entered += 1
            later = indexes[position + 1:]
            if any(i > index and pipeline.stages[i].outcome is not Outcome.LOST for i in later):
                stats[stage.key].converted += 1
    for item in stats.values():
        further = any(s.index > item.stage.index and s.outcome is not Outcome.LOST for s in pipeline.stages)
        if item.stage.outcome is Outcome.OPEN and further and item.entered:
            item.conversion = item.converted / item.entered
        if item.durations:
            item.median_seconds = _median(item.durations)
    return list(stats.values())


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


# --- publishing a pipeline that drops stages ---------------------------------------------------

def stranded_records(session: Session, app: App, old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, int]:
    """Live records per stage that ``old`` has and ``new`` drops (only stages holding records)."""
    from sqlalchemy import func

    from formloom.platform.db import json_value

    dropped = {s["key"] for s in old["stages"]} - {s["key"] for s in new["stages"]}
    if not dropped or old["entity"] != new["entity"]:
        return {}
    stage = json_value(Record.data, old["stage_field"])
    rows = session.execute(select(stage, func.count()).where(
        Record.app_id == app.id, Record.entity_key == old["entity"], Record.deleted_at.is_(None),
        stage.in_(sorted(dropped))).group_by(stage))
    return {key: count for key, count in rows if count}


def move_stranded(session: Session, actor: User | None, app: App, pipeline: Pipeline,
                  moves: Mapping[str, str], now: datetime) -> int:
    """Move the records of dropped stages as the admin said; gates do not apply (an admin's call).

    Each record's history says the definition moved it.
    """
    from formloom.platform.db import json_value
    from formloom.platform.models import CauseKind
    from formloom.runtime.records import diff, write_change

    cause = Cause(CauseKind.DEFINITION, actor.id if actor else None, f"pipeline:{pipeline.key}@{pipeline.version}")
    stage = json_value(Record.data, pipeline.stage_field)
    moved = 0
    for record in session.scalars(select(Record).where(
            Record.app_id == app.id, Record.entity_key == pipeline.entity_key, Record.deleted_at.is_(None),
            stage.in_(sorted(moves)))):
        before = dict(record.data)
        record.data = {**before, pipeline.stage_field: moves[before[pipeline.stage_field]]}
        record.updated_at = now
        write_change(session, record, diff(before, record.data), cause, now)
        session.flush()
        record_entry(session, app, pipeline, record, record.data[pipeline.stage_field], cause.user_id, now)
        moved += 1
    return moved

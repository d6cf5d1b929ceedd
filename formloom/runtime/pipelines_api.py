"""REST API for pipelines (``/api/v1``): transitions, stage history, boards, statistics, approvals."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from formloom.platform.api_common import BadRequest, int_arg, iso, json_body
from formloom.platform.auth import Action
from formloom.platform.db import get_session, utcnow
from formloom.platform.models import Record, StageVisit
from formloom.platform.web_auth import login_required
from formloom.runtime import approvals, board, catalog, pipelines, records
from formloom.runtime.api import record_json
from formloom.runtime.fields import ID_LIMIT
from formloom.runtime.labels import text_of
from formloom.runtime.pipelines import MoveStatus, Pipeline

bp = Blueprint("pipelines_api", __name__, url_prefix="/api/v1")


def _locale() -> str:
    return request.args.get("locale", "en")


def pipeline_json(pipeline: Pipeline) -> dict:
    return {"key": pipeline.key, "version": pipeline.version, "label": pipeline.body["label"],
            "entity": pipeline.entity_key, "stage_field": pipeline.stage_field,
            "amount_field": pipeline.amount_field, "date_field": pipeline.date_field,
            "stages": [{"key": s.key, "label": s.label, "color": s.color, "probability": s.probability,
                        "outcome": s.outcome.value} for s in pipeline.stages]}


def visit_json(visit: StageVisit, now) -> dict:
    end = visit.left_at or now
    return {"stage": visit.stage, "entered_at": iso(visit.entered_at), "entered_by": visit.entered_by,
            "left_at": iso(visit.left_at), "left_by": visit.left_by,
            "seconds": max((end - visit.entered_at).total_seconds(), 0.0),
            "checklist": visit.checklist or [], "comment": visit.comment}


def _record(app_key: str, entity_key: str, record_id: int, action: Action) -> tuple:
    db = get_session()
    app = catalog.authorized_app(db, g.user, app_key, action)
    return db, app, records.get(db, g.user, app, entity_key, record_id)


@bp.post("/apps/<app_key>/records/<entity_key>/<int:record_id>/transition")
@login_required
def transition(app_key: str, entity_key: str, record_id: int):
    """Move a record: 200 moved (or unchanged), 202 waiting for approval, 422 with every missing item."""
    db, app, record = _record(app_key, entity_key, record_id, Action.UPDATE_RECORD)
    body = json_body()
    to = body.get("to")
    if not isinstance(to, str) or not to:
        raise BadRequest("'to' is required: send the key of the stage to move to, like {\"to\": \"proposal\"}.")
    version = body.get("version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)
                                or not 1 <= version <= ID_LIMIT):
        raise BadRequest("'version' must be the record version you saw, as a whole number.")
    checklist = body.get("checklist") or []
    if not isinstance(checklist, list) or not all(isinstance(i, str) for i in checklist):
        raise BadRequest("'checklist' must be a list of the gate's checklist item keys you confirm.")
    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise BadRequest("'comment' must be text.")
    result = pipelines.move(db, g.user, g.cause, app, record, to, expected_version=version, checklist=checklist,
                            comment=comment, locale=_locale())
    db.commit()
    out = {"status": result.status.value, "record": record_json(record)}
    if result.request is not None:
        out["approval"] = approvals.request_json(db, result.request, g.user, _locale())
    return jsonify(out), 202 if result.status is MoveStatus.PENDING_APPROVAL else 200


@bp.get("/apps/<app_key>/records/<entity_key>/<int:record_id>/stages")
@login_required
def stage_history(app_key: str, entity_key: str, record_id: int):
    """The record's stage visits, its time in each stage and where it may move next."""
    db, app, record = _record(app_key, entity_key, record_id, Action.READ_RECORDS)
    pipeline = pipelines.pipeline_for(db, app, entity_key)
    if pipeline is None:
        raise BadRequest(f"Entity '{entity_key}' has no pipeline.")
    now = utcnow()
    rows = pipelines.visits(db, record)
    pending = pipelines.pending_request(db, record)
    current = record.data.get(pipeline.stage_field)
    return jsonify({"pipeline": pipeline.key, "stage": current, "visits": [visit_json(v, now) for v in rows],
                    "time_in_stage": pipelines.time_in_stages(rows, now),
                    "next_stages": [s.key for s in pipeline.next_stages(current)],
                    "pending_approval": approvals.request_json(db, pending, g.user, _locale()) if pending else None})


@bp.get("/apps/<app_key>/pipelines")
@login_required
def pipelines_list(app_key: str):
    db = get_session()
    app = catalog.authorized_app(db, g.user, app_key, Action.READ_RECORDS)
    return jsonify({"items": [pipeline_json(p) for p in pipelines.pipelines_of(db, app).values()]})


@bp.get("/apps/<app_key>/pipelines/<key>/stats")
@login_required
def pipeline_stats(app_key: str, key: str):
    """Per stage: records that entered, are in it now, converted onward, and the median stay."""
    db = get_session()
    app = catalog.authorized_app(db, g.user, app_key, Action.READ_RECORDS)
    pipeline = pipelines.get_pipeline(db, app, key)
    stats = pipelines.pipeline_stats(db, g.user, app, pipeline, utcnow())
    return jsonify({"pipeline": key, "stages": [
        {"stage": s.stage.key, "label": text_of(s.stage.label, _locale()), "entered": s.entered,
         "current": s.current, "converted": s.converted, "conversion_rate": s.conversion,
         "median_seconds": s.median_seconds} for s in stats]})


@bp.get("/apps/<app_key>/pipelines/<key>/board")
@login_required
def pipeline_board(app_key: str, key: str):
    db = get_session()
    app = catalog.authorized_app(db, g.user, app_key, Action.READ_RECORDS)
    pipeline = pipelines.get_pipeline(db, app, key)
    loaded = board.load(db, g.user, app, pipeline, board.parse_filter(request.args),
                        per_column=int_arg("limit", board.CARDS_PER_COLUMN, 1, 200))
    return jsonify({"pipeline": pipeline_json(pipeline), "outside": loaded.outside, "columns": [
        {"stage": c.stage.key, "count": c.count, "total": c.total, "cards": [_card(r) for r in c.cards]}
        for c in loaded.columns]})


def _card(record: Record) -> dict:
    return {key: value for key, value in record_json(record).items()
            if key in ("id", "title", "version", "owner_id", "data", "updated_at")}


# --- approvals -------------------------------------------------------------------------------

@bp.get("/approvals")
@login_required
def approvals_list():
    """``?box=waiting`` (default: waiting for me) or ``?box=requested`` (requested by me)."""
    db = get_session()
    box = request.args.get("box", "waiting")
    if box not in ("waiting", "requested"):
        raise BadRequest("Parameter 'box' must be 'waiting' (waiting for me) or 'requested' (requested by me).")
    rows = approvals.waiting_for(db, g.user) if box == "waiting" else approvals.requested_by(db, g.user)
    return jsonify({"box": box, "items": [approvals.request_json(db, r, g.user, _locale()) for r in rows]})


@bp.get("/approvals/<int:request_id>")
@login_required
def approval_get(request_id: int):
    db = get_session()
    return jsonify(approvals.request_json(db, approvals.get_request(db, g.user, request_id), g.user, _locale()))


@bp.post("/approvals/<int:request_id>/decision")
@login_required
def approval_decide(request_id: int):
    """``{"decision": "approve" | "reject" | "send_back" | "transfer" | "add_approver", "comment", "user"}``."""
    db = get_session()
    body = json_body()
    decision = body.get("decision")
    if not isinstance(decision, str):
        raise BadRequest("'decision' is required: one of approve, reject, send_back, transfer, add_approver.")
    other = body.get("user")
    if other is not None and (not isinstance(other, int) or isinstance(other, bool)):
        raise BadRequest("'user' must be the id of the user to transfer to or add.")
    comment = body.get("comment")
    if comment is not None and not isinstance(comment, str):
        raise BadRequest("'comment' must be text.")
    req = approvals.decide(db, g.user, request_id, decision, comment=comment, other_user_id=other, locale=_locale())
    db.commit()
    return jsonify(approvals.request_json(db, req, g.user, _locale()))


@bp.post("/approvals/<int:request_id>/withdraw")
@login_required
def approval_withdraw(request_id: int):
    db = get_session()
    req = approvals.withdraw(db, g.user, request_id, locale=_locale())
    db.commit()
    return jsonify(approvals.request_json(db, req, g.user, _locale()))

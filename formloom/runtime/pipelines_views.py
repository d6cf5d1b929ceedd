"""The reps' pipeline pages: the kanban board, moving a record, stage statistics and approvals."""
from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from formloom.platform.auth import Action, visible_apps
from formloom.platform.db import get_session, utcnow
from formloom.platform.errors import Conflict, Forbidden, FormloomError, RecordValidationError
from formloom.platform.models import App, AppMember, ApprovalRequest, ApprovalStatus, Record, User
from formloom.platform.web_auth import login_required
from formloom.runtime import approvals, board, catalog, pipelines, records
from formloom.runtime.fields import FILE_TYPES
from formloom.runtime.forms import attr_name, bind_choices, compile_form, form_values, initial_data
from formloom.runtime.i18n import current_locale, translate
from formloom.runtime.labels import text_of
from formloom.runtime.pipelines import MoveStatus, Pipeline
from formloom.runtime.validation import Situation

bp = Blueprint("pipelines", __name__, template_folder="templates")


def _app(app_key: str, action: Action = Action.READ_RECORDS) -> App:
    return catalog.authorized_app(get_session(), g.user, app_key, action)


def _nav(app: App):
    from formloom.runtime.views import _nav as entity_nav

    return entity_nav(app)


def _lookup_url(app: App):
    from formloom.runtime.views import _lookup_url as lookup_url

    return lookup_url(app)


def members(db, app: App) -> list[tuple[int, str]]:
    """Active users who can work in ``app`` (its members and the admins), by name."""
    query = (select(User.id, User.display_name).outerjoin(AppMember, (AppMember.user_id == User.id)
                                                          & (AppMember.app_id == app.id))
             .where(User.is_active, (AppMember.app_id.is_not(None)) | (User.role == "admin"))
             .order_by(User.display_name))
    return [(uid, name) for uid, name in db.execute(query)]


# --- board -----------------------------------------------------------------------------------

@bp.route("/apps/<app_key>/pipelines/<key>/")
@login_required
def board_page(app_key: str, key: str):
    app = _app(app_key)
    db = get_session()
    pipeline = pipelines.get_pipeline(db, app, key)
    entity = catalog.entity(db, app, pipeline.entity_key)
    error = None
    try:
        flt = board.parse_filter(request.args)
        loaded = board.load(db, g.user, app, pipeline, flt)
    except board.BoardError as exc:
        error, flt = exc.message, board.BoardFilter()
        loaded = board.load(db, g.user, app, pipeline, flt)
    from formloom.runtime.views import display_context

    cards = [r for c in loaded.columns for r in c.cards]
    from formloom.runtime.views import rules_of

    rules = rules_of(app)
    entity = rules.visible_entity(entity)
    ctx = display_context(entity, [r.data for r in cards], {r.owner_id for r in cards if r.owner_id}, rules)
    card_specs = [entity.by_key[k] for k in pipeline.card_fields if k in entity.by_key]
    amount_spec = entity.by_key.get(pipeline.amount_field) if pipeline.amount_field else None
    if pipeline.amount_field and amount_spec is None:
        pipeline = replace(pipeline, amount_field=None)  # hidden from this role: no amounts on cards
    return render_template("board.html", app=app, pipeline=pipeline, entity=entity, board=loaded, flt=flt,
                           owners=members(db, app), ctx=ctx, card_specs=card_specs, amount_spec=amount_spec,
                           error=error, nav=_nav(app), args=request.args,
                           waiting=set(db.scalars(select(ApprovalRequest.record_id).where(
                               ApprovalRequest.record_id.in_([r.id for r in cards]),
                               ApprovalRequest.status == ApprovalStatus.PENDING.value))))


@bp.route("/apps/<app_key>/pipelines/<key>/stats")
@login_required
def stats_page(app_key: str, key: str):
    app = _app(app_key)
    db = get_session()
    pipeline = pipelines.get_pipeline(db, app, key)
    stats = pipelines.pipeline_stats(db, g.user, app, pipeline, utcnow())
    return render_template("pipeline_stats.html", app=app, pipeline=pipeline, stats=stats, nav=_nav(app),
                           duration=duration_text)


UNITS = {"en": ("d", "h", "m"), "zh-CN": ("天", "小时", "分钟")}


def duration_text(seconds: float | None, locale: str | None = None) -> str:
    """``3d 4h``, ``5h 10m``, ``12m`` (``3天4小时`` in Chinese; ``—`` when unknown)."""
    if seconds is None:
        return "—"
    day, hour, minute = UNITS.get(locale or current_locale(), UNITS["en"])
    gap = "" if (locale or current_locale()) == "zh-CN" else " "
    minutes = int(seconds // 60)
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days}{day}{gap}{hours}{hour}" if hours else f"{days}{day}"
    if hours:
        return f"{hours}{hour}{gap}{mins}{minute}" if mins else f"{hours}{hour}"
    return f"{mins}{minute}"


# --- moving a record -------------------------------------------------------------------------

@bp.route("/apps/<app_key>/<entity_key>/<int:record_id>/move", methods=["GET", "POST"])
@login_required
def move_page(app_key: str, entity_key: str, record_id: int):
    """Move a record to the stage ``?to=``: its gate, checklist and approval, then the move."""
    app = _app(app_key, Action.UPDATE_RECORD)
    db = get_session()
    record = records.get(db, g.user, app, entity_key, record_id)
    pipeline = pipelines.pipeline_for(db, app, entity_key)
    if pipeline is None:
        raise FormloomError(f"Entity '{entity_key}' has no pipeline.")
    to = request.values.get("to", "")
    if to not in pipeline.by_key:
        raise FormloomError(f"Pipeline '{pipeline.key}' has no stage '{to}'; choose one of the stages shown.")
    entity = catalog.entity(db, app, entity_key)
    situation = Situation(user_id=g.user.id, record_id=record.id)
    current = record.data.get(pipeline.stage_field)
    missing = pipelines.gate_missing(pipeline, entity, current, to, record.data, situation, checklist=None)
    # The fields the gate still needs can be filled in right here, saved together with the move.
    fill = compile_form(entity, {"sections": [{"fields": [m.field for m in missing if m.kind == "field"
                                                          and entity.by_key[m.field].type.name not in FILE_TYPES
                                                          and not entity.by_key[m.field].type.computed]}]},
                        current_locale()) if any(m.kind == "field" for m in missing) else None
    status, error, errors = 200, None, {}
    if request.method == "POST":
        form = fill.form_class() if fill else None
        try:
            values = {}
            if fill and fill.keys:
                bind_choices(db, g.user, app, entity, fill, form, _lookup_url(app), translate("search"))
                values = form_values(form, fill, entity)
            result = pipelines.move(db, g.user, g.cause, app, record, to, checklist=request.form.getlist("checklist"),
                                    comment=request.form.get("comment") or None, values=values,
                                    locale=current_locale(), situation=situation)
            db.commit()
            flash(translate("approval_requested" if result.status is MoveStatus.PENDING_APPROVAL else "moved"),
                  "success")
            return redirect(url_for("runtime.record_page", app_key=app.key, entity_key=entity_key,
                                    record_id=record.id))
        except (RecordValidationError, pipelines.StageGateError, Conflict, approvals.NoApprovers) as exc:
            db.rollback()
            error, status, errors = exc.message, exc.http_status, exc.field_messages()
            record = records.get(db, g.user, app, entity_key, record_id)
    else:
        form = fill.form_class(formdata=None, data=initial_data(entity, fill, record.data)) if fill else None
    if form is not None and fill.keys and request.method == "GET":
        bind_choices(db, g.user, app, entity, fill, form, _lookup_url(app), translate("search"))
    approval = pipelines.needed_approval(pipeline, entity, current, to, record.data, situation)
    return render_template("move.html", app=app, entity=entity, record=record, pipeline=pipeline,
                           stage=pipeline.by_key[to], current=pipeline.by_key.get(current), missing=missing,
                           approval=approval, error=error, errors=errors, nav=_nav(app), render=pipelines.render,
                           fill=fill, form=form, attr_name=attr_name,
                           ticked=request.form.getlist("checklist"), comment=request.form.get("comment", "")), status


def stage_panel(db, app: App, record: Record) -> dict | None:
    """What the record page shows about the record's pipeline (None when its entity has none)."""
    pipeline = pipelines.pipeline_for(db, app, record.entity_key)
    if pipeline is None:
        return None
    now = utcnow()
    visits = pipelines.visits(db, record)
    current = record.data.get(pipeline.stage_field)
    since = next((v.entered_at for v in reversed(visits) if v.left_at is None), None)
    return {"pipeline": pipeline, "current": current, "visits": visits, "now": now,
            "in_stage": (now - since).total_seconds() if since else None,
            "time_in_stages": pipelines.time_in_stages(visits, now),
            "next_stages": pipeline.next_stages(current), "pending": pipelines.pending_request(db, record),
            "requests": approvals.for_record(db, record), "duration": duration_text}


# --- approvals -------------------------------------------------------------------------------

@bp.route("/approvals/")
@login_required
def inbox():
    db = get_session()
    box = request.args.get("box", "waiting")
    if box not in ("waiting", "requested"):
        box = "waiting"
    rows = approvals.waiting_for(db, g.user) if box == "waiting" else approvals.requested_by(db, g.user)
    items = [approvals.request_json(db, r, g.user, current_locale()) for r in rows]
    return render_template("approvals.html", box=box, items=items, apps=visible_apps(db, g.user))


@bp.route("/approvals/<int:request_id>", methods=["GET", "POST"])
@login_required
def approval_page(request_id: int):
    db = get_session()
    req = approvals.get_request(db, g.user, request_id)
    app = db.get(App, req.app_id)
    error, status = None, 200
    if request.method == "POST":
        action = request.form.get("decision", "")
        try:
            if action == "withdraw":
                approvals.withdraw(db, g.user, request_id, locale=current_locale())
            else:
                approvals.decide(db, g.user, request_id, action, comment=request.form.get("comment"),
                                 other_user_id=request.form.get("user", type=int), locale=current_locale())
            db.commit()
            flash(translate("decision_saved"), "success")
            return redirect(url_for("pipelines.approval_page", request_id=request_id))
        except (FormloomError, Forbidden) as exc:
            db.rollback()
            error, status = exc.message, exc.http_status
            req = approvals.get_request(db, g.user, request_id)
    item = approvals.request_json(db, req, g.user, current_locale())
    return render_template("approval.html", app=app, req=req, item=item, error=error,
                           members=[(uid, name) for uid, name in members(db, app) if uid != g.user.id],
                           nav=_nav(app)), status


@bp.app_context_processor
def approvals_badge() -> dict:
    """The number of approvals waiting for the signed-in user, for the top bar."""
    user = g.get("user")
    if user is None:
        return {"approvals_waiting": 0}
    return {"approvals_waiting": approvals.waiting_count(get_session(), user)}


def pipeline_of_entity(app: App, entity_key: str) -> Pipeline | None:
    return pipelines.pipeline_for(get_session(), app, entity_key)


@bp.app_template_global()
def stage_label(pipeline: Pipeline, key: str | None) -> str:
    stage = pipeline.by_key.get(key) if key else None
    return text_of(stage.label, current_locale()) if stage else (key or "—")

"""The reps' pages: apps, record lists, generated forms and record pages with their history."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from flask import Blueprint, Response, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.orm import Session

from formloom.platform.api_common import BadRequest
from formloom.platform.auth import Action, can, visible_apps
from formloom.platform.db import get_session
from formloom.platform.errors import Conflict, NotFound, RecordValidationError, VersionConflict
from formloom.platform.models import App, Record, User
from formloom.platform.storage import storage_for
from formloom.platform.web_auth import login_required
from formloom.runtime import access, catalog, exports, files, listing, pipelines, records, saved_views
from formloom.runtime.compiler import CompiledEntity
from formloom.runtime.fields import FILE_TYPES, ID_LIMIT, CoercionError, DisplayContext
from formloom.runtime.files_views import download_url
from formloom.runtime.forms import attr_name, bind_choices, compile_form, form_values, initial_data
from formloom.runtime.i18n import UI_TEXT, current_locale, translate
from formloom.runtime.labels import text_of
from formloom.runtime.validation import Situation, defaults, hidden_fields, preview

bp = Blueprint("runtime", __name__, template_folder="templates")


@bp.url_value_preprocessor
def _form_limits(endpoint: str | None, _values: dict | None) -> None:
    # A drawn signature arrives as a data URL in a plain form field, larger than Werkzeug's
    # default limit for such fields; raised for the record forms only, before CSRF reads the form.
    if endpoint in ("runtime.record_new", "runtime.record_edit"):
        request.max_form_memory_size = files.SIGNATURE_MAX_BYTES * 4 // 3 + 256 * 1024


def _app(app_key: str, action: Action = Action.VIEW_APP) -> App:
    return catalog.authorized_app(get_session(), g.user, app_key, action)


def rules_of(app: App) -> access.Policy:
    """The signed-in user's access policy in ``app``."""
    return access.policy(get_session(), g.user, app)


def display_context(entity: CompiledEntity, rows: Iterable[dict], extra_users: Iterable[int] = (),
                    rules: access.Policy | None = None) -> DisplayContext:
    """Names of the members and titles of the related records that ``rows`` mention.

    With ``rules``, related records the user may not read are named by their number only.
    """
    user_ids, record_ids = set(extra_users), set()
    for data in rows:
        for spec in entity.fields:
            value = data.get(spec.key)
            if value is None:
                continue
            ids = {v for v in (value if isinstance(value, list) else [value])
                   if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= ID_LIMIT}
            if spec.type.name in ("user", "users"):
                user_ids |= ids
            elif spec.type.name in ("relation", "relations"):
                record_ids |= ids
    db = get_session()
    users = {uid: name for uid, name in db.execute(
        select(User.id, User.display_name).where(User.id.in_(user_ids)))} if user_ids else {}
    return DisplayContext(current_locale(), users, listing.titles(db, record_ids, rules))


@bp.route("/")
@login_required
def home():
    apps = visible_apps(get_session(), g.user)
    # One app: straight into it, except for those who create apps, who start here.
    if len(apps) == 1 and not can(get_session(), g.user, Action.MANAGE_APPS):
        return redirect(url_for("runtime.app_home", app_key=apps[0].key))
    return render_template("home.html", apps=apps)


@bp.route("/apps/<app_key>/")
@login_required
def app_home(app_key: str):
    app = _app(app_key)
    db = get_session()
    rules = rules_of(app)
    keys = rules.readable_entities(catalog.entity_keys(db, app))
    readable = or_(false(), *[and_(Record.entity_key == k, rules.scope(k)) for k in keys])
    counts = {key: n for key, n in db.execute(select(Record.entity_key, func.count()).where(
        Record.app_id == app.id, Record.deleted_at.is_(None), readable).group_by(Record.entity_key))}
    entities = [catalog.entity(db, app, key) for key in keys]
    recent = list(db.scalars(select(Record).where(Record.app_id == app.id, Record.deleted_at.is_(None), readable)
                             .order_by(Record.updated_at.desc(), Record.id.desc()).limit(8)))
    labels = {e.key: e.body["label"] for e in entities}
    return render_template("app_home.html", app=app, entities=entities, counts=counts, recent=recent,
                           labels=labels, pipelines=list(pipelines.pipelines_of(db, app).values()),
                           can_manage=can(db, g.user, Action.WRITE_DEFINITIONS, app))


def _nav(app: App) -> list[tuple[str, dict | str]]:
    db = get_session()
    return [(key, catalog.entity(db, app, key).body["label"])
            for key in rules_of(app).readable_entities(catalog.entity_keys(db, app))]


@bp.route("/apps/<app_key>/<entity_key>/")
@login_required
def record_list(app_key: str, entity_key: str):
    app = _app(app_key, Action.READ_RECORDS)
    db = get_session()
    rules = rules_of(app)
    rules.require(entity_key, access.RecordAction.READ)
    entity = rules.visible_entity(catalog.entity(db, app, entity_key))
    page_size = current_app.config["PAGE_SIZE"]
    page_number = max(request.args.get("page", 1, type=int), 1)
    filter_fields = [f for f in entity.fields if f.type.name in ("select", "date", "user", "boolean")]
    columns = [f for f in entity.fields if f.type.name not in ("textarea", "multiselect")][:6]
    views = saved_views.views_of(db, g.user, app, entity.key)
    view = next((v for v in views if v.key == request.args.get("view")), None)
    if request.args.get("view") and view is None:
        raise NotFound(f"There is no view '{request.args['view']}' of {entity.key} for you.")
    if view is not None and view.columns(entity):
        columns = [entity.by_key[key] for key in view.columns(entity)]
    query = listing.ListQuery(search=request.args.get("q", ""), limit=page_size,
                              offset=(page_number - 1) * page_size,
                              sort=request.args.get("sort") or ("" if view else "-updated_at"),
                              deleted=request.args.get("deleted") == "1", view=view.key if view else None)
    error = None
    try:
        query.filters = listing.parse_filters(request.args, entity)
        page = listing.list_records(db, g.user, app, entity, query)
    except listing.ListError as exc:
        error, page = exc.message, listing.Page([], 0, None)
    ctx = display_context(entity, [r.data for r in page.records], rules=rules)
    pages = max((page.total + page_size - 1) // page_size, 1)
    return render_template("record_list.html", app=app, entity=entity, page=page, columns=columns,
                           filter_fields=filter_fields, ctx=ctx, page_number=page_number, pages=pages,
                           error=error, nav=_nav(app), args=request.args, views=views, view=view,
                           current_sort=query.sort or (view.sort(rules) if view else None) or "-updated_at",
                           pipeline=pipelines.pipeline_for(db, app, entity.key),
                           other_forms=[f for f in catalog.forms_of(db, app, entity) if f["key"] != entity.key])


@bp.route("/apps/<app_key>/<entity_key>/export.<any(csv, xlsx):fmt>")
@login_required
def record_export(app_key: str, entity_key: str, fmt: str):
    """The list as currently searched, filtered and sorted (the list page's arguments), every page."""
    app = _app(app_key, Action.EXPORT_RECORDS)
    db = get_session()
    rules = rules_of(app)
    rules.require(entity_key, access.RecordAction.EXPORT)
    entity = rules.visible_entity(catalog.entity(db, app, entity_key))
    view = request.args.get("view") or None
    query = listing.ListQuery(search=request.args.get("q", ""),
                              sort=request.args.get("sort") or ("" if view else "-updated_at"),
                              filters=listing.parse_filters(request.args, entity),
                              deleted=request.args.get("deleted") == "1", view=view)
    exported = exports.export_records(db, g.user, app, entity_key, query, exports.ExportFormat(fmt),
                                      current_locale(), header=exports.parse_header(request.args.get("header")),
                                      max_rows=exports.max_rows_setting(current_app.config))
    return export_response(exported, db)


def export_response(exported: exports.ExportFile, session: Session) -> Response:
    """An export as a download; a CSV is streamed batch by batch as ``session`` reads it.

    The request's teardown closes the session when the view returns, before the body is sent;
    the CSV's batches then read in it again (a closed session opens a new transaction when
    used), so the body closes it once it is done or the client goes away.
    """
    def body() -> Iterator[bytes]:
        try:
            yield from exported.chunks
        finally:
            session.close()

    response = Response(body(), content_type=exported.mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{exported.filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _form_page(app: App, entity: CompiledEntity, record: Record | None):
    """Show and handle the generated form for a new or an existing record."""
    db = get_session()
    form_key = request.args.get("form") or None
    rules = rules_of(app)
    form_body = rules.visible_form(entity.key, catalog.form_for(db, app, entity, form_key))
    entity = rules.visible_entity(entity)  # hidden fields are not sent to the browser at all
    compiled = compile_form(entity, form_body, current_locale())
    situation = Situation(user_id=g.user.id, record_id=record.id if record else None,
                          extra_visibility=compiled.section_conditions)
    pipeline = pipelines.pipeline_for(db, app, entity.key)
    # A saved record changes stage by moving (its gate, checklist and approval), not in the form.
    stage_locked = pipeline.stage_field if pipeline is not None and record is not None else None
    conflict = None
    if request.method == "POST":
        form = compiled.form_class()
        bind_choices(db, g.user, app, entity, compiled, form, _lookup_url(app), translate("search"))
        errors: dict[str, list[str]] = {}
        values = form_values(form, compiled, entity)
        values.pop(stage_locked, None)
        file_errors = _receive_files(db, app, entity, compiled, values)
        try:
            if file_errors:
                raise RecordValidationError(file_errors)
            if record is None:
                record = records.create(db, g.user, g.cause, app, entity.key, values, locale=current_locale(),
                                        situation=situation)
            else:
                records.update(db, g.user, g.cause, app, record, values,
                               request.form.get("_version", type=int) or 0, locale=current_locale(),
                               situation=situation)
            db.commit()
            flash(translate("saved"), "success")
            return redirect(url_for("runtime.record_page", app_key=app.key, entity_key=entity.key,
                                    record_id=record.id))
        except RecordValidationError as exc:
            db.rollback()
            errors = {**exc.fields, **file_errors}  # the form's error summary says so; no flash as well
        except VersionConflict as exc:
            db.rollback()
            conflict = exc
            flash(exc.message, "error")
        except (pipelines.StageGateError, Conflict) as exc:
            db.rollback()
            errors = exc.field_messages() or {}
            flash(exc.message, "error")
        status = 409 if conflict else 422
        shown = rules.visible_data(entity.key, {**(record.data if record else {}), **values})
    else:
        shown = rules.visible_data(entity.key, record.data if record else defaults(entity, situation))
        form = compiled.form_class(formdata=None, data=initial_data(entity, compiled, shown))
        bind_choices(db, g.user, app, entity, compiled, form, _lookup_url(app), translate("search"))
        errors, status = {}, 200
    version = conflict.current_version if conflict else (record.version if record else None)
    files = _file_items(db, app, entity, compiled, shown)
    return render_template("record_form.html", app=app, entity=entity, compiled=compiled, form=form,
                           record=record, errors=errors, attr_name=attr_name, version=version,
                           conflict=conflict, nav=_nav(app), files=files, form_key=form_key,
                           stage_locked=stage_locked, pipeline=pipeline,
                           pending=pipelines.pending_request(db, record) if stage_locked else None,
                           logic=form_logic(entity, compiled, g.user.id, situation),
                           locked={own for s in entity.fields if s.definition.get("fill_locked")
                                   for own in s.definition.get("fill", {})} | rules.read_only(entity.key),
                           ctx=display_context(entity, [shown], rules=rules), shown=shown), status


def _lookup_url(app: App):
    return lambda target: url_for("runtime.lookup", app_key=app.key, entity_key=target)


def _receive_files(db, app: App, entity: CompiledEntity, compiled, values: dict) -> dict[str, list[str]]:
    """Store the files and signatures sent with the form; their ids join ``values``.

    Stored files are committed at once, so a form sent back with errors still holds them.
    """
    errors: dict[str, list[str]] = {}
    store = storage_for(current_app)
    for key in compiled.keys:
        spec = entity.by_key[key]
        if spec.type.name not in FILE_TYPES:
            continue
        name = attr_name(key)
        try:
            values[key] = files.receive_field(db, store, app, g.user, spec.type.name, spec.definition,
                                              kept=request.form.getlist(f"{name}-keep"),
                                              drawn=request.form.get(name, ""),
                                              uploads=request.files.getlist(name))
        except files.FileRejected as exc:
            errors[key] = [f"{text_of(spec.definition['label'], current_locale())}: {exc.message}"]
    db.commit()
    return errors


def _file_items(db, app: App, entity: CompiledEntity, compiled, values: Mapping) -> dict[str, list[dict]]:
    """The files each file field of the form holds, with names and download links."""
    items: dict[str, list[dict]] = {}
    for key in compiled.keys:
        if entity.by_key[key].type.name in FILE_TYPES:
            ids = [v["id"] if isinstance(v, dict) else v for v in values.get(key) or []]
            found = files.existing_files(db, app.id, ids)
            items[key] = [{**files.file_value(found[i]), "url": download_url(app.key, found[i])}
                          for i in ids if i in found]
    return items


def form_logic(entity: CompiledEntity, compiled, user_id: int, situation: Situation) -> dict:
    """What the browser needs to apply the form's conditions as the rep types (conditions.js)."""
    fields = {}
    for key in compiled.keys:
        definition = entity.by_key[key].definition
        rules = {k: definition[k] for k in ("visible_when", "required_when", "readonly_when") if k in definition}
        if key in compiled.section_conditions:
            rules["section_when"] = compiled.section_conditions[key]
        if rules:
            fields[attr_name(key)] = rules
    computed = bool(entity.formulas or entity.row_formulas or any(
        s.type.name == "lookup" or s.definition.get("fill") for s in entity.fields))
    return {"kinds": {attr_name(k): v for k, v in entity.kinds.items()}, "fields": fields,
            "today": situation.today.isoformat(), "now": situation.now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "user": user_id, "computed": computed}


@bp.route("/apps/<app_key>/<entity_key>/new", methods=["GET", "POST"])
@login_required
def record_new(app_key: str, entity_key: str):
    app = _app(app_key, Action.CREATE_RECORD)
    rules_of(app).require(entity_key, access.RecordAction.CREATE)
    return _form_page(app, catalog.entity(get_session(), app, entity_key), None)


@bp.route("/apps/<app_key>/<entity_key>/<int:record_id>/edit", methods=["GET", "POST"])
@login_required
def record_edit(app_key: str, entity_key: str, record_id: int):
    app = _app(app_key, Action.UPDATE_RECORD)
    db = get_session()
    record = records.get(db, g.user, app, entity_key, record_id)
    rules_of(app).check(db, record, access.RecordAction.UPDATE)
    return _form_page(app, catalog.entity(db, app, entity_key), record)


@bp.route("/apps/<app_key>/<entity_key>/<int:record_id>")
@login_required
def record_page(app_key: str, entity_key: str, record_id: int):
    app = _app(app_key, Action.READ_RECORDS)
    db = get_session()
    record = records.get(db, g.user, app, entity_key, record_id, include_deleted=True)
    rules = rules_of(app)
    full = catalog.entity(db, app, entity_key)
    entity = rules.visible_entity(full)
    form_body = rules.visible_form(entity.key, catalog.form_for(db, app, full))
    past_fields = catalog.field_definitions(db, app, entity_key)
    removed = [(past_fields.get(k, {"key": k, "label": k, "type": "text"}), v)
               for k, v in record.data.items() if k not in full.by_key]
    changes = records.history(db, g.user, app, record)
    actor_ids = {c.actor_id for c in changes if c.actor_id} | {record.owner_id} - {None}
    shown = rules.visible_data(entity.key, record.data)
    ctx = display_context(entity, [shown] + [_diff_side(c.diff, i) for c in changes for i in (0, 1)],
                          actor_ids, rules)
    hidden = hidden_fields(full, record.data, Situation(user_id=g.user.id, record_id=record.id)) | \
        rules.hidden(entity.key)
    from formloom.runtime.pipelines_views import stage_panel

    stage = stage_panel(db, app, record)
    if stage:
        actor_ids |= {v.entered_by for v in stage["visits"] if v.entered_by}
        people = actor_ids | {r.requested_by for r in stage["requests"]}
        ctx.users.update(dict(db.execute(select(User.id, User.display_name).where(User.id.in_(people))).all()))
    return render_template("record_page.html", app=app, entity=entity, record=record, form_body=form_body,
                           hidden=hidden, stage=stage,
                           approval_events={k for k in UI_TEXT if k.startswith("event_")},
                           removed=removed, changes=changes, ctx=ctx, past_fields=past_fields,
                           nav=_nav(app))


def _diff_side(diff: dict, side: int) -> dict:
    return {k: v[side] for k, v in diff.items()}


@bp.route("/apps/<app_key>/<entity_key>/<int:record_id>/delete", methods=["POST"])
@login_required
def record_delete(app_key: str, entity_key: str, record_id: int):
    app = _app(app_key, Action.DELETE_RECORD)
    db = get_session()
    record = records.get(db, g.user, app, entity_key, record_id)
    records.delete(db, g.user, g.cause, app, record)
    db.commit()
    flash(translate("record_deleted"), "success")
    return redirect(url_for("runtime.record_page", app_key=app_key, entity_key=entity_key, record_id=record_id))


@bp.route("/apps/<app_key>/<entity_key>/<int:record_id>/restore", methods=["POST"])
@login_required
def record_restore(app_key: str, entity_key: str, record_id: int):
    app = _app(app_key, Action.DELETE_RECORD)
    db = get_session()
    record = records.get(db, g.user, app, entity_key, record_id, include_deleted=True)
    records.restore(db, g.user, g.cause, app, record)
    db.commit()
    flash(translate("record_restored"), "success")
    return redirect(url_for("runtime.record_page", app_key=app_key, entity_key=entity_key, record_id=record_id))


@bp.route("/apps/<app_key>/<entity_key>/compute", methods=["POST"])
@login_required
def compute_preview(app_key: str, entity_key: str):
    """Computed values and linked fields for a form being filled in, shown live as the rep types.

    Nothing is stored: the server computes again when the record is saved, and that value is kept.
    """
    app = _app(app_key, Action.READ_RECORDS)
    db = get_session()
    rules = rules_of(app)
    full = catalog.entity(db, app, entity_key)
    entity = rules.visible_entity(full)
    compiled = compile_form(entity, rules.visible_form(entity.key, catalog.form_for(
        db, app, full, request.args.get("form") or None)), current_locale())
    record_id = request.args.get("record", type=int)
    record = records.get(db, g.user, app, entity_key, record_id) if record_id else None
    form = compiled.form_class()
    values = form_values(form, compiled, entity)
    changed = request.args.get("changed", "")
    for spec in entity.fields:  # a relation just chosen fills its linked fields afresh
        if spec.type.name == "relation" and attr_name(spec.key) == changed:
            for own in spec.definition.get("fill", {}):
                values.pop(own, None)
    situation = Situation(user_id=g.user.id, record_id=record_id, extra_visibility=compiled.section_conditions)
    base = dict(record.data) if record else {}
    resolver = records.DatabaseResolver(db, app, g.user, records.file_ids(full, base))
    document = preview(full, values, base=base, resolver=resolver, situation=situation)
    ctx = display_context(entity, [document], rules=rules)
    out: dict = {"computed": {}, "filled": {}, "rows": {}}
    for key in compiled.keys:
        spec = entity.by_key[key]
        if spec.type.computed:
            out["computed"][attr_name(key)] = display_filter(document.get(key), spec, ctx)
        if spec.type.name == "relation" and attr_name(key) == changed:
            for own in spec.definition.get("fill", {}):
                if own in compiled.keys:
                    own_spec = entity.by_key[own]
                    out["filled"][attr_name(own)] = own_spec.type.form_value(document.get(own), own_spec.definition)
        if key in entity.row_formulas:
            columns = {c["key"]: c for c in spec.definition["fields"]}
            out["rows"][attr_name(key)] = [
                {attr_name(c): display_filter(row.get(c), columns[c], ctx) for c, _ in entity.row_formulas[key]}
                for row in document.get(key) or []]
    db.rollback()
    return jsonify(out)


@bp.route("/apps/<app_key>/<entity_key>/lookup")
@login_required
def lookup(app_key: str, entity_key: str):
    """Search records of an entity by title, for relation pickers."""
    app = _app(app_key, Action.READ_RECORDS)
    target = rules_of(app).visible_entity(catalog.entity(get_session(), app, entity_key))
    where = {}
    for name, raw in request.args.items():
        key = name[len("where."):] if name.startswith("where.") else None
        if key is None:
            continue
        spec = target.by_key.get(key)
        if spec is None:
            raise BadRequest(f"Cannot filter {entity_key} by '{key}': it has no such field.")
        try:
            where[key] = spec.type.coerce(raw, spec.definition)
        except CoercionError as exc:
            raise BadRequest(f"Filter on '{key}': the value {exc}.") from None
    found = listing.lookup(get_session(), g.user, app, entity_key, request.args.get("q", ""), where=where)
    return jsonify([{"id": rid, "title": title} for rid, title in found])


@bp.app_template_filter("display")
def display_filter(value, spec_or_definition, ctx: DisplayContext) -> str:
    from formloom.runtime.fields import FIELD_TYPES

    definition = getattr(spec_or_definition, "definition", spec_or_definition)
    field_type = FIELD_TYPES.get(definition.get("type"))
    if value is None:
        return ""
    return field_type.display(value, definition, ctx) if field_type else str(value)


def may(app: App, entity_key: str, action: str, record: Record | None = None) -> bool:
    """For pages: whether the signed-in user may ``action`` (on ``record``, within their scope)."""
    rules = rules_of(app)
    wanted = access.RecordAction(action)
    if record is None:
        return rules.allows(entity_key, wanted)
    return rules.permits(get_session(), record, wanted)


@bp.app_context_processor
def inject_helpers() -> dict:
    return {"text_of": text_of, "locale": current_locale(), "may": may}

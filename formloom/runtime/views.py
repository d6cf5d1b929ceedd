"""The reps' pages: apps, record lists, generated forms and record pages with their history."""
from __future__ import annotations

from typing import Iterable

from flask import Blueprint, current_app, flash, g, jsonify, redirect, render_template, request, url_for
from sqlalchemy import func, select

from formloom.platform.auth import Action, visible_apps
from formloom.platform.db import get_session
from formloom.platform.errors import RecordValidationError, VersionConflict
from formloom.platform.models import App, Record, User
from formloom.platform.web_auth import login_required
from formloom.runtime import catalog, listing, records
from formloom.runtime.compiler import CompiledEntity
from formloom.runtime.fields import DisplayContext
from formloom.runtime.forms import attr_name, bind_choices, compile_form, form_values, initial_data
from formloom.runtime.i18n import current_locale, translate
from formloom.runtime.labels import text_of

bp = Blueprint("runtime", __name__, template_folder="templates")


def _app(app_key: str, action: Action = Action.VIEW_APP) -> App:
    return catalog.authorized_app(get_session(), g.user, app_key, action)


def display_context(entity: CompiledEntity, rows: Iterable[dict], extra_users: Iterable[int] = ()) -> DisplayContext:
    """Names of the members and titles of the related records that ``rows`` mention."""
    user_ids, record_ids = set(extra_users), set()
    for data in rows:
        for spec in entity.fields:
            value = data.get(spec.key)
            if value is None:
                continue
            if spec.type.name == "user":
                user_ids.add(value)
            elif spec.type.name == "relation":
                record_ids.add(value)
    db = get_session()
    users = {uid: name for uid, name in db.execute(
        select(User.id, User.display_name).where(User.id.in_(user_ids)))} if user_ids else {}
    return DisplayContext(current_locale(), users, listing.titles(db, record_ids))


@bp.route("/")
@login_required
def home():
    apps = visible_apps(get_session(), g.user)
    if len(apps) == 1:
        return redirect(url_for("runtime.app_home", app_key=apps[0].key))
    return render_template("home.html", apps=apps)


@bp.route("/apps/<app_key>/")
@login_required
def app_home(app_key: str):
    app = _app(app_key)
    db = get_session()
    keys = catalog.entity_keys(db, app)
    counts = {key: n for key, n in db.execute(select(Record.entity_key, func.count()).where(
        Record.app_id == app.id, Record.deleted_at.is_(None)).group_by(Record.entity_key))}
    entities = [catalog.entity(db, app, key) for key in keys]
    recent = list(db.scalars(select(Record).where(Record.app_id == app.id, Record.deleted_at.is_(None))
                             .order_by(Record.updated_at.desc(), Record.id.desc()).limit(8)))
    labels = {e.key: e.body["label"] for e in entities}
    return render_template("app_home.html", app=app, entities=entities, counts=counts, recent=recent,
                           labels=labels)


def _nav(app: App) -> list[tuple[str, dict | str]]:
    db = get_session()
    return [(key, catalog.entity(db, app, key).body["label"]) for key in catalog.entity_keys(db, app)]


@bp.route("/apps/<app_key>/<entity_key>/")
@login_required
def record_list(app_key: str, entity_key: str):
    app = _app(app_key, Action.READ_RECORDS)
    db = get_session()
    entity = catalog.entity(db, app, entity_key)
    page_size = current_app.config["PAGE_SIZE"]
    page_number = max(request.args.get("page", 1, type=int), 1)
    filter_fields = [f for f in entity.fields if f.type.name in ("select", "date", "user", "boolean")]
    columns = [f for f in entity.fields if f.type.name not in ("textarea", "multiselect")][:6]
    query = listing.ListQuery(search=request.args.get("q", ""), limit=page_size,
                              offset=(page_number - 1) * page_size,
                              sort=request.args.get("sort") or "-updated_at",
                              deleted=request.args.get("deleted") == "1")
    error = None
    try:
        query.filters = listing.parse_filters(request.args, entity)
        page = listing.list_records(db, g.user, app, entity, query)
    except listing.ListError as exc:
        error, page = exc.message, listing.Page([], 0, None)
    ctx = display_context(entity, [r.data for r in page.records])
    pages = max((page.total + page_size - 1) // page_size, 1)
    return render_template("record_list.html", app=app, entity=entity, page=page, columns=columns,
                           filter_fields=filter_fields, ctx=ctx, page_number=page_number, pages=pages,
                           error=error, nav=_nav(app), args=request.args)


def _form_page(app: App, entity: CompiledEntity, record: Record | None):
    """Show and handle the generated form for a new or an existing record."""
    db = get_session()
    compiled = compile_form(entity, catalog.form_for(db, app, entity), current_locale())
    lookup_url = lambda target: url_for("runtime.lookup", app_key=app.key, entity_key=target)  # noqa: E731
    conflict = None
    if request.method == "POST":
        form = compiled.form_class()
        bind_choices(db, g.user, app, entity, compiled, form, lookup_url, translate("search"))
        errors: dict[str, list[str]] = {}
        try:
            values = form_values(form, compiled)
            if record is None:
                record = records.create(db, g.user, g.cause, app, entity.key, values, locale=current_locale())
            else:
                records.update(db, g.user, g.cause, app, record, values,
                               request.form.get("_version", type=int) or 0, locale=current_locale())
            db.commit()
            flash(translate("saved"), "success")
            return redirect(url_for("runtime.record_page", app_key=app.key, entity_key=entity.key,
                                    record_id=record.id))
        except RecordValidationError as exc:
            db.rollback()
            errors = exc.fields  # the form's error summary says so; no flash as well
        except VersionConflict as exc:
            db.rollback()
            conflict = exc
            flash(exc.message, "error")
        status = 409 if conflict else 422
    else:
        values = record.data if record else {s.key: s.definition.get("default") for s in entity.fields}
        form = compiled.form_class(formdata=None, data=initial_data(entity, compiled, values))
        bind_choices(db, g.user, app, entity, compiled, form, lookup_url, translate("search"))
        errors, status = {}, 200
    version = conflict.current_version if conflict else (record.version if record else None)
    return render_template("record_form.html", app=app, entity=entity, compiled=compiled, form=form,
                           record=record, errors=errors, attr_name=attr_name, version=version,
                           conflict=conflict, nav=_nav(app)), status


@bp.route("/apps/<app_key>/<entity_key>/new", methods=["GET", "POST"])
@login_required
def record_new(app_key: str, entity_key: str):
    app = _app(app_key, Action.CREATE_RECORD)
    return _form_page(app, catalog.entity(get_session(), app, entity_key), None)


@bp.route("/apps/<app_key>/<entity_key>/<int:record_id>/edit", methods=["GET", "POST"])
@login_required
def record_edit(app_key: str, entity_key: str, record_id: int):
    app = _app(app_key, Action.UPDATE_RECORD)
    db = get_session()
    record = records.get(db, g.user, app, entity_key, record_id)
    return _form_page(app, catalog.entity(db, app, entity_key), record)


@bp.route("/apps/<app_key>/<entity_key>/<int:record_id>")
@login_required
def record_page(app_key: str, entity_key: str, record_id: int):
    app = _app(app_key, Action.READ_RECORDS)
    db = get_session()
    record = records.get(db, g.user, app, entity_key, record_id, include_deleted=True)
    entity = catalog.entity(db, app, entity_key)
    form_body = catalog.form_for(db, app, entity)
    past_fields = catalog.field_definitions(db, app, entity_key)
    removed = [(past_fields.get(k, {"key": k, "label": k, "type": "text"}), v)
               for k, v in record.data.items() if k not in entity.by_key]
    changes = records.history(db, g.user, app, record)
    actor_ids = {c.actor_id for c in changes if c.actor_id} | {record.owner_id} - {None}
    ctx = display_context(entity, [record.data] + [_diff_side(c.diff, i) for c in changes for i in (0, 1)],
                          actor_ids)
    return render_template("record_page.html", app=app, entity=entity, record=record, form_body=form_body,
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


@bp.route("/apps/<app_key>/<entity_key>/lookup")
@login_required
def lookup(app_key: str, entity_key: str):
    """Search records of an entity by title, for relation pickers."""
    app = _app(app_key, Action.READ_RECORDS)
    catalog.entity(get_session(), app, entity_key)
    found = listing.lookup(get_session(), g.user, app, entity_key, request.args.get("q", ""))
    return jsonify([{"id": rid, "title": title} for rid, title in found])


@bp.app_template_filter("display")
def display_filter(value, spec_or_definition, ctx: DisplayContext) -> str:
    from formloom.runtime.fields import FIELD_TYPES

    definition = getattr(spec_or_definition, "definition", spec_or_definition)
    field_type = FIELD_TYPES.get(definition.get("type"))
    if value is None:
        return ""
    return field_type.display(value, definition, ctx) if field_type else str(value)


@bp.app_context_processor
def inject_helpers() -> dict:
    return {"text_of": text_of, "locale": current_locale()}

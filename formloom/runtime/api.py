"""REST API for records (``/api/v1``): the same services and checks as the HTML pages."""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from formloom.platform.api_common import int_arg, iso, json_body, require
from formloom.platform.auth import Action, visible_apps
from formloom.platform.db import get_session
from formloom.platform.models import App, Record
from formloom.platform.web_auth import login_required
from formloom.runtime import access, catalog, exports, listing, records
from formloom.runtime.fields import describe_types
from formloom.runtime.labels import LOCALES, text_of
from formloom.runtime.views import export_response

bp = Blueprint("runtime_api", __name__, url_prefix="/api/v1")


def record_json(record: Record) -> dict:
    """A record as the caller may see it: fields hidden from their role are left out."""
    db = get_session()
    rules = access.policy(db, g.user, db.get(App, record.app_id))
    return {"id": record.id, "entity": record.entity_key, "version": record.version,
            "entity_version": record.entity_version, "title": record.title,
            "data": rules.visible_data(record.entity_key, record.data),
            "owner_id": record.owner_id, "created_at": iso(record.created_at),
            "updated_at": iso(record.updated_at), "deleted": record.deleted_at is not None}


def change_json(change: records.HistoryEntry) -> dict:
    return {"id": change.id, "action": change.action, "record_version": change.record_version,
            "entity_version": change.entity_version, "changes": change.diff, "actor_id": change.actor_id,
            "cause": {"kind": change.cause_kind, "ref": change.cause_ref}, "at": iso(change.at),
            **({"detail": change.detail} if change.detail else {})}


def app_json(app: App) -> dict:
    return {"key": app.key, "label": app.label, "created_at": iso(app.created_at)}


def _app(app_key: str, action: Action) -> App:
    return catalog.authorized_app(get_session(), g.user, app_key, action)


@bp.get("/apps")
@login_required
def apps_list():
    return jsonify({"items": [app_json(a) for a in visible_apps(get_session(), g.user)]})


@bp.get("/field-types")
@login_required
def field_types():
    return jsonify({"items": describe_types(request.args.get("locale", "en"))})


@bp.get("/apps/<app_key>/records/<entity_key>")
@login_required
def records_list(app_key: str, entity_key: str):
    app = _app(app_key, Action.READ_RECORDS)
    db = get_session()
    entity = catalog.entity(db, app, entity_key)
    query = listing.ListQuery(search=request.args.get("q", ""), sort=request.args.get("sort") or "-updated_at",
                              limit=int_arg("limit", 50, 1, current_app.config["API_PAGE_SIZE_MAX"]),
                              cursor=request.args.get("cursor") or None,
                              filters=listing.parse_filters(request.args, entity),
                              deleted=request.args.get("deleted") in ("1", "true"))
    page = listing.list_records(db, g.user, app, entity, query)
    return jsonify({"items": [record_json(r) for r in page.records], "total": page.total,
                    "next_cursor": page.next_cursor})


@bp.get("/apps/<app_key>/records/<entity_key>/export")
@login_required
def records_export(app_key: str, entity_key: str):
    """Every record of the list the same parameters give (``q``, ``f.*``, ``sort``, ``deleted``) as a file."""
    app = _app(app_key, Action.EXPORT_RECORDS)
    db = get_session()
    access.policy(db, g.user, app).require(entity_key, access.RecordAction.EXPORT)
    entity = catalog.entity(db, app, entity_key)
    query = listing.ListQuery(search=request.args.get("q", ""), sort=request.args.get("sort") or "-updated_at",
                              filters=listing.parse_filters(request.args, entity),
                              deleted=request.args.get("deleted") in ("1", "true"))
    locale = request.args.get("locale") or g.user.locale or "en"
    exported = exports.export_records(
        db, g.user, app, entity_key, query, exports.parse_format(request.args.get("format")),
        locale if locale in LOCALES else "en", header=exports.parse_header(request.args.get("header")),
        max_rows=exports.max_rows_setting(current_app.config))
    return export_response(exported, db)


@bp.post("/apps/<app_key>/records/<entity_key>")
@login_required
def records_create(app_key: str, entity_key: str):
    app = _app(app_key, Action.CREATE_RECORD)
    data = require(json_body(), "data", dict, 'send {"data": {"<field key>": <value>, ...}}')
    db = get_session()
    record = records.create(db, g.user, g.cause, app, entity_key, data, locale=request.args.get("locale", "en"))
    db.commit()
    return jsonify(record_json(record)), 201


@bp.get("/apps/<app_key>/records/<entity_key>/<int:record_id>")
@login_required
def records_get(app_key: str, entity_key: str, record_id: int):
    app = _app(app_key, Action.READ_RECORDS)
    return jsonify(record_json(records.get(get_session(), g.user, app, entity_key, record_id,
                                           include_deleted=True)))


@bp.patch("/apps/<app_key>/records/<entity_key>/<int:record_id>")
@login_required
def records_patch(app_key: str, entity_key: str, record_id: int):
    app = _app(app_key, Action.UPDATE_RECORD)
    body = json_body()
    version = require(body, "version", int, "send the record version you edited, as returned by GET")
    data = require(body, "data", dict, 'send {"version": <n>, "data": {"<field key>": <value>, ...}}')
    db = get_session()
    record = records.get(db, g.user, app, entity_key, record_id)
    records.update(db, g.user, g.cause, app, record, data, version, locale=request.args.get("locale", "en"))
    db.commit()
    return jsonify(record_json(record))


@bp.delete("/apps/<app_key>/records/<entity_key>/<int:record_id>")
@login_required
def records_delete(app_key: str, entity_key: str, record_id: int):
    app = _app(app_key, Action.DELETE_RECORD)
    db = get_session()
    record = records.delete(db, g.user, g.cause, app, records.get(db, g.user, app, entity_key, record_id))
    db.commit()
    return jsonify(record_json(record))


@bp.post("/apps/<app_key>/records/<entity_key>/<int:record_id>/restore")
@login_required
def records_restore(app_key: str, entity_key: str, record_id: int):
    app = _app(app_key, Action.DELETE_RECORD)
    db = get_session()
    record = records.get(db, g.user, app, entity_key, record_id, include_deleted=True)
    records.restore(db, g.user, g.cause, app, record)
    db.commit()
    return jsonify(record_json(record))


@bp.get("/apps/<app_key>/records/<entity_key>/<int:record_id>/history")
@login_required
def records_history(app_key: str, entity_key: str, record_id: int):
    app = _app(app_key, Action.READ_RECORDS)
    db = get_session()
    record = records.get(db, g.user, app, entity_key, record_id, include_deleted=True)
    return jsonify({"items": [change_json(c) for c in records.history(db, g.user, app, record)]})


@bp.get("/apps/<app_key>")
@login_required
def app_get(app_key: str):
    app = _app(app_key, Action.VIEW_APP)
    db = get_session()
    entities = [{"key": k, "label": text_of(catalog.entity(db, app, k).body["label"], request.args.get("locale", "en"))}
                for k in access.policy(db, g.user, app).readable_entities(catalog.entity_keys(db, app))]
    return jsonify({**app_json(app), "entities": entities})

"""REST API for records (``/api/v1``): the same services and checks as the HTML pages."""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from formloom.platform.api_common import BadRequest, int_arg, iso, json_body, require
from formloom.platform.auth import Action, visible_apps
from formloom.platform.db import get_session
from formloom.platform.models import App, ChangeLog, Record
from formloom.platform.web_auth import login_required
from formloom.runtime import catalog, listing, records
from formloom.runtime.fields import ID_LIMIT, describe_types
from formloom.runtime.labels import text_of

bp = Blueprint("runtime_api", __name__, url_prefix="/api/v1")


def record_json(record: Record) -> dict:
    return {"id": record.id, "entity": record.entity_key, "version": record.version,
            "entity_version": record.entity_version, "title": record.title, "data": record.data,
            "owner_id": record.owner_id, "created_at": iso(record.created_at),
            "updated_at": iso(record.updated_at), "deleted": record.deleted_at is not None}


def change_json(change: ChangeLog) -> dict:
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
    if not 1 <= version <= ID_LIMIT:  # beyond the database's integers: no record has it
        raise BadRequest(f"'version' must be the record version you edited, as returned by GET, got {version}.")
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
    entities = [{"key": k, "label": text_of(catalog.entity(get_session(), app, k).body["label"],
                                             request.args.get("locale", "en"))}
                for k in catalog.entity_keys(get_session(), app)]
    return jsonify({**app_json(app), "entities": entities})

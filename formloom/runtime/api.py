"""REST API for records (``/api/v1``): the same services and checks as the HTML pages."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy import select
from sqlalchemy.orm import Session

from formloom.platform.api_common import BadRequest, int_arg, iso, json_body, require
from formloom.platform.app import error_body
from formloom.platform.auth import Action, visible_apps
from formloom.platform.db import get_session
from formloom.platform.errors import Conflict, FormloomError
from formloom.platform.models import App, Record
from formloom.platform.web_auth import login_required
from formloom.runtime import access, catalog, exports, listing, pool, records, saved_views
from formloom.runtime.fields import ID_LIMIT, describe_types
from formloom.runtime.labels import LOCALES, text_of
from formloom.runtime.views import export_response

bp = Blueprint("runtime_api", __name__, url_prefix="/api/v1")

BATCH_MAX = 100  # items per batch call, creates and updates together


class BatchInvalid(FormloomError):
    http_status = 422
    code = "batch_invalid"


class BatchFailed(FormloomError):
    http_status = 422
    code = "batch_failed"


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
    view = request.args.get("view") or None
    query = listing.ListQuery(search=request.args.get("q", ""), view=view,
                              sort=request.args.get("sort") or ("" if view else "-updated_at"),
                              limit=int_arg("limit", 50, 1, current_app.config["API_PAGE_SIZE_MAX"]),
                              cursor=request.args.get("cursor") or None,
                              filters=listing.parse_filters(request.args, entity),
                              deleted=request.args.get("deleted") in ("1", "true"))
    page = listing.list_records(db, g.user, app, entity, query)
    return jsonify({"items": [record_json(r) for r in page.records], "total": page.total,
                    "next_cursor": page.next_cursor})


@bp.get("/apps/<app_key>/views")
@login_required
def views_list(app_key: str):
    """The saved views the caller is shown (``?entity=`` for one entity's), with their columns as they see them."""
    app = _app(app_key, Action.READ_RECORDS)
    db = get_session()
    rules = access.policy(db, g.user, app)
    found = saved_views.views_of(db, g.user, app, request.args.get("entity") or None)
    return jsonify({"items": [saved_views.view_json(v, rules.visible_entity(catalog.entity(db, app, v.entity_key)))
                              for v in found]})


@bp.get("/apps/<app_key>/records/<entity_key>/export")
@login_required
def records_export(app_key: str, entity_key: str):
    """Every record of the list the same parameters give (``q``, ``f.*``, ``sort``, ``deleted``) as a file."""
    app = _app(app_key, Action.EXPORT_RECORDS)
    db = get_session()
    access.policy(db, g.user, app).require(entity_key, access.RecordAction.EXPORT)
    entity = catalog.entity(db, app, entity_key)
    view = request.args.get("view") or None
    query = listing.ListQuery(search=request.args.get("q", ""), view=view,
                              sort=request.args.get("sort") or ("" if view else "-updated_at"),
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


@dataclass(frozen=True)
class BatchItem:
    op: str  # "create" or "update"
    index: int  # its place in the request's "create" or "update" list
    body: object


@bp.post("/apps/<app_key>/records/<entity_key>/batch")
@login_required
def records_batch(app_key: str, entity_key: str):
    """Create and update up to BATCH_MAX records, each as its single call would; 200 with one result each.

    Each item runs in a SAVEPOINT of its own: a failed item leaves no trace (record, change log,
    events) and the others are kept. With ``"atomic": true`` one failure undoes them all (422).
    """
    app = _app(app_key, Action.VIEW_APP)  # each item checks its own permission, as its single call does
    body = json_body()
    items, atomic = _batch_items(body)
    db = get_session()
    catalog.entity(db, app, entity_key)  # an unknown entity is one 404, not one per item
    locale = request.args.get("locale", "en")
    results = [_batch_item(db, app, entity_key, item, locale) for item in items]
    failed = sum(1 for r in results if "error" in r)
    if atomic and failed:
        db.rollback()
        message = (f"{failed} of {len(results)} item{'s' if len(results) != 1 else ''} failed, so nothing was "
                   f"saved (the batch is atomic); correct the items with an error and send the batch again.")
        return jsonify({**error_body(BatchFailed.code, message), "results": [_not_saved(r) for r in results],
                        "created": 0, "updated": 0, "failed": failed}), BatchFailed.http_status
    db.commit()
    return jsonify({"results": results, "created": sum(1 for r in results if r["status"] == 201),
                    "updated": sum(1 for r in results if r["op"] == "update" and r["status"] == 200),
                    "failed": failed})


def _batch_items(body: dict) -> tuple[list[BatchItem], bool]:
    """The items in request order (creates, then updates) and whether the batch is atomic."""
    hint = 'send {"create": [{"data": {...}}, ...], "update": [{"id": n, "version": v, "data": {...}}, ...]}'
    lists = {op: body.get(op, []) for op in ("create", "update")}
    for op, value in lists.items():
        if not isinstance(value, list):
            raise BatchInvalid(f"'{op}' must be a list of items: {hint}.")
    atomic = body.get("atomic", False)
    if not isinstance(atomic, bool):
        raise BatchInvalid("'atomic' must be true or false.")
    total = sum(len(v) for v in lists.values())
    if total == 0:
        raise BatchInvalid(f"The batch has no items: {hint}.")
    if total > BATCH_MAX:
        raise BatchInvalid(f"A batch holds at most {BATCH_MAX} items (creates and updates together); this one "
                           f"has {total}. Split it into several calls.")
    return [BatchItem(op, i, item) for op, value in lists.items() for i, item in enumerate(value)], atomic


def _batch_item(db: Session, app: App, entity_key: str, item: BatchItem, locale: str) -> dict:
    """Run one item in a SAVEPOINT; its result, or its error as the single call would answer it."""
    savepoint = db.begin_nested()
    try:
        status, record = _apply_item(db, app, entity_key, item, locale)
        savepoint.commit()
        return {"index": item.index, "op": item.op, "status": status, "record": record_json(record)}
    except FormloomError as exc:
        if not savepoint.is_active:
            # The service rolled back the whole transaction (a concurrent write it could not
            # recover from inside it): the items before this one are gone too.
            raise Conflict(f"{item.op.capitalize()} item {item.index} met a change made by another request at "
                           f"the same time, and nothing of this batch was saved; send the batch again (with a "
                           f"new Idempotency-Key if you sent one).") from exc
        savepoint.rollback()
        error = error_body(exc.code, exc.message, exc.field_messages(), **exc.extra())["error"]
        return {"index": item.index, "op": item.op, "status": exc.http_status, "error": error}


def _apply_item(db: Session, app: App, entity_key: str, item: BatchItem, locale: str) -> tuple[int, Record]:
    where = f"{item.op.capitalize()} item {item.index}"
    if not isinstance(item.body, dict):
        raise BadRequest(f"{where} must be an object.")
    if item.op == "create":
        data = require(item.body, "data", dict, f'{where}: send {{"data": {{"<field key>": <value>, ...}}}}')
        return 201, records.create(db, g.user, g.cause, app, entity_key, data, locale=locale)
    record_id = require(item.body, "id", int, f"{where}: send the id of the record to change")
    version = require(item.body, "version", int, f"{where}: send the record version you edited, as returned by GET")
    data = require(item.body, "data", dict, f'{where}: send {{"id": n, "version": v, "data": {{...}}}}')
    record = records.get(db, g.user, app, entity_key, record_id)
    # Lock the row and re-read its version (PostgreSQL; SQLite's writer already holds the
    # database): a concurrent change then shows as this item's version conflict, instead of a
    # failed UPDATE that the service answers by rolling back the whole batch.
    db.scalar(select(Record).where(Record.id == record.id).with_for_update()
              .execution_options(populate_existing=True))
    return 200, records.update(db, g.user, g.cause, app, record, data, version, locale=locale)


def _not_saved(result: dict) -> dict:
    """An item of a failed atomic batch that had no error of its own: valid, but undone."""
    if "error" in result:
        return result
    return {"index": result["index"], "op": result["op"], "status": 424, "error": {
        "code": "not_saved", "message": "This item was valid but is not saved, because another item of "
                                        "this atomic batch failed."}}


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
    db = get_session()
    entities = [{"key": k, "label": text_of(catalog.entity(db, app, k).body["label"], request.args.get("locale", "en"))}
                for k in access.policy(db, g.user, app).readable_entities(catalog.entity_keys(db, app))]
    return jsonify({**app_json(app), "entities": entities})


@bp.get("/apps/<app_key>/pool/<entity_key>")
@login_required
def pool_list(app_key: str, entity_key: str):
    """The records of the entity's public pool the caller may read (newest first, at most 200)."""
    app = _app(app_key, Action.READ_RECORDS)
    found = pool.in_pool(get_session(), g.user, app, entity_key)
    return jsonify({"items": [record_json(r) for r in found]})


@bp.post("/apps/<app_key>/records/<entity_key>/<int:record_id>/claim")
@login_required
def records_claim(app_key: str, entity_key: str, record_id: int):
    """Take a record from the public pool; 409 ``already_claimed`` when someone was faster."""
    app = _app(app_key, Action.UPDATE_RECORD)
    db = get_session()
    record = pool.record_to_claim(db, g.user, app, entity_key, record_id)
    pool.claim(db, g.user, g.cause, app, record)
    db.commit()
    return jsonify(record_json(record))


@bp.post("/apps/<app_key>/records/<entity_key>/<int:record_id>/return")
@login_required
def records_return(app_key: str, entity_key: str, record_id: int):
    """Give a record back to the public pool: ``{"reason": "..."}``."""
    app = _app(app_key, Action.UPDATE_RECORD)
    body = json_body()
    reason = require(body, "reason", str, 'send {"reason": "why it goes back to the pool"}')
    db = get_session()
    record = records.get(db, g.user, app, entity_key, record_id)
    pool.give_back(db, g.user, g.cause, app, record, reason)
    db.commit()
    return jsonify(record_json(record))

"""REST API for imports: start one (a file or JSON rows), read its progress and report, roll it back."""
from __future__ import annotations

import json

from flask import Blueprint, current_app, g, jsonify, request
from sqlalchemy.orm import Session

from formloom.platform.api_common import BadRequest, iso
from formloom.platform.auth import Action
from formloom.platform.db import get_session
from formloom.platform.models import App, ImportBatch
from formloom.platform.web_auth import login_required
from formloom.runtime import catalog, dispatch, imports
from formloom.runtime.import_files import Table, cell_text

bp = Blueprint("imports_api", __name__, url_prefix="/api/v1")


def batch_json(batch: ImportBatch, only_errors: bool = False) -> dict:
    options = batch.options or {}
    results = batch.results
    if results is not None and only_errors:
        results = [r for r in results if r["action"] == "error"]
    return {"id": batch.id, "entity": batch.entity_key, "file_name": batch.file_name, "status": batch.status,
            "user_id": batch.user_id, "created_at": iso(batch.created_at), "finished_at": iso(batch.finished_at),
            "progress": {"done": batch.done, "total": batch.total}, "counts": batch.counts,
            "options": {k: options.get(k) for k in ("mapping", "match", "automation", "all_or_nothing", "ignored")},
            "message": batch.message, "rolled_back_at": iso(batch.rolled_back_at), "results": results}


def launch(db: Session, batch: ImportBatch) -> bool:
    """Run a small batch now (True), or hand a large one to the queue (False); commits either way."""
    if batch.total <= int(current_app.config.get("IMPORT_INLINE_ROWS", 1000)):
        imports.run(db, g.user, batch)
        db.commit()
        return True
    db.commit()
    dispatch.enqueue_import(current_app._get_current_object(), batch.id)
    return False


def _flag(value: object, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("1", "true", "yes", "on"):
        return True
    if str(value).lower() in ("0", "false", "no", "off"):
        return False
    raise BadRequest(f"'{name}' must be true or false, got '{value}'.")


def _request_table() -> tuple[Table, str, dict]:
    """The rows to import and the options: a multipart upload (``file``) or a JSON body (``rows``)."""
    upload = request.files.get("file")
    if upload is not None:
        options = dict(request.form)
        mapping = options.get("mapping")
        if mapping:
            try:
                options["mapping"] = json.loads(mapping)
            except ValueError:
                raise BadRequest("'mapping' must be a JSON object of column → field key, e.g. "
                                 '{"E-mail": "email"}.') from None
        return imports.read_table(upload.read(), upload.filename or ""), upload.filename or "", options
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("rows"), list):
        raise BadRequest("Send the file as multipart form data ('file'), or a JSON object with 'rows': "
                         '[{"<column>": <value>, ...}, ...].')
    rows = body["rows"]
    if not all(isinstance(row, dict) for row in rows):
        raise BadRequest("Each item of 'rows' must be an object of column → value.")
    header = list(dict.fromkeys(str(k) for row in rows for k in row))
    table = Table(header, [{"line": number, "values": {str(k): _text(v) for k, v in row.items()}}
                           for number, row in enumerate(rows, start=2)])
    return table, str(body.get("file_name") or ""), body


def _text(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value)
    return cell_text(value)


def options_from(raw: dict) -> imports.ImportOptions:
    mapping = raw.get("mapping")
    if mapping is not None and (not isinstance(mapping, dict) or
                                not all(isinstance(v, str | None) for v in mapping.values())):
        raise BadRequest("'mapping' must be an object of column → field key (\"\" to ignore a column).")
    match = raw.get("match") or None
    if match is not None and not isinstance(match, str):
        raise BadRequest("'match' must be a field key, e.g. \"email\".")
    return imports.ImportOptions({k: v or "" for k, v in mapping.items()} if mapping is not None else None,
                                 match, _flag(raw.get("automation"), "automation", True),
                                 _flag(raw.get("all_or_nothing"), "all_or_nothing", False),
                                 request.args.get("locale", "en"))


def _app(app_key: str) -> App:
    return catalog.authorized_app(get_session(), g.user, app_key, Action.IMPORT_RECORDS)


@bp.post("/apps/<app_key>/imports/<entity_key>")
@login_required
def import_start(app_key: str, entity_key: str):
    """Start an import: 201 with the report when it ran at once, 202 when it was queued."""
    app = _app(app_key)
    db = get_session()
    table, file_name, raw = _request_table()
    batch = imports.start(db, g.user, app, entity_key, table, options_from(raw), file_name=file_name,
                          dry_run=_flag(raw.get("dry_run"), "dry_run", False),
                          max_rows=int(current_app.config.get("IMPORT_MAX_ROWS", 200_000)))
    finished = launch(db, batch)
    return jsonify(batch_json(batch)), 201 if finished else 202


@bp.get("/apps/<app_key>/imports")
@login_required
def import_list(app_key: str):
    db = get_session()
    found = imports.batches(db, g.user, _app(app_key))
    return jsonify({"items": [{k: v for k, v in batch_json(b).items() if k != "results"} for b in found]})


@bp.get("/apps/<app_key>/imports/<int:batch_id>")
@login_required
def import_get(app_key: str, batch_id: int):
    db = get_session()
    batch = imports.get_batch(db, g.user, _app(app_key), batch_id)
    return jsonify(batch_json(batch, only_errors=request.args.get("only") == "errors"))


@bp.post("/apps/<app_key>/imports/<int:batch_id>/commit")
@login_required
def import_commit(app_key: str, batch_id: int):
    """Import the rows of a dry run with its options."""
    db = get_session()
    app = _app(app_key)
    batch = imports.commit_checked(db, g.user, imports.get_batch(db, g.user, app, batch_id))
    finished = launch(db, batch)
    return jsonify(batch_json(batch)), 201 if finished else 202


@bp.post("/apps/<app_key>/imports/<int:batch_id>/rollback")
@login_required
def import_rollback(app_key: str, batch_id: int):
    db = get_session()
    app = _app(app_key)
    body = request.get_json(silent=True) or {}
    force = _flag(body.get("force") if isinstance(body, dict) else None, "force", False)
    counts = imports.rollback(db, g.user, imports.get_batch(db, g.user, app, batch_id), force=force)
    db.commit()
    batch = imports.get_batch(db, g.user, app, batch_id)
    return jsonify({**batch_json(batch), "rolled_back": counts})

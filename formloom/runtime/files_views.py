"""Uploading and downloading files: ``POST /api/v1/apps/<app>/files`` and the download links."""
from __future__ import annotations

import os

from flask import Blueprint, current_app, g, jsonify, request, send_file, url_for

from formloom.platform.api_common import BadRequest, int_arg
from formloom.platform.auth import Action
from formloom.platform.db import get_session
from formloom.platform.errors import NotFound
from formloom.platform.storage import storage_for
from formloom.platform.web_auth import login_required
from formloom.runtime import catalog, files

bp = Blueprint("files", __name__)

DEFAULT_MAX_MB = 20  # the largest upload when the FILES_MAX_MB setting is absent


@bp.url_value_preprocessor
def _form_limits(endpoint: str | None, _values: dict | None) -> None:
    # Runs before the form is first parsed (the CSRF check reads it): a signature data URL is a
    # plain form field and may be larger than the default limit for such fields.
    if endpoint == "files.upload":
        request.max_form_memory_size = files.SIGNATURE_MAX_BYTES * 4 // 3 + 64 * 1024


def download_url(app_key: str, stored) -> str:
    return url_for("files.download", app_key=app_key, file_id=stored.id, name=stored.name)


@bp.get("/apps/<app_key>/files/<int:file_id>/<path:name>")
@login_required
def download(app_key: str, file_id: int, name: str):
    """The file's bytes: images (PNG, JPEG, GIF, WebP) inline, everything else as a download."""
    db = get_session()
    app = catalog.authorized_app(db, g.user, app_key, Action.READ_RECORDS)
    stored = files.get_file(db, g.user, app, file_id)
    try:
        stream = storage_for(current_app).open(stored.storage_key)
    except FileNotFoundError:
        current_app.logger.error("File %s of app %s is missing from the storage", stored.id, app.key)
        raise NotFound(f"The content of {stored.name} is missing; upload it again.") from None
    inline = stored.content_type in files.INLINE_IMAGE_TYPES
    response = send_file(stream, mimetype=stored.content_type, as_attachment=not inline,
                         download_name=stored.name, etag=stored.sha256, conditional=True)
    if response.status_code == 200:
        response.content_length = stored.size
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@bp.post("/api/v1/apps/<app_key>/files")
@login_required
def upload(app_key: str):
    """Store one file (multipart field ``file``) or one signature (field ``signature``).

    Query parameters: ``images_only=1`` (PNG, JPEG, GIF, WebP only), ``max_mb=`` (a lower limit
    than the server's), ``accept=.pdf,.docx,image/*``. Answers 201 with the file's JSON.
    """
    db = get_session()
    app = catalog.authorized_app(db, g.user, app_key, Action.CREATE_RECORD)
    storage = storage_for(current_app)
    upload_file = request.files.get("file")
    if upload_file is not None:
        ceiling = int(current_app.config.get("FILES_MAX_MB") or DEFAULT_MAX_MB)
        rules = files.FileRules(
            max_bytes=int_arg("max_mb", ceiling, 1, ceiling) * files.MB,
            accept=tuple(a.strip() for a in request.args.get("accept", "").split(",") if a.strip()),
            images_only=request.args.get("images_only", "").lower() in ("1", "true", "yes"))
        data = upload_file.stream.read(rules.max_bytes + 1)
        size = _full_size(upload_file.stream) if len(data) > rules.max_bytes else None
        stored = files.save_upload(db, storage, app, g.user, upload_file.filename or "", data,
                                   upload_file.mimetype, rules, size=size)
    else:
        signature = request.form.get("signature")
        if signature is None and request.is_json:
            body = request.get_json(silent=True)
            signature = body.get("signature") if isinstance(body, dict) else None
        if not signature:
            raise BadRequest("Send the file as multipart/form-data in a field named 'file', or a "
                             "signature as a 'data:image/png;base64,...' URL in a field named 'signature'.")
        stored = files.save_signature(db, storage, app, g.user, signature)
    db.commit()
    return jsonify({**files.file_value(stored), "url": download_url(app.key, stored)}), 201


def _full_size(stream) -> int | None:
    """The size of an upload that was read only in part (None when the stream cannot tell)."""
    try:
        stream.seek(0, os.SEEK_END)
        return stream.tell()
    except (AttributeError, OSError, ValueError):
        return None

"""REST API for bundles (``/api/v1``): export an app's definitions, import them as a new app."""
from __future__ import annotations

from flask import Blueprint, current_app, g, jsonify, request

from formloom.builder import bundles
from formloom.platform.api_common import BadRequest
from formloom.platform.auth import Action, authorize
from formloom.platform.db import get_session
from formloom.platform.errors import FormloomError
from formloom.platform.web_auth import login_required
from formloom.runtime import catalog
from formloom.runtime.api import app_json

bp = Blueprint("bundles_api", __name__, url_prefix="/api/v1")

DEFAULT_MAX_MB = 10  # the largest bundle when the BUNDLE_MAX_MB setting is absent
MB = 1024 * 1024


class BundleTooLarge(FormloomError):
    http_status = 413
    code = "too_large"


def _max_bytes() -> int:
    limit = int(current_app.config.get("BUNDLE_MAX_MB") or DEFAULT_MAX_MB) * MB
    overall = current_app.config.get("MAX_CONTENT_LENGTH")
    return min(limit, overall) if overall else limit


@bp.url_value_preprocessor
def _body_limit(endpoint: str | None, _values: dict | None) -> None:
    # Before anything reads the body (the CSRF check may): the app sets no overall limit.
    if endpoint == "bundles_api.app_import":
        request.max_content_length = _max_bytes()


@bp.get("/apps/<app_key>/export")
@login_required
def app_export(app_key: str):
    """The app's bundle, as a download named ``<app>-definitions.json``."""
    db = get_session()
    app = catalog.authorized_app(db, g.user, app_key, Action.READ_DEFINITIONS)
    response = jsonify(bundles.export_app(db, app))
    response.headers["Content-Disposition"] = f'attachment; filename="{app.key}-definitions.json"'
    return response


@bp.post("/apps/import")
@login_required
def app_import():
    """Create a new app from the bundle in the body (``?key=`` renames it); 201 with the app."""
    db = get_session()
    authorize(db, g.user, Action.MANAGE_APPS)
    limit = _max_bytes()
    if request.content_length is not None and request.content_length > limit:
        raise BundleTooLarge(f"The bundle is {request.content_length / MB:.1f} MB; the limit is {limit // MB} MB "
                             f"(setting BUNDLE_MAX_MB).")
    bundle = request.get_json(silent=True)
    if bundle is None:
        raise BadRequest("The request body must be a bundle in JSON (Content-Type: application/json), "
                         "as GET /api/v1/apps/{app}/export answers it.")
    key = request.args.get("key") or None
    app = bundles.import_bundle(db, g.user, bundle, app_key=key)
    db.commit()
    return jsonify({**app_json(app), "definitions": bundles.published_counts(db, app)}), 201

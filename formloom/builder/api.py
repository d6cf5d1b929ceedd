"""REST API for apps and definitions (``/api/v1``): drafts, checks, publishing, versions."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from formloom.builder import definitions
from formloom.platform.api_common import BadRequest, iso, json_body, require
from formloom.platform.auth import Action, authorize
from formloom.platform.db import get_session
from formloom.platform.models import App, Definition, DefinitionVersion
from formloom.platform.web_auth import login_required
from formloom.runtime import catalog
from formloom.runtime.api import app_json

bp = Blueprint("builder_api", __name__, url_prefix="/api/v1")


def _app(app_key: str, action: Action) -> App:
    return catalog.authorized_app(get_session(), g.user, app_key, action)


def definition_json(definition: Definition, include_bodies: bool = False) -> dict:
    out = {"kind": definition.kind, "key": definition.key, "published_version": definition.published_version,
           "has_draft": definition.draft is not None, "draft_updated_at": iso(definition.draft_updated_at)}
    if include_bodies:
        db = get_session()
        published = catalog.published_version(db, db.get(App, definition.app_id), definition.kind, definition.key)
        out["published"] = published.body if published else None
        out["draft"] = definition.draft
    return out


def version_json(version: DefinitionVersion, with_body: bool = True) -> dict:
    out = {"version": version.version, "checksum": version.checksum, "published_at": iso(version.published_at),
           "published_by": version.published_by}
    if with_body:
        out["body"] = version.body
    return out


def problems_json(problems) -> list[dict]:
    return [{"path": p.path, "message": p.message} for p in problems]


@bp.post("/apps")
@login_required
def apps_create():
    authorize(get_session(), g.user, Action.MANAGE_APPS)
    body = json_body()
    key = require(body, "key", str, "a snake_case key such as 'crm'")
    label = body.get("label") or key
    db = get_session()
    app = definitions.create_app(db, g.user, key, label, body.get("description"))
    db.commit()
    return jsonify(app_json(app)), 201


@bp.get("/apps/<app_key>/definitions")
@login_required
def definitions_list(app_key: str):
    app = _app(app_key, Action.READ_DEFINITIONS)
    rows = definitions.list_definitions(get_session(), app, request.args.get("kind") or None)
    return jsonify({"items": [definition_json(d) for d in rows]})


@bp.get("/apps/<app_key>/definitions/<kind>/<key>")
@login_required
def definition_get(app_key: str, kind: str, key: str):
    app = _app(app_key, Action.READ_DEFINITIONS)
    return jsonify(definition_json(definitions.get(get_session(), app, kind, key), include_bodies=True))


@bp.put("/apps/<app_key>/definitions/<kind>/<key>")
@login_required
def definition_save(app_key: str, kind: str, key: str):
    app = _app(app_key, Action.WRITE_DEFINITIONS)
    db = get_session()
    definition, problems = definitions.save_draft(db, g.user, app, kind, key, json_body())
    db.commit()
    return jsonify({**definition_json(definition), "valid": not problems, "problems": problems_json(problems)})


@bp.post("/apps/<app_key>/definitions/<kind>/<key>/check")
@login_required
def definition_check(app_key: str, kind: str, key: str):
    app = _app(app_key, Action.WRITE_DEFINITIONS)
    problems = definitions.check(get_session(), app, kind, key, json_body())
    return jsonify({"valid": not problems, "problems": problems_json(problems)})


@bp.post("/apps/<app_key>/definitions/<kind>/<key>/publish")
@login_required
def definition_publish(app_key: str, kind: str, key: str):
    app = _app(app_key, Action.WRITE_DEFINITIONS)
    db = get_session()
    options = request.get_json(silent=True) or {}
    moves = options.get("stage_moves") if isinstance(options, dict) else None
    if moves is not None and not (isinstance(moves, dict) and all(isinstance(v, str) for v in moves.values())):
        raise BadRequest('\'stage_moves\' must map removed stage keys to stage keys, like {"negotiation": "proposal"}.')
    version = definitions.publish(db, g.user, app, kind, key, stage_moves=moves)
    db.commit()
    return jsonify(version_json(version))


@bp.delete("/apps/<app_key>/definitions/<kind>/<key>/draft")
@login_required
def definition_discard(app_key: str, kind: str, key: str):
    app = _app(app_key, Action.WRITE_DEFINITIONS)
    db = get_session()
    definitions.discard_draft(db, app, kind, key)
    db.commit()
    return jsonify({"discarded": True})


@bp.get("/apps/<app_key>/definitions/<kind>/<key>/versions")
@login_required
def definition_versions(app_key: str, kind: str, key: str):
    app = _app(app_key, Action.READ_DEFINITIONS)
    db = get_session()
    rows = definitions.versions(db, definitions.get(db, app, kind, key))
    return jsonify({"items": [version_json(v, with_body=False) for v in rows]})

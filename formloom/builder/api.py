"""REST API for apps and definitions (``/api/v1``): drafts, checks, publishing, versions."""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from formloom.builder import definitions, diff, impact
from formloom.builder.keys import suggest_key
from formloom.platform.api_common import BadRequest, iso, json_body, require
from formloom.platform.auth import Action, authorize
from formloom.platform.db import get_session
from formloom.platform.errors import NotFound
from formloom.platform.models import App, Definition, DefinitionVersion
from formloom.platform.web_auth import login_required
from formloom.runtime import catalog
from formloom.runtime.api import app_json
from formloom.runtime.fields import ID_LIMIT

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
           "published_by": version.published_by, "note": version.note, "impact": version.impact}
    if with_body:
        out["body"] = version.body
    return out


def _version_number(kind: str, key: str, number: int) -> int:
    """``number``, when a version can have it (versions are 32-bit integers in the database)."""
    if not 1 <= number <= ID_LIMIT:
        raise NotFound(f"The {kind} '{key}' has no version {number}.")
    return number


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
    """Publish the draft: ``{"impact": {"<impact id>": {"action": "migrate", "to": ...}}, "stage_moves": {...},
    "note": "..."}`` (all optional). Every impact on live data needs a choice; while one is missing the
    422 error carries ``impacts`` (counts, choices, targets) for the admin to decide."""
    app = _app(app_key, Action.WRITE_DEFINITIONS)
    db = get_session()
    options = request.get_json(silent=True)
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise BadRequest('The body must be a JSON object such as {"impact": {...}, "stage_moves": {...}}, or empty.')
    moves = options.get("stage_moves")
    if moves is not None and not (isinstance(moves, dict) and all(isinstance(v, str) for v in moves.values())):
        raise BadRequest('\'stage_moves\' must map removed stage keys to stage keys, like {"negotiation": "proposal"}.')
    choices = impact_choices(options)
    note = options.get("note")
    if note is not None and not (isinstance(note, str) and len(note) <= 500 and "\x00" not in note):
        raise BadRequest("'note' must be text of at most 500 characters.")
    version = definitions.publish(db, g.user, app, kind, key, stage_moves=moves, impact_choices=choices,
                                  note=note or None)
    db.commit()
    return jsonify(version_json(version))


def impact_choices(options: dict) -> dict:
    """The admin's choices for the impacts of a publish or rollback (none given: none chosen)."""
    choices = options.get("impact")
    choices = {} if choices is None else choices
    example = '{"option_removed:deal.tier.vip": {"action": "migrate", "to": "gold"}}'
    if not isinstance(choices, dict):
        raise BadRequest(f"'impact' must map impact ids to choices, like {example}.")
    for impact_id, choice in choices.items():
        if not isinstance(choice, dict) or choice.get("action") not in impact.CHOICES:
            raise BadRequest(f"'impact.{impact_id}' must be an object with \"action\": migrate, block or proceed "
                             f"(and \"to\" or \"value\" to migrate), like {example}.")
        extra = set(choice) - {"action", "to", "value"}
        if extra:
            raise BadRequest(f"'impact.{impact_id}' has unknown key{'s' if len(extra) > 1 else ''} "
                             f"{', '.join(sorted(extra))}; a choice has only action, to and value.")
    return choices


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


@bp.post("/key-suggestion")
@login_required
def key_suggestion():
    """A snake_case key for a label (Chinese in pinyin) that is not among ``taken``."""
    body = json_body()
    label = body.get("label")
    taken = body.get("taken", [])
    if not isinstance(label, str) or not isinstance(taken, list) or not all(isinstance(t, str) for t in taken):
        raise BadRequest("Send {\"label\": \"Deal amount\", \"taken\": [\"existing_key\", ...]}.")
    fallback = body.get("fallback")
    if fallback not in KEY_FALLBACKS:
        fallback = "field"
    return jsonify({"key": suggest_key(label, taken, fallback)})


KEY_FALLBACKS = ("field", "option", "stage", "app", "entity", "form", "rule", "pipeline")


@bp.get("/apps/<app_key>/definitions/<kind>/<key>/versions/<int:number>")
@login_required
def definition_version(app_key: str, kind: str, key: str, number: int):
    app = _app(app_key, Action.READ_DEFINITIONS)
    db = get_session()
    definition = definitions.get(db, app, kind, key)
    return jsonify(version_json(definitions.version(db, definition, _version_number(kind, key, number))))


@bp.get("/apps/<app_key>/definitions/<kind>/<key>/diff")
@login_required
def definition_diff(app_key: str, kind: str, key: str):
    """What changed between two versions: ``?from=2&to=3``; ``to`` defaults to the draft."""
    app = _app(app_key, Action.READ_DEFINITIONS)
    db = get_session()
    definition = definitions.get(db, app, kind, key)
    sides = []
    for name in ("from", "to"):
        raw = request.args.get(name) or ("draft" if name == "to" else str(definition.published_version or 0))
        if raw == "draft":
            sides.append(definitions.current_body(db, definition))
        elif raw.isascii() and raw.isdigit():  # not '²': str.isdigit takes it, int() does not
            number = int(raw)
            sides.append(definitions.version(db, definition, _version_number(kind, key, number)).body
                         if number else None)
        else:
            raise BadRequest(f"'{name}' must be a version number or 'draft'.")
    locale = request.args.get("locale", "en")
    items = diff.changes(kind, sides[0], sides[1])
    return jsonify({"changes": [{"code": c.code, "path": c.path, "subject": c.subject,
                                 "text": c.describe(locale)} for c in items]})


@bp.get("/apps/<app_key>/definitions/<kind>/<key>/impact")
@login_required
def definition_impact(app_key: str, kind: str, key: str):
    """What publishing the draft would do to live records, counted now."""
    app = _app(app_key, Action.WRITE_DEFINITIONS)
    return jsonify({"impacts": [i.to_json() for i in impact.preview(get_session(), app, kind, key)]})


@bp.post("/apps/<app_key>/definitions/<kind>/<key>/rollback")
@login_required
def definition_rollback(app_key: str, kind: str, key: str):
    """Publish an earlier version again as a new version: ``{"version": 3, "impact": {...}}``."""
    app = _app(app_key, Action.WRITE_DEFINITIONS)
    body = json_body()
    number = _version_number(kind, key, require(body, "version", int, "the version number to return to"))
    choices = impact_choices(body)
    db = get_session()
    version = definitions.rollback(db, g.user, app, kind, key, number, impact_choices=choices)
    db.commit()
    return jsonify(version_json(version)), 201


@bp.post("/apps/<app_key>/definitions/<kind>/<key>/try")
@login_required
def definition_try(app_key: str, kind: str, key: str):
    """Validate values against the draft entity or form, as a rep's submission would be; nothing is saved."""
    from formloom.platform.errors import RecordValidationError

    app = _app(app_key, Action.WRITE_DEFINITIONS)
    db = get_session()
    entity, form_body = definitions.draft_form(db, app, kind, key)
    try:
        document = definitions.try_values(entity, form_body, json_body(), g.user.id, request.args.get("locale", "en"))
    except RecordValidationError as exc:
        return jsonify({"valid": False, "errors": exc.fields}), 422
    return jsonify({"valid": True, "values": document})

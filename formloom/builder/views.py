"""The builder's pages: the admin area of an app, the editors, previews and version history.

The editors are plain ES2020 (``static/builder*.js``) working on the definition as JSON; every
save, check, publish and rollback goes through the same REST API integrators use.
"""
from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint, abort, flash, g, make_response, redirect, render_template, request, url_for
from sqlalchemy import func, select

from formloom.builder import definitions, diff
from formloom.builder.checks import KINDS_AVAILABLE
from formloom.builder.keys import suggest_key
from formloom.platform.app import CONTENT_SECURITY_POLICY
from formloom.platform.auth import Action, authorize, can
from formloom.platform.db import get_session
from formloom.platform.errors import DefinitionError, FormloomError, RecordValidationError
from formloom.platform.models import App, AppMember, AppRole, User
from formloom.platform.web_auth import login_required
from formloom.runtime import catalog
from formloom.runtime.access import ACCESS_KEY, BUILT_IN, WHEN_OPERATORS_BY_KIND
from formloom.runtime.compiler import field_kinds
from formloom.runtime.conditions import OPERATORS_BY_KIND
from formloom.runtime.fields import FIELD_TYPES, describe_types
from formloom.runtime.forms import attr_name, compile_form, form_values, initial_data
from formloom.runtime.i18n import current_locale
from formloom.runtime.labels import text_of
from formloom.runtime.validation import Situation, defaults

bp = Blueprint("builder", __name__, template_folder="templates")

EDITABLE_KINDS = ("entity", "form", "pipeline", "rule", "access", "view")
KIND_TITLES = {"app": "App settings", "entity": "Entities", "form": "Forms", "pipeline": "Pipelines",
               "rule": "Rules", "access": "Access", "view": "Views", "commission": "Commission plans",
               "dashboard": "Dashboards"}
# The built-in roles by name. An access definition starts from all but the admin's, which cannot
# be restricted (formloom/runtime/access.py).
ROLE_LABELS = {AppRole.ADMIN.value: {"en": "App admin", "zh-CN": "应用管理员"},
               AppRole.REP.value: {"en": "Rep", "zh-CN": "业务员"},
               AppRole.MANAGER.value: {"en": "Manager", "zh-CN": "经理"},
               AppRole.VIEWER.value: {"en": "Viewer", "zh-CN": "查看者"}}
STARTER_ROLES = (AppRole.REP.value, AppRole.MANAGER.value, AppRole.VIEWER.value)


def _admin_app(app_key: str) -> App:
    return catalog.authorized_app(get_session(), g.user, app_key, Action.WRITE_DEFINITIONS)


def _kind(kind: str) -> str:
    if kind not in KINDS_AVAILABLE:
        abort(404, f"There is no definition kind '{kind}'; kinds are: {', '.join(KINDS_AVAILABLE)}.")
    return kind


@bp.route("/apps/new", methods=["GET", "POST"])
@login_required
def app_new():
    db = get_session()
    authorize(db, g.user, Action.MANAGE_APPS)
    form = {"label_en": "", "label_zh": "", "key": ""}
    error = None
    if request.method == "POST":
        form = {name: request.form.get(name, "").strip() for name in form}
        label = _label(form["label_en"], form["label_zh"])
        if not label:
            error = "Give the app a name (in English, Chinese or both)."
        else:
            key = form["key"] or suggest_key(text_of(label, "en"), db.scalars(select(App.key)), "app")
            try:
                app = definitions.create_app(db, g.user, key, label)
                db.commit()
                flash(f"App '{text_of(label, current_locale())}' created. Add its first entity.", "success")
                return redirect(url_for("builder.admin", app_key=app.key))
            except FormloomError as exc:
                db.rollback()
                error = exc.message
    return render_template("builder_app_new.html", form=form, error=error), 422 if error else 200


@bp.route("/apps/import", methods=["GET", "POST"])
@login_required
def app_import():
    """Create an app from a definitions file exported by another installation."""
    import json

    from formloom.builder import bundles

    db = get_session()
    authorize(db, g.user, Action.MANAGE_APPS)
    error, problems, key = None, [], request.form.get("key", "").strip()
    if request.method == "POST":
        upload = request.files.get("bundle")
        try:
            if upload is None or not upload.filename:
                raise FormloomError("Choose the exported definitions file (.json) to import.")
            try:
                bundle = json.loads(upload.read().decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                raise FormloomError(f"'{upload.filename}' is not a JSON file ({exc}); export the app again.") from None
            app = bundles.import_bundle(db, g.user, bundle, app_key=key or None)
            db.commit()
            flash(f"App '{text_of(app.label, current_locale())}' imported.", "success")
            return redirect(url_for("builder.admin", app_key=app.key))
        except DefinitionError as exc:
            db.rollback()
            error, problems = exc.message, exc.problems
        except FormloomError as exc:
            db.rollback()
            error = exc.message
    return render_template("builder_import.html", error=error, problems=problems, key=key), 422 if error else 200


def _label(en: str, zh: str) -> str | dict:
    """A label as the definitions hold it: a plain string, or a map when both languages are given."""
    if en and zh:
        return {"en": en, "zh-CN": zh}
    return en or ({"zh-CN": zh} if zh else "")


@bp.route("/apps/<app_key>/admin/")
@login_required
def admin(app_key: str):
    app = _admin_app(app_key)
    db = get_session()
    query = request.args.get("q", "").strip()
    locale = current_locale()
    groups = []
    for kind in ("app", *EDITABLE_KINDS, "commission", "dashboard"):  # commission plans and dashboards: edited as JSON
        rows = []
        for definition in definitions.list_definitions(db, app, kind):
            body = definitions.current_body(db, definition) or {}
            title = text_of(body.get("label"), locale) or definition.key
            if query and query.lower() not in f"{title} {definition.key}".lower():
                continue
            rows.append({"definition": definition, "title": title, "entity": body.get("entity"),
                         "count": len(body.get("fields") or body.get("stages") or body.get("sections")
                                      or body.get("roles") or [])})
        groups.append((kind, KIND_TITLES[kind], rows))
    return render_template("builder_admin.html", app=app, groups=groups, query=query,
                           entities=catalog.entity_keys(db, app),
                           has_access=catalog.get_definition(db, app, "access", ACCESS_KEY) is not None)


@bp.route("/apps/<app_key>/admin/<kind>/new", methods=["GET", "POST"])
@login_required
def definition_new(app_key: str, kind: str):
    app = _admin_app(app_key)
    kind = _kind(kind)
    if kind == "app":
        abort(404)
    if kind == "access":
        return _set_up_access(app)
    db = get_session()
    ctx = definitions.app_context(db, app)
    taken = {d.key for d in definitions.list_definitions(db, app, kind)}
    form = {"label_en": "", "label_zh": "", "key": "", "entity": request.args.get("entity", "")}
    error = None
    if request.method == "POST":
        form = {name: request.form.get(name, "").strip() for name in form}
        label = _label(form["label_en"], form["label_zh"])
        key = form["key"] or suggest_key(text_of(label, "en") or text_of(label, "zh-CN"), taken, kind)
        try:
            if not label:
                raise FormloomError(f"Give the {kind} a name (in English, Chinese or both).")
            if key in taken:
                raise FormloomError(f"The {kind} key '{key}' is taken; choose another.")
            body = starter(kind, key, label, form["entity"], ctx.entities)
            definitions.save_draft(db, g.user, app, kind, key, body)
            db.commit()
            return redirect(url_for("builder.editor", app_key=app.key, kind=kind, key=key))
        except FormloomError as exc:
            db.rollback()
            error = exc.message
    return render_template("builder_new.html", app=app, kind=kind, form=form, error=error,
                           entities=sorted(ctx.entities.items())), 422 if error else 200


def _set_up_access(app: App):
    """The app's access definition has no name or key to choose: set it up, or open it if it exists."""
    db = get_session()
    if request.method == "POST" and catalog.get_definition(db, app, "access", ACCESS_KEY) is None:
        definitions.save_draft(db, g.user, app, "access", ACCESS_KEY, access_starter())
        db.commit()
    if catalog.get_definition(db, app, "access", ACCESS_KEY) is None:
        return redirect(url_for("builder.admin", app_key=app.key) + "#group-access")
    return redirect(url_for("builder.editor", app_key=app.key, kind="access", key=ACCESS_KEY))


def access_starter() -> dict:
    """The first access draft: the built-in roles' powers written out, so it starts from what is in force."""
    return {"formloom": 1, "kind": "access", "key": ACCESS_KEY, "label": {"en": "Access", "zh-CN": "权限"},
            "roles": [{"key": role, "label": ROLE_LABELS[role], **copy.deepcopy(BUILT_IN[role])}
                      for role in STARTER_ROLES]}


def starter(kind: str, key: str, label: str | dict, entity: str, entities: dict[str, dict]) -> dict:
    """The first draft of a new definition: small, valid where it can be, ready to edit."""
    body: dict[str, Any] = {"formloom": 1, "kind": kind, "key": key, "label": label}
    if kind == "entity":
        body["fields"] = [{"key": "name", "type": "text", "label": {"en": "Name", "zh-CN": "名称"}, "required": True}]
        body["title_field"] = "name"
        return body
    if entity not in entities:
        raise FormloomError(f"Choose the entity this {kind} is for.")
    fields = entities[entity].get("fields") or []
    body["entity"] = entity
    if kind == "form":
        body["sections"] = [{"label": entities[entity]["label"], "fields": [f["key"] for f in fields]}]
    elif kind == "pipeline":
        stage = next((f for f in fields if f.get("type") == "select"), None)
        if stage is None:
            raise FormloomError(f"A pipeline moves records through the options of a single-choice field; "
                                f"add one to '{entity}' first.")
        body["stage_field"] = stage["key"]
        body["stages"] = [{"key": o["value"], "label": o["label"]} for o in stage.get("options", [])]
    elif kind == "rule":
        body["enabled"] = False
        body["trigger"] = {"type": "created"}
        body["actions"] = [{"type": "notify", "to": {"owner": True}, "title": label}]
    elif kind == "view":
        body["columns"] = [f["key"] for f in fields[:6]]
        body["sort"] = "-updated_at"
    return body


@bp.route("/apps/<app_key>/admin/<kind>/<key>/")
@login_required
def editor(app_key: str, kind: str, key: str):
    app = _admin_app(app_key)
    kind = _kind(kind)
    db = get_session()
    definition = definitions.get(db, app, kind, key)
    return render_template("builder_editor.html", app=app, kind=kind, key=key, definition=definition,
                           title=text_of((definitions.current_body(db, definition) or {}).get("label"),
                                         current_locale()) or key,
                           data=editor_data(app, kind, key))


def editor_data(app: App, kind: str, key: str) -> dict:
    """Everything the editor needs, as one JSON document on the page."""
    db = get_session()
    locale = current_locale()
    definition = definitions.get(db, app, kind, key)
    published = catalog.published_version(db, app, kind, key)
    ctx = definitions.app_context(db, app)
    api = f"/api/v1/apps/{app.key}/definitions/{kind}/{key}"
    types = describe_types(locale)
    for item in types:
        item["example"] = FIELD_TYPES[item["type"]].example
        item["kind"] = FIELD_TYPES[item["type"]].kind
        item["computed"] = FIELD_TYPES[item["type"]].computed
    roles = sorted({r.value for r in AppRole} | set(db.scalars(
        select(AppMember.role).where(AppMember.app_id == app.id).distinct())) | set(access_roles(db, app)))
    users = list(db.scalars(select(User.username).where(User.is_active).order_by(User.username)))
    return {
        "app": app.key, "kind": kind, "key": key, "locale": locale,
        "body": definitions.current_body(db, definition),
        "published": published.body if published else None,
        "published_version": definition.published_version,
        "has_draft": definition.draft is not None,
        "frozen_keys": sorted(definitions.published_field_types(db, app).get(key, {})) if kind == "entity" else [],
        "entities": {k: entity_summary(body, ctx.entities, locale) for k, body in sorted(ctx.entities.items())},
        "pipelines": {k: {"entity": p.get("entity"), "stage_field": p.get("stage_field"),
                          "stages": [{"key": s.get("key"), "label": text_of(s.get("label"), locale)}
                                     for s in p.get("stages") or [] if isinstance(s, dict)]}
                      for k, p in ctx.pipelines.items() if isinstance(p, dict)},
        "field_types": types, "operators": OPERATORS_BY_KIND, "roles": roles, "users": users,
        "access": access_data(db, app) if kind == "access" else None,
        "urls": {"definition": api, "check": f"{api}/check", "publish": f"{api}/publish",
                 "draft": f"{api}/draft", "impact": f"{api}/impact", "key": "/api/v1/key-suggestion",
                 "preview": url_for("builder.preview", app_key=app.key, kind=kind, key=key)
                 if kind in ("entity", "form") else None,
                 "versions": url_for("builder.versions", app_key=app.key, kind=kind, key=key),
                 "admin": url_for("builder.admin", app_key=app.key)},
    }


def access_roles(db, app: App) -> list[str]:
    """The role keys the app's published access definition names."""
    row = catalog.published_version(db, app, "access", ACCESS_KEY)
    return [r["key"] for r in (row.body.get("roles") or []) if isinstance(r, dict) and isinstance(r.get("key"), str)] \
        if row else []


def access_data(db, app: App) -> dict:
    """What the access editor adds: the built-in roles, how many members hold each role, the scope tests."""
    members = dict(db.execute(select(AppMember.role, func.count()).where(AppMember.app_id == app.id)
                              .group_by(AppMember.role)).all())
    return {"built_in": {role: BUILT_IN[role] for role in STARTER_ROLES}, "role_labels": ROLE_LABELS,
            "admin_role": AppRole.ADMIN.value, "members": members, "when_operators": WHEN_OPERATORS_BY_KIND}


def entity_summary(body: dict, entities: dict[str, dict], locale: str) -> dict:
    """An entity's fields as editors offer them: key, label, type, condition kind, options."""
    fields = [f for f in body.get("fields") or [] if isinstance(f, dict) and isinstance(f.get("key"), str)
              and f.get("type") in FIELD_TYPES]
    try:
        kinds = field_kinds(fields, entities)
    except (KeyError, TypeError, ValueError):
        kinds = {f["key"]: FIELD_TYPES[f["type"]].kind for f in fields}
    return {"label": text_of(body.get("label"), locale) or body.get("key"),
            "title_field": body.get("title_field"), "owner_field": body.get("owner_field"),
            "fields": [{"key": f["key"], "label": text_of(f.get("label"), locale) or f["key"], "type": f["type"],
                        "kind": kinds.get(f["key"], "object"), "required": bool(f.get("required")),
                        "target": f.get("target"),
                        "options": [{"value": o.get("value"), "label": text_of(o.get("label"), locale)}
                                    for o in f.get("options") or [] if isinstance(o, dict)]}
                       for f in fields]}


# --- preview --------------------------------------------------------------------------------

@bp.route("/apps/<app_key>/admin/<kind>/<key>/preview", methods=["GET", "POST"])
@login_required
def preview(app_key: str, kind: str, key: str):
    """The draft form as a rep sees it; it can be filled to try its rules, and nothing is saved."""
    app = _admin_app(app_key)
    db = get_session()
    entity, form_body = definitions.draft_form(db, app, _kind(kind), key)
    locale = current_locale()
    compiled = compile_form(entity, form_body, locale)
    situation = Situation(user_id=g.user.id, extra_visibility=compiled.section_conditions)
    errors: dict[str, list[str]] = {}
    tried = None
    if request.method == "POST":
        form = compiled.form_class()
        values = form_values(form, compiled, entity)
        try:
            tried = definitions.try_values(entity, form_body, values, g.user.id, locale)
        except RecordValidationError as exc:
            errors = exc.fields
        shown = values
    else:
        shown = defaults(entity, situation)
        form = compiled.form_class(formdata=None, data=initial_data(entity, compiled, shown))
    _offer_choices(db, entity, compiled, form)
    from formloom.runtime.views import display_context, form_logic

    logic = {**form_logic(entity, compiled, g.user.id, situation), "computed": False}
    page = render_template("record_form.html", app=app, entity=entity, compiled=compiled, form=form, record=None,
                           errors=errors, attr_name=attr_name, version=None, conflict=None, nav=None, files={},
                           form_key=None, stage_locked=None, pipeline=None, pending=None, logic=logic, locked=set(),
                           ctx=display_context(entity, [shown]), shown=shown,
                           preview={"kind": kind, "key": key, "tried": tried,
                                    "editor": url_for("builder.editor", app_key=app.key, kind=kind, key=key)})
    response = make_response(page, 422 if errors else 200)
    # The editor shows the preview in a frame of its own page; nothing else may frame it.
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.replace("frame-ancestors 'none'",
                                                                                  "frame-ancestors 'self'")
    return response


def _offer_choices(db, entity, compiled, form) -> None:
    """Pickers in a preview offer the members (names only) and, for relations, nothing stored."""
    members = [(str(i), n) for i, n in db.execute(select(User.id, User.display_name).where(User.is_active)
                                                   .order_by(User.display_name).limit(200))]
    from formloom.runtime.fields import select_choices

    for key in compiled.keys:
        spec = entity.by_key[key]
        field = getattr(form, attr_name(key))
        if spec.type.name in ("user", "users"):
            field.choices = select_choices(members, blank=spec.type.name == "user")
        elif spec.type.name in ("relation", "relations"):
            field.choices = select_choices([], blank=spec.type.name == "relation")
        elif spec.type.name == "table":
            for row in field.entries:
                for column in spec.definition["fields"]:
                    if column["type"] in ("user", "relation"):
                        getattr(row.form, attr_name(column["key"])).choices = select_choices(
                            members if column["type"] == "user" else [], blank=True)


# --- versions -------------------------------------------------------------------------------

@bp.route("/apps/<app_key>/admin/<kind>/<key>/versions")
@login_required
def versions(app_key: str, kind: str, key: str):
    app = _admin_app(app_key)
    db = get_session()
    definition = definitions.get(db, app, _kind(kind), key)
    rows = definitions.versions(db, definition)
    locale = current_locale()
    names = dict(db.execute(select(User.id, User.display_name).where(
        User.id.in_({r.published_by for r in rows} - {None}))).all())
    history = []
    for i, row in enumerate(rows):
        before = rows[i + 1].body if i + 1 < len(rows) else None
        history.append({"version": row, "by": names.get(row.published_by),
                        "changes": [c.describe(locale) for c in diff.changes(kind, before, row.body)]})
    draft_changes = ([c.describe(locale) for c in diff.changes(kind, rows[0].body if rows else None,
                                                               definition.draft)]
                     if definition.draft is not None else None)
    return render_template("builder_versions.html", app=app, kind=kind, key=key, definition=definition,
                           history=history, draft_changes=draft_changes,
                           title=text_of((definitions.current_body(db, definition) or {}).get("label"), locale))


@bp.route("/apps/<app_key>/admin/<kind>/<key>/rollback", methods=["POST"])
@login_required
def rollback(app_key: str, kind: str, key: str):
    app = _admin_app(app_key)
    db = get_session()
    number = request.form.get("version", type=int)
    try:
        version = definitions.rollback(db, g.user, app, _kind(kind), key, number or 0)
        db.commit()
        flash(f"Version {number} is live again, as version {version.version}.", "success")
    except DefinitionError as exc:
        db.rollback()
        flash(exc.message + " " + " ".join(p.message for p in exc.problems), "error")
    except FormloomError as exc:
        db.rollback()
        flash(exc.message, "error")
    return redirect(url_for("builder.versions", app_key=app.key, kind=kind, key=key))


@bp.app_template_global()
def can_create_apps() -> bool:
    return bool(g.get("user")) and can(get_session(), g.user, Action.MANAGE_APPS)


@bp.app_template_global()
def can_build(app: App | None) -> bool:
    """Whether the signed-in person may open the builder of ``app``."""
    return bool(g.get("user")) and app is not None and can(get_session(), g.user, Action.WRITE_DEFINITIONS, app)


"""Read access to apps and their published definitions."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from formloom.platform.auth import Action, authorize
from formloom.platform.errors import NotFound
from formloom.platform.models import App, Definition, DefinitionVersion, User
from formloom.runtime.compiler import CompiledEntity, compile_entity
from formloom.runtime.labels import text_of


def get_app(session: Session, key: str) -> App:
    app = session.scalar(select(App).where(App.key == key))
    if app is None:
        raise NotFound(f"There is no app '{key}'.")
    return app


def authorized_app(session: Session, user: User | None, key: str, action: Action) -> App:
    """The app ``key``, if ``user`` may do ``action`` in it (404 / 403 otherwise)."""
    app = get_app(session, key)
    authorize(session, user, action, app)
    return app


def get_definition(session: Session, app: App, kind: str, key: str) -> Definition | None:
    return session.scalar(select(Definition).where(
        Definition.app_id == app.id, Definition.kind == kind, Definition.key == key))


def published_version(session: Session, app: App, kind: str, key: str,
                      version: int | None = None) -> DefinitionVersion | None:
    """The latest published version of a definition, or the given version number."""
    query = (select(DefinitionVersion).join(Definition)
             .where(Definition.app_id == app.id, Definition.kind == kind, Definition.key == key))
    if version is None:
        query = query.where(DefinitionVersion.version == Definition.published_version)
    else:
        query = query.where(DefinitionVersion.version == version)
    return session.scalar(query)


def published_rows(session: Session, app: App, kind: str) -> list[DefinitionVersion]:
    """The latest published version of every definition of ``kind``, by key."""
    query = (select(DefinitionVersion).join(Definition)
             .where(Definition.app_id == app.id, Definition.kind == kind,
                    DefinitionVersion.version == Definition.published_version)
             .order_by(Definition.key))
    return list(session.scalars(query))


def published_bodies(session: Session, app: App, kind: str) -> list[dict]:
    return [row.body for row in published_rows(session, app, kind)]


MEMO = "formloom.entities"


def entity(session: Session, app: App, key: str, version: int | None = None) -> CompiledEntity:
    """The compiled entity (latest published version unless ``version`` is given).

    The latest version is remembered for the life of the session (one request, one command),
    so a bulk load reads the definition once; publishing clears the memo (:func:`forget`).
    """
    memo = session.info.setdefault(MEMO, {})
    if version is None and (app.id, key) in memo:
        return memo[(app.id, key)]
    row = published_version(session, app, "entity", key, version)
    if row is None:
        raise NotFound(f"App '{app.key}' has no published entity '{key}'.")
    compiled = compile_entity(row.body, row.version, row.checksum, _related_bodies(session, app, row.body))
    if version is None:
        memo[(app.id, key)] = compiled
    return compiled


def _related_bodies(session: Session, app: App, body: dict) -> dict[str, dict]:
    """The latest published bodies of the entities ``body`` relates to (for lookups and formulas)."""
    targets = {f["target"] for f in body["fields"] if f["type"] in ("relation", "relations")}
    related = {}
    for target in sorted(targets):
        published = None if target == body["key"] else published_version(session, app, "entity", target)
        row = body if target == body["key"] else getattr(published, "body", None)
        if row is not None:
            related[target] = row
    return related


def forget(session: Session) -> None:
    """Drop the session's remembered entity and pipeline versions (after a publish)."""
    session.info.pop(MEMO, None)
    session.info.pop("formloom.pipelines", None)
    session.info.pop("formloom.rules", None)
    session.info.pop("formloom.policies", None)


def entity_keys(session: Session, app: App) -> list[str]:
    """Published entity keys, in the app's navigation order, then by key."""
    keys = [body["key"] for body in published_bodies(session, app, "entity")]
    app_row = published_version(session, app, "app", app.key)
    navigation = app_row.body.get("navigation", []) if app_row else []
    order = {k: i for i, k in enumerate(navigation)}
    return sorted(keys, key=lambda k: (order.get(k, len(order)), k))


def field_definitions(session: Session, app: App, entity_key: str) -> dict[str, dict]:
    """Every field an entity has ever published, by key; the latest definition of each wins.

    Used to label values of fields that were removed: removal hides a field, its values stay.
    """
    query = (select(DefinitionVersion.body).join(Definition)
             .where(Definition.app_id == app.id, Definition.kind == "entity", Definition.key == entity_key)
             .order_by(DefinitionVersion.version))
    fields: dict[str, dict] = {}
    for body in session.scalars(query):
        fields.update({f["key"]: f for f in body["fields"]})
    return fields


def forms_of(session: Session, app: App, entity: CompiledEntity) -> list[dict]:
    """The published forms laid over an entity (a quick-create form, a full form, ...)."""
    return [b for b in published_bodies(session, app, "form") if b["entity"] == entity.key]


def form_for(session: Session, app: App, entity: CompiledEntity, form_key: str | None = None) -> dict:
    """The form body to show for an entity.

    ``form_key`` names one of its published forms. Without it, the published form with the
    entity's own key is the default; without that, one section with every field in order.
    """
    forms = {b["key"]: b for b in forms_of(session, app, entity)}
    if form_key is not None:
        if form_key not in forms:
            raise NotFound(f"Entity '{entity.key}' has no published form '{form_key}'.")
        return forms[form_key]
    return forms.get(entity.key) or default_form(entity)


def default_form(entity: CompiledEntity) -> dict:
    return {"formloom": 1, "kind": "form", "key": entity.key, "entity": entity.key,
            "label": entity.body["label"],
            "sections": [{"label": entity.body["label"], "fields": [f.key for f in entity.fields]}]}


def app_label(app: App, locale: str = "en") -> str:
    return text_of(app.label, locale)

"""Drafts, checks and publishing of definitions; apps as bundles of them."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from formloom.builder.checks import KINDS_AVAILABLE, KINDS_RESERVED, UNSTORABLE, AppContext, check_definition
from formloom.platform import audit
from formloom.platform.db import utcnow
from formloom.platform.errors import Conflict, DefinitionError, FormloomError, NotFound, Problem
from formloom.platform.models import App, Definition, DefinitionVersion, User
from formloom.runtime import catalog
from formloom.runtime.compiler import checksum
from formloom.runtime.fields import FIELD_TYPES

KINDS = KINDS_AVAILABLE + KINDS_RESERVED


def create_app(session: Session, actor: User | None, key: str, label: str | dict,
               description: str | dict | None = None) -> App:
    """Create an app with its published ``app`` definition."""
    body: dict[str, Any] = {"formloom": 1, "kind": "app", "key": key, "label": label}
    if description:
        body["description"] = description
    problems = check_definition(body, AppContext(app_key=key))
    if problems:
        raise DefinitionError(problems)
    if session.scalar(select(App).where(App.key == key)) is not None:
        raise Conflict(f"An app with key '{key}' already exists; choose another key.")
    app = App(key=key, label=label)
    session.add(app)
    session.flush()
    save_draft(session, actor, app, "app", key, body)
    publish(session, actor, app, "app", key)
    return app


def app_context(session: Session, app: App, *, published_only: bool = False) -> AppContext:
    """Entities of the app (drafts win over published versions unless ``published_only``)."""
    ctx = AppContext(app_key=app.key)
    rows = session.execute(
        select(Definition, DefinitionVersion)
        .outerjoin(DefinitionVersion, (DefinitionVersion.definition_id == Definition.id)
                   & (DefinitionVersion.version == Definition.published_version))
        .where(Definition.app_id == app.id, Definition.kind == "entity"))
    for definition, version in rows:
        body = version.body if version is not None else None
        if not published_only and definition.draft is not None:
            body = definition.draft
        if isinstance(body, dict):
            ctx.entities[definition.key] = usable_entity(body)
    ctx.published_types = published_field_types(session, app)
    for definition in session.scalars(select(Definition).where(Definition.app_id == app.id,
                                                                Definition.kind == "pipeline")):
        body = definition.draft if definition.draft is not None and not published_only else None
        if body is None and definition.published_version is not None:
            body = catalog.published_version(session, app, "pipeline", definition.key).body
        if isinstance(body, dict):
            ctx.pipelines[definition.key] = body
    return ctx


def usable_entity(body: dict) -> dict:
    """An entity (maybe a draft with problems) as other definitions see it: its well-formed fields only.

    A draft's own problems are reported on the draft; a form or rule checked meanwhile must not
    trip over a field of an unknown type or without a key.
    """
    def sound(field: Any) -> bool:
        return isinstance(field, dict) and isinstance(field.get("key"), str) and field.get("type") in FIELD_TYPES

    fields = []
    for field in body.get("fields") if isinstance(body.get("fields"), list) else []:
        if sound(field):
            if field["type"] == "table":
                columns = field.get("fields") if isinstance(field.get("fields"), list) else []
                field = {**field, "fields": [c for c in columns if sound(c) and c["type"] != "table"]}
            fields.append(field)
    return {**body, "fields": fields}


def published_field_types(session: Session, app: App) -> dict[str, dict[str, str]]:
    """Every field key ever published per entity, with its type (keys never change type)."""
    out: dict[str, dict[str, str]] = {}
    rows = session.execute(select(Definition.key, DefinitionVersion.body).join(DefinitionVersion)
                           .where(Definition.app_id == app.id, Definition.kind == "entity")
                           .order_by(DefinitionVersion.version))
    for key, body in rows:
        for field in body.get("fields", []):
            out.setdefault(key, {})[field["key"]] = field["type"]
    return out


def _require_kind(kind: str) -> None:
    if kind not in KINDS:
        raise NotFound(f"There is no definition kind '{kind}'; kinds are: {', '.join(KINDS)}.")


def check(session: Session, app: App, kind: str, key: str, body: Any) -> list[Problem]:
    """Every problem of ``body`` as the definition ``kind``/``key`` of ``app``."""
    _require_kind(kind)
    problems = check_definition(body, app_context(session, app))
    if isinstance(body, dict):
        if body.get("kind") not in (None, kind) and kind in KINDS_AVAILABLE:
            problems.insert(0, Problem("$.kind", f"Must be '{kind}', the kind in the address."))
        if isinstance(body.get("key"), str) and body["key"] != key:
            problems.insert(0, Problem("$.key", f"Must be '{key}', the key in the address."))
    return problems


def save_draft(session: Session, actor: User | None, app: App, kind: str, key: str,
               body: Any) -> tuple[Definition, list[Problem]]:
    """Save ``body`` as the draft (kept even when it has problems) and return its problems."""
    problems = check(session, app, kind, key, body)
    if not isinstance(body, dict) or kind in KINDS_RESERVED or any(p.message == UNSTORABLE for p in problems):
        raise DefinitionError(problems)  # nothing to keep, or text the database cannot hold
    definition = catalog.get_definition(session, app, kind, key)
    if definition is None:
        definition = Definition(app_id=app.id, kind=kind, key=key)
        session.add(definition)
    definition.draft = body
    definition.draft_updated_at = utcnow()
    definition.draft_updated_by = actor.id if actor else None
    session.flush()
    return definition, problems


def discard_draft(session: Session, app: App, kind: str, key: str) -> Definition:
    definition = get(session, app, kind, key)
    if definition.published_version is None:
        session.delete(definition)
    else:
        definition.draft = None
    session.flush()
    return definition


def publish(session: Session, actor: User | None, app: App, kind: str, key: str, *,
            stage_moves: dict[str, str] | None = None, impact_choices: dict[str, dict] | None = None,
            note: str | None = None, rollback_of: int | None = None) -> DefinitionVersion:
    """Publish the draft as a new immutable version (or return the latest if nothing changed).

    What the draft does to live data is assessed first (:mod:`formloom.builder.impact`): every
    impact needs a choice in ``impact_choices`` (``{impact id: {"action": "migrate" | "block" |
    "proceed", "to"?: ..., "value"?: ...}}``); ``stage_moves`` (``{"removed stage": "stage"}``) is
    shorthand for migrating the records of removed stages. Without ``impact_choices`` (templates,
    the CLI, scripts), impacts that may proceed do, and the stored decisions say it was by default;
    a removed stage holding records always needs its move. The decisions are kept on the version.
    """
    from formloom.builder import impact

    definition = get(session, app, kind, key)
    if definition.draft is None:
        latest = catalog.published_version(session, app, kind, key)
        if latest is None:
            raise FormloomError(f"The {kind} '{key}' has no draft to publish.")
        return latest
    body = definition.draft
    # A form or pipeline is checked against the published entity it will be used with.
    problems = check_definition(body, app_context(session, app, published_only=kind in (
        "form", "pipeline", "rule", "access", "view", "commission", "dashboard")))
    if problems:
        raise DefinitionError(problems, f"The {kind} '{key}' cannot be published: "
                                        f"{len(problems)} problem{'s' if len(problems) != 1 else ''}.")
    latest = catalog.published_version(session, app, kind, key)
    if latest is not None and latest.checksum == checksum(body):
        definition.draft = None
        return latest
    now = utcnow()
    impacts = impact.assess(session, app, kind, key, latest.body if latest else None, body)
    choices = _stage_moves(impacts, stage_moves or {}, impact_choices)
    decisions = impact.resolve(session, actor, app, kind, key, impacts, choices, now)
    definition.draft = None
    number = (session.scalar(select(func.max(DefinitionVersion.version))
                             .where(DefinitionVersion.definition_id == definition.id)) or 0) + 1
    version = DefinitionVersion(definition_id=definition.id, version=number, body=body,
                                checksum=checksum(body), published_by=actor.id if actor else None,
                                published_at=now, note=note)
    if decisions:
        version.impact = decisions
    session.add(version)
    definition.published_version = number
    session.flush()
    audit.record(session, audit.AuditKind.DEFINITION_PUBLISHED if rollback_of is None
                 else audit.AuditKind.DEFINITION_ROLLED_BACK, actor, app=app, subject=f"{kind}/{key}",
                 detail={"kind": kind, "key": key, "version": number,
                         "previous": latest.version if latest else None,
                         **({"rollback_of": rollback_of} if rollback_of is not None else {})})
    catalog.forget(session)
    if kind == "rule":
        from formloom.runtime import events

        events.reschedule_rule(session, app, key, now)
    return version


def _stage_moves(impacts: list, asked: dict[str, str], choices: dict[str, dict] | None) -> dict[str, dict]:
    """The choice per impact: ``choices`` as given, ``stage_moves`` filling in for removed stages.

    Without ``choices``, impacts that may proceed do (marked as a default). A stage move to a
    stage the new version lacks is refused at ``stage_moves.<stage>``.
    """
    from formloom.builder.impact import ImpactUnresolved

    out = dict(choices) if choices is not None else {
        i.id: {"action": "proceed", "default": True} for i in impacts if "proceed" in i.choices}
    problems = []
    for item in impacts:
        stage = item.scope.get("stage") if item.code == "stage_removed" else None
        if stage is None or stage not in asked or item.id in (choices or {}):
            continue
        if asked[stage] in item.targets:
            out[item.id] = {"action": "migrate", "to": asked[stage]}
        else:
            problems.append(Problem(f"stage_moves.{stage}", f"'{asked[stage]}' is not a stage of the new version; "
                                                            f"use one of: {', '.join(item.targets)}."))
    if problems:
        raise ImpactUnresolved(problems, impacts, "The pipeline cannot be published yet: a stage move names a "
                                                  "stage the new version does not have.")
    return out


def get(session: Session, app: App, kind: str, key: str) -> Definition:
    _require_kind(kind)
    definition = catalog.get_definition(session, app, kind, key)
    if definition is None:
        raise NotFound(f"App '{app.key}' has no {kind} definition '{key}'.")
    return definition


def list_definitions(session: Session, app: App, kind: str | None = None) -> list[Definition]:
    query = select(Definition).where(Definition.app_id == app.id).order_by(Definition.kind, Definition.key)
    if kind is not None:
        _require_kind(kind)
        query = query.where(Definition.kind == kind)
    return list(session.scalars(query))


def versions(session: Session, definition: Definition) -> list[DefinitionVersion]:
    return list(session.scalars(select(DefinitionVersion)
                                .where(DefinitionVersion.definition_id == definition.id)
                                .order_by(DefinitionVersion.version.desc())))


def current_body(session: Session, definition: Definition) -> dict | None:
    """The draft if there is one, else the latest published body."""
    if definition.draft is not None:
        return definition.draft
    app = session.get(App, definition.app_id)
    row = catalog.published_version(session, app, definition.kind, definition.key)
    return row.body if row else None


def save_and_publish(session: Session, actor: User | None, app: App, body: dict) -> DefinitionVersion:
    """Save ``body`` as a draft and publish it at once (templates, CLI); all problems raise."""
    _, problems = save_draft(session, actor, app, body.get("kind", ""), body.get("key", ""), body)
    if problems:
        raise DefinitionError(problems, f"The {body.get('kind')} '{body.get('key')}' has problems.")
    return publish(session, actor, app, body["kind"], body["key"])


def rollback(session: Session, actor: User | None, app: App, kind: str, key: str, number: int, *,
             impact_choices: dict | None = None) -> DefinitionVersion:
    """Publish version ``number`` again, as a new version equal to it (its impact checked as any publish)."""
    definition = get(session, app, kind, key)
    old = version(session, definition, number)
    if definition.draft is not None:
        raise Conflict(f"The {kind} '{key}' has an unpublished draft; publish or discard it before rolling back.")
    live = catalog.published_version(session, app, kind, key)
    if live is not None and live.checksum == old.checksum:
        raise Conflict(f"Version {number} is the live version already"
                       f"{'' if live.version == number else f' (version {live.version} is the same)'}.")
    save_draft(session, actor, app, kind, key, old.body)
    return publish(session, actor, app, kind, key, impact_choices=impact_choices,
                   note=f"Rollback to version {number}", rollback_of=number)


def draft_form(session: Session, app: App, kind: str, key: str):
    """The compiled draft entity (or the published entity of a draft form) and the form a rep would see."""
    from formloom.runtime.compiler import compile_entity

    body = current_body(session, get(session, app, kind, key))
    if kind not in ("entity", "form") or not isinstance(body, dict):
        raise NotFound(f"Only entities and forms have a preview; '{key}' is a {kind}.")
    problems = check(session, app, kind, key, body)
    if problems:
        raise DefinitionError(problems, f"The draft {kind} '{key}' has {len(problems)} problem"
                                        f"{'s' if len(problems) != 1 else ''}; fix them to see the preview.")
    if kind == "entity":
        ctx = app_context(session, app)
        related = {t: ctx.entities[t] for t in {f.get("target") for f in body["fields"]} if t in ctx.entities}
        entity = compile_entity(body, 0, checksum(body), related)
        return entity, catalog.default_form(entity)
    return catalog.entity(session, app, body["entity"]), body


def try_values(entity, form_body: dict, values: dict, user_id: int, locale: str) -> dict:
    """Validate ``values`` as a rep's submission of that form would be; nothing is stored.

    Raises :class:`RecordValidationError` with every field's problems.
    """
    from formloom.runtime.forms import compile_form
    from formloom.runtime.validation import Situation, validate_values

    compiled = compile_form(entity, form_body, locale)
    situation = Situation(user_id=user_id, extra_visibility=compiled.section_conditions)
    return validate_values(entity, values, locale=locale, situation=situation)


def version(session: Session, definition: Definition, number: int) -> DefinitionVersion:
    """Version ``number`` of a definition."""
    row = session.scalar(select(DefinitionVersion).where(DefinitionVersion.definition_id == definition.id,
                                                         DefinitionVersion.version == number))
    if row is None:
        raise NotFound(f"The {definition.kind} '{definition.key}' has no version {number}.")
    return row

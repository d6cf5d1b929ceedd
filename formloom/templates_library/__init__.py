"""Bundled app templates (definitions as JSON files) and their installer.

A template is a folder under :data:`TEMPLATES_DIR` holding ``app.json``, ``entities/*.json``,
``forms/*.json``, ``pipelines/*.json``, ``rules/*.json``, ``access.json`` and ``commissions/*.json``.
Installing one creates the app and publishes every definition through
:mod:`formloom.builder.definitions`, so a template is checked exactly like a hand-made app; what it
installed is remembered for upgrades (:mod:`formloom.templates_library.upgrade`).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from formloom.builder import definitions
from formloom.platform.auth import Action, authorize
from formloom.platform.errors import Conflict, FormloomError
from formloom.platform.models import App, User
from formloom.templates_library import upgrade

TEMPLATES_DIR = Path(__file__).parent
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def _read_json(path: Path) -> dict:
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise FormloomError(f"Template file {path.relative_to(TEMPLATES_DIR)} cannot be read: {exc}") from exc
    if not isinstance(body, dict):
        raise FormloomError(f"Template file {path.relative_to(TEMPLATES_DIR)} must hold a JSON object.")
    return body


def _template_names() -> list[str]:
    return sorted(p.name for p in TEMPLATES_DIR.iterdir()
                  if p.is_dir() and _NAME_RE.match(p.name) and (p / "app.json").is_file())


def list_templates() -> list[dict]:
    """Every bundled template: ``name``, ``label``, ``version`` and ``description`` (as in app.json)."""
    out = []
    for name in _template_names():
        app = _read_json(TEMPLATES_DIR / name / "app.json")
        out.append({"name": name, "label": app.get("label", name),
                    "version": (app.get("template") or {}).get("version"),
                    "description": app.get("description")})
    return out


def load_template(name: str) -> dict:
    """The definitions of template ``name``.

    Returns ``{"name", "app", "entities", "forms", "pipelines", "rules", "access", "views",
    "commissions"}``: the app body, the entity bodies ordered so that relation targets come before the
    entities relating to them (cycles keep file order), the form bodies ordered by their entity, the
    pipelines, the automation rules, the access definition, the saved views and the commission plans.
    """
    names = _template_names()
    if not isinstance(name, str) or name not in names:
        raise FormloomError(f"There is no template {name!r}; templates are: {', '.join(names) or 'none'}.")
    folder = TEMPLATES_DIR / name
    app = _read_json(folder / "app.json")
    entities = [_read_json(p) for p in sorted((folder / "entities").glob("*.json"))]
    forms = [_read_json(p) for p in sorted((folder / "forms").glob("*.json"))]
    pipelines = [_read_json(p) for p in sorted((folder / "pipelines").glob("*.json"))]
    rules = [_read_json(p) for p in sorted((folder / "rules").glob("*.json"))]
    for path, body in zip(sorted((folder / "entities").glob("*.json")), entities):
        if body.get("key") != path.stem:
            raise FormloomError(f"Template file {path.relative_to(TEMPLATES_DIR)} must define key '{path.stem}'.")
    ordered = _dependency_order(entities, app.get("navigation") or [])
    position = {body["key"]: i for i, body in enumerate(ordered)}
    forms.sort(key=lambda f: (position.get(f.get("entity"), len(position)), f.get("key") != f.get("entity"),
                              str(f.get("key"))))
    access = [_read_json(folder / "access.json")] if (folder / "access.json").exists() else []
    views = [_read_json(p) for p in sorted((folder / "views").glob("*.json"))]
    commissions = [_read_json(p) for p in sorted((folder / "commissions").glob("*.json"))]
    dashboards = [_read_json(p) for p in sorted((folder / "dashboards").glob("*.json"))]
    return {"name": name, "app": app, "entities": ordered, "forms": forms, "pipelines": pipelines,
            "rules": rules, "access": access, "views": views, "commissions": commissions, "dashboards": dashboards}


def _dependency_order(entities: list[dict], navigation: list[str]) -> list[dict]:
    """Entities with relation targets first; ties in navigation order, then by key."""
    nav = {key: i for i, key in enumerate(navigation)}
    by_key = {e["key"]: e for e in sorted(entities, key=lambda e: (nav.get(e["key"], len(nav)), e["key"]))}
    done: list[str] = []
    visiting: set[str] = set()

    def visit(key: str) -> None:
        if key in done or key in visiting or key not in by_key:
            return  # a key in ``visiting`` closes a cycle: drafts make it publishable anyway
        visiting.add(key)
        for field in by_key[key].get("fields", []):
            if field.get("type") == "relation":
                visit(field.get("target"))
        visiting.discard(key)
        done.append(key)

    for key in by_key:
        visit(key)
    return [by_key[key] for key in done]


def install(session: Session, actor: User | None, name: str = "crm", app_key: str | None = None) -> App:
    """Create an app from template ``name`` (under ``app_key``, default the template's key).

    Publishes the entities (relation targets first), then the forms, pipelines, rules, access and views,
    then the app definition with its navigation. Everything happens in a savepoint: on any error nothing is left
    behind in the session. Raises :class:`Conflict` when the app key is taken.
    """
    if actor is not None:
        authorize(session, actor, Action.MANAGE_APPS)
    template = load_template(name)
    app_body = dict(template["app"])
    key = app_key or app_body["key"]
    app_body["key"] = key
    if session.scalar(select(App.id).where(App.key == key)) is not None:
        raise Conflict(f"An app with key '{key}' already exists, so template '{name}' cannot be installed "
                       f"under it; pass another app key (for example '{key}_2') or remove that app first.")
    with session.begin_nested():
        app = definitions.create_app(session, actor, key, app_body["label"], app_body.get("description"))
        # Drafts of every entity first, so relations between them (even circular ones) resolve.
        for body in template["entities"]:
            definitions.save_draft(session, actor, app, "entity", body["key"], body)
        for body in template["entities"]:
            definitions.publish(session, actor, app, "entity", body["key"])
        for body in (template["forms"] + template["pipelines"] + template["rules"] + template["access"]
                     + template["views"] + template["commissions"] + template["dashboards"]):
            definitions.save_and_publish(session, actor, app, body)
        definitions.save_and_publish(session, actor, app, app_body)
        upgrade.record_install(session, app, name, (app_body.get("template") or {}).get("version"),
                               upgrade.template_bodies(template, key))
    return app


__all__ = ["TEMPLATES_DIR", "install", "list_templates", "load_template"]

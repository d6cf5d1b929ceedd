"""Upgrading an app to a newer version of the template it was installed from.

The app remembers what the template installed (:class:`TemplateInstall`: name, version and every body).
An upgrade looks at each definition of the newer template:

- not in the app, never installed → **added**;
- installed, and the app's published body is still the installed one → **updated** to the new body;
- changed by the admin since → **merged** (:mod:`formloom.templates_library.merge`): what is new is
  added, the admin's changes are kept, conflicts are listed as skipped;
- installed but since deleted from the app, or holding an unpublished draft → **skipped**.

Each definition is published through :mod:`formloom.builder.definitions` in its own savepoint: one
whose merged body fails the checks is skipped with its problems, and the rest is published.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from formloom.builder import definitions
from formloom.platform.auth import Action, authorize
from formloom.platform.db import utcnow
from formloom.platform.errors import DefinitionError, FormloomError, NotFound
from formloom.platform.models import App, Definition, DefinitionVersion, TemplateInstall, User
from formloom.runtime import catalog
from formloom.runtime.compiler import checksum
from formloom.templates_library.merge import merge

# The order definitions are published in: entities before what names them, the app last.
KIND_ORDER = ("entity", "access", "form", "pipeline", "rule", "view", "dashboard", "commission", "app")


@dataclass
class Step:
    """What an upgrade does (or did) to one definition."""

    kind: str
    key: str
    status: str  # added | updated | merged | skipped | unchanged
    body: dict | None = None  # what will be published
    installed: dict | None = None  # the new template's body, remembered as installed
    added: list[str] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    reason: str | None = None

    def as_dict(self) -> dict:
        return {"kind": self.kind, "key": self.key, "status": self.status, "added": self.added,
                "skipped": self.skipped, "reason": self.reason}


@dataclass
class Plan:
    app: str
    template: str
    from_version: str | None
    to_version: str | None
    steps: list[Step]

    def as_dict(self) -> dict:
        return {"app": self.app, "template": self.template, "from_version": self.from_version,
                "to_version": self.to_version,
                "steps": [s.as_dict() for s in self.steps if s.status != "unchanged"]}


def _version_tuple(version: str | None) -> tuple:
    parts = []
    for part in (version or "0").split("."):
        parts.append(int(part) if part.isdigit() else 0)
    return tuple(parts)


def template_bodies(template: dict, app_key: str) -> dict[str, dict]:
    """Every body of a loaded template by ``kind/key``, in publishing order, the app's key put in."""
    bodies: list[dict] = [b for name, value in template.items() if isinstance(value, list)
                          for b in value if isinstance(b, dict)]
    app_body = dict(template["app"], key=app_key)
    bodies.append(app_body)
    bodies.sort(key=lambda b: KIND_ORDER.index(b["kind"]) if b.get("kind") in KIND_ORDER else len(KIND_ORDER) - 1)
    return {f"{b['kind']}/{b['key']}": b for b in bodies}


def record_install(session: Session, app: App, name: str, version: str | None, bodies: dict[str, dict]) -> None:
    """Remember what template ``name`` installed into ``app`` (replacing any earlier record)."""
    row = session.scalar(select(TemplateInstall).where(TemplateInstall.app_id == app.id))
    if row is None:
        row = TemplateInstall(app_id=app.id, template=name, version=version or "0", bodies=bodies)
        session.add(row)
    else:
        row.template, row.version, row.bodies, row.upgraded_at = name, version or "0", bodies, utcnow()
    session.flush()


def installed(session: Session, app: App) -> TemplateInstall | None:
    """What a template installed into ``app``, or None for an app not made from a template.

    Apps installed before installs were remembered are read from their definitions: the app
    definition's ``template`` names the template and version, and each definition's first published
    version is what the template installed.
    """
    row = session.scalar(select(TemplateInstall).where(TemplateInstall.app_id == app.id))
    if row is not None:
        return row
    app_version = catalog.published_version(session, app, "app", app.key)
    meta = (app_version.body.get("template") if app_version else None) or {}
    if not isinstance(meta.get("name"), str):
        return None
    first = session.execute(select(Definition.kind, Definition.key, DefinitionVersion.body).join(DefinitionVersion)
                            .where(Definition.app_id == app.id, DefinitionVersion.version == 1))
    bodies = {f"{kind}/{key}": body for kind, key, body in first}
    return TemplateInstall(app_id=app.id, template=meta["name"], version=str(meta.get("version") or "0"),
                           bodies=bodies)


def available(session: Session, app: App) -> tuple[str, str] | None:
    """``(installed version, bundled version)`` when a newer version of the app's template is bundled."""
    from formloom.templates_library import list_templates

    row = installed(session, app)
    if row is None:
        return None
    bundled = {t["name"]: t.get("version") for t in list_templates()}.get(row.template)
    if bundled and _version_tuple(bundled) > _version_tuple(row.version):
        return row.version, bundled
    return None


def plan(session: Session, app: App) -> Plan:
    """What upgrading ``app`` to the bundled version of its template would do; nothing is changed."""
    from formloom.templates_library import load_template

    row = installed(session, app)
    if row is None:
        raise NotFound(f"App '{app.key}' was not installed from a template, so there is nothing to upgrade.")
    template = load_template(row.template)
    new = template_bodies(template, app.key)
    steps = [_step(session, app, ref, body, row.bodies.get(ref)) for ref, body in new.items()]
    return Plan(app.key, row.template, row.version, (template["app"].get("template") or {}).get("version"), steps)


def _step(session: Session, app: App, ref: str, theirs: dict, base: dict | None) -> Step:
    kind, key = ref.split("/", 1)
    definition = catalog.get_definition(session, app, kind, key)
    if definition is None:
        if base is not None:
            return Step(kind, key, "skipped", installed=theirs,
                        reason="Deleted from the app after it was installed; it stays deleted.")
        return Step(kind, key, "added", body=theirs, installed=theirs)
    if definition.draft is not None:
        return Step(kind, key, "skipped", installed=base,
                    reason="Has an unpublished draft; publish or discard the draft, then upgrade again.")
    latest = catalog.published_version(session, app, kind, key)
    mine = latest.body if latest is not None else None
    if mine is None:
        return Step(kind, key, "skipped", installed=base, reason="Was never published in the app.")
    if checksum(mine) == checksum(theirs):
        return Step(kind, key, "unchanged", installed=theirs)
    if base is not None and checksum(mine) == checksum(base):
        return Step(kind, key, "updated", body=theirs, installed=theirs)
    result = merge(base, mine, theirs)
    if checksum(result.body) == checksum(mine):
        status = "skipped" if result.skipped else "unchanged"
        return Step(kind, key, status, installed=theirs, skipped=[s.as_dict() for s in result.skipped],
                    reason="Customized in the app; nothing new to add." if result.skipped else None)
    return Step(kind, key, "merged", body=result.body, installed=theirs, added=result.added,
                skipped=[s.as_dict() for s in result.skipped])


def upgrade(session: Session, actor: User | None, app: App) -> Plan:
    """Upgrade ``app`` to the bundled version of its template; returns the plan as carried out.

    A definition whose new body fails the checks (or whose publish is refused) is skipped with the
    problems as its reason; everything else is published. The install record then holds the new
    version and bodies (a skipped definition keeps its old installed body, so a later upgrade tries it
    again).
    """
    if actor is not None:
        authorize(session, actor, Action.MANAGE_APPS)
    result = plan(session, app)
    row = installed(session, app)
    bodies = dict(row.bodies)
    changing = [s for s in result.steps if s.body is not None]
    # Drafts of every changing entity first, so new entities relating to each other resolve.
    for step in changing:
        if step.kind == "entity":
            _attempt(session, app, step, lambda s=step: definitions.save_draft(session, actor, app, s.kind, s.key,
                                                                               s.body))
    for step in changing:
        if step.kind == "entity":
            _attempt(session, app, step, lambda s=step: definitions.publish(session, actor, app, s.kind, s.key))
        else:
            _attempt(session, app, step, lambda s=step: definitions.save_and_publish(session, actor, app, s.body))
    for step in result.steps:
        if step.installed is not None and not (step.status == "skipped" and step.body is not None):
            bodies[f"{step.kind}/{step.key}"] = step.installed
    record_install(session, app, result.template, result.to_version, bodies)
    catalog.forget(session)
    return result


def _attempt(session: Session, app: App, step: Step, action: Any) -> None:
    """Run one save or publish in a savepoint; a refusal skips the definition with its problems."""
    if step.status == "skipped":
        return
    try:
        with session.begin_nested():
            action()
    except DefinitionError as exc:
        step.status, step.reason = "skipped", exc.message + " " + "; ".join(
            f"{p.path}: {p.message}" for p in exc.problems)
    except FormloomError as exc:
        step.status, step.reason = "skipped", exc.message
    else:
        return
    catalog.forget(session)
    _drop_draft(session, app, step)


def _drop_draft(session: Session, app: App, step: Step) -> None:
    """Discard the draft a refused step left (the app had none before: such steps are skipped earlier)."""
    definition = catalog.get_definition(session, app, step.kind, step.key)
    if definition is None or definition.draft is None:
        return
    if definition is None:
        return
    if definition.published_version is None:
        session.delete(definition)
    else:
        definition.draft = None
    session.flush()


def report_lines(report: Plan) -> list[str]:
    """The report as text lines (the CLI's): one per definition, then its additions and skips."""
    lines = [f"App '{report.app}': template '{report.template}' {report.from_version} -> {report.to_version}"]
    shown = [s for s in report.steps if s.status != "unchanged"]
    for step in shown:
        lines.append(f"{step.status:<8} {step.kind} {step.key}" + (f": {step.reason}" if step.reason else ""))
        lines.extend(f"           + {path}" for path in step.added)
        lines.extend(f"           skipped {s['path']}: template {_short(s['template'])}, app {_short(s['app'])} "
                     f"({s['reason']})" for s in step.skipped)
    if not shown:
        lines.append("Nothing to change: the app already holds everything this version of the template has.")
    return lines


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 120 else text[:117] + "..."

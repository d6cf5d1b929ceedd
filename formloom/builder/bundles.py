"""Bundles: an app's published definitions as one JSON document, to move the app between installations.

A bundle looks like ``{"formloom": 1, "kind": "bundle", "app": {...}, "definitions": [...],
"exported_at": "..."}``. It holds published versions only (no drafts, no records, no users).
Importing one creates a new app and goes through :mod:`formloom.builder.definitions`, so a bundle
is checked exactly like a hand-made app; the import is all or nothing.
"""
from __future__ import annotations

import copy
import re
from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from formloom.builder import definitions
from formloom.builder.checks import KEY_HINT, KINDS_AVAILABLE, KINDS_RESERVED, AppContext, check_definition
from formloom.platform.auth import Action, authorize
from formloom.platform.db import utcnow
from formloom.platform.errors import Conflict, DefinitionError, FormloomError, Problem
from formloom.platform.models import App, User
from formloom.runtime import catalog

FORMAT = 1
# The kinds a bundle's ``definitions`` hold, in the order they are published (access names entities;
# views name entities and pipelines).
BUNDLE_KINDS = ("entity", "access", "form", "pipeline", "rule", "view", "commission", "dashboard")
TOP_LEVEL = ("formloom", "kind", "app", "definitions", "exported_at")
_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_WORDS = {"entity": ("entity", "entities"), "access": ("access definition", "access definitions"),
          "commission": ("commission plan", "commission plans")}
APP_PATH = "$.app"


# --- export ----------------------------------------------------------------------------------

def export_app(session: Session, app: App) -> dict:
    """The bundle of ``app``: its published app definition and every published entity, access
    definition, form, pipeline and rule (in that order, each kind sorted by key). Drafts are left out."""
    app_row = catalog.published_version(session, app, "app", app.key)
    if app_row is None:
        raise FormloomError(f"App '{app.key}' has no published app definition, so it cannot be exported; "
                            f"publish its app definition first.")
    bodies = []
    for kind in BUNDLE_KINDS:  # sorted here, not in SQL: collations differ between databases
        bodies.extend(sorted(catalog.published_bodies(session, app, kind), key=lambda b: b["key"]))
    return {"formloom": FORMAT, "kind": "bundle", "app": copy.deepcopy(app_row.body),
            "definitions": copy.deepcopy(bodies),
            "exported_at": utcnow().replace(microsecond=0).isoformat().replace("+00:00", "Z")}


# --- checking the bundle's shape ---------------------------------------------------------------

def bundle_problems(bundle: Any) -> list[Problem]:
    """Problems of the bundle's shape (format, kinds, keys, duplicates), before any definition is checked."""
    hint = 'export one with `formloom app export APP` or GET /api/v1/apps/{app}/export'
    if not isinstance(bundle, dict):
        return [Problem("$", f'A bundle must be a JSON object like {{"formloom": 1, "kind": "bundle", '
                             f'"app": {{...}}, "definitions": [...]}}; {hint}.')]
    kind = bundle.get("kind")
    if kind != "bundle":
        if kind in KINDS_AVAILABLE + KINDS_RESERVED:
            message = (f"This is a single {kind} definition, not a bundle; save it with "
                       f"PUT /api/v1/apps/{{app}}/definitions/{kind}/{{key}}, or {hint}.")
        else:
            message = f'Must be "bundle": this is not a Formloom bundle; {hint}.'
        return [Problem("$.kind", message)]
    problems = []
    if bundle.get("formloom") != FORMAT:
        problems.append(Problem("$.formloom", f"Bundle format {bundle.get('formloom')!r} is not supported; "
                                              f"this Formloom reads format {FORMAT}."))
    for name in bundle:
        if name not in TOP_LEVEL:
            problems.append(Problem(f"$.{name}", f"Unknown property '{name}'; a bundle holds "
                                                 f"{', '.join(TOP_LEVEL)}. Remove it or check its spelling."))
    app_body = bundle.get("app")
    if not isinstance(app_body, dict):
        problems.append(Problem(APP_PATH, 'Must be the app definition, an object with "kind": "app".'))
    elif app_body.get("kind") != "app":
        problems.append(Problem(f"{APP_PATH}.kind", 'Must be "app": $.app holds the app definition.'))
    items = bundle.get("definitions")
    if not isinstance(items, list):
        problems.append(Problem("$.definitions", "Must be a list of definitions (it may be empty)."))
        return problems
    seen: dict[tuple[str, str], int] = {}
    for i, body in enumerate(items):
        path = f"$.definitions[{i}]"
        if not isinstance(body, dict):
            problems.append(Problem(path, "Must be a definition (a JSON object)."))
            continue
        kind, key = body.get("kind"), body.get("key")
        if kind == "app":
            problems.append(Problem(f"{path}.kind", "The app definition belongs at $.app, not among the "
                                                    "definitions; a bundle holds one app."))
        elif kind in KINDS_RESERVED:
            problems.append(Problem(f"{path}.kind", f"Definitions of kind '{kind}' are not available in this "
                                                    f"release; a bundle holds {_kinds_text()} definitions."))
        elif kind not in BUNDLE_KINDS:
            problems.append(Problem(f"{path}.kind", f"Unknown kind {kind!r}; a bundle holds {_kinds_text()} "
                                                    f"definitions."))
        if "key" not in body:
            problems.append(Problem(f"{path}.key", "Property 'key' is required."))
        elif not isinstance(key, str) or not _KEY_RE.match(key):
            problems.append(Problem(f"{path}.key", f"{key!r} is not a valid key: {KEY_HINT}."))
        elif kind in BUNDLE_KINDS:
            if (kind, key) in seen:
                problems.append(Problem(f"{path}.key", f"The {kind} '{key}' is already at "
                                                       f"$.definitions[{seen[kind, key]}]; each definition "
                                                       f"appears once. Remove one of them."))
            seen.setdefault((kind, key), i)
    return problems


def _kinds_text() -> str:
    return ", ".join(BUNDLE_KINDS[:-1]) + f" and {BUNDLE_KINDS[-1]}"


# --- import ----------------------------------------------------------------------------------

def import_bundle(session: Session, actor: User | None, bundle: Any, *, app_key: str | None = None) -> App:
    """Create a new app from ``bundle`` (under ``app_key``, default the key of the bundle's app).

    Every definition is checked first, against the other definitions of the bundle, and any problem
    raises :class:`DefinitionError` with all of them, each at its path in the bundle
    (``$.definitions[3].fields[2].type``); nothing is written then. A sound bundle is saved as drafts
    (entities may relate to each other) and published: entities, access, forms, pipelines, rules, the
    app definition last, in a savepoint, so nothing is left behind if that fails after all.
    Raises :class:`Conflict` when the app key is taken.
    """
    if actor is not None:
        authorize(session, actor, Action.MANAGE_APPS)
    problems = bundle_problems(bundle)
    if problems:
        raise _refusal(problems)
    if app_key is not None and not _KEY_RE.match(app_key):
        raise FormloomError(f"The new app key {app_key!r} is not valid: {KEY_HINT}.")
    app_body = copy.deepcopy(bundle["app"])
    key = app_key or app_body.get("key")
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise _refusal([Problem(f"{APP_PATH}.key", f"{key!r} is not a valid app key: {KEY_HINT}.")])
    if session.scalar(select(App.id).where(App.key == key)) is not None:
        raise Conflict(f"An app with key '{key}' already exists, so the bundle cannot be imported under it; "
                       f"choose a new key (`formloom app import FILE --key {key}_2`, or "
                       f"POST /api/v1/apps/import?key={key}_2), or remove that app first.")
    # The app definition's own key is the only place a body names its app: entities, forms,
    # pipelines and rules refer to each other by their own keys, never to the app.
    app_body["key"] = key
    items = [(i, copy.deepcopy(body)) for i, body in enumerate(bundle["definitions"])]
    items.sort(key=lambda item: BUNDLE_KINDS.index(item[1]["kind"]))  # stable: bundle order within a kind
    found = _check_all(key, app_body, items)
    if found:
        raise _refusal(found)
    try:
        with session.begin_nested():
            app = _write(session, actor, key, app_body, items)
    finally:
        catalog.forget(session)  # nothing remembered of a rolled-back app
    return app


def _check_all(key: str, app_body: dict, items: list[tuple[int, dict]]) -> list[Problem]:
    """Every problem of the bundle's definitions, checked as drafts of a new app holding all of them.

    The context is what :func:`definitions.app_context` gives once every draft is saved: all
    entities and pipelines of the bundle, and no published field types (the app is new).
    """
    ctx = AppContext(app_key=key,
                     entities={b["key"]: b for _, b in items if b["kind"] == "entity"},
                     pipelines={b["key"]: b for _, b in items if b["kind"] == "pipeline"})
    found: list[tuple[int, Problem]] = [(-1, p) for p in _prefixed(check_definition(app_body, ctx), -1)]
    broken: set[str] = set()  # entities with problems
    unchecked = []
    for index, body in items:
        try:
            problems = check_definition(body, ctx)
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            # Some cross-checks assume the related entities are sound (see formloom/builder/checks.py).
            unchecked.append(index)
            continue
        if problems and body["kind"] == "entity":
            broken.add(body["key"])
        found.extend((index, p) for p in _prefixed(problems, index))
    if unchecked and not broken:
        raise FormloomError("The bundle could not be checked: one of its definitions made the checks fail. "
                            "Please report this, with the bundle.")
    names = ", ".join(f"'{k}'" for k in sorted(broken))
    found.extend((index, Problem(f"$.definitions[{index}]", f"Not checked yet: it depends on entities with "
                                                            f"problems ({names}); fix those and import again."))
                 for index in unchecked)
    return _dedupe([p for _, p in sorted(found, key=lambda item: item[0])])


def _write(session: Session, actor: User | None, key: str, app_body: dict, items: list[tuple[int, dict]]) -> App:
    """Create the app and publish the checked definitions; a problem found now still names its path."""
    app = definitions.create_app(session, actor, key, app_body["label"], app_body.get("description"))
    steps = [(index, body, False) for index, body in items]  # drafts first, so relations resolve
    steps += [(index, body, True) for index, body in items]
    steps.append((-1, app_body, False))
    steps.append((-1, app_body, True))
    for index, body, publishing in steps:
        try:
            if publishing:
                definitions.publish(session, actor, app, body["kind"], body["key"])
            else:
                _, problems = definitions.save_draft(session, actor, app, body["kind"], body["key"], body)
                if problems and body["kind"] != "entity":  # an entity may relate to one saved after it
                    raise DefinitionError(problems)
        except DefinitionError as exc:
            raise _refusal(_prefixed(exc.problems, index)) from None
    return app


def _refusal(problems: list[Problem]) -> DefinitionError:
    problems = _dedupe(problems)
    count = len(problems)
    return DefinitionError(problems, f"This bundle cannot be imported: {count} problem{'s' if count != 1 else ''}; "
                                     f"nothing was imported.")


def _prefixed(problems: list[Problem], index: int) -> list[Problem]:
    """Problems of one definition at their path in the bundle (``$.fields[2]`` -> ``$.definitions[3].fields[2]``)."""
    prefix = APP_PATH if index < 0 else f"$.definitions[{index}]"
    return [Problem(prefix + p.path[1:] if p.path.startswith("$") else f"{prefix}.{p.path}", p.message)
            for p in problems]


def _dedupe(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


# --- summaries -------------------------------------------------------------------------------

def published_counts(session: Session, app: App) -> dict[str, int]:
    """How many published definitions of each bundle kind the app has (kinds without any left out)."""
    counts = Counter(d.kind for d in definitions.list_definitions(session, app)
                     if d.kind in BUNDLE_KINDS and d.published_version is not None)
    return {kind: counts[kind] for kind in BUNDLE_KINDS if counts[kind]}


def describe_counts(counts: dict[str, int]) -> str:
    """``{"entity": 4, "rule": 1}`` -> ``4 entities, 1 rule`` (``no definitions`` when empty)."""
    words = [f"{n} {_WORDS.get(kind, (kind, kind + 's'))[n != 1]}" for kind, n in counts.items()]
    return ", ".join(words) or "no definitions"


__all__ = ["BUNDLE_KINDS", "bundle_problems", "describe_counts", "export_app", "import_bundle",
           "published_counts"]

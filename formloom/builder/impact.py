"""What publishing a draft does to live data, counted in the database, and the admin's choice for each.

:func:`assess` compares a draft with the latest published body and returns every *impact* that
touches live records (not deleted) or published definitions: an option removed from a select
field, a field that becomes required, a pipeline stage removed, a field removed while rules, forms
or pipelines use it. :func:`resolve` takes the admin's choice per impact (``migrate``, ``block``
or ``proceed``), refuses while any is missing or blocks, and carries out the migrations, each
change in the record's history with the definition as its cause. A definition change never
deletes stored values: *proceed* leaves them as they are.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jsonschema import Draft202012Validator
from sqlalchemy import exists, func, literal_column, or_, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from formloom.platform.auth import Cause
from formloom.platform.db import json_value, utcnow
from formloom.platform.errors import DefinitionError, Problem
from formloom.platform.models import App, CauseKind, Definition, DefinitionVersion, Record, User
from formloom.runtime import catalog
from formloom.runtime.labels import text_of

CHOICES = ("migrate", "block", "proceed")
SAMPLE = 20  # record ids listed per impact
SELECT_TYPES = ("select", "multiselect")


@dataclass
class Impact:
    """One effect of publishing a draft on live data, and what the admin may do about it."""

    id: str  # stable: "<code>:<entity or pipeline>.<field or stage>[.<option>]"
    code: str  # option_removed | newly_required | stage_removed | {rule,form,pipeline}_field_removed
    count: int  # live records affected; for *_field_removed, the definitions using the field
    message: str
    choices: list[str]  # a subset of CHOICES
    targets: list[str] = field(default_factory=list)  # values a migration may move to ([] for a free value)
    sample: list[int] = field(default_factory=list)  # up to SAMPLE affected record ids
    rules: list[str] = field(default_factory=list)  # keys of the rules, forms or pipelines using a removed field
    scope: dict = field(default_factory=dict, repr=False, compare=False)  # what resolve needs; never shown

    def to_json(self) -> dict:
        return {"id": self.id, "code": self.code, "count": self.count, "message": self.message,
                "choices": list(self.choices), "targets": list(self.targets), "sample": list(self.sample),
                "rules": list(self.rules)}


class ImpactUnresolved(DefinitionError):
    """Publishing waits for a choice on some impact (or the admin chose to block it).

    The JSON error carries ``impacts``: every impact with its count, choices and targets.
    """

    def __init__(self, problems: list[Problem], impacts: list[Impact], message: str):
        super().__init__(problems, message)
        self.impacts = list(impacts)

    def extra(self) -> dict:
        return {"impacts": [i.to_json() for i in self.impacts]}


# --- assessing -------------------------------------------------------------------------------

def assess(session: Session, app: App, kind: str, key: str, old: dict | None, new: dict) -> list[Impact]:
    """Every impact of publishing ``new`` over the published ``old`` (None: first version)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    if kind == "entity":
        found = _entity_impacts(session, app, old, new)
    elif kind == "pipeline":
        found = _stage_impacts(session, app, key, old, new)
    else:
        found = []
    return [i for i in found if i.count > 0]


def preview(session: Session, app: App, kind: str, key: str) -> list[Impact]:
    """The impacts the current draft would have if published now ([] without a draft or a published version)."""
    from formloom.builder.checks import KINDS_AVAILABLE, metaschema_validator

    definition = catalog.get_definition(session, app, kind, key)
    if definition is None or not isinstance(definition.draft, dict) or definition.published_version is None:
        return []
    if kind not in KINDS_AVAILABLE or not metaschema_validator(kind).is_valid(definition.draft):
        return []  # a draft of the wrong shape cannot be published; its problems say what to fix first
    latest = catalog.published_version(session, app, kind, key)
    return assess(session, app, kind, key, latest.body if latest else None, definition.draft)


def _live(app: App, entity_key: str) -> list[ColumnElement]:
    return [Record.app_id == app.id, Record.entity_key == entity_key, Record.deleted_at.is_(None)]


def _count_and_sample(session: Session, app: App, entity_key: str, where: ColumnElement) -> tuple[int, list[int]]:
    conditions = [*_live(app, entity_key), where]
    count = session.scalar(select(func.count()).select_from(Record).where(*conditions)) or 0
    if not count:
        return 0, []
    return count, list(session.scalars(select(Record.id).where(*conditions).order_by(Record.id).limit(SAMPLE)))


def _records(count: int, entity_label: str) -> str:
    return f"{count} live {entity_label} record{'s' if count != 1 else ''}"


def _label(item: Mapping) -> str:
    return text_of(item.get("label") or item.get("key") or "", "en")


def _entity_impacts(session: Session, app: App, old: dict, new: dict) -> list[Impact]:
    entity_key, entity_label = new["key"], _label(new)
    before = {f["key"]: f for f in old.get("fields", [])}
    after = {f["key"] for f in new.get("fields", [])}
    found: list[Impact] = []
    for spec in new.get("fields", []):
        previous = before.get(spec["key"])
        if previous is not None and spec["type"] in SELECT_TYPES and previous["type"] == spec["type"]:
            found += _option_impacts(session, app, entity_key, entity_label, previous, spec)
        if spec.get("required") and not (previous or {}).get("required"):
            found += _required_impacts(session, app, new, spec)
    removed = [f for k, f in before.items() if k not in after]
    if removed:
        found += _reference_impacts(session, app, entity_key, entity_label, removed)
    return found


# option_removed

def holds_option(session: Session, field_key: str, value: str, multiple: bool) -> ColumnElement:
    """Records whose ``field_key`` is ``value`` (a multiselect: contains it), on SQLite and PostgreSQL."""
    if not multiple:
        return json_value(Record.data, field_key) == value
    if session.get_bind().dialect.name == "postgresql":
        return type_coerce(Record.data, JSONB)[field_key].contains([value])
    each = func.json_each(Record.data, f"$.{field_key}").table_valued("value")
    return exists(select(literal_column("1")).select_from(each).where(each.c.value == value))


def _option_impacts(session: Session, app: App, entity_key: str, entity_label: str, previous: dict,
                    spec: dict) -> list[Impact]:
    kept = [o["value"] for o in spec.get("options", [])]
    multiple = spec["type"] == "multiselect"
    found = []
    for option in previous.get("options", []):
        if option["value"] in kept:
            continue
        where = holds_option(session, spec["key"], option["value"], multiple)
        count, sample = _count_and_sample(session, app, entity_key, where)
        verb = "contain" if multiple else "hold"
        message = (f"Option '{_label(option)}' ({option['value']}) is removed from field '{_label(spec)}' of "
                   f"{entity_label}, and {_records(count, entity_label)} {verb}{'s' if count == 1 else ''} it. "
                   f"Migrate them to a remaining option ({', '.join(kept)}), proceed (the value stays stored and "
                   f"shows as an unknown option; editing such a record asks for a listed option), or block "
                   f"the publish and keep the option.")
        found.append(Impact(
            id=f"option_removed:{entity_key}.{spec['key']}.{option['value']}", code="option_removed", count=count,
            message=message, choices=["migrate", "proceed", "block"], targets=kept, sample=sample,
            scope={"entity": entity_key, "field": spec["key"], "option": option["value"], "multiple": multiple,
                   "where": where}))
    return found


# newly_required

def is_missing(session: Session, spec: dict) -> ColumnElement:
    """Records with no value in field ``spec``: absent, null, "" (text) or [] (lists)."""
    from formloom.runtime.fields import FIELD_TYPES

    value = json_value(Record.data, spec["key"])
    empty = "[]" if FIELD_TYPES[spec["type"]].schema(spec).get("type") == "array" else ""
    return or_(value.is_(None), value == empty)


def _required_impacts(session: Session, app: App, body: dict, spec: dict) -> list[Impact]:
    from formloom.runtime.fields import FIELD_TYPES, FILE_TYPES

    field_type = FIELD_TYPES[spec["type"]]
    if field_type.computed or spec["type"] == "table":
        return []  # the server fills computed fields; a table's requirement is its min_rows
    entity_key, entity_label = body["key"], _label(body)
    where = is_missing(session, spec)
    visible = _visibility(session, app, body, spec)
    if visible is None:
        count, sample = _count_and_sample(session, app, entity_key, where)
    else:
        ids = _visible_ids(session, app, entity_key, where, visible)
        count, sample = len(ids), ids[:SAMPLE]
    fillable = not spec.get("unique") and spec["type"] not in FILE_TYPES
    targets = [o["value"] for o in spec.get("options", [])] if spec["type"] in SELECT_TYPES else []
    fill = "fill them with one value you give (migrate), " if fillable else ""
    message = (f"Field '{_label(spec)}' of {entity_label} becomes required, and {_records(count, entity_label)} "
               f"{'have' if count != 1 else 'has'} no value in it"
               f"{' where it shows' if visible is not None else ''}. Choose: {fill}proceed (the value stays empty "
               f"until the record is next edited, which then asks for it), or block the publish.")
    return [Impact(id=f"newly_required:{entity_key}.{spec['key']}", code="newly_required", count=count,
                   message=message, choices=(["migrate"] if fillable else []) + ["proceed", "block"],
                   targets=targets, sample=sample,
                   scope={"entity": entity_key, "field": spec["key"], "definition": spec, "where": where,
                          "visible": visible})]


def _visibility(session: Session, app: App, body: dict, spec: dict) -> Callable[[Mapping], bool] | None:
    """For a required field shown only under a condition: whether a record's values show it."""
    condition = spec.get("visible_when")
    if condition is None:
        return None
    from formloom.runtime import conditions
    from formloom.runtime.compiler import field_kinds

    related = {b["key"]: b for b in catalog.published_bodies(session, app, "entity")}
    kinds = field_kinds(body["fields"], related)
    now = utcnow()
    return lambda values: conditions.evaluate(condition, values, kinds, today=now.date(), now=now)


def _visible_ids(session: Session, app: App, entity_key: str, where: ColumnElement,
                 visible: Callable[[Mapping], bool]) -> list[int]:
    rows = session.execute(select(Record.id, Record.data).where(*_live(app, entity_key), where).order_by(Record.id))
    return [record_id for record_id, data in rows if visible(data or {})]


# {rule,form,pipeline}_field_removed

def _reference_impacts(session: Session, app: App, entity_key: str, entity_label: str,
                       removed: list[dict]) -> list[Impact]:
    entities = {b["key"]: b for b in catalog.published_bodies(session, app, "entity")}
    users = {
        "rule": [(b["key"], rule_fields(b, entities)) for b in catalog.published_bodies(session, app, "rule")],
        "form": [(b["key"], {(b["entity"], k) for k in form_fields(b)})
                 for b in catalog.published_bodies(session, app, "form")],
        "pipeline": [(b["key"], {(b["entity"], k) for k in pipeline_fields(b)})
                     for b in catalog.published_bodies(session, app, "pipeline")],
    }
    stage_fields = {b["stage_field"] for b in catalog.published_bodies(session, app, "pipeline")
                    if b.get("entity") == entity_key}
    found = []
    for spec in removed:
        for kind, rows in users.items():
            keys = sorted(k for k, used in rows if (entity_key, spec["key"]) in used)
            if not keys:
                continue
            fatal = kind == "pipeline" and spec["key"] in stage_fields
            found.append(Impact(
                id=f"{kind}_field_removed:{entity_key}.{spec['key']}", code=f"{kind}_field_removed", count=len(keys),
                message=_reference_message(kind, spec, entity_label, keys, fatal),
                choices=["block"] if fatal else ["proceed", "block"], rules=keys,
                scope={"entity": entity_key, "field": spec["key"]}))
    return found


def _reference_message(kind: str, spec: dict, entity_label: str, keys: list[str], fatal: bool) -> str:
    names = f"{len(keys)} published {kind}{'s' if len(keys) != 1 else ''} ({', '.join(keys)})"
    verb = "uses" if len(keys) == 1 else "use"
    head = f"Field '{_label(spec)}' ({spec['key']}) is removed from {entity_label}, but {names} {verb} it."
    if fatal:
        return f"{head} It is the pipeline's stage field: change the pipeline first, then publish this (block)."
    effect = {"rule": "their conditions and actions then see no value for it",
              "form": "the forms then leave it out",
              "pipeline": "gates and cards then see no value for it"}[kind]
    return f"{head} Proceed ({effect}; edit them to stop using it) or block the publish and keep the field."


def rule_fields(body: Mapping, entities: Mapping[str, Mapping]) -> set[tuple[str, str]]:
    """Every (entity, field) a rule reads or writes: trigger, condition, actions and their formulas."""
    from formloom.runtime.conditions import fields_used

    entity = body.get("entity")
    out: set[tuple[str, str]] = set()
    trigger = body.get("trigger") or {}
    if isinstance(trigger.get("field"), str):
        out.add((entity, trigger["field"]))
    activity = trigger.get("activity") or {}
    if isinstance(activity, Mapping) and isinstance(activity.get("field"), str):
        out.add((activity.get("entity"), activity["field"]))
    out |= {(entity, k) for k in fields_used(body.get("condition"))}
    for action in body.get("actions") or []:
        out |= _action_fields(action, entity, entities)
    return out


def _action_fields(action: Mapping, entity: str, entities: Mapping[str, Mapping]) -> set[tuple[str, str]]:
    from formloom.runtime.conditions import fields_used

    out = {(entity, action[k]) for k in ("field", "map_field") if isinstance(action.get(k), str)}
    out |= {(entity, k) for k in fields_used(action.get("open_when"))}
    to = action.get("to")
    if isinstance(to, Mapping) and isinstance(to.get("field"), str):
        out.add((entity, to["field"]))
    target = action.get("entity") if action.get("type") == "create" else entity
    out |= {(target, k) for option in ("values", "formulas") for k in (action.get(option) or {})}
    if action.get("type") == "create" and isinstance(action.get("link_field"), str):
        out.add((target, action["link_field"]))
    for expression in (action.get("formulas") or {}).values():
        out |= {(entity, k) for k in _formula_fields(expression, entities.get(entity), entities)}
    return out


def _formula_fields(expression: Any, body: Mapping | None, entities: Mapping[str, Mapping]) -> set[str]:
    """The fields of ``body`` a formula reads (none when it does not compile against them)."""
    from formloom.runtime.compiler import formula_fields
    from formloom.runtime.formulas import FormulaError, compile_formula

    if not isinstance(expression, str) or body is None:
        return set()
    try:
        return set(compile_formula(expression, formula_fields(list(body["fields"]), entities)).references)
    except (FormulaError, KeyError, TypeError, ValueError):
        return set()


def form_fields(body: Mapping) -> set[str]:
    """The fields a form places or reads in its sections' conditions."""
    from formloom.runtime.conditions import fields_used

    out: set[str] = set()
    for section in body.get("sections") or []:
        out |= {k for k in section.get("fields") or [] if isinstance(k, str)}
        out |= fields_used(section.get("visible_when"))
    return out


def pipeline_fields(body: Mapping) -> set[str]:
    """The fields a pipeline names: stage, amount, date and card fields, gates, transitions, approvals."""
    from formloom.runtime.conditions import fields_used

    out = {body[k] for k in ("stage_field", "amount_field", "date_field") if isinstance(body.get(k), str)}
    out |= {k for k in body.get("card_fields") or [] if isinstance(k, str)}
    for stage in body.get("stages") or []:
        gate = stage.get("gate") or {}
        out |= {k for k in gate.get("required") or [] if isinstance(k, str)}
        for rule in gate.get("conditions") or []:
            out |= fields_used(rule.get("condition"))
        out |= fields_used((stage.get("approval") or {}).get("when"))
    transitions = body.get("transitions")
    for transition in transitions if isinstance(transitions, list) else []:
        out |= fields_used(transition.get("condition"))
        out |= fields_used((transition.get("approval") or {}).get("when"))
    return out


# stage_removed

def _stage_impacts(session: Session, app: App, key: str, old: dict, new: dict) -> list[Impact]:
    from formloom.runtime import pipelines

    stranded = pipelines.stranded_records(session, app, old, new)
    kept = [s["key"] for s in new["stages"]]
    stage_labels = {s["key"]: _label(s) for s in old["stages"]}
    entity_body = catalog.published_version(session, app, "entity", old["entity"])
    entity_label = _label(entity_body.body) if entity_body else old["entity"]
    found = []
    for stage in sorted(stranded):  # stages holding live records
        where = json_value(Record.data, old["stage_field"]) == stage
        count, sample = _count_and_sample(session, app, old["entity"], where)
        message = (f"Stage '{stage_labels.get(stage, stage)}' ({stage}) is removed from pipeline '{_label(new)}', "
                   f"and {_records(count, entity_label)} {'are' if count != 1 else 'is'} in it. Migrate them to a "
                   f"remaining stage ({', '.join(kept)}) or block the publish and keep the stage; records cannot "
                   f"be left in a stage that no longer exists.")
        found.append(Impact(id=f"stage_removed:{key}.{stage}", code="stage_removed", count=count, message=message,
                            choices=["migrate", "block"], targets=kept, sample=sample,
                            scope={"entity": old["entity"], "stage": stage, "pipeline": new}))
    return found


# --- resolving -------------------------------------------------------------------------------

def resolve(session: Session, actor: User | None, app: App, kind: str, key: str, impacts: list[Impact],
            choices: Mapping[str, Any], now: datetime) -> list[dict]:
    """Apply the admin's choice for every impact and return the decisions (JSON) to store with the version.

    Refuses with :class:`ImpactUnresolved` (nothing changed) while any impact lacks a valid choice
    or its choice is ``block``. Migrations rewrite the records' stored values directly (the new
    version is not published yet), one change-log entry per record, caused by the definition.
    """
    decisions, problems = [], []
    for item in impacts:
        decision, problem = _decide(session, app, item, choices.get(item.id))
        decisions.append(decision)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise ImpactUnresolved(problems, impacts, _refusal(kind, key, decisions))
    version = _next_version(session, app, kind, key)
    cause = Cause(CauseKind.DEFINITION, actor.id if actor else None, f"{kind}:{key}@{version}")
    migrations = [(i, d) for i, d in zip(impacts, decisions, strict=True) if d["action"] == "migrate"]
    _move_stages(session, actor, app, [(i, d) for i, d in migrations if i.code == "stage_removed"], version, now)
    _migrate_values(session, app, cause, [(i, d) for i, d in migrations if i.code != "stage_removed"], now)
    return decisions


def _decide(session: Session, app: App, item: Impact, choice: Any) -> tuple[dict, Problem | None]:
    """The decision for one impact, or the problem that keeps it from being one."""
    decision = {"id": item.id, "code": item.code, "count": item.count, "action": None}
    path = "$.stages" if item.code == "stage_removed" else f"impact.{item.id}"
    action = choice.get("action") if isinstance(choice, Mapping) else None
    if action not in item.choices:
        return decision, Problem(path, _missing_message(item, action))
    decision["action"] = action
    if isinstance(choice, Mapping) and choice.get("default"):
        decision["default"] = True  # chosen for a caller that made no choice
    if action == "block":
        return decision, Problem(f"impact.{item.id}", f"Publishing is blocked by your choice: {item.message} "
                                                      f"Change the draft, or choose {_others(item, 'block')}.")
    if action != "migrate":
        return decision, None
    if item.code == "newly_required":
        raw = choice["value"] if "value" in choice else choice.get("to")  # "to": a value picked from targets
        value, problem = _fill_value(session, app, item, raw)
        decision["value"] = value
        return decision, problem
    target = choice.get("to")
    decision["to"] = target
    if target not in item.targets:
        return decision, Problem(f"impact.{item.id}", f"{target!r} is not a place to migrate to for {item.id}; "
                                                      f"use one of: {', '.join(item.targets)}.")
    return decision, None


def _others(item: Impact, but: str) -> str:
    return " or ".join(c for c in item.choices if c != but) or "to keep the change out of this version"


def _missing_message(item: Impact, action: Any) -> str:
    example = {"action": item.choices[0]}
    if item.code in ("option_removed", "stage_removed"):
        example = {"action": "migrate", "to": f"<one of {', '.join(item.targets)}>"}
    elif item.code == "newly_required" and "migrate" in item.choices:
        example = {"action": "migrate", "value": "<a value>"}
    choice = f"impact: {{\"{item.id}\": {_json(example)}}}"
    if item.code == "stage_removed":  # worded as before impacts existed; stage_moves still works
        return _stage_message(item, action, choice)
    shown = "no choice" if action is None else f"the choice {action!r}"
    return f"{item.message} Got {shown}; say what happens ({' / '.join(item.choices)}), e.g. {choice}."


def _stage_message(item: Impact, action: Any, choice: str) -> str:
    stage, entity, many = item.scope["stage"], item.scope["entity"], item.count != 1
    lead = "" if action is None else f"{action!r} is not a choice for a removed stage: records cannot stay in it. "
    return (f"{lead}Stage '{stage}' is removed but {item.count} {entity} record{'s are' if many else ' is'} in it; "
            f"say where {'they go' if many else 'it goes'} (stage_moves: {{\"{stage}\": \"<one of "
            f"{', '.join(item.targets)}>\"}}, or {choice}) or keep the stage.")


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def _refusal(kind: str, key: str, decisions: list[dict]) -> str:
    blocked = [d["id"] for d in decisions if d["action"] == "block"]
    if blocked:
        return f"The {kind} '{key}' is not published: you chose to block it for {', '.join(blocked)}."
    return (f"The {kind} '{key}' cannot be published yet: say what happens to live data for each impact "
            f"(migrate, block or proceed).")


def _fill_value(session: Session, app: App, item: Impact, raw: Any) -> tuple[Any, Problem | None]:
    """The admin's fill value for a newly required field, coerced and checked like a form's input."""
    from formloom.runtime.compiler import CUSTOM_KEYWORDS, RecordValidator
    from formloom.runtime.fields import FIELD_TYPES, CoercionError

    spec = item.scope["definition"]
    field_type = FIELD_TYPES[spec["type"]]
    path, label = f"impact.{item.id}", _label(spec)
    try:
        value = field_type.coerce(raw, spec)
    except CoercionError as exc:
        return raw, Problem(path, f"The value to fill {label} with {exc.message.render('en')}; give a valid one.")
    if value is None:
        return raw, Problem(path, f"Give the value to fill {label} with in the {item.count} records "
                                  f"(\"value\": ...), or choose {_others(item, 'migrate')}.")
    validator = RecordValidator(field_type.schema(spec), format_checker=Draft202012Validator.FORMAT_CHECKER)
    for error in validator.iter_errors(value):
        ending = error.formloom_message if error.validator in CUSTOM_KEYWORDS else field_type.message(
            error.validator, error.instance, spec, error.validator_value)
        return value, Problem(path, f"The value to fill {label} with {ending.render('en')}; give a valid one.")
    missing = _missing_references(session, app, spec, value)
    if missing:
        return value, Problem(path, f"The value to fill {label} with must be {field_type.describes}; "
                                    f"#{missing[0]} is not one.")
    return value, None


def _missing_references(session: Session, app: App, spec: dict, value: Any) -> list[int]:
    from formloom.runtime.records import DatabaseResolver

    if spec["type"] not in ("user", "users", "relation", "relations"):
        return []
    ids = value if isinstance(value, list) else [value]
    resolver = DatabaseResolver(session, app)
    found = (resolver.existing_users(ids) if spec["type"] in ("user", "users")
             else resolver.existing_records(spec["target"], ids))
    return [i for i in ids if i not in found]


def _next_version(session: Session, app: App, kind: str, key: str) -> int:
    latest = session.scalar(select(func.max(DefinitionVersion.version)).join(Definition).where(
        Definition.app_id == app.id, Definition.kind == kind, Definition.key == key))
    return (latest or 0) + 1


def _move_stages(session: Session, actor: User | None, app: App, moves: list[tuple[Impact, dict]], version: int,
                 now: datetime) -> None:
    """Move the records of removed stages (through :func:`pipelines.move_stranded`: visits and events)."""
    if not moves:
        return
    from formloom.runtime import pipelines

    pipeline = pipelines.compile_pipeline(moves[0][0].scope["pipeline"], version)
    pipelines.move_stranded(session, actor, app, pipeline, {i.scope["stage"]: d["to"] for i, d in moves}, now)


def _migrate_values(session: Session, app: App, cause: Cause, migrations: list[tuple[Impact, dict]],
                    now: datetime) -> None:
    """Rewrite stored values as decided; one history entry per record, whatever the number of impacts."""
    from formloom.runtime.records import diff, write_change

    touched: dict[int, tuple[Record, dict]] = {}
    with session.no_autoflush:  # one version bump per record, once every value is in place
        for item, decision in migrations:
            for record in _affected(session, app, item):
                _, before = touched.setdefault(record.id, (record, dict(record.data)))
                record.data = _migrated(item, decision, record.data)
    for record, before in touched.values():
        changes = diff(before, record.data)
        if changes:
            record.updated_at = now
            write_change(session, record, changes, cause, now)
    session.flush()
    _enter_stages(session, app, cause, [(r, b) for r, b in touched.values()], now)


def _affected(session: Session, app: App, item: Impact) -> Iterable[Record]:
    records = session.scalars(select(Record).where(*_live(app, item.scope["entity"]), item.scope["where"])
                              .order_by(Record.id))
    visible = item.scope.get("visible")
    return [r for r in records if visible is None or visible(r.data or {})]


def _migrated(item: Impact, decision: dict, data: Mapping) -> dict:
    key = item.scope["field"]
    if item.code == "newly_required":
        return {**data, key: decision["value"]}
    old, new = item.scope["option"], decision["to"]
    value = data.get(key)
    if not isinstance(value, list):
        return {**data, key: new} if value == old else dict(data)
    replaced: list = []
    for v in value:
        v = new if v == old else v
        if v not in replaced:
            replaced.append(v)
    return {**data, key: replaced}


def _enter_stages(session: Session, app: App, cause: Cause, touched: list[tuple[Record, dict]], now: datetime) -> None:
    """A migrated value of a pipeline's stage field is a move: close the old stage visit, open the new."""
    from formloom.runtime import pipelines

    for record, before in touched:
        pipeline = pipelines.pipeline_for(session, app, record.entity_key)
        if pipeline is not None and before.get(pipeline.stage_field) != record.data.get(pipeline.stage_field):
            pipelines.record_entry(session, app, pipeline, record, record.data.get(pipeline.stage_field),
                                   cause.user_id, now)

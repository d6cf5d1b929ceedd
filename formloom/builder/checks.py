"""Check a definition: its kind's meta-schema, then cross-references; every problem with its path."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource

from formloom.platform.errors import Problem
from formloom.runtime.compiler import RecordValidator
from formloom.runtime.deliveries import literal_problem
from formloom.runtime.fields import FIELD_TYPES, CheckContext, CoercionError

METASCHEMAS = Path(__file__).parent / "metaschemas"
KINDS_AVAILABLE = ("app", "entity", "form", "pipeline", "rule", "access", "view", "commission", "dashboard")
KINDS_RESERVED: tuple[str, ...] = ()
TITLE_TYPES = frozenset({"text", "email", "phone", "url", "integer", "select", "date", "serial"})
UNSTORABLE = "Contains a NUL character or a broken (surrogate) character, which cannot be stored; remove it."
KEY_HINT = "use lowercase letters, digits and underscores, starting with a letter (at most 64)"


@dataclass
class AppContext:
    """What cross-reference checks need to know about the rest of the app."""

    app_key: str
    entities: dict[str, dict] = field(default_factory=dict)  # key -> body (draft or published)
    published_types: dict[str, dict[str, str]] = field(default_factory=dict)  # entity -> key -> type
    pipelines: dict[str, dict] = field(default_factory=dict)  # key -> body (draft or published)


def _load(name: str) -> dict:
    return json.loads((METASCHEMAS / f"{name}.json").read_text(encoding="utf-8"))


@cache
def metaschema_validator(kind: str) -> Draft202012Validator:
    """The validator of one kind's meta-schema; the entity one is completed from the registry."""
    schema = _load(kind)
    if kind == "entity":
        field_schema = schema["$defs"]["field"]
        field_schema["properties"]["type"]["enum"] = list(FIELD_TYPES)
        field_schema["allOf"] = [
            {"if": {"properties": {"type": {"const": name}}, "required": ["type"]},
             "then": _with_label_refs(t.option_schema())}
            for name, t in FIELD_TYPES.items()
        ]
    common = _load("common")
    registry = Registry().with_resource("formloom:common", Resource.from_contents(common))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=registry,
                                format_checker=Draft202012Validator.FORMAT_CHECKER)


def _with_label_refs(schema: Any) -> Any:
    """Point the registry's local ``#/$defs/label`` references at the common label schema."""
    if isinstance(schema, dict):
        return {k: ("formloom:common#/$defs/label" if k == "$ref" and v == "#/$defs/label"
                    else _with_label_refs(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_with_label_refs(v) for v in schema]
    return schema


def check_definition(body: Any, ctx: AppContext) -> list[Problem]:
    """Return every problem of a definition, each with its JSON path; empty when it is sound."""
    if not isinstance(body, dict):
        return [Problem("$", "A definition must be a JSON object.")]
    problems = list(_unstorable_text(body, "$"))
    if problems:  # first: even a body of an unknown kind is kept as a draft, and must be storable
        return problems
    kind = body.get("kind")
    if kind in KINDS_RESERVED:
        return [Problem("$.kind", f"Definitions of kind '{kind}' are not available in this release; "
                                  f"use one of: {', '.join(KINDS_AVAILABLE)}.")]
    if kind not in KINDS_AVAILABLE:
        return [Problem("$.kind", f"Unknown kind {kind!r}; use one of: "
                                  f"{', '.join(KINDS_AVAILABLE + KINDS_RESERVED)}.")]
    problems = list(_metaschema_problems(kind, body))
    problems.extend(CROSS_CHECKS[kind](body, ctx, {p.path for p in problems}))
    return _dedupe(problems)


def _scalars(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every scalar of a JSON document (object keys included) with its path."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield path, key
            yield from _scalars(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _scalars(item, f"{path}[{i}]")
    else:
        yield path, value


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone UTF-16 surrogate
        return False
    return "\x00" not in text


def _unstorable_text(value: Any, path: str) -> Iterator[Problem]:
    """Text that cannot be stored: NUL characters and lone surrogates (anywhere in the body)."""
    for where, item in _scalars(value, path):
        if isinstance(item, str) and not _storable(item):
            yield Problem(where, UNSTORABLE)


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen, out = set(), []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    return out


# --- meta-schema errors in plain words -------------------------------------------------------

def _metaschema_problems(kind: str, body: dict) -> Iterator[Problem]:
    for error in metaschema_validator(kind).iter_errors(body):
        yield from _explain(error)


def _explain(error: ValidationError) -> Iterator[Problem]:
    path, value, keyword = error.json_path, error.instance, error.validator
    if keyword == "required":
        for name in error.validator_value:
            if isinstance(value, dict) and name not in value:
                yield Problem(f"{path}.{name}", f"Property '{name}' is required.")
    elif keyword in ("additionalProperties", "unevaluatedProperties"):
        known = set(error.schema.get("properties", {}))
        if keyword == "unevaluatedProperties" and isinstance(value, dict):
            known |= _field_options(value.get("type"))
        for name in value:
            if name not in known:
                yield Problem(f"{path}.{name}", f"Unknown property '{name}'; remove it or check its spelling.")
    elif keyword == "enum" and path.endswith(".type"):
        yield Problem(path, f"{value!r} is not a field type; use one of: {', '.join(FIELD_TYPES)}.")
    elif keyword == "anyOf" and re.search(r"\.sections\[\d+\]\.fields\[\d+\]$", path):
        yield Problem(path, "Each item of a section must be a field key, {\"field\": key, ...} to place a field "
                            "with a width, help or show-when of its own, or {\"text\": ...} for a line of text.")
    elif keyword == "minItems" and re.search(r"\.sections\[\d+\]\.fields$", path):
        yield Problem(path, "This section has no fields; add one or remove the section.")
    elif keyword == "minItems":
        count = error.validator_value
        yield Problem(path, f"Needs at least {count} item{'s' if count != 1 else ''}; add "
                            f"{'one' if count == 1 else 'more'}.")
    elif keyword == "anyOf" and re.search(r"\.transitions\[\d+\]\.from$", path):
        yield Problem(path, 'Must be a stage key, a list of stage keys, or "*" for any stage.')
    elif keyword == "anyOf" and path == "$.transitions":
        yield Problem(path, 'Must be "any" (every stage to every other) or a list of transitions '
                            'like {"from": "lead", "to": "proposal"}.')
    elif keyword == "anyOf" and re.search(r"\.roles\[\d+\]\.entities$", path):
        yield Problem(path, f"Names an entity with a key that is not valid ({KEY_HINT}); use an entity's key, "
                            f"or \"*\" for every entity not named.")
    elif keyword == "anyOf" and re.search(r"\.roles\[\d+\]\.entities(\.\w+|\['[^']*'\])\.\w+$", path):
        yield Problem(path, 'Must be false, a scope ("own", "team" or "all"; true means "all"), or '
                            '{"scope": ..., "when": condition} to narrow the scope.')
    elif keyword == "anyOf":  # otherwise only labels and help texts are written as anyOf
        yield Problem(path, "Must be text, or a map of languages (en, zh-CN) to text, "
                            "like {\"en\": \"Amount\", \"zh-CN\": \"金额\"}.")
    elif keyword == "pattern" and error.validator_value == "^[a-z][a-z0-9_]{0,63}$":
        yield Problem(path, f"{value!r} is not a valid key: {KEY_HINT}.")
    elif keyword == "const":
        yield Problem(path, f"Must be {json.dumps(error.validator_value)}.")
    else:
        yield Problem(path, error.message[0].upper() + error.message[1:] + ".")


def _field_options(type_name: Any) -> set[str]:
    base = set(metaschema_validator("entity").schema["$defs"]["field"]["properties"])
    field_type = FIELD_TYPES.get(type_name) if isinstance(type_name, str) else None
    return base | (set(field_type.option_schema()["properties"]) if field_type else set())


# --- cross-reference checks ------------------------------------------------------------------

def _fields_of(body: dict) -> list[tuple[int, dict]]:
    fields = body.get("fields")
    if not isinstance(fields, list):
        return []
    return [(i, f) for i, f in enumerate(fields) if isinstance(f, dict) and isinstance(f.get("key"), str)]


def check_entity(body: dict, ctx: AppContext, broken: set[str]) -> Iterator[Problem]:
    fields = _fields_of(body)
    first_at: dict[str, int] = {}
    for i, f in fields:
        if f["key"] in first_at:
            yield Problem(f"$.fields[{i}].key", f"Field key '{f['key']}' is used twice "
                                                f"(first at $.fields[{first_at[f['key']]}]); keys must be unique.")
        first_at.setdefault(f["key"], i)
    by_key = {f["key"]: f for _, f in fields}
    title = body.get("title_field")
    if isinstance(title, str):
        if title not in by_key:
            yield Problem("$.title_field", f"Title field '{title}' is not a field of this entity.")
        elif by_key[title].get("type") not in TITLE_TYPES:
            yield Problem("$.title_field", f"Field '{title}' cannot be the title; use a field of type "
                                           f"{', '.join(sorted(TITLE_TYPES))}.")
    owner = body.get("owner_field")
    if isinstance(owner, str) and by_key.get(owner, {}).get("type") != "user":
        users = ", ".join(k for k, f in by_key.items() if f.get("type") == "user") or "none"
        yield Problem("$.owner_field", f"Owner field '{owner}' must be a user field of this entity "
                                       f"(user fields: {users}).")
    if isinstance(body.get("pool"), dict) and not any(p.startswith("$.pool") for p in broken):
        yield from _check_pool(body["pool"], by_key)
    field_ctx = CheckContext(entity_keys=set(ctx.entities) | {body.get("key")},
                             entities={**ctx.entities, body.get("key"): body})
    earlier = ctx.published_types.get(body.get("key"), {})
    for i, f in fields:
        path = f"$.fields[{i}]"
        field_type = FIELD_TYPES.get(f.get("type"))
        # Type-specific checks assume the field's options passed the meta-schema.
        if field_type is None or any((p == path or p.startswith(path + ".")) and p != f"{path}.key"
                                     for p in broken):
            continue
        yield from field_type.check(f, path, field_ctx)
        if f["key"] in earlier and earlier[f["key"]] != f["type"]:
            yield Problem(f"{path}.type", f"Field '{f['key']}' was published as {earlier[f['key']]}; its type "
                                          f"cannot change. Add a field with a new key instead.")
        if "default" in f:
            yield from _check_default(f, path)
    if not any(p.startswith("$.fields") for p in broken):
        yield from check_logic(body, field_ctx.entities)


POOL_FIELDS = {"field": (("user",), "a user field"),
               "returned_at_field": (("datetime", "date"), "a date-and-time or date field"),
               "reason_field": (("text", "textarea"), "a text field")}


def _check_pool(pool: dict, by_key: dict) -> Iterator[Problem]:
    """The public pool's fields: the user field that is empty in the pool, where returns are noted."""
    for option, (types, words) in POOL_FIELDS.items():
        key = pool.get(option)
        if key is None:
            continue
        if by_key.get(key, {}).get("type") not in types:
            fitting = ", ".join(k for k, f in by_key.items() if f.get("type") in types) or "none"
            yield Problem(f"$.pool.{option}", f"'{key}' must be {words} of this entity (fitting fields: {fitting}).")


def _check_default(f: dict, path: str) -> Iterator[Problem]:
    field_type = FIELD_TYPES[f["type"]]
    try:
        value = field_type.coerce(f["default"], f)
    except CoercionError as exc:
        yield Problem(f"{path}.default", f"The default of field '{f['key']}' {exc}.")
        return
    validator = RecordValidator(field_type.schema(f), format_checker=Draft202012Validator.FORMAT_CHECKER)
    if value is not None and not validator.is_valid(value):
        yield Problem(f"{path}.default", f"The default of field '{f['key']}' is not a valid "
                                         f"{field_type.name} value for this field.")


UNIQUE_TYPES = frozenset({"text", "email", "phone", "url", "integer"})
DEFAULT_SOURCES = {"current_user": ("user", "users"), "today": ("date",), "now": ("datetime",)}
CONDITION_OPTIONS = ("visible_when", "required_when", "readonly_when")


def check_logic(body: dict, entities: dict[str, dict]) -> Iterator[Problem]:
    """Conditions, formulas, linkage, lookups, cascades and submission checks of an entity."""
    from formloom.runtime import conditions
    from formloom.runtime.compiler import field_kinds, formula_fields
    from formloom.runtime.formulas import FieldInfo, FormulaError, compile_formula, evaluation_order

    fields = [f for _, f in _fields_of(body)]
    related = {f["target"]: entities[f["target"]] for f in fields
               if f.get("type") in ("relation", "relations") and f.get("target") in entities}
    kinds = field_kinds(fields, related)
    info = formula_fields(fields, related)
    by_key = {f["key"]: f for f in fields}
    formulas = {}
    for i, f in _fields_of(body):
        path, key = f"$.fields[{i}]", f["key"]
        for option in CONDITION_OPTIONS:
            if option in f:
                yield from (Problem(p, m) for p, m in conditions.check(f[option], kinds, f"{path}.{option}"))
        for option, source in (("expression", f.get("expression") if f["type"] == "formula" else None),
                               ("default_formula", f.get("default_formula"))):
            if source is None:
                continue
            try:
                compiled = compile_formula(source, info)
            except FormulaError as exc:
                yield Problem(f"{path}.{option}", f"Field '{key}': {exc.message}")
                continue
            if option == "expression":
                formulas[key] = compiled
        if f.get("unique") and f["type"] not in UNIQUE_TYPES:
            yield Problem(f"{path}.unique", f"Field '{key}' is of type {f['type']}; only fields of type "
                                            f"{', '.join(sorted(UNIQUE_TYPES))} can be unique.")
        source = f.get("default_from")
        if source and f["type"] not in DEFAULT_SOURCES[source]:
            yield Problem(f"{path}.default_from", f"Field '{key}' cannot default to {source}; that fits fields "
                                                  f"of type {', '.join(DEFAULT_SOURCES[source])}.")
        yield from _check_links(f, path, by_key, entities)
        if f["type"] == "table":
            yield from _check_row_formulas(f, path, FieldInfo)
    try:
        evaluation_order(formulas)
    except FormulaError as exc:
        yield Problem("$.fields", exc.message)
    for i, check in enumerate(body.get("checks") or []):
        for option in ("condition", "when"):
            if option in check:
                yield from (Problem(p, m) for p, m in conditions.check(check[option], kinds, f"$.checks[{i}].{option}"))
        if check.get("field") and check["field"] not in by_key:
            yield Problem(f"$.checks[{i}].field",
                          f"Check names field '{check['field']}', which this entity does not have.")


def _check_row_formulas(table: dict, path: str, field_info) -> Iterator[Problem]:
    from formloom.runtime.formulas import FormulaError, compile_formula, evaluation_order

    columns = [c for c in table.get("fields", []) if isinstance(c, dict) and c.get("type") in FIELD_TYPES]
    info = {c["key"]: field_info(FIELD_TYPES[c["type"]].kind_of(c)) for c in columns}
    formulas = {}
    for j, column in enumerate(table.get("fields", [])):
        if isinstance(column, dict) and column.get("type") == "formula":
            if not isinstance(column.get("expression"), str):
                yield Problem(f"{path}.fields[{j}].expression", f"Column '{column.get('key')}' needs an expression.")
                continue
            try:
                formulas[column["key"]] = compile_formula(column["expression"], info)
            except FormulaError as exc:
                yield Problem(f"{path}.fields[{j}].expression", f"Column '{column['key']}': {exc.message}")
    try:
        evaluation_order(formulas)
    except FormulaError as exc:
        yield Problem(f"{path}.fields", exc.message)


def _check_links(f: dict, path: str, by_key: dict, entities: dict[str, dict]) -> Iterator[Problem]:
    key = f["key"]
    if f["type"] == "lookup":
        relation = by_key.get(f.get("relation"))
        if relation is None or relation.get("type") != "relation":
            relations = ", ".join(k for k, v in by_key.items() if v.get("type") == "relation") or "none"
            yield Problem(f"{path}.relation", f"Lookup '{key}' must name a relation field of this entity "
                                              f"(relation fields: {relations}).")
            return
        target = entities.get(relation.get("target"))
        if target and f.get("field") not in {t["key"] for t in target["fields"]}:
            yield Problem(f"{path}.field", f"Lookup '{key}' shows field '{f.get('field')}', which entity "
                                           f"'{relation['target']}' does not have.")
    if f["type"] in ("relation", "relations"):
        target = entities.get(f.get("target"))
        target_keys = {t["key"] for t in target["fields"]} if target else set()
        for option in ("fill", "filter"):
            for own, theirs in (f.get(option) or {}).items():
                here, there = (own, theirs) if option == "fill" else (theirs, own)
                if here not in by_key:
                    yield Problem(f"{path}.{option}.{own}", f"Field '{key}' {option}s with '{here}', which this "
                                                            f"entity does not have.")
                elif option == "fill" and FIELD_TYPES[by_key[here]["type"]].computed:
                    yield Problem(f"{path}.{option}.{own}", f"Field '{here}' is computed and cannot be filled.")
                if target and there not in target_keys:
                    yield Problem(f"{path}.{option}.{own}", f"Field '{key}' {option}s with '{there}', which "
                                                            f"entity '{f['target']}' does not have.")
    if f["type"] in ("select", "multiselect") and f.get("filter_by") and (
            f["filter_by"] not in by_key or f["filter_by"] == key):
            yield Problem(f"{path}.filter_by", f"Field '{key}' is filtered by '{f['filter_by']}', which is not "
                                               f"another field of this entity.")


def _entity_of(body: dict, ctx: AppContext, broken: set[str]) -> tuple[str | None, list[Problem]]:
    """The entity a form, pipeline or rule is about, or the problem of naming one the app lacks."""
    entity_key = body.get("entity")
    if not isinstance(entity_key, str) or "$.entity" in broken:
        return None, []
    if entity_key in ctx.entities:
        return entity_key, []
    known = ", ".join(sorted(ctx.entities)) or "none yet"
    return None, [Problem("$.entity", f"App '{ctx.app_key}' has no entity '{entity_key}' (entities: {known}).")]


def check_form(body: dict, ctx: AppContext, broken: set[str]) -> Iterator[Problem]:
    entity_key, problems = _entity_of(body, ctx, broken)
    yield from problems
    if entity_key is None:
        return
    entity_body = ctx.entities[entity_key]
    entity_fields = {f["key"]: f for _, f in _fields_of(entity_body)}
    placed: dict[str, str] = {}
    for s, section in enumerate(body.get("sections") or []):
        if not isinstance(section, dict) or not isinstance(section.get("fields"), list):
            continue
        if isinstance(section.get("visible_when"), dict):
            yield from _form_condition(section["visible_when"], entity_fields, ctx, f"$.sections[{s}].visible_when")
        for j, item in enumerate(section["fields"]):
            path = f"$.sections[{s}].fields[{j}]"
            key = item.get("field") if isinstance(item, dict) else item
            if not isinstance(key, str):
                continue
            if isinstance(item, dict) and isinstance(item.get("visible_when"), dict):
                yield from _form_condition(item["visible_when"], entity_fields, ctx, f"{path}.visible_when")
            if isinstance(item, dict):
                path += ".field"
            if key not in entity_fields:
                yield Problem(path, f"Entity '{entity_key}' has no field '{key}'.")
            elif key in placed:
                yield Problem(path, f"Field '{key}' is already placed at {placed[key]}.")
            placed.setdefault(key, path)
    for key, f in entity_fields.items():
        if (f.get("required") or f.get("min_rows")) and key not in placed:
            yield Problem("$.sections", f"Field '{key}' is required by entity '{entity_key}' "
                                        f"but is not on this form; add it to a section.")


def _form_condition(condition: dict, entity_fields: dict[str, dict], ctx: AppContext, path: str) -> Iterator[Problem]:
    from formloom.runtime import conditions
    from formloom.runtime.compiler import field_kinds

    kinds = field_kinds(list(entity_fields.values()), ctx.entities)
    yield from (Problem(p, m) for p, m in conditions.check(condition, kinds, path))


def check_app(body: dict, ctx: AppContext, broken: set[str]) -> Iterator[Problem]:
    zone = body.get("time_zone")
    if isinstance(zone, str) and "$.time_zone" not in broken:
        try:
            ZoneInfo(zone)
        except (ValueError, KeyError, ZoneInfoNotFoundError):
            yield Problem("$.time_zone", f"{zone!r} is not a time zone; use a name such as 'Asia/Shanghai' or 'UTC'.")
    if isinstance(body.get("key"), str) and body["key"] != ctx.app_key:
        yield Problem("$.key", f"The app definition's key must be '{ctx.app_key}', the app's own key.")
    for i, key in enumerate(body.get("navigation") or []):
        if isinstance(key, str) and key not in ctx.entities:
            yield Problem(f"$.navigation[{i}]", f"App '{ctx.app_key}' has no entity '{key}'.")


NUMBER_KIND, DATE_KINDS = "number", ("date", "datetime")


def check_pipeline(body: dict, ctx: AppContext, broken: set[str]) -> Iterator[Problem]:
    """The entity and its stage field, stage keys, gates, transitions and approvals."""
    from formloom.runtime.compiler import field_kinds

    entity_key = body.get("entity")
    if not isinstance(entity_key, str) or "$.entity" in broken:
        return
    for other_key, other in ctx.pipelines.items():
        if other_key != body.get("key") and isinstance(other, dict) and other.get("entity") == entity_key:
            yield Problem("$.entity", f"Entity '{entity_key}' already has pipeline '{other_key}'; an entity has "
                                      f"one pipeline. Edit that one instead.")
    entity_key, problems = _entity_of(body, ctx, broken)
    yield from problems
    if entity_key is None:
        return
    fields = {f["key"]: f for _, f in _fields_of(ctx.entities[entity_key])}
    kinds = field_kinds(list(fields.values()), ctx.entities)
    yield from _check_pipeline_fields(body, entity_key, fields, kinds)
    stages = [s for s in body.get("stages") or [] if isinstance(s, dict) and isinstance(s.get("key"), str)]
    stage_keys = [s["key"] for s in stages]
    stage_field = fields.get(body.get("stage_field"))
    options = {o.get("value") for o in (stage_field or {}).get("options", []) if isinstance(o, dict)}
    seen: set[str] = set()
    for i, stage in enumerate(body.get("stages") or []):
        if not isinstance(stage, dict) or not isinstance(stage.get("key"), str):
            continue
        path = f"$.stages[{i}]"
        if stage["key"] in seen:
            yield Problem(f"{path}.key", f"Stage '{stage['key']}' is listed twice; stage keys must be unique.")
        seen.add(stage["key"])
        if stage_field is not None and stage_field.get("type") == "select" and stage["key"] not in options:
            yield Problem(f"{path}.key", f"Stage '{stage['key']}' is not an option of field '{body['stage_field']}'; "
                                         f"add the option to entity '{entity_key}' first "
                                         f"(options: {', '.join(sorted(map(str, options)))}).")
        yield from _check_gate(stage.get("gate"), f"{path}.gate", fields, kinds)
        if isinstance(stage.get("approval"), dict):
            yield from _check_approval(stage["approval"], f"{path}.approval", kinds)
    transitions = body.get("transitions")
    if isinstance(transitions, list) and "$.transitions" not in broken:
        for i, transition in enumerate(transitions):
            if isinstance(transition, dict):
                yield from _check_transition(transition, f"$.transitions[{i}]", stage_keys, kinds)


def _check_pipeline_fields(body: dict, entity_key: str, fields: dict, kinds: dict) -> Iterator[Problem]:
    stage_key = body.get("stage_field")
    if isinstance(stage_key, str):
        if stage_key not in fields:
            yield Problem("$.stage_field", f"Entity '{entity_key}' has no field '{stage_key}'.")
        elif fields[stage_key].get("type") != "select":
            yield Problem("$.stage_field", f"The stage field must be a select field; '{stage_key}' is of type "
                                           f"{fields[stage_key].get('type')}.")
    for option, wanted, words in (("amount_field", (NUMBER_KIND,), "a number, currency or percent field"),
                                  ("date_field", DATE_KINDS, "a date or date-and-time field")):
        key = body.get(option)
        if isinstance(key, str) and kinds.get(key) not in wanted:
            yield Problem(f"$.{option}", f"'{key}' must be {words} of entity '{entity_key}'.")
    for i, key in enumerate(body.get("card_fields") or []):
        if isinstance(key, str) and key not in fields:
            yield Problem(f"$.card_fields[{i}]", f"Entity '{entity_key}' has no field '{key}'.")


def _check_gate(gate: Any, path: str, fields: dict, kinds: dict) -> Iterator[Problem]:
    from formloom.runtime import conditions

    if not isinstance(gate, dict):
        return
    for j, key in enumerate(gate.get("required") or []):
        if isinstance(key, str) and key not in fields:
            yield Problem(f"{path}.required[{j}]", f"The gate requires field '{key}', which the entity does not have.")
    for j, rule in enumerate(gate.get("conditions") or []):
        if isinstance(rule, dict) and isinstance(rule.get("condition"), dict):
            yield from (Problem(p, m) for p, m in conditions.check(rule["condition"], kinds,
                                                                   f"{path}.conditions[{j}].condition"))
    items = [item.get("key") for item in gate.get("checklist") or [] if isinstance(item, dict)]
    for j, key in enumerate(items):
        if key in items[:j]:
            yield Problem(f"{path}.checklist[{j}].key", f"Checklist item '{key}' is listed twice.")


def _check_transition(transition: dict, path: str, stage_keys: list[str], kinds: dict) -> Iterator[Problem]:
    from formloom.runtime import conditions

    sources = transition.get("from")
    sources = [] if sources == "*" else sources if isinstance(sources, list) else [sources]
    for j, key in enumerate(sources):
        if isinstance(key, str) and key not in stage_keys:
            where = f"{path}.from" + (f"[{j}]" if isinstance(transition.get("from"), list) else "")
            yield Problem(where, f"There is no stage '{key}' in this pipeline (stages: {', '.join(stage_keys)}).")
    if isinstance(transition.get("to"), str) and transition["to"] not in stage_keys:
        yield Problem(f"{path}.to", f"There is no stage '{transition['to']}' in this pipeline "
                                    f"(stages: {', '.join(stage_keys)}).")
    if isinstance(transition.get("condition"), dict):
        yield from (Problem(p, m) for p, m in conditions.check(transition["condition"], kinds, f"{path}.condition"))
    if isinstance(transition.get("approval"), dict):
        yield from _check_approval(transition["approval"], f"{path}.approval", kinds)


def _check_approval(approval: dict, path: str, kinds: dict) -> Iterator[Problem]:
    from formloom.runtime import conditions

    if ("approvers" in approval) == ("steps" in approval):
        yield Problem(path, "An approval names either 'approvers' (one step, with 'mode' any or all) or "
                            "'steps' (in order, each with its approvers), not both or neither.")
    if "steps" in approval and "mode" in approval:
        yield Problem(f"{path}.mode", "With 'steps', give each step its own 'mode'.")
    if isinstance(approval.get("when"), dict):
        yield from (Problem(p, m) for p, m in conditions.check(approval["when"], kinds, f"{path}.when"))


def check_rule(body: dict, ctx: AppContext, broken: set[str]) -> Iterator[Problem]:
    """The entity, the trigger's fields and stages, the condition, and each action's references."""
    from formloom.runtime import conditions
    from formloom.runtime.compiler import field_kinds

    entity_key, problems = _entity_of(body, ctx, broken)
    yield from problems
    if entity_key is None:
        return
    fields = {f["key"]: f for _, f in _fields_of(ctx.entities[entity_key])}
    kinds = field_kinds(list(fields.values()), ctx.entities)
    stages = _pipeline_stages(ctx, entity_key)
    trigger = body.get("trigger")
    if isinstance(trigger, dict) and not any(p.startswith("$.trigger") for p in broken):
        yield from _check_trigger(trigger, entity_key, fields, kinds, stages, ctx)
    if isinstance(body.get("condition"), dict):
        yield from (Problem(p, m) for p, m in conditions.check(body["condition"], kinds, "$.condition"))
    for i, action in enumerate(body.get("actions") or []):
        path = f"$.actions[{i}]"
        if isinstance(action, dict) and not any(p == path or p.startswith(path + ".") for p in broken):
            yield from _check_action(action, path, entity_key, fields, kinds, stages, ctx)


def _pipeline_stages(ctx: AppContext, entity_key: str) -> list[str] | None:
    for body in ctx.pipelines.values():
        if isinstance(body, dict) and body.get("entity") == entity_key:
            return [s.get("key") for s in body.get("stages") or [] if isinstance(s, dict)]
    return None


def _field_problem(path: str, entity_key: str, fields: dict, key: Any, types: tuple[str, ...] = (),
                   words: str = "") -> Iterator[Problem]:
    if not isinstance(key, str):
        return
    if key not in fields:
        yield Problem(path, f"Entity '{entity_key}' has no field '{key}'.")
    elif types and fields[key].get("type") not in types:
        yield Problem(path, f"'{key}' must be {words}; it is of type {fields[key].get('type')}.")


def _check_trigger(trigger: dict, entity_key: str, fields: dict, kinds: dict, stages: list[str] | None,
                   ctx: AppContext) -> Iterator[Problem]:
    kind = trigger.get("type")
    if kind == "field_changed":
        yield from _field_problem("$.trigger.field", entity_key, fields, trigger.get("field"))
    elif kind == "date_reached":
        yield from _field_problem("$.trigger.field", entity_key, fields, trigger.get("field"),
                                  ("date", "datetime"), "a date or date-and-time field")
    elif kind in ("stage_entered", "stage_left", "approval_decided"):
        if stages is None:
            yield Problem("$.trigger.type", f"Entity '{entity_key}' has no pipeline, so it has no stages to enter "
                                            f"or leave and no approvals; add a pipeline first.")
        elif "stage" in trigger and trigger["stage"] not in stages:
            yield Problem("$.trigger.stage", f"The pipeline of '{entity_key}' has no stage '{trigger['stage']}' "
                                             f"(stages: {', '.join(stages)}).")
    elif kind == "schedule" and trigger.get("every") != "week" and "weekday" in trigger:
        yield Problem("$.trigger.weekday", "A weekday goes with \"every\": \"week\".")
    elif kind == "schedule" and trigger.get("every") != "month" and "day" in trigger:
        yield Problem("$.trigger.day", "A day of the month goes with \"every\": \"month\".")
    elif kind == "inactivity" and isinstance(trigger.get("activity"), dict):
        activity = trigger["activity"]
        other = ctx.entities.get(activity.get("entity"))
        if other is None:
            yield Problem("$.trigger.activity.entity", f"App '{ctx.app_key}' has no entity '{activity.get('entity')}'.")
        else:
            link = {f["key"]: f for _, f in _fields_of(other)}.get(activity.get("field"))
            if link is None or link.get("type") != "relation" or link.get("target") != entity_key:
                yield Problem("$.trigger.activity.field", f"'{activity.get('field')}' must be a relation field of "
                                                          f"'{activity.get('entity')}' pointing to '{entity_key}'.")


def _check_action(action: dict, path: str, entity_key: str, fields: dict, kinds: dict, stages: list[str] | None,
                  ctx: AppContext) -> Iterator[Problem]:
    from formloom.runtime import conditions

    kind = action.get("type")
    if kind == "assign":
        yield from _field_problem(f"{path}.field", entity_key, fields, action.get("field"), ("user",), "a user field")
        if action.get("strategy") == "by_field":
            if "map_field" not in action or "map" not in action:
                yield Problem(path, "Assigning by field needs 'map_field' and 'map' (value → username).")
            yield from _field_problem(f"{path}.map_field", entity_key, fields, action.get("map_field"))
        elif "users" not in action and "role" not in action:
            yield Problem(path, "Name who can be assigned: 'users' (usernames) or 'role' (an app role).")
        if isinstance(action.get("open_when"), dict):
            yield from (Problem(p, m) for p, m in conditions.check(action["open_when"], kinds, f"{path}.open_when"))
    elif kind in ("notify", "email") and isinstance(action.get("to"), dict) and "field" in action["to"]:
        yield from _field_problem(f"{path}.to.field", entity_key, fields, action["to"]["field"], ("user", "users"),
                                  "a user field")
    elif kind in ("move", "request_approval"):
        if stages is None:
            yield Problem(f"{path}.type", f"Entity '{entity_key}' has no pipeline to move through.")
        elif action.get("stage") not in stages:
            yield Problem(f"{path}.stage", f"The pipeline of '{entity_key}' has no stage '{action.get('stage')}'.")
    elif kind == "update":
        yield from _check_values(action, path, entity_key, fields, ctx)
    elif kind == "create":
        target = ctx.entities.get(action.get("entity"))
        if target is None:
            yield Problem(f"{path}.entity", f"App '{ctx.app_key}' has no entity '{action.get('entity')}'.")
            return
        target_fields = {f["key"]: f for _, f in _fields_of(target)}
        link = target_fields.get(action.get("link_field")) if "link_field" in action else None
        if "link_field" in action and (link is None or link.get("type") != "relation"
                                       or link.get("target") != entity_key):
            yield Problem(f"{path}.link_field", f"'{action['link_field']}' must be a relation field of "
                                                f"'{action['entity']}' pointing to '{entity_key}'.")
        yield from _check_values(action, path, action["entity"], target_fields, ctx, source=fields)
    elif kind == "aggregate":
        yield from _check_aggregate(action, path, entity_key, fields, kinds, ctx)
    elif kind == "webhook" and isinstance(action.get("url"), str):
        if not action["url"].startswith(("https://", "http://")):
            yield Problem(f"{path}.url", "A webhook URL starts with https:// (or http://).")
        elif (problem := literal_problem(action["url"], _webhook_allowed_hosts())) is not None:
            yield Problem(f"{path}.url", problem)


AGGREGATE_KINDS = {"count": ("number",), "sum": ("number",), "avg": ("number",),
                   "min": ("number", "date", "datetime"), "max": ("number", "date", "datetime")}


def _check_aggregate(action: dict, path: str, entity_key: str, fields: dict, kinds: dict,
                     ctx: AppContext) -> Iterator[Problem]:
    """The field it writes, the linked entity and its relation back, the value field, the SQL filter."""
    from formloom.runtime.compiler import field_kinds
    from formloom.runtime.filters import filter_problems

    function, source = action["source"]["function"], action["source"]
    target = action.get("field")
    yield from _field_problem(f"{path}.field", entity_key, fields, target)
    if target in fields and FIELD_TYPES[fields[target]["type"]].computed:
        yield Problem(f"{path}.field", f"Field '{target}' is computed; it cannot be set.")
    other = ctx.entities.get(source["entity"])
    if other is None:
        yield Problem(f"{path}.source.entity", f"App '{ctx.app_key}' has no entity '{source['entity']}'.")
        return
    other_fields = {f["key"]: f for _, f in _fields_of(other)}
    other_kinds = field_kinds(list(other_fields.values()), ctx.entities)
    link = other_fields.get(source["link_field"])
    if link is None or link.get("type") != "relation" or link.get("target") != entity_key:
        yield Problem(f"{path}.source.link_field", f"'{source['link_field']}' must be a relation field of "
                                                   f"'{source['entity']}' pointing to '{entity_key}'.")
    wanted = AGGREGATE_KINDS[function]
    value_field = source.get("value_field")
    if value_field is None and function != "count":
        yield Problem(f"{path}.source", f"A {function} needs 'value_field': the field of '{source['entity']}' "
                                        f"to {function}.")
    elif value_field is not None and value_field not in other_fields:
        yield Problem(f"{path}.source.value_field", f"Entity '{source['entity']}' has no field '{value_field}'.")
    elif value_field is not None and other_kinds.get(value_field) not in wanted:
        yield Problem(f"{path}.source.value_field", f"A {function} needs a {' or '.join(wanted)} field; "
                                                    f"'{value_field}' holds {other_kinds.get(value_field)} values.")
    result_kind = "number" if function in ("count", "sum", "avg") else other_kinds.get(value_field)
    if target in fields and result_kind in wanted and kinds.get(target) != result_kind:
        yield Problem(f"{path}.field", f"The {function} gives a {result_kind} value; '{target}' holds "
                                       f"{kinds.get(target)} values. Write it to a {result_kind} field.")
    if isinstance(source.get("where"), dict):
        yield from (Problem(p, m) for p, m in filter_problems(source["where"], other_kinds, f"{path}.source.where"))


def _webhook_allowed_hosts() -> list[str] | str:
    """The WEBHOOK_ALLOWED_HOSTS setting of the app at hand (none outside one).

    Read here rather than passed down: the setting belongs to the install, not to the definition,
    and every caller that publishes (views, API, CLI) runs inside the app's context.
    """
    from flask import current_app, has_app_context

    return current_app.config.get("WEBHOOK_ALLOWED_HOSTS") or [] if has_app_context() else []


def _check_values(action: dict, path: str, entity_key: str, fields: dict, ctx: AppContext,
                  source: dict | None = None) -> Iterator[Problem]:
    """Values and formulas an action writes: fields that exist and are not computed; formulas that compile.

    Formulas read the triggering record (``source``; the record itself for an update).
    """
    from formloom.runtime.compiler import formula_fields
    from formloom.runtime.formulas import FormulaError, compile_formula

    for option in ("values", "formulas"):
        for key in (action.get(option) or {}):
            if key not in fields:
                yield Problem(f"{path}.{option}.{key}", f"Entity '{entity_key}' has no field '{key}'.")
            elif FIELD_TYPES[fields[key]["type"]].computed:
                yield Problem(f"{path}.{option}.{key}", f"Field '{key}' is computed; it cannot be set.")
    readable = source if source is not None else fields
    info = formula_fields(list(readable.values()), ctx.entities)
    for key, expression in (action.get("formulas") or {}).items():
        try:
            compile_formula(expression, info)
        except FormulaError as exc:
            yield Problem(f"{path}.formulas.{key}", exc.message)


def check_access(body: dict, ctx: AppContext, broken: set[str]) -> Iterator[Problem]:
    """Roles once each, the app admin left alone, entities and fields that exist, SQL-able scope conditions."""
    from formloom.runtime.access import when_problems
    from formloom.runtime.compiler import field_kinds

    seen: set[str] = set()
    for i, role in enumerate(body.get("roles") or []):
        if not isinstance(role, dict) or not isinstance(role.get("key"), str):
            continue
        path = f"$.roles[{i}]"
        if role["key"] == "admin":
            yield Problem(f"{path}.key", "The app admin role always has every permission (so no one is locked "
                                         "out); give restricted powers to another role.")
        if role["key"] in seen:
            yield Problem(f"{path}.key", f"Role '{role['key']}' is listed twice; list each role once.")
        seen.add(role["key"])
        for entity_key, grants in (role.get("entities") or {}).items():
            where = f"{path}.entities" + ("['*']" if entity_key == "*" else f".{entity_key}")  # as jsonschema writes it
            if entity_key != "*" and entity_key not in ctx.entities:
                yield Problem(where, f"App '{ctx.app_key}' has no entity '{entity_key}'.")
                continue
            for action, grant in (grants or {}).items() if isinstance(grants, dict) else ():
                if not (isinstance(grant, dict) and isinstance(grant.get("when"), dict)):
                    continue
                if entity_key == "*":
                    yield Problem(f"{where}.{action}.when", "A scope condition tests one entity's fields; "
                                                            "give it under that entity, not under '*'.")
                    continue
                body_of = ctx.entities[entity_key]
                kinds = field_kinds([f for _, f in _fields_of(body_of)], ctx.entities)
                yield from (Problem(p, m) for p, m in when_problems(grant["when"], kinds, f"{where}.{action}.when"))
        for entity_key, rules in (role.get("fields") or {}).items():
            if entity_key not in ctx.entities:
                yield Problem(f"{path}.fields.{entity_key}", f"App '{ctx.app_key}' has no entity '{entity_key}'.")
                continue
            keys = {f["key"] for _, f in _fields_of(ctx.entities[entity_key])}
            for field_key in rules if isinstance(rules, dict) else ():
                if field_key not in keys:
                    yield Problem(f"{path}.fields.{entity_key}.{field_key}",
                                  f"Entity '{entity_key}' has no field '{field_key}'.")


VIEW_META_SORTS = ("id", "created_at", "updated_at", "title")


def check_view(body: dict, ctx: AppContext, broken: set[str]) -> Iterator[Problem]:
    """The entity, its columns and sort field, a filter SQL can run, a pipeline for pending approvals."""
    from formloom.runtime.compiler import field_kinds
    from formloom.runtime.filters import filter_problems

    entity_key, problems = _entity_of(body, ctx, broken)
    yield from problems
    if entity_key is None:
        return
    fields = {f["key"]: f for _, f in _fields_of(ctx.entities[entity_key])}
    for i, key in enumerate(body.get("columns") or []):
        if isinstance(key, str) and key not in fields:
            yield Problem(f"$.columns[{i}]", f"Entity '{entity_key}' has no field '{key}'; columns are field keys "
                                             f"(fields: {', '.join(fields)}).")
    sort = body.get("sort")
    if isinstance(sort, str) and "$.sort" not in broken:
        key = sort.lstrip("-")
        field_type = FIELD_TYPES.get(fields.get(key, {}).get("type"))
        if key not in VIEW_META_SORTS and (field_type is None or not field_type.sortable):
            sortable = list(VIEW_META_SORTS) + [k for k, f in fields.items()
                                                if f.get("type") in FIELD_TYPES and FIELD_TYPES[f["type"]].sortable]
            yield Problem("$.sort", f"Cannot sort by '{key}'; sort by one of: {', '.join(sortable)} "
                                    f"(with '-' in front for newest or largest first).")
    if isinstance(body.get("filter"), dict):
        kinds = field_kinds(list(fields.values()), ctx.entities)
        yield from (Problem(p, m) for p, m in filter_problems(body["filter"], kinds, "$.filter"))
    if body.get("pending_approval") and _pipeline_stages(ctx, entity_key) is None:
        yield Problem("$.pending_approval", f"Entity '{entity_key}' has no pipeline, so its records never wait "
                                            f"for an approval; remove 'pending_approval' or add a pipeline.")


# What each field of a commission plan must hold (field types, by the role they play).
COMMISSION_FIELDS = {"amount_field": ("integer", "decimal", "currency"), "date_field": ("date", "datetime"),
                     "person_field": ("user",)}


def check_commission(body: dict, ctx: AppContext, broken: set[str]) -> Iterator[Problem]:
    """The entity, the amount/date/person fields by type, and SQL-able conditions (the scope subset)."""
    from formloom.runtime.access import when_problems
    from formloom.runtime.compiler import field_kinds

    entity_key, problems = _entity_of(body, ctx, broken)
    yield from problems
    if entity_key is None:
        return
    fields = {f["key"]: f for _, f in _fields_of(ctx.entities[entity_key])}
    for option, types in COMMISSION_FIELDS.items():
        key = body.get(option)
        if not isinstance(key, str) or f"$.{option}" in broken:
            continue
        if key not in fields:
            yield Problem(f"$.{option}", f"Entity '{entity_key}' has no field '{key}'.")
        elif fields[key]["type"] not in types:
            yield Problem(f"$.{option}", f"Field '{key}' of '{entity_key}' is a {fields[key]['type']} field; "
                                         f"{option.replace('_', ' ')} must be a {' or '.join(types)} field.")
    kinds = field_kinds(list(fields.values()), ctx.entities)
    conditions = [("$.condition", body.get("condition"))] + [
        (f"$.rates[{i}].when", rate.get("when")) for i, rate in enumerate(body.get("rates") or [])
        if isinstance(rate, dict)]
    for path, condition in conditions:
        if not isinstance(condition, dict):
            continue
        yield from (Problem(p, m) for p, m in when_problems(condition, kinds, path))
        if '"$user"' in json.dumps(condition):
            yield Problem(path, 'A commission condition compares fields with fixed values; {"$user": true} '
                                "(the person asking) would change the figures with who looks at them.")


def check_dashboard(body: dict, ctx: AppContext, broken: set[str]) -> Iterator[Problem]:
    from formloom.builder.dashboard_checks import check_dashboard as check

    yield from check(body, ctx, broken)


CROSS_CHECKS = {"entity": check_entity, "form": check_form, "app": check_app, "pipeline": check_pipeline,
                "rule": check_rule, "access": check_access, "view": check_view, "commission": check_commission,
                "dashboard": check_dashboard}


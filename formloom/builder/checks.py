"""Check a definition: its kind's meta-schema, then cross-references; every problem with its path."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Iterator

from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry, Resource

from formloom.platform.errors import Problem
from formloom.runtime.compiler import RecordValidator
from formloom.runtime.fields import FIELD_TYPES, CheckContext, CoercionError

METASCHEMAS = Path(__file__).parent / "metaschemas"
KINDS_AVAILABLE = ("app", "entity", "form")
KINDS_RESERVED = ("pipeline", "rule", "view", "dashboard")
TITLE_TYPES = frozenset({"text", "email", "phone", "url", "integer", "select", "date"})
KEY_HINT = "use lowercase letters, digits and underscores, starting with a letter (at most 64)"


@dataclass
class AppContext:
    """What cross-reference checks need to know about the rest of the app."""

    app_key: str
    entities: dict[str, dict] = field(default_factory=dict)  # key -> body (draft or published)
    published_types: dict[str, dict[str, str]] = field(default_factory=dict)  # entity -> key -> type


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
    elif keyword == "anyOf":  # only labels and help texts are written as anyOf
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
    field_ctx = CheckContext(entity_keys=set(ctx.entities) | {body.get("key")})
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


def check_form(body: dict, ctx: AppContext, broken: set[str]) -> Iterator[Problem]:
    entity_key = body.get("entity")
    if not isinstance(entity_key, str) or "$.entity" in broken:
        return
    entity_body = ctx.entities.get(entity_key)
    if entity_body is None:
        known = ", ".join(sorted(ctx.entities)) or "none yet"
        yield Problem("$.entity", f"App '{ctx.app_key}' has no entity '{entity_key}' (entities: {known}).")
        return
    entity_fields = {f["key"]: f for _, f in _fields_of(entity_body)}
    placed: dict[str, str] = {}
    for s, section in enumerate(body.get("sections") or []):
        if not isinstance(section, dict) or not isinstance(section.get("fields"), list):
            continue
        for j, key in enumerate(section["fields"]):
            path = f"$.sections[{s}].fields[{j}]"
            if not isinstance(key, str):
                continue
            if key not in entity_fields:
                yield Problem(path, f"Entity '{entity_key}' has no field '{key}'.")
            elif key in placed:
                yield Problem(path, f"Field '{key}' is already placed at {placed[key]}.")
            placed.setdefault(key, path)
    for key, f in entity_fields.items():
        if f.get("required") and key not in placed:
            yield Problem("$.sections", f"Field '{key}' is required by entity '{entity_key}' "
                                        f"but is not on this form; add it to a section.")


def check_app(body: dict, ctx: AppContext, broken: set[str]) -> Iterator[Problem]:
    if isinstance(body.get("key"), str) and body["key"] != ctx.app_key:
        yield Problem("$.key", f"The app definition's key must be '{ctx.app_key}', the app's own key.")
    for i, key in enumerate(body.get("navigation") or []):
        if isinstance(key, str) and key not in ctx.entities:
            yield Problem(f"$.navigation[{i}]", f"App '{ctx.app_key}' has no entity '{key}'.")


CROSS_CHECKS = {"entity": check_entity, "form": check_form, "app": check_app}


"""Compile a published entity version into a JSON Schema with a cached validator."""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

from formloom.runtime.fields import FIELD_TYPES, FieldType
from formloom.runtime.messages import Message

log = logging.getLogger(__name__)


def _decimal_range(validator, bounds: dict, instance, schema):
    """``decimalRange``: numeric bounds on exact decimals stored as strings."""
    if not isinstance(instance, str):
        return
    try:
        number = Decimal(instance)
    except ArithmeticError:
        return  # the pattern keyword reports the malformed value
    if "min" in bounds and number < Decimal(bounds["min"]):
        yield _error("must be at least {limit}", bounds["min"])
    if "max" in bounds and number > Decimal(bounds["max"]):
        yield _error("must be at most {limit}", bounds["max"])


def _error(template: str, limit) -> ValidationError:
    error = ValidationError(template.format(limit=limit))
    error.formloom_message = Message(template, limit=limit)
    return error


def _date_range(validator, bounds: dict, instance, schema):
    """``dateRange``: earliest and latest ISO dates (ISO dates compare as strings)."""
    if not isinstance(instance, str):
        return
    if "min" in bounds and instance < bounds["min"]:
        yield _error("must be on or after {limit}", bounds["min"])
    if "max" in bounds and instance > bounds["max"]:
        yield _error("must be on or before {limit}", bounds["max"])


RecordValidator = validators.extend(
    Draft202012Validator, {"decimalRange": _decimal_range, "dateRange": _date_range},
)
CUSTOM_KEYWORDS = frozenset({"decimalRange", "dateRange"})


@dataclass(frozen=True)
class CompiledField:
    key: str
    type: FieldType
    definition: Mapping
    schema: Mapping


@dataclass(frozen=True)
class CompiledEntity:
    """A published entity version, ready to validate records. Immutable and shared."""

    key: str
    version: int
    checksum: str
    body: Mapping
    fields: tuple[CompiledField, ...]
    by_key: Mapping[str, CompiledField]
    title_field: str | None
    schema: Mapping
    validator: Draft202012Validator
    kinds: Mapping[str, str]  # field key -> kind, for conditions
    formulas: tuple[tuple[str, Any], ...]  # (field key, Formula) in evaluation order
    row_formulas: Mapping[str, tuple[tuple[str, Any], ...]]  # table key -> (column key, Formula)
    default_formulas: Mapping[str, Any]
    related: Mapping[str, Mapping]  # related entity key -> its published body

    @property
    def checks(self) -> list[dict]:
        return list(self.body.get("checks", []))


def checksum(body: Mapping) -> str:
    """The canonical hash of a definition body: equal bodies, equal checksums."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def entity_schema(body: Mapping) -> dict:
    """The JSON Schema 2020-12 of one entity's stored documents.

    Fields required only under conditions (or hidden by one) are checked after the conditions.
    """
    properties, required = {}, []
    for field in body["fields"]:
        properties[field["key"]] = FIELD_TYPES[field["type"]].schema(field)
        if field.get("required") and not conditionally_required(field):
            required.append(field["key"])
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "properties": properties, "required": required, "additionalProperties": False}


def conditionally_required(field: Mapping) -> bool:
    return any(k in field for k in ("visible_when", "required_when")) or FIELD_TYPES[field["type"]].computed


def field_kinds(fields: list, related: Mapping[str, Mapping]) -> dict[str, str]:
    """How conditions see each field (a lookup takes the kind of the field it shows)."""
    by_key = {f["key"]: f for f in fields}
    kinds = {}
    for field in fields:
        kind = FIELD_TYPES[field["type"]].kind_of(field)
        if field["type"] == "lookup":
            target = _lookup_target(field, by_key, related)
            kind = FIELD_TYPES[target["type"]].kind_of(target) if target and target["type"] != "lookup" else "object"
        kinds[field["key"]] = kind
    return kinds


def _lookup_target(field: Mapping, by_key: Mapping, related: Mapping[str, Mapping]) -> Mapping | None:
    relation = by_key.get(field.get("relation"))
    body = related.get(relation.get("target")) if relation else None
    return next((f for f in body["fields"] if f["key"] == field.get("field")), None) if body else None


def _with_lookup_target(field: Mapping, by_key: Mapping, related: Mapping[str, Mapping]) -> dict:
    """A lookup's definition, with the definition of the field it shows (to display its values)."""
    if field["type"] != "lookup":
        return dict(field)
    target = _lookup_target(field, by_key, related)
    return {**field, "shows": dict(target)} if target else dict(field)


def formula_fields(fields: list, related: Mapping[str, Mapping]):
    """What formulas may refer to: every field with its kind, columns and related fields."""
    from formloom.runtime.formulas import FieldInfo

    kinds = field_kinds(fields, related)
    info = {}
    for field in fields:
        kind = kinds[field["key"]]
        if field["type"] == "table":
            info[field["key"]] = FieldInfo("table", columns={c["key"]: FIELD_TYPES[c["type"]].kind_of(c)
                                                             for c in field["fields"]})
        elif field["type"] == "relation" and field.get("target") in related:
            target = related[field["target"]]["fields"]
            info[field["key"]] = FieldInfo("id", target=field_kinds(target, {}))
        else:
            info[field["key"]] = FieldInfo(kind if kind != "ids" else "object")
    return info


def compile_formulas(body: Mapping, related: Mapping[str, Mapping]):
    """The entity's formulas, row formulas of sub-tables, and default formulas, compiled.

    Raises :class:`formloom.runtime.formulas.FormulaError` on the first bad formula (checks
    report every problem with its path when the definition is saved).
    """
    from formloom.runtime.formulas import FieldInfo, compile_formula, evaluation_order

    fields = body["fields"]
    info = formula_fields(fields, related)
    formulas = {f["key"]: compile_formula(f["expression"], info) for f in fields if f["type"] == "formula"}
    order = evaluation_order(formulas)
    rows = {}
    for table in (f for f in fields if f["type"] == "table"):
        columns = {c["key"]: FieldInfo(FIELD_TYPES[c["type"]].kind_of(c)) for c in table["fields"]}
        row_formulas = {c["key"]: compile_formula(c["expression"], columns)
                        for c in table["fields"] if c["type"] == "formula"}
        if row_formulas:
            rows[table["key"]] = tuple((k, row_formulas[k]) for k in evaluation_order(row_formulas))
    defaults = {f["key"]: compile_formula(f["default_formula"], info) for f in fields if f.get("default_formula")}
    return tuple((k, formulas[k]) for k in order), rows, defaults


def _fingerprint(body: Mapping) -> str:
    return checksum(body)


_CACHE: dict[tuple, CompiledEntity] = {}
_CACHE_LIMIT = 512


def compile_entity(body: Mapping, version: int, checksum: str,
                   related: Mapping[str, Mapping] | None = None) -> CompiledEntity:
    """Compile an entity version; versions are immutable, so the result is cached.

    The key holds the version number too: the same body may be published again as a later version.
    ``related`` holds the published bodies of the entities this one relates to (lookups and
    formulas read their fields); their checksums are part of the key.
    """
    related = related or {}
    key = (checksum, version, tuple(sorted((k, _fingerprint(v)) for k, v in related.items())))
    compiled = _CACHE.get(key)
    if compiled is None:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        compiled = _CACHE[key] = _compile(body, version, checksum, related)
    return compiled


def _compile(body: Mapping, version: int, checksum: str, related: Mapping[str, Mapping]) -> CompiledEntity:
    from formloom.runtime.formulas import FormulaError

    try:
        formulas, rows, defaults = compile_formulas(body, related)
    except FormulaError as exc:  # a related entity changed since this version was published
        log.warning("Formulas of %s v%s do not compile any more: %s", body["key"], version, exc)
        formulas, rows, defaults = (), {}, {}
    schema = entity_schema(body)
    by_key = {f["key"]: f for f in body["fields"]}
    fields = tuple(
        CompiledField(f["key"], FIELD_TYPES[f["type"]], MappingProxyType(_with_lookup_target(f, by_key, related)),
                      schema["properties"][f["key"]])
        for f in body["fields"]
    )
    return CompiledEntity(
        key=body["key"], version=version, checksum=checksum, body=body, fields=fields,
        by_key=MappingProxyType({f.key: f for f in fields}), title_field=body.get("title_field"),
        schema=schema,
        validator=RecordValidator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER),
        kinds=MappingProxyType(field_kinds(body["fields"], related)), formulas=formulas,
        row_formulas=MappingProxyType(rows), default_formulas=MappingProxyType(defaults),
        related=MappingProxyType(dict(related)),
    )

"""Compile a published entity version into a JSON Schema with a cached validator."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType
from typing import Mapping

from jsonschema import Draft202012Validator, ValidationError, validators

from formloom.runtime.fields import FIELD_TYPES, FieldType


def _decimal_range(validator, bounds: dict, instance, schema):
    """``decimalRange``: numeric bounds on exact decimals stored as strings."""
    if not isinstance(instance, str):
        return
    try:
        number = Decimal(instance)
    except ArithmeticError:
        return  # the pattern keyword reports the malformed value
    if "min" in bounds and number < Decimal(bounds["min"]):
        yield ValidationError(f"must be at least {bounds['min']}")
    if "max" in bounds and number > Decimal(bounds["max"]):
        yield ValidationError(f"must be at most {bounds['max']}")


def _date_range(validator, bounds: dict, instance, schema):
    """``dateRange``: earliest and latest ISO dates (ISO dates compare as strings)."""
    if not isinstance(instance, str):
        return
    if "min" in bounds and instance < bounds["min"]:
        yield ValidationError(f"must be on or after {bounds['min']}")
    if "max" in bounds and instance > bounds["max"]:
        yield ValidationError(f"must be on or before {bounds['max']}")


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


def checksum(body: Mapping) -> str:
    """The canonical hash of a definition body: equal bodies, equal checksums."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def entity_schema(body: Mapping) -> dict:
    """The JSON Schema 2020-12 of one entity's stored documents."""
    properties, required = {}, []
    for field in body["fields"]:
        properties[field["key"]] = FIELD_TYPES[field["type"]].schema(field)
        if field.get("required"):
            required.append(field["key"])
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
            "properties": properties, "required": required, "additionalProperties": False}


_CACHE: dict[tuple[str, int], CompiledEntity] = {}
_CACHE_LIMIT = 512


def compile_entity(body: Mapping, version: int, checksum: str) -> CompiledEntity:
    """Compile an entity version; versions are immutable, so the result is cached.

    The key holds the version number too: the same body may be published again as a later version.
    """
    compiled = _CACHE.get((checksum, version))
    if compiled is None:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        compiled = _CACHE[(checksum, version)] = _compile(body, version, checksum)
    return compiled


def _compile(body: Mapping, version: int, checksum: str) -> CompiledEntity:
    schema = entity_schema(body)
    fields = tuple(
        CompiledField(f["key"], FIELD_TYPES[f["type"]], MappingProxyType(dict(f)), schema["properties"][f["key"]])
        for f in body["fields"]
    )
    return CompiledEntity(
        key=body["key"], version=version, checksum=checksum, body=body, fields=fields,
        by_key=MappingProxyType({f.key: f for f in fields}), title_field=body.get("title_field"),
        schema=schema,
        validator=RecordValidator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER),
    )

"""The record paths and schemas of one published entity, from its compiled JSON Schema.

The value schemas come from :mod:`formloom.runtime.compiler` (each field type's ``schema``); this
module only says how the API uses them: what a read answers, what create and PATCH take, and
which list parameters the entity accepts (the field types' ``filter_ops`` and ``sortable``, read
the way :func:`formloom.runtime.listing.parse_filters` reads them).
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

from formloom.api_docs.components import (
    BOOL,
    DATE_TIME,
    INT,
    MOVE_STATUSES,
    STR,
    errors,
    json_body,
    json_response,
    nullable,
    obj,
    ref,
)
from formloom.platform.models import App
from formloom.runtime.compiler import CUSTOM_KEYWORDS, CompiledEntity, CompiledField
from formloom.runtime.fields import FILE_TYPES, ID_LIMIT
from formloom.runtime.labels import LOCALES, text_of
from formloom.runtime.listing import META_SORTS
from formloom.runtime.pipelines import Pipeline

# Kept from a field's schema for a filter value: its type and shape, not its bounds (as listing does).
FILTER_KEYWORDS = ("type", "format", "pattern", "items", "enum")
# File fields take the ids of uploaded files (or the file objects a read answered) and answer objects.
FILE_INPUT_ITEM = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": ID_LIMIT},
                             {"type": "object", "required": ["id"],
                              "properties": {"id": {"type": "integer", "minimum": 1, "maximum": ID_LIMIT}}}]}
LOCALE_PARAM = {"name": "locale", "in": "query", "required": False,
                "description": "The language of messages and labels.", "schema": {"enum": list(LOCALES)}}
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch"})
RECORD_ID = {"name": "id", "in": "path", "required": True, "description": "The record id.",
             "schema": {"type": "integer", "minimum": 1, "maximum": ID_LIMIT}}


@dataclass(frozen=True)
class EntityApi:
    """What one entity adds to the document."""

    tag: dict
    paths: dict[str, dict]
    schemas: dict[str, dict]


def value_schema(spec: CompiledField, locale: str) -> dict:
    """A field's stored-value schema as the document shows it: label, help and type added.

    The compiler's own keywords (``decimalRange``, ``dateRange``) become ``x-`` extensions, which
    OpenAPI tools leave alone; a table's columns get their labels too.
    """
    schema = _plain(copy.deepcopy(dict(spec.schema)))
    definition = spec.definition
    if spec.type.name == "table":
        columns = {c["key"]: c for c in definition.get("fields", [])}
        for key, column_schema in schema.get("items", {}).get("properties", {}).items():
            if key in columns:
                _describe(column_schema, columns[key], locale)
    _describe(schema, definition, locale)
    if spec.type.computed:
        schema["readOnly"] = True
    if spec.type.name in ("relation", "relations") and definition.get("target"):
        schema["x-formloom-target"] = definition["target"]
    return schema


def _plain(schema: dict) -> dict:
    for keyword in CUSTOM_KEYWORDS:
        if keyword in schema:
            bounds = schema.pop(keyword)
            if bounds:
                schema["x-formloom-" + ("decimal" if keyword == "decimalRange" else "date") + "-range"] = bounds
    for key in ("items", "properties"):
        inner = schema.get(key)
        if key == "items" and isinstance(inner, dict):
            _plain(inner)
        elif key == "properties" and isinstance(inner, dict):
            for sub in inner.values():
                _plain(sub)
    return schema


def _describe(schema: dict, definition: Mapping, locale: str) -> None:
    schema["title"] = text_of(definition.get("label"), locale) or definition.get("key", "")
    if definition.get("help"):
        schema["description"] = text_of(definition["help"], locale)
    schema["x-formloom-type"] = definition.get("type")


def input_schema(spec: CompiledField, locale: str) -> dict:
    """What create and PATCH take for a field: the stored value, or file ids for file fields."""
    schema = value_schema(spec, locale)
    if spec.type.name in FILE_TYPES:
        described = {k: schema[k] for k in ("title", "description", "x-formloom-type") if k in schema}
        schema = {"type": "array", "items": FILE_INPUT_ITEM, "maxItems": spec.schema.get("maxItems", 10),
                  **described}
    return schema


def create_required(entity: CompiledEntity) -> list[str]:
    """Required on create: required by the schema and not filled in by a default."""
    defaulted = {f.key for f in entity.fields
                 if any(k in f.definition for k in ("default", "default_from", "default_formula"))}
    return [key for key in entity.schema["required"] if key not in defaulted]


def entity_schemas(entity: CompiledEntity, prefix: str, locale: str) -> dict[str, dict]:
    """``<prefix>.Data`` (read), ``.Create``, ``.Patch`` and ``.Record`` for one entity."""
    label = text_of(entity.body["label"], locale)
    inputs = {f.key: input_schema(f, locale) for f in entity.fields if not f.type.computed}
    data = {"type": "object", "title": label, "properties": {f.key: value_schema(f, locale) for f in entity.fields},
            "additionalProperties": True,
            "description": "The record's values; fields without a value are left out. Values of fields "
                           "removed from the entity since are kept under their old keys."}
    patch = {key: {"anyOf": [schema, {"type": "null"}], **_annotations(schema)} for key, schema in inputs.items()}
    return {
        f"{prefix}.Data": data,
        f"{prefix}.Create": {"type": "object", "title": label, "properties": inputs,
                             "required": create_required(entity), "additionalProperties": False,
                             "description": "Computed fields (formula, lookup, serial) are left out: the "
                                            "server fills them."},
        f"{prefix}.Patch": {"type": "object", "title": label, "properties": patch, "additionalProperties": False,
                            "description": "Only the fields to change; null clears a field."},
        f"{prefix}.Record": obj({"id": INT, "entity": {"const": entity.key}, "version": INT,
                                 "entity_version": nullable(INT), "title": nullable(STR),
                                 "data": ref(f"{prefix}.Data"), "owner_id": nullable(INT),
                                 "created_at": DATE_TIME, "updated_at": nullable(DATE_TIME), "deleted": BOOL},
                                description=f"{label}: a record (record_json)."),
    }


def _annotations(schema: dict) -> dict:
    return {k: schema[k] for k in ("title", "description", "x-formloom-type") if k in schema}


def list_parameters(entity: CompiledEntity, page_max: int, locale: str) -> list[dict]:
    """``q``, ``sort``, ``limit``, ``cursor``, ``deleted`` and one ``f.<field>[.<op>]`` per filter."""
    sortable = list(META_SORTS) + [f.key for f in entity.fields if f.type.sortable]
    params = [
        {"name": "q", "in": "query", "description": "Search in the titles.", "schema": {"type": "string"}},
        {"name": "sort", "in": "query", "description": "A field to sort by; '-' first for descending "
                                                       "(default -updated_at).",
         "schema": {"enum": [s for key in sortable for s in (key, "-" + key)]}},
        {"name": "limit", "in": "query", "description": "Records per page (default 50).",
         "schema": {"type": "integer", "minimum": 1, "maximum": page_max}},
        {"name": "cursor", "in": "query", "description": "next_cursor of the previous page.",
         "schema": {"type": "string"}},
        {"name": "deleted", "in": "query", "description": "true: list the deleted records instead.",
         "schema": {"type": "boolean"}},
        {"name": "view", "in": "query", "description": "A saved view's key (GET /api/v1/apps/{app}/views): its "
                                                       "filter applies, and its sort when 'sort' is not given.",
         "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}},
    ]
    for spec in entity.fields:
        for op in spec.type.filter_ops:
            params.append(_filter_parameter(spec, op, locale))
    return [*params, LOCALE_PARAM]


def _filter_parameter(spec: CompiledField, op: str, locale: str) -> dict:
    shape = spec.schema
    if spec.type.kind in ("list", "ids"):  # "holds the value": one item of the list
        shape = shape.get("items", {})
    value = {k: copy.deepcopy(v) for k, v in shape.items() if k in FILTER_KEYWORDS}
    label = text_of(spec.definition.get("label"), locale) or spec.key
    words = {"eq": "equals", "in": "is one of (comma-separated)", "gte": "is at least", "lte": "is at most",
             "contains": "contains" if spec.type.kind not in ("list", "ids") else "holds"}
    param = {"name": f"f.{spec.key}" if op == "eq" else f"f.{spec.key}.{op}", "in": "query",
             "description": f"{label} {words.get(op, op)} the value.",
             "schema": {"type": "array", "items": value} if op == "in" else value,
             "x-formloom-field": spec.key, "x-formloom-op": op}
    if op == "in":
        param.update(style="form", explode=False)
    return param


def entity_api(app: App, entity: CompiledEntity, pipeline: Pipeline | None, locale: str,
               page_max: int) -> EntityApi:
    """The paths, schemas and tag of one entity of ``app``."""
    prefix = f"{app.key}.{entity.key}"
    op = f"records.{prefix}"
    label = text_of(entity.body["label"], locale)
    tag = {"name": prefix, "description": f"{text_of(app.label, locale)} · {label}",
           "x-formloom-app": app.key, "x-formloom-entity": entity.key}
    record = ref(f"{prefix}.Record")
    base = f"/api/v1/apps/{app.key}/records/{entity.key}"
    one = {"parameters": [RECORD_ID]}
    paths = {
        base: {
            "get": {"operationId": f"{op}.list", "summary": f"{label}: list records",
                    "parameters": list_parameters(entity, page_max, locale),
                    "responses": {"200": json_response("A page of records.", obj({
                        "items": {"type": "array", "items": record}, "total": INT,
                        "next_cursor": nullable(STR)})), **errors(400, 403, 404)}},
            "post": {"operationId": f"{op}.create", "summary": f"{label}: create a record",
                     "parameters": [LOCALE_PARAM],
                     "requestBody": json_body(obj({"data": ref(f"{prefix}.Create")})),
                     "responses": {"201": json_response("The new record.", record),
                                   **errors(400, 403, 404, 409, 422)}},
        },
        base + "/{id}": {
            **one,
            "get": {"operationId": f"{op}.get", "summary": f"{label}: one record (deleted ones too)",
                    "responses": {"200": json_response("The record.", record), **errors(403, 404)}},
            "patch": {"operationId": f"{op}.update", "summary": f"{label}: change a record",
                      "parameters": [LOCALE_PARAM],
                      "requestBody": json_body(obj({
                          "version": {**INT, "description": "The version you edited, as GET answered it."},
                          "data": ref(f"{prefix}.Patch")})),
                      "responses": {"200": json_response("The record as saved.", record),
                                    **errors(400, 403, 404, 409, 422)}},
            "delete": {"operationId": f"{op}.delete", "summary": f"{label}: delete a record (it can be restored)",
                       "responses": {"200": json_response("The deleted record.", record), **errors(400, 403, 404)}},
        },
        base + "/{id}/restore": {**one, "post": {
            "operationId": f"{op}.restore", "summary": f"{label}: restore a deleted record",
            "responses": {"200": json_response("The restored record.", record), **errors(400, 403, 404)}}},
        base + "/{id}/history": {**one, "get": {
            "operationId": f"{op}.history", "summary": f"{label}: a record's change log, newest first",
            "responses": {"200": json_response("The changes.", ref("ChangeList")), **errors(403, 404)}}},
    }
    if pipeline is not None:
        paths.update(_pipeline_paths(pipeline, base, op, one, record, label))
    if entity.body.get("pool"):
        paths.update(_pool_paths(app, entity, base, op, one, record, label))
    for item in paths.values():
        for method in HTTP_METHODS & set(item):
            item[method]["tags"] = [prefix]
    return EntityApi(tag, paths, entity_schemas(entity, prefix, locale))


def _pool_paths(app: App, entity: CompiledEntity, base: str, op: str, one: dict, record: dict,
                label: str) -> dict:
    """The public pool's operations (docs/pool.md)."""
    return {
        f"/api/v1/apps/{app.key}/pool/{entity.key}": {"get": {
            "operationId": f"{op}.pool", "summary": f"{label}: the records in the public pool",
            "responses": {"200": json_response("The pool's records you may read, newest first (at most 200).",
                                               obj({"items": {"type": "array", "items": record}})),
                          **errors(403, 404)}}},
        base + "/{id}/claim": {**one, "post": {
            "operationId": f"{op}.claim", "summary": f"{label}: claim a record from the public pool",
            "responses": {"200": json_response("Claimed: the record, now yours.", record),
                          **errors(400, 403, 404, 409)}}},
        base + "/{id}/return": {**one, "post": {
            "operationId": f"{op}.return", "summary": f"{label}: return a record to the public pool",
            "requestBody": json_body(obj({"reason": {**STR, "description": "Why it goes back."}}, ["reason"])),
            "responses": {"200": json_response("Returned: the record, in the pool.", record),
                          **errors(400, 403, 404, 409)}}},
    }


def _pipeline_paths(pipeline: Pipeline, base: str, op: str, one: dict, record: dict, label: str) -> dict:
    stages = [s.key for s in pipeline.stages]
    moved = obj({"status": {"enum": MOVE_STATUSES}, "record": record, "approval": ref("Approval")},
                ["status", "record"])
    return {
        base + "/{id}/transition": {**one, "post": {
            "operationId": f"{op}.transition", "summary": f"{label}: move a record to a stage of {pipeline.key}",
            "parameters": [LOCALE_PARAM],
            "requestBody": json_body(obj({
                "to": {"enum": stages, "description": "The stage to move to."},
                "version": {**INT, "description": "The version you saw (optional)."},
                "checklist": {"type": "array", "items": STR, "description": "Checklist items you confirm."},
                "comment": STR}, ["to"])),
            "responses": {"200": json_response("Moved (or already there: unchanged).", moved),
                          "202": json_response("Waiting for approval.", moved),
                          **errors(400, 403, 404, 409, 422)}}},
        base + "/{id}/stages": {**one, "get": {
            "operationId": f"{op}.stages", "summary": f"{label}: a record's stage history",
            "parameters": [LOCALE_PARAM],
            "responses": {"200": json_response("Visits, time per stage, next stages.", ref("StageHistory")),
                          **errors(400, 403, 404)}}},
    }


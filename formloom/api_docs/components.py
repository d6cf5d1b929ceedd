"""Schemas and responses that every Formloom installation shares, as OpenAPI components.

Each schema mirrors the ``*_json`` function that writes that answer (named in its description),
so a change there must change the schema here; the Schemathesis run in
``tests/test_openapi_fuzz.py`` compares every answer it provokes with these schemas.
"""
from __future__ import annotations

from formloom.builder.checks import KINDS_AVAILABLE
from formloom.builder.impact import CHOICES
from formloom.runtime.approvals import Decision
from formloom.runtime.pipelines import MoveStatus, Outcome

REF = "#/components/schemas/"
DATE_TIME = {"type": "string", "format": "date-time"}


def ref(name: str) -> dict:
    return {"$ref": REF + name}


def nullable(schema: dict) -> dict:
    """``schema`` or null (a ``type`` list where it can be, else ``anyOf``)."""
    kind = schema.get("type")
    if isinstance(kind, str) and set(schema) <= {"type", "format", "minimum", "maximum", "description"}:
        return {**schema, "type": [kind, "null"]}
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict, required: list[str] | None = None, *, description: str | None = None,
        extra: bool | dict = False) -> dict:
    """An object schema; every property is required unless ``required`` names them."""
    schema = {"type": "object", "properties": properties,
              "required": list(properties) if required is None else required,
              "additionalProperties": extra}
    if description:
        schema["description"] = description
    return schema


def items_of(schema: dict, **more: dict) -> dict:
    return obj({"items": {"type": "array", "items": schema}, **more})


INT = {"type": "integer"}
ID = {"type": "integer", "minimum": 1}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
NUM = {"type": "number"}
ANY_OBJECT = {"type": "object"}
USER_REF = obj({"id": nullable(INT), "name": nullable(STR)}, description="A user: id and display name.")

SCHEMAS: dict[str, dict] = {
    "Label": {"description": "A label: text, or text per locale such as {\"en\": \"Deal\", \"zh-CN\": \"商机\"}.",
              "anyOf": [STR, {"type": "object", "additionalProperties": STR}]},
    "Error": obj({"error": obj({
        "code": {**STR, "description": "What kind of error: bad_request, invalid_query, csrf_failed, unauthorized, "
                                       "forbidden, not_found, conflict, version_conflict, approval_required, "
                                       "definition_invalid, validation_failed, stage_gate, no_approvers, too_large."},
        "message": {**STR, "description": "A full sentence naming what is wrong and how to fix it."},
        "fields": {"type": "object", "additionalProperties": {"type": "array", "items": STR},
                   "description": "Messages per field key (records) or JSON path (definitions)."},
        "current_version": {**INT, "description": "version_conflict: the record's version now."},
        "changed_fields": {"type": "object",
                           "description": "version_conflict: [old, new] per field changed meanwhile."},
        "stage": {**STR, "description": "stage_gate: the stage the record could not enter."},
        "missing": {"type": "array", "items": ANY_OBJECT, "description": "stage_gate: every item still missing."},
        "impacts": {"type": "array", "items": ref("Impact"),
                    "description": "definition_invalid on publish: impacts on live data waiting for a choice."},
    }, ["code", "message"], extra=True)}, description="Every error answer (4xx) has this shape."),
    "App": obj({"key": STR, "label": ref("Label"), "created_at": DATE_TIME}, description="An app (app_json)."),
    "AppDetail": obj({"key": STR, "label": ref("Label"), "created_at": DATE_TIME,
                      "entities": {"type": "array", "items": obj({"key": STR, "label": STR})}},
                     description="An app with its published entities, labels in the requested locale."),
    "AppList": items_of(ref("App")),
    "AppCreate": obj({"key": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}, "label": ref("Label"),
                      "description": nullable(ref("Label"))}, ["key"]),
    "FieldTypeList": items_of(obj({"type": STR, "label": STR, "options": ANY_OBJECT,
                                   "filter_ops": {"type": "array", "items": STR}, "sortable": BOOL})),
    "Problem": obj({"path": {**STR, "description": "JSON path such as $.fields[2].type"}, "message": STR}),
    "Definition": obj({"kind": {"enum": list(KINDS_AVAILABLE)}, "key": STR,
                       "published_version": nullable(INT), "has_draft": BOOL,
                       "draft_updated_at": nullable(DATE_TIME)}, description="A definition and its state."),
    "DefinitionList": items_of(ref("Definition")),
    "DefinitionDetail": obj({"kind": {"enum": list(KINDS_AVAILABLE)}, "key": STR,
                             "published_version": nullable(INT), "has_draft": BOOL,
                             "draft_updated_at": nullable(DATE_TIME), "published": nullable(ANY_OBJECT),
                             "draft": nullable(ANY_OBJECT)},
                            description="A definition with its published body and its draft."),
    "DefinitionBody": {"type": "object", "description": "A definition body (see docs/definitions.md): "
                                                        "formloom, kind, key, label and the kind's own keys."},
    "DraftSaved": obj({"kind": {"enum": list(KINDS_AVAILABLE)}, "key": STR, "published_version": nullable(INT),
                       "has_draft": BOOL, "draft_updated_at": nullable(DATE_TIME), "valid": BOOL,
                       "problems": {"type": "array", "items": ref("Problem")}}),
    "CheckResult": obj({"valid": BOOL, "problems": {"type": "array", "items": ref("Problem")}}),
    "VersionSummary": obj({"version": INT, "checksum": STR, "published_at": DATE_TIME,
                           "published_by": nullable(INT), "note": nullable(STR),
                           "impact": nullable({"type": "array", "items": ANY_OBJECT})},
                          description="A published version (version_json without the body)."),
    "Version": obj({"version": INT, "checksum": STR, "published_at": DATE_TIME, "published_by": nullable(INT),
                    "note": nullable(STR), "impact": nullable({"type": "array", "items": ANY_OBJECT}),
                    "body": ANY_OBJECT}, description="A published version with its body."),
    "VersionList": items_of(ref("VersionSummary")),
    "PublishOptions": obj({
        "impact": {"type": "object", "additionalProperties": obj(
            {"action": {"enum": list(CHOICES)}, "to": {}, "value": {}}, ["action"]),
            "description": "A choice per impact id (see GET .../impact)."},
        "stage_moves": {"type": "object", "additionalProperties": STR,
                        "description": "Where the records of removed stages go: {\"old\": \"new\"}."},
        "note": {"type": "string", "maxLength": 500}}, []),
    "Rollback": obj({"version": {**ID, "description": "The version to publish again."},
                     "impact": {"type": "object", "additionalProperties": ANY_OBJECT}}, ["version"]),
    "Diff": obj({"changes": {"type": "array", "items": obj({"code": STR, "path": STR, "subject": STR, "text": STR})}}),
    "Impact": obj({"id": STR, "code": STR, "count": INT, "message": STR,
                   "choices": {"type": "array", "items": {"enum": list(CHOICES)}},
                   "targets": {"type": "array", "items": STR}, "sample": {"type": "array", "items": INT},
                   "rules": {"type": "array", "items": STR}}, description="An effect of publishing on live data."),
    "ImpactList": obj({"impacts": {"type": "array", "items": ref("Impact")}}),
    "TryResult": obj({"valid": {"const": True}, "values": ANY_OBJECT},
                     description="The document the values would be stored as."),
    "TryRefused": obj({"valid": {"const": False},
                       "errors": {"type": "object", "additionalProperties": {"type": "array", "items": STR}}},
                      description="Every problem of the values, by field key."),
    "KeySuggestionRequest": obj({"label": STR, "taken": {"type": "array", "items": STR},
                                 "fallback": {"enum": ["field", "option", "stage", "app", "entity", "form", "rule",
                                                       "pipeline"]}}, ["label"]),
    "KeySuggestion": obj({"key": STR}),
    "Bundle": obj({"formloom": INT, "kind": {"const": "bundle"}, "app": ANY_OBJECT,
                   "definitions": {"type": "array", "items": ANY_OBJECT}, "exported_at": DATE_TIME},
                  description="An app's published definitions (docs/definitions.md#export-and-import)."),
    "ImportedApp": obj({"key": STR, "label": ref("Label"), "created_at": DATE_TIME,
                        "definitions": {"type": "object", "additionalProperties": INT,
                                        "description": "Published definitions per kind."}}),
    "Stage": obj({"key": STR, "label": ref("Label"), "color": nullable(STR), "probability": nullable(NUM),
                  "outcome": {"enum": [o.value for o in Outcome]}}),
    "Pipeline": obj({"key": STR, "version": INT, "label": ref("Label"), "entity": STR, "stage_field": STR,
                     "amount_field": nullable(STR), "date_field": nullable(STR),
                     "stages": {"type": "array", "items": ref("Stage")}}, description="A published pipeline."),
    "PipelineList": items_of(ref("Pipeline")),
    "Board": obj({"pipeline": ref("Pipeline"), "outside": {**INT, "description": "Records in no stage of it."},
                  "columns": {"type": "array", "items": obj({
                      "stage": STR, "count": INT, "total": NUM,
                      "cards": {"type": "array", "items": obj({
                          "id": INT, "title": nullable(STR), "version": INT, "owner_id": nullable(INT),
                          "data": ANY_OBJECT, "updated_at": DATE_TIME})}})}}),
    "PipelineStats": obj({"pipeline": STR, "stages": {"type": "array", "items": obj({
        "stage": STR, "label": STR, "entered": INT, "current": INT, "converted": INT,
        "conversion_rate": nullable(NUM), "median_seconds": nullable(NUM)})}}),
    "Approval": obj({
        "id": INT, "app": STR, "entity": STR, "record_id": INT, "record_title": nullable(STR), "pipeline": STR,
        "from_stage": nullable(STR), "to_stage": STR, "from_label": nullable(STR), "to_label": STR,
        "status": STR, "step": INT,
        "steps": {"type": "array", "items": obj({"label": nullable(STR), "mode": STR})},
        "requested_by": USER_REF, "requested_at": DATE_TIME, "comment": nullable(STR),
        "checklist": {"type": "array", "items": STR}, "decided_by": nullable(USER_REF),
        "decided_at": nullable(DATE_TIME), "version": INT,
        "tasks": {"type": "array", "items": obj({"id": INT, "step": INT, "user": USER_REF, "status": STR,
                                                 "comment": nullable(STR), "decided_at": nullable(DATE_TIME),
                                                 "added_by": nullable(INT)})},
        "waiting_for_me": BOOL}, description="An approval request (approvals.request_json)."),
    "ApprovalList": obj({"box": {"enum": ["waiting", "requested"]}, "items": {"type": "array",
                                                                              "items": ref("Approval")}}),
    "Decision": obj({"decision": {"enum": [d.value for d in Decision]}, "comment": STR,
                     "user": {**ID, "description": "transfer / add_approver: the user to hand to or add."}},
                    ["decision"]),
    "StageVisit": obj({"stage": STR, "entered_at": DATE_TIME, "entered_by": nullable(INT),
                       "left_at": nullable(DATE_TIME), "left_by": nullable(INT), "seconds": NUM,
                       "checklist": {"type": "array", "items": STR}, "comment": nullable(STR)}),
    "StageHistory": obj({"pipeline": STR, "stage": nullable(STR),
                         "visits": {"type": "array", "items": ref("StageVisit")},
                         "time_in_stage": {"type": "object", "additionalProperties": NUM},
                         "next_stages": {"type": "array", "items": STR},
                         "pending_approval": nullable(ref("Approval"))}),
    "Change": obj({"id": INT, "action": STR, "record_version": INT, "entity_version": nullable(INT),
                   "changes": {"type": "object", "additionalProperties": {"type": "array", "minItems": 2,
                                                                          "maxItems": 2},
                               "description": "[old, new] per field changed."},
                   "actor_id": nullable(INT), "cause": obj({"kind": STR, "ref": nullable(STR)}), "at": DATE_TIME,
                   "detail": ANY_OBJECT},
                  ["id", "action", "record_version", "entity_version", "changes", "actor_id", "cause", "at"],
                  description="One entry of a record's change log (change_json)."),
    "ChangeList": items_of(ref("Change")),
    "RuleRunSummary": obj({
        "id": INT, "rule": STR, "rule_version": INT, "trigger": STR, "record_id": nullable(INT),
        "event_id": nullable(INT), "job_id": nullable(INT), "depth": INT, "status": STR, "matched": nullable(BOOL),
        "reason": nullable(STR), "attempts": INT, "started_at": DATE_TIME, "finished_at": nullable(DATE_TIME),
        "duration_ms": nullable(NUM)}, description="A rule run (run_json)."),
    "RuleRunList": obj({"items": {"type": "array", "items": ref("RuleRunSummary")}, "next_before": nullable(INT)}),
    "RuleRun": {"allOf": [ref("RuleRunSummary")], "type": "object", "properties": {
        "actions": {"type": "array", "items": obj({
            "position": INT, "type": STR, "status": STR, "result": {}, "error": nullable(STR), "key": nullable(STR),
            "started_at": nullable(DATE_TIME), "finished_at": nullable(DATE_TIME)})},
        "deliveries": {"type": "array", "items": obj({
            "attempt": INT, "url": STR, "status_code": nullable(INT), "error": nullable(STR), "at": DATE_TIME,
            "duration_ms": nullable(NUM), "next_attempt_at": nullable(DATE_TIME)})}}},
    "DryRun": obj({"rule": STR, "days": nullable(INT), "would_act": INT, "items": {"type": "array", "items": obj({
        "record_id": nullable(INT), "title": STR, "trigger": STR, "matched": nullable(BOOL), "status": STR,
        "reason": nullable(STR), "actions": {"type": "array", "items": ANY_OBJECT}})}}),
    "AutomationHealth": obj({
        "events_waiting": INT, "events_running": INT, "jobs_due": INT, "jobs_running": INT, "jobs_scheduled": INT,
        "runs_failed": INT, "runs_stopped": INT, "oldest_due_at": nullable(DATE_TIME),
        "oldest_due_seconds": nullable(NUM), "queue": obj({"kind": {"enum": ["embedded", "redis"]}}, ["kind"],
                                                          extra=True)}),
    "Notification": obj({"id": INT, "title": STR, "body": nullable(STR), "app_id": nullable(INT),
                         "entity": nullable(STR), "record_id": nullable(INT), "created_at": DATE_TIME, "read": BOOL,
                         "snoozed_until": nullable(DATE_TIME), "email": nullable(STR)}),
    "NotificationList": obj({"items": {"type": "array", "items": ref("Notification")}, "unread": INT}),
    "Snooze": obj({"until": {**DATE_TIME, "description": "A moment with its time zone."}}),
    "UnreadCount": obj({"unread": INT}),
    "MarkedRead": obj({"marked": INT, "unread": INT}),
    "UploadedFile": obj({"id": INT, "name": STR, "size": INT, "type": STR,
                         "url": {**STR, "description": "Where to download it (same authentication)."}}),
    "Upload": obj({"file": {"type": "string", "contentMediaType": "application/octet-stream",
                            "description": "The file."},
                   "signature": {"type": "string", "description": "Or a drawn signature: data:image/png;base64,..."}},
                  []),
    "Discarded": obj({"discarded": {"const": True}}),
    "OpenAPI": {"type": "object", "description": "An OpenAPI 3.1 document (this one)."},
}

ERRORS = {
    400: ("bad_request", "The request is malformed: a parameter or the body is not what the operation takes "
                         "(also csrf_failed for cookie-authenticated writes without X-CSRFToken)."),
    401: ("unauthorized", "No valid Bearer token or session."),
    403: ("forbidden", "The user (or the token's scopes) may not do this."),
    404: ("not_found", "No such app, definition, record or other object, or not visible to the user."),
    409: ("conflict", "The change conflicts with the current state (version_conflict, approval_required, "
                      "a key already taken)."),
    413: ("too_large", "The body is larger than the server accepts."),
    422: ("validation_failed", "The request is well formed but refused: validation_failed (fields per field "
                               "key), definition_invalid (fields per JSON path), stage_gate, no_approvers."),
}

RESPONSES = {str(status): {"description": text, "content": {"application/json": {"schema": ref("Error")}}}
             for status, (_code, text) in ERRORS.items()}


def errors(*statuses: int) -> dict:
    """Error responses of an operation: 401 always, and ``statuses``; each refers to the shared Error."""
    return {str(s): {"$ref": f"#/components/responses/{s}"} for s in sorted({401, *statuses})}


def json_response(description: str, schema: dict) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def json_body(schema: dict, required: bool = True, description: str | None = None) -> dict:
    body = {"required": required, "content": {"application/json": {"schema": schema}}}
    if description:
        body["description"] = description
    return body


SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "An API token: 'formloom token create USER' prints one."},
}

MOVE_STATUSES = [s.value for s in MoveStatus]

"""The paths every installation has: apps, field types, definitions, bundles, pipelines, approvals,
automation, notifications and files. Each operation names the view that answers it in its id."""
from __future__ import annotations

from formloom.api_docs.components import (
    ID,
    INT,
    NUM,
    STR,
    errors,
    json_body,
    json_response,
    obj,
    ref,
)
from formloom.api_docs.entities import LOCALE_PARAM
from formloom.builder.checks import KINDS_AVAILABLE
from formloom.runtime.fields import ID_LIMIT

TAGS = [
    {"name": "apps", "description": "Apps and the field registry"},
    {"name": "definitions", "description": "Definitions: drafts, checks, publishing, versions"},
    {"name": "bundles", "description": "Export and import of whole apps"},
    {"name": "pipelines", "description": "Pipelines, boards and statistics"},
    {"name": "approvals", "description": "Approval requests"},
    {"name": "automation", "description": "Rule runs, dry runs and queue health"},
    {"name": "notifications", "description": "The user's inbox"},
    {"name": "files", "description": "Uploads and downloads"},
    {"name": "meta", "description": "This document"},
    {"name": "incentives", "description": "Commission leaderboards and statements"},
]


def _path_param(name: str, description: str, schema: dict) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


def _query(name: str, description: str, schema: dict) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _id(name: str, what: str) -> dict:
    return _path_param(name, f"The {what} id.", {"type": "integer", "minimum": 1, "maximum": ID_LIMIT})


def _op(tag: str, operation_id: str, summary: str, responses: dict, **more) -> dict:
    return {"tags": [tag], "operationId": operation_id, "summary": summary, "responses": responses, **more}


def generic_paths(app_keys: list[str], page_max: int) -> dict[str, dict]:
    """Every path that does not depend on an entity; ``{app}`` takes one of ``app_keys``."""
    app = _path_param("app", "An app key.", {"enum": app_keys} if app_keys else {"type": "string"})
    kind = _path_param("kind", "The kind of definition.", {"enum": list(KINDS_AVAILABLE)})
    key = _path_param("key", "The definition key.", {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"})
    definition = [app, kind, key]
    paths = {
        **_app_paths(app),
        **_definition_paths(app, definition),
        **_pipeline_paths(app),
        **_approval_paths(),
        **_automation_paths(app, key),
        **_notification_paths(page_max),
        **_file_paths(app),
        **_incentive_paths(app),
        "/api/v1/openapi.json": {"get": _op(
            "meta", "openapi.document", "This document, for the apps the caller may see",
            {"200": json_response("The OpenAPI document.", ref("OpenAPI"))}, parameters=[LOCALE_PARAM])},
    }
    for path, item in paths.items():  # under /api every operation answers 401 without a valid token
        for method, operation in item.items():
            if method != "parameters" and path.startswith("/api/"):
                operation["responses"].update(errors())
    return paths


def _app_paths(app: dict) -> dict:
    return {
        "/api/v1/apps": {
            "get": _op("apps", "apps.list", "Apps you can reach",
                       {"200": json_response("The apps.", ref("AppList"))}),
            "post": _op("apps", "apps.create", "Create an app (admins)",
                        {"201": json_response("The new app.", ref("App")), **errors(400, 403, 409, 422)},
                        requestBody=json_body(ref("AppCreate")))},
        "/api/v1/apps/{app}": {"parameters": [app], "get": _op(
            "apps", "apps.get", "The app and its published entities",
            {"200": json_response("The app.", ref("AppDetail")), **errors(403, 404)}, parameters=[LOCALE_PARAM])},
        "/api/v1/field-types": {"get": _op(
            "apps", "field_types.list", "The field registry: each type's options and filter operators",
            {"200": json_response("The field types.", ref("FieldTypeList"))}, parameters=[LOCALE_PARAM])},
        "/api/v1/apps/{app}/export": {"parameters": [app], "get": _op(
            "bundles", "bundles.export", "The app's published definitions as a bundle (a download)",
            {"200": json_response("The bundle.", ref("Bundle")), **errors(400, 403, 404)})},
        "/api/v1/apps/import": {"post": _op(
            "bundles", "bundles.import", "Create an app from a bundle (admins)",
            {"201": json_response("The new app.", ref("ImportedApp")), **errors(400, 403, 409, 413, 422)},
            parameters=[_query("key", "Import under this app key instead of the bundle's.",
                               {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"})],
            requestBody=json_body(ref("Bundle")))},
    }


def _definition_paths(app: dict, definition: list[dict]) -> dict:
    base = "/api/v1/apps/{app}/definitions/{kind}/{key}"
    published = _query("from", "A version number (default: the published one).", {"type": "string",
                                                                                   "pattern": "^[0-9]{1,9}$"})
    target = _query("to", "A version number, or 'draft' (default).",
                    {"anyOf": [{"type": "string", "pattern": "^[0-9]{1,9}$"}, {"const": "draft"}]})
    return {
        "/api/v1/apps/{app}/definitions": {"parameters": [app], "get": _op(
            "definitions", "definitions.list", "The app's definitions with their state",
            {"200": json_response("The definitions.", ref("DefinitionList")), **errors(400, 403, 404)},
            parameters=[_query("kind", "Only this kind.", {"enum": list(KINDS_AVAILABLE)})])},
        base: {"parameters": definition,
               "get": _op("definitions", "definitions.get", "The published body and the draft",
                          {"200": json_response("The definition.", ref("DefinitionDetail")), **errors(400, 403, 404)}),
               "put": _op("definitions", "definitions.save_draft", "Save a draft (answers every problem found)",
                          {"200": json_response("Saved, with its problems.", ref("DraftSaved")),
                           **errors(400, 403, 404, 422)}, requestBody=json_body(ref("DefinitionBody")))},
        base + "/check": {"parameters": definition, "post": _op(
            "definitions", "definitions.check", "Check a body without saving it",
            {"200": json_response("Its problems.", ref("CheckResult")), **errors(400, 403, 404)},
            requestBody=json_body(ref("DefinitionBody")))},
        base + "/publish": {"parameters": definition, "post": _op(
            "definitions", "definitions.publish", "Publish the draft",
            {"200": json_response("The published version.", ref("Version")), **errors(400, 403, 404, 409, 422)},
            requestBody=json_body(ref("PublishOptions"), required=False))},
        base + "/draft": {"parameters": definition, "delete": _op(
            "definitions", "definitions.discard_draft", "Discard the draft",
            {"200": json_response("Discarded.", ref("Discarded")), **errors(400, 403, 404)})},
        base + "/versions": {"parameters": definition, "get": _op(
            "definitions", "definitions.versions", "Published versions, newest first",
            {"200": json_response("The versions.", ref("VersionList")), **errors(400, 403, 404)})},
        base + "/versions/{number}": {"parameters": [*definition, _path_param(
            "number", "The version number.", {"type": "integer", "minimum": 1, "maximum": ID_LIMIT})], "get": _op(
            "definitions", "definitions.version", "One published version with its body",
            {"200": json_response("The version.", ref("Version")), **errors(400, 403, 404)})},
        base + "/diff": {"parameters": definition, "get": _op(
            "definitions", "definitions.diff", "What changed between two versions (or a version and the draft)",
            {"200": json_response("The changes, each as a sentence.", ref("Diff")), **errors(400, 403, 404)},
            parameters=[published, target, LOCALE_PARAM])},
        base + "/impact": {"parameters": definition, "get": _op(
            "definitions", "definitions.impact", "What publishing the draft would do to live records",
            {"200": json_response("The impacts.", ref("ImpactList")), **errors(400, 403, 404)})},
        base + "/rollback": {"parameters": definition, "post": _op(
            "definitions", "definitions.rollback", "Publish an earlier version again, as a new version",
            {"201": json_response("The new version.", ref("Version")), **errors(400, 403, 404, 409, 422)},
            requestBody=json_body(ref("Rollback")))},
        base + "/try": {"parameters": definition, "post": _op(
            "definitions", "definitions.try", "Validate values against the draft entity or form; nothing is saved",
            {"200": json_response("The values are valid.", ref("TryResult")),
             "422": json_response("The values are refused (errors per field), or the draft is not valid "
                                  "(the error shape).", {"anyOf": [ref("TryRefused"), ref("Error")]}),
             **errors(400, 403, 404)},
            parameters=[LOCALE_PARAM], requestBody=json_body({"type": "object", "description": "Field values."}))},
        "/api/v1/key-suggestion": {"post": _op(
            "definitions", "keys.suggest", "A snake_case key for a label (Chinese in pinyin)",
            {"200": json_response("The key.", ref("KeySuggestion")), **errors(400)},
            requestBody=json_body(ref("KeySuggestionRequest")))},
    }


def _pipeline_paths(app: dict) -> dict:
    pipeline = _path_param("pipeline", "The pipeline key.", {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"})
    date = {"type": "string", "format": "date"}
    return {
        "/api/v1/apps/{app}/pipelines": {"parameters": [app], "get": _op(
            "pipelines", "pipelines.list", "The app's published pipelines with their stages",
            {"200": json_response("The pipelines.", ref("PipelineList")), **errors(403, 404)})},
        "/api/v1/apps/{app}/pipelines/{pipeline}/board": {"parameters": [app, pipeline], "get": _op(
            "pipelines", "pipelines.board", "The board: a column per stage with its count, total and cards",
            {"200": json_response("The board.", ref("Board")), **errors(400, 403, 404)},
            parameters=[_query("scope", "Whose records.", {"enum": ["mine", "team", "all"]}),
                        _query("owner", "Only this owner's records.", {**ID, "maximum": ID_LIMIT}),
                        _query("from", "Dated on or after.", date), _query("to", "Dated on or before.", date),
                        _query("q", "Search in the titles.", STR),
                        _query("limit", "Cards per column.", {"type": "integer", "minimum": 1, "maximum": 200})])},
        "/api/v1/apps/{app}/pipelines/{pipeline}/stats": {"parameters": [app, pipeline], "get": _op(
            "pipelines", "pipelines.stats", "Per stage: entered, current, converted, conversion rate, median stay",
            {"200": json_response("The statistics.", ref("PipelineStats")), **errors(403, 404)},
            parameters=[LOCALE_PARAM])},
    }


def _approval_paths() -> dict:
    request = _id("request", "approval request")
    return {
        "/api/v1/approvals": {"get": _op(
            "approvals", "approvals.list", "Requests waiting for me, or requested by me",
            {"200": json_response("The requests.", ref("ApprovalList")), **errors(400)},
            parameters=[_query("box", "waiting (default) or requested.", {"enum": ["waiting", "requested"]}),
                        LOCALE_PARAM])},
        "/api/v1/approvals/{request}": {"parameters": [request], "get": _op(
            "approvals", "approvals.get", "One request: stages, steps, each approver's task",
            {"200": json_response("The request.", ref("Approval")), **errors(403, 404)}, parameters=[LOCALE_PARAM])},
        "/api/v1/approvals/{request}/decision": {"parameters": [request], "post": _op(
            "approvals", "approvals.decide", "Approve, reject, send back, transfer or add an approver",
            {"200": json_response("The request after the decision.", ref("Approval")),
             **errors(400, 403, 404, 409, 422)}, parameters=[LOCALE_PARAM], requestBody=json_body(ref("Decision")))},
        "/api/v1/approvals/{request}/withdraw": {"parameters": [request], "post": _op(
            "approvals", "approvals.withdraw", "The requester takes the request back",
            {"200": json_response("The withdrawn request.", ref("Approval")), **errors(400, 403, 404, 409)},
            parameters=[LOCALE_PARAM])},
    }


def _automation_paths(app: dict, key: dict) -> dict:
    run = _id("run", "rule run")
    return {
        "/api/v1/apps/{app}/automation/runs": {"parameters": [app], "get": _op(
            "automation", "automation.runs", "Rule runs, newest first (admins of the app)",
            {"200": json_response("The runs.", ref("RuleRunList")), **errors(400, 403, 404)},
            parameters=[_query("rule", "Only this rule.", STR), _query("status", "Only runs with this status.", STR),
                        _query("record", "Only runs about this record.", {**ID, "maximum": ID_LIMIT}),
                        _query("limit", "How many.", {"type": "integer", "minimum": 1, "maximum": 200}),
                        _query("before", "Runs older than this run id.", {**ID, "maximum": ID_LIMIT})])},
        "/api/v1/apps/{app}/automation/runs/{run}": {"parameters": [app, run], "get": _op(
            "automation", "automation.run", "One run: trigger, condition, each action, webhook deliveries",
            {"200": json_response("The run.", ref("RuleRun")), **errors(403, 404)})},
        "/api/v1/apps/{app}/automation/runs/{run}/retry": {"parameters": [app, run], "post": _op(
            "automation", "automation.retry", "Run a failed run again (succeeded actions are not repeated)",
            {"200": json_response("The run.", ref("RuleRunSummary")), **errors(400, 403, 404, 409)})},
        "/api/v1/apps/{app}/rules/{key}/dry-run": {"parameters": [app, key], "post": _op(
            "automation", "automation.dry_run", "What the rule (its draft if any) would do; nothing is kept",
            {"200": json_response("What it would do.", ref("DryRun")), **errors(400, 403, 404, 422)},
            parameters=[_query("limit", "At most this many items.", {"type": "integer", "minimum": 1, "maximum": 500})],
            requestBody=json_body({"type": "object", "properties": {"days": {
                "type": "integer", "minimum": 1, "maximum": 365, "description": "Replay the events of the last "
                                                                                "N days."}}}, required=False))},
        "/api/v1/automation/health": {"get": _op(
            "automation", "automation.health", "Waiting and running events and jobs, failed runs, queue counts",
            {"200": json_response("The health.", ref("AutomationHealth")), **errors(400, 403, 404)},
            parameters=[_query("app", "The app (required for non-admins).", app["schema"])])},
    }


def _notification_paths(page_max: int) -> dict:
    note = _id("notification", "notification")
    return {
        "/api/v1/notifications": {"get": _op(
            "notifications", "notifications.list", "My inbox with the unread count",
            {"200": json_response("The notifications.", ref("NotificationList")), **errors(400)},
            parameters=[_query("unread", "true: unread ones only.", {"type": "boolean"}),
                        _query("limit", "How many.", {"type": "integer", "minimum": 1, "maximum": 200})])},
        "/api/v1/notifications/{notification}/read": {"parameters": [note], "post": _op(
            "notifications", "notifications.read", "Mark one read",
            {"200": json_response("The unread count.", ref("UnreadCount")), **errors(400, 404)})},
        "/api/v1/notifications/read-all": {"post": _op(
            "notifications", "notifications.read_all", "Mark all read",
            {"200": json_response("How many were marked.", ref("MarkedRead")), **errors(400)})},
        "/api/v1/notifications/{notification}/snooze": {"parameters": [note], "post": _op(
            "notifications", "notifications.snooze", "Hide it until a moment",
            {"200": json_response("The notification.", ref("Notification")), **errors(400, 404)},
            requestBody=json_body(ref("Snooze")))},
    }


def _file_paths(app: dict) -> dict:
    return {
        "/api/v1/apps/{app}/files": {"parameters": [app], "post": _op(
            "files", "files.upload", "Upload one file (field 'file') or a signature (field 'signature')",
            {"201": json_response("The stored file; put its id in a file field.", ref("UploadedFile")),
             **errors(400, 403, 404, 413, 422)},
            parameters=[_query("images_only", "true: PNG, JPEG, GIF and WebP only.", {"type": "boolean"}),
                        _query("max_mb", "A lower size limit than the server's, in MB.",
                               {"type": "integer", "minimum": 1}),
                        _query("accept", "Accepted types, like .pdf,image/*", STR)],
            requestBody={"required": True, "content": {"multipart/form-data": {"schema": ref("Upload")}}})},
        "/apps/{app}/files/{file}/{name}": {"parameters": [app, _id("file", "file"), _path_param(
            "name", "The file name, as the upload answered it in its url.", STR)], "get": _op(
            "files", "files.download", "The file's bytes (images inline, other files as downloads)",
            {"200": {"description": "The file.", "content": {"*/*": {"schema": {"type": "string",
                                                                                "contentMediaType": "*/*"}}}},
             "302": {"description": "Without a token or session: to the login page."},
             "304": {"description": "Not modified (If-None-Match matched the ETag)."},
             "403": {"description": "Not allowed (an HTML page: this path is outside /api).",
                     "content": {"text/html": {"schema": STR}}},
             "404": {"description": "No such file (an HTML page: this path is outside /api).",
                     "content": {"text/html": {"schema": STR}}}})},
    }



def _incentive_paths(app: dict) -> dict:
    """docs/incentives.md: the leaderboard and a statement of a commission plan over a period."""
    period = _query("period", "A month (2026-11), a quarter (2026-Q4) or a year (2026); default this month.",
                    {"type": "string", "pattern": "^[0-9]{4}(-(0[1-9]|1[0-2]|Q[1-4]))?$"})
    plan = _query("plan", "The commission plan's key (default: the first).", STR)
    span = {"plan": STR, "period": STR, "start": STR, "end": STR}
    board = obj({**span, "rows": {"type": "array", "items": obj(
        {"user": INT, "name": STR, "rank": INT, "amount": NUM, "commission": NUM})}})
    line = obj({"id": INT, "title": STR, "date": STR, "amount": NUM, "rate": NUM, "commission": NUM},
               extra={"type": ["string", "null"]}, description="A record; its relations' titles by field key.")
    statement = obj({**span, "user": INT, "name": STR, "relations": {"type": "array", "items": STR},
                     "lines": {"type": "array", "items": line},
                     "totals": obj({"amount": NUM, "commission": NUM, "lines": INT})})
    return {
        "/api/v1/apps/{app}/incentives": {"parameters": [app], "get": _op(
            "incentives", "incentives.leaderboard", "Each person's amount and commission in the period, ranked",
            {"200": json_response("The leaderboard.", board), **errors(403, 404, 422)},
            parameters=[period, plan])},
        "/api/v1/apps/{app}/incentives/statement": {"parameters": [app], "get": _op(
            "incentives", "incentives.statement", "One person's commission lines and totals in the period",
            {"200": json_response("The statement.", statement), **errors(400, 403, 404, 422)},
            parameters=[period, plan, _query("user", "Whose statement (default: the caller's).",
                                             {**ID, "maximum": ID_LIMIT})])},
    }

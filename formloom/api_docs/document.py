"""Build the OpenAPI 3.1 document for the apps a user may see, from their published definitions."""
from __future__ import annotations

from sqlalchemy.orm import Session

from formloom.api_docs.components import RESPONSES, SCHEMAS, SECURITY_SCHEMES
from formloom.api_docs.entities import entity_api
from formloom.api_docs.generic import TAGS, generic_paths
from formloom.platform.auth import Action, can, visible_apps
from formloom.platform.models import User
from formloom.runtime import access, catalog, pipelines
from formloom.runtime.labels import text_of

OPENAPI_VERSION = "3.1.0"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
API_VERSION = "1"
DESCRIPTION = (
    "The Formloom REST API. Authenticate with 'Authorization: Bearer <token>'. Every error answers "
    '{"error": {"code", "message", "fields"?}}. Record paths are listed per app and entity, with the '
    "fields of the published definitions as they are when this document is fetched: fetch it again "
    "after a publish.")


def build_document(session: Session, user: User, *, locale: str = "en", page_max: int = 200,
                   server_url: str = "/") -> dict:
    """The OpenAPI document for ``user``: the generic paths, and the record paths of every entity of
    every app they may read the records of. Labels and descriptions are in ``locale``."""
    apps = visible_apps(session, user)
    paths = generic_paths([a.key for a in apps], page_max)
    schemas = dict(SCHEMAS)
    tags = []
    for app in apps:
        if not can(session, user, Action.READ_RECORDS, app):
            continue
        rules = access.policy(session, user, app)
        for key in rules.readable_entities(catalog.entity_keys(session, app)):
            entity = rules.visible_entity(catalog.entity(session, app, key))  # no hidden field's name either
            part = entity_api(app, entity, pipelines.pipeline_for(session, app, key), locale, page_max)
            tags.append(part.tag)
            paths.update(part.paths)
            schemas.update(part.schemas)
    return {
        "openapi": OPENAPI_VERSION,
        "jsonSchemaDialect": JSON_SCHEMA_DIALECT,
        "info": {"title": "Formloom API", "version": API_VERSION, "description": DESCRIPTION,
                 "x-formloom-apps": [{"key": a.key, "label": text_of(a.label, locale)} for a in apps]},
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "tags": [*tags, *TAGS],
        "paths": paths,
        "components": {"schemas": schemas, "responses": RESPONSES, "securitySchemes": SECURITY_SCHEMES},
    }

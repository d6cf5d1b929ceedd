"""The one error hierarchy of Formloom.

Errors are raised inside services and turned into JSON or HTML only at the edge
(``formloom.platform.app`` registers the handlers).
"""
from __future__ import annotations

from dataclasses import dataclass


class FormloomError(Exception):
    """Base of every error a user or integrator can be shown."""

    http_status = 400
    code = "bad_request"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def field_messages(self) -> dict[str, list[str]]:
        return {}

    def extra(self) -> dict:
        return {}


class Unauthorized(FormloomError):
    http_status = 401
    code = "unauthorized"


class Forbidden(FormloomError):
    http_status = 403
    code = "forbidden"


class NotFound(FormloomError):
    http_status = 404
    code = "not_found"


class Conflict(FormloomError):
    http_status = 409
    code = "conflict"


class VersionConflict(Conflict):
    """An update was based on a version of a record that is no longer current."""

    code = "version_conflict"

    def __init__(self, message: str, current_version: int, changed_fields: dict[str, list] | None = None):
        super().__init__(message)
        self.current_version = current_version
        self.changed_fields = changed_fields or {}

    def extra(self) -> dict:
        return {"current_version": self.current_version, "changed_fields": self.changed_fields}


@dataclass(frozen=True)
class Problem:
    """One problem in a definition, at a JSON path such as ``$.fields[2].type``."""

    path: str
    message: str


class DefinitionError(FormloomError):
    """The definition is wrong; carries every problem found, each with its path."""

    http_status = 422
    code = "definition_invalid"

    def __init__(self, problems: list[Problem], message: str | None = None):
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(message or f"The definition has {count} problem{'s' if count != 1 else ''}.")

    def field_messages(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for problem in self.problems:
            out.setdefault(problem.path, []).append(problem.message)
        return out


class RecordValidationError(FormloomError):
    """The submitted record is wrong; carries every field error, keyed by field key."""

    http_status = 422
    code = "validation_failed"

    def __init__(self, fields: dict[str, list[str]], message: str | None = None):
        self.fields = fields
        count = sum(len(v) for v in fields.values())
        super().__init__(message or f"Please correct {count} problem{'s' if count != 1 else ''} in the form.")

    def field_messages(self) -> dict[str, list[str]]:
        return self.fields

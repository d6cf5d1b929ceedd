"""Small helpers shared by the JSON API blueprints."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import request

from formloom.platform.errors import FormloomError


class BadRequest(FormloomError):
    code = "bad_request"


def json_body() -> dict:
    """The request's JSON object, or a clear error."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object (Content-Type: application/json).")
    return body


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Parameter '{name}' must be a whole number, got '{raw}'.") from None
    if not low <= value <= high:
        raise BadRequest(f"Parameter '{name}' must be between {low} and {high}, got {value}.")
    return value


def require(body: dict, key: str, kind: type, hint: str) -> Any:
    value = body.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise BadRequest(f"'{key}' is required: {hint}.")
    return value

"""Automation rules: compiled definitions, which triggers they answer, and when timed ones are due."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from formloom.platform.models import App
from formloom.runtime import catalog


class Trigger(str, Enum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    FIELD_CHANGED = "field_changed"
    STAGE_ENTERED = "stage_entered"
    STAGE_LEFT = "stage_left"
    APPROVAL_DECIDED = "approval_decided"
    DATE_REACHED = "date_reached"
    SCHEDULE = "schedule"
    INACTIVITY = "inactivity"


class EventKind(str, Enum):
    """What the outbox records; rules' triggers are read from these."""

    CREATED = "record.created"
    UPDATED = "record.updated"
    DELETED = "record.deleted"
    STAGE_ENTERED = "stage.entered"
    STAGE_LEFT = "stage.left"
    APPROVAL_DECIDED = "approval.decided"


TIMED = frozenset({Trigger.DATE_REACHED, Trigger.SCHEDULE, Trigger.INACTIVITY})
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


@dataclass(frozen=True)
class Rule:
    key: str
    version: int
    body: Mapping[str, Any]
    entity_key: str
    trigger: Trigger
    published_by: int | None

    @property
    def enabled(self) -> bool:
        return self.body.get("enabled", True)

    @property
    def options(self) -> Mapping[str, Any]:
        return self.body["trigger"]

    @property
    def condition(self) -> Mapping[str, Any] | None:
        return self.body.get("condition")

    @property
    def actions(self) -> list[Mapping[str, Any]]:
        return self.body["actions"]

    def answers(self, kind: str, entity_key: str, payload: Mapping[str, Any]) -> bool:
        """Whether an event of ``kind`` about ``entity_key`` triggers this rule."""
        if not self.enabled or entity_key != self.entity_key or self.trigger in TIMED:
            return False
        options = self.options
        if self.trigger is Trigger.CREATED:
            return kind == EventKind.CREATED.value
        if self.trigger is Trigger.UPDATED:
            return kind == EventKind.UPDATED.value
        if self.trigger is Trigger.DELETED:
            return kind == EventKind.DELETED.value
        if self.trigger is Trigger.FIELD_CHANGED:
            return _field_changed(options, kind, payload)
        if self.trigger in (Trigger.STAGE_ENTERED, Trigger.STAGE_LEFT):
            wanted = EventKind.STAGE_ENTERED if self.trigger is Trigger.STAGE_ENTERED else EventKind.STAGE_LEFT
            return kind == wanted.value and options.get("stage", payload.get("stage")) == payload.get("stage")
        if self.trigger is Trigger.APPROVAL_DECIDED:
            return kind == EventKind.APPROVAL_DECIDED.value and options.get(
                "decision", payload.get("decision")) == payload.get("decision")
        return False


def _field_changed(options: Mapping[str, Any], kind: str, payload: Mapping[str, Any]) -> bool:
    if kind not in (EventKind.CREATED.value, EventKind.UPDATED.value):
        return False
    change = (payload.get("changes") or {}).get(options["field"])
    if change is None:
        return False
    old, new = change
    return ("from" not in options or options["from"] == old) and ("to" not in options or options["to"] == new)


MEMO = "formloom.rules"


def rules_of(session: Session, app: App) -> list[Rule]:
    """The app's published rules (remembered for the session)."""
    memo = session.info.setdefault(MEMO, {})
    if app.id not in memo:
        memo[app.id] = [Rule(key=row.body["key"], version=row.version, body=row.body, entity_key=row.body["entity"],
                             trigger=Trigger(row.body["trigger"]["type"]), published_by=row.published_by)
                        for row in catalog.published_rows(session, app, "rule")]
    return memo[app.id]


def get_rule(session: Session, app: App, key: str) -> Rule | None:
    return next((r for r in rules_of(session, app) if r.key == key), None)


# --- when timed rules are due --------------------------------------------------------------------

def app_zone(session: Session, app: App) -> ZoneInfo:
    """The app's time zone (its definition's ``time_zone``; UTC without one), remembered for the session.

    Every record change asks for it (to schedule its timers): a bulk load must not read the app
    definition once per record.
    """
    memo = session.info.setdefault(MEMO, {})
    if ("zone", app.id) not in memo:
        row = catalog.published_version(session, app, "app", app.key)
        try:
            memo[("zone", app.id)] = ZoneInfo((row.body if row else {}).get("time_zone") or "UTC")
        except (ValueError, KeyError):
            memo[("zone", app.id)] = ZoneInfo("UTC")
    return memo[("zone", app.id)]


def _clock(text: str | None) -> time:
    hours, minutes = (text or "09:00").split(":")
    return time(int(hours), int(minutes))


def date_due(rule: Rule, value: Any, zone: ZoneInfo) -> datetime | None:
    """When a date-reached rule is due for a record holding ``value`` in its date field (UTC)."""
    options = rule.options
    offset = timedelta(days=options.get("offset_days", 0))
    if not isinstance(value, str) or not value:
        return None
    try:
        if len(value) == 10:  # a date: the given clock time on that day, in the app's time zone
            day = date.fromisoformat(value) + offset
            return datetime.combine(day, _clock(options.get("at")), zone).astimezone(UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)) + offset
    if "at" in options:
        local = moment.astimezone(zone)
        moment = datetime.combine(local.date(), _clock(options["at"]), zone)
    return moment.astimezone(UTC)


def next_occurrence(rule: Rule, after: datetime, zone: ZoneInfo) -> datetime:
    """The first moment strictly after ``after`` at which a scheduled rule runs (UTC)."""
    options = rule.options
    local = after.astimezone(zone)
    at = _clock(options.get("at"))
    every = options["every"]
    if every == "hour":
        start = local.replace(minute=at.minute, second=0, microsecond=0)
        candidate = start if start > local else start + timedelta(hours=1)
        return candidate.astimezone(UTC)
    candidate = datetime.combine(local.date(), at, zone)
    for _ in range(400):
        if candidate > local and _fits(options, every, candidate):
            return candidate.astimezone(UTC)
        candidate = datetime.combine(candidate.date() + timedelta(days=1), at, zone)
    raise ValueError(f"Rule '{rule.key}' has no next run.")


def _fits(options: Mapping[str, Any], every: str, moment: datetime) -> bool:
    if every == "week":
        return WEEKDAYS[moment.weekday()] == options.get("weekday", "monday")
    if every == "month":
        return moment.day == options.get("day", 1)
    return True

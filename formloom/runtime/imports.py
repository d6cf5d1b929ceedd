"""Importing records from CSV: every row through the same services as a form or the API.

An import is all or nothing: each row is created (or, with a match key, updated) through
:mod:`formloom.runtime.records`, so validation, stage gates and the change log apply exactly as
they do for a rep; if any row fails, nothing is kept and the report lists every failing row with
its problems. The change log names the import batch as the cause.
"""
from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from formloom.platform.auth import Action, Cause, authorize
from formloom.platform.db import json_value
from formloom.platform.errors import FormloomError
from formloom.platform.models import App, CauseKind, Record, User
from formloom.runtime import access, catalog, records
from formloom.runtime.compiler import CompiledEntity
from formloom.runtime.labels import LOCALES, text_of

LIST_TYPES = frozenset({"multiselect", "tags", "users", "relations"})
MATCH_TYPES = frozenset({"text", "email", "phone", "url", "integer", "serial"})


@dataclass
class RowProblem:
    line: int  # the line of the file (the header is line 1)
    fields: dict[str, list[str]]


@dataclass
class ImportReport:
    batch: str
    created: int = 0
    updated: int = 0
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def read_csv(data: bytes | str) -> list[dict[str, str]]:
    """Rows of a CSV file (UTF-8, with or without a byte-order mark) keyed by its header."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data.lstrip("\ufeff")
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise FormloomError("The file is empty: the first line must name the columns (field keys or labels).")
    return [dict(row) for row in reader]


def column_keys(entity: CompiledEntity, header: Iterable[str]) -> dict[str, str]:
    """Map each column (a field key, or its label in any language) to its field key."""
    names = {}
    for spec in entity.fields:
        names[spec.key] = spec.key
        for locale in LOCALES:
            names.setdefault(text_of(spec.definition["label"], locale).strip().casefold(), spec.key)
    mapping, unknown = {}, []
    for column in header:
        key = names.get(column) or names.get((column or "").strip().casefold())
        if key is None:
            unknown.append(column)
        else:
            mapping[column] = key
    if unknown:
        raise FormloomError(f"Column{'s' if len(unknown) > 1 else ''} {', '.join(repr(c) for c in unknown)} "
                            f"name{'' if len(unknown) > 1 else 's'} no field of {entity.key}; use field keys "
                            f"({', '.join(s.key for s in entity.fields)}) or their labels.")
    return mapping


def _values(entity: CompiledEntity, row: Mapping[str, str], mapping: Mapping[str, str]) -> dict:
    values = {}
    for column, key in mapping.items():
        raw = (row.get(column) or "").strip()
        spec = entity.by_key[key]
        if spec.type.computed:
            continue
        if spec.type.name in LIST_TYPES:
            values[key] = [part.strip() for part in raw.replace(";", ",").split(",") if part.strip()]
        else:
            values[key] = raw
    return values


def import_rows(session: Session, user: User, app: App, entity_key: str, rows: list[dict[str, str]], *,
                match: str | None = None, locale: str = "en") -> ImportReport:
    """Create or update one record per row; keep them only if every row succeeds."""
    authorize(session, user, Action.IMPORT_RECORDS, app)
    entity = catalog.entity(session, app, entity_key)
    rules = access.policy(session, user, app)
    rules.require(entity.key, access.RecordAction.IMPORT)
    if match is not None and (match not in entity.by_key or match in rules.hidden(entity.key)
                              or entity.by_key[match].type.name not in MATCH_TYPES):
        raise FormloomError(f"Records can be matched by a text, e-mail, phone, URL, number or serial field of "
                            f"{entity.key}; '{match}' is not one.")
    report = ImportReport(batch=uuid.uuid4().hex[:12])
    cause = Cause(CauseKind.IMPORT, user.id, f"import:{report.batch}")
    mapping = column_keys(entity, rows[0].keys()) if rows else {}
    outer = session.begin_nested()
    for line, row in enumerate(rows, start=2):
        values = _values(entity, row, mapping)
        try:
            with session.begin_nested():
                existing = _existing(session, rules, entity, match, values.get(match)) if match else None
                if existing is None:
                    records.create(session, user, cause, app, entity_key, values, locale=locale)
                    report.created += 1
                else:
                    records.update(session, user, cause, app, existing, values, existing.version, locale=locale)
                    report.updated += 1
        except FormloomError as exc:
            report.problems.append(RowProblem(line, exc.field_messages() or {"": [exc.message]}))
    if report.problems:
        outer.rollback()
        report.created = report.updated = 0
    else:
        outer.commit()
    return report


def _existing(session: Session, rules: access.Policy, entity: CompiledEntity, key: str,
              value: str | None) -> Record | None:
    """The record to update: among those the importer may update, the first with the value."""
    if not value:
        return None
    numeric = entity.by_key[key].type.name == "integer"
    try:
        wanted = int(value) if numeric else value
    except ValueError:
        return None
    return session.scalar(select(Record).where(
        Record.app_id == rules.app.id, Record.entity_key == entity.key, Record.deleted_at.is_(None),
        rules.scope(entity.key, access.RecordAction.UPDATE),
        json_value(Record.data, key, numeric=numeric) == wanted).order_by(Record.id).limit(1))

"""Lists of records: search on the title, filters on typed fields, sorting, pages and cursors."""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, exists, func, literal_column, or_, select, text, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from formloom.platform.auth import Action, authorize
from formloom.platform.db import json_value
from formloom.platform.errors import FormloomError
from formloom.platform.models import App, Record, User
from formloom.runtime import access
from formloom.runtime.access import RecordAction
from formloom.runtime.compiler import CompiledEntity, RecordValidator
from formloom.runtime.fields import ID_LIMIT, CoercionError

META_SORTS = {"id": Record.id, "created_at": Record.created_at, "updated_at": Record.updated_at,
              "title": Record.title}


class ListError(FormloomError):
    """A list parameter is wrong (unknown field, operator or value)."""

    code = "invalid_query"


@dataclass(frozen=True)
class Filter:
    key: str
    op: str
    value: Any


@dataclass
class ListQuery:
    search: str = ""
    filters: list[Filter] = field(default_factory=list)
    sort: str = "-updated_at"
    limit: int = 25
    offset: int = 0
    cursor: str | None = None
    deleted: bool = False  # list the deleted records instead of the live ones
    view: str | None = None  # a saved view's key: its filter applies, and its sort when ``sort`` is empty


@dataclass
class Page:
    records: list[Record]
    total: int
    next_cursor: str | None


def parse_filters(args: Mapping[str, str], entity: CompiledEntity) -> list[Filter]:
    """Read ``f.<field>[.<op>]=value`` parameters (``in`` takes comma-separated values)."""
    filters = []
    for name, raw in args.items():
        if not name.startswith("f.") or raw in ("", None):
            continue
        key, _, op = name[2:].partition(".")
        op = op or "eq"
        spec = entity.by_key.get(key)
        if spec is None:
            raise ListError(f"Cannot filter on '{key}': {entity.key} has no such field.")
        if op not in spec.type.filter_ops:
            allowed = ", ".join(spec.type.filter_ops) or "none"
            raise ListError(f"Field '{key}' cannot be filtered with '{op}'; it supports: {allowed}.")
        values = raw.split(",") if op == "in" else [raw]
        try:
            coerced = [spec.type.coerce(v, spec.definition) for v in values]
        except CoercionError as exc:
            raise ListError(f"Filter on '{key}': the value {exc}.") from None
        shape = _value_shape(spec.schema)
        for value in coerced:
            if value is not None and not shape.is_valid(value):
                raise ListError(f"Filter on '{key}': the value must be {spec.type.describes}, "
                                f"got '{value}'.")
        if spec.type.kind in ("list", "ids"):
            coerced = [c[0] for c in coerced if c]
        filters.append(Filter(key, op, coerced if op == "in" else coerced[0]))
    return filters


def _value_shape(schema: Mapping) -> RecordValidator:
    """A validator of a filter value: the field's type and format, not its bounds."""
    kept = {k: v for k, v in schema.items() if k in ("type", "format", "pattern", "items", "enum")}
    return RecordValidator(kept, format_checker=RecordValidator.FORMAT_CHECKER)


def _sort_expression(entity: CompiledEntity, sort: str) -> tuple[ColumnElement, bool, str]:
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key in META_SORTS:
        return META_SORTS[key], descending, key
    spec = entity.by_key.get(key)
    if spec is None or not spec.type.sortable:
        sortable = list(META_SORTS) + [f.key for f in entity.fields if f.type.sortable]
        raise ListError(f"Cannot sort by '{key}'; sort by one of: {', '.join(sortable)}.")
    return json_value(Record.data, key, numeric=spec.type.numeric), descending, key


def _filter_expression(session: Session, entity: CompiledEntity, flt: Filter) -> ColumnElement:
    spec = entity.by_key[flt.key]
    numeric = spec.type.numeric
    column = json_value(Record.data, flt.key, numeric=numeric)
    if spec.type.name == "boolean":
        stored = (1 if flt.value else 0) if _dialect(session) == "sqlite" else ("true" if flt.value else "false")
        return json_value(Record.data, flt.key) == stored
    if spec.type.kind in ("list", "ids"):
        return _array_contains(session, flt.key, flt.value)
    value = Decimal(str(flt.value)) if numeric else flt.value
    if flt.op == "eq":
        return column == value
    if flt.op == "in":
        return column.in_([Decimal(str(v)) if numeric else v for v in flt.value])
    if flt.op == "gte":
        return column >= value
    if flt.op == "lte":
        return column <= value
    return func.lower(column).like(f"%{_escape_like(str(value).lower())}%", escape="\\")


def _array_contains(session: Session, key: str, value: Any) -> ColumnElement:
    if _dialect(session) == "postgresql":  # works for text and for ids: '["vip"]', '[7]'
        return text(f"(records.data -> '{key}') @> CAST(:v AS jsonb)").bindparams(v=json.dumps([value]))
    each = func.json_each(Record.data, f"$.{key}").table_valued("value")
    return exists(select(literal_column("1")).select_from(each).where(each.c.value == value))


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _escape_like(text_: str) -> str:
    return text_.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _cursor_encode(value: Any, record_id: int) -> str:
    if isinstance(value, datetime):
        value = {"dt": value.isoformat()}
    elif isinstance(value, Decimal):
        value = {"num": str(value)}
    raw = json.dumps([value, record_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_decode(cursor: str) -> tuple[Any, int]:
    try:
        value, record_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if isinstance(value, dict) and "dt" in value:
            value = datetime.fromisoformat(value["dt"])
        elif isinstance(value, dict) and "num" in value:
            value = Decimal(value["num"])
        record_id = int(record_id)
        # Numbers beyond the database's integers are no position of any record (and fail to bind).
        if not 1 <= record_id <= ID_LIMIT or (isinstance(value, int) and abs(value) > 2**63 - 1):
            raise ValueError(record_id)
        return value, record_id
    except (ValueError, TypeError, binascii.Error, KeyError, ArithmeticError):
        raise ListError("The cursor is not valid; start again from the first page.") from None


def _sort_value(record: Record, key: str, numeric: bool) -> Any:
    if key in META_SORTS:
        return getattr(record, key)
    value = record.data.get(key)
    return Decimal(str(value)) if numeric and value is not None else value


def _after(sort_expr: ColumnElement, descending: bool, value: Any, record_id: int) -> ColumnElement:
    """Rows after (value, id) in the order ``sort IS NULL, sort [DESC], id [DESC]``."""
    beyond = sort_expr < value if descending else sort_expr > value
    next_id = Record.id < record_id if descending else Record.id > record_id
    if value is None:
        return and_(sort_expr.is_(None), next_id)
    return or_(sort_expr.is_(None), beyond, and_(sort_expr == value, next_id))


@dataclass(frozen=True)
class Selection:
    """The WHERE and ORDER BY of a list, shared by its pages and by exports so they never disagree."""

    conditions: tuple[ColumnElement, ...]  # app and entity, read scope, live/deleted, search, filters
    sort_expr: ColumnElement
    descending: bool
    sort_key: str
    numeric: bool  # the sort key is a numeric field

    @property
    def order(self) -> list[ColumnElement]:
        """``sort IS NULL, sort [DESC], id [DESC]``: empty values last, ties broken by id."""
        return [self.sort_expr.is_(None), self.sort_expr.desc() if self.descending else self.sort_expr.asc(),
                Record.id.desc() if self.descending else Record.id.asc()]

    def position(self, record: Record) -> tuple[Any, int]:
        """Where ``record`` stands in the order (a keyset cursor's content)."""
        return _sort_value(record, self.sort_key, self.numeric), record.id

    def after(self, value: Any, record_id: int) -> ColumnElement:
        return _after(self.sort_expr, self.descending, value, record_id)

    def statement(self, *columns: Any) -> Select:
        """SELECT ``columns`` (whole records by default) of the list's records, in its order."""
        return select(*(columns or (Record,))).where(*self.conditions).order_by(*self.order)


def select_records(session: Session, user: User, app: App, entity: CompiledEntity, query: ListQuery) -> Selection:
    """The records of ``query`` the user may read: search, filters and sort, checked and as SQL."""
    authorize(session, user, Action.READ_RECORDS, app)
    rules = access.policy(session, user, app)
    rules.require(entity.key, RecordAction.READ)
    _refuse_hidden(rules, entity, query)
    conditions = [Record.app_id == app.id, Record.entity_key == entity.key, rules.scope(entity.key),
                  Record.deleted_at.is_not(None) if query.deleted else Record.deleted_at.is_(None)]
    if "\x00" in query.search:
        raise ListError("The search text contains a NUL character (U+0000); remove it.")
    if query.search.strip():
        pattern = f"%{_escape_like(query.search.strip().lower())}%"
        conditions.append(func.lower(Record.title).like(pattern, escape="\\"))
    conditions += [_filter_expression(session, entity, f) for f in query.filters]
    sort = query.sort
    if query.view:
        from formloom.runtime import saved_views

        view = saved_views.view_for(session, user, app, entity.key, query.view)
        conditions.append(view.where(session, user, app))
        sort = sort or view.sort(rules)
    sort_expr, descending, sort_key = _sort_expression(entity, sort or "-updated_at")
    numeric = sort_key in entity.by_key and entity.by_key[sort_key].type.numeric
    return Selection(tuple(conditions), sort_expr, descending, sort_key, numeric)


def count(session: Session, chosen: Selection) -> int:
    """How many records the list holds (all its pages)."""
    return session.scalar(select(func.count()).select_from(Record).where(*chosen.conditions)) or 0


def list_records(session: Session, user: User, app: App, entity: CompiledEntity,
                 query: ListQuery) -> Page:
    chosen = select_records(session, user, app, entity, query)
    total = count(session, chosen)
    page_query = chosen.statement().limit(query.limit + 1)
    if query.cursor:
        page_query = page_query.where(chosen.after(*_cursor_decode(query.cursor)))
    elif query.offset:
        page_query = page_query.offset(query.offset)
    rows = list(session.scalars(page_query))
    next_cursor = None
    if len(rows) > query.limit:
        rows = rows[:query.limit]
        next_cursor = _cursor_encode(*chosen.position(rows[-1]))
    return Page(rows, total, next_cursor)


def batches(session: Session, chosen: Selection, size: int, *columns: Any) -> Iterator[Sequence[Any]]:
    """Every record of ``chosen`` in order (or rows of ``columns`` of them), ``size`` at a time.

    One query, sorted once and read as it is sent (a server-side cursor on PostgreSQL): pages
    of keyset queries would sort the whole list again for each batch when no index serves the
    order, quadratic in its length.
    """
    result = session.execute(chosen.statement(*columns).execution_options(yield_per=size))
    yield from (result if columns else result.scalars()).partitions()


def _refuse_hidden(rules: access.Policy, entity: CompiledEntity, query: ListQuery) -> None:
    """Filtering or sorting on a hidden field would tell its values: it is as if it did not exist."""
    hidden = rules.hidden(entity.key)
    for flt in query.filters:
        if flt.key in hidden:
            raise ListError(f"Cannot filter on '{flt.key}': {entity.key} has no such field.")
    sort_key = (query.sort or "").lstrip("-")
    if sort_key in hidden:
        raise ListError(f"Cannot sort by '{sort_key}'; sort by another field.")


def lookup(session: Session, user: User, app: App, entity_key: str, search: str,
           limit: int = 20, include_ids: list[int] | None = None,
           where: Mapping[str, Any] | None = None) -> list[tuple[int, str]]:
    """Records for a relation picker: id and title, searched by title.

    ``where`` limits them to records whose fields hold the given values (a relation's
    ``filter``: products of the chosen category); the keys must be validated field keys.
    """
    authorize(session, user, Action.READ_RECORDS, app)
    rules = access.policy(session, user, app)
    if not rules.allows(entity_key, RecordAction.READ):
        return []
    base = [Record.app_id == app.id, Record.entity_key == entity_key, Record.deleted_at.is_(None),
            rules.scope(entity_key)]
    matching = [field_equals(session, key, value) for key, value in (where or {}).items()]
    search = search.replace("\x00", "")
    pattern = f"%{_escape_like(search.strip().lower())}%"
    rows = list(session.execute(select(Record.id, Record.title).where(
        *base, *matching, func.lower(Record.title).like(pattern, escape="\\") if search.strip() else true())
        .order_by(Record.title, Record.id).limit(limit)))
    if include_ids:
        seen = {r[0] for r in rows}
        missing = [i for i in include_ids if i not in seen]
        if missing:
            rows += list(session.execute(select(Record.id, Record.title).where(*base, Record.id.in_(missing))))
    return [(rid, title or f"#{rid}") for rid, title in rows]


def field_equals(session: Session, key: str, value: Any) -> ColumnElement:
    """``data[key] == value`` for a scalar JSON value, on SQLite and PostgreSQL alike."""
    if value is None:
        return json_value(Record.data, key).is_(None)
    if _dialect(session) == "postgresql":
        text_value = json.dumps(value) if isinstance(value, bool) else str(value)
        return json_value(Record.data, key) == text_value
    return json_value(Record.data, key) == (int(value) if isinstance(value, bool) else value)


def titles(session: Session, ids: set[int], rules: access.Policy | None = None) -> dict[int, str]:
    """Titles of records by id; with ``rules``, only of records the user may read (others: "#id")."""
    if not ids:
        return {}
    query = select(Record.id, Record.title, Record.entity_key).where(Record.id.in_(list(ids)))
    if rules is None:
        return {rid: title or f"#{rid}" for rid, title, _ in session.execute(query)}
    found = {}
    for entity_key in {row.entity_key for row in session.execute(query)}:
        if rules.allows(entity_key, RecordAction.READ):
            found.update((rid, title) for rid, title, _ in session.execute(query.where(
                Record.entity_key == entity_key, Record.app_id == rules.app.id, rules.scope(entity_key))))
    return {rid: found.get(rid) or f"#{rid}" for rid in ids}


"""Exporting a record list to CSV or XLSX: the records the list holds, every page, safe to open.

An export is the list as the user sees it (search, filters, sort, within their read scope; see
:func:`formloom.runtime.listing.select_records`), read by one query in batches so memory stays
flat. Columns are the record id, the fields the user's role may see, the owner (when the entity names
no owner field) and the created/updated times. Values are what the record page shows (choice
labels, member names, related titles) except numbers, dates and times, which stay numbers,
dates and times. Text that a spreadsheet would run as a formula is neutralised. See
``docs/exports.md``.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import partial
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ERROR_CODES, ILLEGAL_CHARACTERS_RE
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from formloom.platform.auth import Action, authorize
from formloom.platform.errors import FormloomError
from formloom.platform.models import App, Record, User
from formloom.runtime import access, catalog, listing
from formloom.runtime.access import RecordAction
from formloom.runtime.compiler import CompiledEntity
from formloom.runtime.fields import CURRENCY_SYMBOLS, FIELD_TYPES, ID_LIMIT, DisplayContext
from formloom.runtime.i18n import UI_TEXT
from formloom.runtime.labels import LOCALES, text_of

DEFAULT_MAX_ROWS = 100_000  # when the EXPORT_MAX_ROWS setting is absent
BATCH_SIZE = 500
XLSX_MAX_ROWS = 1_048_576 - 1  # rows of a worksheet, less the header
BOM = "\ufeff".encode()  # tells Excel the CSV is UTF-8 (it assumes the local code page otherwise)

# What a spreadsheet may run as a formula when a cell starts with it (OWASP, CSV injection);
# Excel and WPS also read the full-width signs. Tab, CR and LF start a cell that hides one.
FORMULA_SIGNS = ("=", "+", "-", "@", "＝", "＋", "－", "＠")
HIDING_STARTS = ("\t", "\r", "\n")

Cell = str | int | Decimal | date | datetime | None
# What an export reads of each record: rows of these columns (about half the cost of ORM records).
RECORD_COLUMNS = (Record.id, Record.data, Record.owner_id, Record.created_at, Record.updated_at)
Converter = Callable[[Any, Mapping, DisplayContext], Cell]


class ExportFormat(str, Enum):
    CSV = "csv"
    XLSX = "xlsx"


class Header(str, Enum):
    LABELS = "labels"  # field labels in the user's language
    KEYS = "keys"  # field keys, as imports and the API name them


MIMETYPES = {ExportFormat.CSV: "text/csv; charset=utf-8",
             ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class ExportTooLarge(FormloomError):
    code = "export_too_large"


@dataclass(frozen=True)
class ExportFile:
    """A finished export's name and type, and its content as chunks of bytes (CSV: streamed)."""

    filename: str
    mimetype: str
    rows: int  # the records counted before writing
    chunks: Iterable[bytes]


def parse_format(raw: str | None) -> ExportFormat:
    try:
        return ExportFormat((raw or "csv").lower())
    except ValueError:
        raise FormloomError(f"The export format must be csv or xlsx, got '{raw}'.") from None


def parse_header(raw: str | None) -> Header:
    try:
        return Header(raw or Header.LABELS.value)
    except ValueError:
        raise FormloomError(f"The header must be 'labels' (field labels) or 'keys' (field keys), "
                            f"got '{raw}'.") from None


def max_rows_setting(config: Mapping[str, Any]) -> int:
    return int(config.get("EXPORT_MAX_ROWS") or DEFAULT_MAX_ROWS)


def export_records(session: Session, user: User, app: App, entity_key: str, query: listing.ListQuery,
                   fmt: ExportFormat, locale: str = "en", *, header: Header = Header.LABELS,
                   max_rows: int = DEFAULT_MAX_ROWS, batch_size: int = BATCH_SIZE) -> ExportFile:
    """Every record of the list ``query`` describes, as a CSV or XLSX file.

    Checked before anything is written: the export and read permissions, the query (hidden
    fields cannot be filtered or sorted on) and the number of records against ``max_rows``.
    """
    authorize(session, user, Action.EXPORT_RECORDS, app)
    rules = access.policy(session, user, app)
    rules.require(entity_key, RecordAction.EXPORT)
    entity = catalog.entity(session, app, entity_key)
    chosen = listing.select_records(session, user, app, entity, query)
    total = listing.count(session, chosen)
    limit, whose = max_rows, "per export (setting EXPORT_MAX_ROWS)"
    if fmt is ExportFormat.XLSX and max_rows > XLSX_MAX_ROWS:
        limit, whose = XLSX_MAX_ROWS, "of an Excel worksheet (export CSV for more)"
    if total > limit:
        raise ExportTooLarge(f"This export would hold {total:,} {entity_key} records, more than the limit of "
                             f"{limit:,} {whose}; narrow the list with a search or filters and export again.")
    visible = rules.visible_entity(entity)
    chosen_columns = columns(visible, header, locale)
    if query.view:
        chosen_columns = _view_columns(session, user, app, visible, query.view, chosen_columns)
    rows = _rows(session, visible, chosen, chosen_columns, rules, locale, limit, batch_size)
    heading = [column.label for column in chosen_columns]
    if fmt is ExportFormat.CSV:
        chunks: Iterable[bytes] = csv_chunks(heading, rows)
    else:
        chunks = [xlsx_bytes(heading, chosen_columns, rows, text_of(entity.body["label"], locale))]
    filename = f"{entity.key}-{datetime.now(UTC).date().isoformat()}.{fmt.value}"
    return ExportFile(filename, MIMETYPES[fmt], total, chunks)


# --- columns and cells ----------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    key: str
    label: str
    cell: Callable[[Row, DisplayContext], Cell]  # of a row of RECORD_COLUMNS
    number_format: str | None = None  # XLSX only: how the spreadsheet shows the number


def columns(entity: CompiledEntity, header: Header, locale: str) -> list[Column]:
    """The id, ``entity``'s fields (pass the entity as the role sees it), owner, created, updated.

    With key headers the record's own columns start with ``_``, which no field key can.
    """
    def name(key: str, text_key: str) -> str:
        return text_of(UI_TEXT[text_key], locale) if header is Header.LABELS else key

    found = [Column("_id", name("_id", "export_id"), _record_id)]
    for spec in entity.fields:
        label = text_of(spec.definition["label"], locale) if header is Header.LABELS else spec.key
        convert = CELLS.get(spec.type.name, _text)
        found.append(Column(spec.key, label, partial(_field_cell, spec.key, convert, spec.definition),
                            number_format(spec.definition)))
    if not entity.body.get("owner_field"):  # else that field is the owner (and may be hidden)
        found.append(Column("_owner", name("_owner", "owner"), _owner))
    found += [Column("_created_at", name("_created_at", "created"), _created_at),
              Column("_updated_at", name("_updated_at", "updated"), _updated_at)]
    return found


def _view_columns(session: Session, user: User, app: App, entity: CompiledEntity, view_key: str,
                  found: list[Column]) -> list[Column]:
    """A saved view's export: the record's id, then the view's columns (those the role may see) in its order."""
    from formloom.runtime import saved_views

    keys = saved_views.view_for(session, user, app, entity.key, view_key).columns(entity)
    if not keys:
        return found
    by_key = {column.key: column for column in found}
    return [by_key["_id"], *(by_key[key] for key in keys)]


def _record_id(record: Row, ctx: DisplayContext) -> Cell:
    return record.id


def _owner(record: Row, ctx: DisplayContext) -> Cell:
    return None if record.owner_id is None else ctx.users.get(record.owner_id, f"User #{record.owner_id}")


def _created_at(record: Row, ctx: DisplayContext) -> Cell:
    return _utc(record.created_at)


def _updated_at(record: Row, ctx: DisplayContext) -> Cell:
    return _utc(record.updated_at)


def _utc(moment: datetime) -> datetime:
    """Spreadsheets know no time zones: UTC, without it, to the second."""
    return moment.astimezone(UTC).replace(tzinfo=None, microsecond=0)


def _field_cell(key: str, convert: Converter, definition: Mapping, record: Row, ctx: DisplayContext) -> Cell:
    value = record.data.get(key)
    return None if value is None else convert(value, definition, ctx)


def cell_value(value: Any, definition: Mapping, ctx: DisplayContext) -> Cell:
    """A field's value as a cell: a number, date or time where it is one, else the displayed text."""
    return CELLS.get(definition.get("type"), _text)(value, definition, ctx)


def _text(value: Any, definition: Mapping, ctx: DisplayContext) -> Cell:
    field_type = FIELD_TYPES.get(definition.get("type"))
    if field_type is None:
        return str(value)
    try:
        return field_type.display(value, definition, ctx)
    except (TypeError, ValueError, KeyError, AttributeError, ArithmeticError):
        # A value stored under an earlier type of the field: export it as it is rather than
        # break off a download that has already begun.
        return str(value)


def _whole(value: Any, definition: Mapping, ctx: DisplayContext) -> Cell:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return _text(value, definition, ctx)


def _decimal(value: Any, definition: Mapping, ctx: DisplayContext) -> Cell:
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = Decimal(repr(value) if isinstance(value, float) else str(value))
        except InvalidOperation:
            number = None
        if number is not None and number.is_finite():
            return number
    return _text(value, definition, ctx)


def _date(value: Any, definition: Mapping, ctx: DisplayContext) -> Cell:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    return _text(value, definition, ctx)


def _moment(value: Any, definition: Mapping, ctx: DisplayContext) -> Cell:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return _text(value, definition, ctx)
        return _utc(moment if moment.tzinfo else moment.replace(tzinfo=UTC))
    return _text(value, definition, ctx)


def _formula(value: Any, definition: Mapping, ctx: DisplayContext) -> Cell:
    by_result = {"number": _decimal, "date": _date, "datetime": _moment}
    return by_result.get(definition.get("result", "number"), _text)(value, definition, ctx)


def _lookup(value: Any, definition: Mapping, ctx: DisplayContext) -> Cell:
    shows = definition.get("shows")  # the related field's definition, added when compiled
    if isinstance(shows, Mapping) and shows.get("type") in CELLS and shows.get("type") != "lookup":
        return cell_value(value, shows, ctx)
    return _text(value, definition, ctx)


# How each field type becomes a cell; types not named here export their displayed text.
CELLS: dict[str, Converter] = {
    "integer": _whole, "rating": _whole, "decimal": _decimal, "currency": _decimal, "percent": _decimal,
    "date": _date, "datetime": _moment, "formula": _formula, "lookup": _lookup,
}


def number_format(definition: Mapping) -> str | None:
    """The XLSX number format that shows a field's numbers as its page does (¥1,234.50, 12.5%)."""
    kind = definition.get("type")
    if kind == "formula":
        if definition.get("result", "number") != "number":
            return None
        kind = "currency" if definition.get("currency") else "decimal"
    if kind not in ("decimal", "currency", "percent"):
        return None
    places = definition.get("precision", FIELD_TYPES[kind].default_precision)
    digits = "#,##0" + ("." + "0" * places if places else "")
    if kind == "percent":  # stored as 12.5 for 12.5%: shown with a sign, not multiplied by 100
        return f'{digits}"%"'
    if kind == "currency":
        code = definition.get("currency", "CNY")
        return f'"{CURRENCY_SYMBOLS.get(code, code + " ")}"{digits}'
    return digits


# --- rows -------------------------------------------------------------------------------------

def _rows(session: Session, entity: CompiledEntity, chosen: listing.Selection, chosen_columns: list[Column],
          rules: access.Policy, locale: str, limit: int, batch_size: int) -> Iterator[list[list[Cell]]]:
    """The cells of the records, a batch at a time, each batch with its own names and titles."""
    left = limit
    for records in listing.batches(session, chosen, batch_size, *RECORD_COLUMNS):
        records = records[:left]
        ctx = display_context(session, entity, records, rules, locale)
        yield [[column.cell(record, ctx) for column in chosen_columns] for record in records]
        left -= len(records)
        if left <= 0:
            return


REFERENCES = {"user": "users", "users": "users", "relation": "records", "relations": "records"}


def display_context(session: Session, entity: CompiledEntity, records: Sequence[Row], rules: access.Policy,
                    locale: str) -> DisplayContext:
    """Names of the members and titles of the related records (readable ones only) ``records`` name."""
    wanted: dict[str, set[int]] = {"users": {r.owner_id for r in records if r.owner_id is not None},
                                   "records": set()}
    for spec in entity.fields:
        shows = spec.definition.get("shows") if spec.type.name == "lookup" else spec.definition
        kind = REFERENCES.get((shows or {}).get("type"))
        if kind is None:
            continue
        for record in records:
            value = record.data.get(spec.key)
            wanted[kind].update(v for v in (value if isinstance(value, list) else [value])
                                if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= ID_LIMIT)
    users = {uid: name for uid, name in session.execute(
        select(User.id, User.display_name).where(User.id.in_(wanted["users"])))} if wanted["users"] else {}
    return DisplayContext(locale if locale in LOCALES else "en", users,
                          listing.titles(session, wanted["records"], rules))


# --- files ------------------------------------------------------------------------------------

def neutralise(text: str) -> str:
    """Text a spreadsheet would read as a formula, led by an apostrophe so it stays text (OWASP)."""
    if text.startswith(HIDING_STARTS) or text.lstrip().startswith(FORMULA_SIGNS):
        return "'" + text
    return text


def csv_text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, Decimal):
        return f"{value:f}"  # never 1E+5; "-5.00" is a number, not a formula
    if isinstance(value, datetime):
        return value.isoformat(" ")  # whole seconds: 2026-03-31 14:30:00
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def csv_chunks(heading: list[str], rows: Iterable[list[list[Cell]]]) -> Iterator[bytes]:
    """UTF-8 with a byte-order mark, RFC 4180 quoting and CRLF line ends; one chunk per batch."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([csv_text(h) for h in heading])
    yield BOM + buffer.getvalue().encode("utf-8", "replace")
    for batch in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([csv_text(value) for value in row] for row in batch)
        yield buffer.getvalue().encode("utf-8", "replace")


def xlsx_bytes(heading: list[str], chosen_columns: list[Column], rows: Iterable[list[list[Cell]]],
               title: str) -> bytes:
    """One worksheet in write-only mode (rows go to a temporary file as they come), header frozen."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=sheet_title(title))
    sheet.freeze_panes = "A2"
    sheet.append([xlsx_value(sheet, h, None) for h in heading])
    formats = [column.number_format for column in chosen_columns]
    for batch in rows:
        for row in batch:
            sheet.append([xlsx_value(sheet, value, fmt) for value, fmt in zip(row, formats)])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def xlsx_value(sheet: WriteOnlyWorksheet, value: Cell, fmt: str | None) -> Any:
    """A value for ``sheet.append``; text that could be read as a formula or an error is a string cell."""
    if isinstance(value, str):
        text = ILLEGAL_CHARACTERS_RE.sub("", value)  # control characters XML cannot hold
        safe = neutralise(text)
        if safe == text and text not in ERROR_CODES:
            return text  # openpyxl makes it a string cell: it starts with no '='
        cell = WriteOnlyCell(sheet, value=safe)
        cell.data_type = "s"  # never a formula ('=...') nor an error value ('#N/A')
        return cell
    if fmt is not None and isinstance(value, (int, Decimal)):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = fmt
        return cell
    return value


def sheet_title(label: str) -> str:
    """A worksheet name Excel accepts: at most 31 characters, none of []:*?/\\."""
    cleaned = "".join(" " if ch in "[]:*?/\\" else ch for ch in ILLEGAL_CHARACTERS_RE.sub("", label))
    return cleaned.strip().strip("'")[:31].strip() or "Records"

"""Reading the file of an import: CSV (UTF-8, or GBK/GB18030 as Chinese Excel saves it) or XLSX.

Both become a :class:`Table`: the header's column names and, per row, its line in the file and
its cells as text, the form an HTML form would submit. XLSX dates, times and numbers are written
the way the field types read them back (ISO dates, ``12`` rather than ``12.0``).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal

from formloom.platform.errors import FormloomError

XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0"  # the old binary Excel format


class ImportFileError(FormloomError):
    """The file cannot be read as a table; the message says how to save it instead."""


@dataclass
class Table:
    header: list[str]
    rows: list[dict] = field(default_factory=list)  # {"line": int, "values": {column: text}}


def read_table(data: bytes, file_name: str = "") -> Table:
    """Read an uploaded file: XLSX by its content (or name), anything else as CSV."""
    if not data.strip():
        raise ImportFileError(f"The file {_named(file_name)}is empty: its first line must name the columns "
                              "(field keys or labels), one record per line below it.")
    if data.startswith(XLS_MAGIC):
        raise ImportFileError(f"The file {_named(file_name)}is an old Excel workbook (.xls); open it in Excel "
                              "and save it as .xlsx or as CSV UTF-8, then import that.")
    if data.startswith(XLSX_MAGIC) or file_name.lower().endswith(".xlsx"):
        return read_xlsx(data, file_name)
    return read_csv(data, file_name)


def _named(file_name: str) -> str:
    return f"'{file_name}' " if file_name else ""


def decode(data: bytes, file_name: str = "") -> str:
    """The text of a CSV file: UTF-8 (with or without BOM), else GB18030 (a superset of GBK)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]:
        raise ImportFileError(f"The file {_named(file_name)}is UTF-16 text; save it as 'CSV UTF-8' "
                              "(Excel: File › Save As › CSV UTF-8) and import that.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise ImportFileError(f"The file {_named(file_name)}is neither UTF-8 nor GBK text (is it a CSV file?); "
                              "save it as 'CSV UTF-8' or as .xlsx and import that.") from None


def read_csv(data: bytes | str, file_name: str = "") -> Table:
    text = decode(data, file_name) if isinstance(data, bytes) else data.lstrip("\ufeff")
    dialect = csv.excel
    first = text.split("\n", 1)[0]
    if "," not in first and (";" in first or "\t" in first):  # Excel in some locales saves ';'
        dialect = csv.excel_tab if "\t" in first else _Semicolon
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    try:
        header = next(reader, [])
        lines = [(reader.line_num, cells) for cells in reader]
    except csv.Error as exc:
        raise ImportFileError(f"The file {_named(file_name)}is not valid CSV ({exc}); save it again as "
                              "'CSV UTF-8' and import that.") from None
    return _table(header, lines, file_name)


class _Semicolon(csv.excel):
    delimiter = ";"


def read_xlsx(data: bytes, file_name: str = "") -> Table:
    """The first sheet of a workbook; its first row is the header."""
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # openpyxl raises zipfile, KeyError and XML errors for a broken file
        raise ImportFileError(f"The file {_named(file_name)}is not a readable .xlsx workbook; open it in Excel, "
                              "save it again as .xlsx (or CSV UTF-8) and import that.") from None
    try:
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [cell_text(v) for v in next(rows, ())]
        lines = [(number, [cell_text(v) for v in cells]) for number, cells in enumerate(rows, start=2)]
    finally:
        book.close()
    return _table(header, lines, file_name)


def cell_text(value: object) -> str:
    """A spreadsheet cell as the text a form field accepts."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(timespec="minutes")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, float | Decimal):
        return str(int(value)) if value == int(value) and abs(value) < 1e15 else format(value, "f").rstrip("0")
    return str(value)


def _table(header: list[str], lines: list[tuple[int, list[str]]], file_name: str) -> Table:
    header = [(h or "").strip() for h in header]
    while header and not header[-1]:
        header.pop()
    if not any(header):
        raise ImportFileError(f"The file {_named(file_name)}has no header: its first line must name the columns "
                              "(field keys or labels).")
    seen = set()
    for name in header:
        if name and name.casefold() in seen:
            raise ImportFileError(f"The column '{name}' appears twice in the header of {_named(file_name)}"
                                  "the file; rename one of them.")
        seen.add(name.casefold())
    table = Table(header)
    for line, cells in lines:
        values = {name: (cells[i] if i < len(cells) else "") for i, name in enumerate(header) if name}
        table.rows.append({"line": line, "values": {k: (v or "").strip() for k, v in values.items()}})
    return table

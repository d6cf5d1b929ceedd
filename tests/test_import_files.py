"""Import files and mappings: XLSX, GBK CSV, clear errors for unreadable files, saved mappings, CLI."""
from __future__ import annotations

import io
from datetime import date, datetime

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from formloom.platform.models import ImportMapping, Record
from formloom.runtime import imports
from formloom.runtime.import_files import ImportFileError
from tests.factories import make_people_app
from tests.test_cli import formloom


@pytest.fixture
def people(db, admin):
    return make_people_app(db, admin)


def people_data(db, app) -> list[dict]:
    db.commit()  # a new transaction: see what the command line wrote
    return [r.data for r in db.scalars(select(Record).where(Record.app_id == app.id, Record.deleted_at.is_(None))
                                       .order_by(Record.id))]


def xlsx(rows: list[list]) -> bytes:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_xlsx_first_sheet_imports_with_dates_and_numbers_converted(db, admin, people):
    data = xlsx([["姓名", "E-mail", "Age", "Joined"], ["王伟", "wang@x.cn", 42.0, datetime(2026, 3, 1)],
                 ["Li Na", None, 7, date(2025, 12, 31)]])
    table = imports.read_table(data, "people.xlsx")
    batch = imports.run(db, admin, imports.start(db, admin, people, "person", table, imports.ImportOptions()))
    db.commit()
    assert batch.counts["create"] == 2
    assert people_data(db, people) == [{"name": "王伟", "email": "wang@x.cn", "age": 42, "joined": "2026-03-01"},
                                       {"name": "Li Na", "age": 7, "joined": "2025-12-31"}]


def test_a_gbk_csv_from_chinese_excel_is_read(db, admin, people):
    data = "姓名,邮箱,等级\n张三,zhang@x.cn,a\n".encode("gbk")
    batch = imports.run(db, admin, imports.start(db, admin, people, "person", imports.read_table(data),
                                                 imports.ImportOptions()))
    db.commit()
    assert batch.counts["create"] == 1
    assert people_data(db, people) == [{"name": "张三", "email": "zhang@x.cn", "tier": "a"}]


@pytest.mark.parametrize(("data", "message"), [
    (b"", "is empty: its first line must name the columns"),
    (b"\xd0\xcf\x11\xe0rest", "old Excel workbook (.xls); open it in Excel and save it as .xlsx"),
    ("name\n".encode("utf-16"), "is UTF-16 text; save it as 'CSV UTF-8'"),
    (b"PK\x03\x04garbage", "not a readable .xlsx workbook"),
    (b",,\nA,B\n", "has no header"),
])
def test_unreadable_files_are_refused_naming_the_fix(data, message):
    with pytest.raises(ImportFileError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        imports.read_table(data, "x.csv")


def test_a_file_with_only_a_header_is_refused(db, admin, people):
    with pytest.raises(ImportFileError, match="has a header but no rows"):
        imports.start(db, admin, people, "person", imports.read_table(b"name\n"), imports.ImportOptions())


def test_a_mapping_chosen_once_is_saved_for_the_entity_and_offered_next_time(db, admin, people):
    table = imports.read_table(b"Full name,Mail,Remarks\nAnn,a@x.cn,hi\n")
    entity = imports.catalog.entity(db, people, "person")
    assert imports.suggested_mapping(db, people, entity, table.header) == ({}, None)
    imports.start(db, admin, people, "person", table,
                  imports.ImportOptions(mapping={"Full name": "name", "Mail": "email"}, match="email"), dry_run=True)
    db.commit()
    saved = db.scalar(select(ImportMapping))
    assert saved.columns == {"Full name": "name", "Mail": "email", "Remarks": ""}
    again = imports.read_table(b"Mail,Full name,Remarks\nb@x.cn,Bob,\n")
    assert imports.suggested_mapping(db, people, entity, again.header) == (
        {"Mail": "email", "Full name": "name"}, "email")
    batch = imports.run(db, admin, imports.start(db, admin, people, "person", again, imports.ImportOptions()))
    db.commit()
    assert batch.options["ignored"] == ["Remarks"]
    assert people_data(db, people) == [{"name": "Bob", "email": "b@x.cn"}]


def test_a_mapping_to_a_field_that_does_not_exist_is_refused_naming_the_fields(db, admin, people):
    table = imports.read_table(b"a\n1\n")
    with pytest.raises(imports.FormloomError, match="Column 'a' is mapped to 'colour', which is not a field of "
                                                    "person that can be imported; use one of: age, code"):
        imports.start(db, admin, people, "person", table, imports.ImportOptions(mapping={"a": "colour"}))


def test_cli_dry_run_import_with_mapping_and_rollback(db, admin, people, tmp_path, database_url):
    path = tmp_path / "people.csv"
    path.write_text("Full name,Mail,Age\nAnn,a@x.cn,30\nBob,b@x.cn,old\n", encoding="utf-8-sig")
    instance = tmp_path / "cli"
    args = ("import", "people", "person", str(path), "--mapping", "Full name=name", "--mapping", "Mail=email")
    dry = formloom(instance, *args, "--dry-run", database_url=database_url)
    assert dry.returncode == 1
    assert "Dry run (batch 1), nothing written: 1 to create, 0 to update, 0 to skip, 1 with problems." in dry.stdout
    assert "line 3 age: Age must be a whole number" in dry.stderr
    assert "Checking" in dry.stderr  # the progress bar
    assert people_data(db, people) == []
    done = formloom(instance, *args, "--match", "email", "--no-automation", database_url=database_url)
    assert "Imported 1 new and 0 updated person record(s) (batch 2); 0 skipped, 1 with problems." in done.stdout
    assert "Importing" in done.stderr
    assert people_data(db, people) == [{"name": "Ann", "email": "a@x.cn", "age": 30}]
    undo = formloom(instance, "import", "rollback", "2", database_url=database_url)
    assert undo.returncode == 0, undo.stderr
    assert "Rolled back import 2: 1 record(s) removed, 0 restored" in undo.stdout
    assert people_data(db, people) == []
    again = formloom(instance, "import", "rollback", "2", database_url=database_url)
    assert again.returncode == 1 and "Import #2 is rolled back; only a finished import can be rolled back." in again.stderr

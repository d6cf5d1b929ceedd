"""Exports of record lists to CSV and XLSX: within the user's access, as the list is filtered,
and safe to open in a spreadsheet."""
from __future__ import annotations

import codecs
import csv
import io
import json

import pytest
from openpyxl import load_workbook

from formloom.builder import definitions
from formloom.platform import auth
from formloom.platform.auth import Cause
from formloom.platform.errors import Forbidden
from formloom.platform.models import Record
from formloom.runtime import catalog, exports, listing, records
from formloom.runtime.exports import ExportFormat
from tests.conftest import bearer
from tests.factories import login, make_pipeline_app, make_user
from tests.test_cli import formloom

FORMATS = ["csv", "xlsx"]
TRIGGERS = ("=", "+", "-", "@", "＝", "＋", "－", "＠")

# --- reading exports back -------------------------------------------------------------------


def csv_rows(content: bytes) -> list[list[str]]:
    assert content.startswith(codecs.BOM_UTF8), "a CSV export starts with a UTF-8 byte-order mark"
    return list(csv.reader(io.StringIO(content.decode("utf-8")[1:], newline="")))


def xlsx_cells(content: bytes) -> list[list]:
    """The worksheet's cells (openpyxl Cell objects: .value and .data_type)."""
    sheet = load_workbook(io.BytesIO(content)).active
    return [list(row) for row in sheet.iter_rows()]


def table(content: bytes, fmt: str) -> list[list]:
    """Header and rows as plain values ('' for an empty cell), from either format."""
    if fmt == "csv":
        return csv_rows(content)
    return [["" if c.value is None else c.value for c in row] for row in xlsx_cells(content)]


def column(rows: list[list], name: str) -> list:
    index = rows[0].index(name)
    return [row[index] for row in rows[1:]]


# --- an app with an access definition: reps export their own records, a field hidden ------------

ACCESS = {
    "formloom": 1, "kind": "access", "key": "access", "label": "Who may do what",
    "roles": [
        {"key": "rep", "entities": {"*": {"create": True, "read": "own", "update": "own", "export": True},
                                    "company": {"read": "all"}},
         "fields": {"deal": {"lost_reason": "hidden"}}},
        {"key": "clerk", "entities": {"*": {"read": "all"}}},
    ],
}


@pytest.fixture
def pipes_world(db, admin):
    """The pipeline app with the access above; rep1 owns d1 and d3, rep2 owns d2."""
    app = make_pipeline_app(db, admin)
    users = {name: make_user(db, name, display_name=name.capitalize()) for name in ("rep1", "rep2", "clerk", "boss")}
    for name, role in (("rep1", "rep"), ("rep2", "rep"), ("clerk", "clerk"), ("boss", "manager")):
        auth.grant_app(db, users[name], app, role)
    definitions.save_and_publish(db, admin, app, ACCESS)
    cause = Cause.for_user(admin)
    company = records.create(db, admin, cause, app, "company", {"name": "Acme Ltd"})
    deals = {}
    for i, owner in ((1, "rep1"), (2, "rep2"), (3, "rep1")):
        deals[f"d{i}"] = records.create(db, admin, cause, app, "deal", {
            "name": f"Deal {i}", "owner": users[owner].id, "company": company.id, "amount": 1000 * i,
            "lost_reason": f"private note {i}"}).id
    db.commit()
    return {"app": app, "users": users, "deals": deals}


@pytest.mark.parametrize("fmt", FORMATS)
def test_rep_exports_only_own_records_and_never_the_hidden_field(client, db, pipes_world, fmt):
    headers = bearer(db, pipes_world["users"]["rep1"])
    response = client.get("/api/v1/apps/pipes/records/deal/export", query_string={"format": fmt}, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    rows = table(response.data, fmt)
    deals = pipes_world["deals"]
    assert sorted(int(v) for v in column(rows, "ID")) == sorted([deals["d1"], deals["d3"]])
    assert rows[0] == ["ID", "Deal name", "Customer", "Amount", "Discount", "Expected close", "Stage", "Owner",
                       "Created", "Updated"]
    assert "private note" not in json.dumps(rows, default=str)
    assert set(column(rows, "Owner")) == {"Rep1"} and set(column(rows, "Customer")) == {"Acme Ltd"}
    keys = client.get("/api/v1/apps/pipes/records/deal/export", query_string={"format": fmt, "header": "keys"},
                      headers=headers)
    assert "lost_reason" not in table(keys.data, fmt)[0]


def test_rep_page_export_is_the_rep_list(client, db, pipes_world):
    login(client, "rep1")
    response = client.get("/apps/pipes/deal/export.csv")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith('attachment; filename="deal-')
    rows = csv_rows(response.data)
    assert column(rows, "Deal name") == ["Deal 3", "Deal 1"]  # the list's order: last updated first
    assert b"private note" not in response.data and "Lost reason" not in rows[0]


def test_a_streamed_export_gives_back_its_database_connection(app, client, db, pipes_world):
    """The CSV is read after the request has ended; a connection left open would block the
    database (PostgreSQL: TRUNCATE, migrations) and drain the pool."""
    db.rollback()
    engine = app.extensions["formloom.engine"]
    headers = bearer(db, pipes_world["users"]["rep1"])
    db.rollback()
    assert len(csv_rows(client.get("/api/v1/apps/pipes/records/deal/export", headers=headers).data)) == 3
    assert engine.pool.checkedout() == 0
    login(client, "rep1")
    assert len(csv_rows(client.get("/apps/pipes/deal/export.csv").data)) == 3
    assert engine.pool.checkedout() == 0


def test_manager_export_holds_every_record_and_field(client, db, pipes_world):
    headers = bearer(db, pipes_world["users"]["boss"])
    rows = csv_rows(client.get("/api/v1/apps/pipes/records/deal/export", headers=headers).data)
    assert len(rows) == 4 and "Lost reason" in rows[0]
    assert sorted(column(rows, "Lost reason")) == ["private note 1", "private note 2", "private note 3"]


def test_hidden_field_cannot_be_filtered_or_sorted_in_an_export(client, db, pipes_world):
    headers = bearer(db, pipes_world["users"]["rep1"])
    for args in ({"sort": "lost_reason"}, {"f.lost_reason": "private note 1"}):
        response = client.get("/api/v1/apps/pipes/records/deal/export", query_string=args, headers=headers)
        assert response.status_code == 400
        assert response.get_json()["error"]["code"] == "invalid_query"


def test_role_without_export_gets_403_and_no_export_button(client, db, pipes_world):
    headers = bearer(db, pipes_world["users"]["clerk"])
    response = client.get("/api/v1/apps/pipes/records/deal/export", headers=headers)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    assert "may not export deal records" in response.get_json()["error"]["message"]
    login(client, "clerk")
    listed = client.get("/apps/pipes/deal/").get_data(as_text=True)
    assert "Deal 2" in listed  # the clerk reads every deal ...
    assert "export.csv" not in listed and "Export CSV" not in listed  # ... but may not export them
    for fmt in FORMATS:
        assert client.get(f"/apps/pipes/deal/export.{fmt}").status_code == 403


def test_export_buttons_carry_the_list_arguments_but_not_the_page(client, db, pipes_world):
    login(client, "rep1")
    page = client.get("/apps/pipes/deal/", query_string={"q": "Deal", "f.stage": "lead", "sort": "-amount",
                                                        "page": "1"}).get_data(as_text=True)
    assert 'href="/apps/pipes/deal/export.csv?q=Deal&amp;f.stage=lead&amp;sort=-amount"' in page
    assert 'href="/apps/pipes/deal/export.xlsx?q=Deal&amp;f.stage=lead&amp;sort=-amount"' in page


def test_service_refuses_an_export_without_the_export_action(db, pipes_world):
    with pytest.raises(Forbidden, match="may not export deal records"):
        exports.export_records(db, pipes_world["users"]["clerk"], pipes_world["app"], "deal", listing.ListQuery(),
                               ExportFormat.CSV)


# --- an app of ledger entries: typed values, payloads, languages ------------------------------------

def entry_body() -> dict:
    return {"formloom": 1, "kind": "entity", "key": "entry", "label": {"en": "Entry", "zh-CN": "账目"},
            "title_field": "name",
            "fields": [
                {"key": "name", "type": "text", "label": {"en": "Name", "zh-CN": "名称"}, "required": True},
                {"key": "note", "type": "textarea", "label": {"en": "Note", "zh-CN": "备注"}},
                {"key": "amount", "type": "currency", "label": {"en": "Amount", "zh-CN": "金额"}, "currency": "CNY"},
                {"key": "qty", "type": "integer", "label": {"en": "Quantity", "zh-CN": "数量"}},
                {"key": "rate", "type": "percent", "label": {"en": "Rate", "zh-CN": "比例"}},
                {"key": "day", "type": "date", "label": {"en": "Day", "zh-CN": "日期"}},
                {"key": "at", "type": "datetime", "label": {"en": "Booked at", "zh-CN": "记账时间"}},
                {"key": "kind", "type": "select", "label": {"en": "Kind", "zh-CN": "类型"},
                 "options": [{"value": "income", "label": {"en": "Income", "zh-CN": "收入"}},
                             {"value": "expense", "label": {"en": "Expense", "zh-CN": "支出"}}]},
                {"key": "payer", "type": "user", "label": {"en": "Payer", "zh-CN": "付款人"}},
            ]}


@pytest.fixture
def ledger(db, admin):
    app = definitions.create_app(db, admin, "ledger", {"en": "Ledger", "zh-CN": "账本"})
    definitions.save_and_publish(db, admin, app, entry_body())
    db.commit()
    return app


def add_entries(db, admin, app, *rows: dict) -> list[int]:
    cause = Cause.for_user(admin)
    ids = [records.create(db, admin, cause, app, "entry", row).id for row in rows]
    db.commit()
    return ids


def download(client, headers, fmt: str, **args) -> bytes:
    response = client.get("/api/v1/apps/ledger/records/entry/export", query_string={"format": fmt, **args},
                          headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.data


TITLE_PAYLOADS = ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "＝1+1", "＠A1", "－1"]
NOTE_PAYLOADS = ["\t=1", "\r=1+1", " =1+1", "  ＋1"]
NEWLINE_PAYLOAD = "\n=1+1"  # forms strip it; stored by hand, as an older import could have


@pytest.fixture
def payloads(db, admin, ledger):
    payer = make_user(db, "payer", display_name="=cmd|' /C calc'!A0")
    auth.grant_app(db, payer, ledger)
    ids = add_entries(db, admin, ledger,
                      *[{"name": p, "amount": "-5.00", "qty": -3, "payer": payer.id} for p in TITLE_PAYLOADS],
                      *[{"name": f"note {i}", "note": p} for i, p in enumerate(NOTE_PAYLOADS)],
                      {"name": "newline"})
    record = db.get(Record, ids[-1])
    record.data = {**record.data, "note": NEWLINE_PAYLOAD}
    db.commit()
    return TITLE_PAYLOADS, [*NOTE_PAYLOADS, NEWLINE_PAYLOAD]


def test_formula_payloads_are_inert_in_csv(client, db, admin_headers, payloads):
    titles, notes = payloads
    rows = csv_rows(download(client, admin_headers, "csv"))
    assert sorted(column(rows, "Name")) == sorted(["'" + p for p in titles] + [f"note {i}" for i in range(4)]
                                                  + ["newline"])
    assert sorted(v for v in column(rows, "Note") if v) == sorted("'" + p for p in notes)
    assert set(column(rows, "Payer")) == {"'=cmd|' /C calc'!A0", ""}
    numbers = {"ID", "Amount", "Quantity", "Rate"}
    for row in rows[1:]:
        for name, value in zip(rows[0], row):
            if name not in numbers:
                assert not value.lstrip().startswith(TRIGGERS) and not value.startswith(("\t", "\r", "\n")), value
    # A negative amount is a number: written as one, not neutralised.
    assert set(column(rows, "Amount")) == {"-5.00", ""} and set(column(rows, "Quantity")) == {"-3", ""}


def test_formula_payloads_are_inert_string_cells_in_xlsx(client, db, admin, admin_headers, ledger, payloads):
    titles, notes = payloads
    add_entries(db, admin, ledger, {"name": "error value", "note": "#N/A"})
    cells = xlsx_cells(download(client, admin_headers, "xlsx"))
    header = [c.value for c in cells[0]]
    by_name = {name: [row[header.index(name)] for row in cells[1:]] for name in ("Name", "Note", "Payer", "Amount")}
    neutralised = [c for name in ("Name", "Note", "Payer") for c in by_name[name]
                   if c.value and c.value.startswith("'")]
    assert len(neutralised) == len(titles) + len(notes) + len(titles)  # every payload, and each payer
    for cell in neutralised:
        assert cell.data_type == "s", cell.value
    # XML reads a lone carriage return back as a line feed; the apostrophe is what matters.
    assert sorted(c.value.replace("\r", "\n") for c in by_name["Note"] if c.value and c.value != "#N/A") == \
        sorted("'" + p.replace("\r", "\n") for p in notes)
    assert sorted(c.value for c in by_name["Name"] if c.value.startswith("'")) == sorted("'" + p for p in titles)
    assert all(c.data_type != "f" for row in cells for c in row)
    error_text = [c for c in by_name["Note"] if c.value == "#N/A"]  # text, not Excel's error value
    assert len(error_text) == 1 and error_text[0].data_type == "s"
    amounts = [c for c in by_name["Amount"] if c.value is not None]
    assert len(amounts) == len(titles)
    assert all(c.data_type == "n" and c.value == -5 for c in amounts)
    assert amounts[0].number_format == '"¥"#,##0.00'


@pytest.mark.parametrize("fmt", FORMATS)
def test_chinese_labels_and_values_survive_a_round_trip(client, db, admin, admin_headers, ledger, fmt):
    add_entries(db, admin, ledger, {"name": "杭州云帆 扩容", "note": "第一行\n第二行", "kind": "income",
                                    "amount": "1234.50", "day": "2026-03-31", "at": "2026-03-31T14:30:00Z"})
    rows = table(download(client, admin_headers, fmt, locale="zh-CN"), fmt)
    assert rows[0] == ["编号", "名称", "备注", "金额", "数量", "比例", "日期", "记账时间", "类型", "付款人", "负责人",
                       "创建时间", "更新时间"]
    row = dict(zip(rows[0], rows[1]))
    assert row["名称"] == "杭州云帆 扩容" and row["备注"] == "第一行\n第二行" and row["类型"] == "收入"
    assert row["负责人"] == "Ada Admin"
    if fmt == "csv":
        assert (row["金额"], row["日期"], row["记账时间"]) == ("1234.50", "2026-03-31", "2026-03-31 14:30:00")
    else:
        assert row["金额"] == 1234.5
        assert row["日期"].isoformat() == "2026-03-31T00:00:00" and str(row["记账时间"]) == "2026-03-31 14:30:00"
        assert load_workbook(io.BytesIO(download(client, admin_headers, fmt, locale="zh-CN"))).active.title == "账目"


@pytest.mark.parametrize("fmt", FORMATS)
def test_key_header_names_fields_by_key(client, db, admin, admin_headers, ledger, fmt):
    add_entries(db, admin, ledger, {"name": "One"})
    rows = table(download(client, admin_headers, fmt, header="keys"), fmt)
    assert rows[0] == ["_id", "name", "note", "amount", "qty", "rate", "day", "at", "kind", "payer", "_owner",
                       "_created_at", "_updated_at"]


ENTRIES = [
    {"name": "alpha", "amount": "30.00", "kind": "income", "day": "2026-01-03"},
    {"name": "bravo", "amount": "10.00", "kind": "expense", "day": "2026-01-01"},
    {"name": "charlie", "amount": "30.00", "kind": "income"},
    {"name": "delta", "kind": "income", "day": "2026-01-02"},
    {"name": "echo", "amount": "-20.00", "kind": "expense", "day": "2026-01-03"},
    {"name": "foxtrot", "amount": "10.00", "kind": "income", "day": "2026-01-01"},
    {"name": "golf alpha", "amount": "99.00", "kind": "income", "day": "2026-01-05"},
]


@pytest.mark.parametrize("sort", ["-amount", "amount", "name", "-name", "day", "-day", "-updated_at", "id"])
def test_export_holds_every_record_of_the_list_in_its_order_across_batches(db, admin, ledger, sort):
    """Batches of 2 records: ties, empty values and batch edges all fall between batches."""
    add_entries(db, admin, ledger, *ENTRIES)
    entity = catalog.entity(db, ledger, "entry")
    for args in ({}, {"f.kind": "income"}, {"q": "alpha"}):
        query = listing.ListQuery(sort=sort, filters=listing.parse_filters(args, entity), search=args.get("q", ""),
                                  limit=100)
        expected = [r.data["name"] for r in listing.list_records(db, admin, ledger, entity, query).records]
        exported = exports.export_records(db, admin, ledger, "entry", query, ExportFormat.CSV, batch_size=2)
        assert column(csv_rows(b"".join(exported.chunks)), "Name") == expected, (sort, args)
        assert exported.rows == len(expected)


def test_page_export_honours_search_filter_and_sort(client, db, admin, ledger):
    add_entries(db, admin, ledger, *ENTRIES)
    login(client, "admin")
    response = client.get("/apps/ledger/entry/export.xlsx",
                          query_string={"q": "a", "f.kind": "income", "sort": "-amount"})
    assert response.status_code == 200
    assert response.headers["Content-Type"] == exports.MIMETYPES[ExportFormat.XLSX]
    rows = table(response.data, "xlsx")
    assert column(rows, "Name") == ["golf alpha", "charlie", "alpha", "delta"]  # ties: the later record first
    assert column(rows, "Amount") == [99, 30, 30, ""]


def test_api_export_takes_the_list_parameters(client, db, admin, admin_headers, ledger):
    add_entries(db, admin, ledger, *ENTRIES)
    args = {"f.day.gte": "2026-01-02", "sort": "day"}
    listed = client.get("/api/v1/apps/ledger/records/entry", query_string=args, headers=admin_headers).get_json()
    rows = csv_rows(download(client, admin_headers, "csv", **args))
    assert column(rows, "Name") == [item["data"]["name"] for item in listed["items"]] == \
        ["delta", "alpha", "echo", "golf alpha"]
    bad = client.get("/api/v1/apps/ledger/records/entry/export", query_string={"format": "pdf"},
                     headers=admin_headers)
    assert bad.status_code == 400 and "csv or xlsx" in bad.get_json()["error"]["message"]


def test_an_export_over_the_row_limit_is_refused_with_the_limit_named(app, client, db, admin, admin_headers, ledger):
    add_entries(db, admin, ledger, *ENTRIES[:3])
    app.config["EXPORT_MAX_ROWS"] = 2
    response = client.get("/api/v1/apps/ledger/records/entry/export", headers=admin_headers)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "export_too_large"
    assert error["message"] == ("This export would hold 3 entry records, more than the limit of 2 per export "
                                "(setting EXPORT_MAX_ROWS); narrow the list with a search or filters and export again.")
    login(client, "admin")
    page = client.get("/apps/ledger/entry/export.xlsx")
    assert page.status_code == 400 and "more than the limit of 2" in page.get_data(as_text=True)
    narrowed = client.get("/apps/ledger/entry/export.csv", query_string={"f.kind": "income"})
    assert narrowed.status_code == 200 and len(csv_rows(narrowed.data)) == 3


def test_cli_exports_as_the_given_user(db, pipes_world, tmp_path, database_url):
    target = tmp_path / "mine.xlsx"
    instance = tmp_path / "cli"
    result = formloom(instance, "export", "pipes", "deal", "--format", "xlsx", "-o", str(target), "--user", "rep1",
                      "--sort", "name", database_url=database_url)
    assert result.returncode == 0, result.stderr
    assert f"Exported 2 deal record(s) to {target}." in result.stdout
    rows = table(target.read_bytes(), "xlsx")
    assert column(rows, "Deal name") == ["Deal 1", "Deal 3"] and "Lost reason" not in rows[0]


def test_cli_export_to_standard_output_and_its_errors(db, pipes_world, tmp_path, database_url):
    instance = tmp_path / "cli"
    result = formloom(instance, "export", "pipes", "deal", "-o", "-", "--filter", "amount.gte=2000",
                      database_url=database_url)  # the first admin: every deal
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout.lstrip("\ufeff"), newline="")))
    assert column(rows, "Deal name") == ["Deal 3", "Deal 2"]
    assert "Exported 2 deal record(s) to standard output." in result.stderr
    refused = formloom(instance, "export", "pipes", "deal", "--user", "clerk", database_url=database_url)
    assert refused.returncode == 1 and "may not export deal records" in refused.stderr
    (instance / "formloom.json").write_text('{"EXPORT_MAX_ROWS": 2}', encoding="utf-8")
    too_many = formloom(instance, "export", "pipes", "deal", "-o", str(tmp_path / "x.csv"), database_url=database_url)
    assert too_many.returncode == 1 and "more than the limit of 2" in too_many.stderr
    assert not (tmp_path / "x.csv").exists()

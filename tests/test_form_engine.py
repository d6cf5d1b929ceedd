"""The form engine end to end: field types, form logic, formulas, linkage, files, serials, languages."""
from __future__ import annotations

import base64
import io
import re
from datetime import date, timedelta

import pytest

from formloom.builder import definitions
from formloom.platform import auth
from formloom.platform.auth import Cause
from formloom.platform.errors import RecordValidationError
from formloom.runtime import records
from tests.factories import csrf_token, login, quote_body

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
       b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")


def create(db, user, app, entity="quote", locale="en", **values):
    record = records.create(db, user, Cause.for_user(user), app, entity, values, locale=locale)
    db.commit()
    return record


def rejected(db, user, app, entity="quote", locale="en", **values) -> dict[str, list[str]]:
    with pytest.raises(RecordValidationError) as caught:
        records.create(db, user, Cause.for_user(user), app, entity, values, locale=locale)
    db.rollback()
    return caught.value.fields


LINES = [{"product": "Licence", "qty": 3, "price": "19.99"}, {"product": "Setup", "qty": "1", "price": "0.10"},
         {"product": "Training", "qty": 2, "price": "0.20"}]


def test_formulas_are_computed_exactly_and_stored(db, rep, quotes):
    quote = create(db, rep, quotes, title="Q", lines=LINES, discount="10")
    assert quote.data["total"] == "60.47"  # 59.97 + 0.10 + 0.40: exact, not 60.470000000000006
    assert [row["amount"] for row in quote.data["lines"]] == ["59.97", "0.10", "0.40"]
    assert quote.data["net"] == "54.42"  # 60.47 * 0.9 = 54.423, rounded to cents


def test_typed_values_for_computed_fields_are_ignored(db, rep, quotes):
    quote = create(db, rep, quotes, title="Q", lines=LINES[:1], total="1000000", number="HACKED")
    assert quote.data["total"] == "59.97"
    assert quote.data["number"].startswith("QT-")


def test_defaults_current_user_today_and_serial(db, rep, quotes):
    quote = create(db, rep, quotes, title="Q", lines=LINES[:1])
    today = date.today()
    assert quote.data["owner"] == rep.id
    assert quote.data["quoted_on"] == today.isoformat()
    assert quote.data["stage"] == "draft"
    assert re.fullmatch(rf"QT-{today:%Y%m}-0001", quote.data["number"])
    assert create(db, rep, quotes, title="Q2", lines=LINES[:1]).data["number"].endswith("-0002")


def test_hidden_required_field_does_not_block_and_is_cleared(db, rep, quotes):
    quote = create(db, rep, quotes, title="Q", lines=LINES[:1], stage="draft", lost_reason="typed, then hidden")
    assert "lost_reason" not in quote.data  # hidden: neither required nor silently kept
    errors = rejected(db, rep, quotes, title="Q", lines=LINES[:1], stage="lost")
    assert errors == {"lost_reason": ["Why was it lost? is required."]}
    lost = create(db, rep, quotes, title="Q", lines=LINES[:1], stage="lost", lost_reason="Price")
    records.update(db, rep, Cause.for_user(rep), quotes, lost, {"stage": "draft"}, lost.version)
    db.commit()
    assert "lost_reason" not in lost.data


def test_hidden_value_keep_keeps_it(db, admin, rep, quotes):
    body = quote_body()
    next(f for f in body["fields"] if f["key"] == "lost_reason")["hidden_value"] = "keep"
    definitions.save_and_publish(db, admin, quotes, body)
    db.commit()
    quote = create(db, rep, quotes, title="Q", lines=LINES[:1], stage="draft", lost_reason="kept on purpose")
    assert quote.data["lost_reason"] == "kept on purpose"


def test_required_when_and_submission_check(db, rep, quotes):
    assert rejected(db, rep, quotes, title="Q", lines=LINES[:1], stage="sent") == {
        "close_date": ["Expected close date is required."]}
    today = date.today().isoformat()
    assert rejected(db, rep, quotes, title="Q", lines=LINES[:1], stage="sent", close_date=today) == {
        "close_date": ["Expected close date must be after today."]}
    assert rejected(db, rep, quotes, locale="zh-CN", title="Q", lines=LINES[:1], close_date=today) == {
        "close_date": ["预计成交日期必须晚于今天。"]}
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    assert create(db, rep, quotes, title="Q", lines=LINES[:1], stage="sent", close_date=tomorrow).data["close_date"] == tomorrow


def test_cascading_choices_are_enforced_by_the_server(db, rep, quotes):
    assert create(db, rep, quotes, title="Q", lines=LINES[:1], province="gd", city="sz").data["city"] == "sz"
    errors = rejected(db, rep, quotes, title="Q", lines=LINES[:1], province="gd", city="hz")
    assert errors == {"city": ["City must be one of the listed choices, got 'hz'."]}


def test_choosing_a_customer_fills_linked_fields_and_lookups(db, rep, quotes):
    acme = create(db, rep, quotes, "customer", name="Acme", phone="+86 138-0000-0001", tier="a",
                  address={"province": "广东省", "city": "深圳市", "street": "科技园路1号"})
    quote = create(db, rep, quotes, title="Q", lines=LINES[:1], customer=acme.id)
    assert quote.data["contact_phone"] == "+86 138-0000-0001"
    assert quote.data["ship_to"] == {"province": "广东省", "city": "深圳市", "street": "科技园路1号"}
    assert quote.data["tier"] == "a"
    # editable linkage: what the rep typed wins
    own = create(db, rep, quotes, title="Q", lines=LINES[:1], customer=acme.id, contact_phone="+86 139-1111-2222")
    assert own.data["contact_phone"] == "+86 139-1111-2222"


def test_locked_linkage_overrides_input(db, admin, rep, quotes):
    body = quote_body()
    next(f for f in body["fields"] if f["key"] == "customer")["fill_locked"] = True
    definitions.save_and_publish(db, admin, quotes, body)
    db.commit()
    acme = create(db, rep, quotes, "customer", name="Acme", phone="+86 138-0000-0001")
    quote = create(db, rep, quotes, title="Q", lines=LINES[:1], customer=acme.id, contact_phone="+86 139-1111-2222")
    assert quote.data["contact_phone"] == "+86 138-0000-0001"


def test_uniqueness_names_the_record_that_has_the_value(db, rep, quotes):
    create(db, rep, quotes, "customer", name="Acme", phone="+86 138-0000-0001")
    errors = rejected(db, rep, quotes, "customer", name="Other", phone="+86 138-0000-0001")
    assert errors == {"phone": ["Phone already belongs to Acme."]}
    assert rejected(db, rep, quotes, "customer", locale="zh-CN", name="Other", phone="+86 138-0000-0001") == {
        "phone": ["电话已被 Acme 使用。"]}


def test_sub_table_rows_are_validated_with_row_and_column(db, rep, quotes):
    errors = rejected(db, rep, quotes, title="Q", lines=[{"product": "Ok", "qty": 1},
                                                          {"product": "", "qty": 0, "price": "abc"}])
    assert errors == {"lines": ["Row 2 of Line items: Unit price must be an amount of money, got 'abc'."]}
    errors = rejected(db, rep, quotes, title="Q", lines=[{"qty": 0}])
    assert sorted(errors["lines"]) == ["Row 1 of Line items: Product is required.",
                                       "Row 1 of Line items: Qty must be at least 1."]


def test_min_rows_is_enforced_and_blank_rows_do_not_count(db, rep, quotes):
    expected = {"lines": ["Line items needs at least 1 row."]}
    assert rejected(db, rep, quotes, title="Q") == expected
    assert rejected(db, rep, quotes, title="Q", lines=[{"product": "", "qty": "", "price": ""}]) == expected


def test_rich_types_coerce_and_validate(db, rep, admin, quotes):
    quote = create(db, rep, quotes, title="Q", lines=LINES[:1], priority="4", call_at="9:05", effort="1h 30m",
                   labels="vip, 渠道, vip", site={"lat": "22.5431", "lng": "114.0579"}, team=[rep.id, admin.id])
    assert quote.data["priority"] == 4
    assert quote.data["call_at"] == "09:05"
    assert quote.data["effort"] == 90
    assert quote.data["labels"] == ["vip", "渠道"]
    assert quote.data["site"] == {"lat": 22.5431, "lng": 114.0579}
    assert quote.data["team"] == [rep.id, admin.id]
    errors = rejected(db, rep, quotes, title="Q", lines=LINES[:1], priority=6, call_at="25:00", effort="soon",
                      site={"lat": "95", "lng": "0"}, team=[999999])
    assert errors == {
        "priority": ["Priority must be between 1 and 5."],
        "call_at": ["Best time to call must be a time like 14:30, got '25:00'."],
        "effort": ["Effort must be a duration like 1h 30m or 90 (minutes), got 'soon'."],
        "site": ["Site must have a latitude between -90 and 90 and a longitude between -180 and 180."],
        "team": ["Team must be active members; #999999 is not one."],
    }


def test_messages_follow_the_language(db, rep, quotes):
    errors = rejected(db, rep, quotes, locale="zh-CN", lines=[{"product": "x", "qty": 0}], priority=9)
    assert errors == {"title": ["标题为必填项。"], "lines": ["报价明细第 1 行：数量不能小于 1。"],
                      "priority": ["优先级必须在 1 到 5 之间。"]}


def test_every_message_has_a_chinese_translation():
    from pathlib import Path

    from formloom.runtime.messages import SINGULAR, ZH

    source = "\n".join(p.read_text(encoding="utf-8") for p in Path("formloom/runtime").glob("*.py"))
    templates = set(re.findall(r'(?:Message|CoercionError)\(\s*"([^"]+)"', source))
    templates |= set(re.findall(r'describes = "([^"]+)"', source))
    templates |= set(re.findall(r'counted\(\s*"([^"]+)"', source)) | set(SINGULAR.values())
    assert templates, "no messages found"
    assert sorted(t for t in templates if t not in ZH) == []


# --- HTML forms -----------------------------------------------------------------------------

def form_post(client, url, data, files=None):
    token = csrf_token(client, url)
    payload = {"csrf_token": token, **data}
    for name, value in (files or {}).items():
        payload[name] = value
    return client.post(url, data=payload, content_type="multipart/form-data")


def test_quick_form_shows_its_layout_and_saves(client, rep, quotes):
    login(client, "rep")
    page = client.get("/apps/quotes/quote/new?form=quote_quick").get_data(as_text=True)
    assert "Only the essentials; add details later." in page
    assert 'name="f_title"' in page and 'name="f_priority"' not in page
    response = form_post(client, "/apps/quotes/quote/new?form=quote_quick",
                         {"f_title": "Quick one", "f_stage": "draft", "f_lines-0-f_product": "A",
                          "f_lines-0-f_qty": "1"})
    assert response.status_code == 302, response.get_data(as_text=True)


def test_full_form_submits_table_rows_and_files(client, db, rep, quotes):
    login(client, "rep")
    page = client.get("/apps/quotes/quote/new").get_data(as_text=True)
    assert 'data-table="f_lines"' in page and "Line items" in page
    signature = "data:image/png;base64," + base64.b64encode(PNG).decode()
    response = form_post(client, "/apps/quotes/quote/new", {
        "f_title": "With files", "f_stage": "draft",
        "f_lines-0-f_product": "Licence", "f_lines-0-f_qty": "3", "f_lines-0-f_price": "19.99",
        "f_lines-1-f_product": "Setup", "f_lines-1-f_qty": "1", "f_lines-1-f_price": "0.10",
        "f_signature": signature,
    }, files={"f_attachments": (io.BytesIO(b"%PDF-1.4 quote"), "quote.pdf"),
              "f_photo": (io.BytesIO(PNG), "site.png")})
    assert response.status_code == 302, response.get_data(as_text=True)
    record_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "quote.pdf" in record_page and "60.07" in record_page
    link = re.search(r'href="(/apps/quotes/files/\d+/quote.pdf)"', record_page)
    assert link, record_page
    download = client.get(link.group(1))
    assert download.data == b"%PDF-1.4 quote"
    signature_img = re.search(r'src="(/apps/quotes/files/\d+/signature.png)"', record_page)
    assert signature_img and client.get(signature_img.group(1)).data == PNG


def test_rejected_form_keeps_typed_values_and_uploaded_files(client, rep, quotes):
    login(client, "rep")
    response = form_post(client, "/apps/quotes/quote/new", {
        "f_title": "", "f_stage": "draft", "f_lines-0-f_product": "Licence", "f_lines-0-f_qty": "2",
    }, files={"f_attachments": (io.BytesIO(b"notes"), "notes.txt")})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Title is required." in page
    assert 'value="Licence"' in page
    assert "notes.txt" in page and 'name="f_attachments-keep"' in page


def test_wrong_file_type_is_refused_with_its_name(client, rep, quotes):
    login(client, "rep")
    response = form_post(client, "/apps/quotes/quote/new", {
        "f_title": "Q", "f_stage": "draft", "f_lines-0-f_product": "Licence", "f_lines-0-f_qty": "2",
    }, files={"f_attachments": (io.BytesIO(b"MZ..."), "setup.exe")})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "setup.exe is not an accepted type; accepted: .pdf, .txt, .png." in page
    assert 'value="Q"' in page


def test_compute_preview_returns_totals_and_linked_fields(client, db, rep, quotes):
    acme = create(db, rep, quotes, "customer", name="Acme", phone="+86 138-0000-0001", tier="b")
    login(client, "rep")
    token = csrf_token(client, "/apps/quotes/quote/new")
    response = client.post("/apps/quotes/quote/compute?changed=f_customer", headers={"X-CSRFToken": token}, data={
        "f_customer": str(acme.id), "f_lines-0-f_product": "A", "f_lines-0-f_qty": "3", "f_lines-0-f_price": "19.99",
        "f_lines-1-f_product": "B", "f_lines-1-f_qty": "1", "f_lines-1-f_price": "0.10", "f_discount": "10"})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["computed"]["f_total"] == "¥60.07"
    assert body["computed"]["f_net"] == "¥54.06"
    assert body["computed"]["f_tier"] == "B"  # shown like the customer's own field: its option label
    assert body["filled"]["f_contact_phone"] == "+86 138-0000-0001"
    assert body["rows"]["f_lines"] == [{"f_amount": "¥59.97"}, {"f_amount": "¥0.10"}]


def test_compute_preview_needs_csrf_and_access(client, db, rep, outsider, quotes):
    login(client, "outsider")
    token = csrf_token(client, "/")
    assert client.post("/apps/quotes/quote/compute", headers={"X-CSRFToken": token}, data={}).status_code == 403
    assert client.post("/apps/quotes/quote/compute", data={}).status_code == 400


def test_api_accepts_file_ids_uploaded_first(client, db, rep, rep_headers, quotes):
    upload = client.post("/api/v1/apps/quotes/files", headers=rep_headers,
                         data={"file": (io.BytesIO(b"%PDF quote"), "q.pdf")}, content_type="multipart/form-data")
    assert upload.status_code == 201, upload.get_data(as_text=True)
    file_id = upload.get_json()["id"]
    created = client.post("/api/v1/apps/quotes/records/quote", headers=rep_headers,
                          json={"data": {"title": "API", "lines": LINES[:1], "attachments": [file_id]}})
    assert created.status_code == 201, created.get_data(as_text=True)
    assert created.get_json()["data"]["attachments"] == [{"id": file_id, "name": "q.pdf", "size": 10,
                                                          "type": "application/pdf"}]
    bad = client.post("/api/v1/apps/quotes/records/quote", headers=rep_headers,
                      json={"data": {"title": "API", "lines": LINES[:1], "attachments": [987654]}})
    assert bad.status_code == 422
    assert bad.get_json()["error"]["fields"] == {
        "attachments": ["Attachments refers to file #987654, which was not uploaded to this app."]}


# --- definitions ----------------------------------------------------------------------------

def problems_of(db, admin, app, body):
    _, problems = definitions.save_draft(db, admin, app, "entity", body["key"], body)
    db.rollback()
    return {p.path: p.message for p in problems}


@pytest.mark.parametrize("change, path, words", [
    (lambda b: b["fields"][12].update(expression="SUM(lines.qty * lines.prise)"), "$.fields[12].expression", "prise"),
    (lambda b: b["fields"][12].update(expression="__import__('os')"), "$.fields[12].expression", "__import__"),
    (lambda b: b["fields"][7].update(visible_when={"field": "stgae", "op": "eq", "value": "lost"}),
     "$.fields[7].visible_when.field", "stgae"),
    (lambda b: b["fields"][5].update(relation="stage"), "$.fields[5].relation", "relation field"),
    (lambda b: b["fields"][5].update(field="nope"), "$.fields[5].field", "nope"),
    (lambda b: b["fields"][2].update(fill={"contact_phone": "fax"}), "$.fields[2].fill.contact_phone", "fax"),
    (lambda b: b["fields"][10].update(filter_by="city"), "$.fields[10].filter_by", "city"),
    (lambda b: b["fields"][0].update(pattern="QT-{YYYY}"), "$.fields[0].pattern", "counter"),
    (lambda b: b["fields"][1].update(unique=True) or b["fields"][7].update(unique=True), "$.fields[7].unique", "textarea"),
    (lambda b: b["checks"][0].update(condition={"field": "close_date", "op": "gt", "value": {"$today": "x"}}),
     "$.checks[0].condition.value", "whole number of days"),
    (lambda b: b["fields"][11]["fields"][3].update(expression="qty * cost"), "$.fields[11].fields[3].expression", "cost"),
])
def test_definition_problems_are_reported_at_their_path(db, admin, quotes, change, path, words):
    body = quote_body()
    change(body)
    problems = problems_of(db, admin, quotes, body)
    assert path in problems, problems
    assert words in problems[path]


def test_lists_filter_on_tags_and_members(client, db, rep, admin, rep_headers, quotes):
    create(db, rep, quotes, title="Tagged", lines=LINES[:1], labels="vip, 渠道", team=[admin.id])
    create(db, rep, quotes, title="Plain", lines=LINES[:1], labels="cold", team=[rep.id])

    def titles(query):
        response = client.get(f"/api/v1/apps/quotes/records/quote?{query}", headers=rep_headers)
        assert response.status_code == 200, response.get_data(as_text=True)
        return sorted(item["title"] for item in response.get_json()["items"])

    assert titles("f.labels.contains=vip") == ["Tagged"]
    assert titles("f.labels.contains=渠道") == ["Tagged"]
    assert titles(f"f.team.contains={admin.id}") == ["Tagged"]
    assert titles(f"f.team.contains={rep.id}") == ["Plain"]
    assert titles("f.priority.gte=1") == []


CATEGORIES = [{"value": "hw", "label": "Hardware"}, {"value": "sw", "label": "Software"}]


def test_relation_filter_limits_choices_to_matching_records(client, db, admin, rep):
    app = definitions.create_app(db, admin, "shop", "Shop")
    definitions.save_and_publish(db, admin, app, {
        "formloom": 1, "kind": "entity", "key": "product", "label": "Product", "title_field": "name",
        "fields": [{"key": "name", "type": "text", "label": "Name", "required": True},
                   {"key": "category", "type": "select", "label": "Category", "options": CATEGORIES}]})
    definitions.save_and_publish(db, admin, app, {
        "formloom": 1, "kind": "entity", "key": "order", "label": "Order",
        "fields": [{"key": "product_category", "type": "select", "label": "Product category", "options": CATEGORIES},
                   {"key": "product", "type": "relation", "label": "Product", "target": "product",
                    "filter": {"category": "product_category"}}]})
    auth.grant_app(db, rep, app)
    db.commit()
    laptop = create(db, rep, app, "product", name="Laptop", category="hw")
    office = create(db, rep, app, "product", name="Office suite", category="sw")
    assert create(db, rep, app, "order", product_category="hw", product=laptop.id).data["product"] == laptop.id
    assert rejected(db, rep, app, "order", product_category="hw", product=office.id) == {
        "product": ["Product must be a record that matches Product category."]}
    login(client, "rep")
    found = client.get("/apps/shop/product/lookup?q=&where.category=sw").get_json()
    assert [r["title"] for r in found] == ["Office suite"]
    assert client.get("/apps/shop/product/lookup?where.colour=red").status_code == 400
    page = client.get("/apps/shop/order/new").get_data(as_text=True)
    assert "data-filter=" in page and "f_product_category" in page


def test_read_only_when_protects_stored_values(db, admin, rep, quotes):
    body = quote_body()
    next(f for f in body["fields"] if f["key"] == "discount")["readonly_when"] = {
        "field": "stage", "op": "eq", "value": "sent"}
    definitions.save_and_publish(db, admin, quotes, body)
    db.commit()
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    quote = create(db, rep, quotes, title="Q", lines=LINES[:1], stage="sent", close_date=tomorrow, discount="5")
    with pytest.raises(RecordValidationError) as caught:
        records.update(db, rep, Cause.for_user(rep), quotes, quote, {"discount": "50"}, quote.version)
    db.rollback()
    assert caught.value.fields == {"discount": ["Discount is read-only now."]}
    records.update(db, rep, Cause.for_user(rep), quotes, quote, {"title": "Renamed", "discount": "5"}, quote.version)
    db.commit()
    assert quote.data["title"] == "Renamed" and quote.data["discount"] == "5.0"


def test_twenty_concurrent_quote_submissions_get_twenty_consecutive_numbers(app, db, rep, quotes):
    import threading

    from formloom.platform.db import new_session
    from formloom.platform.models import User

    start = threading.Event()
    numbers: list[str] = []
    failures: list[BaseException] = []

    def submit(i: int) -> None:
        session = new_session(app, write=True)
        try:
            start.wait(timeout=30)
            user = session.get(User, rep.id)
            record = records.create(session, user, Cause.for_user(user), quotes, "quote",
                                    {"title": f"Quote {i}", "lines": LINES[:1]})
            session.commit()
            numbers.append(record.data["number"])
        except BaseException as exc:  # reported below with the numbers seen
            failures.append(exc)
        finally:
            session.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    start.set()  # all at once
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    prefix = f"QT-{date.today():%Y%m}-"
    assert sorted(numbers) == [f"{prefix}{n:04d}" for n in range(1, 21)]


def test_default_formula_gives_new_records_a_computed_start(db, admin, rep, quotes):
    body = quote_body()
    next(f for f in body["fields"] if f["key"] == "close_date")["default_formula"] = 'DATEADD(TODAY(), 1, "month")'
    definitions.save_and_publish(db, admin, quotes, body)
    db.commit()
    quote = create(db, rep, quotes, title="Q", lines=LINES[:1])
    today = date.today()
    assert quote.data["close_date"] > today.isoformat()
    assert quote.data["close_date"][:7] == f"{today.year + (today.month == 12):04d}-{today.month % 12 + 1:02d}"


def test_record_page_leaves_out_fields_hidden_by_their_conditions(client, db, rep, quotes):
    draft = create(db, rep, quotes, title="Draft quote", lines=LINES[:1], stage="draft")
    lost = create(db, rep, quotes, title="Lost quote", lines=LINES[:1], stage="lost", lost_reason="Too pricey")
    login(client, "rep")
    assert "Why was it lost?" not in client.get(f"/apps/quotes/quote/{draft.id}").get_data(as_text=True)
    page = client.get(f"/apps/quotes/quote/{lost.id}").get_data(as_text=True)
    assert "Why was it lost?" in page and "Too pricey" in page


def test_form_with_too_many_rows_is_refused_not_cut(client, rep, quotes):
    login(client, "rep")
    rows = {}
    for i in range(51):
        rows[f"f_lines-{i}-f_product"] = f"P{i}"
        rows[f"f_lines-{i}-f_qty"] = "1"
    response = form_post(client, "/apps/quotes/quote/new", {"f_title": "Many", "f_stage": "draft", **rows})
    assert response.status_code == 422
    assert "Line items allows at most 50 rows." in response.get_data(as_text=True)


def test_choosing_another_customer_on_an_existing_quote_previews_the_new_customers_values(client, db, rep, quotes):
    acme = create(db, rep, quotes, "customer", name="Acme", phone="+86 138-0000-0001")
    globex = create(db, rep, quotes, "customer", name="Globex", phone="+86 138-0000-0002")
    quote = create(db, rep, quotes, title="Q", lines=LINES[:1], customer=acme.id)
    login(client, "rep")
    token = csrf_token(client, f"/apps/quotes/quote/{quote.id}/edit")
    response = client.post(f"/apps/quotes/quote/compute?changed=f_customer&record={quote.id}",
                           headers={"X-CSRFToken": token},
                           data={"f_customer": str(globex.id), "f_contact_phone": "+86 138-0000-0001"})
    assert response.get_json()["filled"]["f_contact_phone"] == "+86 138-0000-0002"


def test_ids_beyond_the_database_range_are_not_found(client, db, rep, rep_headers, quotes):
    huge = 10**20
    login(client, "rep")
    assert client.get(f"/apps/quotes/quote/{huge}").status_code == 404
    assert client.get(f"/apps/quotes/files/{huge}/x.pdf").status_code == 404
    assert client.get(f"/api/v1/apps/quotes/records/quote/{huge}", headers=rep_headers).status_code == 404
    token = csrf_token(client, "/apps/quotes/quote/new")
    assert client.post(f"/apps/quotes/quote/compute?record={huge}", headers={"X-CSRFToken": token},
                       data={}).status_code == 404

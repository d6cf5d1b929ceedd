"""The reps' pages through the test client: login, forms, conflicts, lists, awkward field keys."""
from __future__ import annotations

import random
import re

import pytest

from formloom.builder import definitions
from formloom.platform.auth import Cause
from formloom.runtime import records
from formloom.runtime.compiler import compile_entity
from formloom.runtime.fields import FIELD_TYPES
from formloom.runtime.validation import validate_values
from tests.factories import csrf_token, deal_body, login


def test_login_page_refuses_wrong_password_and_redirects_only_inside(client, rep):
    token = csrf_token(client)
    wrong = client.post("/login", data={"username": "rep", "password": "nope", "csrf_token": token})
    assert wrong.status_code == 401 and "Wrong username or password." in wrong.get_data(as_text=True)
    evil = client.post("/login?next=https://evil.example.com/", data={
        "username": "rep", "password": "correct-horse-42", "csrf_token": token})
    assert evil.headers["Location"] == "/"
    assert client.get("/apps/sales/deal/").status_code == 200


def test_pages_need_login(client, sales):
    response = client.get("/apps/sales/deal/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")


def test_stale_edit_shows_what_changed_and_keeps_what_was_typed(client, db, admin, sales, rep):
    record = records.create(db, admin, Cause.for_user(admin), sales, "deal", {"name": "Deal", "amount": "10"})
    db.commit()
    login(client, "rep")
    token = csrf_token(client, f"/apps/sales/deal/{record.id}/edit")
    records.update(db, admin, Cause.for_user(admin), sales, record, {"amount": "20"}, 1)  # someone else
    db.commit()
    response = client.post(f"/apps/sales/deal/{record.id}/edit", data={
        "csrf_token": token, "_version": "1", "f_name": "Deal renamed", "f_amount": "15"})
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "changed by someone else" in page and "Changed meanwhile" in page
    assert 'value="Deal renamed"' in page and 'value="15"' in page
    assert 'name="_version" value="2"' in page  # saving again is a conscious overwrite
    db.expire_all()
    assert records.get(db, admin, sales, "deal", record.id).data["amount"] == "20.00"


def test_field_keys_that_clash_with_form_attributes_work(client, db, admin, sales, rep):
    body = {"formloom": 1, "kind": "entity", "key": "awkward", "label": "Awkward", "title_field": "data",
            "fields": [{"key": k, "type": "text", "label": k.title(), "required": k == "data"}
                       for k in ("data", "errors", "validate", "meta", "process", "populate_obj")]}
    definitions.save_and_publish(db, admin, sales, body)
    db.commit()
    login(client, "rep")
    token = csrf_token(client, "/apps/sales/awkward/new")
    bad = client.post("/apps/sales/awkward/new", data={"csrf_token": token, "f_meta": "m"})
    assert bad.status_code == 422 and "Data is required." in bad.get_data(as_text=True)
    good = client.post("/apps/sales/awkward/new", data={
        "csrf_token": token, "f_data": "d", "f_errors": "e", "f_validate": "v", "f_meta": "m", "f_process": "p"})
    assert good.status_code == 302
    page = client.get(good.headers["Location"]).get_data(as_text=True)
    assert all(f">{v}</dd>" in page for v in "devmp")


def test_list_filters_by_select_and_date_and_searches_title(client, db, admin, sales, rep):
    for name, stage, close in [("Alpha", "won", "2026-01-10"), ("Beta", "lead", "2026-02-10"),
                               ("Gamma", "won", "2026-03-10")]:
        records.create(db, admin, Cause.for_user(admin), sales, "deal",
                       {"name": name, "stage": stage, "close_date": close})
    db.commit()
    login(client, "rep")

    def names(query: str) -> list[str]:
        page = client.get(f"/apps/sales/deal/?{query}").get_data(as_text=True)
        return re.findall(r'/apps/sales/deal/\d+">([^<]+)</a>', page)

    assert names("f.stage=won&sort=name") == ["Alpha", "Gamma"]
    assert names("f.close_date.gte=2026-02-01&sort=-close_date") == ["Gamma", "Beta"]
    assert names("q=amm") == ["Gamma"]
    bad = client.get("/apps/sales/deal/?f.close_date.gte=someday").get_data(as_text=True)
    assert "must be a date like" in bad


def test_admin_labels_and_values_are_escaped(client, db, admin, sales, rep):
    body = deal_body(label='<script>alert("label")</script>')
    body["fields"][0]["label"] = "<img src=x onerror=alert(1)>"
    definitions.save_and_publish(db, admin, sales, body)
    record = records.create(db, admin, Cause.for_user(admin), sales, "deal", {"name": "<b>bold</b>"})
    db.commit()
    login(client, "rep")
    for url in ("/apps/sales/deal/", f"/apps/sales/deal/{record.id}", "/apps/sales/deal/new", "/apps/sales/"):
        page = client.get(url).get_data(as_text=True)
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>bold</b>" not in page


def test_chinese_labels_follow_the_chosen_language(client, rep):
    login(client, "rep")
    page = client.get("/apps/sales/deal/new?lang=zh-CN").get_data(as_text=True)
    assert "商机名称" in page and "保存" in page and '<html lang="zh-CN">' in page


@pytest.mark.parametrize("type_name", sorted(FIELD_TYPES))
def test_sample_values_of_every_type_validate(type_name):
    field = {"key": "f", "type": type_name, "label": "F", "required": True, **FIELD_TYPES[type_name].example}
    entity = compile_entity({"key": "t", "label": "T", "fields": [field]}, 1, f"sample-{type_name}")
    rng = random.Random(3)
    for _ in range(25):
        value = FIELD_TYPES[type_name].sample(field, rng)
        if value is not None:  # members and related records come from the database
            assert validate_values(entity, {"f": value}) == {"f": value}


def test_delete_and_restore_from_the_record_page_keep_values(client, db, admin, sales, rep):
    record = records.create(db, admin, Cause.for_user(admin), sales, "deal", {"name": "Doomed", "amount": "7"})
    db.commit()
    login(client, "rep")
    token = csrf_token(client, f"/apps/sales/deal/{record.id}")
    deleted = client.post(f"/apps/sales/deal/{record.id}/delete", data={"csrf_token": token}, follow_redirects=True)
    assert "The record was deleted" in deleted.get_data(as_text=True)
    assert "Doomed" not in client.get("/apps/sales/deal/").get_data(as_text=True)
    assert "Doomed" in client.get("/apps/sales/deal/?deleted=1").get_data(as_text=True)
    restored = client.post(f"/apps/sales/deal/{record.id}/restore", data={"csrf_token": token},
                           follow_redirects=True).get_data(as_text=True)
    assert "The record was restored" in restored and "¥7.00" in restored
    assert "Doomed" in client.get("/apps/sales/deal/").get_data(as_text=True)


def test_logout_ends_the_session(client, rep):
    login(client, "rep")
    token = csrf_token(client, "/apps/sales/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/apps/sales/deal/").headers["Location"].startswith("/login")

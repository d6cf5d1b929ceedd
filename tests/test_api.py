"""The REST API: same validation as HTML, permissions on every endpoint, CSRF, errors as JSON."""
from __future__ import annotations

import re

import pytest

from formloom.platform.auth import Cause
from formloom.runtime import records
from formloom.runtime.fields import FIELD_TYPES
from tests.factories import company_body, csrf_token, deal_body, login

BASE = "/api/v1/apps/sales"

# (form input as a browser sends it, the same input as JSON)
PARITY_CASES = [
    ({"name": ""}, {"name": ""}),
    ({"name": "x" * 41}, {"name": "x" * 41}),
    ({"name": "ok", "seats": "abc"}, {"name": "ok", "seats": "abc"}),
    ({"name": "ok", "seats": "0"}, {"name": "ok", "seats": "0"}),
    ({"name": "ok", "seats": "1.5"}, {"name": "ok", "seats": "1.5"}),
    ({"name": "ok", "weight": "1.2345"}, {"name": "ok", "weight": "1.2345"}),
    ({"name": "ok", "amount": "12.345"}, {"name": "ok", "amount": "12.345"}),
    ({"name": "ok", "amount": "-3"}, {"name": "ok", "amount": "-3"}),
    ({"name": "ok", "amount": "1e5"}, {"name": "ok", "amount": "1e5"}),
    ({"name": "ok", "discount": "101"}, {"name": "ok", "discount": "101"}),
    ({"name": "ok", "close_date": "2026-13-01"}, {"name": "ok", "close_date": "2026-13-01"}),
    ({"name": "ok", "close_date": "31/12/2026"}, {"name": "ok", "close_date": "31/12/2026"}),
    ({"name": "ok", "meeting_at": "tomorrow"}, {"name": "ok", "meeting_at": "tomorrow"}),
    ({"name": "ok", "stage": "closed"}, {"name": "ok", "stage": "closed"}),
    ({"name": "ok", "products": ["crm", "cad"]}, {"name": "ok", "products": ["crm", "cad"]}),
    ({"name": "ok", "contact_email": "a@b"}, {"name": "ok", "contact_email": "a@b"}),
    ({"name": "ok", "contact_email": "not an email"}, {"name": "ok", "contact_email": "not an email"}),
    ({"name": "ok", "contact_phone": "12"}, {"name": "ok", "contact_phone": "12"}),
    ({"name": "ok", "website": "ftp://x.example.com"}, {"name": "ok", "website": "ftp://x.example.com"}),
    ({"name": "ok", "website": "example.com"}, {"name": "ok", "website": "example.com"}),
    ({"name": "ok", "owner": "4242"}, {"name": "ok", "owner": "4242"}),
    ({"name": "ok", "company": "4242"}, {"name": "ok", "company": "4242"}),
    ({"name": "", "seats": "x", "amount": "y", "close_date": "z"},
     {"name": "", "seats": "x", "amount": "y", "close_date": "z"}),
]


def html_errors(client, values: dict) -> dict[str, list[str]]:
    token = csrf_token(client, "/apps/sales/deal/new")
    form = {"csrf_token": token, **{f"f_{k}": v for k, v in values.items()}}
    response = client.post("/apps/sales/deal/new", data=form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    errors = {}
    for key, text in re.findall(r'<p class="error" id="f_(\w+)-error">(.*?)</p>', page, re.S):
        errors[key] = [m + "." for m in text.replace("&#39;", "'").split(". ") if m.strip(". ")]
        errors[key] = [m.replace("..", ".") for m in errors[key]]
    return errors


@pytest.mark.parametrize("form_values, json_values", PARITY_CASES)
def test_api_and_html_give_the_same_field_errors(client, rep, rep_headers, form_values, json_values):
    api = client.post(f"{BASE}/records/deal", json={"data": json_values}, headers=rep_headers)
    assert api.status_code == 422
    body = api.get_json()["error"]
    assert body["code"] == "validation_failed"
    login(client, "rep")
    assert html_errors(client, form_values) == body["fields"]


def test_create_get_patch_history_delete_restore(client, rep, rep_headers):
    created = client.post(f"{BASE}/records/deal", json={"data": {"name": "Via API", "amount": 99.5}},
                          headers=rep_headers)
    assert created.status_code == 201
    record = created.get_json()
    assert record["data"] == {"name": "Via API", "amount": "99.50", "stage": "lead"}  # stage: its default
    assert record["version"] == 1
    url = f"{BASE}/records/deal/{record['id']}"
    patched = client.patch(url, json={"version": 1, "data": {"amount": "100"}}, headers=rep_headers)
    assert patched.status_code == 200 and patched.get_json()["data"]["amount"] == "100.00"
    stale = client.patch(url, json={"version": 1, "data": {"amount": "5"}}, headers=rep_headers)
    assert stale.status_code == 409
    assert stale.get_json()["error"]["code"] == "version_conflict"
    assert stale.get_json()["error"]["changed_fields"] == {"amount": ["99.50", "100.00"]}
    history = client.get(f"{url}/history", headers=rep_headers).get_json()["items"]
    assert [h["action"] for h in history] == ["update", "create"]
    assert history[0]["cause"]["kind"] == "api_token"
    assert client.delete(url, headers=rep_headers).get_json()["deleted"] is True
    assert client.get(f"{BASE}/records/deal", headers=rep_headers).get_json()["total"] == 0
    assert client.post(f"{url}/restore", headers=rep_headers).get_json()["deleted"] is False


def test_list_with_filter_sort_and_cursor(client, db, admin, sales, rep_headers):
    for i in range(7):
        records.create(db, admin, Cause.for_user(admin), sales, "deal",
                       {"name": f"D{i}", "seats": i + 1, "stage": "won" if i % 2 else "lead"})
    db.commit()
    items, cursor = [], None
    while True:
        query = "?f.stage=lead&sort=-seats&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"{BASE}/records/deal{query}", headers=rep_headers).get_json()
        assert page["total"] == 4
        items += [r["data"]["name"] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert items == ["D6", "D4", "D2", "D0"]
    bad = client.get(f"{BASE}/records/deal?sort=colour", headers=rep_headers)
    assert bad.status_code == 400 and "sort by one of" in bad.get_json()["error"]["message"]
    assert client.get(f"{BASE}/records/deal?limit=5000", headers=rep_headers).status_code == 400
    assert client.get(f"{BASE}/records/deal?cursor=garbage", headers=rep_headers).status_code == 400


def test_definitions_save_check_publish_versions(client, sales, admin_headers):
    url = f"{BASE}/definitions/entity/deal"
    body = deal_body()
    body["fields"].append({"key": "region", "type": "text", "label": "Region"})
    saved = client.put(url, json=body, headers=admin_headers)
    assert saved.status_code == 200 and saved.get_json()["valid"] is True
    published = client.post(f"{url}/publish", headers=admin_headers)
    assert published.get_json()["version"] == 2
    versions = client.get(f"{url}/versions", headers=admin_headers).get_json()["items"]
    assert [v["version"] for v in versions] == [2, 1]
    listing = client.get(f"{BASE}/definitions?kind=entity", headers=admin_headers).get_json()["items"]
    assert sorted(d["key"] for d in listing) == ["company", "deal"]


def test_bad_definition_answers_every_problem_with_its_path(client, sales, admin_headers):
    body = company_body(title_field="nope")
    body["fields"].append({"key": "name", "type": "texty", "label": 5})
    saved = client.put(f"{BASE}/definitions/entity/company", json=body, headers=admin_headers).get_json()
    assert saved["valid"] is False
    assert {p["path"] for p in saved["problems"]} == {"$.fields[1].type", "$.fields[1].label", "$.fields[1].key",
                                                      "$.title_field"}
    refused = client.post(f"{BASE}/definitions/entity/company/publish", headers=admin_headers)
    assert refused.status_code == 422
    assert set(refused.get_json()["error"]["fields"]) == {p["path"] for p in saved["problems"]}


RECORD_ENDPOINTS = [
    ("get", "/records/deal", None), ("post", "/records/deal", {"data": {"name": "x"}}),
    ("get", "/records/deal/{id}", None), ("patch", "/records/deal/{id}", {"version": 1, "data": {"name": "y"}}),
    ("delete", "/records/deal/{id}", None), ("post", "/records/deal/{id}/restore", None),
    ("get", "/records/deal/{id}/history", None),
    ("get", "/definitions", None), ("get", "/definitions/entity/deal", None),
    ("put", "/definitions/entity/deal", deal_body()), ("post", "/definitions/entity/deal/check", deal_body()),
    ("post", "/definitions/entity/deal/publish", None), ("get", "/definitions/entity/deal/versions", None),
    ("delete", "/definitions/entity/deal/draft", None), ("get", "", None),
]


@pytest.mark.parametrize("method, path, body", RECORD_ENDPOINTS)
def test_user_without_access_gets_403_and_no_data(client, db, admin, sales, outsider_headers, method, path, body):
    record = records.create(db, admin, Cause.for_user(admin), sales, "deal", {"name": "Secret deal"})
    db.commit()
    response = getattr(client, method)(BASE + path.format(id=record.id), json=body, headers=outsider_headers)
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"
    assert "Secret deal" not in response.get_data(as_text=True)


@pytest.mark.parametrize("method, path, body", [e for e in RECORD_ENDPOINTS if "definitions/" in e[1] and e[0] != "get"])
def test_member_cannot_change_definitions(client, rep_headers, method, path, body):
    response = getattr(client, method)(BASE + path, json=body, headers=rep_headers)
    assert response.status_code == 403


def test_no_credentials_gets_401_json(client, sales):
    response = client.get(f"{BASE}/records/deal")
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"


def test_cookie_session_api_write_needs_csrf_token(client, rep):
    login(client, "rep")
    refused = client.post(f"{BASE}/records/deal", json={"data": {"name": "x"}})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "csrf_failed"
    token = csrf_token(client, "/apps/sales/")
    accepted = client.post(f"{BASE}/records/deal", json={"data": {"name": "x"}}, headers={"X-CSRFToken": token})
    assert accepted.status_code == 201


def test_html_form_post_without_csrf_token_is_refused(client, rep):
    login(client, "rep")
    response = client.post("/apps/sales/deal/new", data={"f_name": "x"})
    assert response.status_code == 400 and "did not come from this site" in response.get_data(as_text=True)


def test_unknown_records_and_routes_are_json_404(client, rep_headers):
    assert client.get(f"{BASE}/records/deal/999", headers=rep_headers).status_code == 404
    assert client.get(f"{BASE}/records/planet", headers=rep_headers).status_code == 404
    missing = client.get("/api/v1/nothing-here", headers=rep_headers)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("payload", [None, "text", [], {"data": "x"}, {"data": []}])
def test_malformed_bodies_get_400_not_500(client, rep_headers, payload):
    response = client.post(f"{BASE}/records/deal", json=payload, headers=rep_headers)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "bad_request" and ("JSON object" in error["message"] or "'data'" in error["message"])


def test_field_types_lists_the_registry(client, rep_headers):
    types = {t["type"] for t in client.get("/api/v1/field-types", headers=rep_headers).get_json()["items"]}
    assert types == set(FIELD_TYPES) and {"table", "formula", "serial", "signature", "address"} <= types

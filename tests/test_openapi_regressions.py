"""Server errors found by running Schemathesis against the OpenAPI document (and their siblings).

Each was a 500: a number beyond the database's integers reached a query (SQLite cannot bind it,
PostgreSQL refuses it), a value the code thought it had checked did not parse, or text PostgreSQL
cannot hold (NUL, a lone surrogate) reached it.
"""
from __future__ import annotations

import base64
import json

import pytest

from formloom.platform import auth
from formloom.templates_library import install
from formloom.templates_library.demo import load_demo_data

BEYOND = 10**25  # no 32- or 64-bit integer column holds it


def cursor(value, record_id) -> str:
    raw = json.dumps([value, record_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def error_code(response) -> str:
    return response.get_json()["error"]["code"]


@pytest.fixture
def crm(db, admin):
    app = install(db, admin)
    load_demo_data(db, admin, app, scale=0.01)
    db.commit()
    return app


def first_id(client, headers, entity: str) -> tuple[int, int]:
    item = client.get(f"/api/v1/apps/crm/records/{entity}?sort=id&limit=1", headers=headers).get_json()["items"][0]
    return item["id"], item["version"]


@pytest.mark.parametrize("name", ["before", "record"])
def test_rule_runs_refuse_ids_beyond_the_database(client, crm, admin_headers, name):
    response = client.get(f"/api/v1/apps/crm/automation/runs?{name}={BEYOND}", headers=admin_headers)
    assert response.status_code == 400 and error_code(response) == "bad_request"
    assert f"Parameter '{name}' must be between 1 and 2147483647" in response.get_json()["error"]["message"]
    assert client.get(f"/api/v1/apps/crm/automation/runs?{name}=5", headers=admin_headers).status_code == 200


def test_patch_with_a_version_beyond_the_database_is_a_bad_request(client, crm, admin_headers):
    record_id, version = first_id(client, admin_headers, "customer")
    response = client.patch(f"/api/v1/apps/crm/records/customer/{record_id}", headers=admin_headers,
                            json={"version": BEYOND, "data": {"notes": "x"}})
    assert response.status_code == 400 and error_code(response) == "bad_request"
    assert "'version' must be the record version you edited" in response.get_json()["error"]["message"]
    stale = client.patch(f"/api/v1/apps/crm/records/customer/{record_id}", headers=admin_headers,
                         json={"version": version + 5, "data": {"notes": "x"}})
    assert stale.status_code == 409 and error_code(stale) == "version_conflict"


def test_transition_with_a_version_beyond_the_database_is_a_bad_request(client, crm, admin_headers):
    record_id, _ = first_id(client, admin_headers, "opportunity")
    response = client.post(f"/api/v1/apps/crm/records/opportunity/{record_id}/transition", headers=admin_headers,
                           json={"to": "lost", "version": BEYOND})
    assert response.status_code == 400 and error_code(response) == "bad_request"


@pytest.mark.parametrize("url", [
    f"/api/v1/apps/crm/definitions/entity/customer/versions/{BEYOND}",
    f"/api/v1/apps/crm/definitions/entity/customer/diff?from={BEYOND}",
    f"/api/v1/apps/crm/definitions/entity/customer/diff?to={BEYOND}",
])
def test_definition_versions_beyond_the_database_are_not_found(client, crm, admin_headers, url):
    response = client.get(url, headers=admin_headers)
    assert response.status_code == 404 and error_code(response) == "not_found"
    assert f"The entity 'customer' has no version {BEYOND}." == response.get_json()["error"]["message"]


def test_rollback_to_a_version_beyond_the_database_is_not_found(client, crm, admin_headers):
    response = client.post("/api/v1/apps/crm/definitions/entity/customer/rollback", headers=admin_headers,
                           json={"version": BEYOND})
    assert response.status_code == 404 and error_code(response) == "not_found"


def test_diff_refuses_digits_that_are_not_ascii(client, crm, admin_headers):
    response = client.get("/api/v1/apps/crm/definitions/entity/customer/diff?from=%C2%B2", headers=admin_headers)
    assert response.status_code == 400 and "'from' must be a version number or 'draft'" in \
        response.get_json()["error"]["message"]


@pytest.mark.parametrize("position", [[None, BEYOND], [BEYOND, 3], [{"num": "abc"}, 3]])
def test_list_cursor_out_of_range_or_malformed_is_invalid(client, crm, admin_headers, position):
    sort = "id" if position[0] == BEYOND else "-updated_at"
    response = client.get("/api/v1/apps/crm/records/customer", headers=admin_headers,
                          query_string={"sort": sort, "cursor": cursor(*position)})
    assert response.status_code == 400 and error_code(response) == "invalid_query"
    assert response.get_json()["error"]["message"] == "The cursor is not valid; start again from the first page."


def test_list_cursor_of_a_real_page_still_pages(client, crm, admin_headers):
    first = client.get("/api/v1/apps/crm/records/contact?limit=1&sort=id", headers=admin_headers).get_json()
    second = client.get("/api/v1/apps/crm/records/contact", headers=admin_headers,
                        query_string={"limit": 1, "sort": "id", "cursor": first["next_cursor"]}).get_json()
    assert second["items"][0]["id"] > first["items"][0]["id"]


def test_member_cannot_read_the_rule_runs(client, db, crm, rep_headers, rep):
    auth.grant_app(db, rep, crm)
    db.commit()
    response = client.get(f"/api/v1/apps/crm/automation/runs?before={BEYOND}", headers=rep_headers)
    assert response.status_code == 403


@pytest.mark.parametrize("text", ["a\x00b", "a\udb65b"])
@pytest.mark.parametrize("where", ["value", "key"])
def test_draft_of_an_unknown_kind_with_unstorable_text_is_refused(client, crm, admin_headers, text, where):
    body = {"x": text} if where == "value" else {text: {}}
    raw = json.dumps(body)  # \u0000 and the lone surrogate as JSON escapes, as a client sends them
    response = client.put("/api/v1/apps/crm/definitions/pipeline/draft_only", headers=admin_headers,
                          data=raw, content_type="application/json")
    assert response.status_code == 422 and error_code(response) == "definition_invalid"
    assert "cannot be stored" in json.dumps(response.get_json()["error"]["fields"])
    listed = client.get("/api/v1/apps/crm/definitions?kind=pipeline", headers=admin_headers).get_json()
    assert "draft_only" not in [d["key"] for d in listed["items"]]


def test_draft_of_an_unknown_kind_is_still_kept(client, crm, admin_headers):
    response = client.put("/api/v1/apps/crm/definitions/pipeline/draft_only", headers=admin_headers,
                          json={"x": "plain text"})
    assert response.status_code == 200 and response.get_json()["valid"] is False


@pytest.mark.parametrize("name", ["rule", "status"])
def test_rule_runs_refuse_nul_in_text_filters(client, crm, admin_headers, name):
    response = client.get(f"/api/v1/apps/crm/automation/runs?{name}=a%00b", headers=admin_headers)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == f"Parameter '{name}' contains a NUL character (U+0000); remove it."

"""The builder's side of access control: the admin area's "Access" section, setting access up from
the built-in roles, the editor's data, publishing through the API (checked, audited, described
in both languages, in force at once), scope conditions that mean the same in SQL, and bundles.
"""
from __future__ import annotations

import copy
import json
import re

import pytest
from sqlalchemy import select

from formloom.builder import definitions
from formloom.platform import audit
from formloom.platform.auth import Cause
from formloom.platform.models import Record
from formloom.runtime import records
from formloom.runtime.access import BUILT_IN, policy
from tests.conftest import bearer
from tests.factories import csrf_token, login

ADMIN_AREA = "/apps/sales/admin/"
SET_UP = "/apps/sales/admin/access/new"
EDITOR = "/apps/sales/admin/access/access/"
API = "/api/v1/apps/sales/definitions/access/access"


@pytest.fixture
def admin_client(client, admin, sales):
    login(client, "admin")
    return client


def _token(client) -> dict:
    return {"X-CSRFToken": csrf_token(client, "/apps/sales/")}


def _set_up(client):
    return client.post(SET_UP, data={"csrf_token": csrf_token(client, ADMIN_AREA)})


def _editor_data(client) -> dict:
    page = client.get(EDITOR)
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    raw = re.search(r'<script type="application/json" id="builder-data">(.*?)</script>', page.get_data(as_text=True),
                    re.S)
    return json.loads(raw.group(1))


def _access_section(page: str) -> str:
    return page[page.index('id="group-access"'):]


# --- the admin area and setting up ------------------------------------------------------------------

def test_the_admin_area_has_an_access_section_that_offers_to_set_it_up(admin_client):
    page = admin_client.get(ADMIN_AREA).get_data(as_text=True)
    section = _access_section(page)
    assert ">Access</h2>" in section
    assert "Set up access" in section and f'action="{SET_UP}"' in section
    assert "the built-in roles apply" in section


def test_setting_up_access_starts_a_draft_from_the_built_in_roles(admin_client, db, sales):
    answer = _set_up(admin_client)
    assert answer.status_code == 302 and answer.headers["Location"].endswith(EDITOR)
    draft = definitions.get(db, sales, "access", "access").draft
    assert draft["label"] == {"en": "Access", "zh-CN": "权限"}
    assert [r["key"] for r in draft["roles"]] == ["rep", "manager", "viewer"]  # never admin: it cannot be restricted
    for role in draft["roles"]:
        assert role["entities"] == BUILT_IN[role["key"]]["entities"] and role["label"]["zh-CN"]
    assert definitions.check(db, sales, "access", "access", draft) == []
    # The section now lists it as a draft; no second set-up is offered.
    section = _access_section(admin_client.get(ADMIN_AREA).get_data(as_text=True))
    assert f'href="{EDITOR}"' in section and "权限" not in section and ">Access</a>" in section
    assert "not published" in section and "Set up access" not in section


def test_setting_up_again_opens_the_existing_draft_without_replacing_it(admin_client, db, sales, admin):
    _set_up(admin_client)
    draft = definitions.get(db, sales, "access", "access").draft
    draft["roles"].pop()
    definitions.save_draft(db, admin, sales, "access", "access", draft)
    db.commit()
    again = _set_up(admin_client)
    assert again.status_code == 302 and again.headers["Location"].endswith(EDITOR)
    db.expire_all()
    assert [r["key"] for r in definitions.get(db, sales, "access", "access").draft["roles"]] == ["rep", "manager"]
    assert admin_client.get(SET_UP).headers["Location"].endswith(EDITOR)


def test_the_access_section_is_in_the_language_of_the_page(admin_client):
    _set_up(admin_client)
    page = admin_client.get(f"{ADMIN_AREA}?lang=zh-CN").get_data(as_text=True)
    assert ">权限</a>" in _access_section(page)


def test_members_who_may_not_build_cannot_set_up_access(client, rep, sales):
    login(client, "rep")
    assert client.post(SET_UP, data={"csrf_token": csrf_token(client, "/apps/sales/")}).status_code == 403
    assert client.get(EDITOR).status_code == 403


# --- the editor's data --------------------------------------------------------------------------------

def test_the_editor_gets_the_roles_entities_and_scope_tests(admin_client, db, sales, rep):
    _set_up(admin_client)
    data = _editor_data(admin_client)
    access = data["access"]
    assert set(access["built_in"]) == {"rep", "manager", "viewer"} and access["admin_role"] == "admin"
    assert access["members"] == {"rep": 1}
    assert access["when_operators"]["list"] == ["contains", "not_contains", "empty", "not_empty"]
    assert "contains" not in access["when_operators"]["text"]
    assert data["entities"]["deal"]["title_field"] == "name"
    assert [f["key"] for f in data["entities"]["company"]["fields"]] == ["name"]
    assert data["urls"]["preview"] is None


# --- publishing -----------------------------------------------------------------------------------------

def _reps_own_deals(draft: dict) -> dict:
    body = copy.deepcopy(draft)
    rep = body["roles"][0]
    rep["entities"]["deal"] = {"read": "own", "update": "own", "delete": False}
    rep["fields"] = {"deal": {"amount": "hidden", "discount": "read_only"}}
    return body


def test_publishing_access_through_the_api_is_checked_described_audited_and_in_force(admin_client, db, sales,
                                                                                       admin, rep):
    _set_up(admin_client)
    cause = Cause.for_user(admin)
    theirs = records.create(db, admin, cause, sales, "deal", {"name": "Admin's deal", "amount": "10"})
    mine = records.create(db, rep, Cause.for_user(rep), sales, "deal", {"name": "Rita's deal", "amount": "20"})
    db.commit()
    body = _reps_own_deals(definitions.get(db, sales, "access", "access").draft)
    wrong = copy.deepcopy(body)
    wrong["roles"].append({"key": "admin", "entities": {"*": {"read": "own"}}})
    wrong["roles"][0]["entities"]["deal"]["read"] = {"scope": "all",
                                                     "when": {"field": "name", "op": "contains", "value": "A"}}
    saved = admin_client.put(API, json=wrong, headers=_token(admin_client)).get_json()
    paths = {p["path"]: p["message"] for p in saved["problems"]}
    assert "every permission" in paths["$.roles[3].key"]
    assert "not 'contains'" in paths["$.roles[0].entities.deal.read.when.op"]
    refused = admin_client.post(f"{API}/publish", json={}, headers=_token(admin_client))
    assert refused.status_code == 422

    admin_client.put(API, json=body, headers=_token(admin_client))
    changes = admin_client.get(f"{API}/diff?from=0&to=draft").get_json()["changes"]
    assert [c["code"] for c in changes] == ["created"]
    published = admin_client.post(f"{API}/publish", json={}, headers=_token(admin_client))
    assert published.status_code == 200 and published.get_json()["version"] == 1
    db.rollback()  # end this session's read, to see what the request committed
    [entry] = audit.entries(db, kind="definition_published", app=sales, limit=1)
    assert entry.subject == "access/access" and entry.actor_id == admin.id and entry.detail["version"] == 1

    headers = bearer(db, rep)
    listed = admin_client.get("/api/v1/apps/sales/records/deal", headers=headers).get_json()["items"]
    assert [item["id"] for item in listed] == [mine.id]
    assert "amount" not in listed[0]["data"]
    assert admin_client.get(f"/api/v1/apps/sales/records/deal/{theirs.id}", headers=headers).status_code == 404


def test_a_published_change_reads_as_sentences_in_the_history(admin_client, db, sales, admin):
    _set_up(admin_client)
    definitions.publish(db, admin, sales, "access", "access")
    body = _reps_own_deals(definitions.current_body(db, definitions.get(db, sales, "access", "access")))
    body["roles"].append({"key": "east", "label": {"en": "East region", "zh-CN": "东区"}})
    definitions.save_draft(db, admin, sales, "access", "access", body)
    definitions.publish(db, admin, sales, "access", "access")
    db.commit()
    page = admin_client.get("/apps/sales/admin/access/access/versions").get_data(as_text=True)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).replace("&#34;", '"').replace("&#39;", "'")
    assert 'Role "Rep" may now read their own "deal" records (before: as for any other entity).' in text
    assert 'Role "Rep" may no longer delete "deal" records (before: as for any other entity).' in text
    assert 'Role "Rep": field "amount" of "deal" is now hidden.' in text
    assert 'Role "East region" (east) added.' in text
    diff = admin_client.get(f"{API}/diff?from=1&to=2&locale=zh-CN").get_json()["changes"]
    assert "角色“业务员”现在可以查看自己负责的“deal”记录（之前：同其他实体）。" in [c["text"] for c in diff]


# --- scope conditions -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("condition", "refused"), [
    ({"field": "name", "op": "contains", "value": "Ac"}, [".when.op"]),  # a substring in forms, never in SQL
    ({"field": "products", "op": "eq", "value": ["crm"]}, [".when.op"]),  # a list compared whole
    ({"field": "products", "op": "in", "value": ["crm"]}, [".when.op"]),
    ({"field": "amount", "op": "gt", "value": 5}, [".when.op", ".when.field"]),
    ({"field": "notes", "op": "eq", "value": {"$field": "name"}}, [".when.value"]),
    ({"field": "products", "op": "contains", "value": "crm"}, []),
    ({"field": "stage", "op": "in", "value": ["lead", "won"]}, []),
    ({"field": "owner", "op": "eq", "value": {"$user": True}}, []),
    ({"field": "strategic", "op": "eq", "value": True}, []),
])
def test_a_scope_condition_uses_only_tests_that_mean_the_same_in_sql(db, sales, condition, refused):
    body = {"formloom": 1, "kind": "access", "key": "access",
            "roles": [{"key": "east", "entities": {"deal": {"read": {"scope": "all", "when": condition}}}}]}
    problems = definitions.check(db, sales, "access", "access", body)
    where = "$.roles[0].entities.deal.read"
    assert [p.path.removeprefix(where) for p in problems] == refused


def test_a_contains_scope_on_a_multiple_choice_field_picks_the_records_that_hold_the_value(db, sales, admin, rep):
    body = {"formloom": 1, "kind": "access", "key": "access", "roles": [
        {"key": "rep", "entities": {"deal": {"read": {"scope": "all", "when": {
            "field": "products", "op": "contains", "value": "crm"}}}}}]}
    definitions.save_and_publish(db, admin, sales, body)
    cause = Cause.for_user(admin)
    crm = records.create(db, admin, cause, sales, "deal", {"name": "With CRM", "products": ["erp", "crm"]})
    records.create(db, admin, cause, sales, "deal", {"name": "Without", "products": ["bi"]})
    db.commit()
    scope = policy(db, rep, sales).scope("deal")
    assert list(db.scalars(select(Record.id).where(Record.entity_key == "deal", scope))) == [crm.id]


# --- members of custom roles --------------------------------------------------------------------------------

def test_custom_roles_of_the_published_definition_are_offered_to_rules(admin_client, db, sales, admin):
    body = {"formloom": 1, "kind": "access", "key": "access", "roles": [{"key": "east", "label": "East"}]}
    definitions.save_and_publish(db, admin, sales, body)
    db.commit()
    rule = {"formloom": 1, "kind": "rule", "key": "watch", "label": "Watch", "entity": "deal", "enabled": False,
            "trigger": {"type": "created"}, "actions": [{"type": "notify", "to": {"role": "east"}, "title": "New"}]}
    definitions.save_draft(db, admin, sales, "rule", "watch", rule)
    db.commit()
    page = admin_client.get("/apps/sales/admin/rule/watch/").get_data(as_text=True)
    data = json.loads(re.search(r'id="builder-data">(.*?)</script>', page, re.S).group(1))
    assert "east" in data["roles"]


def test_a_wrong_grant_or_entity_name_is_explained_as_such(db, sales):
    body = {"formloom": 1, "kind": "access", "key": "access", "roles": [
        {"key": "rep", "entities": {"*": {"read": "everyone"}, "deal": {"update": {"scope": "mine"}},
                                    "Bad Key": {"read": "all"},
                                    "company": {"read": {"scope": "all", "when": {"field": "name", "op": "eq",
                                                                                  "value": "x"}}}}},
        {"key": "viewer", "entities": {"*": {"read": {"scope": "all", "when": {"field": "name", "op": "eq",
                                                                               "value": "x"}}}}}]}
    problems = {p.path: p.message for p in definitions.check(db, sales, "access", "access", body)}
    assert problems["$.roles[0].entities['*'].read"].startswith('Must be false, a scope ("own", "team" or "all"')
    assert problems["$.roles[0].entities.deal.update"].startswith("Must be false, a scope")
    assert "not valid" in problems["$.roles[0].entities"]
    assert "give it under that entity" in problems["$.roles[1].entities['*'].read.when"]  # the same place as above
    assert not any("map of languages" in m for m in problems.values())

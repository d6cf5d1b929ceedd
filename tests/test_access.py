"""Access control: roles x entities x actions x scopes x field rules, through the API and the pages.

One app (companies, deals on a pipeline) with an access definition; users in every role; three
deals owned by different reps. Each cell of the matrix is asked both ways, and the places that
could leak what a role may not see (search, pickers, the board, statistics, history, files) are
asked too.
"""
from __future__ import annotations

import pytest

from formloom.builder import definitions
from formloom.platform import auth
from formloom.platform.auth import Cause
from formloom.platform.errors import DefinitionError
from formloom.runtime import records
from tests.conftest import bearer
from tests.factories import csrf_token, login, make_pipeline_app, make_user

BASE = "/api/v1/apps/pipes"

ACCESS = {
    "formloom": 1, "kind": "access", "key": "access", "label": "Who may do what",
    "roles": [
        {"key": "rep", "label": {"en": "Sales rep", "zh-CN": "销售"},
         "entities": {"*": {"create": True, "read": "own", "update": "own", "delete": False},
                      "company": {"read": "all", "update": False}},
         "fields": {"deal": {"discount": "read_only", "lost_reason": "hidden"}}},
        {"key": "manager",
         "entities": {"*": {"create": True, "read": "team", "update": "team", "delete": "team", "export": True}}},
        {"key": "east", "label": "Qualified deals only",
         "entities": {"deal": {"read": {"scope": "all", "when": {"field": "stage", "op": "eq",
                                                                 "value": "qualified"}}}}},
        {"key": "ghost", "label": "No powers"},
    ],
}
ROLES = {"rep1": "rep", "rep2": "rep", "rep3": "rep", "boss": "manager", "viewer": "viewer",
         "east": "east", "ghost": "ghost"}


@pytest.fixture
def world(db, admin):
    """The app, its users by name, and deals d1 (rep1, qualified), d2 (rep2), d3 (rep3)."""
    app = make_pipeline_app(db, admin)
    users = {name: make_user(db, name, display_name=name.capitalize()) for name in [*ROLES, "outsider"]}
    for name, role in ROLES.items():
        auth.grant_app(db, users[name], app, role)
    auth.add_team(db, "north", "North", users["boss"], [users["rep1"], users["rep2"]])
    auth.add_team(db, "south", "South", None, [users["rep3"]])
    definitions.save_and_publish(db, admin, app, ACCESS)
    cause = Cause.for_user(admin)
    company = records.create(db, admin, cause, app, "company", {"name": "Acme Ltd"})
    deals = {}
    for i, owner in ((1, "rep1"), (2, "rep2"), (3, "rep3")):
        deals[f"d{i}"] = records.create(db, admin, cause, app, "deal", {
            "name": f"Deal {i} secretname{i}", "owner": users[owner].id, "company": company.id,
            "amount": 1000 * i, "discount": 5, "lost_reason": f"private note {i}"})
    records.update(db, admin, cause, app, deals["d1"], {"stage": "qualified"}, deals["d1"].version)
    db.commit()
    return {"app": app, "users": users, "deals": {k: d.id for k, d in deals.items()}, "company": company.id}


# name -> (deals readable, deals updatable, deals deletable, may create deals)
MATRIX = {
    "admin": ({"d1", "d2", "d3"}, {"d1", "d2", "d3"}, {"d1", "d2", "d3"}, True),
    "rep1": ({"d1"}, {"d1"}, set(), True),
    "rep2": ({"d2"}, {"d2"}, set(), True),
    "rep3": ({"d3"}, {"d3"}, set(), True),
    "boss": ({"d1", "d2"}, {"d1", "d2"}, {"d1", "d2"}, True),
    "viewer": ({"d1", "d2", "d3"}, set(), set(), False),
    "east": ({"d1"}, set(), set(), False),
    "ghost": (set(), set(), set(), False),
}


def _headers(db, world, name, admin):
    return bearer(db, admin if name == "admin" else world["users"][name])


@pytest.mark.parametrize("name", list(MATRIX))
def test_api_read_matrix(client, db, world, admin, name):
    headers = _headers(db, world, name, admin)
    readable, _, _, _ = MATRIX[name]
    listed = client.get(f"{BASE}/records/deal", headers=headers)
    if not readable and name == "ghost":
        assert listed.status_code == 403
    else:
        assert listed.status_code == 200
        assert {f"d{int(r['title'][5])}" for r in listed.get_json()["items"]} == readable
        assert listed.get_json()["total"] == len(readable)
    for key, record_id in world["deals"].items():
        response = client.get(f"{BASE}/records/deal/{record_id}", headers=headers)
        assert response.status_code == (200 if key in readable else 404), (name, key)
        history = client.get(f"{BASE}/records/deal/{record_id}/history", headers=headers)
        assert history.status_code == (200 if key in readable else 404), (name, key)


@pytest.mark.parametrize("name", list(MATRIX))
def test_api_write_matrix(client, db, world, admin, name):
    headers = _headers(db, world, name, admin)
    readable, updatable, deletable, creates = MATRIX[name]
    for key, record_id in world["deals"].items():
        current = client.get(f"{BASE}/records/deal/{record_id}", headers=_headers(db, world, "admin", admin))
        version = current.get_json()["version"]
        patched = client.patch(f"{BASE}/records/deal/{record_id}", headers=headers,
                               json={"version": version, "data": {"amount": 7777}})
        expected = 200 if key in updatable else 404 if key not in readable else 403
        assert patched.status_code == expected, (name, key, patched.get_json())
        deleted = client.delete(f"{BASE}/records/deal/{record_id}", headers=headers)
        expected = 200 if key in deletable else 404 if key not in readable else 403
        assert deleted.status_code == expected, (name, key)
        if deleted.status_code == 200:
            assert client.post(f"{BASE}/records/deal/{record_id}/restore", headers=headers).status_code == 200
    created = client.post(f"{BASE}/records/deal", headers=headers, json={"data": {"name": "New one"}})
    assert created.status_code == (201 if creates else 403), (name, created.get_json())


@pytest.mark.parametrize("name", ["rep1", "boss", "viewer", "east"])
def test_pages_match_the_api(client, db, world, name):
    login(client, name)
    readable = MATRIX[name][0]
    page = client.get("/apps/pipes/deal/").get_data(as_text=True)
    for key in world["deals"]:
        number = key[1]
        assert (f"secretname{number}" in page) == (key in readable), (name, key)
        response = client.get(f"/apps/pipes/deal/{world['deals'][key]}")
        assert response.status_code == (200 if key in readable else 404)
        edit = client.get(f"/apps/pipes/deal/{world['deals'][key]}/edit")
        assert edit.status_code == (200 if key in MATRIX[name][1] else 404 if key not in readable else 403)


def test_search_does_not_find_records_outside_the_scope(client, db, world):
    headers = bearer(db, world["users"]["rep1"])
    found = client.get(f"{BASE}/records/deal", query_string={"q": "secretname2"}, headers=headers).get_json()
    assert found["items"] == [] and found["total"] == 0
    login(client, "rep1")
    page = client.get("/apps/pipes/deal/", query_string={"q": "secretname2"}).get_data(as_text=True)
    assert "secretname2" not in page.replace('value="secretname2"', "")


def test_relation_picker_offers_only_readable_records(client, db, world):
    login(client, "east")  # east may read some deals and no companies
    assert client.get("/apps/pipes/company/lookup", query_string={"q": "Acme"}).get_json() == []
    client.post("/logout", data={"csrf_token": csrf_token(client, "/apps/pipes/")})
    login(client, "rep1")
    assert [r["title"] for r in client.get("/apps/pipes/company/lookup", query_string={"q": "Ac"}).get_json()] \
        == ["Acme Ltd"]


def test_related_record_titles_are_not_shown_to_those_who_may_not_read_them(client, db, world, admin):
    """The east role reads deal d1 but no companies: the deal's customer shows as a number."""
    login(client, "east")
    page = client.get(f"/apps/pipes/deal/{world['deals']['d1']}").get_data(as_text=True)
    assert "Acme Ltd" not in page
    assert f"#{world['company']}" in page


def test_board_and_statistics_count_only_records_in_scope(client, db, world):
    headers = bearer(db, world["users"]["boss"])
    board = client.get(f"{BASE}/pipelines/deals/board", headers=headers).get_json()
    cards = {card["title"] for column in board["columns"] for card in column["cards"]}
    assert cards == {"Deal 1 secretname1", "Deal 2 secretname2"}
    assert sum(column["total"] for column in board["columns"]) == 3000
    stats = client.get(f"{BASE}/pipelines/deals/stats", headers=headers).get_json()
    assert sum(s["entered"] for s in stats["stages"] if s["stage"] == "lead") == 2
    login(client, "rep1")
    page = client.get("/apps/pipes/pipelines/deals/").get_data(as_text=True)
    assert "secretname1" in page and "secretname2" not in page and "secretname3" not in page


def test_hidden_field_is_never_sent(client, db, world, admin):
    headers = bearer(db, world["users"]["rep1"])
    d1 = world["deals"]["d1"]
    data = client.get(f"{BASE}/records/deal/{d1}", headers=headers).get_json()["data"]
    assert "lost_reason" not in data and data["amount"] == "1000.00"
    history = client.get(f"{BASE}/records/deal/{d1}/history", headers=headers).get_json()["items"]
    assert all("lost_reason" not in item["changes"] for item in history)
    assert "private note" not in str(history)
    board = client.get(f"{BASE}/pipelines/deals/board", headers=headers).get_json()
    assert "private note" not in str(board)
    listed = client.get(f"{BASE}/records/deal", headers=headers).get_json()
    assert "private note" not in str(listed)
    login(client, "rep1")
    for url in (f"/apps/pipes/deal/{d1}", f"/apps/pipes/deal/{d1}/edit", "/apps/pipes/deal/",
                "/apps/pipes/deal/new"):
        page = client.get(url).get_data(as_text=True)
        assert "private note" not in page and "Lost reason" not in page, url
    # The manager, whose role hides nothing, sees it.
    boss = bearer(db, world["users"]["boss"])
    assert client.get(f"{BASE}/records/deal/{d1}", headers=boss).get_json()["data"]["lost_reason"] == "private note 1"


def test_hidden_field_cannot_be_filtered_sorted_or_written(client, db, world):
    headers = bearer(db, world["users"]["rep1"])
    d1 = world["deals"]["d1"]
    assert client.get(f"{BASE}/records/deal", query_string={"f.lost_reason": "private note 1"},
                      headers=headers).status_code == 400
    assert client.get(f"{BASE}/records/deal", query_string={"sort": "lost_reason"},
                      headers=headers).status_code == 400
    version = client.get(f"{BASE}/records/deal/{d1}", headers=headers).get_json()["version"]
    response = client.patch(f"{BASE}/records/deal/{d1}", headers=headers,
                            json={"version": version, "data": {"lost_reason": "overwritten"}})
    assert response.status_code == 422
    assert "lost_reason" in response.get_json()["error"]["fields"]


def test_read_only_field_shows_but_cannot_change(client, db, world):
    headers = bearer(db, world["users"]["rep1"])
    d1 = world["deals"]["d1"]
    record = client.get(f"{BASE}/records/deal/{d1}", headers=headers).get_json()
    assert record["data"]["discount"] == "5.0"
    response = client.patch(f"{BASE}/records/deal/{d1}", headers=headers,
                            json={"version": record["version"], "data": {"discount": 50}})
    assert response.status_code == 422
    assert "discount" in response.get_json()["error"]["fields"]
    unchanged = client.patch(f"{BASE}/records/deal/{d1}", headers=headers,
                             json={"version": record["version"], "data": {"discount": 5, "amount": 1234}})
    assert unchanged.status_code == 200
    login(client, "rep1")
    page = client.get(f"/apps/pipes/deal/{d1}/edit").get_data(as_text=True)
    field = page[page.index('id="f_discount"') - 200:page.index('id="f_discount"') + 200]
    assert "readonly" in field


def test_edit_form_keeps_hidden_values(client, db, world, admin):
    """A rep saves the edit form (which never had the hidden field): its value stays."""
    login(client, "rep1")
    d1 = world["deals"]["d1"]
    token = csrf_token(client, f"/apps/pipes/deal/{d1}/edit")
    record = records.get(db, admin, world["app"], "deal", d1)
    response = client.post(f"/apps/pipes/deal/{d1}/edit", data={
        "csrf_token": token, "_version": record.version, "f_name": "Deal 1 secretname1 renamed",
        "f_amount": "1500", "f_discount": "5", "f_owner": str(world["users"]["rep1"].id),
        "f_company": str(world["company"])})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    db.rollback()
    record = records.get(db, admin, world["app"], "deal", d1)
    assert record.data["lost_reason"] == "private note 1" and record.data["amount"] == "1500.00"


def test_nav_and_app_home_show_only_readable_entities_and_records(client, db, world):
    login(client, "east")
    page = client.get("/apps/pipes/").get_data(as_text=True)
    assert "secretname1" in page and "secretname2" not in page
    assert "/apps/pipes/company/" not in page
    assert client.get("/apps/pipes/company/").status_code == 403


def test_a_member_without_a_role_rule_and_an_outsider_get_nothing(client, db, world):
    ghost = bearer(db, world["users"]["ghost"])
    outsider = bearer(db, world["users"]["outsider"])
    d1 = world["deals"]["d1"]
    assert client.get(f"{BASE}/records/deal/{d1}", headers=ghost).status_code == 404
    assert client.get(f"{BASE}/records/deal/{d1}", headers=outsider).status_code in (403, 404)
    assert client.get(f"{BASE}/records/company", headers=ghost).status_code == 403
    assert client.get("/api/v1/apps", headers=outsider).get_json()["items"] == []


def test_token_scopes_limit_what_a_token_does(client, db, world):
    rep1 = world["users"]["rep1"]
    _, read_only = auth.create_token(db, rep1, "read only")
    token = db.scalars(auth.select(auth.ApiToken).where(auth.ApiToken.user_id == rep1.id)).all()[-1]
    token.scopes = ["records:read"]
    _, other_app = auth.create_token(db, rep1, "another app")
    db.scalars(auth.select(auth.ApiToken).where(auth.ApiToken.name == "another app")).one().scopes = \
        ["records:read", "app:elsewhere"]
    db.commit()
    d1 = world["deals"]["d1"]
    headers = {"Authorization": f"Bearer {read_only}"}
    record = client.get(f"{BASE}/records/deal/{d1}", headers=headers)
    assert record.status_code == 200
    patched = client.patch(f"{BASE}/records/deal/{d1}", headers=headers,
                           json={"version": record.get_json()["version"], "data": {"amount": 1}})
    assert patched.status_code == 403
    assert client.post(f"{BASE}/records/deal", headers=headers, json={"data": {"name": "x"}}).status_code == 403
    elsewhere = {"Authorization": f"Bearer {other_app}"}
    assert client.get(f"{BASE}/records/deal/{d1}", headers=elsewhere).status_code == 403
    assert client.get("/api/v1/apps", headers=elsewhere).get_json()["items"] == []


def test_condition_scope_follows_the_record(client, db, world, admin):
    """east reads deals in 'qualified': when d2 reaches that stage, east sees it."""
    headers = bearer(db, world["users"]["east"])
    d2 = world["deals"]["d2"]
    assert client.get(f"{BASE}/records/deal/{d2}", headers=headers).status_code == 404
    record = records.get(db, admin, world["app"], "deal", d2)
    records.update(db, admin, Cause.for_user(admin), world["app"], record, {"stage": "qualified"}, record.version)
    db.commit()
    assert client.get(f"{BASE}/records/deal/{d2}", headers=headers).status_code == 200


def test_access_definition_is_checked(db, admin):
    app = make_pipeline_app(db, admin, key="checked")
    bad = {**ACCESS, "roles": [
        {"key": "admin", "entities": {"*": {"read": "own"}}},
        {"key": "rep", "entities": {"nothing": {"read": "all"},
                                    "deal": {"read": {"scope": "all", "when": {"field": "amount", "op": "gt",
                                                                               "value": 5}}}},
         "fields": {"deal": {"nope": "hidden"}}},
        {"key": "rep", "label": "twice"},
    ]}
    with pytest.raises(DefinitionError) as caught:
        definitions.save_and_publish(db, admin, app, bad)
    paths = {p.path: p.message for p in caught.value.problems}
    assert "every permission" in paths["$.roles[0].key"]
    assert "no entity 'nothing'" in paths["$.roles[1].entities.nothing"]
    assert "$.roles[1].entities.deal.read.when.op" in paths or "$.roles[1].entities.deal.read.when.field" in paths
    assert "no field 'nope'" in paths["$.roles[1].fields.deal.nope"]
    assert "listed twice" in paths["$.roles[2].key"]


def test_files_are_read_only_through_records_one_may_read(client, db, world, admin):
    """A file id is guessable: another rep's file, or a file in a record out of scope, is 404."""
    from io import BytesIO

    rep1 = bearer(db, world["users"]["rep1"])
    rep3 = bearer(db, world["users"]["rep3"])
    uploaded = client.post(f"{BASE}/files", headers=rep3,
                           data={"file": (BytesIO(b"%PDF-1.4 secret"), "contract.pdf")},
                           content_type="multipart/form-data")
    assert uploaded.status_code == 201, uploaded.get_json()
    file_id = uploaded.get_json()["id"]
    assert client.get(f"/apps/pipes/files/{file_id}/contract.pdf", headers=rep3).status_code == 200
    assert client.get(f"/apps/pipes/files/{file_id}/contract.pdf", headers=rep1).status_code == 404


def test_the_openapi_document_shows_only_what_the_role_may_read(client, db, world):
    east = client.get("/api/v1/openapi.json", headers=bearer(db, world["users"]["east"])).get_json()
    assert "/api/v1/apps/pipes/records/deal" in east["paths"]
    assert "/api/v1/apps/pipes/records/company" not in east["paths"]
    rep = client.get("/api/v1/openapi.json", headers=bearer(db, world["users"]["rep1"])).get_json()
    deal_data = next(v for k, v in rep["components"]["schemas"].items() if k.endswith("deal.Data"))
    assert "lost_reason" not in deal_data["properties"] and "amount" in deal_data["properties"]
    assert "lost_reason" not in str(rep)


def test_webhook_payload_for_an_integration_role_leaves_out_its_hidden_fields(db, world, admin):
    from formloom.runtime.access import redact_for_role

    deal = records.get(db, admin, world["app"], "deal", world["deals"]["d1"])
    as_rep = redact_for_role(db, world["app"], "rep", deal)
    assert as_rep["data"]["amount"] == "1000.00" and "lost_reason" not in as_rep["data"]
    as_manager = redact_for_role(db, world["app"], "manager", deal)
    assert as_manager["data"]["lost_reason"] == "private note 1"
    # A role with no read on deals, or one the app does not know, gets the id and entity only.
    assert redact_for_role(db, world["app"], "ghost", deal) == {"id": deal.id, "entity": "deal"}
    assert redact_for_role(db, world["app"], "nobody", deal) == {"id": deal.id, "entity": "deal"}


def test_a_webhook_rule_may_name_the_role_whose_view_it_sends(db, world, admin):
    rule = {"formloom": 1, "kind": "rule", "key": "to_erp", "label": "To the ERP",
            "entity": "deal", "trigger": {"type": "created"},
            "actions": [{"type": "webhook", "url": "https://erp.example.com/hook", "role": "rep"}]}
    version = definitions.save_and_publish(db, admin, world["app"], rule)
    assert version.body["actions"][0]["role"] == "rep"


def test_approval_requests_of_records_out_of_scope_are_not_found(client, db, world, admin):
    """IDOR: an approval id is a number; those who are neither party nor readers get 404."""
    from formloom.runtime import pipelines

    app, d1 = world["app"], world["deals"]["d1"]
    record = records.get(db, admin, app, "deal", d1)
    records.update(db, admin, Cause.for_user(admin), app, record,
                   {"discount": 30, "close_date": "2026-12-31"}, record.version)
    rep1 = world["users"]["rep1"]
    pipelines.move(db, rep1, Cause.for_user(rep1), app, record, "proposal")
    result = pipelines.move(db, rep1, Cause.for_user(rep1), app, record, "negotiation")
    db.commit()
    request_id = result.request.id
    expected = {"rep1": 200, "boss": 200, "viewer": 200, "rep2": 404, "rep3": 404, "east": 404, "ghost": 404,
                "outsider": 404}
    for name, status in expected.items():
        headers = bearer(db, world["users"][name])
        assert client.get(f"/api/v1/approvals/{request_id}", headers=headers).status_code == status, name
        if status == 404:
            decided = client.post(f"/api/v1/approvals/{request_id}/decision", headers=headers,
                                  json={"decision": "approve", "version": 1})
            assert decided.status_code == 404, name


def test_a_file_id_of_someone_else_cannot_be_attached_to_read_it(client, db, world, admin):
    """IDOR: putting another rep's file id into one's own record is refused, so it stays unreadable."""
    from io import BytesIO

    definitions.save_and_publish(db, admin, world["app"], {
        "formloom": 1, "kind": "entity", "key": "doc", "label": "Document", "title_field": "name",
        "fields": [{"key": "name", "type": "text", "label": "Name", "required": True},
                   {"key": "files", "type": "file", "label": "Files"}]})
    db.commit()
    rep1, rep3 = bearer(db, world["users"]["rep1"]), bearer(db, world["users"]["rep3"])
    uploaded = client.post(f"{BASE}/files", headers=rep3,
                           data={"file": (BytesIO(b"%PDF-1.4 secret"), "contract.pdf")},
                           content_type="multipart/form-data").get_json()
    mine = client.post(f"{BASE}/records/doc", headers=rep3,
                       json={"data": {"name": "Rep 3's doc", "files": [uploaded["id"]]}})
    assert mine.status_code == 201
    stolen = client.post(f"{BASE}/records/doc", headers=rep1,
                         json={"data": {"name": "Mine now", "files": [uploaded["id"]]}})
    assert stolen.status_code == 422 and "files" in stolen.get_json()["error"]["fields"]
    assert client.get(f"/apps/pipes/files/{uploaded['id']}/contract.pdf", headers=rep1).status_code == 404
    boss = bearer(db, world["users"]["boss"])  # manages rep1 and rep2, not rep3
    assert client.get(f"/apps/pipes/files/{uploaded['id']}/contract.pdf", headers=boss).status_code == 404
    admin_headers = bearer(db, admin)
    assert client.get(f"/apps/pipes/files/{uploaded['id']}/contract.pdf", headers=admin_headers).status_code == 200

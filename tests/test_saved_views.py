"""Saved views: checked definitions, tabs on the list page, the API's ?view=, exports of a view."""
from __future__ import annotations

import codecs
import csv
import io
from datetime import date, timedelta

import pytest

from formloom.builder import definitions
from formloom.platform import auth
from formloom.platform.auth import Cause
from formloom.platform.errors import DefinitionError
from formloom.runtime import pipelines, records
from formloom.runtime.validation import Situation
from tests.conftest import bearer
from tests.factories import csrf_token, login, make_pipeline_app, make_user

ACCESS = {
    "formloom": 1, "kind": "access", "key": "access", "label": "Who may do what",
    "roles": [{"key": "rep", "entities": {"*": {"create": True, "read": "all", "update": "own", "export": True}},
               "fields": {"deal": {"amount": "hidden"}}}],
}
TODAY = date.today()


def view(key: str, **extra) -> dict:
    return {"formloom": 1, "kind": "view", "key": key, "label": {"en": key.replace("_", " ").title(), "zh-CN": key},
            "entity": "deal", **extra}


MY_OPEN = view("my_open", filter={"all": [{"field": "owner", "op": "eq", "value": {"$user": True}},
                                           {"field": "stage", "op": "not_in", "value": ["won", "lost"]}]},
               columns=["name", "amount", "stage"], sort="-amount")
OVERDUE = view("overdue", filter={"field": "close_date", "op": "lt", "value": {"$today": 0}},
               columns=["name", "close_date"], sort="close_date")
BOSS_ONLY = view("boss_only", roles=["manager"])
WAITING = view("waiting_approval", pending_approval=True, columns=["name", "stage"])


@pytest.fixture
def world(db, admin):
    """rep1 owns d1 (won), d2 and d4 (due yesterday); rep2 owns d3. Everyone reads every deal."""
    app = make_pipeline_app(db, admin)
    users = {name: make_user(db, name, display_name=name.capitalize()) for name in ("rep1", "rep2", "boss")}
    for name, role in (("rep1", "rep"), ("rep2", "rep"), ("boss", "manager")):
        auth.grant_app(db, users[name], app, role)
    definitions.save_and_publish(db, admin, app, ACCESS)
    for body in (MY_OPEN, OVERDUE, BOSS_ONLY, WAITING):
        definitions.save_and_publish(db, admin, app, body)
    company = records.create(db, admin, Cause.for_user(admin), app, "company", {"name": "Acme Ltd"})
    deals = {}
    for i, owner, stage, due in ((1, "rep1", "won", None), (2, "rep1", "lead", TODAY + timedelta(days=5)),
                                 (3, "rep2", "lead", TODAY - timedelta(days=3)),
                                 (4, "rep1", "proposal", TODAY - timedelta(days=1))):
        values = {"name": f"Deal {i}", "owner": users[owner].id, "company": company.id, "amount": 1000 * i,
                  "stage": stage}
        if due:
            values["close_date"] = due.isoformat()
        deals[i] = records.create(db, admin, Cause.for_user(admin), app, "deal", values)
    db.commit()
    return {"app": app, "users": users, "deals": deals}


def names(response) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return [item["title"] for item in response.get_json()["items"]]


def test_api_lists_a_view_filtered_for_the_caller(client, db, world):
    rep1, rep2 = bearer(db, world["users"]["rep1"]), bearer(db, world["users"]["rep2"])
    url = "/api/v1/apps/pipes/records/deal"
    assert names(client.get(url, query_string={"view": "my_open"}, headers=rep1)) == ["Deal 4", "Deal 2"]
    assert names(client.get(url, query_string={"view": "my_open"}, headers=rep2)) == ["Deal 3"]
    assert names(client.get(url, query_string={"view": "overdue"}, headers=rep1)) == ["Deal 3", "Deal 4"]


def test_views_endpoint_lists_the_views_a_role_is_shown_without_hidden_columns(client, db, world):
    listed = client.get("/api/v1/apps/pipes/views", headers=bearer(db, world["users"]["rep1"])).get_json()["items"]
    assert [v["key"] for v in listed] == ["my_open", "overdue", "waiting_approval"]
    assert listed[0]["columns"] == ["name", "stage"]  # amount is hidden from reps
    boss = client.get("/api/v1/apps/pipes/views", headers=bearer(db, world["users"]["boss"])).get_json()["items"]
    assert "boss_only" in [v["key"] for v in boss]
    assert next(v for v in boss if v["key"] == "my_open")["columns"] == ["name", "amount", "stage"]


def test_a_view_not_shown_to_the_role_is_not_found(client, db, world):
    response = client.get("/api/v1/apps/pipes/records/deal", query_string={"view": "boss_only"},
                          headers=bearer(db, world["users"]["rep1"]))
    assert response.status_code == 404
    assert "no view 'boss_only'" in response.get_json()["error"]["message"]


def test_list_page_shows_views_as_tabs_and_the_chosen_view(client, db, world):
    login(client, "rep1")
    page = client.get("/apps/pipes/deal/").get_data(as_text=True)
    assert 'class="tabs"' in page and "My Open" in page and "Overdue" in page and "Boss Only" not in page
    chosen = client.get("/apps/pipes/deal/?view=my_open").get_data(as_text=True)
    assert "Deal 2" in chosen and "Deal 4" in chosen
    assert "Deal 1" not in chosen and "Deal 3" not in chosen
    assert 'aria-current="page">My Open' in chosen
    assert "Amount" not in chosen  # the view's hidden column is left out for a rep
    assert client.get("/apps/pipes/deal/?view=boss_only").status_code == 404


def test_export_of_a_view_holds_its_records_and_columns(client, db, world):
    login(client, "boss")
    response = client.get("/apps/pipes/deal/export.csv?view=my_open")
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8").lstrip(codecs.BOM_UTF8.decode()))))
    assert rows[0] == ["ID", "Deal name", "Amount", "Stage"]
    assert rows[1:] == []  # the boss owns no deals
    login(client, "rep1")
    rows = list(csv.reader(io.StringIO(client.get("/apps/pipes/deal/export.csv?view=my_open")
                                       .data.decode("utf-8").lstrip(codecs.BOM_UTF8.decode()))))
    assert rows[0] == ["ID", "Deal name", "Stage"]
    assert [r[1] for r in rows[1:]] == ["Deal 4", "Deal 2"]  # by last update: reps cannot sort by the hidden amount


def test_pending_approval_view_lists_records_waiting_for_a_decision(client, db, world, admin):
    deal = world["deals"][4]
    records.update(db, admin, Cause.for_user(admin), world["app"], deal, {"discount": 30, "close_date": "2030-01-01"},
                   deal.version)
    result = pipelines.move(db, world["users"]["rep1"], Cause.for_user(world["users"]["rep1"]), world["app"], deal,
                            "negotiation", situation=Situation(user_id=world["users"]["rep1"].id))
    db.commit()
    assert result.request is not None
    listed = client.get("/api/v1/apps/pipes/records/deal", query_string={"view": "waiting_approval"},
                        headers=bearer(db, world["users"]["rep2"]))
    assert names(listed) == ["Deal 4"]


BAD = {
    "unknown_column": (view("v", columns=["name", "budget"]), "$.columns[1]", "has no field 'budget'"),
    "not_sql": (view("v", filter={"field": "name", "op": "starts_with", "value": "A"}), "$.filter.op",
                "runs in the database"),
    "field_reference": (view("v", filter={"field": "close_date", "op": "lt", "value": {"$field": "close_date"}}),
                        "$.filter.value", "cannot refer to another field"),
    "unsortable": (view("v", sort="-lost_reason"), "$.sort", "Cannot sort by 'lost_reason'"),
    "unknown_entity": (view("v", entity="invoice"), "$.entity", "no entity 'invoice'"),
    "no_pipeline": (view("v", entity="company", pending_approval=True), "$.pending_approval", "has no pipeline"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_wrong_view_is_refused_at_its_path(db, admin, world, case):
    body, path, words = BAD[case]
    with pytest.raises(DefinitionError) as caught:
        definitions.save_and_publish(db, admin, world["app"], body)
    db.rollback()
    problems = {p.path: p.message for p in caught.value.problems}
    assert path in problems, problems
    assert words in problems[path]


def test_admin_creates_a_view_in_the_builder_and_edits_it_as_json(client, db, admin, world):
    login(client, "admin")
    listing = client.get("/apps/pipes/admin/").get_data(as_text=True)
    assert "Views" in listing and "my_open" in listing
    token = csrf_token(client, "/apps/pipes/admin/view/new?entity=deal")
    made = client.post("/apps/pipes/admin/view/new", data={"csrf_token": token, "label_en": "Big deals",
                                                           "label_zh": "大单", "key": "", "entity": "deal"})
    assert made.status_code == 302 and made.headers["Location"].endswith("/admin/view/big_deals/")
    editor = client.get("/apps/pipes/admin/view/big_deals/")
    assert editor.status_code == 200 and "builder-view.js" not in editor.get_data(as_text=True)
    listed = client.get("/api/v1/apps/pipes/definitions", query_string={"kind": "view"}, headers=bearer(db, admin))
    assert "big_deals" in [d["key"] for d in listed.get_json()["items"]]


def test_the_list_sort_picker_shows_the_view_order(client, db, world):
    login(client, "boss")
    page = client.get("/apps/pipes/deal/?view=overdue").get_data(as_text=True)
    assert '<option value="close_date" selected>' in page

"""The builder's pages and the API calls they make: the admin area, new apps and definitions,
the editor's data, previews of drafts, version history with readable diffs, rollback, discard,
keys made from labels, and forms that place fields with a width, help and a show-when rule.
"""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from formloom.builder import definitions
from formloom.builder.keys import suggest_key
from formloom.platform.auth import Cause
from formloom.platform.models import App, Definition, Record
from formloom.runtime import catalog, records
from tests.factories import csrf_token, login


@pytest.fixture
def admin_client(client, admin, sales):
    login(client, "admin")
    return client


def _token(client) -> dict:
    return {"X-CSRFToken": csrf_token(client, "/apps/sales/")}


def _editor_data(client, path: str) -> dict:
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)[:500]
    raw = re.search(r'<script type="application/json" id="builder-data">(.*?)</script>', page.get_data(as_text=True), re.S)
    return json.loads(raw.group(1))


# --- keys ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("label", "taken", "key"), [
    ("Deal amount", [], "deal_amount"),
    ("商机金额", [], "shang_ji_jin_e"),
    ("客户 Tier A", [], "ke_hu_tier_a"),
    ("2nd phone", [], "field_2nd_phone"),
    ("Café owner", [], "cafe_owner"),
    ("Deal amount", ["deal_amount", "deal_amount_2"], "deal_amount_3"),
    ("!!!", [], "field"),
])
def test_keys_are_made_from_labels_in_any_language(label, taken, key):
    assert suggest_key(label, taken) == key


def test_a_made_key_is_always_a_valid_key_of_at_most_64_characters():
    key = suggest_key("x" * 100, ["x" * 64])
    assert re.fullmatch(r"[a-z][a-z0-9_]{0,63}", key) and key.endswith("_2")


def test_the_key_suggestion_api_answers_and_refuses_bad_input(admin_client):
    ok = admin_client.post("/api/v1/key-suggestion", json={"label": "拜访记录", "taken": ["bai_fang_ji_lu"]},
                           headers=_token(admin_client))
    assert ok.get_json() == {"key": "bai_fang_ji_lu_2"}
    bad = admin_client.post("/api/v1/key-suggestion", json={"label": 3}, headers=_token(admin_client))
    assert bad.status_code == 400 and "label" in bad.get_json()["error"]["message"]


# --- admin area -----------------------------------------------------------------------------------

def test_the_admin_area_lists_every_definition_by_kind_and_searches(admin_client):
    page = admin_client.get("/apps/sales/admin/").get_data(as_text=True)
    for heading in ("App settings", "Entities", "Forms", "Pipelines", "Rules"):
        assert f">{heading}</h2>" in page
    assert "/apps/sales/admin/entity/deal/" in page and "/apps/sales/admin/entity/company/" in page
    found = admin_client.get("/apps/sales/admin/?q=compan").get_data(as_text=True)
    assert "/apps/sales/admin/entity/company/" in found and "/apps/sales/admin/entity/deal/" not in found
    none = admin_client.get("/apps/sales/admin/?q=zzz").get_data(as_text=True)
    assert "Nothing matches" in none


def test_members_who_may_not_build_get_403_on_every_builder_page(client, rep, sales, db):
    definitions.save_draft(db, None, sales, "entity", "deal", definitions.current_body(
        db, definitions.get(db, sales, "entity", "deal")))
    db.commit()
    login(client, "rep")
    for path in ("/apps/sales/admin/", "/apps/sales/admin/entity/deal/", "/apps/sales/admin/entity/deal/versions",
                 "/apps/sales/admin/entity/deal/preview", "/apps/sales/admin/entity/new", "/apps/new", "/apps/import"):
        assert client.get(path).status_code == 403, path
    rollback = client.post("/apps/sales/admin/entity/deal/rollback", data={"csrf_token": csrf_token(client, "/apps/sales/"),
                                                                           "version": 1})
    assert rollback.status_code == 403
    home = client.get("/apps/sales/").get_data(as_text=True)
    assert "/apps/sales/admin/" not in home


def test_the_top_bar_offers_the_builder_to_admins(admin_client):
    assert 'href="/apps/sales/admin/"' in admin_client.get("/apps/sales/").get_data(as_text=True)


# --- new apps and definitions ---------------------------------------------------------------------

def test_a_new_app_gets_its_key_from_its_chinese_name(admin_client, db):
    answer = admin_client.post("/apps/new", data={"csrf_token": csrf_token(admin_client, "/apps/new"),
                                                  "label_en": "", "label_zh": "客户拜访", "key": ""})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/apps/ke_hu_bai_fang/admin/")
    app = db.scalar(select(App).where(App.key == "ke_hu_bai_fang"))
    assert app is not None and app.label == {"zh-CN": "客户拜访"}


def test_a_new_app_without_a_name_is_refused_and_keeps_what_was_typed(admin_client):
    answer = admin_client.post("/apps/new", data={"csrf_token": csrf_token(admin_client, "/apps/new"),
                                                  "label_en": "", "label_zh": "", "key": "mine"})
    page = answer.get_data(as_text=True)
    assert answer.status_code == 422 and "Give the app a name" in page and 'value="mine"' in page


def test_a_taken_app_key_is_refused_with_the_reason(admin_client):
    answer = admin_client.post("/apps/new", data={"csrf_token": csrf_token(admin_client, "/apps/new"),
                                                  "label_en": "Sales again", "label_zh": "", "key": "sales"})
    assert answer.status_code == 422 and "already exists" in answer.get_data(as_text=True)


@pytest.mark.parametrize("kind", ["entity", "form", "pipeline", "rule"])
def test_each_kind_starts_from_a_draft_the_editor_opens(admin_client, db, sales, kind):
    if kind == "pipeline":  # a pipeline needs a single-choice field to move through
        body = definitions.current_body(db, definitions.get(db, sales, "entity", "deal"))
        assert any(f["type"] == "select" for f in body["fields"])
        db.rollback()  # end the read so this session sees what the request commits
    token = csrf_token(admin_client, f"/apps/sales/admin/{kind}/new")
    answer = admin_client.post(f"/apps/sales/admin/{kind}/new",
                               data={"csrf_token": token, "label_en": "Visit plan", "label_zh": "拜访计划",
                                     "key": "", "entity": "deal"})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:800]
    assert answer.headers["Location"].endswith(f"/apps/sales/admin/{kind}/visit_plan/")
    definition = definitions.get(db, sales, kind, "visit_plan")
    assert definition.draft["label"] == {"en": "Visit plan", "zh-CN": "拜访计划"}
    assert definitions.check(db, sales, kind, "visit_plan", definition.draft) == []
    data = _editor_data(admin_client, answer.headers["Location"])
    assert data["kind"] == kind and data["body"] == definition.draft and data["has_draft"] is True


def test_a_pipeline_for_an_entity_without_a_choice_field_is_refused_with_the_fix(admin_client):
    token = csrf_token(admin_client, "/apps/sales/admin/pipeline/new")
    answer = admin_client.post("/apps/sales/admin/pipeline/new", data={
        "csrf_token": token, "label_en": "Companies", "label_zh": "", "key": "", "entity": "company"})
    assert answer.status_code == 422
    assert "add one to &#39;company&#39; first" in answer.get_data(as_text=True)


# --- the editor's data ----------------------------------------------------------------------------

def test_the_editor_knows_which_keys_are_frozen_and_what_each_type_takes(admin_client, db, sales):
    data = _editor_data(admin_client, "/apps/sales/admin/entity/deal/")
    assert "amount" in data["frozen_keys"] and "company" in data["frozen_keys"]
    select_type = next(t for t in data["field_types"] if t["type"] == "select")
    assert "options" in select_type["options"]["properties"] and select_type["example"]["options"]
    assert data["entities"]["company"]["fields"][0]["key"] == "name"
    assert "between" in data["operators"]["number"]
    assert data["urls"]["definition"] == "/api/v1/apps/sales/definitions/entity/deal"


def test_admin_strings_in_the_editor_data_cannot_close_the_script(admin_client, db, sales, admin):
    body = definitions.current_body(db, definitions.get(db, sales, "entity", "company"))
    body["label"] = "</script><script>alert(1)</script>"
    definitions.save_draft(db, admin, sales, "entity", "company", body)
    db.commit()
    page = admin_client.get("/apps/sales/admin/entity/company/").get_data(as_text=True)
    assert "</script><script>alert(1)" not in page
    assert _editor_data(admin_client, "/apps/sales/admin/entity/company/")["body"]["label"] == body["label"]


# --- preview --------------------------------------------------------------------------------------

def _draft_company_with_region(db, sales, admin) -> dict:
    body = definitions.current_body(db, definitions.get(db, sales, "entity", "company"))
    body["fields"] += [
        {"key": "region", "type": "select", "label": "Region",
         "options": [{"value": "north", "label": "North"}, {"value": "south", "label": "South"}]},
        {"key": "south_office", "type": "text", "label": "South office", "required": True,
         "visible_when": {"field": "region", "op": "eq", "value": "south"}},
    ]
    definitions.save_draft(db, admin, sales, "entity", "company", body)
    db.commit()
    return body


def test_the_preview_shows_the_draft_not_the_live_version(admin_client, db, sales, admin):
    _draft_company_with_region(db, sales, admin)
    page = admin_client.get("/apps/sales/admin/entity/company/preview").get_data(as_text=True)
    assert "Preview of the draft" in page and "South office" in page and 'name="f_region"' in page
    live = admin_client.get("/apps/sales/company/new").get_data(as_text=True)
    assert "South office" not in live


def test_trying_values_in_the_preview_applies_the_draft_rules_and_saves_nothing(admin_client, db, sales, admin):
    _draft_company_with_region(db, sales, admin)
    before = db.scalar(select(func.count()).select_from(Record))
    url = "/apps/sales/admin/entity/company/preview"
    missing = admin_client.post(url, data={"csrf_token": csrf_token(admin_client, url), "f_name": "Acme",
                                           "f_region": "south", "f_south_office": ""})
    assert missing.status_code == 422 and "South office is required" in missing.get_data(as_text=True)
    assert 'value="Acme"' in missing.get_data(as_text=True)  # what was typed stays
    hidden = admin_client.post(url, data={"csrf_token": csrf_token(admin_client, url), "f_name": "Acme",
                                          "f_region": "north", "f_south_office": ""})
    assert hidden.status_code == 200 and "pass every check of the draft" in hidden.get_data(as_text=True)
    assert db.scalar(select(func.count()).select_from(Record)) == before


def test_the_api_tries_values_against_the_draft(admin_client, db, sales, admin):
    _draft_company_with_region(db, sales, admin)
    url = "/api/v1/apps/sales/definitions/entity/company/try"
    bad = admin_client.post(url, json={"name": "Acme", "region": "south"}, headers=_token(admin_client))
    assert bad.status_code == 422 and bad.get_json()["errors"] == {"south_office": ["South office is required."]}
    good = admin_client.post(url, json={"name": "Acme", "region": "north"}, headers=_token(admin_client))
    assert good.get_json() == {"valid": True, "values": {"name": "Acme", "region": "north"}}


def test_a_draft_with_problems_has_no_preview_but_says_why(admin_client, db, sales, admin):
    body = definitions.current_body(db, definitions.get(db, sales, "entity", "company"))
    body["fields"].append({"key": "broken", "type": "select", "label": "Broken", "options": []})
    definitions.save_draft(db, admin, sales, "entity", "company", body)
    db.commit()
    page = admin_client.get("/apps/sales/admin/entity/company/preview")
    assert page.status_code == 422 and "fix them to see the preview" in page.get_data(as_text=True)


def test_rules_and_pipelines_have_no_form_preview(admin_client, db, pipes):
    assert admin_client.get("/apps/pipes/admin/pipeline/deals/preview").status_code == 404


# --- versions, diffs, rollback, discard -------------------------------------------------------------

def _publish_edit(db, app, admin, change) -> None:
    body = definitions.current_body(db, definitions.get(db, app, "entity", "company"))
    change(body)
    definitions.save_draft(db, admin, app, "entity", "company", body)
    definitions.publish(db, admin, app, "entity", "company")
    db.commit()


def test_the_history_page_says_what_changed_in_each_version_and_in_the_draft(admin_client, db, sales, admin):
    _publish_edit(db, sales, admin, lambda b: b["fields"].append({"key": "city", "type": "text", "label": "City"}))
    _publish_edit(db, sales, admin, lambda b: b["fields"][1].update(label="Town"))
    body = definitions.current_body(db, definitions.get(db, sales, "entity", "company"))
    body["label"] = "Organisation"
    definitions.save_draft(db, admin, sales, "entity", "company", body)
    db.commit()
    page = admin_client.get("/apps/sales/admin/entity/company/versions").get_data(as_text=True)
    assert "Version 3" in page and "Version 2" in page and "Version 1" in page
    assert "Draft, not published" in page
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert "City" in text and "Town" in text and "Organisation" in text


def test_rollback_publishes_the_old_version_again_as_a_new_one(admin_client, db, sales, admin):
    first = definitions.current_body(db, definitions.get(db, sales, "entity", "company"))
    _publish_edit(db, sales, admin, lambda b: b["fields"].append({"key": "city", "type": "text", "label": "City"}))
    url = "/apps/sales/admin/entity/company/rollback"
    answer = admin_client.post(url, data={"csrf_token": csrf_token(admin_client, "/apps/sales/"), "version": "1"})
    assert answer.status_code == 302
    db.expire_all()
    latest = catalog.published_version(db, db.get(App, sales.id), "entity", "company")
    assert latest.version == 3 and latest.body == first and latest.note == "Rollback to version 1"
    page = admin_client.get(answer.headers["Location"]).get_data(as_text=True)
    assert "Version 1 is live again, as version 3." in page and "Rollback to version 1" in page


def test_rollback_through_the_api_and_its_refusals(admin_client, db, sales, admin):
    first = definitions.current_body(db, definitions.get(db, sales, "entity", "company"))
    _publish_edit(db, sales, admin, lambda b: b["fields"].append({"key": "city", "type": "text", "label": "City"}))
    url = "/api/v1/apps/sales/definitions/entity/company/rollback"
    done = admin_client.post(url, json={"version": 1}, headers=_token(admin_client))
    assert done.status_code == 201 and done.get_json()["version"] == 3 and done.get_json()["body"] == first
    same = admin_client.post(url, json={"version": 3}, headers=_token(admin_client))
    assert same.status_code == 409 and "live version already" in same.get_json()["error"]["message"]
    missing = admin_client.post(url, json={"version": 9}, headers=_token(admin_client))
    assert missing.status_code == 404 and "no version 9" in missing.get_json()["error"]["message"]
    definitions.save_draft(db, admin, db.get(App, sales.id), "entity", "company", {**first, "label": "Draft"})
    db.commit()
    drafted = admin_client.post(url, json={"version": 2}, headers=_token(admin_client))
    assert drafted.status_code == 409 and "unpublished draft" in drafted.get_json()["error"]["message"]


def test_discard_returns_to_the_published_version_byte_for_byte(admin_client, db, sales, admin):
    api = "/api/v1/apps/sales/definitions/entity/deal"
    published = admin_client.get(api).get_json()["published"]
    before = json.dumps(published, ensure_ascii=False, sort_keys=False)
    edited = json.loads(before)
    edited["fields"].reverse()
    edited["label"] = {"zh-CN": "机会"}
    assert admin_client.put(api, json=edited, headers=_token(admin_client)).status_code == 200
    assert admin_client.delete(f"{api}/draft", headers=_token(admin_client)).get_json() == {"discarded": True}
    after = admin_client.get(api).get_json()
    assert after["draft"] is None and json.dumps(after["published"], ensure_ascii=False) == before
    data = _editor_data(admin_client, "/apps/sales/admin/entity/deal/")
    assert json.dumps(data["body"], ensure_ascii=False) == before


def test_the_diff_api_compares_versions_and_the_draft(admin_client, db, sales, admin):
    _publish_edit(db, sales, admin, lambda b: b["fields"].append({"key": "city", "type": "text", "label": "City"}))
    answer = admin_client.get("/api/v1/apps/sales/definitions/entity/company/diff?from=1&to=2").get_json()
    assert [c["code"] for c in answer["changes"]] == ["field_added"]
    assert "City" in answer["changes"][0]["text"]
    nothing = admin_client.get("/api/v1/apps/sales/definitions/entity/company/diff").get_json()
    assert nothing == {"changes": []}
    bad = admin_client.get("/api/v1/apps/sales/definitions/entity/company/diff?from=x")
    assert bad.status_code == 400


def test_one_version_can_be_read_through_the_api(admin_client, db, sales):
    answer = admin_client.get("/api/v1/apps/sales/definitions/entity/company/versions/1").get_json()
    assert answer["version"] == 1 and answer["body"]["key"] == "company"
    assert admin_client.get("/api/v1/apps/sales/definitions/entity/company/versions/7").status_code == 404


# --- forms place fields with a width, help and their own show-when --------------------------------

def test_a_form_places_fields_with_width_help_and_a_show_when_rule(admin_client, db, sales, admin, client):
    form = {"formloom": 1, "kind": "form", "key": "quick_deal", "label": "Quick deal", "entity": "deal",
            "sections": [{"label": "Deal", "fields": [
                "name",
                {"field": "amount", "width": "half", "help": {"en": "Before tax", "zh-CN": "税前"}},
                {"field": "discount", "width": "third",
                 "visible_when": {"field": "amount", "op": "gt", "value": 1000}}]}]}
    definitions.save_and_publish(db, admin, db.get(App, sales.id), form)
    db.commit()
    page = admin_client.get("/apps/sales/deal/new?form=quick_deal").get_data(as_text=True)
    assert re.search(r'class="field field-currency width-half"', page)
    assert re.search(r'class="field field-percent width-third"', page)
    assert "Before tax" in page
    logic = json.loads(re.search(r'data-logic="([^"]+)"', page).group(1).replace("&#34;", '"').replace("&quot;", '"'))
    assert logic["fields"]["f_discount"]["section_when"] == {"field": "amount", "op": "gt", "value": 1000}
    token = csrf_token(admin_client, "/apps/sales/deal/new?form=quick_deal")
    saved = admin_client.post("/apps/sales/deal/new?form=quick_deal", data={
        "csrf_token": token, "f_name": "Small", "f_amount": "500", "f_discount": "30"})
    assert saved.status_code == 302
    record = db.scalar(select(Record).where(Record.entity_key == "deal").order_by(Record.id.desc()))
    assert "discount" not in record.data  # hidden by the form's rule, so not taken


def test_a_form_item_naming_a_missing_field_or_a_bad_condition_is_reported_at_its_path(db, sales):
    form = {"formloom": 1, "kind": "form", "key": "f", "label": "F", "entity": "deal",
            "sections": [{"fields": ["name", {"field": "nope"},
                                     {"field": "amount", "visible_when": {"field": "zzz", "op": "eq", "value": 1}}]}]}
    problems = {p.path: p.message for p in definitions.check(db, sales, "form", "f", form)}
    assert "no field 'nope'" in problems["$.sections[0].fields[1].field"]
    assert any(path.startswith("$.sections[0].fields[2].visible_when") for path in problems)


def test_records_keep_their_values_when_a_rollback_removes_a_field(admin_client, db, sales, admin):
    _publish_edit(db, sales, admin, lambda b: b["fields"].append({"key": "city", "type": "text", "label": "City"}))
    app = db.get(App, sales.id)
    record = records.create(db, admin, Cause.for_user(admin), app, "company", {"name": "Acme", "city": "Hangzhou"})
    db.commit()
    answer = admin_client.post("/api/v1/apps/sales/definitions/entity/company/rollback", json={"version": 1},
                               headers=_token(admin_client))
    assert answer.status_code == 201, answer.get_json()
    db.expire_all()
    assert db.get(Record, record.id).data["city"] == "Hangzhou"
    assert db.scalar(select(func.count()).select_from(Definition).where(Definition.kind == "entity")) == 2


def test_a_draft_entity_with_a_broken_field_does_not_break_checking_what_uses_it(admin_client, db, sales, admin):
    body = definitions.current_body(db, definitions.get(db, sales, "entity", "company"))
    body["fields"].append({"key": "worth", "type": "money", "label": "Worth"})
    body["fields"].append({"type": "text", "label": "No key"})
    definitions.save_draft(db, admin, sales, "entity", "company", body)
    db.commit()
    deal = admin_client.get("/api/v1/apps/sales/definitions/entity/deal").get_json()["published"]
    answer = admin_client.post("/api/v1/apps/sales/definitions/entity/deal/check", json=deal,
                               headers=_token(admin_client))
    assert answer.status_code == 200 and answer.get_json() == {"valid": True, "problems": []}
    own = admin_client.post("/api/v1/apps/sales/definitions/entity/company/check", json=body,
                            headers=_token(admin_client)).get_json()
    assert not own["valid"] and any(p["path"].startswith("$.fields[1]") for p in own["problems"])


def test_a_rollback_that_removes_a_choice_in_use_asks_what_happens_to_those_records(admin_client, db, sales, admin):
    city = {"key": "city", "type": "select", "label": "City",
            "options": [{"value": "hz", "label": "Hangzhou"}, {"value": "sh", "label": "Shanghai"}]}
    _publish_edit(db, sales, admin, lambda b: b["fields"].append(city))
    _publish_edit(db, sales, admin, lambda b: b["fields"][-1]["options"].append({"value": "bj", "label": "Beijing"}))
    app = db.get(App, sales.id)
    record = records.create(db, admin, Cause.for_user(admin), app, "company", {"name": "Acme", "city": "bj"})
    db.commit()
    url = "/api/v1/apps/sales/definitions/entity/company/rollback"
    asked = admin_client.post(url, json={"version": 2}, headers=_token(admin_client))
    assert asked.status_code == 422
    [found] = asked.get_json()["error"]["impacts"]
    assert found["code"] == "option_removed" and found["count"] == 1 and found["targets"] == ["hz", "sh"]
    done = admin_client.post(url, json={"version": 2, "impact": {found["id"]: {"action": "migrate", "to": "sh"}}},
                             headers=_token(admin_client))
    assert done.status_code == 201, done.get_json()
    assert done.get_json()["note"] == "Rollback to version 2" and done.get_json()["impact"][0]["action"] == "migrate"
    db.expire_all()
    assert db.get(Record, record.id).data["city"] == "sh"


def test_the_import_page_creates_an_app_from_an_exported_file_or_says_what_is_wrong(admin_client, db):
    import io

    exported = admin_client.get("/api/v1/apps/sales/export").get_data()
    token = csrf_token(admin_client, "/apps/import")
    done = admin_client.post("/apps/import", data={"csrf_token": token, "key": "sales_copy",
                                                   "bundle": (io.BytesIO(exported), "sales-definitions.json")},
                             content_type="multipart/form-data")
    assert done.status_code == 302 and done.headers["Location"].endswith("/apps/sales_copy/admin/")
    copy = db.scalar(select(App).where(App.key == "sales_copy"))
    assert copy is not None and definitions.get(db, copy, "entity", "deal").published_version == 1

    broken = json.loads(exported)
    broken["definitions"][0]["fields"][0]["type"] = "money"
    refused = admin_client.post("/apps/import", data={
        "csrf_token": token, "key": "sales_other",
        "bundle": (io.BytesIO(json.dumps(broken).encode()), "broken.json")}, content_type="multipart/form-data")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "$.definitions[0].fields[0].type" in page and 'value="sales_other"' in page
    not_json = admin_client.post("/apps/import", data={"csrf_token": token, "bundle": (io.BytesIO(b"{oops"), "x.json")},
                                 content_type="multipart/form-data")
    assert not_json.status_code == 422 and "is not a JSON file" in not_json.get_data(as_text=True)
    db.rollback()
    assert db.scalar(select(App).where(App.key == "sales_other")) is None

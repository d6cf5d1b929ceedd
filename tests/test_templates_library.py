"""The bundled CRM template: listing, loading and installing (its demo data: tests/test_demo.py)."""
from __future__ import annotations

import re
from collections import Counter
from datetime import date

import pytest
from sqlalchemy import func, select

import formloom.templates_library as templates_library
from formloom.builder import definitions
from formloom.platform.errors import Conflict, DefinitionError, Forbidden, FormloomError
from formloom.platform.models import App, Definition
from formloom.runtime import catalog
from formloom.templates_library import TEMPLATES_DIR, install, list_templates, load_template
from tests.factories import make_user

CRM_ENTITIES = ["lead", "customer", "contact", "opportunity", "quotation", "contract", "payment", "follow_up",
                "ticket", "product", "target"]
DEMO_ENTITIES = ["customer", "contact", "opportunity", "follow_up"]  # what the demo data fills
TODAY = date(2026, 10, 15)


def _labels(node, path="$"):
    """Every label-like value (label, help, placeholder, description, message) in a definition, with its path."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("label", "help", "placeholder", "description") or (key == "message" and isinstance(value, dict)):
                yield f"{path}.{key}", value
            if isinstance(value, (dict, list)):
                yield from _labels(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _labels(value, f"{path}[{i}]")


@pytest.fixture
def crm(db, admin):
    app = install(db, admin)
    db.commit()
    return app


# --- listing and loading -----------------------------------------------------------------

def test_list_templates_lists_crm():
    listed = {t["name"]: t for t in list_templates()}
    assert "crm" in listed
    crm = listed["crm"]
    assert crm["label"] == {"en": "CRM", "zh-CN": "客户关系管理"}
    assert crm["version"] == "0.2.0"
    assert set(crm["description"]) == {"en", "zh-CN"}
    assert (TEMPLATES_DIR / "crm" / "app.json").is_file()


def test_load_template_orders_entities_so_relation_targets_come_first():
    template = load_template("crm")
    keys = [body["key"] for body in template["entities"]]
    assert sorted(keys) == sorted(CRM_ENTITIES)
    targets = {body["key"]: {f["target"] for f in body["fields"] if f["type"] == "relation"}
               for body in template["entities"]}

    def reaches(start: str, goal: str, seen: frozenset = frozenset()) -> bool:
        return goal in targets[start] or any(reaches(t, goal, seen | {start}) for t in targets[start] - seen)

    for i, body in enumerate(template["entities"]):
        for field in body["fields"]:
            # Relation targets come first, except inside a cycle (a lead and the customer it became).
            if field["type"] == "relation" and not reaches(field["target"], body["key"]):
                assert keys.index(field["target"]) <= i, (body["key"], field["key"])
    # Each entity's full form (key = entity key), then its quick form.
    assert [(f["entity"], f["key"]) for f in template["forms"]] == \
        [pair for k in keys for pair in ((k, k), (k, f"{k}_quick"))]
    assert template["app"]["navigation"] == CRM_ENTITIES
    assert template["app"]["template"] == {"name": "crm", "version": "0.2.0"}


def test_dependency_order_tolerates_cycles():
    a = {"key": "a", "fields": [{"key": "b", "type": "relation", "target": "b"}]}
    b = {"key": "b", "fields": [{"key": "a", "type": "relation", "target": "a"},
                                {"key": "c", "type": "relation", "target": "c"}]}
    c = {"key": "c", "fields": [{"key": "me", "type": "relation", "target": "c"}]}
    ordered = [e["key"] for e in templates_library._dependency_order([a, b, c], ["a", "b", "c"])]
    assert sorted(ordered) == ["a", "b", "c"]
    assert ordered.index("c") < ordered.index("b")


def test_unknown_template_names_the_templates():
    with pytest.raises(FormloomError) as raised:
        load_template("erp")
    assert "'erp'" in raised.value.message and "crm" in raised.value.message
    with pytest.raises(FormloomError):
        load_template("../crm")


def test_every_label_is_bilingual():
    template = load_template("crm")
    bodies = [template["app"], *template["entities"], *template["forms"], *template["pipelines"],
              *template["rules"], *template["access"]]
    missing = []
    for body in bodies:
        for path, label in _labels(body):
            if not (isinstance(label, dict) and label.get("en", "").strip() and label.get("zh-CN", "").strip()):
                missing.append(f"{body['kind']} {body['key']} {path}")
    for rule in template["rules"]:  # what people are told
        for i, action in enumerate(rule["actions"]):
            for key in ("title", "message"):
                if key in action and not (action[key].get("en") and action[key].get("zh-CN")):
                    missing.append(f"rule {rule['key']} $.actions[{i}].{key}")
    assert missing == []
    # The Chinese business terms users expect.
    zh = {body["key"]: body["label"]["zh-CN"] for body in template["entities"]}
    assert zh == {"customer": "客户", "contact": "联系人", "opportunity": "商机", "follow_up": "跟进记录",
                  "lead": "线索", "product": "产品", "quotation": "报价单", "contract": "合同", "payment": "回款",
                  "ticket": "售后工单", "target": "销售目标"}


def test_entities_have_the_fields_asked_for():
    entities = {body["key"]: {f["key"]: f for f in body["fields"]} for body in load_template("crm")["entities"]}
    customer, contact = entities["customer"], entities["contact"]
    opportunity, follow_up = entities["opportunity"], entities["follow_up"]
    assert customer["name"]["required"] and customer["owner"]["type"] == "user"
    assert [o["value"] for o in customer["tier"]["options"]] == ["a", "b", "c"]
    assert all(o.get("color") for o in customer["tier"]["options"])
    assert contact["customer"] == {**contact["customer"], "type": "relation", "target": "customer", "required": True}
    assert [o["value"] for o in opportunity["stage"]["options"]] == [
        "lead", "needs_analysis", "proposal", "negotiation", "contract", "won", "lost"]
    assert opportunity["stage"]["default"] == "lead"
    assert all(o.get("color") for o in opportunity["stage"]["options"])
    assert opportunity["amount"]["type"] == "currency" and opportunity["amount"]["min"] == 0
    assert (opportunity["probability"]["min"], opportunity["probability"]["max"]) == (0, 100)
    assert opportunity["products"]["type"] == "multiselect"
    assert [o["value"] for o in follow_up["method"]["options"]] == ["call", "visit", "wechat", "email", "meeting"]
    assert follow_up["happened_at"]["type"] == "datetime" and follow_up["happened_at"]["required"]
    assert follow_up["summary"]["required"] and follow_up["subject"]["required"]


# --- installing --------------------------------------------------------------------------

def test_install_publishes_every_entity_form_pipeline_rule_and_the_app(db, admin, crm):
    assert crm.key == "crm" and crm.label == {"en": "CRM", "zh-CN": "客户关系管理"}
    rows = definitions.list_definitions(db, crm)
    template = load_template("crm")
    assert Counter(d.kind for d in rows) == {"app": 1, "entity": 11, "form": len(template["forms"]), "pipeline": 5,
                                             "rule": len(template["rules"]), "access": 1,
                                             "view": len(template["views"]), "commission": 1,
                                             "dashboard": len(template["dashboards"])}
    assert all(d.draft is None for d in rows)
    # Entities and forms at version 1; the app definition gains its navigation in version 2.
    assert {(d.kind, d.published_version) for d in rows} == {
        ("entity", 1), ("form", 1), ("pipeline", 1), ("rule", 1), ("access", 1), ("view", 1), ("commission", 1),
        ("dashboard", 1), ("app", 2)}
    template = load_template("crm")
    for body in [*template["entities"], *template["forms"], *template["pipelines"], *template["rules"],
                 *template["views"]]:
        published = catalog.published_version(db, crm, body["kind"], body["key"])
        assert published.body == body
        assert definitions.check(db, crm, body["kind"], body["key"], body) == []
    app_body = catalog.published_version(db, crm, "app", "crm").body
    assert app_body["navigation"] == CRM_ENTITIES
    assert app_body["template"] == {"name": "crm", "version": "0.2.0"}
    assert definitions.check(db, crm, "app", "crm", app_body) == []
    assert catalog.entity_keys(db, crm) == CRM_ENTITIES
    for key in DEMO_ENTITIES:  # each entity's form is its default form
        assert catalog.form_for(db, crm, catalog.entity(db, crm, key))["key"] == key


def test_installing_twice_conflicts_and_another_key_works(db, admin, crm):
    with pytest.raises(Conflict) as raised:
        install(db, admin, "crm")
    assert "'crm' already exists" in raised.value.message
    second = install(db, admin, "crm", app_key="crm_two")
    db.commit()
    assert second.key == "crm_two"
    assert catalog.published_version(db, second, "app", "crm_two").body["navigation"] == CRM_ENTITIES
    assert db.scalar(select(func.count()).select_from(App)) == 2


def test_a_failing_install_leaves_nothing_behind(db, admin, monkeypatch):
    real = templates_library.load_template

    def broken(name):
        template = real(name)
        template["forms"][-1]["sections"][0]["fields"].append("no_such_field")
        return template

    monkeypatch.setattr(templates_library, "load_template", broken)
    with pytest.raises(DefinitionError):
        install(db, admin)
    db.commit()
    assert db.scalar(select(App).where(App.key == "crm")) is None
    assert db.scalar(select(func.count()).select_from(Definition)) == 0


def test_members_cannot_install(db, admin):
    member = make_user(db, "member")
    with pytest.raises(Forbidden):
        install(db, member)


# --- the 0.2.0 process: leads to after-sales -----------------------------------------------

def test_the_new_entities_carry_the_agreed_fields():
    template = load_template("crm")
    entities = {body["key"]: body for body in template["entities"]}
    fields = {key: {f["key"]: f for f in body["fields"]} for key, body in entities.items()}
    expected = {
        "lead": {"name", "contact_name", "phone", "email", "wechat", "source", "region", "industry", "score", "status",
                 "owner", "next_follow_up", "returned_at", "return_reason", "customer", "opportunity", "notes"},
        "product": {"name", "code", "line", "unit", "price", "active", "description"},
        "quotation": {"number", "opportunity", "customer", "owner", "lines", "subtotal", "discount", "total",
                      "valid_until", "status"},
        "contract": {"number", "name", "customer", "opportunity", "quotation", "owner", "amount", "product_line",
                     "signed_on", "start_date", "end_date", "signed_file", "signature", "status"},
        "payment": {"name", "contract", "customer", "owner", "installment", "due_date", "amount_due", "received_on",
                    "amount_received", "status", "notes"},
        "ticket": {"subject", "customer", "contract", "kind", "priority", "opened_at", "sla_due", "status", "owner",
                   "resolution", "satisfaction"},
        "target": {"name", "period_type", "year", "quarter", "month", "rep", "team", "amount"},
        "customer": {"credit_terms", "won_amount_12m", "tier", "lead"},
        "opportunity": {"lead", "closed_on", "product_line"},
        "follow_up": {"lead", "method", "happened_at", "by", "next_follow_up"},
    }
    for key, keys in expected.items():
        assert keys <= set(fields[key]), (key, keys - set(fields[key]))
    assert fields["lead"]["phone"]["unique"] and fields["lead"]["email"]["unique"] and fields["product"]["code"]["unique"]
    assert [o["value"] for o in fields["lead"]["region"]["options"]] == \
        [o["value"] for o in fields["customer"]["region"]["options"]]
    assert [o["value"] for o in fields["payment"]["status"]["options"]] == \
        ["planned", "partly_received", "received", "overdue", "written_off"]
    assert [c["key"] for c in fields["quotation"]["lines"]["fields"]] == \
        ["product", "description", "qty", "unit_price", "line_total"]
    pipelines = {p["key"]: p for p in template["pipelines"]}
    assert {k: (p["entity"], p["stage_field"]) for k, p in pipelines.items()} == {
        "sales": ("opportunity", "stage"), "leads": ("lead", "status"), "quotation": ("quotation", "status"),
        "contract": ("contract", "status"), "service": ("ticket", "status")}
    stages = {k: {s["key"]: s for s in p["stages"]} for k, p in pipelines.items()}
    assert (stages["leads"]["converted"]["outcome"], stages["leads"]["disqualified"]["outcome"]) == ("won", "lost")
    assert stages["quotation"]["sent"]["approval"]["when"] == {"field": "discount", "op": "gt", "value": 20}
    assert stages["contract"]["signed"]["approval"]["approvers"] == {"role": "manager"}
    assert "when" not in stages["contract"]["signed"]["approval"]  # every contract


def test_every_form_of_the_template_renders_with_its_fields(client, db, admin, crm):
    from markupsafe import escape

    from tests.factories import login

    login(client, "admin")
    template = load_template("crm")
    entities = {body["key"]: {f["key"]: f for f in body["fields"]} for body in template["entities"]}
    for form in template["forms"]:
        response = client.get(f"/apps/crm/{form['entity']}/new?form={form['key']}")
        assert response.status_code == 200, form["key"]
        page = response.get_data(as_text=True)
        for section in form["sections"]:
            if "label" in section:
                assert str(escape(section["label"]["en"])) in page, (form["key"], section["label"])
            for item in section["fields"]:
                key = item if isinstance(item, str) else item["field"]
                field = entities[form["entity"]][key]
                assert str(escape(field["label"]["en"])) in page, (form["key"], key)
                if field["type"] not in ("table", "signature", "file", "rating", "serial", "formula"):
                    assert f'name="f_{key}"' in page, (form["key"], key)


def test_a_quotation_totals_its_lines_and_takes_off_the_discount(db, admin, crm):
    from formloom.platform.auth import Cause
    from formloom.runtime import records

    cause = Cause.for_user(admin)
    customer = records.create(db, admin, cause, crm, "customer", {"name": "杭州云帆科技有限公司"})
    deal = records.create(db, admin, cause, crm, "opportunity", {"name": "云帆 CRM", "customer": customer.id})
    licence = records.create(db, admin, cause, crm, "product", {"name": "CRM 标准版", "code": "SW-001", "line": "software",
                                                                "unit": "套", "price": "19800"})
    quote = records.create(db, admin, cause, crm, "quotation", {
        "opportunity": deal.id, "customer": customer.id, "discount": "12.5",
        "lines": [{"product": licence.id, "qty": 3, "unit_price": "19800"},
                  {"description": "实施服务", "qty": 10, "unit_price": "2500.50"}]})
    db.commit()
    assert [row["line_total"] for row in quote.data["lines"]] == ["59400.00", "25005.00"]
    assert quote.data["subtotal"] == "84405.00"
    assert quote.data["total"] == "73854.38"  # 84405 × 0.875 = 73854.375, rounded half up
    assert quote.data["status"] == "draft"
    assert re.fullmatch(r"QT-\d{4}-0001", quote.data["number"]) and quote.title == quote.data["number"]

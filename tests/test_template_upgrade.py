"""Upgrading an app to a newer version of its template: additive, and every admin change is kept."""
from __future__ import annotations

import copy
import json
import shutil

import pytest
from click.testing import CliRunner
from sqlalchemy import select

import formloom.templates_library as templates_library
from formloom.builder import definitions
from formloom.platform.auth import Cause
from formloom.platform.cli import main
from formloom.platform.errors import Forbidden
from formloom.platform.models import App, Definition, Record
from formloom.runtime import catalog, records
from formloom.templates_library import TEMPLATES_DIR, install, upgrade
from formloom.templates_library.merge import merge
from tests.factories import login, make_user

BUNDLED = TEMPLATES_DIR


def _edit(path, change):
    body = json.loads(path.read_text(encoding="utf-8"))
    change(body)
    path.write_text(json.dumps(body, ensure_ascii=False), encoding="utf-8")


def _field(body, key):
    return next(f for f in body["fields"] if f["key"] == key)


def _older(folder):
    """An older CRM: no 'website' field (nor in the form), no 'consulting' product, no
    'won_deal_announce' rule, an older province label, a 14-day digest and no proposal gate."""
    crm = folder / "crm"
    _edit(crm / "app.json", lambda b: b["template"].update(version="0.0.1"))

    def customer(body):
        body["fields"] = [f for f in body["fields"] if f["key"] != "website"]
        _field(body, "province")["label"] = {"en": "Province (old)", "zh-CN": "省份（旧）"}
    _edit(crm / "entities" / "customer.json", customer)
    _edit(crm / "forms" / "customer.json",
          lambda b: b["sections"][1]["fields"].remove("website"))
    _edit(crm / "entities" / "opportunity.json",
          lambda b: _field(b, "products")["options"].pop())  # consulting
    (crm / "rules" / "won_deal_announce.json").unlink()
    _edit(crm / "rules" / "closing_this_week.json",
          lambda b: b["condition"]["all"][1].update(value={"$today": 14}))
    _edit(crm / "pipelines" / "sales.json", lambda b: b["stages"][2].pop("gate"))


@pytest.fixture
def older(tmp_path, monkeypatch):
    """Templates folder holding the older CRM, in force until the test calls ``bundled()``."""
    shutil.copytree(BUNDLED / "crm", tmp_path / "crm")
    _older(tmp_path)
    monkeypatch.setattr(templates_library, "TEMPLATES_DIR", tmp_path)
    return lambda: monkeypatch.setattr(templates_library, "TEMPLATES_DIR", BUNDLED)


def _publish(db, admin, app, kind, key, change):
    body = copy.deepcopy(catalog.published_version(db, app, kind, key).body)
    change(body)
    definitions.save_and_publish(db, admin, app, body)


def _customize(db, admin, app):
    """What an admin does to an installed CRM."""
    def customer(body):
        body["label"] = {"en": "Client", "zh-CN": "客户"}
        _field(body, "province")["label"] = {"en": "State", "zh-CN": "省份（旧）"}
        _field(body, "industry")["options"] = [o for o in _field(body, "industry")["options"]
                                               if o["value"] != "other"]
        body["fields"].append({"key": "vip_note", "type": "text", "label": {"en": "VIP note", "zh-CN": "VIP 备注"}})
    _publish(db, admin, app, "entity", "customer", customer)
    _publish(db, admin, app, "form", "customer", lambda b: b["sections"][1]["fields"].remove("address"))
    _publish(db, admin, app, "rule", "closing_this_week",
             lambda b: b["condition"]["all"][1].update(value={"$today": 3}))
    _publish(db, admin, app, "rule", "follow_up_reminder", lambda b: b.update(enabled=False))
    db.delete(catalog.get_definition(db, app, "rule", "no_contact_7_days"))
    db.flush()


def _live(db, app, kind, key):
    return catalog.published_version(db, app, kind, key).body


@pytest.fixture
def customized(db, admin, older):
    app = install(db, admin)
    db.commit()
    record = records.create(db, admin, Cause.for_user(admin), app, "customer",
                            {"name": "杭州云帆科技", "industry": "other", "province": "浙江", "address": "西湖区"})
    _customize(db, admin, app)
    db.commit()
    older()
    return app, record


def test_upgrade_keeps_every_customization(db, admin, customized):
    app, _ = customized
    upgrade.upgrade(db, admin, app)
    db.commit()
    customer = _live(db, app, "entity", "customer")
    assert customer["label"]["en"] == "Client"
    assert _field(customer, "province")["label"]["en"] == "State"
    assert "other" not in [o["value"] for o in _field(customer, "industry")["options"]]
    assert _field(customer, "vip_note")["label"]["en"] == "VIP note"
    assert "address" not in _live(db, app, "form", "customer")["sections"][1]["fields"]
    closing = _live(db, app, "rule", "closing_this_week")
    assert closing["condition"]["all"][1]["value"] == {"$today": 3}
    assert _live(db, app, "rule", "follow_up_reminder")["enabled"] is False
    assert catalog.get_definition(db, app, "rule", "no_contact_7_days") is None


def test_upgrade_adds_what_is_new(db, admin, customized):
    app, _ = customized
    upgrade.upgrade(db, admin, app)
    db.commit()
    customer = _live(db, app, "entity", "customer")
    assert _field(customer, "website")["type"] == "url"
    sections = _live(db, app, "form", "customer")["sections"]
    assert sections[1]["fields"].index("website") == sections[1]["fields"].index("email") + 1
    products = _field(_live(db, app, "entity", "opportunity"), "products")
    assert "consulting" in [o["value"] for o in products["options"]]
    assert _live(db, app, "rule", "won_deal_announce")["trigger"]["stage"] == "won"
    assert "gate" in _live(db, app, "pipeline", "sales")["stages"][2]
    assert _live(db, app, "app", app.key)["template"]["version"] == \
        templates_library.load_template("crm")["app"]["template"]["version"]


def test_upgrade_report_names_what_was_skipped(db, admin, customized):
    app, _ = customized
    report = upgrade.upgrade(db, admin, app).as_dict()
    steps = {(s["kind"], s["key"]): s for s in report["steps"]}
    assert steps[("entity", "customer")]["status"] == "merged"
    skip = next(s for s in steps[("entity", "customer")]["skipped"]
                if s["path"] == "$.fields[key=province].label.en")
    assert skip["app"] == "State" and skip["template"] != "State"
    digest = steps[("rule", "closing_this_week")]
    assert digest["status"] == "skipped" and digest["skipped"][0]["path"] == "$.condition"
    assert digest["skipped"][0]["template"]["all"][1]["value"] == {"$today": 7}
    assert steps[("rule", "no_contact_7_days")]["status"] == "skipped"
    assert "deleted" in steps[("rule", "no_contact_7_days")]["reason"]
    assert steps[("rule", "won_deal_announce")]["status"] == "added"
    assert steps[("entity", "opportunity")]["status"] == "updated"


def test_upgrade_twice_is_a_no_op(db, admin, customized):
    app, _ = customized
    upgrade.upgrade(db, admin, app)
    db.commit()
    versions = {(d.kind, d.key): d.published_version for d in definitions.list_definitions(db, app)}
    assert upgrade.available(db, app) is None
    again = upgrade.upgrade(db, admin, app)
    db.commit()
    assert [s for s in again.as_dict()["steps"] if s["status"] != "skipped"] == []
    assert {(d.kind, d.key): d.published_version for d in definitions.list_definitions(db, app)} == versions


def test_upgrade_never_loses_stored_values(db, admin, customized):
    app, record = customized
    before = dict(db.get(Record, record.id).data)
    upgrade.upgrade(db, admin, app)
    db.commit()
    db.expire_all()
    assert db.get(Record, record.id).data == before
    assert before["industry"] == "other" and before["address"] == "西湖区"


def test_uncustomized_app_gets_the_new_bodies(db, admin, older):
    app = install(db, admin)
    db.commit()
    older()
    assert upgrade.available(db, app) == ("0.0.1", templates_library.list_templates()[0]["version"])
    upgrade.upgrade(db, admin, app)
    db.commit()
    for ref, body in upgrade.template_bodies(templates_library.load_template("crm"), app.key).items():
        kind, key = ref.split("/", 1)
        assert _live(db, app, kind, key) == body, ref


def test_only_app_managers_upgrade(db, admin, customized):
    app, _ = customized
    rep = make_user(db, "rita")
    db.commit()
    with pytest.raises(Forbidden):
        upgrade.upgrade(db, rep, app)


def test_merge_keeps_both_sides_of_a_list():
    base = {"fields": ["a", "b", "c"]}
    mine = {"fields": ["c", "a", "x"]}  # reordered, removed b, added x
    theirs = {"fields": ["a", "b", "n", "c"]}
    result = merge(base, mine, theirs)
    # n goes after the nearest item before it in the template that the app still has (a); b stays removed
    assert result.body == {"fields": ["c", "a", "n", "x"]}
    assert result.added == ['$.fields["n"]'] and result.skipped == []


def test_cli_upgrade_prints_the_report(app, db, admin, customized, database_url, tmp_path):
    target, _ = customized
    env = {"FORMLOOM_INSTANCE_PATH": str(tmp_path / "instance"), "FORMLOOM_DATABASE_URL": database_url}
    dry = CliRunner().invoke(main, ["template", "upgrade", "crm", "--app", target.key, "--dry-run"], env=env)
    assert dry.exit_code == 0 and "added    rule won_deal_announce" in dry.output
    assert catalog.get_definition(db, target, "rule", "won_deal_announce") is None
    result = CliRunner().invoke(main, ["template", "upgrade", "crm", "--app", target.key], env=env)
    assert result.exit_code == 0, result.output
    assert "merged   entity customer" in result.output
    assert "skipped  rule closing_this_week" in result.output and "$.condition" in result.output
    assert "added    rule won_deal_announce" in result.output


def test_ui_preview_then_apply(client, db, admin, customized):
    target, _ = customized
    login(client, "admin")
    page = client.get(f"/apps/{target.key}/admin/")
    assert "Upgrade available (0.0.1 →" in page.get_data(as_text=True)
    preview = client.get(f"/apps/{target.key}/admin/upgrade")
    text = preview.get_data(as_text=True)
    assert preview.status_code == 200 and "won_deal_announce" in text and "$.fields[key=province].label.en" in text
    assert db.scalar(select(Definition).where(Definition.key == "won_deal_announce")) is None
    token = _csrf(text)
    done = client.post(f"/apps/{target.key}/admin/upgrade", data={"csrf_token": token}, follow_redirects=True)
    assert done.status_code == 200
    assert "won_deal_announce" in done.get_data(as_text=True)
    db.rollback()
    assert catalog.get_definition(db, db.scalar(select(App).where(App.key == target.key)), "rule",
                                  "won_deal_announce") is not None


def _csrf(html: str) -> str:
    import re

    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_ui_installs_a_template_under_the_chosen_key(client, db, admin):
    login(client, "admin")
    home = client.get("/").get_data(as_text=True)
    assert "/apps/new/template" in home
    page = client.get("/apps/new/template")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "CRM" in text and "Install a template" in text
    client.get("/apps/new/template?lang=zh-CN")
    text = client.get("/apps/new/template").get_data(as_text=True)
    assert "安装模板" in text and "客户关系管理" in text
    version = templates_library.list_templates()[0]["version"]
    assert f"v{version}" in text
    done = client.post("/apps/new/template", data={"csrf_token": _csrf(text), "template": "crm", "key": "sales_crm"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/apps/sales_crm/admin/")
    db.rollback()
    app = db.scalar(select(App).where(App.key == "sales_crm"))
    assert catalog.published_version(db, app, "entity", "customer") is not None
    again = client.post("/apps/new/template", data={"csrf_token": _csrf(text), "template": "crm", "key": "sales_crm"})
    body = again.get_data(as_text=True)
    assert again.status_code == 422 and "应用标识" in body and "sales_crm" in body and "already exists" in body
    bad = client.post("/apps/new/template", data={"csrf_token": _csrf(text), "template": "crm", "key": "Bad Key"})
    assert bad.status_code == 422 and 'aria-invalid="true"' in bad.get_data(as_text=True)


def test_ui_install_needs_manage_apps(client, db, admin):
    make_user(db, "rita")
    db.commit()
    login(client, "rita")
    assert client.get("/apps/new/template").status_code == 403
    assert db.scalar(select(App).where(App.key == "crm")) is None

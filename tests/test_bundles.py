"""Bundles: exporting an app's published definitions and importing them as a new app (service, API, CLI)."""
from __future__ import annotations

import copy
import json
import re
import shutil
from datetime import date

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from formloom import create_app
from formloom.builder import bundles, definitions
from formloom.platform import auth
from formloom.platform.cli import main
from formloom.platform.db import new_session
from formloom.platform.errors import Conflict, DefinitionError, Forbidden, FormloomError, Problem
from formloom.platform.models import App, Definition, DefinitionVersion, Record
from formloom.runtime import catalog
from formloom.templates_library import install, load_template
from formloom.templates_library.demo import load_demo_data
from tests.conftest import bearer
from tests.factories import company_body, make_user


def _crm_counts() -> dict[str, int]:
    """How many definitions of each kind the bundled CRM template publishes."""
    template = load_template("crm")
    plural = {"entities": "entity", "forms": "form", "pipelines": "pipeline", "rules": "rule", "access": "access",
              "views": "view", "commissions": "commission", "dashboards": "dashboard"}
    counts = {kind: len(template[name]) for name, kind in plural.items() if name in template}
    return {kind: n for kind, n in counts.items() if n}


CRM_COUNTS = _crm_counts()
IN_BUNDLE_ORDER = bundles.describe_counts({kind: CRM_COUNTS[kind] for kind in bundles.BUNDLE_KINDS if kind in CRM_COUNTS})


@pytest.fixture
def crm(db, admin):
    app = install(db, admin)
    db.commit()
    return app


def published(db, app) -> dict[tuple[str, str], dict]:
    """Every published body of the app, by (kind, key)."""
    out = {}
    for definition in definitions.list_definitions(db, app):
        if definition.published_version is not None:
            out[definition.kind, definition.key] = catalog.published_version(db, app, definition.kind,
                                                                             definition.key).body
    return out


def renamed(bodies: dict[tuple[str, str], dict], old: str, new: str) -> dict[tuple[str, str], dict]:
    """The bodies as they are expected after an import under another key: only the app's own key changes."""
    out = copy.deepcopy(bodies)
    app_body = out.pop(("app", old))
    out["app", new] = {**app_body, "key": new}
    return out


def table_counts(db) -> tuple[int, int, int]:
    return (db.scalar(select(func.count()).select_from(App)),
            db.scalar(select(func.count()).select_from(Definition)),
            db.scalar(select(func.count()).select_from(DefinitionVersion)))


def index_of(bundle: dict, kind: str, key: str) -> int:
    return next(i for i, b in enumerate(bundle["definitions"]) if (b["kind"], b["key"]) == (kind, key))


def problems_of(raised: pytest.ExceptionInfo) -> dict[str, list[str]]:
    return raised.value.field_messages()


# --- export ----------------------------------------------------------------------------------

def test_export_holds_the_published_bodies_in_dependency_order(db, crm):
    bundle = bundles.export_app(db, crm)
    assert set(bundle) == {"formloom", "kind", "app", "definitions", "exported_at"}
    assert (bundle["formloom"], bundle["kind"]) == (1, "bundle")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", bundle["exported_at"])
    kinds = [b["kind"] for b in bundle["definitions"]]
    assert kinds == sorted(kinds, key=bundles.BUNDLE_KINDS.index)
    for kind in bundles.BUNDLE_KINDS:
        keys = [b["key"] for b in bundle["definitions"] if b["kind"] == kind]
        assert keys == sorted(keys) and len(keys) == CRM_COUNTS.get(kind, 0)
    expected = published(db, crm)
    assert bundle["app"] == expected["app", "crm"]
    assert {(b["kind"], b["key"]): b for b in bundle["definitions"]} == \
        {k: v for k, v in expected.items() if k[0] != "app"}
    json.dumps(bundle)  # plain JSON throughout


def test_export_leaves_drafts_out_and_is_deterministic(db, admin, crm):
    before = bundles.export_app(db, crm)
    form = copy.deepcopy(catalog.published_version(db, crm, "form", "customer").body)
    form["label"] = "Changed in a draft"
    definitions.save_draft(db, admin, crm, "form", "customer", form)
    definitions.save_draft(db, admin, crm, "entity", "draft_only", company_body(key="draft_only"))
    db.commit()
    after = bundles.export_app(db, crm)
    before.pop("exported_at"), after.pop("exported_at")
    assert after == before
    assert json.dumps(after, sort_keys=True) == json.dumps(before, sort_keys=True)


# --- import ----------------------------------------------------------------------------------

def test_round_trip_under_a_new_key_in_the_same_database(db, admin, crm):
    load_demo_data(db, admin, crm, scale=0.01, today=date(2026, 10, 15))
    db.commit()
    bundle = json.loads(json.dumps(bundles.export_app(db, crm)))
    original = copy.deepcopy(bundle)

    copied = bundles.import_bundle(db, admin, bundle, app_key="crm_copy")
    db.commit()

    assert bundle == original  # the caller's bundle is not changed
    assert copied.key == "crm_copy" and copied.label == crm.label
    assert published(db, copied) == renamed(published(db, crm), "crm", "crm_copy")
    assert all(d.draft is None for d in definitions.list_definitions(db, copied))
    assert bundles.published_counts(db, copied) == CRM_COUNTS
    # Records are not part of a bundle; the copy works on its own.
    assert db.scalar(select(func.count()).select_from(Record).where(Record.app_id == crm.id)) > 0
    assert db.scalar(select(func.count()).select_from(Record).where(Record.app_id == copied.id)) == 0
    assert catalog.entity(db, copied, "opportunity").key == "opportunity"
    assert catalog.entity_keys(db, copied) == load_template("crm")["app"]["navigation"]


@pytest.fixture
def fresh_install(tmp_path, sqlite_template):
    """A second Formloom installation with its own instance folder and SQLite database."""
    instance = tmp_path / "second"
    instance.mkdir()
    shutil.copy(sqlite_template, instance / "formloom.db")
    other = create_app({"INSTANCE_PATH": str(instance), "DATABASE_URL": f"sqlite:///{instance / 'formloom.db'}",
                        "TESTING": True, "SECRET_KEY": "second-secret"})
    yield other
    other.extensions["formloom.engine"].dispose()


def test_round_trip_into_a_fresh_installation(db, crm, fresh_install):
    text = json.dumps(bundles.export_app(db, crm), ensure_ascii=False)
    with new_session(fresh_install, write=True) as other:
        boss = make_user(other, "boss", admin=True)
        imported = bundles.import_bundle(other, boss, json.loads(text))
        other.commit()
        assert imported.key == "crm"
        assert published(other, imported) == published(db, crm)
        assert other.scalar(select(func.count()).select_from(Record)) == 0
        # Exporting again from the new installation gives the same bundle.
        again = bundles.export_app(other, imported)
    first = json.loads(text)
    first.pop("exported_at"), again.pop("exported_at")
    assert again == first


def test_entities_relating_to_each_other_in_a_cycle_import(db, admin):
    a = company_body(key="a", fields=[{"key": "name", "type": "text", "label": "Name"},
                                      {"key": "b", "type": "relation", "label": "B", "target": "b"}])
    b = company_body(key="b", fields=[{"key": "name", "type": "text", "label": "Name"},
                                      {"key": "a", "type": "relation", "label": "A", "target": "a"}])
    bundle = {"formloom": 1, "kind": "bundle", "definitions": [a, b],
              "app": {"formloom": 1, "kind": "app", "key": "cycle", "label": "Cycle", "navigation": ["b", "a"]}}
    app = bundles.import_bundle(db, admin, bundle)
    db.commit()
    assert catalog.entity_keys(db, app) == ["b", "a"]
    assert published(db, app)["entity", "a"] == a


def test_the_access_definition_travels_after_the_entities_and_is_checked_against_them(db, admin):
    access = {"formloom": 1, "kind": "access", "key": "access", "label": {"en": "Access", "zh-CN": "权限"},
              "roles": [{"key": "rep", "entities": {"*": {"create": True, "read": "own"}},
                         "fields": {"company": {"name": "read_only"}}}]}
    bundle = {"formloom": 1, "kind": "bundle", "definitions": [access, company_body()],
              "app": {"formloom": 1, "kind": "app", "key": "shop", "label": "Shop"}}
    app = bundles.import_bundle(db, admin, copy.deepcopy(bundle))
    db.commit()
    assert published(db, app)["access", "access"] == access
    exported = bundles.export_app(db, app)
    assert [(b["kind"], b["key"]) for b in exported["definitions"]] == [("entity", "company"), ("access", "access")]
    assert bundles.describe_counts(bundles.published_counts(db, app)) == "1 entity, 1 access definition"

    access["roles"][0]["fields"] = {"company": {"nope": "hidden"}}
    with pytest.raises(DefinitionError) as raised:
        bundles.import_bundle(db, admin, bundle, app_key="shop_2")
    assert problems_of(raised) == {"$.definitions[0].roles[0].fields.company.nope": ["Entity 'company' has no "
                                                                                     "field 'nope'."]}


def test_a_broken_bundle_reports_every_problem_at_its_path_and_leaves_nothing(db, admin, crm):
    bundle = bundles.export_app(db, crm)
    form = index_of(bundle, "form", "contact")
    entity = index_of(bundle, "entity", "opportunity")
    rule = index_of(bundle, "rule", "won_deal_announce")
    bundle["definitions"][form]["sections"][0]["fields"][2] = "no_such_field"
    bundle["definitions"][entity]["fields"][2]["type"] = "money"
    bundle["definitions"][rule]["label"] = "Broken\x00label"
    bundle["app"]["navigation"].append("planet")
    planet = len(bundle["app"]["navigation"]) - 1
    counts = table_counts(db)

    with pytest.raises(DefinitionError) as raised:
        bundles.import_bundle(db, admin, bundle, app_key="crm_broken")

    assert raised.value.message.startswith("This bundle cannot be imported: ")
    assert raised.value.message.endswith("; nothing was imported.")
    problems = problems_of(raised)
    paths = list(problems)
    assert f"$.definitions[{form}].sections[0].fields[2]" in paths
    assert problems[f"$.definitions[{form}].sections[0].fields[2]"] == \
        ["Entity 'contact' has no field 'no_such_field'."]
    assert "not a field type" in problems[f"$.definitions[{entity}].fields[2].type"][0]
    assert "NUL character" in problems[f"$.definitions[{rule}].label"][0]
    assert problems[f"$.app.navigation[{planet}]"] == ["App 'crm_broken' has no entity 'planet'."]
    assert paths[0].startswith("$.app")  # the app first, then the definitions in bundle order
    # Nothing was written, in this session or for anyone else.
    assert table_counts(db) == counts
    assert db.scalar(select(App).where(App.key == "crm_broken")) is None
    db.commit()
    assert table_counts(db) == counts
    # The same session can go on and import the repaired bundle.
    fixed = bundles.export_app(db, crm)
    assert bundles.import_bundle(db, admin, fixed, app_key="crm_broken").key == "crm_broken"
    db.commit()


def test_a_failure_while_writing_rolls_everything_back(db, admin, crm, monkeypatch):
    bundle = bundles.export_app(db, crm)
    rule = index_of(bundle, "rule", "won_deal_announce")
    real_publish = definitions.publish

    def publish(session, actor, app, kind, key, **options):
        if (kind, key) == ("rule", "won_deal_announce"):  # late, after the entities and forms are published
            raise DefinitionError([Problem("$.actions[0]", "Refused while publishing.")])
        return real_publish(session, actor, app, kind, key, **options)

    monkeypatch.setattr(definitions, "publish", publish)
    counts = table_counts(db)
    with pytest.raises(DefinitionError) as raised:
        bundles.import_bundle(db, admin, bundle, app_key="crm_late")
    assert problems_of(raised) == {f"$.definitions[{rule}].actions[0]": ["Refused while publishing."]}
    assert table_counts(db) == counts
    assert db.scalar(select(App).where(App.key == "crm_late")) is None


def _bundle(**changes) -> dict:
    bundle = {"formloom": 1, "kind": "bundle", "definitions": [company_body()],
              "app": {"formloom": 1, "kind": "app", "key": "shop", "label": "Shop"}}
    bundle.update(changes)
    return bundle


@pytest.mark.parametrize("bundle, path, fragment", [
    ([1, 2], "$", "must be a JSON object"),
    (company_body(), "$.kind", "single entity definition, not a bundle"),
    ({"kind": "dashboard_export"}, "$.kind", 'Must be "bundle"'),
    (_bundle(formloom=2), "$.formloom", "format 2 is not supported"),
    (_bundle(extra=True), "$.extra", "Unknown property 'extra'"),
    (_bundle(app=None), "$.app", "Must be the app definition"),
    (_bundle(app={"kind": "entity", "key": "shop"}), "$.app.kind", 'Must be "app"'),
    (_bundle(definitions={"company": {}}), "$.definitions", "Must be a list"),
    (_bundle(definitions=["company"]), "$.definitions[0]", "Must be a definition"),
    (_bundle(definitions=[{"kind": "app", "key": "shop"}]), "$.definitions[0].kind", "belongs at $.app"),
    (_bundle(definitions=[{"kind": "widget", "key": "w"}]), "$.definitions[0].kind", "Unknown kind 'widget'"),
    (_bundle(definitions=[{"kind": "form"}]), "$.definitions[0].key", "'key' is required"),
    (_bundle(definitions=[{"kind": "form", "key": "X" * 70}]), "$.definitions[0].key", "not a valid key"),
    (_bundle(definitions=[company_body(), company_body(label="Again")]), "$.definitions[1].key",
     "The entity 'company' is already at $.definitions[0]"),
    (_bundle(app={"formloom": 1, "kind": "app", "label": "No key"}), "$.app.key", "not a valid app key"),
])
def test_what_is_not_a_bundle_is_refused_clearly(db, admin, bundle, path, fragment):
    counts = table_counts(db)
    with pytest.raises(DefinitionError) as raised:
        bundles.import_bundle(db, admin, bundle)
    assert any(fragment in m for m in problems_of(raised).get(path, [])), problems_of(raised)
    assert table_counts(db) == counts


def test_an_existing_app_key_is_a_conflict_naming_the_way_out(db, admin, crm):
    with pytest.raises(Conflict) as raised:
        bundles.import_bundle(db, admin, bundles.export_app(db, crm))
    message = raised.value.message
    assert "An app with key 'crm' already exists" in message
    assert "--key crm_2" in message and "?key=crm_2" in message


def test_a_bad_new_key_and_a_member_are_refused(db, admin, crm):
    bundle = bundles.export_app(db, crm)
    with pytest.raises(FormloomError, match="The new app key 'Not A Key' is not valid"):
        bundles.import_bundle(db, admin, bundle, app_key="Not A Key")
    member = make_user(db, "mia")
    auth.grant_app(db, member, crm)
    with pytest.raises(Forbidden):
        bundles.import_bundle(db, member, bundle, app_key="crm_member")


def test_describe_counts():
    assert bundles.describe_counts(CRM_COUNTS) == ("11 entities, 22 forms, 5 pipelines, 15 rules, 1 access definition, "
                                                   "8 views, 1 commission plan, 5 dashboards")
    assert bundles.describe_counts({"entity": 1}) == "1 entity"
    assert bundles.describe_counts({}) == "no definitions"


# --- API -------------------------------------------------------------------------------------

def test_api_export_is_a_download_for_readers_of_the_app(client, db, crm, admin_headers, outsider_headers):
    response = client.get("/api/v1/apps/crm/export", headers=admin_headers)
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == 'attachment; filename="crm-definitions.json"'
    body = response.get_json()
    assert body["kind"] == "bundle" and body["app"]["key"] == "crm"
    assert len(body["definitions"]) == sum(CRM_COUNTS.values())

    member = make_user(db, "mia")
    auth.grant_app(db, member, crm)
    db.commit()
    assert client.get("/api/v1/apps/crm/export", headers=bearer(db, member)).status_code == 200
    denied = client.get("/api/v1/apps/crm/export", headers=outsider_headers)
    assert denied.status_code == 403 and denied.get_json()["error"]["code"] == "forbidden"
    assert client.get("/api/v1/apps/planet/export", headers=admin_headers).status_code == 404
    assert client.get("/api/v1/apps/crm/export").status_code == 401


def test_api_import_creates_the_app_or_says_why_not(client, db, crm, admin_headers, rep_headers):
    bundle = client.get("/api/v1/apps/crm/export", headers=admin_headers).get_json()

    created = client.post("/api/v1/apps/import?key=crm_two", json=bundle, headers=admin_headers)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["key"] == "crm_two"
    assert created.get_json()["definitions"] == CRM_COUNTS
    db.rollback()
    two = catalog.get_app(db, "crm_two")
    assert published(db, two) == renamed(published(db, crm), "crm", "crm_two")

    again = client.post("/api/v1/apps/import?key=crm_two", json=bundle, headers=admin_headers)
    assert again.status_code == 409
    assert "'crm_two' already exists" in again.get_json()["error"]["message"]
    assert "?key=crm_two_2" in again.get_json()["error"]["message"]
    taken = client.post("/api/v1/apps/import", json=bundle, headers=admin_headers)
    assert taken.status_code == 409 and "'crm' already exists" in taken.get_json()["error"]["message"]

    member = client.post("/api/v1/apps/import?key=crm_rep", json=bundle, headers=rep_headers)
    assert member.status_code == 403

    broken = copy.deepcopy(bundle)
    form = index_of(broken, "form", "customer")
    broken["definitions"][form]["entity"] = "planet"
    refused = client.post("/api/v1/apps/import?key=crm_three", json=broken, headers=admin_headers)
    assert refused.status_code == 422
    error = refused.get_json()["error"]
    assert error["code"] == "definition_invalid"
    assert list(error["fields"]) == [f"$.definitions[{form}].entity"]
    assert "has no entity 'planet'" in error["fields"][f"$.definitions[{form}].entity"][0]
    db.rollback()
    assert db.scalar(select(App).where(App.key == "crm_three")) is None

    not_json = client.post("/api/v1/apps/import", data="crm", content_type="text/plain", headers=admin_headers)
    assert not_json.status_code == 400 and "must be a bundle" in not_json.get_json()["error"]["message"]
    bad_key = client.post("/api/v1/apps/import?key=Big Key", json=bundle, headers=admin_headers)
    assert bad_key.status_code == 400 and "is not valid" in bad_key.get_json()["error"]["message"]


def test_api_import_refuses_a_body_over_the_limit(app, client, admin_headers):
    app.config["BUNDLE_MAX_MB"] = 1
    big = {**_bundle(), "padding": "x" * (1024 * 1024)}
    response = client.post("/api/v1/apps/import", json=big, headers=admin_headers)
    assert response.status_code == 413
    assert "the limit is 1 MB (setting BUNDLE_MAX_MB)" in response.get_json()["error"]["message"]


# --- CLI -------------------------------------------------------------------------------------

@pytest.fixture
def cli(tmp_path, database_url):
    """Run ``formloom`` in this process against the test database."""
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, ["--instance", str(tmp_path / "cli"), *args],
                             env={"FORMLOOM_DATABASE_URL": database_url})

    return run


def test_cli_export_and_import(cli, db, crm, tmp_path):
    target = tmp_path / "crm-definitions.json"
    exported = cli("app", "export", "crm", "-o", str(target))
    assert exported.exit_code == 0, exported.output
    assert exported.stdout == f"Exported app 'crm' to {target}: {IN_BUNDLE_ORDER}.\n"
    from_file = json.loads(target.read_text(encoding="utf-8"))
    assert "客户关系管理" in target.read_text(encoding="utf-8")  # readable, not \u-escaped

    printed = cli("app", "export", "crm")
    assert printed.exit_code == 0
    from_stdout = json.loads(printed.stdout)
    from_file.pop("exported_at"), from_stdout.pop("exported_at")
    assert from_stdout == from_file

    imported = cli("app", "import", str(target), "--key", "crm_cli")
    assert imported.exit_code == 0, imported.output
    assert imported.stdout == f"Imported app 'crm_cli' from {target}: {IN_BUNDLE_ORDER}.\n"
    db.rollback()
    assert published(db, catalog.get_app(db, "crm_cli")) == renamed(published(db, crm), "crm", "crm_cli")

    taken = cli("app", "import", str(target))
    assert taken.exit_code == 1
    assert "An app with key 'crm' already exists" in taken.stderr and "--key crm_2" in taken.stderr


def test_cli_import_prints_every_problem_and_fails(cli, db, crm, tmp_path):
    bundle = bundles.export_app(db, crm)
    form = index_of(bundle, "form", "contact")
    entity = index_of(bundle, "entity", "customer")
    bundle["definitions"][form]["sections"][0]["fields"][2] = "no_such_field"
    bundle["definitions"][entity]["title_field"] = "nope"
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(bundle), encoding="utf-8")
    counts = table_counts(db)
    db.rollback()

    result = cli("app", "import", str(path), "--key", "crm_broken")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "Error: This bundle cannot be imported: 2 problems; nothing was imported."
    assert f"  $.definitions[{entity}].title_field: Title field 'nope' is not a field of this entity." in lines
    assert f"  $.definitions[{form}].sections[0].fields[2]: Entity 'contact' has no field 'no_such_field'." in lines
    assert table_counts(db) == counts

    path.write_text("{not json", encoding="utf-8")
    unreadable = cli("app", "import", str(path))
    assert unreadable.exit_code == 1 and "cannot be read as a JSON bundle" in unreadable.stderr
    missing = cli("app", "export", "planet")
    assert missing.exit_code == 1 and "There is no app 'planet'." in missing.stderr

"""The CRM template's access definition for the new entities: reps keep to their own quotations,
contracts, payments and tickets but see and claim the leads in the public pool; managers work on
their team; finance reads contracts and keeps the payments."""
from __future__ import annotations

import pytest

from formloom.platform import auth
from formloom.platform.auth import Cause
from formloom.runtime import records
from formloom.templates_library import install
from tests.conftest import bearer
from tests.factories import login, make_user

BASE = "/api/v1/apps/crm"


@pytest.fixture
def world(db, admin):
    """Reps li and emma (East, managed by boss), rep wang (South, no manager), finance; their records."""
    app = install(db, admin)
    users = {name: make_user(db, name, display_name=name) for name in ("li", "emma", "wang", "boss", "fin")}
    for name, role in (("li", "rep"), ("emma", "rep"), ("wang", "rep"), ("boss", "manager"), ("fin", "finance")):
        auth.grant_app(db, users[name], app, role)
    auth.add_team(db, "east", "East", users["boss"], [users["li"], users["emma"]])
    auth.add_team(db, "south", "South", None, [users["wang"]])
    cause = Cause.for_user(admin)

    def make(entity, values):
        return records.create(db, admin, cause, app, entity, values).id

    ids = {}
    for rep in ("li", "emma", "wang"):
        owner = users[rep].id
        customer = make("customer", {"name": f"{rep} 客户有限公司", "owner": owner})
        deal = make("opportunity", {"name": f"{rep} deal", "customer": customer, "owner": owner})
        ids[f"quotation_{rep}"] = make("quotation", {"opportunity": deal, "customer": customer, "owner": owner,
                                                      "lines": [{"description": "Licence", "qty": 1,
                                                                 "unit_price": "1000"}]})
        contract = make("contract", {"name": f"{rep} contract", "customer": customer, "amount": "1000",
                                     "owner": owner})
        ids[f"contract_{rep}"] = contract
        ids[f"payment_{rep}"] = make("payment", {"name": f"{rep} · 1/1", "contract": contract, "owner": owner,
                                                 "due_date": "2026-12-31", "amount_due": "1000"})
        ids[f"ticket_{rep}"] = make("ticket", {"subject": f"{rep} ticket", "customer": customer, "owner": owner})
        ids[f"lead_{rep}"] = make("lead", {"name": f"{rep} lead", "owner": owner})
    ids["lead_pool"] = make("lead", {"name": "Pool lead"})  # no owner: in the public pool
    ids["product"] = make("product", {"name": "CRM 标准版", "code": "SW-001", "price": "19800"})
    ids["target"] = make("target", {"name": "2026 Q3 · li", "period_type": "quarter", "year": 2026, "quarter": 3,
                                    "rep": users["li"].id, "amount": "500000"})
    db.commit()
    return {"app": app, "users": users, "ids": ids}


def title(db, world, key: str) -> str:
    from formloom.platform.models import Record

    return db.get(Record, world["ids"][key]).title


def titles(client, headers, entity) -> set[str]:
    response = client.get(f"{BASE}/records/{entity}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return {item["title"] for item in response.get_json()["items"]}


def test_a_rep_reads_only_their_own_quotations(client, db, world):
    li = bearer(db, world["users"]["li"])
    ids = world["ids"]
    assert client.get(f"{BASE}/records/quotation/{ids['quotation_li']}", headers=li).status_code == 200
    assert client.get(f"{BASE}/records/quotation/{ids['quotation_emma']}", headers=li).status_code == 404
    listed = client.get(f"{BASE}/records/quotation", headers=li).get_json()
    assert [item["id"] for item in listed["items"]] == [ids["quotation_li"]] and listed["total"] == 1
    for entity in ("contract", "payment", "ticket"):
        assert client.get(f"{BASE}/records/{entity}/{ids[f'{entity}_li']}", headers=li).status_code == 200
        assert client.get(f"{BASE}/records/{entity}/{ids[f'{entity}_emma']}", headers=li).status_code == 404


def test_a_rep_sees_their_leads_and_the_pool_and_can_claim_from_it(client, db, world):
    li, emma = bearer(db, world["users"]["li"]), bearer(db, world["users"]["emma"])
    ids = world["ids"]
    assert titles(client, li, "lead") == {"li lead", "Pool lead"}
    assert client.get(f"{BASE}/records/lead/{ids['lead_emma']}", headers=li).status_code == 404
    pool = client.get(f"{BASE}/records/lead/{ids['lead_pool']}", headers=li).get_json()
    claimed = client.patch(f"{BASE}/records/lead/{ids['lead_pool']}", headers=li,
                           json={"version": pool["version"], "data": {"owner": world["users"]["li"].id}})
    assert claimed.status_code == 200, claimed.get_json()
    # Claimed, the lead has left the pool: emma no longer sees it.
    assert titles(client, emma, "lead") == {"emma lead"}
    assert client.get(f"{BASE}/records/lead/{ids['lead_pool']}", headers=emma).status_code == 404


def test_the_lead_pages_show_the_pool_to_every_rep(client, db, world):
    login(client, "emma")
    page = client.get("/apps/crm/lead/").get_data(as_text=True)
    assert "Pool lead" in page and "emma lead" in page and "li lead" not in page


def test_reps_read_products_and_targets_but_do_not_change_them(client, db, world):
    li = bearer(db, world["users"]["li"])
    ids = world["ids"]
    assert titles(client, li, "product") == {"CRM 标准版"}
    assert titles(client, li, "target") == {"2026 Q3 · li"}
    product = client.get(f"{BASE}/records/product/{ids['product']}", headers=li).get_json()
    patched = client.patch(f"{BASE}/records/product/{ids['product']}", headers=li,
                           json={"version": product["version"], "data": {"price": "1"}})
    assert patched.status_code == 403
    assert client.post(f"{BASE}/records/target", headers=li,
                       json={"data": {"name": "Mine", "year": 2026, "period_type": "year", "amount": "1"}}
                       ).status_code == 403


def test_a_manager_works_on_the_team_and_sees_every_lead(client, db, world):
    boss = bearer(db, world["users"]["boss"])
    assert titles(client, boss, "quotation") == {title(db, world, "quotation_li"), title(db, world, "quotation_emma")}
    assert titles(client, boss, "contract") == {title(db, world, "contract_li"), title(db, world, "contract_emma")}
    assert titles(client, boss, "lead") == {"li lead", "emma lead", "wang lead", "Pool lead"}
    assert client.get(f"{BASE}/records/product/{world['ids']['product']}", headers=boss).status_code == 200


def test_finance_reads_contracts_and_keeps_the_payments(client, db, world):
    fin = bearer(db, world["users"]["fin"])
    ids = world["ids"]
    assert titles(client, fin, "contract") == {title(db, world, f"contract_{r}") for r in ("li", "emma", "wang")}
    assert titles(client, fin, "payment") == {"li · 1/1", "emma · 1/1", "wang · 1/1"}
    payment = client.get(f"{BASE}/records/payment/{ids['payment_wang']}", headers=fin).get_json()
    received = client.patch(f"{BASE}/records/payment/{ids['payment_wang']}", headers=fin, json={
        "version": payment["version"],
        "data": {"status": "received", "received_on": "2026-11-30", "amount_received": "1000"}})
    assert received.status_code == 200, received.get_json()
    contract = client.get(f"{BASE}/records/contract/{ids['contract_li']}", headers=fin).get_json()
    assert client.patch(f"{BASE}/records/contract/{ids['contract_li']}", headers=fin,
                        json={"version": contract["version"], "data": {"amount": "1"}}).status_code == 403
    assert client.get(f"{BASE}/records/quotation", headers=fin).status_code == 403
    assert client.get(f"{BASE}/records/lead/{ids['lead_pool']}", headers=fin).status_code in (403, 404)

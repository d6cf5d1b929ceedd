"""The CRM template's saved views, lead pool and nightly customer tier, on a controlled clock."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from formloom.platform.auth import Cause
from formloom.platform.models import Record, ScheduledJob
from formloom.runtime import dispatch, records
from formloom.runtime.validation import Situation
from tests.conftest import bearer
from tests.factories import login

NIGHT = datetime(2026, 6, 14, 18, 0, tzinfo=UTC)  # 02:00 on 15 June in Beijing (the app's time zone)
BEIJING_DAY = date(2026, 6, 15)


def make(db, user, app, entity, values, now=NIGHT - timedelta(days=1)) -> Record:
    record = records.create(db, user, Cause.for_user(user), app, entity, values,
                            situation=Situation(user_id=user.id, now=now))
    db.commit()
    return record


def fresh(db, record) -> dict:
    db.rollback()
    db.expire_all()
    return db.get(Record, record.id).data


def titles(response) -> list[str]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return sorted(item["title"] for item in response.get_json()["items"])


# --- nightly customer tier -----------------------------------------------------------------------

def won_deal(app, db, admin, crm, customer, amount: str, closed: date) -> Record:
    """A won deal closed on ``closed`` (set after the set_closed_on rule has dated it today)."""
    deal = make(db, admin, crm, "opportunity", {"name": f"Deal {amount}", "customer": customer.id, "amount": amount,
                                                "stage": "won"})
    dispatch.run_pending(app, now=NIGHT - timedelta(days=1))
    db.rollback()
    db.expire_all()
    deal = db.get(Record, deal.id)
    records.update(db, admin, Cause.for_user(admin), crm, deal, {"closed_on": closed.isoformat()}, deal.version)
    db.commit()
    return deal


def night(app, db, when: datetime) -> None:
    dispatch.run_pending(app, now=when - timedelta(hours=12))  # schedules the next 02:00 run
    dispatch.run_pending(app, now=when)
    db.rollback()
    db.expire_all()


def test_nightly_tier_counts_deals_won_in_the_last_twelve_months(app, db, admin, crm):
    customer = make(db, admin, crm, "customer", {"name": "杭州云帆科技"})
    won_deal(app, db, admin, crm, customer, "600000", BEIJING_DAY - timedelta(days=395))  # 13 months ago
    won_deal(app, db, admin, crm, customer, "120000", BEIJING_DAY - timedelta(days=30))  # last month
    night(app, db, NIGHT)
    job = db.scalar(select(ScheduledJob).where(ScheduledJob.rule_key == "nightly_customer_tier",
                                               ScheduledJob.status == "done"))
    assert job is not None and job.due_at.replace(tzinfo=UTC) == NIGHT
    assert (fresh(db, customer)["won_amount_12m"], fresh(db, customer)["tier"]) == ("120000.00", "b")


def test_tier_climbs_c_b_a_night_by_night(app, db, admin, crm):
    customer = make(db, admin, crm, "customer", {"name": "深圳星河"})
    seen = []
    for day, amount in enumerate(("50000", "60000", "400000")):
        won_deal(app, db, admin, crm, customer, amount, BEIJING_DAY - timedelta(days=20))
        night(app, db, NIGHT + timedelta(days=day))
        seen.append(fresh(db, customer)["tier"])
    assert seen == ["c", "b", "a"]


# --- lead pool -------------------------------------------------------------------------------------

def test_rep_claims_a_pool_lead_and_a_colleague_is_told_who_was_first(client, db, admin, crm, team):
    li, emma, _ = team
    lead = make(db, admin, crm, "lead", {"name": "王伟", "phone": "+86 138-0000-0001"})
    url = f"/api/v1/apps/crm/records/lead/{lead.id}/claim"
    assert titles(client.get("/api/v1/apps/crm/records/lead", query_string={"view": "lead_pool"},
                             headers=bearer(db, emma))) == ["王伟"]
    assert client.post(url, headers=bearer(db, li)).status_code == 200
    late = client.post(url, headers=bearer(db, emma))
    assert late.status_code == 409 and "already claimed by li.wei" in late.get_json()["error"]["message"]
    assert titles(client.get("/api/v1/apps/crm/records/lead", query_string={"view": "my_leads"},
                             headers=bearer(db, li))) == ["王伟"]
    back = client.post(f"/api/v1/apps/crm/records/lead/{lead.id}/return", json={"reason": "客户暂无预算"},
                       headers=bearer(db, li))
    assert back.status_code == 200
    assert fresh(db, lead)["return_reason"] == "客户暂无预算" and fresh(db, lead).get("owner") is None


def test_crm_lead_list_shows_the_views_as_tabs_and_links_the_pool(client, db, crm, team):
    login(client, "li.wei")
    page = client.get("/apps/crm/lead/").get_data(as_text=True)
    for words in ("My leads", "Overdue follow-ups", "Public pool", "/apps/crm/pool/lead/"):
        assert words in page
    assert client.get("/apps/crm/pool/lead/").status_code == 200


# --- the other CRM views -----------------------------------------------------------------------------

def test_overdue_payments_and_expiring_contracts_views(client, db, admin, crm, team):
    today = date.today()
    customer = make(db, admin, crm, "customer", {"name": "Acme"})
    contract = make(db, admin, crm, "contract", {"name": "Soon over", "customer": customer.id, "amount": "1000",
                                                 "end_date": (today + timedelta(days=20)).isoformat()})
    far = make(db, admin, crm, "contract", {"name": "Far away", "customer": customer.id, "amount": "1000",
                                            "end_date": (today + timedelta(days=90)).isoformat()})
    for signed in (contract, far):  # running contracts (signing has its own tests; here only the dates count)
        signed.data = {**signed.data, "status": "executing"}
    db.commit()
    for name, due, status in (("Late", today - timedelta(days=3), "planned"),
                              ("Paid", today - timedelta(days=3), "received"),
                              ("Later", today + timedelta(days=3), "planned")):
        paid = {"received_on": today.isoformat(), "amount_received": "100"} if status == "received" else {}
        make(db, admin, crm, "payment", {"name": name, "contract": contract.id, "due_date": due.isoformat(),
                                         "amount_due": "100", "status": status, **paid})
    boss = bearer(db, team[2])
    url = "/api/v1/apps/crm/records/{}"
    assert titles(client.get(url.format("payment"), query_string={"view": "payments_overdue"},
                             headers=bearer(db, admin))) == ["Late"]
    expiring = client.get(url.format("contract"), query_string={"view": "contracts_expiring"},
                          headers=bearer(db, admin)).get_json()["items"]
    assert [item["data"]["name"] for item in expiring] == ["Soon over"]
    assert "contracts_expiring" in [v["key"] for v in client.get("/api/v1/apps/crm/views", headers=boss)
                                    .get_json()["items"]]

"""The CRM template's process rules at work, on a controlled clock: new leads handed out in turn,
lead follow-up reminders, idle leads back to the public pool, deals dated when they close and an
onboarding ticket for each won deal, contract renewal reminders, overdue payments, ticket deadlines."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from formloom.platform.auth import Cause
from formloom.platform.models import Notification, Record, RuleRun
from formloom.runtime import dispatch, pipelines, records
from formloom.runtime.validation import Situation

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Beijing


def notes(db, user) -> list[str]:
    db.rollback()
    db.expire_all()
    return list(db.scalars(select(Notification.title).where(Notification.user_id == user.id).order_by(Notification.id)))


def make(db, user, app, entity, values, now=T0):
    record = records.create(db, user, Cause.for_user(user), app, entity, values,
                            situation=Situation(user_id=user.id, now=now))
    db.commit()
    return record


def data(db, record) -> dict:
    db.rollback()
    db.expire_all()
    return db.get(Record, record.id).data


def runs(db, rule_key: str) -> list[str]:
    db.rollback()
    return [r.status for r in db.scalars(select(RuleRun).where(RuleRun.rule_key == rule_key))]


# --- leads -----------------------------------------------------------------------------------

def test_leads_without_an_owner_are_handed_to_the_reps_in_turn(app, db, admin, crm, team):
    li, emma, boss = team
    made = [make(db, admin, crm, "lead", {"name": f"Lead {i}", "phone": f"+86 138-0000-000{i}"}) for i in range(3)]
    kept = make(db, admin, crm, "lead", {"name": "Boss's own lead", "owner": boss.id})
    dispatch.run_pending(app, now=T0)
    assert [data(db, r)["owner"] for r in made] == [li.id, emma.id, li.id]
    assert data(db, kept)["owner"] == boss.id
    assert notes(db, li) == ["New lead for you: Lead 0", "New lead for you: Lead 2"]
    assert notes(db, emma) == ["New lead for you: Lead 1"]
    assert runs(db, "assign_new_leads").count("skipped") == 1  # the lead that had an owner


def test_the_lead_owner_is_reminded_at_nine_on_the_follow_up_date(app, db, admin, crm, team):
    li = team[0]
    make(db, li, crm, "lead", {"name": "王伟", "owner": li.id, "next_follow_up": "2026-03-05"})
    make(db, li, crm, "lead", {"name": "Dead end", "owner": li.id, "next_follow_up": "2026-03-05",
                               "status": "disqualified"})
    nine_beijing = datetime(2026, 3, 5, 1, 0, tzinfo=UTC)
    dispatch.run_pending(app, now=nine_beijing - timedelta(minutes=1))
    assert "Follow up this lead today: 王伟" not in notes(db, li)
    dispatch.run_pending(app, now=nine_beijing)
    assert notes(db, li).count("Follow up this lead today: 王伟") == 1
    assert "Follow up this lead today: Dead end" not in notes(db, li)


def test_a_lead_without_a_follow_up_for_30_days_goes_back_to_the_pool(app, db, admin, crm, team):
    li, _emma, boss = team
    idle = make(db, li, crm, "lead", {"name": "Idle lead", "owner": li.id})
    busy = make(db, li, crm, "lead", {"name": "Busy lead", "owner": li.id})
    lost = make(db, li, crm, "lead", {"name": "Lost lead", "owner": li.id, "status": "disqualified"})
    make(db, li, crm, "follow_up", {"subject": "Called", "lead": busy.id, "happened_at": "2026-03-20T02:00:00Z",
                                    "summary": "Wants a demo next month."}, now=T0 + timedelta(days=18))
    dispatch.run_pending(app, now=T0 + timedelta(days=29))
    assert data(db, idle)["owner"] == li.id

    moment = T0 + timedelta(days=30, minutes=1)
    dispatch.run_pending(app, now=moment)
    returned = data(db, idle)
    assert returned.get("owner") is None
    assert db.get(Record, idle.id).owner_id is None  # owned by no one: the last owner keeps no hold on it
    assert returned["returned_at"] == moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "30" in returned["return_reason"]
    title = "Lead returned to the pool after 30 days without a follow-up: Idle lead"
    assert title in notes(db, li) and title in notes(db, boss)
    assert data(db, busy)["owner"] == li.id  # its follow-up restarted the 30 days
    assert data(db, lost)["owner"] == li.id  # disqualified leads stay put

    # The follow-up logged on day 18 started its 30 days again.
    dispatch.run_pending(app, now=T0 + timedelta(days=47))
    assert data(db, busy)["owner"] == li.id
    dispatch.run_pending(app, now=T0 + timedelta(days=18 + 30, minutes=1))
    assert data(db, busy).get("owner") is None


# --- opportunities ---------------------------------------------------------------------------

def deal(db, user, app, name, **values):
    customer = make(db, user, app, "customer", {"name": f"{name} 有限公司", "owner": user.id})
    return make(db, user, app, "opportunity", {"name": name, "customer": customer.id, "owner": user.id, **values})


def test_a_won_deal_is_dated_and_opens_an_onboarding_ticket_for_its_customer(app, db, admin, crm, team):
    li = team[0]
    won = deal(db, li, crm, "Big win", stage="contract", amount="50000", products=["licence"],
               expected_close="2026-03-31")
    moment = T0 + timedelta(days=3)
    pipelines.move(db, li, Cause.for_user(li), crm, won, "won", checklist=["contract_signed"],
                   situation=Situation(user_id=li.id, now=moment))
    db.commit()
    dispatch.run_pending(app, now=moment)
    assert data(db, won)["closed_on"] == "2026-03-05"
    tickets = db.scalars(select(Record).where(Record.app_id == crm.id, Record.entity_key == "ticket")).all()
    assert len(tickets) == 1
    ticket = tickets[0].data
    assert ticket["subject"] == "上线交付 Onboarding: Big win"
    assert (ticket["kind"], ticket["status"], ticket["priority"]) == ("onboarding", "open", "normal")
    assert ticket["customer"] == won.data["customer"] and ticket["owner"] == li.id
    assert tickets[0].owner_id == li.id
    # The ticket's own rule gave it its deadline: normal priority, 72 hours.
    assert ticket["opened_at"] == moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert ticket["sla_due"] == (moment + timedelta(hours=72)).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_lost_deal_is_dated_without_a_ticket(app, db, admin, crm, team):
    li = team[0]
    gone = deal(db, li, crm, "Gone")
    moment = T0 + timedelta(days=1)
    pipelines.move(db, li, Cause.for_user(li), crm, gone, "lost", values={"lost_reason": "Price"},
                   situation=Situation(user_id=li.id, now=moment))
    db.commit()
    dispatch.run_pending(app, now=moment)
    assert data(db, gone)["closed_on"] == "2026-03-03"
    assert db.scalars(select(Record).where(Record.entity_key == "ticket")).all() == []
    assert runs(db, "won_deal_onboarding_ticket") == []


# --- contracts, payments, tickets ------------------------------------------------------------

def test_the_contract_owner_is_reminded_30_days_before_the_end(app, db, admin, crm, team):
    li = team[0]
    customer = make(db, li, crm, "customer", {"name": "杭州云帆科技有限公司", "owner": li.id})
    make(db, li, crm, "contract", {"name": "Yunfan licence", "customer": customer.id, "amount": "120000",
                                   "start_date": "2025-04-11", "end_date": "2026-04-10", "status": "executing"})
    make(db, li, crm, "contract", {"name": "Never signed", "customer": customer.id, "amount": "1000",
                                   "end_date": "2026-04-10"})
    nine_beijing = datetime(2026, 3, 11, 1, 0, tzinfo=UTC)  # 2026-04-10 minus 30 days
    dispatch.run_pending(app, now=nine_beijing - timedelta(minutes=1))
    assert notes(db, li) == []
    dispatch.run_pending(app, now=nine_beijing)
    # A contract is named by its number; the unsigned draft gets no reminder.
    assert notes(db, li) == ["Contract ends in 30 days, time to renew: HT-2026-0001"]


def test_an_unpaid_instalment_turns_overdue_the_day_after_and_owner_and_manager_are_told(app, db, admin, crm, team):
    li, _emma, boss = team
    customer = make(db, li, crm, "customer", {"name": "深圳华南物流有限公司", "owner": li.id})
    contract = make(db, li, crm, "contract", {"name": "Fleet software", "customer": customer.id, "amount": "90000"})
    unpaid = make(db, li, crm, "payment", {"name": "Fleet · 1/2", "contract": contract.id, "installment": 1,
                                           "due_date": "2026-03-05", "amount_due": "45000"})
    paid = make(db, li, crm, "payment", {"name": "Fleet · 2/2", "contract": contract.id, "installment": 2,
                                         "due_date": "2026-03-05", "amount_due": "45000", "status": "received",
                                         "received_on": "2026-03-04", "amount_received": "45000"})
    nine_beijing_next_day = datetime(2026, 3, 6, 1, 0, tzinfo=UTC)
    dispatch.run_pending(app, now=nine_beijing_next_day - timedelta(minutes=1))
    assert data(db, unpaid)["status"] == "planned"
    dispatch.run_pending(app, now=nine_beijing_next_day)
    assert data(db, unpaid)["status"] == "overdue"
    assert data(db, paid)["status"] == "received"
    assert notes(db, li) == ["Payment overdue: Fleet · 1/2"]
    assert notes(db, boss) == ["Payment overdue: Fleet · 1/2"]


def test_payment_received_needs_the_date_and_amount(db, admin, crm):
    customer = make(db, admin, crm, "customer", {"name": "Acme"})
    contract = make(db, admin, crm, "contract", {"name": "Acme deal", "customer": customer.id, "amount": "100"})
    with pytest.raises(Exception) as raised:
        make(db, admin, crm, "payment", {"name": "Acme · 1/1", "contract": contract.id, "due_date": "2026-03-05",
                                         "amount_due": "100", "status": "received"})
    assert {"received_on", "amount_received"} <= set(raised.value.fields)


def test_a_ticket_deadline_follows_its_priority(app, db, admin, crm, team):
    li = team[0]
    customer = make(db, li, crm, "customer", {"name": "Acme", "owner": li.id})
    urgent = make(db, li, crm, "ticket", {"subject": "Server down", "customer": customer.id, "priority": "urgent"})
    dispatch.run_pending(app, now=T0)
    assert data(db, urgent)["sla_due"] == "2026-03-02T06:00:00Z"  # opened 02:00 UTC + 4 h
    ticket = db.get(Record, urgent.id)
    records.update(db, li, Cause.for_user(li), crm, ticket, {"priority": "low"}, ticket.version,
                   situation=Situation(user_id=li.id, now=T0 + timedelta(hours=1)))
    db.commit()
    dispatch.run_pending(app, now=T0 + timedelta(hours=1))
    assert data(db, urgent)["sla_due"] == "2026-03-09T02:00:00Z"  # + 7 days from when it was opened

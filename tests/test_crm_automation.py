"""The CRM template's rules at work: website enquiries assigned in turn, follow-up reminders at
09:00 Beijing time, an alert after 7 days without contact, won deals announced to the manager."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from formloom.platform.auth import Cause
from formloom.platform.models import Notification, Record, RuleRun
from formloom.runtime import dispatch, pipelines, records
from formloom.runtime.validation import Situation

T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # Monday 10:00 in Beijing


def at(moment):
    return Situation(user_id=None, now=moment)


def notes(db, user) -> list[str]:
    db.rollback()
    db.expire_all()
    return list(db.scalars(select(Notification.title).where(Notification.user_id == user.id).order_by(Notification.id)))


def customer(db, user, app):
    return records.create(db, user, Cause.for_user(user), app, "customer", {"name": "杭州云帆科技有限公司"},
                          situation=Situation(user_id=user.id, now=T0))


def opportunity(db, user, app, name, **values):
    acme = customer(db, user, app)
    record = records.create(db, user, Cause.for_user(user), app, "opportunity",
                            {"name": name, "customer": acme.id, **values}, situation=Situation(user_id=user.id, now=T0))
    db.commit()
    return record


def test_website_enquiries_go_to_the_reps_in_turn_and_each_is_told(app, db, admin, crm, team):
    li, emma, _boss = team
    made = [opportunity(db, admin, crm, f"Web {i}", source="website") for i in range(4)]
    opportunity(db, admin, crm, "Referral", source="referral")
    dispatch.run_pending(app, now=T0)
    db.rollback()
    db.expire_all()
    owners = [db.get(Record, r.id).data["owner"] for r in made]
    assert owners == [li.id, emma.id, li.id, emma.id]
    assert notes(db, li) == ["New website enquiry for you: Web 0", "New website enquiry for you: Web 2"]


def test_a_follow_up_reminder_arrives_at_nine_beijing_time_on_its_date(app, db, admin, crm, team):
    li = team[0]
    deal = opportunity(db, li, crm, "Renewal")
    records.create(db, li, Cause.for_user(li), crm, "follow_up", {
        "subject": "Call about the quote", "customer": deal.data["customer"], "opportunity": deal.id,
        "happened_at": "2026-03-02T02:00:00Z", "summary": "Asked for a revised quote.", "next_follow_up": "2026-03-05",
        "by": li.id}, situation=Situation(user_id=li.id, now=T0))
    db.commit()
    nine_beijing = datetime(2026, 3, 5, 1, 0, tzinfo=UTC)
    dispatch.run_pending(app, now=nine_beijing - timedelta(minutes=1))
    assert "Follow up today: Call about the quote" not in notes(db, li)
    dispatch.run_pending(app, now=nine_beijing)
    assert notes(db, li).count("Follow up today: Call about the quote") == 1


def test_seven_days_without_contact_alerts_the_owner_and_the_manager(app, db, admin, crm, team):
    li, _emma, boss = team
    opportunity(db, li, crm, "Quiet deal")
    dispatch.run_pending(app, now=T0 + timedelta(days=6))
    assert "No contact for 7 days: Quiet deal" not in notes(db, li)
    dispatch.run_pending(app, now=T0 + timedelta(days=7, minutes=1))
    assert "No contact for 7 days: Quiet deal" in notes(db, li)
    assert "No contact for 7 days: Quiet deal" in notes(db, boss)


def test_a_follow_up_resets_the_seven_day_clock(app, db, admin, crm, team):
    li = team[0]
    deal = opportunity(db, li, crm, "Active deal")
    records.create(db, li, Cause.for_user(li), crm, "follow_up", {
        "subject": "Visit", "customer": deal.data["customer"], "opportunity": deal.id,
        "happened_at": "2026-03-06T02:00:00Z", "summary": "Demo went well."},
        situation=Situation(user_id=li.id, now=T0 + timedelta(days=4)))
    db.commit()
    dispatch.run_pending(app, now=T0 + timedelta(days=8))
    assert "No contact for 7 days: Active deal" not in notes(db, li)
    dispatch.run_pending(app, now=T0 + timedelta(days=11, minutes=1))
    assert "No contact for 7 days: Active deal" in notes(db, li)


def test_a_won_deal_is_announced_to_the_sales_manager_once(app, db, admin, crm, team):
    li, _emma, boss = team
    deal = opportunity(db, li, crm, "Big win", stage="contract", amount="50000", products=["licence"],
                       expected_close="2026-03-31", contact=None)
    pipelines.move(db, li, Cause.for_user(li), crm, deal, "won", checklist=["contract_signed"],
                   situation=Situation(user_id=li.id, now=T0 + timedelta(hours=1)))
    db.commit()
    dispatch.run_pending(app, now=T0 + timedelta(hours=1))
    assert notes(db, boss).count("Deal won: Big win") == 1
    runs = db.scalars(select(RuleRun).where(RuleRun.rule_key == "won_deal_announce")).all()
    assert [r.status for r in runs] == ["succeeded"]


def test_the_region_rule_ships_switched_off(app, db, admin, crm, team):
    customer(db, admin, crm)
    db.commit()
    dispatch.run_pending(app, now=T0)
    db.rollback()
    assert db.scalars(select(RuleRun).where(RuleRun.rule_key == "assign_customers_by_region")).all() == []

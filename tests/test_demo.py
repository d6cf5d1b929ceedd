"""Demo data: a year of a sales team's work in the CRM template, made through the runtime."""
from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from formloom.platform.errors import Forbidden, FormloomError, NotFound
from formloom.platform.models import (
    AppMember,
    ApprovalRequest,
    ChangeLog,
    Event,
    Record,
    ScheduledJob,
    StageVisit,
    Team,
    TeamMember,
    User,
    WorkStatus,
)
from formloom.platform.storage import storage_for
from formloom.runtime import catalog
from formloom.runtime.records import DatabaseResolver
from formloom.runtime.validation import Situation, validate_values
from formloom.templates_library import install
from formloom.templates_library.demo import STAFF, TARGETS, load_demo_data
from tests.factories import make_user

TODAY = date(2026, 10, 15)
SCALE = 0.02  # 40 leads, 16 customers, 24 opportunities, 6 tickets


@pytest.fixture
def crm(db, admin):
    app = install(db, admin)
    db.commit()
    return app


def load(app, db, admin, crm, scale: float = SCALE, seed: int = 7) -> dict[str, int]:
    counts = load_demo_data(db, admin, crm, seed=seed, today=TODAY, scale=scale, storage=storage_for(app))
    db.commit()
    return counts


def by_entity(db, crm) -> dict[str, list[Record]]:
    found = defaultdict(list)
    for record in db.scalars(select(Record).where(Record.app_id == crm.id).order_by(Record.id)):
        found[record.entity_key].append(record)
    return found


def test_counts_match_the_scaled_targets_and_every_record_validates(app, db, admin, crm):
    counts = load(app, db, admin, crm)
    records = by_entity(db, crm)

    assert counts == {key: len(rows) for key, rows in records.items()}
    for key, full in TARGETS.items():
        assert counts[key] == round(full * SCALE), key
    assert counts["product"] == 15 and counts["target"] == 7 * 17  # 5 reps and 2 teams: year, quarters, months
    assert {"quotation", "contract", "payment", "follow_up", "contact"} <= set(counts)
    resolver = DatabaseResolver(db, crm)
    for rows in records.values():
        for record in rows:
            entity = catalog.entity(db, crm, record.entity_key)
            # Validating the stored values again as a new record, references included, changes nothing
            # (with the record's id where values must be unique, so it is not its own duplicate).
            unique = any(spec.definition.get("unique") for spec in entity.fields)
            again = validate_values(entity, record.data, resolver=resolver, situation=Situation(
                record_id=record.id if unique else None, now=record.updated_at))
            serials = {spec.key for spec in entity.fields if spec.type.name == "serial"}  # given once, at creation
            assert again == {k: v for k, v in record.data.items() if k not in serials}, record.data
    # Every record was created through the runtime, with the CLI demo as the cause.
    created = db.scalars(select(ChangeLog.cause_ref).join(Record).where(
        Record.app_id == crm.id, ChangeLog.action == "create"))
    assert Counter(created) == {"demo": sum(counts.values())}


def test_opportunities_went_through_the_pipeline_stage_by_stage(app, db, admin, crm):
    load(app, db, admin, crm)
    opportunities = by_entity(db, crm)["opportunity"]
    visits = defaultdict(list)
    for visit in db.scalars(select(StageVisit).order_by(StageVisit.entered_at)):
        visits[visit.record_id].append(visit)
    funnel = ["lead", "needs_analysis", "proposal", "negotiation", "contract", "won"]
    for record in opportunities:
        stages = [v.stage for v in visits[record.id]]
        assert stages[0] == "lead" and stages[-1] == record.data["stage"]
        if record.data["stage"] == "won":
            assert stages == funnel and record.data["closed_on"] < TODAY.isoformat()
            assert visits[record.id][-1].entered_at.date().isoformat() == record.data["closed_on"]
        if record.data["stage"] == "lost":
            assert record.data["lost_reason"] and record.data["closed_on"]
        entered = [v.entered_at for v in visits[record.id]]
        assert entered == sorted(entered) and entered[-1].date() <= TODAY
    assert {"won", "lost"} < {r.data["stage"] for r in opportunities}
    assert len({r.data["stage"] for r in opportunities}) >= 4
    # Spread over the past twelve months, some expected to close in the coming months.
    starts = [r.created_at.date() for r in opportunities]
    assert min(starts) >= TODAY - timedelta(days=366) and max(starts) - min(starts) > timedelta(days=120)
    assert any(r.data["expected_close"] > TODAY.isoformat() for r in opportunities)


def test_customer_tiers_agree_with_what_was_won_in_the_last_year(app, db, admin, crm):
    load(app, db, admin, crm, scale=0.05)
    records = by_entity(db, crm)
    won = Counter()
    year_ago = (TODAY - timedelta(days=365)).isoformat()
    for deal in records["opportunity"]:
        if deal.data["stage"] == "won" and deal.data["closed_on"] > year_ago:
            won[deal.data["customer"]] += Decimal(deal.data["amount"])
    for customer in records["customer"]:
        amount = won[customer.id]
        assert Decimal(customer.data["won_amount_12m"]) == amount
        assert customer.data["tier"] == ("a" if amount >= 500000 else "b" if amount >= 100000 else "c")
    assert {c.data["tier"] for c in records["customer"]} == {"a", "b", "c"}


def test_the_pool_overdue_payments_and_waiting_approvals_are_there(app, db, admin, crm):
    load(app, db, admin, crm, scale=0.05)
    records = by_entity(db, crm)
    leads = [r.data for r in records["lead"]]
    pool = [lead for lead in leads if lead.get("owner") is None]
    assert len(pool) == round(len(leads) * 0.10)
    assert all(lead["returned_at"] and lead["return_reason"] for lead in pool)
    statuses = Counter(lead["status"] for lead in leads)
    assert statuses["converted"] == round(len(leads) * 0.30) and statuses["disqualified"] > 0
    assert all(lead.get("customer") and lead.get("opportunity") for lead in leads if lead["status"] == "converted")
    assert any(lead.get("next_follow_up", "9999") < TODAY.isoformat() for lead in leads)  # overdue follow-ups
    payments = [r.data for r in records["payment"]]
    assert {"received", "partly_received", "overdue", "planned"} <= {p["status"] for p in payments}
    assert all(p["due_date"] < TODAY.isoformat() for p in payments if p["status"] == "overdue")
    contracts = [r.data for r in records["contract"]]
    assert any(TODAY.isoformat() <= c["end_date"] <= (TODAY + timedelta(days=30)).isoformat()
               and c["status"] in ("signed", "executing") for c in contracts)  # renewals coming up
    assert any(c["status"] == "completed" for c in contracts) and all(
        c.get("signature") for c in contracts if c["status"] in ("signed", "executing", "completed"))
    tickets = [r.data for r in records["ticket"]]
    assert any(t["status"] == "closed" and 1 <= t["satisfaction"] <= 5 for t in tickets)
    quotes = [r.data for r in records["quotation"]]
    assert any(Decimal(q["discount"]) > 20 for q in quotes)
    # Approvals were decided by the managers; some discounts still wait for them.
    managers = {u.id for u in db.scalars(select(User).where(User.username.in_(["zhang.min", "chen.jie"])))}
    requests = list(db.scalars(select(ApprovalRequest).where(ApprovalRequest.app_id == crm.id)))
    assert {r.status for r in requests} == {"approved", "pending"}
    assert all(r.decided_by in managers for r in requests if r.status == "approved")


def test_staff_teams_and_roles_are_set(app, db, admin, crm):
    load(app, db, admin, crm)
    users = {u.username: u for u in db.scalars(select(User))}
    roles = {users[name].id: role for name, _, role, _ in STAFF}
    members = {m.user_id: m.role for m in db.scalars(select(AppMember).where(AppMember.app_id == crm.id))}
    assert {uid: members[uid] for uid in roles} == roles
    teams = {t.name: t for t in db.scalars(select(Team))}
    assert users["zhang.min"].id == teams["East"].manager_id and users["chen.jie"].id == teams["South"].manager_id
    team_members = defaultdict(set)
    for link in db.scalars(select(TeamMember)):
        team_members[link.team_id].add(link.user_id)
    assert len(team_members[teams["East"].id]) == 3 and len(team_members[teams["South"].id]) == 2
    reps = {users[name].id for name, _, role, _ in STAFF if role == "rep"}
    owners = {r.data.get("owner") for r in by_entity(db, crm)["opportunity"]}
    assert owners <= reps and len(owners) >= 3
    follow_ups = by_entity(db, crm)["follow_up"]
    assert {f.data["by"] for f in follow_ups} <= reps


def test_same_seed_and_day_give_the_same_data(app, db, admin, crm):
    other = install(db, admin, app_key="crm_copy")

    def story(app_) -> list[tuple]:
        rows = db.execute(select(Record.entity_key, Record.title, Record.created_at, Record.updated_at, Record.version)
                          .where(Record.app_id == app_.id).order_by(Record.id))
        return [tuple(row) for row in rows]

    assert load(app, db, admin, crm, scale=0.01) == load(app, db, admin, other, scale=0.01)
    assert story(crm) == story(other)


def test_automation_does_not_run_on_the_sample_data(app, db, admin, crm):
    load(app, db, admin, crm)
    pending = db.scalar(select(func.count()).select_from(Event).where(
        Event.app_id == crm.id, Event.status == WorkStatus.PENDING.value))
    assert pending == 0
    # Timers already due are history; timers ahead (a follow-up reminder next week) stay.
    due = list(db.scalars(select(ScheduledJob).where(ScheduledJob.app_id == crm.id,
                                                     ScheduledJob.status == WorkStatus.PENDING.value)))
    assert all(job.due_at.date() >= TODAY for job in due)
    # The won-deal rules (an onboarding ticket, a closing date) made nothing extra.
    assert db.scalar(select(func.count()).select_from(ChangeLog).where(ChangeLog.cause_kind == "rule")) == 0


def test_demo_data_needs_a_crm_app_a_member_who_may_create_and_a_sane_scale(app, db, admin, crm, sales):
    with pytest.raises(NotFound):
        load_demo_data(db, admin, sales, scale=0.01)
    with pytest.raises(Forbidden):
        load_demo_data(db, make_user(db, "nobody"), crm, scale=0.01)
    with pytest.raises(FormloomError, match="scale"):
        load_demo_data(db, admin, crm, scale=2)
    assert db.scalar(select(func.count()).select_from(Record)) == 0


@pytest.mark.slow
def test_a_quarter_of_the_full_year_on_sqlite(app, db, admin, crm, database_url):
    """The full year (scale 1) takes minutes; a quarter of it checks the counts at size."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the large load is measured on SQLite")
    counts = load(app, db, admin, crm, scale=0.25)
    assert counts["lead"] == 500 and counts["customer"] == 200 and counts["opportunity"] == 300
    assert counts["ticket"] == 75 and counts["product"] == 15 and counts["target"] == 119
    reps = db.scalar(select(func.count()).select_from(AppMember).where(AppMember.app_id == crm.id,
                                                                      AppMember.role == "rep"))
    assert reps == 5 and db.scalar(select(func.count()).select_from(Team)) == 2

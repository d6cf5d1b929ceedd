"""A small CRM with data for the dashboard tests: two teams, three reps, deals in every stage,
follow-ups, leads, payments and targets, dated around ``today``."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from formloom import templates_library
from formloom.platform import auth
from formloom.platform.auth import Cause
from formloom.platform.members import TeamChange, create_team
from formloom.platform.models import App, Record, User
from formloom.runtime import pipelines, records
from tests.factories import make_user


@dataclass
class Crm:
    app: App
    admin: User
    manager: User
    reps: list[User]
    today: date
    deals: list[Record] = field(default_factory=list)


def _create(db, user, app, entity, values) -> Record:
    record = records.create(db, user, Cause.for_user(user), app, entity, values)
    db.flush()
    return record


def _deal(db, crm: Crm, rep: User, customer: Record, contact: Record, amount: int, stage: str,
          closed_on: date | None = None, expected: date | None = None) -> Record:
    """A deal walked through the pipeline to ``stage`` (so its stage history is real)."""
    admin, app = crm.admin, crm.app
    start = "negotiation" if stage in ("negotiation", "contract", "won") else "lead"
    values = {"name": f"{customer.title} {amount}", "customer": customer.id, "contact": contact.id,
              "amount": str(amount), "products": ["licence"], "owner": rep.id, "stage": start,
              "expected_close": (expected or crm.today).isoformat()}
    if stage in ("proposal",):
        values["stage"] = "proposal"
    if stage in ("needs_analysis",):
        values["stage"] = "needs_analysis"
    record = _create(db, admin, app, "opportunity", values)
    path = {"contract": ["contract"], "won": ["contract", "won"], "lost": ["lost"]}.get(stage, [])
    checklist = {"contract": ["quote_accepted"], "won": ["contract_signed"]}
    for step in path:
        extra = {"lost_reason": "Price"} if step == "lost" else {}
        if step in ("won", "lost") and closed_on is not None:
            extra["closed_on"] = closed_on.isoformat()
        pipelines.move(db, admin, Cause.for_user(admin), app, record, step, checklist=checklist.get(step, []),
                       values=extra)
        db.flush()
    crm.deals.append(record)
    return record


def build(db) -> Crm:
    """Install the CRM template and fill it."""
    admin = make_user(db, "boss", admin=True, display_name="Ada Admin")
    app = templates_library.install(db, admin)
    manager = make_user(db, "mia", display_name="Mia Manager")
    reps = [make_user(db, name, display_name=label) for name, label in
            (("wang", "王伟"), ("li", "Li Na"), ("zhao", "Zhao Lei"))]
    auth.grant_app(db, manager, app, "manager")
    for rep in reps:
        auth.grant_app(db, rep, app, "rep")
    create_team(db, admin, "east", TeamChange(name="East", manager="mia", members=("wang", "li")))
    create_team(db, admin, "south", TeamChange(name="South", manager=None, members=("zhao",)))
    db.flush()
    today = date.today()
    crm = Crm(app, admin, manager, reps, today)
    customers = [_create(db, admin, app, "customer", {"name": name, "tier": tier, "region": "east", "owner": rep.id})
                 for name, tier, rep in (("杭州云帆科技", "a", reps[0]), ("Acme", "b", reps[1]), ("Globex", "c", reps[2]),
                                         ("Initech", "b", reps[0]))]
    contacts = [_create(db, admin, app, "contact", {"name": f"Contact {c.title}", "customer": c.id}) for c in customers]
    last_year = today - timedelta(days=400)
    plan = [  # rep, customer, amount, stage, closed_on
        (0, 0, 100_000, "won", today), (0, 0, 50_000, "won", today), (0, 3, 20_000, "lost", today),
        (1, 1, 80_000, "won", today), (1, 1, 30_000, "negotiation", None), (1, 1, 10_000, "lead", None),
        (2, 2, 60_000, "won", last_year), (2, 2, 45_000, "contract", None), (2, 2, 5_000, "lost", today),
        (0, 3, 70_000, "won", last_year), (0, 3, 15_000, "proposal", None)]
    for rep, customer, amount, stage, closed in plan:
        _deal(db, crm, reps[rep], customers[customer], contacts[customer], amount, stage, closed)
    for i, rep in enumerate(reps):
        for n in range(i + 1):
            _create(db, admin, app, "follow_up", {
                "subject": f"Call {n}", "customer": customers[i].id, "method": ("call", "visit", "wechat")[n % 3],
                "happened_at": f"{(today - timedelta(days=7 * n)).isoformat()}T09:00:00Z", "summary": "Talked",
                "by": rep.id})
    for source, status, rep in (("website", "new", 0), ("website", "contacted", 1), ("referral", "qualified", 2)):
        _create(db, admin, app, "lead", {"name": f"Lead {source} {status}", "source": source, "status": status,
                                         "wechat": f"wx_{source}_{status}", "contact_name": "Zhou", "industry": "retail", "score": 50,
                                         "owner": reps[rep].id})
    contract = _create(db, admin, app, "contract", {"name": "Deal contract", "customer": customers[0].id,
                                                    "amount": "150000", "status": "draft", "owner": reps[0].id})
    for n, (due, status, received_on, received) in enumerate((
            (today - timedelta(days=40), "received", today - timedelta(days=35), "50000"),
            (today - timedelta(days=10), "planned", None, None),
            (today + timedelta(days=20), "planned", None, None),
            (today - timedelta(days=5), "written_off", None, None))):
        values = {"name": f"HT {n + 1}", "contract": contract.id, "customer": customers[0].id, "owner": reps[0].id,
                  "installment": n + 1, "due_date": due.isoformat(), "amount_due": str(10_000 * (n + 1)),
                  "status": status}
        if received_on:
            values.update(received_on=received_on.isoformat(), amount_received=received)
        _create(db, admin, app, "payment", values)
    year = today.year
    targets = [("year", None, None, None, "East", 300_000), ("year", None, None, None, "South", 100_000),
               ("year", None, None, reps[0].id, None, 200_000), ("year", None, None, reps[1].id, None, 100_000),
               ("quarter", (today.month + 2) // 3, None, None, "East", 90_000),
               ("month", None, today.month, None, "east", 30_000),
               ("month", None, today.month, reps[0].id, None, 20_000)]
    for kind, quarter, month, rep, team, amount in targets:
        values = {"name": f"{year} {kind} {rep or team}", "period_type": kind, "year": year, "amount": str(amount)}
        values.update({k: v for k, v in (("quarter", quarter), ("month", month), ("rep", rep), ("team", team))
                       if v is not None})
        _create(db, admin, app, "target", values)
    db.commit()
    return crm

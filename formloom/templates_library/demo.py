"""Demo data for an app installed from the ``crm`` template: a year of a sales team's work.

Two teams (East 华东: a manager and three reps; South 华南: a manager and two reps) and a finance
user work leads, customers, opportunities, quotations, contracts, payments and after-sales tickets
over the twelve months before ``today``. At ``scale=1`` there are 2,000 leads, 800 customers and
1,200 opportunities; ``scale`` shrinks every count in proportion (the product catalogue, the staff
and the sales targets stay whole).

How it is made:

- Every record is created through :func:`formloom.runtime.records.create` and every stage move
  through :func:`formloom.runtime.pipelines.move`, on a controlled clock, so demo data is validated
  like user input, written to the change log (cause: CLI ``demo``) and has a real stage history.
  Moves that need approval ask for it and a sales manager decides through
  :func:`formloom.runtime.approvals.decide` (a few recent ones are left waiting in their inbox).
- Automations do not run on it: the load is one transaction, and before it ends the events it
  wrote are marked done and the timers already due are cancelled (sample data is history; rules
  react to what happens from now on). Nothing is ever visible to the relay as pending work.
  Timers still ahead (a follow-up reminder next week) stay.
- Everything comes from ``random.Random(seed)`` and ``today``: the same seed and day give the same
  data. The plan of a customer's deals is drawn before the customer is written, so its
  ``won_amount_12m`` and ``tier`` agree with the deals won in the last twelve months.
"""
from __future__ import annotations

import base64
import math
import random
import secrets
import struct
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from formloom.platform import auth, members
from formloom.platform.auth import Action, Cause, authorize
from formloom.platform.errors import FormloomError, NotFound
from formloom.platform.models import App, Event, Record, ScheduledJob, User, WorkStatus
from formloom.platform.storage import Storage
from formloom.runtime import approvals, catalog, files, pipelines, records
from formloom.runtime.validation import Situation
from formloom.templates_library.demo_people import company, contact_person, unique_email, unique_mobile
from formloom.templates_library.demo_words import (
    CATALOGUE,
    DEAL_NAMES,
    DISQUALIFY_NOTES,
    FOLLOW_UPS,
    LEAD_SOURCES,
    LOST_REASONS,
    NEXT_STEPS,
    QUANTITIES,
    RESOLUTIONS,
    RETURN_REASONS,
    SLA_HOURS,
    SUMMARIES,
    TICKETS,
    TITLES,
)

# Records at scale 1 (products, staff and targets do not scale).
TARGETS = {"lead": 2000, "customer": 800, "opportunity": 1200, "ticket": 300}
CONVERTED, DISQUALIFIED, POOL = 0.30, 0.12, 0.10  # shares of the leads

# (username, display name, app role, team key): the logins `formloom demo` prints.
STAFF = [
    ("zhang.min", "张敏", "manager", "east_sales"), ("li.wei", "李伟", "rep", "east_sales"),
    ("emma", "Emma Clark", "rep", "east_sales"), ("wang.fang", "王芳", "rep", "east_sales"),
    ("chen.jie", "陈杰", "manager", "south_sales"), ("liu.yang", "刘洋", "rep", "south_sales"),
    ("oliver", "Oliver Tan", "rep", "south_sales"), ("zhao.li", "赵丽", "finance", None),
]
# team key -> (name, regions it covers)
TEAMS = {
    "east_sales": ("East", ("east", "north", "central", "northeast")),
    "south_sales": ("South", ("south", "southwest", "northwest", "hk_macao_taiwan", "overseas")),
}
# How busy each rep is: their share of new business and of logged follow-ups.
ACTIVITY = {"li.wei": 1.4, "emma": 1.0, "wang.fang": 0.7, "liu.yang": 1.2, "oliver": 0.8}
FUNNEL = ["lead", "needs_analysis", "proposal", "negotiation", "contract", "won"]
OPEN_STAGES = FUNNEL[:5]
PROBABILITY = {"lead": 10, "needs_analysis": 20, "proposal": 40, "negotiation": 60, "contract": 80,
               "won": 100, "lost": 0}
TIER_A, TIER_B = Decimal(500000), Decimal(100000)

Progress = Callable[[str], None]


# --- the people ------------------------------------------------------------------------------

@dataclass
class Staff:
    """The demo's sales organisation: who sells where, and who approves for whom."""

    reps: list[User]
    managers: dict[str, User]  # team key -> manager
    team_of: dict[int, str]  # user id -> team key
    finance: User

    def rep_for(self, rng: random.Random, region: str) -> User:
        team = next((key for key, (_, regions) in TEAMS.items() if region in regions), "east_sales")
        reps = [r for r in self.reps if self.team_of[r.id] == team]
        return rng.choices(reps, weights=[ACTIVITY.get(r.username, 1.0) for r in reps])[0]

    def manager_of(self, user_id: int | None) -> User | None:
        return self.managers.get(self.team_of.get(user_id or 0, ""))


def ensure_staff(session: Session, actor: User, app: App) -> Staff:
    """The demo users, their roles in ``app`` and their two teams (created or brought up to date)."""
    people: dict[str, User] = {}
    for username, display, role, _ in STAFF:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:  # a password nobody knows; `formloom demo` sets the one it prints
            user = auth.create_user(session, username, secrets.token_urlsafe(12), display_name=display)
        user.is_active = True
        members.set_member(session, actor, app, username, role)
        people[username] = user
    for key, (name, _) in TEAMS.items():
        manager = next(u for u, _, role, team in STAFF if team == key and role == "manager")
        change = members.TeamChange(name=name, manager=manager,
                                    members=tuple(u for u, _, role, team in STAFF if team == key and role == "rep"))
        team = members.find_team(session, actor, key)
        if team is None:
            members.create_team(session, actor, key, change)
        else:
            members.update_team(session, actor, team, change)
    return Staff(reps=[people[u] for u, _, role, _ in STAFF if role == "rep"],
                 managers={team: people[u] for u, _, role, team in STAFF if role == "manager"},
                 team_of={people[u].id: team for u, _, _, team in STAFF if team},
                 finance=people["zhao.li"])


# --- writing through the runtime -------------------------------------------------------------

class _Writer:
    """Creates and moves records through the runtime, keeping only fields the published entity has."""

    def __init__(self, session: Session, actor: User, app: App, staff: Staff, storage: Storage | None):
        self.session, self.actor, self.app, self.staff, self.storage = session, actor, app, staff, storage
        self.cause = Cause.for_cli(actor, "demo")
        self.counts: Counter[str] = Counter()
        self.fields: dict[str, set[str]] = {}

    def has(self, entity_key: str) -> bool:
        if entity_key not in self.fields:
            try:
                self.fields[entity_key] = set(catalog.entity(self.session, self.app, entity_key).by_key)
            except NotFound:
                self.fields[entity_key] = set()
        return bool(self.fields[entity_key])

    def _known(self, entity_key: str, values: dict[str, Any], *, clear: bool = False) -> dict[str, Any]:
        """The values the entity has fields for; None is left out unless ``clear`` (it empties a field)."""
        return {k: v for k, v in values.items() if k in self.fields[entity_key] and (clear or v is not None)}

    def create(self, entity_key: str, values: dict[str, Any], at: datetime) -> Record:
        self.has(entity_key)
        record = records.create(self.session, self.actor, self.cause, self.app, entity_key,
                                self._known(entity_key, values), situation=Situation(user_id=self.actor.id, now=at))
        self.counts[entity_key] += 1
        return record

    def update(self, record: Record, values: dict[str, Any], at: datetime) -> None:
        records.update(self.session, self.actor, self.cause, self.app, record,
                       self._known(record.entity_key, values, clear=True), record.version,
                       situation=Situation(user_id=self.actor.id, now=at))

    def walk(self, record: Record, field_key: str, steps: list[tuple[str, datetime]], *,
             values: dict[str, dict] | None = None, leave_pending: bool = False) -> None:
        """Move ``record`` stage by stage at the given moments (``values`` saved with a stage's move).

        A move that needs approval is decided by a manager a few hours later; with
        ``leave_pending`` the last such request is left waiting, and the walk stops there.
        """
        values = values or {}
        pipeline = pipelines.pipeline_for(self.session, self.app, record.entity_key)
        for number, (stage, at) in enumerate(steps):
            extra = self._known(record.entity_key, values.get(stage, {}))
            if pipeline is None:
                self.update(record, {**extra, field_key: stage}, at)
                continue
            checklist = [item["key"] for item in pipeline.by_key[stage].gate.get("checklist", ())]
            result = pipelines.move(self.session, self.actor, self.cause, self.app, record, stage,
                                    checklist=checklist, values=extra or None,
                                    situation=Situation(user_id=self.actor.id, now=at))
            if result.status is pipelines.MoveStatus.PENDING_APPROVAL:
                if leave_pending and number == len(steps) - 1:
                    return
                self._approve(result.request, record, at + timedelta(hours=3))

    def _approve(self, request, record: Record, at: datetime) -> None:
        """The owner's team manager (or another approver the request names) approves it."""
        waiting = [t.user_id for t in approvals.current_tasks(request)]
        manager = self.staff.manager_of(record.owner_id)
        approver = manager if manager is not None and manager.id in waiting else self.session.get(User, waiting[0])
        approvals.decide(self.session, approver, request.id, approvals.Decision.APPROVE, now=at,
                         comment="同意。" if record.id % 2 else "Approved.")

    def signature(self, rng: random.Random) -> list[int] | None:
        """A drawn signature (a stored PNG), or None without file storage."""
        if self.storage is None:
            return None
        png = _signature_png(rng)
        stored = files.save_signature(self.session, self.storage, self.app, self.actor,
                                      "data:image/png;base64," + base64.b64encode(png).decode("ascii"))
        return [stored.id]


def _signature_png(rng: random.Random) -> bytes:
    """A small greyscale PNG of a pen stroke, different for every signer."""
    width, height = 160, 48
    rows = [bytearray(b"\xff" * width) for _ in range(height)]
    phase, speed, swing = rng.uniform(0, math.tau), rng.uniform(0.08, 0.18), rng.uniform(8, 16)
    for x in range(12, width - 12):
        y = int(height / 2 + swing * math.sin(x * speed + phase) * math.cos(x * 0.025))
        rows[y][x] = rows[y + 1][x] = 0x20
    raw = b"".join(b"\x00" + bytes(row) for row in rows)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


# --- the entry point -------------------------------------------------------------------------

def load_demo_data(session: Session, actor: User, app: App, *, seed: int = 7, today: date | None = None,
                   scale: float = 1.0, storage: Storage | None = None,
                   progress: Progress | None = None) -> dict[str, int]:
    """Create a year of a sales team's work in a CRM app; returns the records made per entity key.

    ``storage`` keeps the customers' drawn signatures on contracts (without it no contract
    reaches Signed). ``progress`` is told the name of each phase as it starts. The caller commits.
    """
    if not 0 < scale <= 1:
        raise FormloomError(f"The demo scale must be above 0 and at most 1 (1 is the full year); got {scale}.")
    authorize(session, actor, Action.CREATE_RECORD, app)
    for key in ("customer", "contact", "opportunity", "follow_up"):
        catalog.entity(session, app, key)  # fail early, before any record, on an app without the CRM entities
    today = today or date.today()
    say = progress or (lambda phase: None)
    first_event = session.scalar(select(func.max(Event.id))) or 0
    first_record = (session.scalar(select(func.max(Record.id))) or 0) + 1
    staff = ensure_staff(session, actor, app)
    world = _World(random.Random(seed), _Writer(session, actor, app, staff, storage), today, scale)
    say("products")
    world.products()
    say(f"leads ({world.count('lead')})")
    world.leads()
    say(f"customers ({world.count('customer')}) and contacts")
    world.plan_customers()
    world.customers()
    say(f"opportunities ({world.count('opportunity')}), quotations, contracts and payments")
    world.opportunities()
    say(f"tickets ({world.count('ticket')})")
    world.tickets()
    say("sales targets")
    world.targets()
    _quiet_automation(session, app, first_event, first_record, world.now)
    return dict(world.out.counts)


def _quiet_automation(session: Session, app: App, first_event: int, first_record: int, now: datetime) -> None:
    """Mark the load's events done and cancel its timers already due: rules react to what comes next."""
    session.execute(update(Event).where(Event.app_id == app.id, Event.id > first_event,
                                        Event.status == WorkStatus.PENDING.value)
                    .values(status=WorkStatus.DONE.value, done_at=datetime.now(UTC)))
    session.execute(update(ScheduledJob).where(ScheduledJob.app_id == app.id, ScheduledJob.record_id >= first_record,
                                               ScheduledJob.status == WorkStatus.PENDING.value,
                                               ScheduledJob.due_at < now)
                    .values(status=WorkStatus.CANCELLED.value, done_at=datetime.now(UTC)))


# --- the plan and its writing ----------------------------------------------------------------

@dataclass
class _Customer:
    company: dict
    owner: User
    chinese: bool
    created: datetime
    lead: Record | None = None
    lead_plan: dict | None = None
    deals: list[dict] = field(default_factory=list)
    record: Record | None = None
    contacts: list[int] = field(default_factory=list)


class _World:
    """Draws the year and writes it, phase by phase."""

    def __init__(self, rng: random.Random, out: _Writer, today: date, scale: float):
        self.rng, self.out, self.today, self.scale = rng, out, today, scale
        self.now = datetime.combine(today, time(8, 0), tzinfo=UTC)
        self.year_ago = self.now - timedelta(days=365)
        self.names: set[str] = set()
        self.phones: set[str] = set()
        self.emails: set[str] = set()
        self.catalogue: list[tuple[int | None, tuple]] = []
        self.converted: list[dict] = []
        self.plans: list[_Customer] = []
        self.contracts: list[tuple[Record, _Customer, date]] = []
        self.won_by_rep: Counter[int] = Counter()

    def count(self, entity_key: str) -> int:
        return max(1, round(TARGETS[entity_key] * self.scale))

    def moment(self, day: date | datetime, *, hour: int | None = None) -> datetime:
        """A working-hours moment (UTC) on ``day``."""
        day = day.date() if isinstance(day, datetime) else day
        return datetime.combine(day, time(hour if hour is not None else self.rng.randint(1, 10),
                                          self.rng.choice([0, 15, 30, 45])), tzinfo=UTC)

    def between(self, start: datetime, end: datetime) -> datetime:
        span = max((end - start).total_seconds(), 60)
        return start + timedelta(seconds=self.rng.uniform(0, span))

    # products ---------------------------------------------------------------------------------

    def products(self) -> None:
        for row in CATALOGUE:
            code, zh, en, line, unit, price, _ = row
            record = None
            if self.out.has("product"):
                record = self.out.create("product", {
                    "name": f"{zh} / {en}", "code": code, "line": line, "unit": unit, "price": f"{price}.00",
                    "active": True, "description": f"{en}, priced per {unit}."}, self.year_ago - timedelta(days=30))
            self.catalogue.append((record.id if record else None, row))

    # leads ------------------------------------------------------------------------------------

    def leads(self) -> None:
        total = self.count("lead")
        outcomes = (["converted"] * round(total * CONVERTED) + ["disqualified"] * round(total * DISQUALIFIED)
                    + ["pool"] * round(total * POOL))
        outcomes += ["open"] * (total - len(outcomes))
        self.rng.shuffle(outcomes)
        for outcome in outcomes[:total]:
            self.lead(outcome)

    def lead(self, outcome: str) -> None:
        rng = self.rng
        chinese = rng.random() < 0.7
        firm = company(rng, chinese, self.names)
        person, handle, wechat = contact_person(rng, chinese)
        is_company = outcome == "converted" or rng.random() < 0.75
        owner = self.out.staff.rep_for(rng, firm["region"])
        created = self.moment(self.today - timedelta(days=rng.randint(2, 360)))
        age = (self.now - created).days
        values = {
            "name": firm["name"] if is_company else person, "contact_name": person,
            "phone": unique_mobile(rng, chinese, self.phones), "email": unique_email(rng, handle, firm, self.emails),
            "wechat": wechat, "source": rng.choice(LEAD_SOURCES), "region": firm["region"],
            "industry": firm["industry"], "score": rng.randint(35, 95) if outcome == "converted" else rng.randint(5, 80),
            "status": "new", "owner": owner.id,
        }
        if not self.out.has("lead"):
            return
        record = self.out.create("lead", values, created)
        stages = {"converted": ["contacted", "qualified"], "disqualified": rng.choice([[], ["contacted"]]),
                  "pool": rng.choice([[], ["contacted"]]),
                  "open": rng.choice([[], ["contacted"], ["contacted"], ["contacted", "qualified"]])}[outcome]
        end = min(created + timedelta(days=rng.randint(5, 40)), self.now - timedelta(hours=2))
        times = sorted(self.between(created, end) for _ in stages)
        if outcome == "disqualified":
            stages, times = [*stages, "disqualified"], [*times, end]
        self.out.walk(record, "status", list(zip(stages, times, strict=True)),
                      values={"disqualified": {"notes": rng.choice(DISQUALIFY_NOTES)}})
        if stages:
            self.lead_follow_ups(record, owner, chinese, created, end)
        if outcome == "pool":
            returned = self.between(end, self.now - timedelta(hours=1))
            self.out.update(record, {"owner": None, "returned_at": returned.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                     "return_reason": rng.choice(RETURN_REASONS)}, returned)
        elif outcome == "open":
            # Some next contacts are already overdue; old untouched leads have none.
            if age < 120 or rng.random() < 0.3:
                self.out.update(record, {"next_follow_up": (self.today + timedelta(days=rng.randint(-10, 14)))
                                         .isoformat()}, end)
        else:
            convert_at = end + timedelta(days=rng.randint(1, 10)) if outcome == "converted" else None
            if convert_at is not None:
                convert_at = min(convert_at, self.now - timedelta(hours=1))
                self.converted.append({"record": record, "company": firm, "owner": owner, "chinese": chinese,
                                       "at": convert_at, "source": values["source"]})

    def lead_follow_ups(self, lead: Record, owner: User, chinese: bool, start: datetime, end: datetime) -> None:
        if not self.out.has("follow_up"):
            return
        for _ in range(self.rng.choice([0, 1, 1, 2])):
            method = self.rng.choice(["call", "wechat", "email"])
            self.follow_up({"lead": lead.id, "method": method}, owner, chinese, self.between(start, end))

    def follow_up(self, values: dict, by: User, chinese: bool, at: datetime, next_date: date | None = None) -> None:
        rng = self.rng
        method = values["method"]
        self.out.create("follow_up", {
            **values, "subject": rng.choice(FOLLOW_UPS[method])[0 if chinese else 1],
            "happened_at": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "summary": rng.choice(SUMMARIES)[0 if chinese else 1],
            "next_step": rng.choice(NEXT_STEPS)[0 if chinese else 1] if next_date else None,
            "next_follow_up": next_date.isoformat() if next_date else None, "by": by.id}, at)

    # customers --------------------------------------------------------------------------------

    def plan_customers(self) -> None:
        """Who the customers are, and every deal each will have (so tiers are known up front)."""
        rng = self.rng
        total = self.count("customer")
        for lead in self.converted[:total]:
            self.plans.append(_Customer(lead["company"], lead["owner"], lead["chinese"], lead["at"],
                                        lead=lead["record"], lead_plan=lead))
        while len(self.plans) < total:
            chinese = rng.random() < 0.65
            firm = company(rng, chinese, self.names)
            created = self.moment(self.today - timedelta(days=rng.randint(380, 1100)))
            self.plans.append(_Customer(firm, self.out.staff.rep_for(rng, firm["region"]), chinese, created))
        for plan in self.plans:
            if plan.lead is not None:  # the deal the lead turned into starts on its conversion day
                plan.deals.append(self.plan_deal(plan, plan.created, plan.lead_plan["source"]))
        weights = [1 if p.lead is not None else 3 for p in self.plans]
        for _ in range(self.count("opportunity") - sum(len(p.deals) for p in self.plans)):
            plan = rng.choices(self.plans, weights=weights)[0]
            start = self.moment(self.today - timedelta(days=rng.randint(3, 365)))
            start = max(start, plan.created + timedelta(days=1))
            if start >= self.now - timedelta(hours=12):
                start = self.now - timedelta(days=1)
            plan.deals.append(self.plan_deal(plan, start, rng.choice(["existing_customer", "referral", "website"])))

    def plan_deal(self, plan: _Customer, start: datetime, source: str) -> dict:
        """One opportunity: its lines, its price and the stages it went through, at which moments."""
        rng = self.rng
        age = (self.now - start).days
        won, lost = (0.45, 0.35) if age > 120 else (0.3, 0.2) if age > 45 else (0.08, 0.07)
        outcome = rng.choices(["won", "lost", "open"], weights=[won, lost, 1 - won - lost])[0]
        line = rng.choices(["software", "services", "hardware"], weights=[5, 3, 2])[0]
        picks = [row for row in self.catalogue if row[1][3] == line]
        chosen = rng.sample(picks, rng.randint(1, min(2, len(picks))))
        extra = rng.sample([r for r in self.catalogue if r[1][3] != line], rng.randint(0, 2))
        lines = []
        for product_id, (_, zh, en, _, unit, price, kind) in chosen + extra:
            low, high = QUANTITIES[unit]
            lines.append({"product": product_id, "description": zh if plan.chinese else en,
                          "qty": rng.randint(low, high), "unit_price": f"{price}.00", "kind": kind})
        if outcome == "open":
            reached = min(len(OPEN_STAGES) - 1, int(rng.random() * min(5, 1 + age / 20)))
            path = FUNNEL[1:reached + 1]
            end = self.now - timedelta(hours=rng.randint(2, 72))
        else:
            path = FUNNEL[1:] if outcome == "won" else [*FUNNEL[1:rng.randint(1, 5)], "lost"]
            end = min(start + timedelta(days=rng.randint(15, 110)), self.now - timedelta(hours=6))
        times = sorted(self.between(start + timedelta(hours=1), end) for _ in path)
        # Discounts above 20 % need a manager's approval: about one deal in eight asks, and half the
        # recent ones still at Proposal wait for the decision today.
        big = 0.5 if outcome == "open" and path[-1:] == ["proposal"] and age < 90 else 0.12
        discount = rng.choice([22, 25, 30]) if rng.random() < big else rng.choice([0, 0, 5, 8, 10, 12, 15])
        subtotal = sum(Decimal(x["unit_price"]) * x["qty"] for x in lines)
        amount = (subtotal * (100 - discount) / 100).quantize(Decimal("0.01"))
        closed_on = times[-1].date() if outcome != "open" else None
        products = list(dict.fromkeys(x["kind"] for x in lines))
        zh, en = DEAL_NAMES[products[0]]
        return {"start": start, "path": list(zip(path, times, strict=True)), "outcome": outcome, "line": line,
                "lines": lines, "discount": discount, "amount": amount, "closed_on": closed_on, "source": source,
                "products": products, "name": f"{plan.company['short']}{zh}" if plan.chinese
                else f"{plan.company['short']} – {en}",
                "expected_close": closed_on or self.today + timedelta(days=rng.randint(7, 150)),
                "pending": big == 0.5 and discount > 20}

    def customers(self) -> None:
        for plan in self.plans:
            won = sum((d["amount"] for d in plan.deals if d["outcome"] == "won"
                       and d["closed_on"] > self.year_ago.date()), Decimal(0))
            firm, rng = plan.company, self.rng
            plan.record = self.out.create("customer", {
                "name": firm["name"], "industry": firm["industry"], "region": firm["region"],
                "tier": "a" if won >= TIER_A else "b" if won >= TIER_B else "c",
                "won_amount_12m": f"{won:.2f}", "province": firm["province"], "address": firm["address"],
                "phone": firm["phone"], "email": f"info@{firm['domain']}", "website": f"https://www.{firm['domain']}/",
                "owner": plan.owner.id, "credit_terms": rng.choice(["prepaid", "net_30", "net_30", "net_60", "net_90"]),
                "lead": plan.lead.id if plan.lead is not None else None,
                "notes": rng.choice([None, None, "年度框架协议客户，付款及时。" if plan.chinese
                                     else "Framework agreement; pays on time."]),
            }, plan.created)
            for _ in range(rng.randint(1, 3)):
                plan.contacts.append(self.contact(plan))

    def contact(self, plan: _Customer) -> int:
        person, handle, wechat = contact_person(self.rng, plan.chinese)
        title_zh, title_en, role = self.rng.choice(TITLES)
        return self.out.create("contact", {
            "name": person, "customer": plan.record.id, "title": title_zh if plan.chinese else title_en,
            "decision_role": role, "phone": unique_mobile(self.rng, plan.chinese, self.phones),
            "email": f"{handle}@{plan.company['domain']}", "wechat": wechat}, plan.created).id

    # opportunities and what follows a won deal ---------------------------------------------------

    def opportunities(self) -> None:
        for plan in self.plans:
            for deal in plan.deals:
                self.opportunity(plan, deal)

    def opportunity(self, plan: _Customer, deal: dict) -> None:
        rng, out = self.rng, self.out
        stage = deal["path"][-1][0] if deal["path"] else "lead"
        record = out.create("opportunity", {
            "name": deal["name"], "customer": plan.record.id, "contact": rng.choice(plan.contacts),
            "amount": f"{deal['amount']:.2f}", "stage": "lead", "probability": str(PROBABILITY[stage]),
            "discount": str(deal["discount"]), "expected_close": deal["expected_close"].isoformat(),
            "source": deal["source"], "products": deal["products"], "owner": plan.owner.id,
            "lead": plan.lead.id if plan.lead is not None and deal["start"] == plan.created else None,
            "product_line": deal["line"],
        }, deal["start"])
        reason = rng.choice(LOST_REASONS)[0 if plan.chinese else 1]
        closing = {"closed_on": deal["closed_on"].isoformat() if deal["closed_on"] else None}
        # The probability is where the deal stands today from the start (a save per stage would
        # double the writes of the load).
        values = {"won": closing, "lost": {**closing, "lost_reason": reason}}
        out.walk(record, "stage", deal["path"], values=values, leave_pending=deal["pending"])
        if deal["pending"]:  # the discount waits for a manager; the deal asks to move on
            out.walk(record, "stage", [("negotiation", self.now - timedelta(hours=rng.randint(2, 48)))],
                     leave_pending=True)
        if plan.lead is not None and record.data.get("lead") == plan.lead.id:
            out.walk(plan.lead, "status", [("converted", deal["start"])],
                     values={"converted": {"customer": plan.record.id, "opportunity": record.id}})
        self.deal_follow_ups(plan, deal, record, stage)
        times = dict(deal["path"])
        if "proposal" in times and out.has("quotation"):
            quotation = self.quotation(plan, deal, record, times, stage)
            if "contract" in times and out.has("contract"):
                self.contract(plan, deal, record, quotation, times)
        if deal["outcome"] == "won" and deal["closed_on"] > self.year_ago.date():
            self.won_by_rep[plan.owner.id] += deal["amount"]

    def deal_follow_ups(self, plan: _Customer, deal: dict, record: Record, stage: str) -> None:
        if not self.out.has("follow_up"):
            return
        rng = self.rng
        end = deal["path"][-1][1] if deal["outcome"] != "open" else self.now - timedelta(hours=1)
        count = max(1, round(rng.randint(1, 3) * ACTIVITY.get(plan.owner.username, 1.0)))
        moments = sorted(self.between(deal["start"], end) for _ in range(count))
        for i, at in enumerate(moments):
            last_open = i == count - 1 and deal["outcome"] == "open"
            next_date = self.today + timedelta(days=rng.randint(-5, 21)) if last_open else None
            self.follow_up({"customer": plan.record.id, "opportunity": record.id, "contact": rng.choice(plan.contacts),
                            "method": rng.choice(list(FOLLOW_UPS))}, plan.owner, plan.chinese, at, next_date)

    def quotation(self, plan: _Customer, deal: dict, record: Record, times: dict, stage: str) -> Record:
        rng = self.rng
        created = times["proposal"] + timedelta(hours=2)
        quote = self.out.create("quotation", {
            "opportunity": record.id, "customer": plan.record.id, "owner": plan.owner.id, "status": "draft",
            "lines": [{k: v for k, v in x.items() if k != "kind" and v is not None} for x in deal["lines"]],
            "discount": str(deal["discount"]), "valid_until": (created.date() + timedelta(days=30)).isoformat(),
        }, created)
        sent = created + timedelta(hours=rng.randint(2, 30))
        if deal["pending"]:
            self.out.walk(quote, "status", [("sent", min(sent, self.now - timedelta(hours=1)))], leave_pending=True)
            return quote
        steps = [("sent", sent)]
        if "contract" in times:
            steps.append(("accepted", max(times["contract"] - timedelta(hours=4), sent + timedelta(hours=1))))
        elif deal["outcome"] == "lost":
            steps.append((rng.choice(["rejected", "rejected", "expired"]), deal["path"][-1][1]))
        self.out.walk(quote, "status", [(s, min(at, self.now - timedelta(minutes=30))) for s, at in steps])
        return quote

    def contract(self, plan: _Customer, deal: dict, record: Record, quotation: Record, times: dict) -> None:
        rng = self.rng
        created = times["contract"] + timedelta(hours=1)
        signed = times.get("won")
        start = (signed or self.now).date() + timedelta(days=rng.randint(3, 20))
        months = 12 if deal["line"] == "software" or "support" in deal["products"] else rng.choice([3, 6, 9, 12])
        end = start + timedelta(days=round(months * 30.4))
        contract = self.out.create("contract", {
            "name": deal["name"], "customer": plan.record.id, "opportunity": record.id, "quotation": quotation.id,
            "owner": plan.owner.id, "amount": f"{deal['amount']:.2f}", "product_line": deal["line"], "status": "draft",
            "start_date": start.isoformat(), "end_date": end.isoformat(),
        }, created)
        review = min(created + timedelta(hours=rng.randint(2, 20)), self.now - timedelta(hours=1))
        if signed is None:  # still being signed: the customer signed, the approval is waiting
            sign = {"signed_on": review.date().isoformat(), "signature": self.out.signature(rng)}
            if deal["outcome"] == "open" and sign["signature"]:
                self.out.walk(contract, "status", [("approval", review)])
                self.out.walk(contract, "status", [("signed", review + timedelta(minutes=20))],
                              values={"signed": sign}, leave_pending=True)
            return
        signature = self.out.signature(rng)
        if signature is None:
            self.out.walk(contract, "status", [("approval", review)])
            return
        steps = [("approval", min(review, signed - timedelta(hours=4))), ("signed", signed - timedelta(hours=1))]
        start_at = self.moment(start, hour=1)
        if start_at < self.now:
            steps.append(("executing", start_at))
            if end < self.today:
                steps.append(("completed", self.moment(end, hour=9)))
        self.out.walk(contract, "status", steps,
                      values={"signed": {"signed_on": signed.date().isoformat(), "signature": signature}})
        self.contracts.append((contract, plan, start))
        self.payments(contract, plan, deal, signed.date(), end)

    def payments(self, contract: Record, plan: _Customer, deal: dict, signed: date, end: date) -> None:
        if not self.out.has("payment"):
            return
        rng = self.rng
        count = rng.randint(2, 4)
        shares = [rng.randint(2, 5) for _ in range(count)]
        amounts = [(deal["amount"] * s / sum(shares)).quantize(Decimal("0.01")) for s in shares]
        amounts[-1] = deal["amount"] - sum(amounts[:-1])
        first, last = signed + timedelta(days=10), max(end, signed + timedelta(days=40))
        for n, amount in enumerate(amounts, start=1):
            due = first + (last - first) * (n - 1) / max(count - 1, 1)
            values = {"name": f"{contract.title} · {n}/{count}", "contract": contract.id, "customer": plan.record.id,
                      "owner": plan.owner.id, "installment": n, "due_date": due.isoformat(),
                      "amount_due": f"{amount:.2f}", "status": "planned"}
            if due < self.today:
                paid_on = min(due + timedelta(days=rng.randint(-5, 25)), self.today - timedelta(days=1))
                status = rng.choices(["received", "partly_received", "overdue"], weights=[76, 9, 15])[0]
                share = {"received": Decimal(1), "partly_received": Decimal("0.5"), "overdue": Decimal(0)}[status]
                values.update(status=status)
                if status != "overdue":
                    values.update(received_on=paid_on.isoformat(), amount_received=f"{amount * share:.2f}")
            self.out.create("payment", values, self.moment(signed))

    # after sales and targets ------------------------------------------------------------------

    def tickets(self) -> None:
        if not self.out.has("ticket") or not self.contracts:
            return
        rng = self.rng
        for _ in range(self.count("ticket")):
            contract, plan, start = rng.choice(self.contracts)
            opened = self.between(self.moment(start), self.now - timedelta(hours=1))
            kind = rng.choices(list(TICKETS), weights=[2, 5, 3, 1, 2])[0]
            priority = rng.choices(list(SLA_HOURS), weights=[1, 3, 5, 2])[0]
            record = self.out.create("ticket", {
                "subject": rng.choice(TICKETS[kind])[0 if plan.chinese else 1], "customer": plan.record.id,
                "contract": contract.id, "kind": kind, "priority": priority,
                "opened_at": opened.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "sla_due": (opened + timedelta(hours=SLA_HOURS[priority])).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "status": "open", "owner": plan.owner.id}, opened)
            age_hours = (self.now - opened).total_seconds() / 3600
            late = rng.random() < 0.2  # one in five misses its SLA
            resolve = opened + timedelta(hours=SLA_HOURS[priority] * rng.uniform(1.1, 3) if late
                                         else SLA_HOURS[priority] * rng.uniform(0.1, 0.9))
            steps = [("in_progress", opened + (resolve - opened) / 4)]
            if resolve < self.now:
                steps.append(("resolved", resolve))
                closed = resolve + timedelta(days=rng.randint(1, 5))
                if closed < self.now and age_hours > 24 * 7:
                    steps.append(("closed", closed))
            elif rng.random() < 0.4:
                steps = []
            resolution = rng.choice(RESOLUTIONS)[0 if plan.chinese else 1]
            self.out.walk(record, "status", steps, values={
                "resolved": {"resolution": resolution},
                "closed": {"satisfaction": rng.choices([5, 4, 3, 2], weights=[5, 4, 2, 1])[0]}})

    def targets(self) -> None:
        if not self.out.has("target"):
            return
        year, staff = self.today.year, self.out.staff
        seasons = [Decimal("0.2"), Decimal("0.25"), Decimal("0.25"), Decimal("0.3")]
        start = self.moment(date(year, 1, 1) - timedelta(days=10), hour=2)
        by_team: dict[str, Decimal] = {}
        for rep in staff.reps:
            # Roughly what they won in the last twelve months, plus a tenth.
            yearly = max(Decimal(self.won_by_rep[rep.id]) * Decimal("1.1"), Decimal(300000) * Decimal(self.scale))
            yearly = (yearly / 10000).quantize(Decimal(1)) * 10000
            team = staff.team_of[rep.id]
            by_team[team] = by_team.get(team, Decimal(0)) + yearly
            self.period_targets(year, seasons, yearly, {"rep": rep.id}, rep.display_name, start)
        for team, yearly in by_team.items():
            self.period_targets(year, seasons, yearly, {"team": TEAMS[team][0]}, TEAMS[team][0], start)

    def period_targets(self, year: int, seasons: list[Decimal], yearly: Decimal, who: dict, name: str,
                       at: datetime) -> None:
        self.out.create("target", {"name": f"{year} · {name}", "period_type": "year", "year": year,
                                   "amount": f"{yearly:.2f}", **who}, at)
        for quarter, share in enumerate(seasons, start=1):
            amount = (yearly * share).quantize(Decimal("0.01"))
            self.out.create("target", {"name": f"{year} Q{quarter} · {name}", "period_type": "quarter", "year": year,
                                       "quarter": quarter, "amount": f"{amount:.2f}", **who}, at)
            for month in range(quarter * 3 - 2, quarter * 3 + 1):
                self.out.create("target", {
                    "name": f"{year}-{month:02d} · {name}", "period_type": "month", "year": year,
                    "quarter": quarter, "month": month, "amount": f"{amount / 3:.2f}", **who}, at)


__all__ = ["STAFF", "TARGETS", "TEAMS", "ensure_staff", "load_demo_data"]

"""An app whose every admin-defined string and record value is an XSS payload, for test_xss.py.

The payloads (tests/cases/xss_payloads.json) are handed out in turn, so each is used at least once
and most several times; every place that receives one is named (a *slot*), so that the browser
tests can say which payload must show, literally, on which page. Everything goes through the
real services: definitions are saved and published with the builder's checks, records are
created, moved and approved with the runtime's, files are uploaded through the API.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask

from formloom.builder import definitions
from formloom.platform import auth
from formloom.platform.auth import Cause
from formloom.platform.db import new_session
from formloom.platform.models import ApprovalRequest, Notification, RuleRun
from formloom.runtime import approvals, dispatch, files, pipelines, records
from tests.conftest import bearer
from tests.factories import make_user

PAYLOADS_FILE = Path(__file__).resolve().parents[1] / "cases" / "xss_payloads.json"
APP = "xss"


def load_payloads() -> list[dict]:
    return json.loads(PAYLOADS_FILE.read_text(encoding="utf-8"))["payloads"]


class Slots:
    """Hands out the payloads in turn and remembers which one went where."""

    def __init__(self, payloads: list[dict]):
        self.payloads = payloads
        self.at = 0
        self.placed: dict[str, str] = {}

    def take(self, slot: str, *, fits=lambda text: True) -> str:
        """The next payload that ``fits``, placed in ``slot`` (a name unique in the seed)."""
        assert slot not in self.placed, f"slot {slot} used twice"
        for _ in range(len(self.payloads)):
            text = self.payloads[self.at % len(self.payloads)]["payload"]
            self.at += 1
            if fits(text):
                self.placed[slot] = text
                return text
        raise AssertionError(f"no payload fits slot {slot}")

    def label(self, slot: str) -> dict:
        """A bilingual label, a different payload in each language."""
        return {"en": self.take(f"{slot}.en"), "zh-CN": self.take(f"{slot}.zh")}

    def value(self, slot: str) -> str:
        """A payload usable as a stored value: values are trimmed, so none with spaces at either end."""
        return self.take(slot, fits=lambda text: text == text.strip())

    def by_id(self, slot: str, payload_id: str) -> str:
        """One particular payload (one that fits a field's format, such as an e-mail address)."""
        text = next(p["payload"] for p in self.payloads if p["id"] == payload_id)
        self.placed[slot] = text
        return text

    def __getitem__(self, slot: str) -> str:
        return self.placed[slot]


@dataclass
class Seeded:
    slots: Slots
    payloads: list[dict]
    records: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=dict)
    pending_request: int = 0
    decided_request: int = 0
    rule_run: int = 0
    file_name: str = ""
    rep_name: str = ""


def entity_body(s: Slots, version: int) -> dict:
    """The deal entity; ``version`` 2 changes some labels and 3 (the draft) adds a field and drops a choice."""
    v = f"v{version}."
    kinds = [{"value": s["kind.opt0.value"], "label": s["kind.opt0.label"], "color": "#90caf9"},
             {"value": s["kind.opt1.value"], "label": s["kind.opt1.label"]},
             {"value": s["kind.opt2.value"], "label": s["kind.opt2.label"]}]
    if version == 3:
        kinds = kinds[1:]  # the choice record "full" holds: publishing asks where those records go
    fields = [
        {"key": "name", "type": "text", "label": {"en": s["name.label.en"], "zh-CN": s["name.label.zh"]},
         "help": s["name.help"], "placeholder": s["name.placeholder"], "required": True, "max_length": 1000},
        {"key": "notes", "type": "textarea", "label": s[v + "notes.label"] if version > 1 else s["notes.label"],
         "help": s["notes.help"], "placeholder": s["notes.placeholder"]},
        {"key": "email", "type": "email", "label": s["email.label"], "help": s["email.help"]},
        {"key": "site", "type": "url", "label": s["site.label"], "placeholder": s["site.placeholder"]},
        {"key": "kind", "type": "select", "label": s["kind.label"], "help": s["kind.help"], "options": kinds},
        {"key": "topics", "type": "multiselect", "label": s["topics.label"],
         "options": [{"value": s[f"topics.opt{i}.value"], "label": s[f"topics.opt{i}.label"]} for i in range(3)]},
        {"key": "tags", "type": "tags", "label": s["tags.label"], "max_length": 200},
        {"key": "amount", "type": "currency", "label": s["amount.label"], "min": 0, "currency": "CNY"},
        {"key": "close_date", "type": "date", "label": s["close_date.label"]},
        {"key": "stage", "type": "select", "label": s["stage.label"], "default": "lead",
         "options": [{"value": key, "label": s[f"stage.opt.{key}"]} for key in STAGES]},
        {"key": "account", "type": "relation", "label": s["account.label"], "target": "account"},
        {"key": "owner", "type": "user", "label": s["owner.label"], "default_from": "current_user"},
        {"key": "lines", "type": "table", "label": s["lines.label"], "fields": [
            {"key": "item", "type": "text", "label": s["lines.item.label"]},
            {"key": "qty", "type": "integer", "label": s["lines.qty.label"], "min": 0},
            {"key": "grade", "type": "select", "label": s["lines.grade.label"],
             "options": [{"value": s["lines.grade.opt.value"], "label": s["lines.grade.opt.label"]}]}]},
        {"key": "total", "type": "formula", "label": s["total.label"], "expression": "SUM(lines.qty)"},
        {"key": "attachments", "type": "file", "label": s["attachments.label"], "max_files": 5},
        {"key": "flag", "type": "boolean", "label": s["flag.label"]},
        {"key": "lost_reason", "type": "textarea", "label": s["lost_reason.label"]},
    ]
    if version == 3:
        fields.append({"key": "added", "type": "text", "label": s["v3.added.label"]})
    return {"formloom": 1, "kind": "entity", "key": "deal", "label": {"en": s["deal.label.en"], "zh-CN": s["deal.label.zh"]},
            "description": s["deal.description"], "title_field": "name", "owner_field": "owner", "fields": fields,
            "checks": [{"condition": {"field": "notes", "op": "not_empty"}, "when": {"field": "flag", "op": "eq", "value": True},
                        "field": "notes", "message": s["deal.check.message"]}]}


STAGES = ("lead", "proposal", "review", "won", "lost")


def fill_slots(s: Slots) -> None:
    """Give every string of the definitions its payload (in the order the definitions use them)."""
    s.label("app.label")
    s.take("app.description")
    s.label("deal.label")
    s.take("deal.description")
    s.label("name.label")
    for slot in ("name.help", "name.placeholder", "notes.label", "v2.notes.label", "v3.notes.label", "notes.help",
                 "notes.placeholder", "email.label", "email.help", "site.label", "site.placeholder",
                 "kind.label", "kind.help", "kind.opt0.label", "kind.opt1.label", "kind.opt2.label",
                 "topics.label", "topics.opt0.label", "topics.opt1.label", "topics.opt2.label", "tags.label",
                 "amount.label", "close_date.label", "stage.label", "account.label", "owner.label", "lines.label",
                 "lines.item.label", "lines.qty.label", "lines.grade.label", "lines.grade.opt.label", "total.label",
                 "attachments.label", "flag.label", "lost_reason.label", "deal.check.message", "v3.added.label"):
        s.take(slot)
    for slot in ("kind.opt0.value", "kind.opt1.value", "kind.opt2.value", "topics.opt0.value",
                 "topics.opt1.value", "topics.opt2.value", "lines.grade.opt.value"):
        s.value(slot)
    for key in STAGES:
        s.take(f"stage.opt.{key}")


def account_body(s: Slots) -> dict:
    return {"formloom": 1, "kind": "entity", "key": "account", "label": s.label("account_entity.label"),
            "title_field": "name",
            "fields": [{"key": "name", "type": "text", "label": s.take("account_entity.name.label"),
                        "help": s.take("account_entity.name.help"), "required": True, "max_length": 1000},
                       {"key": "region", "type": "select", "label": s.take("account_entity.region.label"),
                        "options": [{"value": s.value("region.opt.value"), "label": s.take("region.opt.label")}]}]}


def note_draft(s: Slots) -> dict:
    """A draft entity with problems whose messages repeat payloads (a choice value given twice)."""
    twice = s.value("note.choice.value")
    return {"formloom": 1, "kind": "entity", "key": "note", "label": s.take("note.label"), "title_field": "title",
            "fields": [{"key": "title", "type": "text", "label": s.take("note.title.label")},
                       {"key": "choice", "type": "select", "label": s.take("note.choice.label"),
                        "options": [{"value": twice, "label": s.take("note.choice.opt0.label")},
                                    {"value": twice, "label": s.take("note.choice.opt1.label")}]}]}


def form_body(s: Slots) -> dict:
    return {"formloom": 1, "kind": "form", "key": "deal", "entity": "deal", "label": s.take("form.label"),
            "description": s.take("form.description"),
            "sections": [
                {"label": s.take("section0.label"), "help": s.take("section0.help"),
                 "fields": [{"text": s.take("section0.text")},
                            {"field": "name", "help": s.take("form.name.help"), "width": "half"},
                            "email", "site", "kind", "topics", "tags", "account", "owner", "stage", "lost_reason"]},
                {"label": s.label("section1.label"), "help": s.take("section1.help"),
                 "fields": [{"text": s.label("section1.text")}, "notes", "amount", "close_date", "lines", "total",
                            "attachments", "flag"]}]}


def quick_form_body(s: Slots) -> dict:
    return {"formloom": 1, "kind": "form", "key": "deal_quick", "entity": "deal", "label": s.take("quick.label"),
            "sections": [{"label": s.take("quick.section.label"),
                          "fields": [{"text": s.take("quick.text")}, "name", "amount"]}]}


def pipeline_body(s: Slots) -> dict:
    def stage(key: str, **more: Any) -> dict:
        return {"key": key, "label": s.take(f"pipeline.stage.{key}.label"), "help": s.take(f"pipeline.stage.{key}.help"),
                **more}

    return {
        "formloom": 1, "kind": "pipeline", "key": "sales", "label": s.label("pipeline.label"),
        "description": s.take("pipeline.description"), "entity": "deal", "stage_field": "stage",
        "amount_field": "amount", "date_field": "close_date", "card_fields": ["account", "kind", "tags"],
        "stages": [
            stage("lead", color="#90a4ae", probability=10),
            stage("proposal", color="#5c6bc0", probability=40, gate={
                "required": ["amount"],
                "conditions": [{"condition": {"field": "amount", "op": "gt", "value": 0},
                                "message": s.take("gate.proposal.condition.message")}],
                "checklist": [{"key": "confirmed", "label": s.take("gate.proposal.checklist.confirmed")}]}),
            stage("review", color="#ffa000", probability=60, approval={
                "steps": [{"label": s.take("approval.step0.label"), "approvers": {"users": ["admin"]}}],
                "self_approval": False}),
            stage("won", color="#2e7d32", probability=100, outcome="won", gate={
                "checklist": [{"key": "signed", "label": s.take("gate.won.checklist.signed")},
                              {"key": "paid", "label": s.label("gate.won.checklist.paid")}]}),
            stage("lost", color="#c62828", probability=0, outcome="lost", gate={
                "required": ["lost_reason"],
                "conditions": [{"condition": {"field": "flag", "op": "not_empty"},
                                "message": s.label("gate.lost.condition.message")}]}),
        ],
        "transitions": [
            {"from": "lead", "to": "proposal", "label": s.take("transition.lead_proposal.label")},
            {"from": "proposal", "to": "review"},
            {"from": "review", "to": "won"},
            {"from": ["proposal", "review"], "to": "lead", "condition": {"field": "amount", "op": "not_empty"},
             "message": s.take("transition.back.message")},
            {"from": "*", "to": "lost", "label": s.take("transition.lost.label")},
        ],
    }


def rule_bodies(s: Slots) -> list[dict]:
    notify = {"formloom": 1, "kind": "rule", "key": "notify_new", "label": s.label("rule.notify.label"),
              "description": s.take("rule.notify.description"), "entity": "deal", "trigger": {"type": "created"},
              "actions": [{"type": "notify", "to": {"users": ["admin"]},
                           "title": {"en": s.take("rule.notify.title") + " {title}", "zh-CN": s.take("rule.notify.title.zh")},
                           "message": s.take("rule.notify.message")},
                          {"type": "email", "to": {"users": ["admin"]}, "subject": s.take("rule.email.subject"),
                           "body": s.take("rule.email.body")}]}
    entered = {"formloom": 1, "kind": "rule", "key": "stage_alert", "label": s.take("rule.alert.label"),
               "entity": "deal", "trigger": {"type": "stage_entered", "stage": "proposal"},
               "condition": {"field": "kind", "op": "eq", "value": s["kind.opt1.value"]},
               "actions": [{"type": "notify", "to": {"owner": True}, "title": s.take("rule.alert.title"),
                            "message": s.take("rule.alert.message")}]}
    return [notify, entered]


def draft_rule(s: Slots) -> dict:
    return {"formloom": 1, "kind": "rule", "key": "draft_move", "label": s.take("rule.draft.label"), "enabled": False,
            "entity": "deal", "trigger": {"type": "field_changed", "field": "kind", "to": s["kind.opt2.value"]},
            "condition": {"all": [{"field": "topics", "op": "contains", "value": s["topics.opt0.value"]},
                                  {"field": "name", "op": "eq", "value": s.take("rule.draft.condition.value")}]},
            "actions": [{"type": "move", "stage": "proposal", "comment": s.take("rule.draft.move.comment")},
                        {"type": "update", "values": {"notes": s.take("rule.draft.update.notes")}}]}


def seed(flask_app: Flask) -> Seeded:
    """Build the app, its definitions, records, moves, approvals and rule runs."""
    payloads = load_payloads()
    s = Slots(payloads)
    out = Seeded(slots=s, payloads=payloads)
    db = new_session(flask_app)
    try:
        admin = make_user(db, "admin", admin=True, display_name="Ada Admin")
        out.rep_name = s.take("rep.display_name")
        rep = make_user(db, "rep", display_name=out.rep_name)
        fill_slots(s)
        app = definitions.create_app(db, admin, APP, {"en": s["app.label.en"], "zh-CN": s["app.label.zh"]},
                                     s["app.description"])
        auth.grant_app(db, rep, app)
        definitions.save_and_publish(db, admin, app, account_body(s))
        definitions.save_and_publish(db, admin, app, entity_body(s, 1))
        definitions.save_and_publish(db, admin, app, entity_body(s, 2))  # labels changed: the history shows it
        definitions.save_and_publish(db, admin, app, form_body(s))
        definitions.save_and_publish(db, admin, app, quick_form_body(s))
        definitions.save_and_publish(db, admin, app, pipeline_body(s))
        for body in rule_bodies(s):
            definitions.save_and_publish(db, admin, app, body)
        definitions.save_draft(db, admin, app, "rule", "draft_move", draft_rule(s))
        _, problems = definitions.save_draft(db, admin, app, "entity", "note", note_draft(s))
        assert problems, "the note draft is meant to have problems"
        db.commit()
        _records(db, flask_app, app, admin, rep, s, out)
        # The deal entity's draft: a label changed, a field added, a choice held by a record removed.
        definitions.save_draft(db, admin, app, "entity", "deal", entity_body(s, 3))
        db.commit()
        dispatch.run_pending(flask_app)
        db.expire_all()
        out.rule_run = db.query(RuleRun).order_by(RuleRun.id).first().id
        assert db.query(Notification).count() > 0
    finally:
        db.close()
    return out


def _upload(flask_app: Flask, db, user, name: str) -> int:
    client = flask_app.test_client()
    response = client.post(f"/api/v1/apps/{APP}/files", headers=bearer(db, user),
                           data={"file": (io.BytesIO(b"plain text\n"), name, "text/plain")},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def _records(db, flask_app: Flask, app, admin, rep, s: Slots, out: Seeded) -> None:
    as_rep = Cause.for_user(rep)

    def create(slot: str, entity: str = "deal", user=rep, **values):
        record = records.create(db, user, Cause.for_user(user), app, entity, values)
        db.flush()
        (out.accounts if entity == "account" else out.records)[slot] = record.id
        return record

    first = create("first", "account", name=s.value("account.first.name"), region=s["region.opt.value"])
    create("second", "account", name=s.value("account.second.name"))
    # File names lose folders and <>:"|?* (files.sanitize_filename): the page shows what is kept.
    # No quote either: the test client would not escape it in the multipart header (browsers do).
    upload_name = s.take("file.name", fits=lambda text: not set(text) & set('/\\"')) + ".txt"
    out.file_name = files.sanitize_filename(upload_name)
    file_id = _upload(flask_app, db, rep, upload_name)
    full = create(
        "full", name=s.value("full.name"), notes=s.value("full.notes.0") + "\n" + s.value("full.notes.1"),
        email=s.by_id("full.email", "x77"), site=s.by_id("full.site", "x76"), kind=s["kind.opt0.value"],
        topics=[s["topics.opt0.value"], s["topics.opt2.value"]], tags=[s.value("full.tag0"), s.value("full.tag1")],
        amount="10", close_date="2026-06-30", account=first.id, owner=rep.id, flag=True,
        lines=[{"item": s.value("full.line0.item"), "qty": 2, "grade": s["lines.grade.opt.value"]},
               {"item": s.value("full.line1.item"), "qty": 3}],
        attachments=[file_id], lost_reason=s.value("full.lost_reason"))
    db.commit()
    records.update(db, rep, as_rep, app, full, {"name": s.value("full.name.changed"),
                                                "notes": s.value("full.notes.changed")}, full.version)
    moved = create("moved", name=s.value("moved.name"), amount="100", kind=s["kind.opt1.value"],
                   site=s.by_id("moved.site", "x78"))
    db.commit()
    pipelines.move(db, rep, as_rep, app, moved, "proposal", checklist=["confirmed"],
                   comment=s.value("moved.comment"))
    waiting = create("waiting", name=s.value("waiting.name"), amount="50", stage="proposal")
    db.commit()
    result = pipelines.move(db, rep, as_rep, app, waiting, "review", comment=s.value("waiting.comment"))
    out.pending_request = result.request.id
    decided = create("decided", name=s.value("decided.name"), amount="70", stage="proposal")
    db.commit()
    result = pipelines.move(db, rep, as_rep, app, decided, "review", comment=s.value("decided.comment"))
    db.commit()
    approvals.decide(db, admin, result.request.id, "approve", comment=s.value("decided.approval.comment"))
    out.decided_request = result.request.id
    create("bare", name=s.value("bare.name"), owner=rep.id)  # no amount: the board cannot move it on
    db.commit()
    assert db.get(ApprovalRequest, out.pending_request).status == "pending"

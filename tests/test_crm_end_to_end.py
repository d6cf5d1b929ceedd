"""One customer through the whole CRM process, through the UI and the API, as a team works it.

A website lead arrives through the API and is handed to the rep; the rep logs a follow-up in the
UI and is reminded of the next one; the lead is qualified and converted into a customer and an
opportunity; the deal moves through proposal; a quotation with a 25 % discount waits for the
manager, who approves it in the approvals inbox; the contract is approved and signed; the deal is
won (which dates it and opens an onboarding ticket); the payment comes in; the ticket is worked and
closed; and the rep's commission and target progress show the money.
"""
from __future__ import annotations

import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from formloom.platform import auth
from formloom.platform.models import Notification, Record
from formloom.runtime import dispatch
from formloom.templates_library import install
from tests.conftest import bearer
from tests.factories import csrf_token, login, make_user

BASE = "/api/v1/apps/crm"
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def team(app, db, admin):
    crm = install(db, admin)
    li = make_user(db, "li.wei", display_name="李伟")
    boss = make_user(db, "zhang.min", display_name="张敏")
    auth.grant_app(db, li, crm, "rep")
    auth.grant_app(db, boss, crm, "manager")
    auth.add_team(db, "east", "East", boss, [li])
    db.commit()
    return crm, li, boss


def fresh(db, record_id: int) -> Record:
    db.rollback()
    db.expire_all()
    return db.get(Record, record_id)


def titles(db, user) -> list[str]:
    db.rollback()
    return list(db.scalars(select(Notification.title).where(Notification.user_id == user.id)))


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:2000])
    return response.get_json()


def create(client, headers, entity: str, values: dict) -> dict:
    return ok(client.post(f"{BASE}/records/{entity}", json={"data": values}, headers=headers), 201)


def move(client, headers, entity: str, record_id: int, to: str, status: int = 200, **extra) -> dict:
    return ok(client.post(f"{BASE}/records/{entity}/{record_id}/transition", json={"to": to, **extra},
                          headers=headers), status)


def form_post(client, url: str, data: dict):
    return client.post(url, data={"csrf_token": csrf_token(client, url.split("?")[0] if "/move" not in url else url),
                                  **data})


def test_one_customer_from_lead_to_commission(app, client, db, admin, team):
    _crm, li, boss = team
    integration, rep, manager = bearer(db, admin), bearer(db, li), bearer(db, boss)
    today = datetime.now(SHANGHAI).date()

    # 1. A website enquiry arrives through the API with no owner and is handed to the rep.
    lead = create(client, integration, "lead", {
        "name": "杭州云帆科技有限公司", "contact_name": "王伟", "phone": "+86 571 8888 1234",
        "email": "wang.wei@yunfan.example.cn", "source": "website", "region": "east",
        "industry": "it_software"})
    assert lead["data"].get("owner") is None and lead["data"]["status"] == "new"
    dispatch.run_pending(app)
    assert fresh(db, lead["id"]).data["owner"] == li.id
    assert any("杭州云帆科技有限公司" in t for t in titles(db, li))
    # The same phone number again is refused: two reps never chase one person.
    twice = client.post(f"{BASE}/records/lead", json={"data": {"name": "Again", "phone": "+86 571 8888 1234"}},
                        headers=integration)
    assert twice.status_code == 422 and "phone" in twice.get_json()["error"]["fields"]

    # 2. The rep logs a call in the UI, with the next follow-up the day after tomorrow.
    login(client, "li.wei")
    next_date = today + timedelta(days=2)
    url = "/apps/crm/follow_up/new"
    logged = client.post(url, data={
        "csrf_token": csrf_token(client, url), "f_subject": "首次电话沟通", "f_lead": str(lead["id"]),
        "f_method": "call", "f_happened_at": datetime.now(SHANGHAI).strftime("%Y-%m-%dT%H:%M"),
        "f_summary": "客户需要CRM系统，预算约20万。", "f_next_follow_up": next_date.isoformat(),
        "f_by": str(li.id)})
    assert logged.status_code == 302, logged.get_data(as_text=True)[:3000]
    nine = datetime.combine(next_date, datetime.min.time(), SHANGHAI).replace(hour=9).astimezone(UTC)
    dispatch.run_pending(app, now=nine - timedelta(minutes=5))
    reminder = [t for t in titles(db, li) if "首次电话沟通" in t]
    assert reminder == []  # not before 09:00 on the day
    dispatch.run_pending(app, now=nine + timedelta(minutes=1))
    assert [t for t in titles(db, li) if "首次电话沟通" in t], titles(db, li)

    # 3. Qualified, then converted into a customer and an opportunity.
    move(client, rep, "lead", lead["id"], "contacted")
    move(client, rep, "lead", lead["id"], "qualified")
    customer = create(client, rep, "customer", {
        "name": "杭州云帆科技有限公司", "industry": "it_software", "region": "east", "owner": li.id,
        "lead": lead["id"], "credit_terms": "net_30"})
    contact = create(client, rep, "contact", {
        "name": "王伟", "customer": customer["id"], "decision_role": "decision_maker",
        "phone": "+86 571 8888 1234"})
    deal = create(client, rep, "opportunity", {
        "name": "云帆 CRM 项目", "customer": customer["id"], "lead": lead["id"], "owner": li.id,
        "amount": "200000", "source": "website", "product_line": "software",
        "products": ["licence", "implementation"]})
    current = fresh(db, lead["id"])
    ok(client.patch(f"{BASE}/records/lead/{lead['id']}", json={
        "version": current.version, "data": {"customer": customer["id"], "opportunity": deal["id"]}},
        headers=rep))
    move(client, rep, "lead", lead["id"], "converted")
    assert fresh(db, lead["id"]).data["status"] == "converted"

    # 4. Needs analysis and proposal, the second through the move page of the UI.
    ok(client.patch(f"{BASE}/records/opportunity/{deal['id']}", json={
        "version": deal["version"], "data": {"contact": contact["id"],
                                             "expected_close": (today + timedelta(days=20)).isoformat()}},
        headers=rep))
    move(client, rep, "opportunity", deal["id"], "needs_analysis")
    url = f"/apps/crm/opportunity/{deal['id']}/move?to=proposal"
    moved = client.post(url, data={"csrf_token": csrf_token(client, url), "to": "proposal"})
    assert moved.status_code == 302, moved.get_data(as_text=True)[:3000]
    assert fresh(db, deal["id"]).data["stage"] == "proposal"

    # 5. A quotation at 25 % off waits for the manager, who approves it in the inbox.
    product = create(client, manager, "product", {
        "name": "CRM 专业版", "code": "SW-100", "line": "software", "unit": "套", "price": "100000"})
    quote = create(client, rep, "quotation", {
        "opportunity": deal["id"], "customer": customer["id"], "owner": li.id, "discount": "25",
        "valid_until": (today + timedelta(days=30)).isoformat(),
        "lines": [{"product": product["id"], "description": "CRM 专业版", "qty": 2, "unit_price": "100000"},
                  {"description": "实施服务", "qty": 1, "unit_price": "40000"}]})
    assert re.fullmatch(r"QT-\d{4}-\d{4}", quote["title"])
    assert Decimal(quote["data"]["subtotal"]) == 240000 and Decimal(quote["data"]["total"]) == 180000
    waiting = move(client, rep, "quotation", quote["id"], "sent", status=202)
    assert fresh(db, quote["id"]).data["status"] == "draft"  # not sent before the manager says so
    assert client.get(f"{BASE}/records/quotation?view=quotations_waiting_approval",
                      headers=manager).get_json()["total"] == 1
    client.post("/logout", data={"csrf_token": csrf_token(client, "/approvals/")})
    login(client, "zhang.min")
    inbox = client.get("/approvals/").get_data(as_text=True)
    request_id = waiting["approval"]["id"]
    assert f"/approvals/{request_id}" in inbox and quote["title"] in inbox
    url = f"/approvals/{request_id}"
    decided = client.post(url, data={"csrf_token": csrf_token(client, url), "decision": "approve",
                                     "comment": "同意，战略客户"})
    assert decided.status_code == 302
    assert fresh(db, quote["id"]).data["status"] == "sent"
    move(client, rep, "quotation", quote["id"], "accepted")
    move(client, rep, "opportunity", deal["id"], "negotiation")
    move(client, rep, "opportunity", deal["id"], "contract", checklist=["quote_accepted"])

    # 6. The contract: approved by the manager, signed with the scan uploaded.
    contract = create(client, rep, "contract", {
        "name": "云帆 CRM 项目合同", "customer": customer["id"], "opportunity": deal["id"],
        "quotation": quote["id"], "owner": li.id, "amount": "180000", "product_line": "software",
        "start_date": today.isoformat(), "end_date": (today + timedelta(days=365)).isoformat()})
    assert re.fullmatch(r"HT-\d{4}-\d{4}", contract["title"])
    move(client, rep, "contract", contract["id"], "approval")
    scan = ok(client.post("/api/v1/apps/crm/files", data={
        "file": (io.BytesIO(b"%PDF-1.4\n% signed contract\n"), "contract-signed.pdf")},
        content_type="multipart/form-data", headers=rep), 201)
    current = fresh(db, contract["id"])
    ok(client.patch(f"{BASE}/records/contract/{contract['id']}", json={
        "version": current.version, "data": {"signed_on": today.isoformat(), "signed_file": scan["id"]}},
        headers=rep))
    signing = move(client, rep, "contract", contract["id"], "signed", status=202)
    ok(client.post(f"/api/v1/approvals/{signing['approval']['id']}/decision",
                   json={"decision": "approve", "comment": "OK"}, headers=manager))
    assert fresh(db, contract["id"]).data["status"] == "signed"

    # 7. Won: the deal is dated and an onboarding ticket opens for the customer.
    move(client, rep, "opportunity", deal["id"], "won", checklist=["contract_signed"])
    dispatch.run_pending(app)
    won = fresh(db, deal["id"])
    assert won.data["stage"] == "won" and won.data["closed_on"] == today.isoformat()
    tickets = ok(client.get(f"{BASE}/records/ticket", headers=rep))["items"]
    assert [(t["data"]["customer"], t["data"]["kind"], t["data"]["owner"]) for t in tickets] == \
        [(customer["id"], "onboarding", li.id)]
    ticket = tickets[0]

    # 8. The money comes in.
    payment = create(client, rep, "payment", {
        "name": f"{contract['title']} · 1/1", "contract": contract["id"], "customer": customer["id"],
        "owner": li.id, "installment": 1, "due_date": today.isoformat(), "amount_due": "180000"})
    ok(client.patch(f"{BASE}/records/payment/{payment['id']}", json={
        "version": payment["version"], "data": {"status": "received", "received_on": today.isoformat(),
                                                "amount_received": "180000"}}, headers=rep))

    # 9. After-sales: the ticket is worked and closed in the UI, with the customer's score.
    client.post("/logout", data={"csrf_token": csrf_token(client, "/approvals/")})
    login(client, "li.wei")
    for stage in ("in_progress", "resolved", "closed"):
        if stage == "resolved":
            current = fresh(db, ticket["id"])
            ok(client.patch(f"{BASE}/records/ticket/{ticket['id']}", json={
                "version": current.version, "data": {"resolution": "系统已上线，完成培训。", "satisfaction": 5}},
                headers=rep))
        url = f"/apps/crm/ticket/{ticket['id']}/move?to={stage}"
        moved = client.post(url, data={"csrf_token": csrf_token(client, url), "to": stage})
        assert moved.status_code == 302, (stage, moved.get_data(as_text=True)[:3000])
    assert fresh(db, ticket["id"]).data["status"] == "closed"

    # 10. The rep's commission (5 % on software, paid on what was received) and target progress.
    month = today.strftime("%Y-%m")
    board = ok(client.get(f"{BASE}/incentives?period={month}", headers=rep))
    mine = next(row for row in board["rows"] if row["user"] == li.id)
    assert (Decimal(str(mine["amount"])), Decimal(str(mine["commission"])), mine["rank"]) == (180000, 9000, 1)
    statement = ok(client.get(f"{BASE}/incentives/statement?period={month}", headers=rep))
    assert [Decimal(str(line["commission"])) for line in statement["lines"]] == [9000]
    create(client, manager, "target", {
        "name": f"{month} · 李伟", "period_type": "month", "year": today.year, "month": today.month,
        "rep": li.id, "amount": "300000"})
    targets = ok(client.get(f"{BASE}/dashboards/targets?period=this_month", headers=manager))
    by_rep = next(w for w in targets["widgets"] if w["key"] == "by_rep")
    row = next(r for r in by_rep["rows"] if r["key"] == str(li.id))
    assert row["values"]["target"] == 300000 and row["values"]["actual"] == 200000
    assert row["values"]["attainment"] == pytest.approx(200000 / 300000, abs=1e-3)
    # And the whole story is on the record's history, each step with its cause.
    history = ok(client.get(f"{BASE}/records/opportunity/{deal['id']}/history", headers=rep))
    stages = [c["changes"]["stage"][1] for c in history["items"] if "stage" in (c.get("changes") or {})]
    assert stages[:5] == ["won", "contract", "negotiation", "proposal", "needs_analysis"]  # newest first
    assert date.fromisoformat(won.data["closed_on"]) == today

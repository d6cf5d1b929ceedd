"""The reps' pipeline pages: the record's stage bar, moving with the gate's fields, approvals in HTML."""
from __future__ import annotations

import re

import pytest

from formloom.platform import auth
from formloom.platform.auth import Cause
from formloom.platform.models import Record
from formloom.runtime import records
from tests.factories import csrf_token, login, make_user


@pytest.fixture(autouse=True)
def boss(db, pipes):
    """The sales manager, who approves discounts."""
    manager = make_user(db, "boss", display_name="Bea Boss")
    auth.grant_app(db, manager, pipes, role="manager")
    db.commit()
    return manager


def deal(db, rep, app, **values):
    record = records.create(db, rep, Cause.for_user(rep), app, "deal", {"name": "Northwind", **values})
    db.commit()
    return record


def post(client, url, data):
    return client.post(url, data={"csrf_token": csrf_token(client, url), **data})


def stage_of(db, record) -> str:
    db.rollback()  # a fresh snapshot: the request committed in its own session
    db.expire_all()
    return db.get(Record, record.id).data["stage"]


def test_record_page_shows_the_stage_bar_and_the_moves_allowed_from_here(client, db, rep, pipes):
    record = deal(db, rep, pipes)
    login(client, "rep")
    page = client.get(f"/apps/pipes/deal/{record.id}").get_data(as_text=True)
    assert re.search(r'<li class="stage-step current[^"]*"[^>]*data-stage="lead"', page)
    moves = re.findall(r'/move\?to=(\w+)', page)
    assert moves == ["qualified", "proposal", "lost"]


def test_move_page_asks_for_the_missing_fields_and_saves_them_with_the_move(client, db, rep, pipes):
    acme = records.create(db, rep, Cause.for_user(rep), pipes, "company", {"name": "Acme"})
    record = deal(db, rep, pipes)
    login(client, "rep")
    url = f"/apps/pipes/deal/{record.id}/move?to=proposal"
    page = client.get(url).get_data(as_text=True)
    assert 'name="f_amount"' in page and 'name="f_company"' in page  # the gate's fields, to fill in place
    refused = post(client, url, {"to": "proposal", "f_amount": "", "f_company": ""})
    assert refused.status_code == 422
    assert "To enter Proposal, fill Amount and Customer." in refused.get_data(as_text=True)
    assert stage_of(db, record) == "lead"
    moved = post(client, url, {"to": "proposal", "f_amount": "1200", "f_company": str(acme.id), "comment": "Sent it"})
    assert moved.status_code == 302
    db.rollback()  # a fresh snapshot: the request committed in its own session
    db.expire_all()
    stored = db.get(Record, record.id)
    assert stored.data["stage"] == "proposal" and stored.data["amount"] == "1200.00"
    page = client.get(f"/apps/pipes/deal/{record.id}").get_data(as_text=True)
    assert "Stage history" in page


def test_move_page_refuses_an_unticked_checklist_and_moves_once_it_is_ticked(client, db, rep, pipes):
    record = deal(db, rep, pipes, close_date="2026-12-01", stage="negotiation")
    login(client, "rep")
    url = f"/apps/pipes/deal/{record.id}/move?to=won"
    assert "Contract signed" in client.get(url).get_data(as_text=True)
    refused = post(client, url, {"to": "won"})
    assert refused.status_code == 422 and "To enter Won, confirm: Contract signed." in refused.get_data(as_text=True)
    assert post(client, url, {"to": "won", "checklist": "contract_signed"}).status_code == 302
    assert stage_of(db, record) == "won"


def test_a_move_needing_approval_waits_and_the_manager_approves_it_in_the_inbox(client, db, rep, pipes):
    acme = records.create(db, rep, Cause.for_user(rep), pipes, "company", {"name": "Acme"})
    record = deal(db, rep, pipes, amount=900, company=acme.id, discount=35, close_date="2026-12-01")
    login(client, "rep")
    assert post(client, f"/apps/pipes/deal/{record.id}/move?to=proposal", {"to": "proposal"}).status_code == 302
    url = f"/apps/pipes/deal/{record.id}/move?to=negotiation"
    assert "needs approval" in client.get(url).get_data(as_text=True)
    assert post(client, url, {"to": "negotiation", "comment": "Big logo"}).status_code == 302
    assert stage_of(db, record) == "proposal"
    page = client.get(f"/apps/pipes/deal/{record.id}").get_data(as_text=True)
    assert "Waiting for approval" in page and "asked for approval to move to" in page
    assert "Requested by me" in client.get("/approvals/?box=requested").get_data(as_text=True)

    client.post("/logout", data={"csrf_token": csrf_token(client, "/approvals/")})
    login(client, "boss")
    inbox = client.get("/approvals/").get_data(as_text=True)
    assert 'class="pill"' in inbox and "Northwind" in inbox and "Big logo" in inbox
    request_id = re.search(r"/approvals/(\d+)", inbox).group(1)
    assert post(client, f"/approvals/{request_id}", {"decision": "approve", "comment": "OK"}).status_code == 302
    assert stage_of(db, record) == "negotiation"
    page = client.get(f"/approvals/{request_id}").get_data(as_text=True)
    assert "Approved" in page and "OK" in page
    assert "Nothing here." in client.get("/approvals/").get_data(as_text=True)


def test_a_rep_cannot_decide_their_own_request_from_the_page(client, db, rep, pipes):
    acme = records.create(db, rep, Cause.for_user(rep), pipes, "company", {"name": "Acme"})
    record = deal(db, rep, pipes, amount=900, company=acme.id, discount=35, close_date="2026-12-01", stage="proposal")
    login(client, "rep")
    assert post(client, f"/apps/pipes/deal/{record.id}/move?to=negotiation", {"to": "negotiation"}).status_code == 302
    request_id = re.search(r"/approvals/(\d+)", client.get("/approvals/?box=requested").get_data(as_text=True))[1]
    page = client.get(f"/approvals/{request_id}").get_data(as_text=True)
    assert 'value="approve"' not in page and 'value="withdraw"' in page
    refused = post(client, f"/approvals/{request_id}", {"decision": "approve"})
    assert refused.status_code == 403
    assert post(client, f"/approvals/{request_id}", {"decision": "withdraw"}).status_code == 302
    assert "Withdrawn" in client.get(f"/approvals/{request_id}").get_data(as_text=True)


def test_the_edit_form_shows_the_stage_read_only_and_keeps_it(client, db, rep, pipes):
    record = deal(db, rep, pipes)
    login(client, "rep")
    url = f"/apps/pipes/deal/{record.id}/edit"
    page = client.get(url).get_data(as_text=True)
    assert "data-stage-locked" in page and "Move to Qualified" in page
    saved = post(client, url, {"f_name": "Northwind 2", "f_stage": "won", "_version": record.version,
                               "f_owner": str(rep.id)})
    assert saved.status_code == 302
    db.rollback()  # a fresh snapshot: the request committed in its own session
    db.expire_all()
    stored = db.get(Record, record.id)
    assert stored.data["name"] == "Northwind 2" and stored.data["stage"] == "lead"


def test_pipeline_pages_escape_admin_labels(client, db, admin, rep):
    from formloom.builder import definitions
    from tests.factories import company_body, pipeline_body, pipeline_deal_body

    app = definitions.create_app(db, admin, "xss", "XSS")
    definitions.save_and_publish(db, admin, app, company_body())
    definitions.save_and_publish(db, admin, app, pipeline_deal_body())
    body = pipeline_body(label="<script>alert(1)</script>")
    body["stages"][0]["label"] = "<img src=x onerror=alert(2)>"
    definitions.save_and_publish(db, admin, app, body)
    auth.grant_app(db, rep, app)
    db.commit()
    record = records.create(db, rep, Cause.for_user(rep), app, "deal", {"name": "<b>bold</b>"})
    db.commit()
    login(client, "rep")
    for url in (f"/apps/xss/deal/{record.id}", "/apps/xss/pipelines/deals/", "/apps/xss/pipelines/deals/stats",
                f"/apps/xss/deal/{record.id}/move?to=qualified", "/apps/xss/"):
        page = client.get(url).get_data(as_text=True)
        assert "<script>alert(1)" not in page and "<img src=x" not in page and "<b>bold" not in page, url


def test_the_edit_form_of_a_record_waiting_for_approval_links_the_request_instead_of_moves(client, db, rep, pipes):
    acme = records.create(db, rep, Cause.for_user(rep), pipes, "company", {"name": "Acme"})
    record = deal(db, rep, pipes, amount=900, company=acme.id, discount=35, close_date="2026-12-01", stage="proposal")
    login(client, "rep")
    assert post(client, f"/apps/pipes/deal/{record.id}/move?to=negotiation", {"to": "negotiation"}).status_code == 302
    page = client.get(f"/apps/pipes/deal/{record.id}/edit").get_data(as_text=True)
    assert "Waiting for approval: → Negotiation" in page and "/move?to=" not in page


"""Approvals: a move into negotiation with a discount above 20% waits for the approvers to decide."""
from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from formloom.builder import definitions
from formloom.platform import auth
from formloom.platform.auth import Cause
from formloom.platform.db import new_session
from formloom.platform.errors import Conflict, Forbidden
from formloom.platform.models import AppMember, ApprovalRequest, Record, Team, TeamMember, User
from formloom.runtime import approvals, pipelines, records
from formloom.runtime.pipelines import MoveStatus, StageGateError
from tests.conftest import bearer
from tests.factories import make_user, pipeline_body

BASE = "/api/v1/apps/pipes"


def member(db, app, username, role="rep"):
    user = make_user(db, username, display_name=username.capitalize())
    auth.grant_app(db, user, app)
    db.get(AppMember, (app.id, user.id)).role = role
    db.commit()
    return user


@pytest.fixture
def m1(db, pipes):
    return member(db, pipes, "m1", "manager")


@pytest.fixture
def m2(db, pipes):
    return member(db, pipes, "m2", "manager")


def proposal_deal(db, user, app, discount="30"):
    """A deal in proposal, ready for negotiation but for its discount."""
    company = records.create(db, user, Cause.for_user(user), app, "company", {"name": "Acme"})
    record = records.create(db, user, Cause.for_user(user), app, "deal", {
        "name": "Big deal", "amount": "1000", "company": company.id, "close_date": "2025-06-30",
        "discount": discount, "stage": "proposal"})
    db.commit()
    return record


def ask(db, user, app, record) -> ApprovalRequest:
    result = pipelines.move(db, user, Cause.for_user(user), app, record, "negotiation", comment="Needs 30% off")
    db.commit()
    assert result.status is MoveStatus.PENDING_APPROVAL
    return result.request


def decide(db, user, req, decision, **options) -> ApprovalRequest:
    req = approvals.decide(db, user, req.id, decision, **options)
    db.commit()
    return req


def stage_of(db, record) -> str:
    db.commit()
    db.refresh(record)
    return record.data["stage"]


def with_approval(db, admin, app, **approval):
    """Publish the pipeline again with another approval on negotiation (same 'when')."""
    body = pipeline_body()
    body["stages"][3]["approval"] = {"when": {"field": "discount", "op": "gt", "value": 20}, **approval}
    definitions.save_and_publish(db, admin, app, body)
    db.commit()


def waiting_ids(client, user_headers, box="waiting") -> list[int]:
    response = client.get(f"/api/v1/approvals?box={box}", headers=user_headers)
    assert response.status_code == 200
    return [item["id"] for item in response.get_json()["items"]]


def task_statuses(db, req) -> dict[str, str]:
    db.commit()
    db.refresh(req)
    return {db.get(User, t.user_id).username: t.status for t in req.tasks}


# --- modes -----------------------------------------------------------------------------------

def test_small_discount_moves_without_approval(db, rep, pipes, m1):
    record = proposal_deal(db, rep, pipes, discount="10")
    result = pipelines.move(db, rep, Cause.for_user(rep), pipes, record, "negotiation")
    assert result.status is MoveStatus.MOVED and result.request is None


def test_request_keeps_the_record_in_its_stage_until_approved(db, client, rep, rep_headers, pipes, m1, m2):
    record = proposal_deal(db, rep, pipes)
    req = ask(db, rep, pipes, record)
    answer = client.get(f"{BASE}/records/deal/{record.id}/stages", headers=rep_headers).get_json()
    assert answer["stage"] == "proposal"
    assert answer["pending_approval"]["id"] == req.id
    assert answer["pending_approval"]["status"] == "pending"
    assert client.get(f"{BASE}/records/deal/{record.id}", headers=rep_headers).get_json()["data"]["stage"] == \
        "proposal"


def test_rest_transition_needing_approval_answers_202(db, client, rep, rep_headers, pipes, m1, m2):
    record = proposal_deal(db, rep, pipes)
    response = client.post(f"{BASE}/records/deal/{record.id}/transition", json={"to": "negotiation"},
                           headers=rep_headers)
    assert response.status_code == 202
    answer = response.get_json()
    assert answer["status"] == "pending_approval"
    assert answer["approval"]["to_stage"] == "negotiation"
    assert sorted(t["user"]["name"] for t in answer["approval"]["tasks"]) == ["M1", "M2"]


def test_any_mode_one_approval_moves_the_deal(db, rep, pipes, m1, m2):
    record = proposal_deal(db, rep, pipes)
    req = decide(db, m1, ask(db, rep, pipes, record), "approve")
    assert req.status == "approved"
    assert stage_of(db, record) == "negotiation"


def test_any_mode_the_other_approvers_task_closes(db, client, rep, pipes, m1, m2):
    req = ask(db, rep, pipes, proposal_deal(db, rep, pipes))
    assert waiting_ids(client, bearer(db, m2)) == [req.id]
    decide(db, m1, req, "approve")
    assert task_statuses(db, req) == {"m1": "approved", "m2": "closed"}
    assert waiting_ids(client, bearer(db, m2)) == []


def test_all_mode_first_approval_leaves_it_pending(db, admin, rep, pipes, m1, m2):
    with_approval(db, admin, pipes, approvers={"users": ["m1", "m2"]}, mode="all")
    record = proposal_deal(db, rep, pipes)
    req = decide(db, m1, ask(db, rep, pipes, record), "approve")
    assert req.status == "pending"
    assert stage_of(db, record) == "proposal"


def test_all_mode_second_approval_moves_it(db, admin, rep, pipes, m1, m2):
    with_approval(db, admin, pipes, approvers={"users": ["m1", "m2"]}, mode="all")
    record = proposal_deal(db, rep, pipes)
    req = decide(db, m1, ask(db, rep, pipes, record), "approve")
    req = decide(db, m2, req, "approve")
    assert req.status == "approved"
    assert stage_of(db, record) == "negotiation"


def test_ordered_steps_wait_for_the_earlier_step(db, client, admin, rep, pipes, m1, m2):
    with_approval(db, admin, pipes, steps=[{"approvers": {"users": ["m1"]}}, {"approvers": {"users": ["m2"]}}])
    record = proposal_deal(db, rep, pipes)
    req = ask(db, rep, pipes, record)
    m2_headers = bearer(db, m2)
    assert waiting_ids(client, m2_headers) == []
    with pytest.raises(Forbidden):
        decide(db, m2, req, "approve")
    db.rollback()
    decide(db, m1, req, "approve")
    assert waiting_ids(client, m2_headers) == [req.id]
    assert stage_of(db, record) == "proposal"
    assert decide(db, m2, req, "approve").status == "approved"
    assert stage_of(db, record) == "negotiation"


def test_owner_manager_approves_for_their_team(db, admin, rep, pipes, m1, m2):
    team = Team(key="east", name="East", manager_id=m2.id)
    db.add(team)
    db.flush()
    db.add(TeamMember(team_id=team.id, user_id=rep.id))
    db.commit()
    with_approval(db, admin, pipes, approvers={"owner_manager": True})
    req = ask(db, rep, pipes, proposal_deal(db, rep, pipes))
    assert task_statuses(db, req) == {"m2": "pending"}


# --- other decisions -------------------------------------------------------------------------

def test_reject_keeps_the_record_and_stores_the_comment(db, rep, pipes, m1, m2):
    record = proposal_deal(db, rep, pipes)
    req = decide(db, m1, ask(db, rep, pipes, record), "reject", comment="Too much discount")
    assert req.status == "rejected"
    assert stage_of(db, record) == "proposal"
    assert next(t for t in req.tasks if t.user_id == m1.id).comment == "Too much discount"


def test_send_back_gives_status_sent_back(db, rep, pipes, m1, m2):
    record = proposal_deal(db, rep, pipes)
    req = decide(db, m1, ask(db, rep, pipes, record), "send_back", comment="Add the contract draft")
    assert req.status == "sent_back"
    assert stage_of(db, record) == "proposal"


@pytest.mark.parametrize("decision, status", [("reject", "rejected"), ("send_back", "sent_back")])
def test_requester_sees_the_outcome_in_requested_box(db, client, rep, rep_headers, pipes, m1, m2, decision, status):
    req = ask(db, rep, pipes, proposal_deal(db, rep, pipes))
    response = client.post(f"/api/v1/approvals/{req.id}/decision", json={"decision": decision, "comment": "No"},
                           headers=bearer(db, m1))
    assert response.status_code == 200
    items = client.get("/api/v1/approvals?box=requested", headers=rep_headers).get_json()["items"]
    assert [(i["id"], i["status"], i["decided_by"]["name"]) for i in items] == [(req.id, status, "M1")]


def test_transfer_passes_the_task_to_another_member(db, client, rep, pipes, m1, m2):
    helper = member(db, pipes, "helper")
    record = proposal_deal(db, rep, pipes)
    req = decide(db, m1, ask(db, rep, pipes, record), "transfer", other_user_id=helper.id, comment="On leave")
    assert task_statuses(db, req) == {"m1": "transferred", "m2": "pending", "helper": "pending"}
    assert waiting_ids(client, bearer(db, m1)) == []
    assert decide(db, helper, req, "approve").status == "approved"
    assert stage_of(db, record) == "negotiation"


def test_added_approver_must_also_approve_in_all_mode(db, admin, rep, pipes, m1, m2):
    helper = member(db, pipes, "helper")
    with_approval(db, admin, pipes, approvers={"users": ["m1", "m2"]}, mode="all")
    record = proposal_deal(db, rep, pipes)
    req = decide(db, m1, ask(db, rep, pipes, record), "add_approver", other_user_id=helper.id)
    decide(db, m1, req, "approve")
    assert decide(db, m2, req, "approve").status == "pending"
    assert stage_of(db, record) == "proposal"
    assert decide(db, helper, req, "approve").status == "approved"
    assert stage_of(db, record) == "negotiation"


def test_rest_transfer_to_an_outsider_is_refused(db, client, rep, pipes, m1, m2, outsider):
    req = ask(db, rep, pipes, proposal_deal(db, rep, pipes))
    response = client.post(f"/api/v1/approvals/{req.id}/decision",
                           json={"decision": "transfer", "user": outsider.id}, headers=bearer(db, m1))
    assert response.status_code == 400
    assert task_statuses(db, req) == {"m1": "pending", "m2": "pending"}


# --- self-approval ---------------------------------------------------------------------------

def test_requester_who_is_a_manager_is_not_an_approver(db, rep, pipes, m1):
    db.get(AppMember, (pipes.id, rep.id)).role = "manager"
    db.commit()
    req = ask(db, rep, pipes, proposal_deal(db, rep, pipes))
    assert task_statuses(db, req) == {"m1": "pending"}


def test_no_approver_but_the_requester_is_422_no_approvers(db, client, rep, rep_headers, pipes):
    db.get(AppMember, (pipes.id, rep.id)).role = "manager"
    db.commit()
    record = proposal_deal(db, rep, pipes)
    response = client.post(f"{BASE}/records/deal/{record.id}/transition", json={"to": "negotiation"},
                           headers=rep_headers)
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "no_approvers"
    assert db.query(ApprovalRequest).count() == 0


def test_requester_cannot_be_added_as_approver(db, client, rep, pipes, m1):
    req = ask(db, rep, pipes, proposal_deal(db, rep, pipes))
    response = client.post(f"/api/v1/approvals/{req.id}/decision",
                           json={"decision": "add_approver", "user": rep.id}, headers=bearer(db, m1))
    assert response.status_code == 403


def test_self_approval_allowed_when_configured(db, admin, rep, pipes):
    db.get(AppMember, (pipes.id, rep.id)).role = "manager"
    db.commit()
    with_approval(db, admin, pipes, approvers={"role": "manager"}, self_approval=True)
    record = proposal_deal(db, rep, pipes)
    assert decide(db, rep, ask(db, rep, pipes, record), "approve").status == "approved"
    assert stage_of(db, record) == "negotiation"


# --- two approvers at the same moment --------------------------------------------------------

@pytest.mark.parametrize("decisions", [("approve", "approve"), ("approve", "reject")])
def test_simultaneous_decisions_produce_one_outcome(app, db, rep, pipes, m1, m2, decisions):
    record = proposal_deal(db, rep, pipes)
    req_id = ask(db, rep, pipes, record).id
    barrier = threading.Barrier(2)
    outcomes: dict[str, object] = {}

    def decide_in_thread(user_id: int, decision: str) -> None:
        session = new_session(app, write=True)
        try:
            user = session.get(User, user_id)
            session.commit()  # start deciding in a fresh transaction, after the barrier
            barrier.wait(timeout=30)
            approvals.decide(session, user, req_id, decision)
            session.commit()
            outcomes[decision + str(user_id)] = "ok"
        except Exception as exc:  # the test looks at what each thread got
            session.rollback()
            outcomes[decision + str(user_id)] = exc
        finally:
            session.close()

    threads = [threading.Thread(target=decide_in_thread, args=(user.id, decision))
               for user, decision in zip((m1, m2), decisions, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == 2 and list(outcomes.values()).count("ok") == 1, outcomes
    (loser,) = [o for o in outcomes.values() if o != "ok"]
    assert isinstance(loser, Conflict), repr(loser)
    assert "already" in loser.message or "same moment" in loser.message
    db.rollback()
    req = db.get(ApprovalRequest, req_id)
    db.refresh(req)
    assert req.status in ("approved", "rejected")
    assert (stage_of(db, record) == "negotiation") == (req.status == "approved")
    decided = "approved" if req.status == "approved" else "rejected"
    assert sorted(t.status for t in req.tasks) == sorted(["closed", decided])


# --- history ---------------------------------------------------------------------------------

def test_requests_and_decisions_appear_in_the_record_history(db, client, admin, rep, pipes, m1, m2):
    with_approval(db, admin, pipes, approvers={"users": ["m1", "m2"]}, mode="all")
    record = proposal_deal(db, rep, pipes)
    req = ask(db, rep, pipes, record)
    decide(db, m1, req, "approve", comment="Fine by me")
    decide(db, m2, req, "reject", comment="Not this quarter")
    items = client.get(f"{BASE}/records/deal/{record.id}/history", headers=bearer(db, rep)).get_json()["items"]
    entries = [(i["actor_id"], i["detail"]["event"], i["detail"].get("comment"))
               for i in reversed(items) if i["action"] == "approval"]
    assert entries == [(rep.id, "requested", "Needs 30% off"), (m1.id, "approve", "Fine by me"),
                       (m2.id, "reject", "Not this quarter")]
    assert all(i["detail"]["request"] == req.id for i in items if i["action"] == "approval")


def test_granted_move_appears_in_history_as_caused_by_the_approval(db, client, rep, pipes, m1, m2):
    record = proposal_deal(db, rep, pipes)
    req = decide(db, m1, ask(db, rep, pipes, record), "approve")
    items = client.get(f"{BASE}/records/deal/{record.id}/history", headers=bearer(db, rep)).get_json()["items"]
    moved = next(i for i in items if i["action"] == "update" and "stage" in i["changes"])
    assert moved["changes"]["stage"] == ["proposal", "negotiation"]
    assert moved["cause"] == {"kind": "approval", "ref": f"approval:{req.id}"}
    assert moved["actor_id"] == m1.id


# --- who may decide --------------------------------------------------------------------------

def test_decision_by_a_non_approver_is_403(db, client, rep, pipes, m1):
    bystander = member(db, pipes, "bystander")
    req = ask(db, rep, pipes, proposal_deal(db, rep, pipes))
    response = client.post(f"/api/v1/approvals/{req.id}/decision", json={"decision": "approve"},
                           headers=bearer(db, bystander))
    assert response.status_code == 403
    assert task_statuses(db, req) == {"m1": "pending"}


def test_requester_cannot_decide_their_own_request(db, client, rep, rep_headers, pipes, m1):
    req = ask(db, rep, pipes, proposal_deal(db, rep, pipes))
    response = client.post(f"/api/v1/approvals/{req.id}/decision", json={"decision": "approve"},
                           headers=rep_headers)
    assert response.status_code == 403


def test_unknown_request_is_404(client, rep_headers, pipes):
    response = client.post("/api/v1/approvals/999999/decision", json={"decision": "approve"}, headers=rep_headers)
    assert response.status_code == 404
    assert client.get("/api/v1/approvals/999999", headers=rep_headers).status_code == 404


def test_outsider_cannot_see_or_decide_a_request(db, client, rep, pipes, m1, outsider_headers):
    req = ask(db, rep, pipes, proposal_deal(db, rep, pipes))
    assert client.get(f"/api/v1/approvals/{req.id}", headers=outsider_headers).status_code == 404
    response = client.post(f"/api/v1/approvals/{req.id}/decision", json={"decision": "approve"},
                           headers=outsider_headers)
    assert response.status_code == 404
    assert waiting_ids(client, outsider_headers) == []


def test_deciding_a_decided_request_is_409_naming_who_decided(db, client, rep, pipes, m1, m2):
    req = decide(db, m1, ask(db, rep, pipes, proposal_deal(db, rep, pipes)), "approve")
    response = client.post(f"/api/v1/approvals/{req.id}/decision", json={"decision": "reject"},
                           headers=bearer(db, m2))
    assert response.status_code == 409
    assert response.get_json()["error"]["message"] == \
        "This request was already approved by M1; nothing was changed."


# --- withdrawing -----------------------------------------------------------------------------

def test_requester_may_withdraw(db, client, rep, rep_headers, pipes, m1):
    record = proposal_deal(db, rep, pipes)
    req = ask(db, rep, pipes, record)
    response = client.post(f"/api/v1/approvals/{req.id}/withdraw", headers=rep_headers)
    assert response.status_code == 200
    assert response.get_json()["status"] == "cancelled"
    assert waiting_ids(client, bearer(db, m1)) == []
    assert stage_of(db, record) == "proposal"


def test_others_may_not_withdraw(db, client, rep, pipes, m1):
    req = ask(db, rep, pipes, proposal_deal(db, rep, pipes))
    response = client.post(f"/api/v1/approvals/{req.id}/withdraw", headers=bearer(db, m1))
    assert response.status_code == 403
    db.refresh(req)
    assert req.status == "pending"


def test_withdrawn_request_frees_the_record_to_move_again(db, rep, pipes, m1):
    record = proposal_deal(db, rep, pipes)
    req = ask(db, rep, pipes, record)
    approvals.withdraw(db, rep, req.id)
    db.commit()
    assert ask(db, rep, pipes, record).id != req.id


# --- while a request is pending --------------------------------------------------------------

def test_another_move_while_pending_is_409_naming_the_request(db, client, rep, rep_headers, pipes, m1):
    record = proposal_deal(db, rep, pipes)
    req = ask(db, rep, pipes, record)
    response = client.post(f"{BASE}/records/deal/{record.id}/transition", json={"to": "qualified"},
                           headers=rep_headers)
    assert response.status_code == 409
    message = response.get_json()["error"]["message"]
    assert "waiting for approval to move to Negotiation" in message and f"request #{req.id}" in message


def test_patch_of_the_stage_while_pending_is_409(db, client, rep, rep_headers, pipes, m1):
    record = proposal_deal(db, rep, pipes)
    req = ask(db, rep, pipes, record)
    response = client.patch(f"{BASE}/records/deal/{record.id}",
                            json={"version": record.version, "data": {"stage": "lost", "lost_reason": "Gone"}},
                            headers=rep_headers)
    assert response.status_code == 409
    assert f"request #{req.id}" in response.get_json()["error"]["message"]
    assert stage_of(db, record) == "proposal"


def test_plain_patch_into_the_approval_stage_is_409_approval_required(db, client, rep, rep_headers, pipes, m1):
    record = proposal_deal(db, rep, pipes)
    response = client.patch(f"{BASE}/records/deal/{record.id}",
                            json={"version": record.version, "data": {"stage": "negotiation"}}, headers=rep_headers)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "approval_required"
    assert stage_of(db, record) == "proposal"


def test_creating_a_record_directly_in_the_approval_stage_is_409(db, client, rep, rep_headers, pipes, m1):
    data = {"name": "Shortcut", "amount": "10", "close_date": "2025-06-30", "discount": "30", "stage": "negotiation"}
    response = client.post(f"{BASE}/records/deal", json={"data": data}, headers=rep_headers)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "approval_required"


def test_granted_move_enters_the_stage_at_the_decision_time(db, rep, pipes, m1):
    record = proposal_deal(db, rep, pipes)
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    approvals.decide(db, m1, ask(db, rep, pipes, record).id, "approve", now=when)
    db.commit()
    last = pipelines.visits(db, record)[-1]
    assert (last.stage, last.entered_at) == ("negotiation", when)


def test_approval_rechecks_the_gate(db, client, rep, pipes, m1):
    record = proposal_deal(db, rep, pipes)
    req = ask(db, rep, pipes, record)
    records.update(db, rep, Cause.for_user(rep), pipes, record, {"close_date": None}, record.version)
    db.commit()
    response = client.post(f"/api/v1/approvals/{req.id}/decision", json={"decision": "approve"},
                           headers=bearer(db, m1))
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "stage_gate" and error["message"] == "Set the expected close date."
    assert client.get(f"/api/v1/approvals/{req.id}", headers=bearer(db, m1)).get_json()["status"] == "pending"
    assert stage_of(db, record) == "proposal"


def test_service_approval_rechecks_the_gate(db, rep, pipes, m1):
    record = proposal_deal(db, rep, pipes)
    req = ask(db, rep, pipes, record)
    records.update(db, rep, Cause.for_user(rep), pipes, record, {"close_date": None}, record.version)
    db.commit()
    with pytest.raises(StageGateError):
        approvals.decide(db, m1, req.id, "approve")
    db.rollback()
    assert db.get(ApprovalRequest, req.id).status == "pending"
    assert db.get(Record, record.id).data["stage"] == "proposal"


def test_named_approvers_without_access_to_the_app_are_left_out(db, client, admin, rep, rep_headers, pipes,
                                                               outsider):
    with_approval(db, admin, pipes, approvers={"users": ["outsider"]})
    record = proposal_deal(db, rep, pipes)
    response = client.post(f"{BASE}/records/deal/{record.id}/transition", json={"to": "negotiation"},
                           headers=rep_headers)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "no_approvers"
    assert "users outsider gives no active member of this app" in error["message"]
    assert stage_of(db, record) == "proposal"


@pytest.mark.parametrize("user_id", [2**31, 2**63, 0, -1])
def test_transfer_to_an_id_beyond_the_database_is_a_clear_400(db, client, rep, pipes, m1, m2, user_id):
    req = ask(db, rep, pipes, proposal_deal(db, rep, pipes))
    response = client.post(f"/api/v1/approvals/{req.id}/decision",
                           json={"decision": "transfer", "user": user_id}, headers=bearer(db, m1))
    assert response.status_code == 400
    assert "Choose an active member of this app" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("request_id", [2**31, 2**40])
def test_request_ids_beyond_the_database_are_404(client, rep_headers, request_id):
    assert client.get(f"/api/v1/approvals/{request_id}", headers=rep_headers).status_code == 404
    assert client.post(f"/api/v1/approvals/{request_id}/decision", json={"decision": "approve"},
                       headers=rep_headers).status_code == 404

"""The public pool: claiming (one winner), the claim limit, returning with a reason, its pages."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from formloom.builder import definitions
from formloom.platform import auth
from formloom.platform.auth import Cause
from formloom.platform.db import new_session
from formloom.platform.errors import DefinitionError
from formloom.platform.models import ChangeLog, Event, Record
from formloom.runtime import pool, records
from tests.conftest import bearer
from tests.factories import csrf_token, login, make_user

POOL = {"field": "owner", "max_per_user": 2, "returned_at_field": "returned_at", "reason_field": "return_reason"}


def prospect_body(**overrides) -> dict:
    body = {"formloom": 1, "kind": "entity", "key": "prospect", "label": {"en": "Prospect", "zh-CN": "线索"},
            "title_field": "name", "owner_field": "owner", "pool": POOL,
            "fields": [{"key": "name", "type": "text", "label": "Name", "required": True},
                       {"key": "owner", "type": "user", "label": "Owner"},
                       {"key": "returned_at", "type": "datetime", "label": "Returned at"},
                       {"key": "return_reason", "type": "textarea", "label": "Return reason"}]}
    body.update(overrides)
    return body


@pytest.fixture
def leads(db, admin, sales, rep):
    """Three prospects in the pool of the sales app; rep (Rita Rep) and rival (Ray Rival) are reps."""
    definitions.save_and_publish(db, admin, sales, prospect_body())
    rival = make_user(db, "rival", display_name="Ray Rival")
    auth.grant_app(db, rival, sales)
    found = [records.create(db, admin, Cause.for_user(admin), sales, "prospect", {"name": f"Prospect {i}"})
             for i in (1, 2, 3)]
    db.commit()
    return {"app": sales, "rival": rival, "records": found}


def claim_url(record: Record) -> str:
    return f"/api/v1/apps/sales/records/prospect/{record.id}/claim"


def test_claim_makes_the_record_yours_with_a_logged_change_and_an_event(client, db, rep, rep_headers, leads):
    first = leads["records"][0]
    response = client.post(claim_url(first), headers=rep_headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["data"]["owner"] == rep.id and response.get_json()["version"] == 2
    db.expire_all()
    assert db.get(Record, first.id).owner_id == rep.id
    change = db.scalars(select(ChangeLog).where(ChangeLog.record_id == first.id).order_by(ChangeLog.id)).all()[-1]
    assert change.diff == {"owner": [None, rep.id]} and change.cause_kind == "api_token"
    assert db.scalar(select(Event).where(Event.record_id == first.id, Event.kind == "record.updated")) is not None


def test_second_claim_is_refused_naming_who_has_it(client, db, rep_headers, leads):
    first = leads["records"][0]
    assert client.post(claim_url(first), headers=rep_headers).status_code == 200
    late = client.post(claim_url(first), headers=bearer(db, leads["rival"]))
    assert late.status_code == 409
    error = late.get_json()["error"]
    assert error["code"] == "already_claimed" and "already claimed by Rita Rep" in error["message"]


def test_claim_from_a_stale_read_loses_to_the_one_that_committed(app, db, database_url, rep, leads):
    """Both read the record while it was in the pool; the conditional UPDATE lets only the first win.

    (On SQLite a writing session takes the database's write lock when it begins, so two sessions
    never hold stale reads side by side there; the API test above covers the refusal.)"""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writing sessions")
    other = new_session(app)
    try:
        mine = db.get(Record, leads["records"][0].id)
        theirs = other.get(Record, leads["records"][0].id)
        assert mine.data.get("owner") is None and theirs.data.get("owner") is None
        pool.claim(db, rep, Cause.for_user(rep), leads["app"], mine)
        db.commit()
        rival = other.get(type(leads["rival"]), leads["rival"].id)
        with pytest.raises(pool.AlreadyClaimed, match="already claimed by Rita Rep"):
            pool.claim(other, rival, Cause.for_user(rival), other.get(type(leads["app"]), leads["app"].id), theirs)
    finally:
        other.close()
    db.expire_all()
    assert db.get(Record, leads["records"][0].id).data["owner"] == rep.id


def test_two_claims_at_the_same_moment_on_postgresql_one_wins(app, db, database_url, rep, leads):
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks: PostgreSQL only (SQLite serialises writers)")
    record_id, app_id, rival_id = leads["records"][0].id, leads["app"].id, leads["rival"].id
    first, second = new_session(app), new_session(app)
    outcome: dict[str, object] = {}
    try:
        from formloom.platform.models import App, User

        pool.claim(first, first.get(User, rep.id), Cause.for_user(rep), first.get(App, app_id),
                   first.get(Record, record_id))  # holds the row lock until it commits

        def rival_claims() -> None:
            try:
                pool.claim(second, second.get(User, rival_id), Cause(auth.CauseKind.USER, rival_id),
                           second.get(App, app_id), second.get(Record, record_id))
                second.commit()
                outcome["rival"] = "won"
            except pool.AlreadyClaimed as exc:
                outcome["rival"] = exc.message

        thread = threading.Thread(target=rival_claims)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive(), "the rival's UPDATE waits for the first claim's row lock"
        first.commit()
        thread.join(10)
    finally:
        first.close()
        second.close()
    assert "already claimed by Rita Rep" in str(outcome["rival"])
    db.expire_all()
    assert db.get(Record, record_id).data["owner"] == rep.id and db.get(Record, record_id).version == 2


def test_claims_stop_at_the_limit_per_person(client, rep_headers, leads):
    first, second, third = leads["records"]
    assert client.post(claim_url(first), headers=rep_headers).status_code == 200
    assert client.post(claim_url(second), headers=rep_headers).status_code == 200
    refused = client.post(claim_url(third), headers=rep_headers)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "pool_limit_reached"
    assert "(2)" in refused.get_json()["error"]["message"]


def test_holder_returns_with_a_reason_which_is_noted(client, db, rep_headers, leads):
    first = leads["records"][0]
    client.post(claim_url(first), headers=rep_headers)
    url = f"/api/v1/apps/sales/records/prospect/{first.id}/return"
    missing = client.post(url, json={"reason": "  "}, headers=rep_headers)
    assert missing.status_code == 400 and "reason is required" in missing.get_json()["error"]["message"]
    back = client.post(url, json={"reason": "Budget frozen until next year"}, headers=rep_headers)
    assert back.status_code == 200, back.get_data(as_text=True)
    data = back.get_json()["data"]
    assert data.get("owner") is None and data["return_reason"] == "Budget frozen until next year"
    assert data["returned_at"].endswith("Z")
    db.expire_all()
    assert db.get(Record, first.id).owner_id is None
    again = client.post(claim_url(first), headers=bearer(db, leads["rival"]))
    assert again.status_code == 200 and again.get_json()["data"]["owner"] == leads["rival"].id


def test_only_the_holder_or_a_wider_update_scope_may_return(client, db, admin, rep_headers, leads):
    definitions.save_and_publish(db, admin, leads["app"], {
        "formloom": 1, "kind": "access", "key": "access", "label": "Access",
        "roles": [{"key": "rep", "entities": {"*": {"create": True, "read": "all", "update": "own"}}}]})
    db.commit()
    first = leads["records"][0]
    assert client.post(claim_url(first), headers=rep_headers).status_code == 200
    refused = client.post(f"/api/v1/apps/sales/records/prospect/{first.id}/return", json={"reason": "not mine"},
                          headers=bearer(db, leads["rival"]))
    assert refused.status_code == 403


def test_pool_page_lists_pool_records_and_claims_with_csrf(client, db, rep, leads):
    first = leads["records"][0]
    login(client, "rep")
    page = client.get("/apps/sales/pool/prospect/").get_data(as_text=True)
    assert "Prospect 1" in page and "Prospect 2" in page and ">Claim<" in page
    assert client.post(f"/apps/sales/prospect/{first.id}/claim").status_code == 400  # no CSRF token
    token = csrf_token(client, "/apps/sales/pool/prospect/")
    done = client.post(f"/apps/sales/prospect/{first.id}/claim", data={"csrf_token": token})
    assert done.status_code == 302
    page = client.get("/apps/sales/pool/prospect/").get_data(as_text=True)
    assert "Prospect 1" not in page and "Prospect 2" in page
    record_page = client.get(f"/apps/sales/prospect/{first.id}").get_data(as_text=True)
    assert "Return to pool" in record_page
    returned = client.post(f"/apps/sales/prospect/{first.id}/return",
                           data={"csrf_token": token, "reason": "Wrong region"}, follow_redirects=True)
    assert "Returned to the public pool." in returned.get_data(as_text=True)
    assert "Prospect 1" in client.get("/apps/sales/pool/prospect/").get_data(as_text=True)


def test_list_page_links_to_the_pool_and_a_lost_race_is_explained(client, db, leads):
    first = leads["records"][0]
    pool.claim(db, leads["rival"], Cause.for_user(leads["rival"]), leads["app"], first)
    db.commit()
    login(client, "rep")
    assert "/apps/sales/pool/prospect/" in client.get("/apps/sales/prospect/").get_data(as_text=True)
    token = csrf_token(client, "/apps/sales/pool/prospect/")
    late = client.post(f"/apps/sales/prospect/{first.id}/claim", data={"csrf_token": token}, follow_redirects=True)
    assert "already claimed by Ray Rival" in late.get_data(as_text=True)


@pytest.mark.parametrize("pool_option, path", [({"field": "name"}, "$.pool.field"),
                                              ({"field": "owner", "reason_field": "returned_at"},
                                               "$.pool.reason_field"),
                                              ({"field": "owner", "max_per_user": 0}, "$.pool.max_per_user")])
def test_a_wrong_pool_option_is_refused_at_its_path(db, admin, sales, pool_option, path):
    with pytest.raises(DefinitionError) as caught:
        definitions.save_and_publish(db, admin, sales, prospect_body(pool=pool_option))
    db.rollback()
    assert path in {p.path for p in caught.value.problems}

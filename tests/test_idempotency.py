"""Idempotency-Key: a POST to the API is done once per (user, key); retries get the first answer."""
from __future__ import annotations

import io
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from flask import g, jsonify
from sqlalchemy import func, select, update

from formloom.platform.db import get_session, utcnow
from formloom.platform.models import App, Event, IdempotencyKey, Record, StoredFile
from formloom.platform.web_auth import login_required
from formloom.runtime import catalog, records
from tests.factories import csrf_token, login

COMPANIES = "/api/v1/apps/sales/records/company"


def count(db, model, *where) -> int:
    db.rollback()  # see the latest committed state
    return db.scalar(select(func.count()).select_from(model).where(*where))


def keyed(headers: dict, key: str) -> dict:
    return {**headers, "Idempotency-Key": key}


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()["error"]


def test_a_retried_create_is_answered_from_the_first_and_creates_one_record(db, client, rep_headers):
    first = client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers=keyed(rep_headers, "k-1"))
    again = client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers=keyed(rep_headers, "k-1"))
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert count(db, Record) == 1
    assert count(db, Event) == 1  # automation sees one creation, not two


def test_the_same_json_sent_with_other_spacing_and_key_order_is_a_replay(db, client, rep_headers):
    deals = "/api/v1/apps/sales/records/deal"
    body = json.dumps({"data": {"name": "Acme", "seats": 3}})
    first = client.post(deals, data=body, content_type="application/json", headers=keyed(rep_headers, "k"))
    reordered = json.dumps({"data": {"seats": 3, "name": "Acme"}}, indent=2)
    again = client.post(deals, data=reordered, content_type="application/json", headers=keyed(rep_headers, "k"))
    assert first.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert count(db, Record) == 1


def test_without_a_key_every_post_creates(db, client, rep_headers):
    for _ in range(2):
        assert client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers=rep_headers).status_code == 201
    assert count(db, Record) == 2


def test_a_refused_request_is_replayed_as_refused(db, client, rep_headers):
    first = client.post(COMPANIES, json={"data": {"name": ""}}, headers=keyed(rep_headers, "k"))
    again = client.post(COMPANIES, json={"data": {"name": ""}}, headers=keyed(rep_headers, "k"))
    assert error_of(first, 422)["code"] == "validation_failed"
    assert again.status_code == 422 and again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert count(db, Record) == 0


@pytest.mark.parametrize("path, body", [
    (COMPANIES, {"data": {"name": "Globex"}}),
    ("/api/v1/apps/sales/records/deal", {"data": {"name": "Acme"}}),
    (COMPANIES + "?locale=zh-CN", {"data": {"name": "Acme"}}),
])
def test_the_same_key_for_another_request_is_refused(db, client, rep_headers, path, body):
    client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers=keyed(rep_headers, "k"))
    reused = client.post(path, json=body, headers=keyed(rep_headers, "k"))
    error = error_of(reused, 422)
    assert error["code"] == "idempotency_key_reused"
    assert "Idempotency-Key" in error["message"] and "new Idempotency-Key" in error["message"]
    assert count(db, Record) == 1


def test_keys_belong_to_their_user(db, client, rep_headers, admin_headers):
    for headers in (rep_headers, admin_headers):
        response = client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers=keyed(headers, "shared"))
        assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
    assert count(db, Record) == 2


@pytest.mark.parametrize("value", ["", "x" * 201, "tab\there", "caf\u00e9"])
def test_an_invalid_key_is_refused_naming_the_header(db, client, rep_headers, value):
    response = client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers=keyed(rep_headers, value))
    error = error_of(response, 400)
    assert error["code"] == "idempotency_key_invalid" and "Idempotency-Key" in error["message"]
    assert count(db, Record) == 0


def test_a_key_of_200_printable_characters_is_accepted(db, client, rep_headers):
    key = "a-Z_0.9 ~!" * 20
    for _ in range(2):
        response = client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers=keyed(rep_headers, key))
        assert response.status_code == 201
    assert count(db, Record) == 1


def test_a_retry_while_the_first_is_unanswered_gets_409(db, client, rep_headers):
    client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers=keyed(rep_headers, "k"))
    db.execute(update(IdempotencyKey).values(status=None, response=None))  # as while it runs
    db.commit()
    response = client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers=keyed(rep_headers, "k"))
    error = error_of(response, 409)
    assert error["code"] == "idempotency_in_progress" and "try again in a moment" in error["message"]
    assert count(db, Record) == 1


def test_an_expired_key_runs_the_request_again(db, client, rep_headers):
    client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers=keyed(rep_headers, "k"))
    db.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=24, minutes=1)))
    db.commit()
    again = client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers=keyed(rep_headers, "k"))
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert count(db, Record) == 2


def test_the_ttl_is_a_setting(app, db, client, rep_headers):
    app.config["IDEMPOTENCY_TTL_HOURS"] = 1
    client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers=keyed(rep_headers, "k"))
    db.execute(update(IdempotencyKey).values(created_at=utcnow() - timedelta(minutes=61)))
    db.commit()
    assert "Idempotent-Replayed" not in client.post(COMPANIES, json={"data": {"name": "Acme"}},
                                                    headers=keyed(rep_headers, "k")).headers
    assert count(db, Record) == 2


def test_expired_keys_of_any_request_are_deleted(db, client, rep, rep_headers):
    old = utcnow() - timedelta(hours=25)
    db.add_all(IdempotencyKey(user_id=rep.id, key=f"old-{n}", method="POST", path=COMPANIES,
                              request_hash="0" * 64, status=201, response={}, created_at=old) for n in range(3))
    db.add(IdempotencyKey(user_id=rep.id, key="recent", method="POST", path=COMPANIES,
                          request_hash="0" * 64, status=201, response={}, created_at=utcnow()))
    db.commit()
    client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers=keyed(rep_headers, "new"))
    db.rollback()
    assert sorted(db.scalars(select(IdempotencyKey.key))) == ["new", "recent"]


def test_cookie_sessions_use_keys_and_still_need_the_csrf_token(db, client, rep):
    login(client, "rep")
    refused = client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers={"Idempotency-Key": "k"})
    assert error_of(refused, 400)["code"] == "csrf_failed"
    token = {"X-CSRFToken": csrf_token(client, "/apps/sales/"), "Idempotency-Key": "k"}
    first = client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers=token)
    again = client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers=token)
    assert first.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    still_refused = client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers={"Idempotency-Key": "k"})
    assert error_of(still_refused, 400)["code"] == "csrf_failed"
    assert count(db, Record) == 1


def test_other_api_posts_are_covered_too(db, client, admin_headers):
    body = {"key": "support", "label": "Support"}
    first = client.post("/api/v1/apps", json=body, headers=keyed(admin_headers, "new-app"))
    again = client.post("/api/v1/apps", json=body, headers=keyed(admin_headers, "new-app"))
    assert first.status_code == 201 and again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(db, App, App.key == "support") == 1


def test_a_retried_upload_stores_one_file(db, client, rep_headers):
    def upload():
        return client.post("/api/v1/apps/sales/files", data={"file": (io.BytesIO(b"%PDF-1.7 quote"), "q.pdf")},
                           content_type="multipart/form-data", headers=keyed(rep_headers, "upload-1"))
    first, again = upload(), upload()
    assert first.status_code == 201 and again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(db, StoredFile) == 1


def test_posts_outside_the_api_ignore_the_header(db, client, rep):
    login(client, "rep")
    token = csrf_token(client, "/apps/sales/company/new")
    for _ in range(2):
        client.post("/apps/sales/company/new", data={"csrf_token": token, "f_name": "Acme"},
                    headers={"Idempotency-Key": "k"})
    assert count(db, Record) == 2
    assert count(db, IdempotencyKey) == 0


# --- requests that run at the same time, and failures ----------------------------------------

def add_route(app, rule: str, view) -> None:
    """A POST route added the way any blueprint adds one: it gets no idempotency code of its own."""
    app.add_url_rule(rule, endpoint=rule, view_func=login_required(view), methods=["POST"])


def create_company(name: str):
    db = get_session()
    sales = catalog.get_app(db, "sales")
    record = records.create(db, g.user, g.cause, sales, "company", {"name": name})
    db.commit()
    return jsonify({"id": record.id}), 201


def test_a_retry_while_the_first_request_runs_gets_409_and_one_record_is_made(app, db, rep_headers):
    entered, proceed = threading.Event(), threading.Event()

    def slow_create():
        entered.set()
        assert proceed.wait(30)
        return create_company("Acme")

    add_route(app, "/api/v1/test/slow-create", slow_create)
    headers = keyed(rep_headers, "k")
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(app.test_client().post, "/api/v1/test/slow-create", json={}, headers=headers)
        assert entered.wait(30)
        retry = app.test_client().post("/api/v1/test/slow-create", json={}, headers=headers)
        proceed.set()
        first = running.result(30)
    assert error_of(retry, 409)["code"] == "idempotency_in_progress"
    assert first.status_code == 201
    replay = app.test_client().post("/api/v1/test/slow-create", json={}, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.get_json() == first.get_json()
    assert count(db, Record) == 1


def test_concurrent_requests_with_one_key_create_one_record(app, db, rep_headers):
    clients = 4
    barrier = threading.Barrier(clients)

    def post():
        client = app.test_client()
        barrier.wait(30)
        return client.post(COMPANIES, json={"data": {"name": "Acme"}}, headers=keyed(rep_headers, "race"))

    with ThreadPoolExecutor(clients) as pool:
        responses = [f.result(60) for f in [pool.submit(post) for _ in range(clients)]]
    ran = [r for r in responses if r.status_code == 201 and "Idempotent-Replayed" not in r.headers]
    others = [r for r in responses if r not in ran]
    assert len(ran) == 1
    assert all(r.headers.get("Idempotent-Replayed") == "true" or r.get_json()["error"]["code"] ==
               "idempotency_in_progress" for r in others), [r.get_json() for r in others]
    assert count(db, Record) == 1


def test_a_server_error_releases_the_key_so_the_retry_runs(app, db, rep_headers):
    calls = []

    def flaky_create():
        calls.append(1)
        if len(calls) == 1:
            db_session = get_session()
            records.create(db_session, g.user, g.cause, catalog.get_app(db_session, "sales"), "company",
                           {"name": "Half-done"})
            raise RuntimeError("the disk is full")
        return create_company("Acme")

    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer 500 as in production
    add_route(app, "/api/v1/test/flaky-create", flaky_create)
    client, headers = app.test_client(), keyed(rep_headers, "k")
    failed = client.post("/api/v1/test/flaky-create", json={}, headers=headers)
    assert error_of(failed, 500)["code"] == "internal_error"
    retried = client.post("/api/v1/test/flaky-create", json={}, headers=headers)
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried.headers
    db.rollback()
    assert [r.title for r in db.scalars(select(Record))] == ["Acme"]  # the failed request left nothing

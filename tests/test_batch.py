"""Batch create/update of records: each item as its single call, one SAVEPOINT each, or all-or-nothing."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import create_engine, func, select, text

from formloom.platform.errors import FormloomError
from formloom.platform.models import ChangeLog, Event, Record
from formloom.runtime import pipelines
from formloom.runtime.rules import EventKind

SALES = "/api/v1/apps/sales/records"
PIPES = "/api/v1/apps/pipes/records"


def count(db, model, *where) -> int:
    db.rollback()  # see the latest committed state
    return db.scalar(select(func.count()).select_from(model).where(*where))


def titles(db, entity: str = "company") -> list[str]:
    db.rollback()
    return list(db.scalars(select(Record.title).where(Record.entity_key == entity).order_by(Record.id)))


def created(client, headers, name: str, path: str = f"{SALES}/company") -> dict:
    response = client.post(path, json={"data": {"name": name}}, headers=headers)
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def batch(client, headers, body: dict, path: str = f"{SALES}/company/batch"):
    return client.post(path, json=body, headers=headers)


def test_creates_and_updates_answer_in_request_order(db, client, rep_headers):
    acme = created(client, rep_headers, "Acme")
    response = batch(client, rep_headers, {
        "create": [{"data": {"name": "Globex"}}, {"data": {"name": "Initech"}}],
        "update": [{"id": acme["id"], "version": acme["version"], "data": {"name": "Acme Corp"}}]})
    assert response.status_code == 200
    answer = response.get_json()
    assert [(r["op"], r["index"], r["status"], r["record"]["title"]) for r in answer["results"]] == [
        ("create", 0, 201, "Globex"), ("create", 1, 201, "Initech"), ("update", 0, 200, "Acme Corp")]
    assert answer["results"][2]["record"]["version"] == acme["version"] + 1
    assert (answer["created"], answer["updated"], answer["failed"]) == (2, 1, 0)
    assert titles(db) == ["Acme Corp", "Globex", "Initech"]


def test_a_bad_item_is_answered_like_its_single_call_and_the_others_are_kept(db, client, rep_headers):
    single = client.post(f"{SALES}/company", json={"data": {"name": ""}}, headers=rep_headers)
    response = batch(client, rep_headers, {"create": [
        {"data": {"name": "Globex"}}, {"data": {"name": ""}}, {"data": {"name": "Initech"}}]})
    answer = response.get_json()
    assert response.status_code == 200
    assert [r["status"] for r in answer["results"]] == [201, 422, 201]
    assert answer["results"][1] == {"index": 1, "op": "create", "status": 422, **single.get_json()}
    assert (answer["created"], answer["updated"], answer["failed"]) == (2, 0, 1)
    assert titles(db) == ["Globex", "Initech"]


def test_automation_sees_events_of_the_saved_items_only(db, client, rep_headers):
    answer = batch(client, rep_headers, {"create": [
        {"data": {"name": "Globex"}}, {"data": {"name": ""}}, {"data": {"name": "Initech"}}]}).get_json()
    saved = {r["record"]["id"] for r in answer["results"] if r["status"] == 201}
    db.rollback()
    assert {e.record_id for e in db.scalars(select(Event).where(Event.kind == EventKind.CREATED.value))} == saved
    assert count(db, ChangeLog) == 2


def test_a_failure_after_an_items_event_was_written_takes_the_event_back(db, client, rep_headers, pipes,
                                                                           monkeypatch):
    entered = pipelines.record_entry

    def fail_for_boom(session, app, pipeline, record, *args, **kwargs):
        if record.data["name"] == "Boom":  # the record, its change log and its event are flushed by now
            raise FormloomError("The stage history could not be written.")
        return entered(session, app, pipeline, record, *args, **kwargs)

    monkeypatch.setattr(pipelines, "record_entry", fail_for_boom)
    answer = batch(client, rep_headers, {"create": [
        {"data": {"name": "Before"}}, {"data": {"name": "Boom"}}, {"data": {"name": "After"}}]},
        path=f"{PIPES}/deal/batch").get_json()
    assert [r["status"] for r in answer["results"]] == [201, 400, 201]
    assert titles(db, "deal") == ["Before", "After"]
    kept = {r["record"]["id"] for r in answer["results"] if r["status"] == 201}
    assert {e.record_id for e in db.scalars(select(Event))} == kept
    assert set(db.scalars(select(ChangeLog.record_id))) == kept


def test_a_stale_version_is_that_items_conflict(db, client, rep_headers):
    acme = created(client, rep_headers, "Acme")
    client.patch(f"{SALES}/company/{acme['id']}", json={"version": acme["version"], "data": {"name": "Acme 2"}},
                 headers=rep_headers)
    answer = batch(client, rep_headers, {
        "create": [{"data": {"name": "Globex"}}],
        "update": [{"id": acme["id"], "version": acme["version"], "data": {"name": "Acme 3"}}]}).get_json()
    conflict = answer["results"][1]
    assert conflict["status"] == 409 and conflict["error"]["code"] == "version_conflict"
    assert conflict["error"]["current_version"] == acme["version"] + 1
    assert conflict["error"]["changed_fields"] == {"name": ["Acme", "Acme 2"]}
    assert titles(db) == ["Acme 2", "Globex"]


def test_updating_a_missing_or_other_entitys_record_is_not_found(db, client, rep_headers):
    deal = created(client, rep_headers, "Deal", f"{SALES}/deal")
    answer = batch(client, rep_headers, {"update": [
        {"id": 4242, "version": 1, "data": {"name": "x"}}, {"id": deal["id"], "version": 1, "data": {"name": "x"}},
        {"id": 2**63, "version": 1, "data": {"name": "x"}}]}).get_json()
    assert [(r["status"], r["error"]["code"]) for r in answer["results"]] == [(404, "not_found")] * 3
    assert titles(db, "deal") == ["Deal"]


def test_a_malformed_item_fails_alone(db, client, rep_headers):
    answer = batch(client, rep_headers, {
        "create": ["Globex", {"name": "Globex"}, {"data": {"name": "Initech"}}],
        "update": [{"id": "1", "version": 1, "data": {}}, {"id": 1, "data": {}}]}).get_json()
    assert [r["status"] for r in answer["results"]] == [400, 400, 201, 400, 400]
    messages = [r["error"]["message"] for r in answer["results"] if "error" in r]
    assert messages[0] == "Create item 0 must be an object."
    assert "'data' is required" in messages[1] and "'id' is required" in messages[2]
    assert "'version' is required" in messages[3]
    assert titles(db) == ["Initech"]


def test_a_stage_gate_refuses_its_item(db, client, rep_headers, pipes):
    answer = batch(client, rep_headers, {"create": [
        {"data": {"name": "Direct", "stage": "proposal"}}, {"data": {"name": "Lead"}}]},
        path=f"{PIPES}/deal/batch").get_json()
    assert [(r["status"], r.get("error", {}).get("code")) for r in answer["results"]] == [
        (422, "stage_gate"), (201, None)]
    assert titles(db, "deal") == ["Lead"]


def test_an_atomic_batch_with_a_failure_saves_nothing(db, client, rep_headers):
    acme = created(client, rep_headers, "Acme")
    events_before = count(db, Event)
    response = batch(client, rep_headers, {"atomic": True, "create": [
        {"data": {"name": "Globex"}}, {"data": {"name": ""}}],
        "update": [{"id": acme["id"], "version": acme["version"], "data": {"name": "Acme Corp"}}]})
    assert response.status_code == 422
    answer = response.get_json()
    assert answer["error"]["code"] == "batch_failed" and "nothing was saved" in answer["error"]["message"]
    assert [(r["status"], r["error"]["code"]) for r in answer["results"]] == [
        (424, "not_saved"), (422, "validation_failed"), (424, "not_saved")]
    assert (answer["created"], answer["updated"], answer["failed"]) == (0, 0, 1)
    assert titles(db) == ["Acme"]
    assert count(db, Event) == events_before


def test_an_atomic_batch_without_failures_saves_everything(db, client, rep_headers):
    response = batch(client, rep_headers, {"atomic": True, "create": [
        {"data": {"name": "Globex"}}, {"data": {"name": "Initech"}}]})
    assert response.status_code == 200 and response.get_json()["created"] == 2
    assert titles(db) == ["Globex", "Initech"]


def test_at_most_100_items_per_batch(db, client, rep_headers):
    too_many = batch(client, rep_headers, {"create": [{"data": {"name": f"C{n}"}} for n in range(60)],
                                           "update": [{"id": 1, "version": 1, "data": {}}] * 41})
    assert too_many.status_code == 422
    error = too_many.get_json()["error"]
    assert error["code"] == "batch_invalid" and "at most 100 items" in error["message"]
    assert count(db, Record) == 0
    full = batch(client, rep_headers, {"create": [{"data": {"name": f"C{n}"}} for n in range(100)]})
    assert full.status_code == 200 and full.get_json()["created"] == 100
    assert count(db, Record) == 100


@pytest.mark.parametrize("body, words", [
    ({}, "no items"),
    ({"create": []}, "no items"),
    ({"create": {"data": {"name": "x"}}}, "'create' must be a list"),
    ({"create": [{"data": {"name": "x"}}], "atomic": "yes"}, "'atomic' must be true or false"),
])
def test_a_malformed_batch_is_refused_whole(db, client, rep_headers, body, words):
    response = batch(client, rep_headers, body)
    assert response.status_code == 422 and words in response.get_json()["error"]["message"]
    assert count(db, Record) == 0


def test_unknown_entity_and_outsiders_are_refused_whole(client, rep_headers, outsider_headers):
    body = {"create": [{"data": {"name": "x"}}]}
    assert batch(client, rep_headers, body, f"{SALES}/nothing/batch").status_code == 404
    assert batch(client, outsider_headers, body).status_code == 403


def test_a_retried_batch_with_its_idempotency_key_saves_once(db, client, rep_headers):
    headers = {**rep_headers, "Idempotency-Key": "batch-1"}
    body = {"create": [{"data": {"name": "Globex"}}, {"data": {"name": ""}}]}
    first, again = batch(client, headers, body), batch(client, headers, body)
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_json() == first.get_json()
    assert titles(db) == ["Globex"]


def test_a_concurrent_change_is_the_items_conflict_and_the_others_are_kept(app, db, client, rep_headers):
    if not app.config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("SQLite lets one writer at a time: no change can happen while a batch runs")
    acme = created(client, rep_headers, "Acme")
    other = create_engine(app.config["DATABASE_URL"])
    with other.connect() as conn:
        # Another writer changes Acme and holds its row until the batch is waiting for it.
        conn.execute(text("UPDATE records SET version = version + 1 WHERE id = :id"), {"id": acme["id"]})
        body = {"create": [{"data": {"name": "Globex"}}],
                "update": [{"id": acme["id"], "version": acme["version"], "data": {"name": "Acme Corp"}}]}
        result = {}
        worker = threading.Thread(target=lambda: result.update(response=batch(app.test_client(), rep_headers, body)))
        worker.start()
        time.sleep(1.0)
        conn.commit()
        worker.join(30)
    other.dispose()
    answer = result["response"].get_json()
    assert result["response"].status_code == 200, answer
    assert [r["status"] for r in answer["results"]] == [201, 409]
    assert titles(db) == ["Acme", "Globex"]

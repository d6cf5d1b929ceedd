"""Automation as people see it: the inbox, the run log with retries, the queue's health, dry runs."""
from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from formloom.builder import definitions
from formloom.platform import auth
from formloom.platform.auth import Cause
from formloom.platform.models import Notification, Record, RuleRun
from formloom.runtime import dispatch, records
from tests.conftest import bearer
from tests.factories import csrf_token, login, make_user

ASSIGN = {"formloom": 1, "kind": "rule", "key": "assign_new", "label": {"en": "Assign new deals", "zh-CN": "分配"},
          "entity": "deal", "trigger": {"type": "created"},
          "actions": [{"type": "assign", "field": "owner", "strategy": "round_robin", "users": ["li", "em"],
                       "only_if_empty": False},
                      {"type": "notify", "to": {"owner": True}, "title": "New deal for you: {title}"}]}


@pytest.fixture
def reps(db, pipes):
    people = [make_user(db, name, display_name=name.capitalize()) for name in ("li", "em")]
    for person in people:
        auth.grant_app(db, person, pipes)
    db.commit()
    return people


def deal(db, user, app, name="Deal"):
    record = records.create(db, user, Cause.for_user(user), app, "deal", {"name": name})
    db.commit()
    return record


def fresh(db):
    db.rollback()
    db.expire_all()


def post(client, url, data=None):
    return client.post(url, data={"csrf_token": csrf_token(client, url.split("?")[0]), **(data or {})})


def test_assigned_rep_finds_the_notification_in_the_inbox_and_marks_it_read(app, client, db, admin, pipes, reps):
    definitions.save_and_publish(db, admin, pipes, ASSIGN)
    db.commit()
    deal(db, admin, pipes, "Northwind <b>big</b>")
    dispatch.run_pending(app)
    login(client, "li")
    page = client.get("/notifications/").get_data(as_text=True)
    assert 'class="pill"' in page and "1 unread" in page
    assert "New deal for you: Northwind &lt;b&gt;big&lt;/b&gt;" in page
    note_id = re.search(r'data-notification="(\d+)"', page)[1]
    assert post(client, "/notifications/", {"action": "read", "id": note_id}).status_code == 302
    assert "0 unread" in client.get("/notifications/").get_data(as_text=True)
    api = client.get("/api/v1/notifications").get_json()
    assert api["unread"] == 0 and api["items"][0]["read"] is True


def test_a_snoozed_notification_leaves_the_inbox_until_its_time(app, client, db, admin, pipes, reps):
    definitions.save_and_publish(db, admin, pipes, ASSIGN)
    db.commit()
    deal(db, admin, pipes)
    dispatch.run_pending(app)
    login(client, "li")
    note_id = re.search(r'data-notification="(\d+)"', client.get("/notifications/").get_data(as_text=True))[1]
    assert post(client, "/notifications/", {"action": "snooze_hour", "id": note_id}).status_code == 302
    assert f'data-notification="{note_id}"' not in client.get("/notifications/").get_data(as_text=True)
    fresh(db)
    assert db.get(Notification, int(note_id)).snoozed_until > datetime.now(UTC)


def test_the_run_log_shows_each_run_and_why_each_deal_went_to_whom(app, client, db, admin, pipes, reps):
    definitions.save_and_publish(db, admin, pipes, ASSIGN)
    db.commit()
    for name in ("One", "Two"):
        deal(db, admin, pipes, name)
    dispatch.run_pending(app)
    login(client, "admin")
    page = client.get("/apps/pipes/automation/").get_data(as_text=True)
    assert "Assign new deals" in page and "succeeded 2" in page
    run_id = re.search(r'data-run="(\d+)" data-status="succeeded"', page)[1]
    run_page = client.get(f"/apps/pipes/automation/runs/{run_id}").get_data(as_text=True)
    assert "Round-robin among Li, Em" in run_page and "notify" in run_page


def test_reps_cannot_read_the_run_log(client, db, admin, rep, pipes):
    login(client, "rep")
    assert client.get("/apps/pipes/automation/").status_code == 403
    assert client.get("/api/v1/apps/pipes/automation/runs", headers=bearer(db, rep)).status_code == 403


def test_a_failed_run_is_retried_from_its_page_without_repeating_what_succeeded(app, client, db, admin, pipes, reps):
    rule = {"formloom": 1, "kind": "rule", "key": "by_name", "label": "By name", "entity": "deal",
            "trigger": {"type": "created"},
            "actions": [{"type": "notify", "to": {"users": ["li"]}, "title": "Seen {title}"},
                        {"type": "assign", "field": "owner", "strategy": "by_field", "map_field": "name",
                         "map": {"Other": "em"}, "only_if_empty": False}]}
    definitions.save_and_publish(db, admin, pipes, rule)
    db.commit()
    record = deal(db, admin, pipes, "Acme")
    dispatch.run_pending(app)
    fresh(db)
    run = db.scalar(select(RuleRun).where(RuleRun.rule_key == "by_name"))
    assert run.status == "failed" and "No one is mapped for name = 'Acme'" in run.reason
    rule["actions"][1]["map"] = {"Acme": "em"}
    definitions.save_and_publish(db, admin, pipes, rule)
    db.commit()
    login(client, "admin")
    page = client.get(f"/apps/pipes/automation/runs/{run.id}").get_data(as_text=True)
    assert "No one is mapped" in page and "Retry" in page
    assert post(client, f"/apps/pipes/automation/runs/{run.id}").status_code == 302
    fresh(db)
    assert db.get(RuleRun, run.id).status == "succeeded"
    assert db.get(Record, record.id).data["owner"] == reps[1].id
    li_notes = db.scalar(select(func.count()).select_from(Notification).where(Notification.user_id == reps[0].id))
    assert li_notes == 1  # the notify action that had succeeded was not repeated


def test_queue_health_counts_what_waits(app, client, db, admin, pipes, reps):
    definitions.save_and_publish(db, admin, pipes, ASSIGN)
    db.commit()
    deal(db, admin, pipes)
    login(client, "admin")
    page = client.get("/apps/pipes/automation/health").get_data(as_text=True)
    waiting = re.search(r'data-metric="events_waiting"><dt>[^<]*</dt><dd>(\d+)', page)[1]
    assert int(waiting) >= 1
    assert "embedded (in-process)" in page
    dispatch.run_pending(app)
    health = client.get("/api/v1/automation/health?app=pipes").get_json()
    assert health["events_waiting"] == 0 and health["queue"] == {"kind": "embedded"}


def test_a_dry_run_shows_who_would_get_each_deal_and_changes_nothing(app, client, db, admin, pipes, reps):
    definitions.save_draft(db, admin, pipes, "rule", "assign_new", ASSIGN)  # a draft: not published yet
    db.commit()
    made = [deal(db, admin, pipes, f"Deal {i}") for i in range(3)]
    login(client, "admin")
    page = post(client, "/apps/pipes/automation/rules/assign_new/dry-run").get_data(as_text=True)
    rows = re.findall(r'data-record="(\d+)" data-status="succeeded"', page)
    assert rows == [str(r.id) for r in made]
    assert page.count("Li: Round-robin") == 2 and page.count("Em: Round-robin") == 1
    fresh(db)
    assert all(db.get(Record, r.id).data.get("owner") == admin.id for r in made)  # the creator, as before
    assert db.scalar(select(func.count()).select_from(Notification)) == 0
    assert db.scalar(select(func.count()).select_from(RuleRun)) == 0
    api = client.post("/api/v1/apps/pipes/rules/assign_new/dry-run", json={"days": 1}, headers=bearer(db, admin))
    assert api.status_code == 200
    assert [i["record_id"] for i in api.get_json()["items"]] == [r.id for r in made]


def test_the_notification_api_snoozes_and_refuses_a_moment_without_a_zone(app, client, db, admin, pipes, reps):
    definitions.save_and_publish(db, admin, pipes, ASSIGN)
    db.commit()
    deal(db, admin, pipes)
    dispatch.run_pending(app)
    headers = bearer(db, reps[0])
    note_id = client.get("/api/v1/notifications", headers=headers).get_json()["items"][0]["id"]
    naive = client.post(f"/api/v1/notifications/{note_id}/snooze", json={"until": "2030-01-01T09:00"}, headers=headers)
    assert naive.status_code == 400 and "with its time zone" in naive.get_json()["error"]["message"]
    later = client.post(f"/api/v1/notifications/{note_id}/snooze", json={"until": "2030-01-01T09:00:00+08:00"},
                        headers=headers)
    assert later.status_code == 200
    listed = client.get("/api/v1/notifications", headers=headers).get_json()
    assert listed["items"] == [] and listed["unread"] == 0
    other = client.post(f"/api/v1/notifications/{note_id}/read", headers=bearer(db, reps[1]))
    assert other.status_code == 404  # someone else's notification

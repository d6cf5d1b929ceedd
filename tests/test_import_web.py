"""Imports over the API and through the Import pages: dry run, commit, progress, rollback, permissions."""
from __future__ import annotations

import io
import re
import time

import pytest
from sqlalchemy import select

from formloom.platform import auth
from formloom.platform.models import Record
from tests.conftest import bearer
from tests.factories import csrf_token, login, make_people_app, make_user

FILE = "Name,E-mail,Age\nAnn,a@x.cn,30\nBob,b@x.cn,old\n,,\n"


@pytest.fixture
def people(db, admin):
    return make_people_app(db, admin)


def live(db, app) -> list[dict]:
    db.commit()
    return [r.data for r in db.scalars(select(Record).where(Record.app_id == app.id, Record.deleted_at.is_(None))
                                       .order_by(Record.id))]


def test_api_dry_run_of_a_file_reports_each_row_and_writes_nothing(client, db, people, admin_headers):
    answer = client.post("/api/v1/apps/people/imports/person", headers=admin_headers,
                         data={"file": (io.BytesIO(FILE.encode()), "people.csv"), "dry_run": "true"})
    assert answer.status_code == 201, answer.json
    body = answer.json
    assert body["status"] == "dry_run" and body["counts"] == {"create": 1, "update": 0, "skip": 1, "error": 1}
    third = body["results"][1]
    assert (third["line"], third["action"], list(third["errors"])) == (3, "error", ["age"])
    assert third["errors"]["age"][0].startswith("Age must be a whole number")
    assert live(db, people) == []
    only = client.get(f"/api/v1/apps/people/imports/{body['id']}?only=errors", headers=admin_headers).json
    assert [r["line"] for r in only["results"]] == [3]


def test_api_json_rows_commit_by_match_key_then_rollback(client, db, admin, people, admin_headers):
    client.post("/api/v1/apps/people/records/person", json={"data": {"name": "Old", "email": "a@x.cn"}},
                headers=admin_headers)
    before = live(db, people)
    rows = [{"name": "Ann", "email": "a@x.cn", "age": 30}, {"name": "Cy", "email": "c@x.cn"}]
    answer = client.post("/api/v1/apps/people/imports/person", headers=admin_headers,
                         json={"rows": rows, "match": "email", "automation": False})
    assert answer.status_code == 201 and answer.json["counts"]["update"] == 1 and answer.json["counts"]["create"] == 1
    assert live(db, people) == [{"name": "Ann", "email": "a@x.cn", "age": 30}, {"name": "Cy", "email": "c@x.cn"}]
    batch = answer.json["id"]
    undone = client.post(f"/api/v1/apps/people/imports/{batch}/rollback", headers=admin_headers, json={})
    assert undone.status_code == 200 and undone.json["status"] == "rolled_back"
    assert undone.json["rolled_back"] == {"removed": 1, "restored": 1}
    assert live(db, people) == before


def test_api_large_import_runs_as_a_job_and_reports_progress(app, client, db, people, admin_headers):
    app.config["IMPORT_INLINE_ROWS"] = 0
    rows = [{"name": f"P{i}", "email": f"p{i}@x.cn"} for i in range(30)]
    answer = client.post("/api/v1/apps/people/imports/person", headers=admin_headers, json={"rows": rows})
    assert answer.status_code == 202 and answer.json["status"] == "queued"
    url = f"/api/v1/apps/people/imports/{answer.json['id']}"
    login(client, "admin")  # the page polls with the session cookie
    for _ in range(300):
        state = client.get(url).json
        if state["finished_at"]:
            break
        time.sleep(0.1)
    assert state["status"] == "done" and state["progress"] == {"done": 30, "total": 30}
    assert len(live(db, people)) == 30


def test_api_refuses_a_member_who_may_not_import_and_bad_input(client, db, people, admin_headers):
    member = make_user(db, "plain")
    auth.grant_app(db, member, people)
    db.commit()
    refused = client.post("/api/v1/apps/people/imports/person", headers=bearer(db, member),
                          json={"rows": [{"name": "A"}]})
    assert refused.status_code == 403 and "may not import" in refused.json["error"]["message"]
    bad = client.post("/api/v1/apps/people/imports/person", headers=admin_headers, json={"rows": "A"})
    assert bad.status_code == 400 and "'rows'" in bad.json["error"]["message"]
    garbled = client.post("/api/v1/apps/people/imports/person", headers=admin_headers,
                          data={"file": (io.BytesIO(b"\xd0\xcf\x11\xe0x"), "old.xls")})
    assert garbled.status_code == 400 and ".xls" in garbled.json["error"]["message"]


def test_import_pages_upload_map_dry_run_commit_and_rollback(client, db, admin, people):
    login(client, "admin")
    listing = client.get("/apps/people/person/").get_data(as_text=True)
    assert 'href="/apps/people/person/import"' in listing
    token = csrf_token(client, "/apps/people/person/import")
    assert client.post("/apps/people/person/import",
                       data={"file": (io.BytesIO(FILE.encode()), "people.csv")}).status_code == 400  # no CSRF
    uploaded = client.post("/apps/people/person/import", data={"csrf_token": token,
                                                               "file": (io.BytesIO(FILE.encode()), "people.csv")})
    assert uploaded.status_code == 302
    mapping_url = uploaded.headers["Location"]
    page = client.get(mapping_url).get_data(as_text=True)
    assert '<option value="name" selected>' in page and '<option value="email" selected>' in page
    checked = client.post(mapping_url, data={"csrf_token": token, "column-0": "name", "column-1": "email",
                                             "column-2": "", "match": "email", "automation": "on"})
    report_url = checked.headers["Location"]
    report = client.get(report_url).get_data(as_text=True)
    assert "Dry run: nothing written" in report and "Empty row" in report
    assert live(db, people) == []
    batch_id = int(re.search(r"/imports/(\d+)", report_url).group(1))
    committed = client.post(f"/apps/people/imports/{batch_id}/commit", data={"csrf_token": token})
    done = client.get(committed.headers["Location"]).get_data(as_text=True)
    assert "Done" in done and "Roll back this import" in done
    assert live(db, people) == [{"name": "Ann", "email": "a@x.cn"}, {"name": "Bob", "email": "b@x.cn"}]
    new_id = int(re.search(r"/imports/(\d+)", committed.headers["Location"]).group(1))
    rolled = client.post(f"/apps/people/imports/{new_id}/rollback", data={"csrf_token": token},
                         follow_redirects=True).get_data(as_text=True)
    assert "Rolled back: 2 record(s) removed, 0 restored." in rolled
    assert live(db, people) == []
    history = client.get("/apps/people/imports").get_data(as_text=True)
    assert "people.csv" in history and "Rolled back" in history


def test_import_page_in_chinese(client, db, admin, people):
    login(client, "admin")
    page = client.get("/apps/people/person/import?lang=zh-CN").get_data(as_text=True)
    assert "导入人员" in page and "上传并映射列" in page

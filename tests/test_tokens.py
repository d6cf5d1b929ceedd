"""API tokens: a user's own tokens through the API, the account page and the command line."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
from sqlalchemy import select

from formloom.builder import definitions
from formloom.platform import auth
from formloom.platform.models import ApiToken, AuditEvent
from tests.factories import csrf_token, login


def bearer_of(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def create(client, headers: dict, **body):
    return client.post("/api/v1/tokens", json=body, headers=headers)


def audit_of(db, kind: str) -> list[AuditEvent]:
    db.rollback()
    db.expire_all()
    return list(db.scalars(select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)))


# --- the API -----------------------------------------------------------------------------------

def test_a_new_token_is_shown_once_and_works(client, db, rep, rep_headers):
    created = create(client, rep_headers, name="CI export", scopes=["records:read", "app:sales"])
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    body = created.get_json()
    secret = body.pop("token")
    assert secret.startswith("flm_") and body["prefix"] == secret[:12]
    assert (body["name"], body["scopes"], body["revoked_at"], body["last_used_at"]) == (
        "CI export", ["records:read", "app:sales"], None, None)
    listed = client.get("/api/v1/tokens", headers=bearer_of(secret))
    assert listed.status_code == 200 and secret not in listed.get_data(as_text=True)
    mine = {t["name"]: t for t in listed.get_json()["tokens"]}
    assert set(mine) == {"CI export", "test"}
    assert mine["CI export"]["last_used_at"] is not None  # it was just used to ask
    assert mine["test"]["scopes"] is None


def test_each_wrong_part_of_a_request_is_named(client, db, admin, rep, rep_headers, sales):
    definitions.create_app(db, admin, "hr", "HR")  # exists, but the rep is no member
    db.commit()
    response = create(client, rep_headers, name=" ", scopes=["records:read", "records:delete", "app:hr", "admin", 7])
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert set(error["fields"]) == {"name", "scopes[1]", "scopes[2]", "scopes[3]", "scopes[4]"}
    assert "Unknown scope 'records:delete'" in error["fields"]["scopes[1]"][0]
    assert "records:read" in error["fields"]["scopes[1]"][0]  # says what would do
    assert "names no app that 'rep' can open" in error["fields"]["scopes[2]"][0]
    assert "is for admins" in error["fields"]["scopes[3]"][0]
    assert create(client, rep_headers, name="x", scopes=[]).get_json()["error"]["fields"]["scopes"]
    assert db.scalar(select(ApiToken).where(ApiToken.name == "x")) is None


def test_a_limited_token_cannot_create_a_stronger_one(client, db, rep):
    _, secret = auth.create_token(db, rep, "reader", ["records:read", "app:sales"])
    db.commit()
    for scopes in (None, ["records:read"], ["records:read", "records:write", "app:sales"]):
        response = create(client, bearer_of(secret), name="more", scopes=scopes)
        assert response.status_code == 422, scopes
        assert "limited to records:read, app:sales" in response.get_json()["error"]["fields"]["scopes"][0]
    assert create(client, bearer_of(secret), name="same", scopes=["app:sales", "records:read"]).status_code == 201


def test_revoking_stops_the_token_and_is_idempotent(client, db, rep, rep_headers):
    secret = create(client, rep_headers, name="temp").get_json()["token"]
    token_id = db.scalar(select(ApiToken.id).where(ApiToken.name == "temp"))
    assert client.get("/api/v1/tokens", headers=bearer_of(secret)).status_code == 200
    revoked = client.delete(f"/api/v1/tokens/{token_id}", headers=rep_headers)
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"] is not None
    assert client.get("/api/v1/tokens", headers=bearer_of(secret)).status_code == 401
    again = client.delete(f"/api/v1/tokens/{token_id}", headers=rep_headers)
    assert again.get_json()["revoked_at"] == revoked.get_json()["revoked_at"]
    assert len(audit_of(db, "token_revoked")) == 1


def test_someone_elses_token_is_as_missing_as_a_token_that_does_not_exist(client, db, rep, admin, rep_headers):
    theirs, secret = auth.create_token(db, admin, "admin's")
    db.commit()
    other = client.delete(f"/api/v1/tokens/{theirs.id}", headers=rep_headers)
    missing = client.delete("/api/v1/tokens/999999", headers=rep_headers)
    assert other.status_code == missing.status_code == 404
    assert other.get_json()["error"]["message"] == f"You have no API token #{theirs.id}."
    assert client.get("/api/v1/tokens", headers=bearer_of(secret)).status_code == 200  # still works
    listed = client.get("/api/v1/tokens", headers=rep_headers).get_json()["tokens"]
    assert "admin's" not in [t["name"] for t in listed]


def test_tokens_need_a_login(client):
    assert client.get("/api/v1/tokens").status_code == 401
    assert client.get("/account/tokens").status_code == 302


def test_a_cookie_session_creates_tokens_only_with_the_csrf_token(client, db, rep):
    login(client, "rep")
    assert client.post("/api/v1/tokens", json={"name": "x"}).status_code == 400
    token = csrf_token(client, "/account/tokens")
    assert client.post("/api/v1/tokens", json={"name": "x"}, headers={"X-CSRFToken": token}).status_code == 201


def test_creating_and_revoking_are_audited_without_the_secret(client, db, rep, rep_headers):
    secret = create(client, rep_headers, name="deploy", scopes=["records:write"]).get_json()["token"]
    token = db.scalar(select(ApiToken).where(ApiToken.name == "deploy"))
    client.delete(f"/api/v1/tokens/{token.id}", headers=rep_headers)
    [made] = audit_of(db, "token_created")
    [gone] = audit_of(db, "token_revoked")
    for entry in (made, gone):
        assert (entry.actor_id, entry.subject, entry.detail["owner"], entry.detail["token_id"]) == (
            rep.id, "deploy", "rep", token.id)
        assert secret not in json.dumps(entry.detail)
    assert made.detail["scopes"] == ["records:write"] and made.detail["via"] == "api"


# --- the page ----------------------------------------------------------------------------------

def test_the_page_shows_a_new_secret_once_and_revokes(client, db, rep, sales):
    login(client, "rep")
    page = client.get("/account/tokens")
    assert page.status_code == 200 and "You have no API tokens yet." in page.get_data(as_text=True)
    token = csrf_token(client, "/account/tokens")
    made = client.post("/account/tokens", data={"csrf_token": token, "name": "Sheets sync",
                                                 "scope": ["records:read"], "app": ["sales"]})
    html = made.get_data(as_text=True)
    assert made.status_code == 201 and made.headers["Cache-Control"] == "no-store"
    secret = re.search(r'id="new-secret" class="secret" value="(flm_[^"]+)"', html).group(1)
    assert "Copy it now: it is shown only this once" in html
    stored = db.scalar(select(ApiToken).where(ApiToken.name == "Sheets sync"))
    assert stored.scopes == ["records:read", "app:sales"] and stored.prefix == secret[:12]
    later = client.get("/account/tokens").get_data(as_text=True)
    assert secret not in later and f"{stored.prefix}…" in later
    revoked = client.post(f"/account/tokens/{stored.id}/revoke", data={"csrf_token": token},
                          follow_redirects=True)
    assert "Token &#39;Sheets sync&#39; is revoked; it no longer works." in revoked.get_data(as_text=True)
    assert client.get("/api/v1/tokens", headers=bearer_of(secret)).status_code == 401


def test_the_page_forms_need_the_csrf_token(client, db, rep):
    login(client, "rep")
    mine, _ = auth.create_token(db, rep, "mine")
    db.commit()
    assert client.post("/account/tokens", data={"name": "x"}).status_code == 400
    assert client.post(f"/account/tokens/{mine.id}/revoke").status_code == 400
    db.expire_all()
    assert db.get(ApiToken, mine.id).revoked_at is None


def test_the_page_cannot_revoke_someone_elses_token(client, db, rep, admin):
    theirs, _ = auth.create_token(db, admin, "admin's")
    db.commit()
    login(client, "rep")
    token = csrf_token(client, "/account/tokens")
    assert client.post(f"/account/tokens/{theirs.id}/revoke", data={"csrf_token": token}).status_code == 404
    db.expire_all()
    assert db.get(ApiToken, theirs.id).revoked_at is None


def test_the_page_explains_a_refused_token(client, db, rep):
    login(client, "rep")
    token = csrf_token(client, "/account/tokens")
    refused = client.post("/account/tokens", data={"csrf_token": token, "name": ""})
    assert refused.status_code == 422 and "&#39;name&#39; is required" in refused.get_data(as_text=True)


def test_the_top_bar_links_to_the_tokens_page_in_both_languages(client, db, rep, sales):
    login(client, "rep")
    assert 'href="/account/tokens">API tokens</a>' in client.get("/account/tokens").get_data(as_text=True)
    chinese = client.get("/account/tokens?lang=zh-CN").get_data(as_text=True)
    assert 'href="/account/tokens">API 令牌</a>' in chinese and "创建令牌" in chinese


# --- the command line --------------------------------------------------------------------------

@pytest.fixture
def cli(app, tmp_path):
    """Runs ``formloom`` as a user would (a separate process) on the test's database."""
    env = {**os.environ, "FORMLOOM_INSTANCE_PATH": str(tmp_path / "cli-instance"),
           "FORMLOOM_DATABASE_URL": app.config["DATABASE_URL"]}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "formloom.platform.cli", *args], env=env, capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)

    return run


def test_the_command_line_creates_a_limited_token(cli, client, db, rep, sales):
    result = cli("token", "create", "rep", "--name", "nightly", "--scope", "records:read", "--scope", "app:sales")
    assert result.returncode == 0, result.stderr
    secret = result.stdout.strip()
    assert client.get("/api/v1/tokens", headers=bearer_of(secret)).status_code == 200
    db.expire_all()
    token = db.scalar(select(ApiToken).where(ApiToken.name == "nightly"))
    assert token.scopes == ["records:read", "app:sales"]
    [entry] = audit_of(db, "token_created")
    assert (entry.actor_id, entry.detail["via"], entry.detail["owner"]) == (None, "cli", "rep")


def test_the_command_line_names_a_wrong_scope(cli, db, rep):
    result = cli("token", "create", "rep", "--scope", "records:read", "--scope", "everything")
    assert result.returncode == 1
    assert "scopes[1]: Unknown scope 'everything'" in result.stderr
    assert db.scalar(select(ApiToken)) is None


def test_an_admin_may_limit_a_token_to_admin_work(client, admin_headers):
    response = create(client, admin_headers, name="provisioning", scopes=["admin"])
    assert response.status_code == 201 and response.get_json()["scopes"] == ["admin"]


def test_a_token_notes_its_last_use_at_most_once_a_minute(client, db, rep):
    """Reads with a token do not write on every request (a poll during a long import on SQLite would
    wait for the write lock); the last use is still kept to the minute."""
    from datetime import timedelta

    token, secret = auth.create_token(db, rep, "poller")
    db.commit()
    for _ in range(3):
        assert client.get("/api/v1/apps", headers=bearer_of(secret)).status_code == 200
    db.expire_all()
    first = db.get(ApiToken, token.id).last_used_at
    assert first is not None
    client.get("/api/v1/apps", headers=bearer_of(secret))
    db.expire_all()
    assert db.get(ApiToken, token.id).last_used_at == first  # within the minute: no write
    db.get(ApiToken, token.id).last_used_at = first - timedelta(minutes=2)
    db.commit()
    client.get("/api/v1/apps", headers=bearer_of(secret))
    db.expire_all()
    assert db.get(ApiToken, token.id).last_used_at > first - timedelta(minutes=1)

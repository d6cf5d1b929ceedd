"""The formloom command line, run as a user would run it (a separate process)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from formloom import create_app
from formloom.platform.db import new_session
from formloom.platform.models import ChangeLog, Record, StageVisit, User
from formloom.runtime import approvals


def formloom(instance, *args: str, database_url: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "FORMLOOM_INSTANCE_PATH": str(instance)}
    if database_url:
        env["FORMLOOM_DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "formloom.platform.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture
def instance(tmp_path):
    return tmp_path / "instance"


def test_init_user_token_and_api_round_trip(instance):
    assert "Database ready" in formloom(instance, "init").stdout
    assert formloom(instance, "init").returncode == 0  # upgrading an up-to-date database is fine
    created = formloom(instance, "user", "create", "boss", "--admin", "--generate")
    assert created.returncode == 0 and "Created admin 'boss' with password:" in created.stdout
    duplicate = formloom(instance, "user", "create", "boss", "--password", "whatever-123")
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    secret = formloom(instance, "token", "create", "boss").stdout.strip()
    assert secret.startswith("flm_")
    installed = formloom(instance, "template", "install", "crm", "--demo-data", "--scale", "0.01")
    assert installed.returncode == 0, installed.stderr

    client = create_app({"INSTANCE_PATH": str(instance), "TESTING": True}).test_client()
    customers = client.get("/api/v1/apps/crm/records/customer", headers={"Authorization": f"Bearer {secret}"})
    assert customers.status_code == 200 and customers.get_json()["total"] > 0


def test_demo_prepares_instance_and_prints_login(instance):
    result = formloom(instance, "demo", "--no-serve", "--scale", "0.02")
    assert result.returncode == 0, result.stderr
    password = re.search(r"Log in as admin with password: (\S+)", result.stdout).group(1)
    assert "Formloom is running at http://127.0.0.1:5000/" in result.stdout

    app = create_app({"INSTANCE_PATH": str(instance), "TESTING": True})
    session = new_session(app)
    records = session.query(Record).count()
    assert records > 100
    created = session.query(ChangeLog).filter(ChangeLog.cause_kind == "cli", ChangeLog.action == "create")
    assert created.count() == records
    # Opportunities were walked through the sales pipeline: stage history, and discounts waiting
    # for the sales manager.
    opportunities = session.query(Record).filter(Record.entity_key == "opportunity").count()
    walked = session.query(StageVisit.record_id).filter(StageVisit.pipeline_key == "sales").distinct().count()
    assert walked == opportunities
    manager = session.query(User).filter(User.username == "zhang.min").one()
    assert approvals.waiting_count(session, manager) > 0
    session.close()

    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    logged_in = client.post("/login", data={"username": "admin", "password": password, "csrf_token": token})
    assert logged_in.status_code == 302
    assert client.get("/apps/crm/opportunity/").status_code == 200

    again = formloom(instance, "demo", "--no-serve")  # a second run keeps the data, new password
    assert again.returncode == 0 and "Installed the CRM template" not in again.stdout


def test_template_list_names_the_crm(instance):
    result = formloom(instance, "template", "list")
    assert result.returncode == 0 and result.stdout.startswith("crm")


def test_user_away_and_back(instance):
    assert formloom(instance, "init").returncode == 0
    assert formloom(instance, "user", "create", "li.wei", "--generate").returncode == 0
    away = formloom(instance, "user", "away", "li.wei", "--until", "2030-01-15")
    assert away.returncode == 0 and "li.wei is away until 2030-01-15." in away.stdout
    app = create_app({"INSTANCE_PATH": str(instance), "TESTING": True})
    with new_session(app) as session:
        assert session.query(User).filter(User.username == "li.wei").one().away_until.date().isoformat() == "2030-01-15"
    assert "li.wei is back." in formloom(instance, "user", "away", "li.wei", "--back").stdout
    wrong = formloom(instance, "user", "away", "li.wei", "--until", "soon")
    assert wrong.returncode == 1 and "--until must be a date written YYYY-MM-DD, got 'soon'." in wrong.stderr

"""Commission plans: statements and the leaderboard, computed in SQL, within each person's access."""
from __future__ import annotations

import copy
import csv
import io

import pytest
from sqlalchemy import select

from formloom.builder import definitions
from formloom.platform import auth
from formloom.platform.auth import Cause
from formloom.platform.errors import DefinitionError, Forbidden
from formloom.platform.members import TeamChange, create_team
from formloom.platform.models import Record
from formloom.runtime import catalog, incentives, records
from formloom.templates_library import install
from tests.conftest import bearer
from tests.factories import login, make_user

PERIOD = "2026-10"
RATES = {"software": 5, "services": 8, "hardware": 3}  # the bundled plan; anything else: 3


@pytest.fixture
def crm(db, admin):
    app = install(db, admin)
    db.commit()
    return app


@pytest.fixture
def people(db, admin, crm):
    """Two reps and a manager of a team holding rep one only."""
    out = {}
    for name, role in (("wang", "rep"), ("li", "rep"), ("mia", "manager")):
        out[name] = make_user(db, name, display_name=name.title())
        auth.grant_app(db, out[name], crm, role)
    db.commit()
    create_team(db, admin, "east", TeamChange(name="East", manager="mia", members=("wang",)))
    db.commit()
    return out


def _create(db, admin, app, entity, values):
    return records.create(db, admin, Cause.for_user(admin), app, entity, values)


@pytest.fixture
def payments(db, admin, crm, people):
    """Payments of both reps across product lines, statuses and months; returns their values."""
    customer = _create(db, admin, crm, "customer", {"name": "杭州云帆科技", "tier": "a"})
    contracts = {line: _create(db, admin, crm, "contract", {"name": f"{line} deal", "customer": customer.id,
                                                             "amount": 100000, "product_line": line})
                 for line in ("software", "services", "hardware")}
    contracts[None] = _create(db, admin, crm, "contract", {"name": "no line", "customer": customer.id,
                                                           "amount": 1000})
    rows = [("wang", "software", "received", "2026-10-03", 10000.0),
            ("wang", "services", "partly_received", "2026-10-20", 2500.5),
            ("wang", None, "received", "2026-10-31", 999.99),
            ("wang", "hardware", "received", "2026-11-01", 7000.0),  # next month
            ("wang", "software", "planned", None, None),  # nothing received
            ("li", "hardware", "received", "2026-10-10", 40000.0),
            ("li", "services", "received", "2026-10-11", 1200.0),
            ("mia", "software", "written_off", "2026-10-12", 5000.0)]  # does not count
    made = []
    for i, (who, line, status, on, amount) in enumerate(rows):
        values = {"name": f"P{i}", "contract": contracts[line].id, "customer": customer.id,
                  "owner": people[who].id, "due_date": "2026-10-01", "amount_due": 10000, "status": status}
        if on:
            values.update(received_on=on, amount_received=amount)
        made.append((who, line, status, on, amount, _create(db, admin, crm, "payment", values)))
    db.commit()
    return made


def _expected(payments, people, who, period=("2026-10-01", "2026-11-01")):
    """The statement, computed in Python from the payments as created."""
    lines = [(amount, RATES.get(line, 3)) for w, line, status, on, amount, _ in payments
             if w == who and status in ("received", "partly_received") and on and period[0] <= on < period[1]]
    return sum(a for a, _ in lines), sum(a * r / 100 for a, r in lines), len(lines)


def test_statement_equals_a_python_computation(db, crm, people, payments):
    body = incentives.plan(db, crm, None)
    period = incentives.parse_period(PERIOD, None)
    for who in ("wang", "li"):
        got = incentives.statement(db, people[who], crm, body, period, people[who].id)
        amount, commission, count = _expected(payments, people, who)
        assert got["totals"] == {"amount": pytest.approx(amount, abs=0.01),
                                 "commission": pytest.approx(commission, abs=0.01), "lines": count}
        assert sum(line["commission"] for line in got["lines"]) == pytest.approx(commission, abs=0.02)
    wang = incentives.statement(db, people["wang"], crm, body, period, people["wang"].id)
    assert [line["rate"] for line in wang["lines"]] == [5, 8, 3]  # software, services, no product line
    assert all(line["contract"].startswith("HT-") for line in wang["lines"])
    assert wang["lines"][0]["customer"] == "杭州云帆科技"


def test_quarter_and_year_periods(db, crm, people, payments):
    body = incentives.plan(db, crm, None)
    for code, span in (("2026-Q4", ("2026-10-01", "2027-01-01")), ("2026", ("2026-01-01", "2027-01-01"))):
        got = incentives.statement(db, people["wang"], crm, body, incentives.parse_period(code, None),
                                   people["wang"].id)
        _, commission, count = _expected(payments, people, "wang", span)
        assert (got["totals"]["commission"], got["totals"]["lines"]) == (pytest.approx(commission, abs=0.01), count)


def test_leaderboard_ranks_by_commission(db, crm, people, payments):
    body = incentives.plan(db, crm, None)
    board = incentives.leaderboard(db, people["li"], crm, body, incentives.parse_period(PERIOD, None))
    li, wang = _expected(payments, people, "li"), _expected(payments, people, "wang")
    assert li[1] > wang[1]
    assert [(r["name"], r["rank"]) for r in board["rows"]] == [("Li", 1), ("Wang", 2)]
    assert board["rows"][0]["commission"] == pytest.approx(li[1], abs=0.01)
    assert set(board["rows"][0]) == {"user", "name", "rank", "amount", "commission"}  # totals only


def test_first_matching_rate_wins(db, admin, crm, people, payments):
    body = copy.deepcopy(catalog.published_version(db, crm, "commission", "sales_commission").body)
    body["rates"].insert(0, {"when": {"field": "customer_tier", "op": "eq", "value": "a"}, "rate": 10})
    definitions.save_and_publish(db, admin, crm, body)
    db.commit()
    got = incentives.statement(db, admin, crm, incentives.plan(db, crm, None), incentives.parse_period(PERIOD, None),
                               people["wang"].id)
    assert {line["rate"] for line in got["lines"]} == {10}


def test_rep_sees_the_leaderboard_but_not_another_reps_statement(client, db, crm, people, payments):
    headers = bearer(db, people["li"])
    board = client.get(f"/api/v1/apps/crm/incentives?period={PERIOD}", headers=headers)
    assert board.status_code == 200 and len(board.get_json()["rows"]) == 2
    other = client.get(f"/api/v1/apps/crm/incentives/statement?period={PERIOD}&user={people['wang'].id}",
                       headers=headers)
    assert other.status_code in (403, 404) and "P0" not in other.get_data(as_text=True)
    own = client.get(f"/api/v1/apps/crm/incentives/statement?period={PERIOD}", headers=headers)
    assert own.status_code == 200 and {line["title"] for line in own.get_json()["lines"]} == {"P5", "P6"}


def test_manager_sees_the_team_and_admin_everyone(client, db, admin, crm, people, payments):
    mia = bearer(db, people["mia"])
    url = f"/api/v1/apps/crm/incentives/statement?period={PERIOD}&user="
    assert client.get(url + str(people["wang"].id), headers=mia).get_json()["totals"]["lines"] == 3
    assert client.get(url + str(people["li"].id), headers=mia).status_code == 403
    boss = bearer(db, admin)
    assert client.get(url + str(people["li"].id), headers=boss).get_json()["totals"]["lines"] == 2


def test_bad_period_names_the_field(client, db, crm, people, payments):
    answer = client.get("/api/v1/apps/crm/incentives?period=October", headers=bearer(db, people["li"]))
    assert answer.status_code == 422
    assert "2026-Q4" in answer.get_json()["error"]["fields"]["period"][0]


def test_a_user_id_beyond_any_user_is_a_clear_error(client, db, crm, people, payments):
    answer = client.get("/api/v1/apps/crm/incentives/statement?user=219859788758450", headers=bearer(db, people["li"]))
    assert answer.status_code == 400 and "user id" in answer.get_json()["error"]["message"]


def test_page_and_csv(client, db, crm, people, payments):
    login(client, "wang")
    page = client.get(f"/apps/crm/incentives?period={PERIOD}&lang=zh-CN")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "排行榜" in text and "我的提成明细" in text and "提成" in text
    assert "P0" in text and "P5" not in text  # li's lines are not on wang's page
    assert "/apps/crm/incentives" in client.get("/apps/crm/").get_data(as_text=True)
    assert "/apps/crm/incentives" in client.get("/apps/crm/payment/").get_data(as_text=True)  # navigation
    exported = client.get(f"/apps/crm/incentives/statement.csv?period={PERIOD}")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(exported.get_data(as_text=True).lstrip("\ufeff"))))
    _, commission, count = _expected(payments, people, "wang")
    assert len(rows) == 1 + count + 1
    assert float(rows[-1][-1]) == pytest.approx(commission, abs=0.01)
    assert client.get(f"/apps/crm/incentives/statement.csv?period={PERIOD}&user={people['li'].id}").status_code == 403


def test_stored_payments_are_not_changed(db, crm, people, payments):
    before = {r.id: dict(r.data) for r in db.scalars(select(Record).where(Record.entity_key == "payment"))}
    incentives.leaderboard(db, people["li"], crm, incentives.plan(db, crm, None), incentives.parse_period(PERIOD, None))
    db.expire_all()
    assert {r.id: r.data for r in db.scalars(select(Record).where(Record.entity_key == "payment"))} == before


@pytest.mark.parametrize("change, path", [
    (lambda b: b.update(amount_field="name"), "$.amount_field"),
    (lambda b: b.update(person_field="nope"), "$.person_field"),
    (lambda b: b.update(date_field="amount_due"), "$.date_field"),
    (lambda b: b["rates"][1].update(when={"field": "amount_due", "op": "gt", "value": 5}), "$.rates[1].when.field"),
    (lambda b: b["rates"][0].update(rate=150), "$.rates[0].rate"),
    (lambda b: b.update(condition={"field": "owner", "op": "eq", "value": {"$user": True}}), "$.condition"),
    (lambda b: b.update(entity="invoice"), "$.entity"),
])
def test_check_errors_have_paths(db, admin, crm, change, path):
    body = copy.deepcopy(catalog.published_version(db, crm, "commission", "sales_commission").body)
    change(body)
    with pytest.raises(DefinitionError) as raised:
        definitions.save_and_publish(db, admin, crm, body)
    assert path in [p.path for p in raised.value.problems], raised.value.problems


def test_rep_cannot_read_statement_service(db, crm, people, payments):
    with pytest.raises(Forbidden):
        incentives.statement(db, people["li"], crm, incentives.plan(db, crm, None),
                             incentives.parse_period(PERIOD, None), people["wang"].id)


def test_role_that_may_not_see_the_amount_gets_no_sums(client, db, admin, crm, people, payments):
    body = copy.deepcopy(catalog.published_version(db, crm, "access", "access").body)
    rep = next(role for role in body["roles"] if role["key"] == "rep")
    rep.setdefault("fields", {})["payment"] = {"amount_received": "hidden"}
    definitions.save_and_publish(db, admin, crm, body)
    db.commit()
    headers = bearer(db, people["li"])
    assert client.get(f"/api/v1/apps/crm/incentives?period={PERIOD}", headers=headers).status_code == 403
    assert client.get(f"/api/v1/apps/crm/incentives/statement?period={PERIOD}", headers=headers).status_code == 403
    assert client.get(f"/api/v1/apps/crm/incentives?period={PERIOD}",
                      headers=bearer(db, people["mia"])).status_code == 200

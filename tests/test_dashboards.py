"""Dashboards: the definition's checks, every CRM widget against an independent computation, the
records behind each number, access (scope and hidden fields), CSV files, pages and the API."""
from __future__ import annotations

import codecs
import csv
import io
import re

import pytest

from formloom.builder import definitions
from formloom.platform.errors import DefinitionError
from formloom.runtime import catalog, dashboards
from tests.conftest import bearer
from tests.dashboard_data import build
from tests.dashboard_expectations import expected, same, shown
from tests.factories import login

CRM_DASHBOARDS = ("activity", "customers", "payments", "sales", "targets")


@pytest.fixture
def crm(db):
    return build(db)


def widgets(db, crm):
    for body in dashboards.published(db, crm.app):
        for widget in body["widgets"]:
            yield body, widget


def view(db, user, crm, body, args=None):
    filters = dashboards.parse_filters(body, args if args is not None else {"period": str(crm.today.year)}, crm.today)
    return dashboards.context(db, user, crm.app, filters, crm.today), filters


# --- the definition ---------------------------------------------------------------------------------

def bad_dashboard() -> dict:
    return {"formloom": 1, "kind": "dashboard", "key": "broken", "label": "Broken", "widgets": [
        {"key": "a", "type": "bar", "label": "No such entity", "entity": "nope", "measure": {"op": "count"}},
        {"key": "b", "type": "bar", "label": "Sum of text", "entity": "opportunity",
         "measure": {"op": "sum", "field": "name"}, "group_by": {"field": "stage"}},
        {"key": "c", "type": "bar", "label": "Group by text", "entity": "opportunity",
         "measure": {"op": "count"}, "group_by": {"field": "name"}},
        {"key": "d", "type": "line", "label": "Date without bucket", "entity": "opportunity",
         "measure": {"op": "count"}, "group_by": {"field": "expected_close"}},
        {"key": "e", "type": "kpi", "label": "Filter not SQL-safe", "entity": "opportunity",
         "measure": {"op": "count"}, "filter": {"field": "amount", "op": "gt", "value": 5}},
        {"key": "e", "type": "kpi", "label": "Twice, and grouped", "entity": "opportunity",
         "measure": {"op": "count"}, "group_by": {"field": "stage"}},
        {"key": "g", "type": "kpi", "label": "Weighted without pipeline", "entity": "customer",
         "measure": {"op": "weighted", "field": "won_amount_12m"}},
        {"key": "h", "type": "kpi", "label": "Measure and metric", "entity": "opportunity",
         "measure": {"op": "count"}, "metric": {"name": "win_rate"}, "date_field": "closed_on"},
        {"key": "i", "type": "kpi", "label": "Win rate without a date", "entity": "opportunity",
         "metric": {"name": "win_rate"}},
        {"key": "j", "type": "pie", "label": "Unknown type", "entity": "opportunity", "measure": {"op": "count"}},
        {"key": "k", "type": "kpi", "label": "Period on a number", "entity": "opportunity",
         "measure": {"op": "count"}, "date_field": "amount"}]}


def test_check_refuses_bad_widgets_each_with_its_path(db, crm):
    with pytest.raises(DefinitionError) as caught:
        definitions.save_and_publish(db, crm.admin, crm.app, bad_dashboard())
    problems = {p.path: p.message for p in caught.value.problems}
    assert "has no entity 'nope'" in problems["$.widgets[0].entity"]
    assert "must be a number field" in problems["$.widgets[1].measure.field"]
    assert "select, user, relation or date" in problems["$.widgets[2].group_by.field"]
    assert "bucket" in problems["$.widgets[3].group_by.bucket"]
    assert "'gt'" in problems["$.widgets[4].filter.op"] and problems["$.widgets[4].filter.op"].startswith("A widget")
    assert "used twice" in problems["$.widgets[5].key"]
    assert "one number" in problems["$.widgets[5].group_by"]
    assert "has no pipeline" in problems["$.widgets[6].measure.op"]
    assert "exactly one" in problems["$.widgets[7]"]
    assert "date_field" in problems["$.widgets[8].date_field"]
    assert "$.widgets[9].type" in problems
    assert "date or date-time" in problems["$.widgets[10].date_field"]


def test_crm_template_publishes_its_five_dashboards(db, crm):
    assert tuple(b["key"] for b in dashboards.published(db, crm.app)) == CRM_DASHBOARDS


# --- numbers --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["admin", "manager", "rep"])
def test_every_crm_widget_equals_an_independent_computation(db, crm, who):
    user = {"admin": crm.admin, "manager": crm.manager, "rep": crm.reps[0]}[who]
    checked = 0
    for body, widget in widgets(db, crm):
        ctx, filters = view(db, user, crm, body)
        data = dashboards.widget_data(ctx, widget)
        wanted = expected(db, user, crm.app, body["key"], widget["key"], filters, crm.today)
        assert same(shown(data), wanted), (body["key"], widget["key"], shown(data), wanted)
        checked += any(v for row in wanted.values() for v in row.values())
    assert checked >= 20, "most widgets have data to compare"


@pytest.mark.parametrize("args", [{"period": "this_month"}, {"period": "last_12_months"}, {"period": "all"},
                                  {"period": "this_quarter", "team": "TEAM"}, {"period": "this_year", "rep": "REP"}])
def test_filters_change_the_numbers_as_the_independent_computation_does(db, crm, args):
    args = {k: (str(crm.reps[1].id) if v == "REP" else str(_team_id(db, "east")) if v == "TEAM" else v)
            for k, v in args.items()}
    for body, widget in widgets(db, crm):
        ctx, filters = view(db, crm.admin, crm, body, args)
        data = dashboards.widget_data(ctx, widget)
        wanted = expected(db, crm.admin, crm.app, body["key"], widget["key"], filters, crm.today)
        assert same(shown(data), wanted), (args, body["key"], widget["key"], shown(data), wanted)


def _team_id(db, key):
    from sqlalchemy import select

    from formloom.platform.models import Team

    return db.scalar(select(Team.id).where(Team.key == key))


def test_known_numbers_of_the_sales_dashboard(db, crm):
    body = dashboards.get(db, crm.app, "sales")
    ctx, _ = view(db, crm.admin, crm, body)
    won = shown(dashboards.widget_data(ctx, dashboards.widget_of(body, "won_amount")))
    assert won[""]["value"] == 230_000  # 100k + 50k + 80k won this year; 60k and 70k closed last year
    rate = shown(dashboards.widget_data(ctx, dashboards.widget_of(body, "win_rate")))
    assert rate[""] == {"won": 3, "lost": 2, "win_rate": 0.6}
    funnel = shown(dashboards.widget_data(ctx, dashboards.widget_of(body, "funnel")))
    assert funnel["won"]["reached"] == 5 and funnel["lead"]["reached"] == 11


# --- drill-down -------------------------------------------------------------------------------------------

COUNTED = {"value", "reached", "won", "lost", "buyers", "repeat", "churned", "prior", "previous"}


@pytest.mark.parametrize("who", ["admin", "rep"])
def test_drill_down_lists_exactly_the_records_behind_each_number(db, crm, who):
    user = crm.admin if who == "admin" else crm.reps[0]
    for body, widget in widgets(db, crm):
        ctx, _ = view(db, user, crm, body)
        data = dashboards.widget_data(ctx, widget)
        for row in data.rows:
            for series, cell in zip(data.series, row.cells):
                if cell.drill is None or cell.drill["series"] != series.key:
                    continue
                found = dashboards.drill(ctx, widget, cell.drill["bucket"], cell.drill["series"])
                listed, total = dashboards.drill_page(ctx, found, 1, 10_000)
                where = (body["key"], widget["key"], row.key, series.key)
                if series.fmt == "money" and widget.get("measure", {}).get("op") == "sum":
                    field = widget["measure"]["field"]
                    assert sum(float(r.data.get(field) or 0) for r in listed) == pytest.approx(cell.value), where
                elif series.key in ("actual", "target"):
                    assert sum(float(r.data["amount"]) for r in listed) == pytest.approx(cell.value), where
                elif series.key in COUNTED and series.fmt == "number" and widget.get("measure", {}).get("op") in (
                        None, "count"):
                    assert total == cell.value, where
                if who == "rep" and found.entity_key == "opportunity":
                    assert all(r.owner_id == user.id for r in listed), where


def test_drill_down_page_links_each_record(db, client, crm):
    body = dashboards.get(db, crm.app, "sales")
    ctx, _ = view(db, crm.admin, crm, body)
    data = dashboards.widget_data(ctx, dashboards.widget_of(body, "win_rate"))
    found = dashboards.drill(ctx, dashboards.widget_of(body, "win_rate"), "", "won")
    wanted, _ = dashboards.drill_page(ctx, found, 1)
    login(client, "boss")
    page = client.get(f"/apps/crm/dashboards/sales/win_rate/records?period={crm.today.year}&bucket=&series=won")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    ids = set(re.findall(r'href="/apps/crm/opportunity/(\d+)"', html))
    assert ids == {str(r.id) for r in wanted} and len(ids) == data.rows[0].cells[0].value == 3


def test_unknown_series_or_period_is_a_clear_error(db, client, crm):
    login(client, "boss")
    page = client.get("/apps/crm/dashboards/sales/win_rate/records?bucket=&series=nope")
    assert page.status_code == 400 and "has no series" in page.get_data(as_text=True)
    page = client.get("/apps/crm/dashboards/sales?period=someday")
    assert page.status_code == 400 and "Unknown period" in page.get_data(as_text=True)


# --- access -----------------------------------------------------------------------------------------------

def test_a_rep_sees_only_the_numbers_of_their_own_records(db, crm):
    body = dashboards.get(db, crm.app, "sales")
    rep_ctx, _ = view(db, crm.reps[1], crm, body)
    admin_ctx, _ = view(db, crm.admin, crm, body)
    widget = dashboards.widget_of(body, "won_amount")
    assert shown(dashboards.widget_data(rep_ctx, widget))[""]["value"] == 80_000
    assert shown(dashboards.widget_data(admin_ctx, widget))[""]["value"] == 230_000


def hide_amount_from_reps(db, crm):
    body = catalog.published_version(db, crm.app, "access", "access").body
    roles = [dict(r) for r in body["roles"]]
    for role in roles:
        if role["key"] == "rep":
            role["fields"] = {**(role.get("fields") or {}), "opportunity": {"amount": "hidden"}}
    definitions.save_and_publish(db, crm.admin, crm.app, {**body, "roles": roles})
    db.commit()


def test_a_widget_over_a_hidden_field_says_so_and_shows_no_number(db, client, crm):
    hide_amount_from_reps(db, crm)
    headers = bearer(db, crm.reps[0])
    body = dashboards.get(db, crm.app, "sales")
    ctx, _ = view(db, crm.reps[0], crm, body)
    data = dashboards.widget_data(ctx, dashboards.widget_of(body, "won_amount"))
    assert data.state == "hidden" and data.rows == [] and "amount" in data.message
    found = dashboards.drill(ctx, dashboards.widget_of(body, "won_amount"), "", "value")
    assert dashboards.drill_page(ctx, found, 1) == ([], 0)
    login(client, "wang")
    html = client.get(f"/apps/crm/dashboards/sales?period={crm.today.year}").get_data(as_text=True)
    assert "150,000" not in html and "may not see" in html
    csv_text = client.get(f"/apps/crm/dashboards/sales/won_amount.csv?period={crm.today.year}").get_data(as_text=True)
    assert "150000" not in csv_text
    api = client.get("/api/v1/apps/crm/dashboards/sales", headers=headers).get_json()
    hidden = next(w for w in api["widgets"] if w["key"] == "won_amount")
    assert hidden["state"] == "hidden" and hidden["rows"] == []
    assert next(w for w in api["widgets"] if w["key"] == "win_rate")["rows"][0]["values"]["won"] == 2


# --- CSV, pages and API -----------------------------------------------------------------------------------

def test_csv_export_holds_the_widget_numbers(db, client, crm):
    login(client, "boss")
    response = client.get(f"/apps/crm/dashboards/sales/win_rate_by_rep.csv?period={crm.today.year}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.data.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8")[1:])))
    assert rows[0] == ["Row", "Won", "Lost", "Win rate"]
    assert ["王伟", "2", "1", "0.6667"] in rows and ["Li Na", "1", "0", "1"] in rows


@pytest.mark.parametrize("locale, words", [("en", ("Dashboards", "Sales funnel", "Data table")),
                                           ("zh-CN", ("仪表盘", "销售漏斗", "数据表"))])
def test_every_dashboard_page_renders_charts_and_drill_links(db, client, crm, locale, words):
    login(client, "boss")
    listing = client.get(f"/apps/crm/dashboards/?lang={locale}").get_data(as_text=True)
    assert words[0] in listing
    for key in CRM_DASHBOARDS:
        page = client.get(f"/apps/crm/dashboards/{key}?period={crm.today.year}")
        html = page.get_data(as_text=True)
        assert page.status_code == 200, key
        assert "<svg" in html and words[2] in html, key
        assert f"/apps/crm/dashboards/{key}/" in html and "/records?" in html, key
        assert "style=" not in html and "<script>" not in html, key
    assert words[1] in client.get("/apps/crm/dashboards/sales").get_data(as_text=True)
    assert 'class="dashboards-link"' in client.get("/apps/crm/opportunity/").get_data(as_text=True)


def test_api_gives_widget_data_and_the_records_behind_a_number(db, client, crm):
    headers = bearer(db, crm.admin)
    found = client.get(f"/api/v1/apps/crm/dashboards/sales?period={crm.today.year}", headers=headers).get_json()
    rate = next(w for w in found["widgets"] if w["key"] == "win_rate")
    assert rate["rows"][0]["values"] == {"won": 3, "lost": 2, "win_rate": 0.6}
    listed = client.get(f"/api/v1/apps/crm/dashboards/sales/win_rate/records?period={crm.today.year}&series=lost",
                        headers=headers).get_json()
    assert listed["total"] == 2 and {r["data"]["stage"] for r in listed["records"]} == {"lost"}
    assert client.get("/api/v1/apps/crm/dashboards/nope", headers=headers).get_json()["error"]["code"] == "not_found"
    assert [d["key"] for d in client.get("/api/v1/apps/crm/dashboards", headers=headers).get_json()["dashboards"]] \
        == list(CRM_DASHBOARDS)

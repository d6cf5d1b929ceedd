"""Managing members and teams in a real browser: an app admin finds the members page from the app,
changes a role, adds someone; a global admin sets up a team. Screenshots for the docs land in
docs/screenshots/members.png and teams.png."""
from __future__ import annotations

import pytest

from formloom.builder import definitions
from formloom.platform import auth
from tests.browser.conftest import Page, expect, log_in, whole_page
from tests.factories import make_sales_app, make_user

pytestmark = pytest.mark.browser

ACCESS = {
    "formloom": 1, "kind": "access", "key": "access", "label": "Who may do what",
    "roles": [
        {"key": "rep", "label": {"en": "Sales rep", "zh-CN": "销售"},
         "entities": {"*": {"create": True, "read": "own", "update": "own"}}},
        {"key": "manager", "label": {"en": "Sales manager", "zh-CN": "销售经理"},
         "entities": {"*": {"create": True, "read": "team", "update": "team"}}},
        {"key": "office", "label": {"en": "Sales office", "zh-CN": "销售内勤"},
         "entities": {"*": {"read": "all"}}, "members": True},
    ],
}


@pytest.fixture
def team_app(db, admin):
    """The sales app with an access definition, an app admin, a manager, reps and a team."""
    app = make_sales_app(db, admin)
    definitions.save_and_publish(db, admin, app, ACCESS)
    people = {name: make_user(db, name, display_name=shown) for name, shown in [
        ("zhang.min", "张敏 Zhang Min"), ("li.wei", "李伟 Li Wei"), ("emma", "Emma Brown"),
        ("chen.jie", "陈杰 Chen Jie"), ("office", "Olga Office"), ("boss", "Bo Boss")]}
    for name, role in [("boss", "admin"), ("zhang.min", "manager"), ("li.wei", "rep"), ("emma", "rep"),
                       ("office", "office")]:
        auth.grant_app(db, people[name], app, role)
    auth.add_team(db, "east_sales", "East China sales / 华东销售部", people["zhang.min"],
                  [people["li.wei"], people["emma"]])
    db.commit()
    return app


def test_an_app_admin_changes_a_role_and_adds_a_member(live_server, page: Page, team_app, screenshots):
    log_in(page, live_server, "boss", "Bo Boss")
    page.goto(f"{live_server}/apps/sales/")
    page.get_by_role("link", name="Members").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Members")
    row = page.locator('tr[data-member="emma"]')
    expect(row).to_contain_text("East China sales / 华东销售部")
    row.get_by_label("Role: Emma Brown").select_option("manager")
    row.get_by_role("button", name="Save").click()
    expect(page.locator(".flash-success")).to_have_text("Role changed.")
    expect(page.locator('tr[data-member="emma"] select')).to_have_value("manager")

    page.fill("#new-username", "chen.jie")
    page.select_option("#new-role", "rep")
    page.get_by_role("button", name="Add a member").click()
    expect(page.locator(".flash-success")).to_have_text("Member added.")
    expect(page.locator('tr[data-member="chen.jie"] select')).to_have_value("rep")
    assert page.js_errors == []
    whole_page(page, screenshots / "members.png")


def test_a_members_role_cannot_offer_the_admin_role(live_server, page: Page, team_app):
    log_in(page, live_server, "office", "Olga Office")
    page.goto(f"{live_server}/apps/sales/admin/members")
    expect(page.locator('#new-role option[value="admin"]')).to_be_disabled()
    expect(page.locator('tr[data-member="boss"] select')).to_be_disabled()
    expect(page.locator('tr[data-member="boss"]')).to_contain_text("Only app admins may change this role.")


def test_a_global_admin_sets_up_a_team(live_server, page: Page, team_app, screenshots):
    log_in(page, live_server, "admin", "Ada Admin")
    page.goto(f"{live_server}/admin/teams")
    page.fill("#team-key", "north_sales")
    page.fill("#team-name", "North China sales / 华北销售部")
    page.select_option("#team-manager", "boss")
    page.select_option("#team-members", ["chen.jie", "office"])
    page.get_by_role("button", name="New team").click()
    expect(page.locator(".flash-success")).to_have_text("Team created.")
    north = page.locator('section[data-team="north_sales"]')
    expect(north.locator("li")).to_have_count(2)
    north.get_by_label("Username").fill("li.wei")
    north.get_by_role("button", name="Add to team").click()
    expect(page.locator('section[data-team="north_sales"] li')).to_have_count(3)
    assert page.js_errors == []
    whole_page(page, screenshots / "teams.png")

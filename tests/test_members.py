"""Managing an app's members and roles, and the teams: the services' rules, the pages, the API,
the command line, the audit entries, and that a new role counts from the next request."""
from __future__ import annotations

import re
import threading
import time

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from formloom.builder import definitions
from formloom.platform import audit, auth, members
from formloom.platform.auth import Cause
from formloom.platform.cli import main
from formloom.platform.db import new_session
from formloom.platform.errors import Conflict, Forbidden, NotFound
from formloom.platform.members import KEEP, LastAdmin, TeamChange, UnknownRole, UnknownUser
from formloom.platform.models import AppMember, Team, TeamMember, User
from formloom.runtime import records
from tests.conftest import bearer
from tests.factories import csrf_token, login, make_pipeline_app, make_user

ACCESS = {
    "formloom": 1, "kind": "access", "key": "access", "label": "Who may do what",
    "roles": [
        {"key": "rep", "label": {"en": "Sales rep", "zh-CN": "销售"},
         "entities": {"*": {"create": True, "read": "own", "update": "own"}}},
        {"key": "manager", "entities": {"*": {"create": True, "read": "team", "update": "team"}}},
        {"key": "office", "label": "Back office", "entities": {"*": {"read": "all"}}, "members": True},
        {"key": "architect", "label": "Architect", "entities": {"*": {"read": "all"}}, "build": True},
    ],
}


@pytest.fixture
def people(db, sales, admin):
    """Members of the sales app (with its access definition) by name, and one non-member (otto)."""
    definitions.save_and_publish(db, admin, sales, ACCESS)
    roles = {"boss": "admin", "office": "office", "mia": "manager", "rita": "rep", "rob": "rep", "vic": "viewer"}
    made = {name: make_user(db, name, display_name=name.capitalize()) for name in [*roles, "otto"]}
    for name, role in roles.items():
        auth.grant_app(db, made[name], sales, role)
    db.commit()
    return made


def entries(db, kind: audit.AuditKind) -> list:
    db.commit()  # end the test's read transaction, and forget what it read: see what requests wrote
    db.expire_all()
    return list(reversed(audit.entries(db, kind=kind.value)))


def role_of(db, app, user) -> str | None:
    db.commit()
    db.expire_all()
    member = db.get(AppMember, (app.id, user.id))
    return member.role if member else None


# --- roles -----------------------------------------------------------------------------------

def test_roles_offered_are_the_built_in_then_the_custom_roles(db, sales, people):
    offered = members.roles_offered(db, sales)
    assert [r.key for r in offered] == ["admin", "manager", "rep", "viewer", "office", "architect"]
    assert next(r for r in offered if r.key == "rep").label == {"en": "Sales rep", "zh-CN": "销售"}


def test_an_app_without_access_definition_offers_the_built_in_roles(db, sales, admin):
    assert [r.key for r in members.roles_offered(db, sales)] == ["admin", "manager", "rep", "viewer"]


def test_an_unknown_role_is_refused_naming_the_valid_ones(db, sales, admin, people):
    with pytest.raises(UnknownRole) as caught:
        members.add_member(db, admin, sales, "otto", "boss")
    assert caught.value.message.startswith("There is no role 'boss' in app 'sales'; choose one of admin, manager, "
                                           "rep, viewer, office, architect")
    assert role_of(db, sales, people["otto"]) is None


# --- members ---------------------------------------------------------------------------------

def test_adding_a_member_gives_the_role_and_writes_the_audit(db, sales, admin, people):
    members.add_member(db, admin, sales, " otto ", "office")
    db.commit()
    assert role_of(db, sales, people["otto"]) == "office"
    entry = entries(db, audit.AuditKind.MEMBER_CHANGED)[-1]
    assert (entry.actor_id, entry.app_id, entry.subject) == (admin.id, sales.id, "otto")
    assert entry.detail == {"before": None, "after": "office"}


def test_adding_someone_unknown_says_how_to_create_them(db, sales, admin):
    with pytest.raises(UnknownUser, match=re.escape(
            "There is no user 'nobody'; check the spelling, or create them first with 'formloom user create nobody'.")):
        members.add_member(db, admin, sales, "nobody", "rep")


def test_adding_a_member_twice_says_to_change_the_role(db, sales, admin, people):
    with pytest.raises(Conflict, match=r"'rita' is already a member of app 'sales' \(role rep\); change their "
                                       r"role instead."):
        members.add_member(db, admin, sales, "rita", "viewer")


def test_changing_a_role_is_audited_and_the_same_role_is_no_change(db, sales, admin, people):
    rita = members.get_member(db, admin, sales, people["rita"].id)
    members.change_role(db, admin, sales, rita, "manager")
    members.change_role(db, admin, sales, rita, "manager")
    db.commit()
    assert role_of(db, sales, people["rita"]) == "manager"
    assert [e.detail for e in entries(db, audit.AuditKind.MEMBER_CHANGED)] == [{"before": "rep", "after": "manager"}]


def test_removing_a_member_is_audited_and_they_no_longer_see_the_app(client, db, sales, admin, people):
    members.remove_member(db, admin, sales, members.get_member(db, admin, sales, people["rob"].id))
    db.commit()
    assert role_of(db, sales, people["rob"]) is None
    assert entries(db, audit.AuditKind.MEMBER_CHANGED)[-1].detail == {"before": "rep", "after": None}
    login(client, "rob")
    assert client.get("/apps/sales/").status_code in (403, 404)


def test_a_non_member_is_not_found_by_user_id(db, sales, admin, people):
    with pytest.raises(NotFound, match=r"User #\d+ is not a member of app 'sales'."):
        members.get_member(db, admin, sales, people["otto"].id)


def test_the_last_app_admin_stays_when_there_is_no_global_admin(db, sales, admin, people):
    admin.role = "member"  # an installation whose apps are run by their app admins only
    db.commit()
    boss = people["boss"]
    own = members.get_member(db, boss, sales, boss.id)
    with pytest.raises(LastAdmin, match=re.escape(
            "'boss' is the last admin of app 'sales', and an app must keep at least one person who can manage it; "
            "give another member the admin role first.")):
        members.change_role(db, boss, sales, own, "rep")
    with pytest.raises(LastAdmin):
        members.remove_member(db, boss, sales, own)
    members.set_member(db, boss, sales, "mia", "admin")
    members.remove_member(db, boss, sales, own)  # mia can manage the app now
    db.commit()
    assert role_of(db, sales, boss) is None


def test_two_admins_demoting_each_other_at_once_leave_one_admin(app, db, sales, admin, people):
    admin.role = "member"
    auth.grant_app(db, people["mia"], sales, "admin")
    db.commit()
    first, second = new_session(app, write=True), new_session(app, write=True)
    boss = first.get(User, people["boss"].id)
    members.change_role(first, boss, sales, members.get_member(first, boss, sales, people["mia"].id), "rep")
    outcome = []

    def demote_boss():  # waits for the first transaction, then sees mia is no admin, or boss the last one
        try:
            mia = second.get(User, people["mia"].id)
            members.change_role(second, mia, sales, members.get_member(second, mia, sales, people["boss"].id),
                                "rep")
            second.commit()
            outcome.append("demoted")
        except (LastAdmin, Forbidden):
            second.rollback()
            outcome.append("refused")

    racer = threading.Thread(target=demote_boss)
    racer.start()
    time.sleep(0.5)
    first.commit()
    racer.join(timeout=60)
    first.close(), second.close()
    assert outcome == ["refused"]
    assert (role_of(db, sales, people["boss"]), role_of(db, sales, people["mia"])) == ("admin", "rep")


def test_a_global_admin_keeps_an_app_manageable_without_app_admins(db, sales, admin, people):
    members.change_role(db, admin, sales, members.get_member(db, admin, sales, people["boss"].id), "rep")
    db.commit()
    assert role_of(db, sales, people["boss"]) == "rep"


def test_a_role_with_members_manages_members_but_not_admins(db, sales, people):
    office = people["office"]
    members.add_member(db, office, sales, "otto", "rep")
    members.change_role(db, office, sales, members.get_member(db, office, sales, people["rita"].id), "viewer")
    with pytest.raises(Forbidden, match="Only app admins may give the role 'admin'"):
        members.change_role(db, office, sales, members.get_member(db, office, sales, people["rob"].id), "admin")
    with pytest.raises(Forbidden, match="Only app admins may give the role 'architect'"):
        members.change_role(db, office, sales, members.get_member(db, office, sales, people["rob"].id), "architect")
    boss = members.get_member(db, office, sales, people["boss"].id)
    with pytest.raises(Forbidden, match=r"'boss' has the role 'admin'.*only app admins may change or remove it"):
        members.change_role(db, office, sales, boss, "rep")
    with pytest.raises(Forbidden):
        members.remove_member(db, office, sales, boss)
    db.commit()
    assert [role_of(db, sales, people[n]) for n in ("otto", "rita", "rob", "boss")] == ["rep", "viewer", "rep", "admin"]


def test_an_app_admin_may_give_the_admin_role(db, sales, people):
    boss = people["boss"]
    members.change_role(db, boss, sales, members.get_member(db, boss, sales, people["mia"].id), "admin")
    db.commit()
    assert role_of(db, sales, people["mia"]) == "admin"


@pytest.mark.parametrize("name", ["mia", "rita", "vic"])
def test_roles_without_members_may_not_manage_members(db, sales, people, name):
    with pytest.raises(Forbidden, match=r"You do not have permission to manage members in app 'sales'\."):
        members.list_members(db, people[name], sales)
    with pytest.raises(Forbidden):
        members.add_member(db, people[name], sales, "otto", "rep")


def test_list_members_shows_roles_and_teams(db, sales, admin, people):
    auth.add_team(db, "north", "North", people["mia"], [people["rita"], people["rob"]])
    auth.add_team(db, "south", "South", None, [people["mia"]])
    db.commit()
    listed = {m.user.username: (m.role, [(link.team.key, link.manages) for link in m.teams])
              for m in members.list_members(db, admin, sales)}
    assert listed == {"boss": ("admin", []), "office": ("office", []), "mia": ("manager", [("north", True),
                                                                                       ("south", False)]),
                      "rita": ("rep", [("north", False)]), "rob": ("rep", [("north", False)]), "vic": ("viewer", [])}


# --- teams -----------------------------------------------------------------------------------

def test_teams_are_created_changed_and_deleted_with_audit(db, admin, people):
    team = members.create_team(db, admin, "north", TeamChange(name="North", manager="mia", members=("rita",)))
    members.update_team(db, admin, team, TeamChange(name="North region"))
    members.add_team_member(db, admin, team, "rob")
    members.remove_team_member(db, admin, team, people["rita"].id)
    members.update_team(db, admin, team, TeamChange(manager=None))
    members.update_team(db, admin, team, TeamChange(name="North region"))  # no change, no entry
    view = members.team_view(db, team)
    assert (view.team.name, view.manager, [u.username for u in view.members]) == ("North region", None, ["rob"])
    members.delete_team(db, admin, team)
    db.commit()
    assert db.scalar(select(Team).where(Team.key == "north")) is None
    assert db.scalars(select(TeamMember)).all() == []
    details = [(e.subject, e.detail) for e in entries(db, audit.AuditKind.TEAM_CHANGED)]
    first = {"key": "north", "name": "North", "manager": "mia", "members": ["rita"]}
    assert details[0] == ("north", {"before": None, "after": first})
    assert details[1][1]["after"]["name"] == "North region"
    assert details[2][1]["after"]["members"] == ["rita", "rob"]
    assert details[3][1]["after"]["members"] == ["rob"]
    assert details[4][1]["after"]["manager"] is None
    assert details[5] == ("north", {"before": {"key": "north", "name": "North region", "manager": None,
                                               "members": ["rob"]}, "after": None})
    assert len(details) == 6


@pytest.mark.parametrize(("key", "change", "message"), [
    ("North", TeamChange(name="North"), "A team key is a lower-case letter followed by"),
    ("north", TeamChange(), "Give team 'north' a name."),
    ("north", TeamChange(name="  "), "A team's name is required"),
    ("north", TeamChange(name="North", manager="ghost"), "There is no user 'ghost'"),
    ("north", TeamChange(name="North", members=("rita", "ghost")), "There is no user 'ghost'"),
])
def test_a_wrong_team_is_refused_with_the_fix(db, admin, people, key, change, message):
    with pytest.raises(members.FormloomError, match=message):
        members.create_team(db, admin, key, change)


def test_a_team_key_is_used_once(db, admin, people):
    members.create_team(db, admin, "north", TeamChange(name="North"))
    with pytest.raises(Conflict, match="A team with key 'north' already exists"):
        members.create_team(db, admin, "north", TeamChange(name="Other"))


def test_only_global_admins_manage_teams(db, people):
    with pytest.raises(Forbidden, match=r"You do not have permission to manage apps\."):
        members.create_team(db, people["boss"], "north", TeamChange(name="North"))
    with pytest.raises(Forbidden):
        members.list_teams(db, people["office"])


# --- scope takes effect at once --------------------------------------------------------------

def _titles(client) -> set[str]:
    page = client.get("/apps/sales/deal/").get_data(as_text=True)
    return {name for name in ("Rita's deal", "Rob's deal", "Otto's deal") if name.replace("'", "&#39;") in page}


def test_a_rep_promoted_to_manager_sees_the_team_records_on_the_next_request(app, db, sales, admin, people):
    auth.add_team(db, "north", "North", None, [people["rita"], people["rob"]])
    auth.grant_app(db, people["otto"], sales, "rep")
    for name in ("rita", "rob", "otto"):
        records.create(db, people[name], Cause.for_user(people[name]), sales, "deal",
                       {"name": f"{name.capitalize()}'s deal"})
    db.commit()
    rita, boss = app.test_client(), app.test_client()
    login(rita, "rita")
    assert _titles(rita) == {"Rita's deal"}
    login(boss, "boss")
    changed = boss.post(f"/apps/sales/admin/members/{people['rita'].id}/role",
                        data={"role": "manager", "csrf_token": csrf_token(boss, "/apps/sales/admin/members")})
    assert changed.status_code == 303
    assert _titles(rita) == {"Rita's deal", "Rob's deal"}  # her team, not Otto's


# --- pages -----------------------------------------------------------------------------------

def test_the_members_page_lists_members_with_escaped_names(client, db, sales, admin, people):
    make_user(db, "eve", display_name="<script>alert(1)</script>")
    auth.grant_app(db, db.scalar(select(User).where(User.username == "eve")), sales, "rep")
    auth.add_team(db, "x", "<b>Team</b>", None, [people["rita"]])
    db.commit()
    login(client, "admin")
    page = client.get("/apps/sales/admin/members")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>Team</b>" not in html and "&lt;b&gt;Team&lt;/b&gt;" in html
    assert 'data-member="rita"' in html and "Sales rep (rep)" in html and "Back office (office)" in html
    assert "<script" not in html.split("</head>")[1]  # no inline scripts in the body


def test_the_members_page_speaks_chinese(client, db, sales, people):
    login(client, "admin")
    html = client.get("/apps/sales/admin/members?lang=zh-CN").get_data(as_text=True)
    assert "<h1>成员" in html and "添加成员" in html and "应用管理员 (admin)" in html and "销售 (rep)" in html


def test_the_app_page_and_the_builder_link_to_members_for_those_who_may(client, db, sales, people):
    login(client, "boss")
    assert "/apps/sales/admin/members" in client.get("/apps/sales/").get_data(as_text=True)
    assert "/apps/sales/admin/members" in client.get("/apps/sales/admin/").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_token(client, "/apps/sales/")})
    login(client, "mia")
    assert "/apps/sales/admin/members" not in client.get("/apps/sales/").get_data(as_text=True)


@pytest.mark.parametrize(("name", "status"), [("mia", 403), ("rita", 403), ("vic", 403), ("otto", 404)])
def test_the_members_page_refuses_those_who_may_not_manage_members(client, db, sales, people, name, status):
    login(client, name)
    assert client.get("/apps/sales/admin/members").status_code == status
    token = csrf_token(client, "/notifications/")
    posted = client.post("/apps/sales/admin/members", data={"username": "otto", "role": "rep", "csrf_token": token})
    assert posted.status_code == status
    assert client.post(f"/apps/sales/admin/members/{people['rita'].id}/role",
                       data={"role": "viewer", "csrf_token": token}).status_code == status
    assert role_of(db, sales, people["rita"]) == "rep"


def test_a_members_role_manages_members_on_the_page_but_cannot_grant_admin(client, db, sales, people):
    login(client, "office")
    page = client.get("/apps/sales/admin/members").get_data(as_text=True)
    assert re.search(r'<option value="admin"\s+disabled>', page)  # offered to no one by this role
    token = csrf_token(client, "/apps/sales/admin/members")
    added = client.post("/apps/sales/admin/members", data={"username": "otto", "role": "viewer", "csrf_token": token})
    assert added.status_code == 303 and "Member added." in client.get(added.location).get_data(as_text=True)
    refused = client.post(f"/apps/sales/admin/members/{people['rita'].id}/role",
                          data={"role": "admin", "csrf_token": token})
    shown = client.get(refused.location).get_data(as_text=True)
    assert "Only app admins may give the role &#39;admin&#39;" in shown
    assert role_of(db, sales, people["otto"]) == "viewer" and role_of(db, sales, people["rita"]) == "rep"


def test_removing_and_errors_on_the_page(client, db, sales, people):
    login(client, "boss")
    token = csrf_token(client, "/apps/sales/admin/members")
    removed = client.post(f"/apps/sales/admin/members/{people['vic'].id}/remove", data={"csrf_token": token})
    assert "Member removed." in client.get(removed.location).get_data(as_text=True)
    assert role_of(db, sales, people["vic"]) is None
    unknown = client.post("/apps/sales/admin/members", data={"username": "ghost", "role": "rep", "csrf_token": token})
    assert "There is no user &#39;ghost&#39;" in client.get(unknown.location).get_data(as_text=True)
    missing = client.post(f"/apps/sales/admin/members/{people['otto'].id}/remove", data={"csrf_token": token})
    assert "is not a member of app &#39;sales&#39;" in client.get(missing.location).get_data(as_text=True)


def test_the_pages_need_the_csrf_token(client, db, sales, people):
    login(client, "admin")
    assert client.post("/apps/sales/admin/members", data={"username": "otto", "role": "rep"}).status_code == 400
    assert client.post("/admin/teams", data={"key": "north", "name": "North"}).status_code == 400
    assert role_of(db, sales, people["otto"]) is None


def test_the_teams_page_is_for_global_admins(client, db, sales, people):
    login(client, "boss")
    assert client.get("/admin/teams").status_code == 403
    assert client.post("/admin/teams", data={"key": "north", "name": "North",
                                             "csrf_token": csrf_token(client, "/notifications/")}).status_code == 403
    assert "/admin/teams" not in client.get("/apps/sales/admin/members").get_data(as_text=True)


def test_teams_are_managed_on_the_teams_page(client, db, people):
    login(client, "admin")
    token = csrf_token(client, "/admin/teams")
    created = client.post("/admin/teams", data={"key": "north", "name": "North <East>", "manager": "mia",
                                                "members": ["rita", "rob"], "csrf_token": token})
    html = client.get(created.location).get_data(as_text=True)
    assert "Team created." in html and "North &lt;East&gt;" in html and 'data-person="rob"' in html
    team_id = db.scalar(select(Team.id).where(Team.key == "north"))
    client.post(f"/admin/teams/{team_id}", data={"name": "North", "manager": "", "csrf_token": token})
    client.post(f"/admin/teams/{team_id}/members", data={"username": "vic", "csrf_token": token})
    client.post(f"/admin/teams/{team_id}/members/{people['rita'].id}/remove", data={"csrf_token": token})
    db.commit()
    db.expire_all()
    view = members.team_view(db, db.get(Team, team_id))
    assert (view.team.name, view.manager, [u.username for u in view.members]) == ("North", None, ["rob", "vic"])
    wrong = client.post("/admin/teams", data={"key": "North!", "name": "x", "csrf_token": token})
    assert "A team key is a lower-case letter" in client.get(wrong.location).get_data(as_text=True)
    deleted = client.post(f"/admin/teams/{team_id}/delete", data={"csrf_token": token})
    assert "Team deleted." in client.get(deleted.location).get_data(as_text=True)
    db.commit()
    db.expire_all()
    assert db.get(Team, team_id) is None
    assert len(entries(db, audit.AuditKind.TEAM_CHANGED)) == 5


# --- API -------------------------------------------------------------------------------------

API = "/api/v1/apps/sales/members"


def test_api_lists_members_and_roles(client, db, sales, admin, people):
    answer = client.get(API, headers=bearer(db, people["boss"]))
    assert answer.status_code == 200
    body = answer.get_json()
    assert [m["username"] for m in body["items"]] == ["boss", "mia", "office", "rita", "rob", "vic"]
    assert {m["username"]: m["role"] for m in body["items"]}["office"] == "office"
    assert [r["key"] for r in body["roles"]] == ["admin", "manager", "rep", "viewer", "office", "architect"]


def test_api_adds_changes_and_removes_a_member(client, db, sales, admin, people):
    headers = bearer(db, people["office"])
    added = client.post(API, headers=headers, json={"username": "otto", "role": "viewer"})
    assert added.status_code == 201 and added.get_json()["role"] == "viewer"
    otto = people["otto"].id
    patched = client.patch(f"{API}/{otto}", headers=headers, json={"role": "rep"})
    assert patched.status_code == 200 and patched.get_json()["role"] == "rep"
    assert client.delete(f"{API}/{otto}", headers=headers).status_code == 204
    assert role_of(db, sales, people["otto"]) is None
    assert [e.detail["after"] for e in entries(db, audit.AuditKind.MEMBER_CHANGED)] == ["viewer", "rep", None]


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("post", "", {"username": "otto", "role": "chief"}, 422, "unknown_role"),
    ("post", "", {"username": "ghost"}, 422, "unknown_user"),
    ("post", "", {"role": "rep"}, 400, "bad_request"),
    ("post", "", {"username": "rita", "role": "rep"}, 409, "conflict"),
    ("patch", "/{otto}", {"role": "viewer"}, 404, "not_found"),
    ("delete", "/{otto}", None, 404, "not_found"),
    ("patch", "/{rita}", {"role": "admin"}, 403, "forbidden"),
    ("patch", "/{rita}", {}, 400, "bad_request"),
    ("delete", "/{boss}", None, 403, "forbidden"),
    ("patch", "/99999999999", {"role": "rep"}, 404, "not_found"),
])
def test_api_errors_say_what_to_fix(client, db, sales, people, method, path, body, status, code):
    ids = {name: people[name].id for name in ("otto", "rita", "boss")}
    answer = getattr(client, method)(API + path.format(**ids), headers=bearer(db, people["office"]), json=body)
    assert answer.status_code == status
    error = answer.get_json()["error"]
    assert error["code"] == code and error["message"].endswith(".")


def test_api_a_member_of_another_app_is_not_found(client, db, sales, admin, people):
    other = make_pipeline_app(db, admin)
    auth.grant_app(db, people["otto"], other, "rep")
    db.commit()
    answer = client.patch(f"{API}/{people['otto'].id}", headers=bearer(db, admin), json={"role": "viewer"})
    assert answer.status_code == 404
    assert role_of(db, other, people["otto"]) == "rep"


@pytest.mark.parametrize(("name", "status"), [("mia", 403), ("rita", 403), ("otto", 404)])
def test_api_refuses_those_who_may_not_manage_members(client, db, sales, people, name, status):
    headers = bearer(db, people[name])
    assert client.get(API, headers=headers).status_code == status
    assert client.post(API, headers=headers, json={"username": "vic", "role": "rep"}).status_code == status


def test_api_token_scopes_limit_member_management(client, db, sales, people):
    token, secret = auth.create_token(db, people["boss"], "read only")
    token.scopes = ["records:read"]
    db.commit()
    assert client.get(API, headers={"Authorization": f"Bearer {secret}"}).status_code == 403
    token.scopes = ["admin"]
    db.commit()
    assert client.get(API, headers={"Authorization": f"Bearer {secret}"}).status_code == 200


def test_api_manages_teams(client, db, admin, people):
    headers = bearer(db, admin)
    created = client.post("/api/v1/teams", headers=headers,
                          json={"key": "north", "name": "North", "manager": "mia", "members": ["rita"]})
    assert created.status_code == 201
    team = created.get_json()
    assert (team["manager"]["username"], [m["username"] for m in team["members"]]) == ("mia", ["rita"])
    url = f"/api/v1/teams/{team['id']}"
    assert client.patch(url, headers=headers, json={"name": "North region", "manager": None}).get_json()["manager"] is None
    put = client.put(f"{url}/members", headers=headers, json={"members": ["rob", "vic"]})
    assert [m["username"] for m in put.get_json()["members"]] == ["rob", "vic"]
    assert client.get(url, headers=headers).get_json()["name"] == "North region"
    assert [t["key"] for t in client.get("/api/v1/teams", headers=headers).get_json()["items"]] == ["north"]
    assert client.delete(url, headers=headers).status_code == 204
    assert client.get(url, headers=headers).status_code == 404
    assert len(entries(db, audit.AuditKind.TEAM_CHANGED)) == 4


@pytest.mark.parametrize(("method", "path", "body", "status", "code"), [
    ("post", "/api/v1/teams", {"key": "North", "name": "N"}, 422, "invalid_team"),
    ("post", "/api/v1/teams", {"key": "north", "name": "N", "members": "rita"}, 400, "bad_request"),
    ("post", "/api/v1/teams", {"key": "north", "name": "N", "manager": 5}, 400, "bad_request"),
    ("put", "/api/v1/teams/{id}/members", {}, 400, "bad_request"),
    ("put", "/api/v1/teams/{id}/members", {"members": ["ghost"]}, 422, "unknown_user"),
    ("get", "/api/v1/teams/12345", None, 404, "not_found"),
])
def test_api_team_errors(client, db, admin, people, method, path, body, status, code):
    team = members.create_team(db, admin, "south", TeamChange(name="South"))
    db.commit()
    answer = getattr(client, method)(path.format(id=team.id), headers=bearer(db, admin), json=body)
    assert answer.status_code == status and answer.get_json()["error"]["code"] == code


def test_api_teams_are_for_global_admins(client, db, admin, people):
    team = members.create_team(db, admin, "south", TeamChange(name="South", members=KEEP))
    db.commit()
    headers = bearer(db, people["boss"])
    assert client.get("/api/v1/teams", headers=headers).status_code == 403
    assert client.put(f"/api/v1/teams/{team.id}/members", headers=headers, json={"members": []}).status_code == 403
    assert client.post("/api/v1/teams", headers=headers, json={"key": "x", "name": "X"}).status_code == 403


def test_api_with_a_cookie_needs_the_csrf_header(client, db, sales, people):
    login(client, "admin")
    assert client.post(API, json={"username": "otto", "role": "rep"}).status_code == 400
    token = csrf_token(client, "/notifications/")
    assert client.post(API, json={"username": "otto", "role": "rep"}, headers={"X-CSRFToken": token}).status_code == 201


# --- command line ----------------------------------------------------------------------------

@pytest.fixture
def cli(tmp_path, database_url):
    """Run ``formloom`` in this process against the test database."""
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, ["--instance", str(tmp_path / "cli"), *args],
                             env={"FORMLOOM_DATABASE_URL": database_url})

    return run


def test_cli_sets_and_removes_members(cli, db, sales, admin, people):
    added = cli("member", "set", "sales", "otto", "office")
    assert added.exit_code == 0 and added.stdout == "otto is now office in app 'sales' (new member).\n"
    changed = cli("member", "set", "sales", "otto", "viewer")
    assert changed.stdout == "otto is now viewer in app 'sales' (was office).\n"
    wrong = cli("member", "set", "sales", "otto", "chief")
    assert wrong.exit_code == 1 and "Error: There is no role 'chief' in app 'sales'" in wrong.stderr
    refused = cli("member", "set", "sales", "rita", "admin", "--as", "office")
    assert refused.exit_code == 1 and "Only app admins may give the role 'admin'" in refused.stderr
    removed = cli("member", "remove", "sales", "otto")
    assert removed.exit_code == 0 and removed.stdout == "otto is no longer a member of app 'sales'.\n"
    assert (role_of(db, sales, people["otto"]), role_of(db, sales, people["rita"])) == (None, "rep")
    logged = [(e.actor_id, e.subject, e.detail) for e in entries(db, audit.AuditKind.MEMBER_CHANGED)]
    assert logged == [(admin.id, "otto", {"before": None, "after": "office"}),
                      (admin.id, "otto", {"before": "office", "after": "viewer"}),
                      (admin.id, "otto", {"before": "viewer", "after": None})]


def test_cli_sets_teams(cli, db, admin, people):
    made = cli("team", "set", "north", "--name", "North", "--manager", "mia", "--member", "rita", "--member", "rob")
    assert made.exit_code == 0 and made.stdout == "Team 'north' (North): manager mia; rita, rob.\n"
    renamed = cli("team", "set", "north", "--name", "North region", "--manager", "")
    assert renamed.stdout == "Team 'north' (North region): manager no manager; rita, rob.\n"
    nameless = cli("team", "set", "south")
    assert nameless.exit_code == 1 and "Give team 'south' a name." in nameless.stderr
    assert [e.detail["after"]["name"] for e in entries(db, audit.AuditKind.TEAM_CHANGED)] == ["North", "North region"]

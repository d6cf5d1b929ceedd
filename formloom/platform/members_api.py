"""REST API (``/api/v1``) for an app's members and roles, and for teams."""
from __future__ import annotations

from flask import Blueprint, g, jsonify

from formloom.platform import members
from formloom.platform.api_common import BadRequest, iso, json_body, require
from formloom.platform.db import get_session
from formloom.platform.members import KEEP, Keep, Membership, TeamChange, TeamView
from formloom.platform.models import Team, User
from formloom.platform.web_auth import login_required

bp = Blueprint("members_api", __name__, url_prefix="/api/v1")


def person_json(user: User) -> dict:
    return {"id": user.id, "username": user.username, "display_name": user.display_name}


def member_json(m: Membership) -> dict:
    return {"user_id": m.user.id, "username": m.user.username, "display_name": m.user.display_name,
            "role": m.role, "active": m.user.is_active, "added_at": iso(m.added_at),
            "teams": [{"id": link.team.id, "key": link.team.key, "name": link.team.name, "manages": link.manages}
                      for link in m.teams]}


def team_json(view: TeamView) -> dict:
    team = view.team
    return {"id": team.id, "key": team.key, "name": team.name,
            "manager": person_json(view.manager) if view.manager else None,
            "members": [person_json(u) for u in view.members], "created_at": iso(team.created_at)}


# --- members ---------------------------------------------------------------------------------

@bp.get("/apps/<app_key>/members")
@login_required
def members_list(app_key: str):
    db = get_session()
    app = members.managed_app(db, g.user, app_key)
    return jsonify({"items": [member_json(m) for m in members.list_members(db, g.user, app)],
                    "roles": [{"key": r.key, "label": r.label, "built_in": r.built_in}
                              for r in members.roles_offered(db, app)]})


@bp.post("/apps/<app_key>/members")
@login_required
def members_add(app_key: str):
    db = get_session()
    app = members.managed_app(db, g.user, app_key)
    body = json_body()
    username = require(body, "username", str, 'send {"username": "<an existing user>", "role": "<role key>"}')
    member = members.add_member(db, g.user, app, username, body.get("role", "rep"))
    db.commit()
    return jsonify(member_json(members.membership(db, member))), 201


@bp.patch("/apps/<app_key>/members/<int:user_id>")
@login_required
def members_patch(app_key: str, user_id: int):
    db = get_session()
    app = members.managed_app(db, g.user, app_key)
    member = members.get_member(db, g.user, app, user_id)
    role = require(json_body(), "role", str, 'send {"role": "<role key>"}')
    members.change_role(db, g.user, app, member, role)
    db.commit()
    return jsonify(member_json(members.membership(db, member)))


@bp.delete("/apps/<app_key>/members/<int:user_id>")
@login_required
def members_delete(app_key: str, user_id: int):
    db = get_session()
    app = members.managed_app(db, g.user, app_key)
    members.remove_member(db, g.user, app, members.get_member(db, g.user, app, user_id))
    db.commit()
    return "", 204


# --- teams -----------------------------------------------------------------------------------

def _usernames(body: dict) -> tuple[str, ...] | Keep:
    if "members" not in body:
        return KEEP
    names = body["members"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise BadRequest("'members' must be a list of usernames, like [\"li.wei\", \"emma\"].")
    return tuple(names)


def _change(body: dict) -> TeamChange:
    manager = body.get("manager", KEEP)
    if manager is not KEEP and manager is not None and not isinstance(manager, str):
        raise BadRequest("'manager' must be a username, or null for no manager.")
    return TeamChange(name=body.get("name", KEEP), manager=manager, members=_usernames(body))


def _team(team_id: int) -> Team:
    return members.get_team(get_session(), g.user, team_id)


@bp.get("/teams")
@login_required
def teams_list():
    return jsonify({"items": [team_json(v) for v in members.list_teams(get_session(), g.user)]})


@bp.post("/teams")
@login_required
def teams_create():
    db = get_session()
    body = json_body()
    team = members.create_team(db, g.user, body.get("key"), _change(body))
    db.commit()
    return jsonify(team_json(members.team_view(db, team))), 201


@bp.get("/teams/<int:team_id>")
@login_required
def teams_get(team_id: int):
    return jsonify(team_json(members.team_view(get_session(), _team(team_id))))


@bp.patch("/teams/<int:team_id>")
@login_required
def teams_patch(team_id: int):
    db = get_session()
    team = members.update_team(db, g.user, _team(team_id), _change(json_body()))
    db.commit()
    return jsonify(team_json(members.team_view(db, team)))


@bp.put("/teams/<int:team_id>/members")
@login_required
def teams_members_put(team_id: int):
    """The full list of the team's members: ``{"members": ["li.wei", "emma"]}``."""
    db = get_session()
    body = json_body()
    if "members" not in body:
        raise BadRequest('Send the whole list of members: {"members": ["<username>", ...]}.')
    team = members.update_team(db, g.user, _team(team_id), TeamChange(members=_usernames(body)))
    db.commit()
    return jsonify(team_json(members.team_view(db, team)))


@bp.delete("/teams/<int:team_id>")
@login_required
def teams_delete(team_id: int):
    db = get_session()
    members.delete_team(db, g.user, _team(team_id))
    db.commit()
    return "", 204

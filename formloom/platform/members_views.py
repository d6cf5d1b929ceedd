"""Pages to manage an app's members and their roles, and (for global admins) the teams."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from sqlalchemy import select

from formloom.platform import members
from formloom.platform.auth import Action, authorize, can
from formloom.platform.db import get_session
from formloom.platform.errors import FormloomError
from formloom.platform.members import KEEP, TeamChange
from formloom.platform.models import App, User
from formloom.platform.web_auth import login_required
from formloom.runtime.i18n import translate

bp = Blueprint("members", __name__, template_folder="templates")


def member_app(app_key: str) -> App:
    return members.managed_app(get_session(), g.user, app_key)


@bp.app_template_global()
def can_manage_members(app: App | None) -> bool:
    """Whether the signed-in person may open the members page of ``app``."""
    return bool(g.get("user")) and app is not None and can(get_session(), g.user, Action.MANAGE_MEMBERS, app)


def _done(message_key: str, target: str):
    """Commit this request's change, say so, and go back to the page (303: see the result)."""
    get_session().commit()
    flash(translate(message_key), "success")
    return redirect(target, 303)


def _failed(exc: FormloomError, target: str):
    get_session().rollback()
    flash(exc.message, "error")
    return redirect(target, 303)


# --- an app's members ------------------------------------------------------------------------

@bp.route("/apps/<app_key>/admin/members", methods=["GET", "POST"])
@login_required
def members_page(app_key: str):
    app = member_app(app_key)
    db = get_session()
    here = url_for("members.members_page", app_key=app.key)
    if request.method == "POST":
        try:
            members.add_member(db, g.user, app, request.form.get("username", ""), request.form.get("role", ""))
        except FormloomError as exc:
            return _failed(exc, here)
        return _done("member_added", here)
    roles = members.roles_offered(db, app)
    return render_template("members.html", app=app, members=members.list_members(db, g.user, app), roles=roles,
                           role_keys={r.key for r in roles}, admin_roles=members.admin_roles(db, app),
                           may_grant_admin=members.is_app_admin(db, g.user, app),
                           may_manage_teams=can(db, g.user, Action.MANAGE_APPS))


@bp.route("/apps/<app_key>/admin/members/<int:user_id>/role", methods=["POST"])
@login_required
def member_role(app_key: str, user_id: int):
    app = member_app(app_key)
    db = get_session()
    here = url_for("members.members_page", app_key=app.key)
    try:
        members.change_role(db, g.user, app, members.get_member(db, g.user, app, user_id),
                            request.form.get("role", ""))
    except FormloomError as exc:
        return _failed(exc, here)
    return _done("role_changed", here)


@bp.route("/apps/<app_key>/admin/members/<int:user_id>/remove", methods=["POST"])
@login_required
def member_remove(app_key: str, user_id: int):
    app = member_app(app_key)
    db = get_session()
    here = url_for("members.members_page", app_key=app.key)
    try:
        members.remove_member(db, g.user, app, members.get_member(db, g.user, app, user_id))
    except FormloomError as exc:
        return _failed(exc, here)
    return _done("member_removed", here)


# --- teams -----------------------------------------------------------------------------------

def _people(db) -> list[User]:
    return list(db.scalars(select(User).order_by(User.username)))


@bp.route("/admin/teams", methods=["GET", "POST"])
@login_required
def teams_page():
    db = get_session()
    authorize(db, g.user, Action.MANAGE_APPS)
    here = url_for("members.teams_page")
    if request.method == "POST":
        form = request.form
        try:
            members.create_team(db, g.user, form.get("key", "").strip(), TeamChange(
                name=form.get("name", ""), manager=form.get("manager") or None,
                members=tuple(name for name in form.getlist("members") if name)))
        except FormloomError as exc:
            return _failed(exc, here)
        return _done("team_created", here)
    return render_template("teams.html", teams=members.list_teams(db, g.user), people=_people(db))


@bp.route("/admin/teams/<int:team_id>", methods=["POST"])
@login_required
def team_update(team_id: int):
    db = get_session()
    here = url_for("members.teams_page")
    team = members.get_team(db, g.user, team_id)
    try:
        members.update_team(db, g.user, team, TeamChange(
            name=request.form.get("name", KEEP), manager=request.form.get("manager", KEEP) or None))
    except FormloomError as exc:
        return _failed(exc, here)
    return _done("saved", here)


@bp.route("/admin/teams/<int:team_id>/members", methods=["POST"])
@login_required
def team_member_add(team_id: int):
    db = get_session()
    here = url_for("members.teams_page")
    team = members.get_team(db, g.user, team_id)
    try:
        members.add_team_member(db, g.user, team, request.form.get("username", ""))
    except FormloomError as exc:
        return _failed(exc, here)
    return _done("saved", here)


@bp.route("/admin/teams/<int:team_id>/members/<int:user_id>/remove", methods=["POST"])
@login_required
def team_member_remove(team_id: int, user_id: int):
    db = get_session()
    here = url_for("members.teams_page")
    team = members.get_team(db, g.user, team_id)
    try:
        members.remove_team_member(db, g.user, team, user_id)
    except FormloomError as exc:
        return _failed(exc, here)
    return _done("saved", here)


@bp.route("/admin/teams/<int:team_id>/delete", methods=["POST"])
@login_required
def team_delete(team_id: int):
    db = get_session()
    team = members.get_team(db, g.user, team_id)
    members.delete_team(db, g.user, team)
    return _done("team_deleted", url_for("members.teams_page"))

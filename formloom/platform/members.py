"""Who works in an app and in which role, and the teams that decide the "team" scope.

Services for the members page, the API and the command line. Each takes the session and the
acting user, checks the actor's powers, writes an admin audit entry for every change, and leaves
the commit to the caller. Roles of one app are managed by those with ``MANAGE_MEMBERS`` there;
teams are global and managed by global admins (``MANAGE_APPS``).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from formloom.platform import audit
from formloom.platform.auth import Action, authorize, is_member
from formloom.platform.errors import Conflict, Forbidden, FormloomError, NotFound
from formloom.platform.models import App, AppMember, AppRole, Role, Team, TeamMember, User

BUILT_IN_ROLES = tuple(role.value for role in AppRole)
TEAM_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
TEAM_NAME_MAX = 200


class UnknownRole(FormloomError):
    http_status = 422
    code = "unknown_role"


class UnknownUser(FormloomError):
    http_status = 422
    code = "unknown_user"


class LastAdmin(Conflict):
    """The change would leave an app without anyone who can manage it."""

    code = "last_admin"


class InvalidTeam(FormloomError):
    http_status = 422
    code = "invalid_team"


# --- roles -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RoleChoice:
    """A role one may give in an app: its key and its label (a string, a locale map, or None)."""

    key: str
    label: str | Mapping | None
    built_in: bool


def roles_offered(session: Session, app: App) -> list[RoleChoice]:
    """The built-in roles, then the custom roles of the app's published access definition."""
    defined = {entry["key"]: entry for entry in _access_roles(session, app)}
    choices = [RoleChoice(key, (defined.get(key) or {}).get("label"), True) for key in BUILT_IN_ROLES]
    choices += [RoleChoice(key, entry.get("label"), False) for key, entry in defined.items()
                if key not in BUILT_IN_ROLES]
    return choices


def _access_roles(session: Session, app: App) -> list[Mapping]:
    # The access definition is read by the runtime; platform code asks it lazily (as auth.can does).
    from formloom.runtime import access, catalog

    row = catalog.published_version(session, app, "access", access.ACCESS_KEY)
    roles = (row.body.get("roles") if row else None) or []
    return [r for r in roles if isinstance(r, Mapping) and isinstance(r.get("key"), str)]


def check_role(session: Session, app: App, role: object) -> str:
    """``role`` if it is one of the app's roles, else an error naming the valid ones."""
    keys = [choice.key for choice in roles_offered(session, app)]
    if not isinstance(role, str) or role not in keys:
        raise UnknownRole(f"There is no role {role!r} in app '{app.key}'; choose one of {', '.join(keys)} "
                          f"(custom roles come from the app's published access definition).")
    return role


# --- members ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TeamLink:
    team: Team
    manages: bool  # the member manages this team (they may also belong to it)


@dataclass(frozen=True)
class Membership:
    """One member of an app: the person, their role there, and their teams."""

    user: User
    role: str
    added_at: datetime
    teams: tuple[TeamLink, ...]


def managed_app(session: Session, actor: User | None, app_key: str) -> App:
    """The app ``app_key`` if ``actor`` may manage its members: 404 for non-members, 403 for other members."""
    app = session.scalar(select(App).where(App.key == app_key))
    if actor is not None and (app is None or not (actor.is_admin or is_member(session, actor, app))):
        raise NotFound(f"There is no app '{app_key}'.")
    authorize(session, actor, Action.MANAGE_MEMBERS, app)
    return app


def list_members(session: Session, actor: User | None, app: App) -> list[Membership]:
    """The members of ``app`` by username, each with their role and teams."""
    authorize(session, actor, Action.MANAGE_MEMBERS, app)
    rows = session.execute(select(AppMember, User).join(User, User.id == AppMember.user_id)
                           .where(AppMember.app_id == app.id).order_by(User.username)).all()
    teams = teams_of(session, [user.id for _, user in rows])
    return [Membership(user, member.role, member.added_at, tuple(teams.get(user.id, ())))
            for member, user in rows]


def membership(session: Session, member: AppMember) -> Membership:
    """One member as :func:`list_members` describes them."""
    links = teams_of(session, [member.user_id]).get(member.user_id, ())
    return Membership(session.get(User, member.user_id), member.role, member.added_at, tuple(links))


def teams_of(session: Session, user_ids: Iterable[int]) -> dict[int, list[TeamLink]]:
    """Per user id, the teams they belong to or manage, by team name."""
    ids = list(user_ids)
    out: dict[int, dict[int, TeamLink]] = {}
    for team, user_id in session.execute(select(Team, TeamMember.user_id).join(TeamMember)
                                         .where(TeamMember.user_id.in_(ids))):
        out.setdefault(user_id, {})[team.id] = TeamLink(team, team.manager_id == user_id)
    for team in session.scalars(select(Team).where(Team.manager_id.in_(ids))):
        out.setdefault(team.manager_id, {})[team.id] = TeamLink(team, True)
    return {uid: sorted(links.values(), key=lambda link: link.team.name.lower()) for uid, links in out.items()}


def get_member(session: Session, actor: User | None, app: App, user_id: int) -> AppMember:
    """The membership of user ``user_id`` in ``app``; 404 for anyone who is not a member of it."""
    authorize(session, actor, Action.MANAGE_MEMBERS, app)
    member = session.get(AppMember, (app.id, user_id)) if 1 <= user_id <= 2**31 - 1 else None
    if member is None:
        raise NotFound(f"User #{user_id} is not a member of app '{app.key}'.")
    return member


def add_member(session: Session, actor: User | None, app: App, username: str, role: str) -> AppMember:
    """Make the existing user ``username`` a member of ``app`` in ``role``."""
    authorize(session, actor, Action.MANAGE_MEMBERS, app)
    user = find_user(session, username)
    role = check_role(session, app, role)
    existing = session.get(AppMember, (app.id, user.id))
    if existing is not None:
        raise Conflict(f"'{user.username}' is already a member of app '{app.key}' (role {existing.role}); "
                       f"change their role instead.")
    _refuse_admin_powers(session, actor, app, user, None, role)
    member = AppMember(app_id=app.id, user_id=user.id, role=role)
    session.add(member)
    _changed(session, actor, app, user, None, role)
    return member


def change_role(session: Session, actor: User | None, app: App, member: AppMember, role: str) -> AppMember:
    """Give a member another role (no change, no audit entry, when it is the role they have)."""
    authorize(session, actor, Action.MANAGE_MEMBERS, app)
    role = check_role(session, app, role)
    if member.role == role:
        return member
    user = session.get(User, member.user_id)
    _refuse_admin_powers(session, actor, app, user, member.role, role)
    _keep_someone_in_charge(session, app, member, user)
    before, member.role = member.role, role
    _changed(session, actor, app, user, before, role)
    return member


def remove_member(session: Session, actor: User | None, app: App, member: AppMember) -> None:
    """Take ``member`` out of ``app`` (their records stay; they no longer see the app)."""
    authorize(session, actor, Action.MANAGE_MEMBERS, app)
    user = session.get(User, member.user_id)
    _refuse_admin_powers(session, actor, app, user, member.role, None)
    _keep_someone_in_charge(session, app, member, user)
    before = member.role
    session.delete(member)
    _changed(session, actor, app, user, before, None)


def set_member(session: Session, actor: User | None, app: App, username: str, role: str) -> AppMember:
    """Add ``username`` to ``app`` in ``role``, or give the member that role (the CLI's ``member set``)."""
    authorize(session, actor, Action.MANAGE_MEMBERS, app)
    user = find_user(session, username)
    member = session.get(AppMember, (app.id, user.id))
    if member is None:
        return add_member(session, actor, app, username, role)
    return change_role(session, actor, app, member, role)


def is_app_admin(session: Session, user: User | None, app: App) -> bool:
    """A global admin, or a member whose role in ``app`` is ``admin``."""
    if user is None:
        return False
    if user.is_admin:
        return True
    member = session.get(AppMember, (app.id, user.id))
    return member is not None and member.role == AppRole.ADMIN.value


def _refuse_admin_powers(session: Session, actor: User | None, app: App, user: User,
                        before: str | None, after: str | None) -> None:
    """Only app admins (and global admins) give, change or take away an admin's powers.

    Those powers are the ``admin`` role and any role that may build the app: building includes
    editing the access definition, so such a role can give itself everything.
    """
    powerful = admin_roles(session, app)
    if not powerful & {before, after} or is_app_admin(session, actor, app):
        return
    if after in powerful:
        raise Forbidden(f"Only app admins may give the role '{after}' (it may administer app '{app.key}'); "
                        f"choose another role for '{user.username}' or ask an app admin.")
    raise Forbidden(f"'{user.username}' has the role '{before}', which may administer app '{app.key}'; "
                    f"only app admins may change or remove it. Ask an app admin.")


def admin_roles(session: Session, app: App) -> set[str]:
    """The roles only app admins may give: ``admin``, and roles that may build the app."""
    return {AppRole.ADMIN.value} | {r["key"] for r in _access_roles(session, app) if r.get("build")}


def _keep_someone_in_charge(session: Session, app: App, leaving: AppMember, user: User) -> None:
    """An app must keep someone who can manage it: another active app admin, or a global admin."""
    if leaving.role != AppRole.ADMIN.value:
        return
    # Lock every admin row of the app (the leaving one too): two admins demoting each other at
    # once then queue, and the second sees the first's change.
    admins = session.scalars(select(AppMember.user_id).join(User, User.id == AppMember.user_id)
                             .where(AppMember.app_id == app.id, AppMember.role == AppRole.ADMIN.value,
                                    User.is_active.is_(True))
                             .with_for_update(of=AppMember)).all()
    other_admins = set(admins) - {leaving.user_id}
    global_admins = session.scalar(select(func.count()).select_from(User).where(
        User.role == Role.ADMIN.value, User.is_active.is_(True)))
    if not other_admins and not global_admins:
        raise LastAdmin(f"'{user.username}' is the last admin of app '{app.key}', and an app must keep at "
                        f"least one person who can manage it; give another member the admin role first.")


def _changed(session: Session, actor: User | None, app: App, user: User, before: str | None,
             after: str | None) -> None:
    session.flush()
    audit.record(session, audit.AuditKind.MEMBER_CHANGED, actor, app=app, subject=user.username,
                 detail={"before": before, "after": after})
    _forget_policies(session)


def _forget_policies(session: Session) -> None:
    # Policies are remembered per session; a change of role or team must count from now on.
    from formloom.runtime import access

    access.forget(session)


def find_user(session: Session, username: object) -> User:
    """The user named ``username``, or an error saying how to create them."""
    name = username.strip() if isinstance(username, str) else ""
    if not name:
        raise UnknownUser("Give the username of an existing user.")
    user = session.scalar(select(User).where(User.username == name))
    if user is None:
        raise UnknownUser(f"There is no user '{name}'; check the spelling, or create them first "
                          f"with 'formloom user create {name}'.")
    return user


# --- teams -----------------------------------------------------------------------------------

class Keep(Enum):
    """Leave this part of a team as it is."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class TeamChange:
    """What to set on a team; ``KEEP`` leaves a part as it is. People are named by username."""

    name: str | Keep = KEEP
    manager: str | Keep | None = KEEP  # None: no manager
    members: tuple[str, ...] | Keep = KEEP  # the whole list


@dataclass(frozen=True)
class TeamView:
    team: Team
    manager: User | None
    members: tuple[User, ...]


def list_teams(session: Session, actor: User | None) -> list[TeamView]:
    """Every team by name, with its manager and members."""
    authorize(session, actor, Action.MANAGE_APPS)
    return [team_view(session, team) for team in session.scalars(select(Team).order_by(Team.name, Team.key))]


def team_view(session: Session, team: Team) -> TeamView:
    members = session.scalars(select(User).join(TeamMember, TeamMember.user_id == User.id)
                              .where(TeamMember.team_id == team.id).order_by(User.username))
    manager = session.get(User, team.manager_id) if team.manager_id else None
    return TeamView(team, manager, tuple(members))


def get_team(session: Session, actor: User | None, team_id: int) -> Team:
    authorize(session, actor, Action.MANAGE_APPS)
    team = session.get(Team, team_id) if 1 <= team_id <= 2**31 - 1 else None
    if team is None:
        raise NotFound(f"There is no team #{team_id}.")
    return team


def find_team(session: Session, actor: User | None, key: str) -> Team | None:
    authorize(session, actor, Action.MANAGE_APPS)
    return session.scalar(select(Team).where(Team.key == key))


def create_team(session: Session, actor: User | None, key: object, change: TeamChange) -> Team:
    """A new team with a stable ``key`` (lower-case letters, digits, underscores) and a name."""
    authorize(session, actor, Action.MANAGE_APPS)
    if not isinstance(key, str) or not TEAM_KEY.match(key):
        raise InvalidTeam(f"A team key is a lower-case letter followed by up to 63 lower-case letters, "
                          f"digits or underscores (like 'east_sales'); got {key!r}.")
    if session.scalar(select(Team).where(Team.key == key)) is not None:
        raise Conflict(f"A team with key '{key}' already exists; choose another key or change that team.")
    if change.name is KEEP:
        raise InvalidTeam(f"Give team '{key}' a name.")
    team = Team(key=key, name=_team_name(change.name))
    session.add(team)
    session.flush()
    _apply(session, team, change)
    _team_changed(session, actor, team, None, _snapshot(session, team))
    return team


def update_team(session: Session, actor: User | None, team: Team, change: TeamChange) -> Team:
    """Rename a team, set its manager, or replace its members (an audit entry when anything changed)."""
    authorize(session, actor, Action.MANAGE_APPS)
    before = _snapshot(session, team)
    _apply(session, team, change)
    after = _snapshot(session, team)
    if after != before:
        _team_changed(session, actor, team, before, after)
    return team


def add_team_member(session: Session, actor: User | None, team: Team, username: str) -> Team:
    authorize(session, actor, Action.MANAGE_APPS)
    present = [u.username for u in team_view(session, team).members]
    user = find_user(session, username)
    if user.username in present:
        raise Conflict(f"'{user.username}' is already in team '{team.name}'.")
    return update_team(session, actor, team, TeamChange(members=(*present, user.username)))


def remove_team_member(session: Session, actor: User | None, team: Team, user_id: int) -> Team:
    authorize(session, actor, Action.MANAGE_APPS)
    present = team_view(session, team).members
    if user_id not in {u.id for u in present}:
        raise NotFound(f"User #{user_id} is not in team '{team.name}'.")
    return update_team(session, actor, team, TeamChange(members=tuple(u.username for u in present
                                                                      if u.id != user_id)))


def delete_team(session: Session, actor: User | None, team: Team) -> None:
    """Delete a team; its members stay users and members of their apps, only the team scope changes."""
    authorize(session, actor, Action.MANAGE_APPS)
    before = _snapshot(session, team)
    session.delete(team)
    _team_changed(session, actor, team, before, None)


def _team_name(name: object) -> str:
    text = name.strip() if isinstance(name, str) else ""
    if not text or len(text) > TEAM_NAME_MAX:
        raise InvalidTeam(f"A team's name is required and at most {TEAM_NAME_MAX} characters long.")
    return text


def _apply(session: Session, team: Team, change: TeamChange) -> None:
    if change.name is not KEEP:
        team.name = _team_name(change.name)
    if change.manager is not KEEP:
        team.manager_id = find_user(session, change.manager).id if change.manager else None
    if change.members is not KEEP:
        wanted = {user.id: user for user in (find_user(session, name) for name in change.members)}
        rows = {row.user_id: row for row in session.scalars(select(TeamMember).where(TeamMember.team_id == team.id))}
        for user_id, row in rows.items():
            if user_id not in wanted:
                session.delete(row)
        session.add_all(TeamMember(team_id=team.id, user_id=uid) for uid in wanted if uid not in rows)
    session.flush()


def _snapshot(session: Session, team: Team) -> dict:
    view = team_view(session, team)
    return {"key": team.key, "name": team.name, "manager": view.manager.username if view.manager else None,
            "members": [u.username for u in view.members]}


def _team_changed(session: Session, actor: User | None, team: Team, before: dict | None,
                  after: dict | None) -> None:
    session.flush()
    audit.record(session, audit.AuditKind.TEAM_CHANGED, actor, subject=team.key,
                 detail={"before": before, "after": after})
    _forget_policies(session)

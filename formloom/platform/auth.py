"""Users, passwords, API tokens, and the one question every view asks: may this user do this?"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import Enum

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from formloom.platform.db import utcnow
from formloom.platform.errors import Conflict, Forbidden, FormloomError, Unauthorized
from formloom.platform.models import ApiToken, App, AppMember, AppRole, CauseKind, Role, Team, TeamMember, User

TOKEN_PREFIX = "flm_"


class Action(str, Enum):
    """What a user may be allowed to do. Fine-grained per-role rules build on these names."""

    VIEW_APP = "view_app"
    READ_RECORDS = "read_records"
    CREATE_RECORD = "create_record"
    UPDATE_RECORD = "update_record"
    DELETE_RECORD = "delete_record"
    EXPORT_RECORDS = "export_records"
    IMPORT_RECORDS = "import_records"
    READ_DEFINITIONS = "read_definitions"
    WRITE_DEFINITIONS = "write_definitions"
    MANAGE_MEMBERS = "manage_members"  # give people roles in one app
    MANAGE_APPS = "manage_apps"  # create and import apps, manage users and teams
    VIEW_AUDIT = "view_audit"


# What an API token may be limited to. A token without scopes may do whatever its user may;
# a token with scopes only what they name (and never more than its user). ``app:<key>`` limits
# a token to one app (several may be given).
TOKEN_SCOPES: dict[str, frozenset[Action]] = {
    "records:read": frozenset({Action.VIEW_APP, Action.READ_RECORDS}),
    "records:write": frozenset({Action.VIEW_APP, Action.CREATE_RECORD, Action.UPDATE_RECORD,
                                Action.DELETE_RECORD}),
    "records:export": frozenset({Action.VIEW_APP, Action.EXPORT_RECORDS}),
    "records:import": frozenset({Action.VIEW_APP, Action.IMPORT_RECORDS}),
    "definitions:read": frozenset({Action.VIEW_APP, Action.READ_DEFINITIONS}),
    "definitions:write": frozenset({Action.VIEW_APP, Action.READ_DEFINITIONS, Action.WRITE_DEFINITIONS}),
    "admin": frozenset({Action.MANAGE_MEMBERS, Action.MANAGE_APPS, Action.VIEW_AUDIT}),
}
APP_SCOPE_PREFIX = "app:"


def scope_problem(scope: object) -> str | None:
    """Why ``scope`` is not a valid token scope (None when it is)."""
    if isinstance(scope, str) and (scope in TOKEN_SCOPES or (scope.startswith(APP_SCOPE_PREFIX)
                                                            and len(scope) > len(APP_SCOPE_PREFIX))):
        return None
    return (f"Unknown scope {scope!r}; use any of {', '.join(TOKEN_SCOPES)}, "
            f"or '{APP_SCOPE_PREFIX}<app key>' to limit the token to one app.")


# Actions a member holds in the apps they belong to; admins hold every action everywhere.
# Which entities, records and fields is the app's access policy (runtime/access.py).
MEMBER_ACTIONS = frozenset({
    Action.VIEW_APP, Action.READ_RECORDS, Action.CREATE_RECORD, Action.UPDATE_RECORD,
    Action.DELETE_RECORD, Action.EXPORT_RECORDS, Action.IMPORT_RECORDS, Action.READ_DEFINITIONS,
})


@dataclass(frozen=True)
class Cause:
    """Who or what made a change, as written to the change log."""

    kind: CauseKind
    user_id: int | None
    ref: str | None = None

    @classmethod
    def for_user(cls, user: User) -> Cause:
        return cls(CauseKind.USER, user.id)

    @classmethod
    def for_token(cls, token: ApiToken) -> Cause:
        return cls(CauseKind.API_TOKEN, token.user_id, f"token:{token.id}")

    @classmethod
    def for_cli(cls, user: User | None, command: str) -> Cause:
        return cls(CauseKind.CLI, user.id if user else None, command)


def is_member(session: Session, user: User, app: App) -> bool:
    return session.get(AppMember, (app.id, user.id)) is not None


def token_actions(user: User) -> frozenset[Action]:
    """What the scopes of the token ``user`` came with allow (every action without a token)."""
    scopes = getattr(user, "token_scopes", None)
    if scopes is None:
        return frozenset(Action)
    return frozenset().union(*(TOKEN_SCOPES.get(s, frozenset()) for s in scopes))


def _token_apps(user: User) -> frozenset[str] | None:
    scopes = getattr(user, "token_scopes", None) or ()
    apps = frozenset(s[len(APP_SCOPE_PREFIX):] for s in scopes if s.startswith(APP_SCOPE_PREFIX))
    return apps or None


def can(session: Session, user: User | None, action: Action, app: App | None = None) -> bool:
    """Return whether ``user`` may do ``action`` (in ``app``, when the action is per app).

    Per-entity powers, record scopes and field rules are the app's access policy
    (:mod:`formloom.runtime.access`); this answers for the app as a whole.
    """
    if user is None or not user.is_active or action not in token_actions(user):
        return False
    token_apps = _token_apps(user)
    if token_apps is not None and (app is None or app.key not in token_apps):
        return False
    if user.is_admin:
        return True
    if app is None or not is_member(session, user, app):
        return False
    if action in (Action.WRITE_DEFINITIONS, Action.MANAGE_MEMBERS):
        from formloom.runtime.access import policy

        rules = policy(session, user, app)
        return rules.may_build if action is Action.WRITE_DEFINITIONS else rules.may_manage_members
    return action in MEMBER_ACTIONS


def authorize(session: Session, user: User | None, action: Action, app: App | None = None) -> None:
    """Raise :class:`Forbidden` unless :func:`can` allows the action."""
    if user is None:
        raise Unauthorized("Please log in first.")
    if not can(session, user, action, app):
        where = f" in app '{app.key}'" if app is not None else ""
        raise Forbidden(f"You do not have permission to {action.value.replace('_', ' ')}{where}.")


def visible_apps(session: Session, user: User) -> list[App]:
    query = select(App).order_by(App.key)
    if not user.is_admin:
        query = query.join(AppMember, AppMember.app_id == App.id).where(AppMember.user_id == user.id)
    token_apps = _token_apps(user)
    if token_apps is not None:
        query = query.where(App.key.in_(sorted(token_apps)))
    return list(session.scalars(query))


# --- users -----------------------------------------------------------------------------------

def create_user(session: Session, username: str, password: str, *, admin: bool = False,
                display_name: str | None = None, email: str | None = None) -> User:
    username = username.strip()
    if not username:
        raise FormloomError("A username is required.")
    if len(password) < 8:
        raise FormloomError("The password must be at least 8 characters long.")
    if session.scalar(select(User).where(User.username == username)) is not None:
        raise Conflict(f"A user named '{username}' already exists; choose another username.")
    user = User(username=username, display_name=display_name or username, email=email,
                password_hash=generate_password_hash(password),
                role=(Role.ADMIN if admin else Role.MEMBER).value)
    session.add(user)
    session.flush()
    return user


def set_password(user: User, password: str) -> None:
    if len(password) < 8:
        raise FormloomError("The password must be at least 8 characters long.")
    user.password_hash = generate_password_hash(password)


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None or not user.is_active or not check_password_hash(user.password_hash, password):
        return None
    return user


def grant_app(session: Session, user: User, app: App, role: str | None = None) -> None:
    """Give ``user`` access to ``app`` (as a rep unless ``role`` says otherwise; sets the role if given)."""
    member = session.get(AppMember, (app.id, user.id))
    if member is None:
        session.add(AppMember(app_id=app.id, user_id=user.id, role=role or AppRole.REP.value))
    elif role is not None:
        member.role = role
    session.flush()


def add_team(session: Session, key: str, name: str, manager: User | None, members: list[User]) -> Team:
    """Create a team (or update the one with ``key``): its manager and its members."""
    team = session.scalar(select(Team).where(Team.key == key))
    if team is None:
        team = Team(key=key, name=name)
        session.add(team)
    team.name, team.manager_id = name, manager.id if manager else None
    session.flush()
    present = set(session.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team.id)))
    session.add_all(TeamMember(team_id=team.id, user_id=u.id) for u in members if u.id not in present)
    session.flush()
    return team


# --- API tokens ------------------------------------------------------------------------------

def _hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(session: Session, user: User, name: str, scopes: list[str] | None = None) -> tuple[ApiToken, str]:
    """Create a token; the secret is returned once and only its hash is stored.

    ``scopes`` limit what the token may do (see :data:`TOKEN_SCOPES`); None: whatever its user may.
    """
    problems = [problem for scope in scopes or () if (problem := scope_problem(scope))]
    if problems:
        raise FormloomError(problems[0])
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, prefix=secret[:12], token_hash=_hash_token(secret),
                     scopes=list(scopes) if scopes is not None else None)
    session.add(token)
    session.flush()
    return token, secret


def token_from_secret(session: Session, secret: str) -> ApiToken | None:
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash_token(secret)))
    if token is None or token.revoked_at is not None or not token.user.is_active:
        return None
    return token


TOKEN_TOUCH_SECONDS = 60


def touch_token(token: ApiToken) -> bool:
    """Note when the token was last used, at most once a minute: a write on every request would make
    every API read wait for the database's write lock (on SQLite, behind a long import)."""
    now = utcnow()
    last = token.last_used_at
    if last is not None and last.tzinfo is None:
        last = last.replace(tzinfo=now.tzinfo)
    if last is not None and (now - last).total_seconds() < TOKEN_TOUCH_SECONDS:
        return False
    token.last_used_at = now
    return True

"""A user's own API tokens: list them, create one (its secret shown once), revoke one.

Every creation and revocation goes to the admin audit. A request made with a limited token can
only create tokens limited at least as much (a token must never mint a stronger one).
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from formloom.platform import audit, auth
from formloom.platform.audit import AuditKind
from formloom.platform.db import utcnow
from formloom.platform.errors import FormloomError, NotFound
from formloom.platform.models import ApiToken, User

NAME_MAX = 200


class TokenRequestError(FormloomError):
    """What was asked for a new token is wrong; carries every problem, keyed by field."""

    http_status = 422
    code = "validation_failed"

    def __init__(self, fields: dict[str, list[str]]):
        self.fields = fields
        count = sum(len(v) for v in fields.values())
        super().__init__(f"The token was not created: please correct {count} "
                         f"problem{'s' if count != 1 else ''}.")

    def field_messages(self) -> dict[str, list[str]]:
        return self.fields


def of_user(session: Session, user: User) -> list[ApiToken]:
    """The user's tokens, newest first, revoked ones included."""
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                .order_by(ApiToken.id.desc())))


def issue(session: Session, actor: User | None, owner: User, name: object, scopes: object, *, via: str,
          granted: list[str] | None = None) -> tuple[ApiToken, str]:
    """Create a token for ``owner`` after checking the request; ``granted``: the asking token's scopes."""
    name, scopes = check_request(session, owner, name, scopes, granted)
    token, secret = auth.create_token(session, owner, name, scopes)
    audit.record(session, AuditKind.TOKEN_CREATED, actor, subject=name, detail=_detail(token, owner, via))
    return token, secret


def revoke(session: Session, actor: User | None, owner: User, token_id: int, *, via: str) -> ApiToken:
    """Revoke one of ``owner``'s tokens (revoking a revoked one changes nothing)."""
    token = session.get(ApiToken, token_id) if 1 <= token_id <= 2**31 - 1 else None
    if token is None or token.user_id != owner.id:  # someone else's token is as good as missing
        raise NotFound(f"You have no API token #{token_id}.")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        audit.record(session, AuditKind.TOKEN_REVOKED, actor, subject=token.name,
                     detail=_detail(token, owner, via))
    return token


def as_json(token: ApiToken) -> dict:
    from formloom.platform.api_common import iso

    return {"id": token.id, "name": token.name, "prefix": token.prefix, "scopes": token.scopes,
            "created_at": iso(token.created_at), "last_used_at": iso(token.last_used_at),
            "revoked_at": iso(token.revoked_at)}


def _detail(token: ApiToken, owner: User, via: str) -> dict:
    return {"token_id": token.id, "prefix": token.prefix, "owner": owner.username, "scopes": token.scopes,
            "via": via}


# --- checking a request ------------------------------------------------------------------------

def check_request(session: Session, owner: User, name: object, scopes: object,
                  granted: list[str] | None) -> tuple[str, list[str] | None]:
    """The cleaned name and scopes, or :class:`TokenRequestError` with every problem found."""
    problems: dict[str, list[str]] = {}
    if not isinstance(name, str) or not name.strip():
        problems["name"] = ["'name' is required: say what the token is for, e.g. \"CI export\"."]
    elif len(name.strip()) > NAME_MAX:
        problems["name"] = [f"'name' must be at most {NAME_MAX} characters long."]
    if scopes is not None:
        problems.update(_scope_problems(session, owner, scopes))
    if not problems and granted is not None and not _within(scopes, granted):
        problems["scopes"] = [f"This request was made with a token limited to {', '.join(granted)}; it can "
                              "only create tokens limited to the same scopes or fewer (list them in 'scopes')."]
    if problems:
        raise TokenRequestError(problems)
    return name.strip(), list(dict.fromkeys(scopes)) if scopes is not None else None


def _scope_problems(session: Session, owner: User, scopes: object) -> dict[str, list[str]]:
    if not isinstance(scopes, list) or not scopes:
        return {"scopes": ["'scopes' must be a non-empty list of scope names, or left out for a token that may "
                           f"do whatever you may; scope names: {', '.join(auth.TOKEN_SCOPES)}, "
                           f"'{auth.APP_SCOPE_PREFIX}<app key>'."]}
    apps = None
    problems: dict[str, list[str]] = {}
    for index, scope in enumerate(scopes):
        problem = auth.scope_problem(scope)
        if problem is None and scope == "admin" and not owner.is_admin:
            problem = f"Scope 'admin' is for admins; '{owner.username}' is not one."
        if problem is None and scope.startswith(auth.APP_SCOPE_PREFIX):
            apps = apps if apps is not None else {a.key for a in auth.visible_apps(session, owner)}
            if scope[len(auth.APP_SCOPE_PREFIX):] not in apps:
                problem = f"Scope {scope!r} names no app that '{owner.username}' can open."
        if problem is not None:
            problems[f"scopes[{index}]"] = [problem]
    return problems


def _within(scopes: list[str] | None, granted: list[str]) -> bool:
    """Whether ``scopes`` allow no more than ``granted`` (both as actions and as apps)."""
    if scopes is None:
        return False

    def split(items: list[str]) -> tuple[set[str], set[str]]:
        apps = {s for s in items if s.startswith(auth.APP_SCOPE_PREFIX)}
        return set(items) - apps, apps

    actions, apps = split(scopes)
    granted_actions, granted_apps = split(granted)
    # An empty part means "not limited" in that respect.
    return bool((not granted_actions or (actions and actions <= granted_actions))
                and (not granted_apps or (apps and apps <= granted_apps)))

"""Who is asking: the logged-in user (cookie session) or an API token (Bearer)."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlparse

from flask import Blueprint, Flask, current_app, flash, g, redirect, render_template, request, session, url_for

from formloom.platform import audit, auth, throttle
from formloom.platform.audit import AuditKind
from formloom.platform.db import get_session
from formloom.platform.errors import Unauthorized
from formloom.platform.models import User
from formloom.runtime.i18n import translate

bp = Blueprint("auth", __name__)


def init_app(app: Flask) -> None:
    throttle.init_app(app)
    app.before_request(load_identity)
    app.register_blueprint(bp)


def load_identity() -> None:
    """Set ``g.user`` and ``g.cause`` from a Bearer token or the session cookie."""
    g.user, g.cause, g.token = None, None, None
    header = request.headers.get("Authorization", "")
    db = get_session()
    if header.startswith("Bearer "):
        token = auth.token_from_secret(db, header[7:].strip())
        if token is not None:
            if auth.touch_token(token):
                db.commit()
            g.user, g.token, g.cause = token.user, token, auth.Cause.for_token(token)
            g.user.token_scopes = frozenset(token.scopes) if token.scopes is not None else None
        return
    user_id = session.get("user_id")
    if user_id is not None:
        user = db.get(User, user_id)
        if user is not None and user.is_active:
            g.user, g.cause = user, auth.Cause.for_user(user)
        else:
            session.clear()


def login_required(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(*args, **kwargs):
        if g.user is None:
            if request.path.startswith("/api/"):
                raise Unauthorized("Authentication required: send 'Authorization: Bearer <token>' "
                                   "(create one with 'formloom token create').")
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("runtime.home")
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/"):
        return url_for("runtime.home")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        return _try_login(request.form.get("username", "").strip(), request.form.get("password", ""))
    return render_template("login.html", username="")


def _try_login(username: str, password: str):
    """Check the password unless too many logins failed; every outcome goes to the audit."""
    db, guard, address = get_session(), throttle.throttle_of(current_app), audit.client_ip()
    lock = guard.check(username, address)
    if lock is not None:
        audit.record(db, AuditKind.LOGIN_THROTTLED, None, subject=username,
                     detail={"lock": lock.scope.value, "retry_after": lock.seconds})
        db.commit()
        return _locked_out(username, lock)
    user = auth.authenticate(db, username, password)
    if user is None:
        lock = guard.failed(username, address)
        audit.record(db, AuditKind.LOGIN_FAILED, None, subject=username,
                     detail={"locked": lock.scope.value} if lock else None)
        db.commit()
        if lock is not None:
            return _locked_out(username, lock)
        flash(translate("wrong_login"), "error")
        return render_template("login.html", username=username), 401
    guard.succeeded(username, address)
    audit.record(db, AuditKind.LOGIN, user, subject=user.username)
    db.commit()
    session.clear()
    session.permanent = True  # the cookie lasts PERMANENT_SESSION_LIFETIME, renewed by each request
    session["user_id"] = user.id
    return redirect(_safe_next(request.args.get("next")))


def _locked_out(username: str, lock: throttle.Lock):
    """429 with the login page saying how long to wait."""
    minutes = translate("minute_one" if lock.minutes == 1 else "minute_other").format(n=lock.minutes)
    key = "login_locked_account" if lock.scope is throttle.LockScope.ACCOUNT else "login_locked_address"
    flash(translate(key).format(minutes=minutes), "error")
    response = current_app.make_response((render_template("login.html", username=username), 429))
    response.headers["Retry-After"] = str(lock.seconds)
    return response


@bp.route("/logout", methods=["POST"])
def logout():
    if g.user is not None:
        db = get_session()
        audit.record(db, AuditKind.LOGOUT, g.user, subject=g.user.username)
        db.commit()
    session.clear()
    return redirect(url_for("auth.login"))

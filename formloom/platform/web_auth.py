"""Who is asking: the logged-in user (cookie session) or an API token (Bearer)."""
from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from urllib.parse import urlparse

from flask import Blueprint, Flask, flash, g, redirect, render_template, request, session, url_for

from formloom.platform import auth
from formloom.platform.db import get_session
from formloom.platform.errors import Unauthorized
from formloom.platform.models import User

bp = Blueprint("auth", __name__)


def init_app(app: Flask) -> None:
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
            auth.touch_token(token)
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
        user = auth.authenticate(get_session(), request.form.get("username", ""),
                                 request.form.get("password", ""))
        if user is not None:
            session.clear()
            session["user_id"] = user.id
            return redirect(_safe_next(request.args.get("next")))
        flash("Wrong username or password.", "error")
    return render_template("login.html", username=request.form.get("username", "")), \
        401 if request.method == "POST" else 200


@bp.route("/logout", methods=["POST"])
def logout():
    session.clear()
    return redirect(url_for("auth.login"))

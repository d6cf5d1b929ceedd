"""The user's own account: API tokens, as a page (``/account/tokens``) and in the API (``/api/v1/tokens``)."""
from __future__ import annotations

from flask import Blueprint, flash, g, jsonify, redirect, render_template, request, url_for

from formloom.platform import auth, tokens
from formloom.platform.api_common import json_body
from formloom.platform.db import get_session
from formloom.platform.web_auth import login_required
from formloom.runtime.i18n import translate

bp = Blueprint("account", __name__, url_prefix="/account")
api = Blueprint("account_api", __name__, url_prefix="/api/v1")


# --- the page --------------------------------------------------------------------------------

def _page(status: int = 200, **extra):
    db = get_session()
    response = render_template("account_tokens.html", tokens=tokens.of_user(db, g.user),
                               scope_names=list(auth.TOKEN_SCOPES), apps=auth.visible_apps(db, g.user),
                               app_prefix=auth.APP_SCOPE_PREFIX, **extra)
    return response, status


@bp.route("/tokens", methods=["GET", "POST"])
@login_required
def tokens_page():
    if request.method == "GET":
        return _page()
    db = get_session()
    scopes = request.form.getlist("scope") + [auth.APP_SCOPE_PREFIX + key for key in request.form.getlist("app")]
    try:
        token, secret = tokens.issue(db, g.user, g.user, request.form.get("name", ""), scopes or None, via="web")
    except tokens.TokenRequestError as exc:
        db.rollback()
        return _page(422, problems=exc.field_messages(), form=request.form)
    db.commit()
    body, status = _page(201, created=token, secret=secret)
    # The secret is in this answer only: no cache, no flash message (the session cookie is not secret).
    return body, status, {"Cache-Control": "no-store"}


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke_page(token_id: int):
    db = get_session()
    token = tokens.revoke(db, g.user, g.user, token_id, via="web")
    db.commit()
    flash(translate("token_revoked").format(name=token.name), "success")
    return redirect(url_for("account.tokens_page"))


# --- the API ---------------------------------------------------------------------------------

def _granted() -> list[str] | None:
    """The scopes of the token this request was made with (None: a session, or an unlimited token)."""
    return g.token.scopes if g.token is not None else None


@api.get("/tokens")
@login_required
def list_tokens():
    return jsonify({"tokens": [tokens.as_json(t) for t in tokens.of_user(get_session(), g.user)]})


@api.post("/tokens")
@login_required
def create_token():
    body = json_body()
    db = get_session()
    token, secret = tokens.issue(db, g.user, g.user, body.get("name"), body.get("scopes"), via="api",
                                 granted=_granted())
    db.commit()
    return jsonify({**tokens.as_json(token), "token": secret}), 201, {"Cache-Control": "no-store"}


@api.delete("/tokens/<int:token_id>")
@login_required
def revoke_token(token_id: int):
    db = get_session()
    token = tokens.revoke(db, g.user, g.user, token_id, via="api")
    db.commit()
    return jsonify(tokens.as_json(token))

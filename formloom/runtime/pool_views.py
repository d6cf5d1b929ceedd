"""The public pool's pages: the pool of an entity with a Claim button, and Return on a record page."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from formloom.platform.auth import Action
from formloom.platform.db import get_session
from formloom.platform.errors import Conflict, FormloomError
from formloom.platform.web_auth import login_required
from formloom.runtime import catalog, pool, records
from formloom.runtime.i18n import translate
from formloom.runtime.views import _app, _nav, display_context, rules_of

bp = Blueprint("pool", __name__)


@bp.route("/apps/<app_key>/pool/<entity_key>/")
@login_required
def pool_page(app_key: str, entity_key: str):
    app = _app(app_key, Action.READ_RECORDS)
    db = get_session()
    rules = rules_of(app)
    found = pool.in_pool(db, g.user, app, entity_key)
    entity = rules.visible_entity(catalog.entity(db, app, entity_key))
    settings = pool.pool_of(entity)
    columns = [f for f in entity.fields if f.key != settings["field"]
               and f.type.name not in ("textarea", "multiselect", "table", "file", "signature")][:5]
    ctx = display_context(entity, [r.data for r in found], rules=rules)
    return render_template("pool.html", app=app, entity=entity, records=found, columns=columns, ctx=ctx,
                           nav=_nav(app))


@bp.route("/apps/<app_key>/<entity_key>/<int:record_id>/claim", methods=["POST"])
@login_required
def claim(app_key: str, entity_key: str, record_id: int):
    app = _app(app_key, Action.UPDATE_RECORD)
    db = get_session()
    try:
        record = pool.record_to_claim(db, g.user, app, entity_key, record_id)
        pool.claim(db, g.user, g.cause, app, record)
        db.commit()
    except Conflict as exc:  # someone was faster, or the limit: say so on the pool page
        db.rollback()
        flash(exc.message, "error")
        return redirect(url_for("pool.pool_page", app_key=app_key, entity_key=entity_key))
    flash(translate("pool_claimed"), "success")
    return redirect(url_for("runtime.record_page", app_key=app_key, entity_key=entity_key, record_id=record_id))


@bp.route("/apps/<app_key>/<entity_key>/<int:record_id>/return", methods=["POST"])
@login_required
def give_back(app_key: str, entity_key: str, record_id: int):
    app = _app(app_key, Action.UPDATE_RECORD)
    db = get_session()
    record = records.get(db, g.user, app, entity_key, record_id)
    try:
        pool.give_back(db, g.user, g.cause, app, record, request.form.get("reason", ""))
        db.commit()
        flash(translate("pool_returned"), "success")
    except FormloomError as exc:
        db.rollback()
        flash(exc.message, "error")
    return redirect(url_for("runtime.record_page", app_key=app_key, entity_key=entity_key, record_id=record_id))

"""Pages to install a bundled template as a new app and to upgrade an app to a newer version of it."""
from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for

from formloom.platform.auth import Action, authorize, can
from formloom.platform.db import get_session
from formloom.platform.errors import DefinitionError, FormloomError
from formloom.platform.models import App
from formloom.platform.web_auth import login_required
from formloom.runtime import catalog
from formloom.runtime.i18n import current_locale, translate
from formloom.runtime.labels import text_of
from formloom.templates_library import install, list_templates, upgrade

bp = Blueprint("templates_library", __name__, template_folder="templates")


@bp.route("/apps/new/template", methods=["GET", "POST"])
@login_required
def template_install():
    """The bundled templates; installing one makes a new app under the key the admin picks."""
    db = get_session()
    authorize(db, g.user, Action.MANAGE_APPS)
    chosen, key, errors = request.form.get("template", ""), request.form.get("key", "").strip(), {}
    if request.method == "POST":
        try:
            app = install(db, g.user, chosen, app_key=key or None)
            db.commit()
            flash(translate("template_installed").format(app=text_of(app.label, current_locale()), key=app.key),
                  "success")
            return redirect(url_for("builder.admin", app_key=app.key))
        except DefinitionError as exc:
            db.rollback()
            errors["key"] = "; ".join(p.message for p in exc.problems) or exc.message
        except FormloomError as exc:
            db.rollback()
            errors["key" if "key" in exc.message else "template"] = exc.message
    return (render_template("template_install.html", templates=list_templates(), chosen=chosen, key=key,
                            errors=errors), 422 if errors else 200)


def _upgradable_app(app_key: str) -> App:
    db = get_session()
    app = catalog.get_app(db, app_key)
    authorize(db, g.user, Action.MANAGE_APPS)
    return app


@bp.route("/apps/<app_key>/admin/upgrade", methods=["GET", "POST"])
@login_required
def template_upgrade(app_key: str):
    """GET: what upgrading to the bundled version of the app's template will change. POST: do it."""
    db = get_session()
    app = _upgradable_app(app_key)
    if request.method == "POST":
        try:
            report = upgrade.upgrade(db, g.user, app)
            db.commit()
        except FormloomError as exc:
            db.rollback()
            flash(exc.message, "error")
            return redirect(url_for("builder.admin", app_key=app.key))
        flash(translate("upgrade_done").format(version=report.to_version), "success")
        return render_template("template_upgrade.html", app=app, report=report, done=True)
    try:
        report = upgrade.plan(db, app)
    except FormloomError as exc:
        flash(exc.message, "error")
        return redirect(url_for("builder.admin", app_key=app.key))
    return render_template("template_upgrade.html", app=app, report=report, done=False,
                           available=upgrade.available(db, app))


@bp.app_template_global()
def template_upgrade_available(app: App | None) -> tuple[str, str] | None:
    """``(installed, bundled)`` versions when the signed-in admin may upgrade ``app``'s template."""
    if not g.get("user") or app is None or not can(get_session(), g.user, Action.MANAGE_APPS):
        return None
    return upgrade.available(get_session(), app)

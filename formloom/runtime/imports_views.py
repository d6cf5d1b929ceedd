"""The Import pages: upload → mapping → dry-run report → commit → progress → result, and the history."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from formloom.platform.auth import Action
from formloom.platform.db import get_session
from formloom.platform.errors import FormloomError
from formloom.platform.models import App, ImportBatch, User
from formloom.platform.web_auth import login_required
from formloom.runtime import access, catalog, imports
from formloom.runtime.i18n import current_locale, translate
from formloom.runtime.imports_api import launch

bp = Blueprint("imports", __name__)
REPORT_ROWS = 500  # rows of the report table shown on the page (the API gives them all)


def _app(app_key: str) -> App:
    return catalog.authorized_app(get_session(), g.user, app_key, Action.IMPORT_RECORDS)


def _batch_url(batch: ImportBatch) -> str:
    app = get_session().get(App, batch.app_id)
    return url_for("imports.batch_page", app_key=app.key, batch_id=batch.id)


@bp.route("/apps/<app_key>/<entity_key>/import", methods=["GET", "POST"])
@login_required
def upload_page(app_key: str, entity_key: str):
    """Step 1: choose a file."""
    db = get_session()
    app = _app(app_key)
    entity = catalog.entity(db, app, entity_key)
    access.policy(db, g.user, app).require(entity.key, access.RecordAction.IMPORT)
    if request.method == "POST":
        upload = request.files.get("file")
        try:
            if upload is None or not upload.filename:
                raise FormloomError(translate("import_choose_file"))
            table = imports.read_table(upload.read(), upload.filename)
            batch = imports.start(db, g.user, app, entity.key, table, imports.ImportOptions(locale=current_locale()),
                                  file_name=upload.filename, dry_run=True,
                                  max_rows=int(current_app.config.get("IMPORT_MAX_ROWS", 200_000)))
            db.commit()
            return redirect(url_for("imports.mapping_page", app_key=app.key, batch_id=batch.id))
        except FormloomError as exc:
            db.rollback()
            flash(exc.message, "error")
    return render_template("import_upload.html", app=app, entity=entity)


@bp.route("/apps/<app_key>/imports/<int:batch_id>/mapping", methods=["GET", "POST"])
@login_required
def mapping_page(app_key: str, batch_id: int):
    """Step 2: a field per column, the match key, automations; then the dry run."""
    db = get_session()
    app = _app(app_key)
    batch = imports.get_batch(db, g.user, app, batch_id)
    entity = catalog.entity(db, app, batch.entity_key)
    rules = access.policy(db, g.user, app)
    if request.method == "POST":
        header = batch.options["header"]
        mapping = {column: request.form.get(f"column-{index}", "") for index, column in enumerate(header)}
        options = imports.ImportOptions(mapping, request.form.get("match") or None,
                                        request.form.get("automation") == "on",
                                        request.form.get("all_or_nothing") == "on", current_locale())
        try:
            imports.configure(db, g.user, batch, options)
            launch(db, batch)
            return redirect(_batch_url(batch))
        except FormloomError as exc:
            db.rollback()
            flash(exc.message, "error")
            batch = imports.get_batch(db, g.user, app, batch_id)
    fields = imports.importable_fields(entity, rules.hidden(entity.key))
    samples = [row["values"] for row in (batch.rows or [])[:3]]
    return render_template("import_mapping.html", app=app, entity=entity, batch=batch, fields=fields,
                           samples=samples, match_fields=[s for s in fields if s.type.name in imports.MATCH_TYPES])


@bp.get("/apps/<app_key>/imports/<int:batch_id>")
@login_required
def batch_page(app_key: str, batch_id: int):
    """Step 3 and after: the report of a dry run or an import, its progress while it runs."""
    db = get_session()
    app = _app(app_key)
    batch = imports.get_batch(db, g.user, app, batch_id)
    entity = catalog.entity(db, app, batch.entity_key)
    only_errors = request.args.get("only") == "errors"
    results = [r for r in batch.results or [] if not only_errors or r["action"] == "error"]
    labels = {s.key: s.definition["label"] for s in entity.fields}
    user = db.get(User, batch.user_id) if batch.user_id else None
    return render_template("import_batch.html", app=app, entity=entity, batch=batch, results=results[:REPORT_ROWS],
                           hidden_rows=max(len(results) - REPORT_ROWS, 0), only_errors=only_errors,
                           labels=labels, user=user, running=batch.finished_at is None)


@bp.post("/apps/<app_key>/imports/<int:batch_id>/commit")
@login_required
def commit(app_key: str, batch_id: int):
    db = get_session()
    app = _app(app_key)
    try:
        batch = imports.commit_checked(db, g.user, imports.get_batch(db, g.user, app, batch_id))
        launch(db, batch)
        return redirect(_batch_url(batch))
    except FormloomError as exc:
        db.rollback()
        flash(exc.message, "error")
        return redirect(url_for("imports.batch_page", app_key=app.key, batch_id=batch_id))


@bp.post("/apps/<app_key>/imports/<int:batch_id>/rollback")
@login_required
def rollback(app_key: str, batch_id: int):
    db = get_session()
    app = _app(app_key)
    try:
        counts = imports.rollback(db, g.user, imports.get_batch(db, g.user, app, batch_id),
                                  force=request.form.get("force") == "on")
        db.commit()
        flash(translate("import_rolled_back").format(**counts), "success")
    except FormloomError as exc:
        db.rollback()
        flash(exc.message, "error")
    return redirect(url_for("imports.batch_page", app_key=app.key, batch_id=batch_id))


@bp.get("/apps/<app_key>/imports")
@login_required
def history_page(app_key: str):
    db = get_session()
    app = _app(app_key)
    found = imports.batches(db, g.user, app)
    users = {u.id: u for u in db.query(User).filter(User.id.in_({b.user_id for b in found if b.user_id}))}
    entities = {key: catalog.entity(db, app, key) for key in {b.entity_key for b in found}}
    return render_template("import_history.html", app=app, batches=found, users=users, entities=entities)

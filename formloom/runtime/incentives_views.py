"""The incentives page (leaderboard and statement), its CSV export and the API under ``/api/v1``."""
from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, render_template, request

from formloom.platform.api_common import BadRequest
from formloom.platform.db import get_session, utcnow
from formloom.platform.models import App
from formloom.platform.web_auth import login_required
from formloom.runtime import access, catalog, incentives
from formloom.runtime.exports import csv_chunks
from formloom.runtime.fields import ID_LIMIT
from formloom.runtime.i18n import translate

bp = Blueprint("incentives", __name__, template_folder="templates")
api = Blueprint("incentives_api", __name__, url_prefix="/api/v1")


def _context(app_key: str) -> tuple:
    """The app (the person must work in it), the plan and the period asked for."""
    db = get_session()
    app = catalog.get_app(db, app_key)
    access.require_member(db, g.user, app)
    body = incentives.plan(db, app, request.args.get("plan") or None)
    return db, app, body, incentives.parse_period(request.args.get("period"), utcnow().date())


def _person() -> int:
    raw = request.args.get("user", "")
    if raw == "":
        return g.user.id
    if not raw.isdigit() or not 1 <= int(raw) <= ID_LIMIT:
        raise BadRequest(f"Parameter 'user' must be a user id (a whole number from 1 to {ID_LIMIT}), got '{raw}'.")
    return int(raw)


@bp.route("/apps/<app_key>/incentives")
@login_required
def page(app_key: str):
    """The leaderboard of the period and a statement (one's own unless another person is chosen)."""
    db, app, body, period = _context(app_key)
    board = incentives.leaderboard(db, g.user, app, body, period)
    person = _person()
    statement = incentives.statement(db, g.user, app, body, period, person)
    entity = catalog.entity(db, app, body["entity"])
    people = [row for row in board["rows"] if incentives.may_see_statement(db, g.user, app, row["user"])]
    return render_template("incentives.html", app=app, plan=body, plans=incentives.plans(db, app), board=board,
                           statement=statement, people=people, period=period,
                           periods=incentives.recent_periods(utcnow().date()),
                           relation_labels={s.key: s.definition["label"] for s in entity.fields
                                            if s.key in statement["relations"]},
                           nav=_nav(db, app))


def _nav(db, app: App) -> list:
    rules = access.policy(db, g.user, app)
    return [(key, catalog.entity(db, app, key).body["label"])
            for key in rules.readable_entities(catalog.entity_keys(db, app))]


@bp.route("/apps/<app_key>/incentives/statement.csv")
@login_required
def statement_csv(app_key: str):
    db, app, body, period = _context(app_key)
    statement = incentives.statement(db, g.user, app, body, period, _person())
    return Response(csv_chunks(*_table(statement)), mimetype="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="{app.key}-{body["key"]}-{statement["user"]}-'
                               f'{period.code}.csv"'})


def _table(statement: dict) -> tuple[list[str], list[list[list]]]:
    """The statement as CSV: a heading and one batch of lines, then the totals line."""
    heading = [translate("date"), translate("incentive_line"), *statement["relations"], translate("amount"),
               translate("rate_percent"), translate("commission")]
    lines = [[line["date"], line["title"], *[line[key] for key in statement["relations"]], line["amount"],
              line["rate"], line["commission"]] for line in statement["lines"]]
    totals = statement["totals"]
    lines.append([translate("total"), "", *["" for _ in statement["relations"]], totals["amount"], "",
                  totals["commission"]])
    return heading, [lines]


@api.get("/apps/<app_key>/incentives")
@login_required
def leaderboard_api(app_key: str):
    """The leaderboard of a period: ``?period=2026-11|2026-Q4|2026&plan=KEY``."""
    db, app, body, period = _context(app_key)
    return jsonify(incentives.leaderboard(db, g.user, app, body, period))


@api.get("/apps/<app_key>/incentives/statement")
@login_required
def statement_api(app_key: str):
    """One person's statement: ``?user=ID`` (default: the caller), ``period`` and ``plan`` as above."""
    db, app, body, period = _context(app_key)
    return jsonify(incentives.statement(db, g.user, app, body, period, _person()))


@bp.app_template_global()
def incentives_link(app: App | None) -> bool:
    """Whether the app's navigation shows "Incentives": it has a plan and the person works in it."""
    if app is None or not g.get("user"):
        return False
    return bool(incentives.plans(get_session(), app))

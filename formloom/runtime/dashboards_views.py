"""Dashboard pages, their drill-down lists and CSV files, and the dashboards API."""
from __future__ import annotations

import csv
import io
from collections.abc import Mapping

from flask import Blueprint, Response, g, jsonify, render_template, request, url_for
from sqlalchemy import select

from formloom.platform.api_common import iso
from formloom.platform.db import get_session, utcnow
from formloom.platform.models import App, AppMember, Team, User
from formloom.platform.web_auth import login_required
from formloom.runtime import access, catalog, charts, dashboards
from formloom.runtime.i18n import current_locale
from formloom.runtime.labels import text_of

bp = Blueprint("dashboards", __name__, template_folder="templates")
api = Blueprint("dashboards_api", __name__, url_prefix="/api/v1")
PER_PAGE = 50

UI = {
    "dashboards": {"en": "Dashboards", "zh-CN": "仪表盘"},
    "no_dashboards": {"en": "This app has no dashboards yet.", "zh-CN": "此应用还没有仪表盘。"},
    "period": {"en": "Period", "zh-CN": "期间"},
    "this_month": {"en": "This month", "zh-CN": "本月"},
    "this_quarter": {"en": "This quarter", "zh-CN": "本季度"},
    "this_year": {"en": "This year", "zh-CN": "今年"},
    "last_12_months": {"en": "Last 12 months", "zh-CN": "近 12 个月"},
    "all": {"en": "All time", "zh-CN": "全部时间"},
    "year": {"en": "Year {year}", "zh-CN": "{year} 年"},
    "team": {"en": "Team", "zh-CN": "团队"},
    "rep": {"en": "Rep", "zh-CN": "销售"},
    "any": {"en": "All", "zh-CN": "全部"},
    "apply": {"en": "Apply", "zh-CN": "应用"},
    "data_table": {"en": "Data table", "zh-CN": "数据表"},
    "download_csv": {"en": "CSV", "zh-CN": "下载 CSV"},
    "download_png": {"en": "PNG", "zh-CN": "下载 PNG"},
    "records_behind": {"en": "Records behind this number", "zh-CN": "此数字对应的记录"},
    "back": {"en": "Back to the dashboard", "zh-CN": "返回仪表盘"},
    "no_records": {"en": "No records.", "zh-CN": "没有记录。"},
    "previous": {"en": "Previous", "zh-CN": "上一页"},
    "next": {"en": "Next", "zh-CN": "下一页"},
    "page_of": {"en": "Page {page} of {pages} · {total} records", "zh-CN": "第 {page} / {pages} 页 · 共 {total} 条"},
    "title": {"en": "Title", "zh-CN": "标题"},
    "owner": {"en": "Owner", "zh-CN": "负责人"},
    "row": {"en": "Row", "zh-CN": "行"},
    "chart_of": {"en": "Chart: {label}", "zh-CN": "图表：{label}"},
}


def ui(key: str, **values: str) -> str:
    return text_of(UI[key], current_locale()).format(**values)


@bp.app_context_processor
def _helpers() -> dict:
    return {"dt": ui, "dashboards_link": _dashboards_link}


def _dashboards_link(app: App) -> str | None:
    """The app's Dashboards address, when it has published dashboards."""
    if not dashboards.published(get_session(), app):
        return None
    return url_for("dashboards.dashboard_list", app_key=app.key)


def _app(app_key: str) -> App:
    from formloom.platform.auth import Action

    db = get_session()
    app = catalog.authorized_app(db, g.user, app_key, Action.VIEW_APP)
    access.require_member(db, g.user, app)
    return app


def _context(app: App, body: Mapping) -> dashboards.Context:
    today = utcnow().date()
    filters = dashboards.parse_filters(body, request.args, today)
    return dashboards.context(get_session(), g.user, app, filters, today, current_locale())


def _nav(app: App) -> list:
    db = get_session()
    rules = access.policy(db, g.user, app)
    return [(key, catalog.entity(db, app, key).body["label"])
            for key in rules.readable_entities(catalog.entity_keys(db, app))]


def _drill_url(app: App, body: Mapping, widget: str, filters: dashboards.Filters):
    def link(drill: dict | None) -> str | None:
        if drill is None:
            return None
        return url_for("dashboards.drill_page", app_key=app.key, key=body["key"], widget=widget,
                       **filters.args(), **drill)
    return link


def _choices(ctx: dashboards.Context, body: Mapping) -> dict:
    offered = body.get("filters") or {}
    db = ctx.session
    years = list(range(ctx.today.year, ctx.today.year - 5, -1))
    periods = [(p, ui(p)) for p in dashboards.PERIODS] + [(str(y), ui("year", year=str(y))) for y in years]
    teams = list(db.execute(select(Team.id, Team.name).order_by(Team.name))) if offered.get("team") else []
    reps = list(db.execute(select(User.id, User.display_name).join(AppMember, AppMember.user_id == User.id)
                           .where(AppMember.app_id == ctx.app.id).order_by(User.display_name))) \
        if offered.get("rep") else []
    return {"periods": periods, "teams": teams, "reps": reps}


# --- pages ----------------------------------------------------------------------------------------

@bp.route("/apps/<app_key>/dashboards/")
@login_required
def dashboard_list(app_key: str):
    app = _app(app_key)
    return render_template("dashboards.html", app=app, nav=_nav(app), items=dashboards.published(get_session(), app))


@bp.route("/apps/<app_key>/dashboards/<key>")
@login_required
def dashboard_page(app_key: str, key: str):
    app = _app(app_key)
    body = dashboards.get(get_session(), app, key)
    ctx = _context(app, body)
    widgets = []
    for widget in body["widgets"]:
        data = dashboards.widget_data(ctx, widget)
        link = _drill_url(app, body, widget["key"], ctx.filters)
        widgets.append({"data": data, "chart": charts.chart(data, link, ctx.locale), "link": link,
                        "csv": url_for("dashboards.widget_csv", app_key=app.key, key=key, widget=widget["key"],
                                       **ctx.filters.args())})
    return render_template("dashboard.html", app=app, nav=_nav(app), body=body, widgets=widgets,
                           filters=ctx.filters, choices=_choices(ctx, body), fmt=charts.format_number,
                           locale=ctx.locale, items=dashboards.published(get_session(), app))


@bp.route("/apps/<app_key>/dashboards/<key>/<widget>/records")
@login_required
def drill_page(app_key: str, key: str, widget: str):
    app = _app(app_key)
    db = get_session()
    body = dashboards.get(db, app, key)
    spec = dashboards.widget_of(body, widget)
    ctx = _context(app, body)
    found = dashboards.drill(ctx, spec, request.args.get("bucket", ""), request.args.get("series", "value"))
    page = _page_arg()
    rows, total = dashboards.drill_page(ctx, found, page, PER_PAGE)
    entity = catalog.entity(db, app, found.entity_key)
    owners = dict(db.execute(select(User.id, User.display_name).where(
        User.id.in_({r.owner_id for r in rows if r.owner_id}))).all()) if rows else {}
    return render_template("dashboard_records.html", app=app, nav=_nav(app), body=body, widget=spec, rows=rows,
                           total=total, page=page, pages=max((total + PER_PAGE - 1) // PER_PAGE, 1), entity=entity,
                           owners=owners, args={k: v for k, v in request.args.items() if k != "page"},
                           back=url_for("dashboards.dashboard_page", app_key=app.key, key=key, **ctx.filters.args()))


def _page_arg() -> int:
    raw = request.args.get("page", "1")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 100_000:
        raise dashboards.DashboardError(f"'page' must be a page number like page=2; got {raw!r}.")
    return int(raw)


@bp.route("/apps/<app_key>/dashboards/<key>/<widget>.csv")
@login_required
def widget_csv(app_key: str, key: str, widget: str):
    app = _app(app_key)
    body = dashboards.get(get_session(), app, key)
    ctx = _context(app, body)
    data = dashboards.widget_data(ctx, dashboards.widget_of(body, widget))
    out = io.StringIO()
    out.write("\ufeff")  # Excel reads UTF-8 (Chinese labels) only with the byte order mark
    writer = csv.writer(out)
    writer.writerows(csv_rows(data))
    name = f"{app.key}-{key}-{widget}-{ctx.filters.period.key}.csv"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def csv_rows(data: dashboards.WidgetData) -> list[list[str]]:
    """A widget's numbers as CSV rows: a header, then a row per group (text neutralised for spreadsheets)."""
    if data.state != "ok":
        return [[data.label], [data.message or ""]]
    rows = [[ui("row"), *[s.label for s in data.series]]]
    for row in data.rows:
        rows.append([_cell_text(row.label), *["" if c.value is None else f"{c.value:g}" for c in row.cells]])
    return rows


def _cell_text(text: str) -> str:
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


# --- API ------------------------------------------------------------------------------------------

@api.get("/apps/<app_key>/dashboards")
@login_required
def api_list(app_key: str):
    app = _app(app_key)
    return jsonify({"dashboards": [{"key": b["key"], "label": b["label"], "description": b.get("description"),
                                    "widgets": [w["key"] for w in b["widgets"]]}
                                   for b in dashboards.published(get_session(), app)]})


@api.get("/apps/<app_key>/dashboards/<key>")
@login_required
def api_dashboard(app_key: str, key: str):
    app = _app(app_key)
    body = dashboards.get(get_session(), app, key)
    ctx = _context(app, body)
    period = ctx.filters.period
    return jsonify({"key": key, "label": body["label"],
                    "filters": {**ctx.filters.args(), "start": period.start.isoformat() if period.start else None,
                                "end": period.end.isoformat() if period.end else None},
                    "widgets": [dashboards.widget_data(ctx, w).as_json() for w in body["widgets"]]})


@api.get("/apps/<app_key>/dashboards/<key>/<widget>/records")
@login_required
def api_records(app_key: str, key: str, widget: str):
    from formloom.runtime.api import record_json

    app = _app(app_key)
    body = dashboards.get(get_session(), app, key)
    ctx = _context(app, body)
    found = dashboards.drill(ctx, dashboards.widget_of(body, widget), request.args.get("bucket", ""),
                             request.args.get("series", "value"))
    page = _page_arg()
    rows, total = dashboards.drill_page(ctx, found, page, PER_PAGE)
    return jsonify({"entity": found.entity_key, "total": total, "page": page, "per_page": PER_PAGE,
                    "records": [record_json(r) for r in rows], "as_of": iso(utcnow())})

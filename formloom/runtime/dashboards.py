"""Dashboards: widgets aggregated in SQL within the viewer's access, and the records behind each number.

A dashboard definition (``docs/dashboards.md``) lists widgets; each widget counts, sums,
averages or probability-weights one entity's records, optionally grouped by a field, the
owner, the owner's team or a date bucket, or asks a named metric (:mod:`formloom.runtime.metrics`).
Every number is one ``GROUP BY`` over the records table, always under the viewer's read scope;
:func:`drill` gives the WHERE clause of one number, so the list of records behind it is
exactly what was counted.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from sqlalchemy import Integer, case, cast, false, func, literal, or_, select, true, type_coerce, union
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement

from formloom.platform.db import json_value
from formloom.platform.errors import FormloomError, NotFound
from formloom.platform.models import App, Record, Team, TeamMember, User
from formloom.runtime import access, catalog, pipelines
from formloom.runtime.access import RecordAction
from formloom.runtime.labels import text_of

PERIODS = ("this_month", "this_quarter", "this_year", "last_12_months", "all")
BUCKETS = ("week", "month", "quarter", "year", "due")
NONE_KEY = ""  # the bucket of records with no value
DEFAULT_LIMIT = 20

TEXT: dict[str, dict[str, str]] = {
    "none": {"en": "(none)", "zh-CN": "（空）"},
    "no_team": {"en": "(no team)", "zh-CN": "（无团队）"},
    "overdue": {"en": "Overdue", "zh-CN": "已逾期"},
    "due": {"en": "Not yet due", "zh-CN": "未到期"},
    "count": {"en": "Count", "zh-CN": "数量"},
    "sum": {"en": "Sum of {field}", "zh-CN": "{field}合计"},
    "avg": {"en": "Average {field}", "zh-CN": "{field}平均值"},
    "weighted": {"en": "Weighted {field}", "zh-CN": "加权{field}"},
    "previous": {"en": "Previous period", "zh-CN": "上一周期"},
    "hidden": {"en": "This widget uses field '{field}', which your role may not see.",
               "zh-CN": "此组件使用了字段“{field}”，您的角色无权查看。"},
    "forbidden": {"en": "Your role may not read {entity} records.", "zh-CN": "您的角色无权查看{entity}记录。"},
}


class DashboardError(FormloomError):
    """A dashboard address or filter is wrong (unknown period, team, widget or bucket)."""

    code = "invalid_query"


def say(key: str, locale: str, **values: Any) -> str:
    return text_of(TEXT[key], locale).format(**values)


# --- filters ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    """The dates a widget's ``date_field`` must fall in: ``start`` ≤ date < ``end`` (None: no bound)."""

    key: str
    start: date | None
    end: date | None

    def previous(self) -> Period:
        """The period of the same length just before (for comparisons)."""
        if self.start is None or self.end is None:
            return self
        months = (self.end.year - self.start.year) * 12 + self.end.month - self.start.month
        return Period(f"before:{self.key}", _add_months(self.start, -months), self.start)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def period_of(key: str, today: date) -> Period:
    """``this_month``, ``this_quarter``, ``this_year``, ``last_12_months``, ``all`` or a year (``2025``)."""
    month = date(today.year, today.month, 1)
    if key == "this_month":
        return Period(key, month, _add_months(month, 1))
    if key == "this_quarter":
        start = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        return Period(key, start, _add_months(start, 3))
    if key == "this_year":
        return Period(key, date(today.year, 1, 1), date(today.year + 1, 1, 1))
    if key == "last_12_months":
        return Period(key, _add_months(month, -11), _add_months(month, 1))
    if key == "all":
        return Period(key, None, None)
    if key.isascii() and key.isdigit() and len(key) == 4 and 1900 <= int(key) <= 2999:
        return Period(key, date(int(key), 1, 1), date(int(key) + 1, 1, 1))
    raise DashboardError(f"Unknown period {key!r}; use one of {', '.join(PERIODS)} or a year such as "
                         f"{today.year}.")


@dataclass(frozen=True)
class Filters:
    period: Period
    team_id: int | None = None
    rep_id: int | None = None

    def args(self) -> dict[str, str]:
        """The query arguments that give these filters (carried by every link of the page)."""
        out = {"period": self.period.key}
        if self.team_id is not None:
            out["team"] = str(self.team_id)
        if self.rep_id is not None:
            out["rep"] = str(self.rep_id)
        return out


def parse_filters(body: Mapping, args: Mapping[str, str], today: date) -> Filters:
    """The viewer's filters from query arguments, the dashboard's defaults filling in."""
    offered = body.get("filters") or {}
    period = period_of(args.get("period") or offered.get("period") or "all", today)
    return Filters(period, _id_arg(args, "team") if offered.get("team") else None,
                   _id_arg(args, "rep") if offered.get("rep") else None)


def _id_arg(args: Mapping[str, str], name: str) -> int | None:
    raw = args.get(name) or ""
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 2**31:
        raise DashboardError(f"'{name}' must be the number of a {name}, like {name}=3; got {raw!r}.")
    return int(raw)


# --- results ------------------------------------------------------------------------------------

@dataclass
class Series:
    """One column of numbers: its key, label and format (``number``, ``money`` or ``percent``)."""

    key: str
    label: str
    fmt: str = "number"


@dataclass
class Cell:
    value: float | None
    drill: dict[str, str] | None  # query arguments of the records behind the number (None: none)


@dataclass
class Row:
    key: str
    label: str
    cells: list[Cell]


@dataclass
class WidgetData:
    key: str
    type: str
    label: str
    state: str = "ok"  # ok | hidden | forbidden
    message: str | None = None
    series: list[Series] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)
    note: str | None = None
    primary: int = 0  # the series a kpi shows large

    def as_json(self) -> dict:
        return {"key": self.key, "type": self.type, "label": self.label, "state": self.state,
                "message": self.message, "note": self.note,
                "series": [{"key": s.key, "label": s.label, "format": s.fmt} for s in self.series],
                "rows": [{"key": r.key, "label": r.label,
                          "values": {s.key: c.value for s, c in zip(self.series, r.cells)}} for r in self.rows]}


@dataclass
class Context:
    """Everything a widget query needs: who asks, in which app, with which filters, on which day."""

    session: Session
    user: User
    app: App
    rules: access.Policy
    filters: Filters
    today: date
    locale: str = "en"

    @property
    def dialect(self) -> str:
        return self.session.get_bind().dialect.name


def context(session: Session, user: User, app: App, filters: Filters, today: date, locale: str = "en") -> Context:
    return Context(session, user, app, access.policy(session, user, app), filters, today, locale)


# --- definitions ----------------------------------------------------------------------------------

def published(session: Session, app: App) -> list[dict]:
    return catalog.published_bodies(session, app, "dashboard")


def get(session: Session, app: App, key: str) -> dict:
    row = catalog.published_version(session, app, "dashboard", key)
    if row is None:
        raise NotFound(f"App '{app.key}' has no dashboard '{key}'.")
    return row.body


def widget_of(body: Mapping, key: str) -> dict:
    for widget in body["widgets"]:
        if widget["key"] == key:
            return widget
    raise NotFound(f"Dashboard '{body['key']}' has no widget '{key}'.")


# --- SQL building blocks --------------------------------------------------------------------------

def team_members():
    """(user_id, team_id) of every member and manager of every team."""
    return union(select(TeamMember.user_id.label("user_id"), TeamMember.team_id.label("team_id")),
                 select(Team.manager_id.label("user_id"), Team.id.label("team_id"))
                 .where(Team.manager_id.is_not(None))).subquery("team_of")


def in_team(team_id: int) -> ColumnElement:
    members = team_members()
    return Record.owner_id.in_(select(members.c.user_id).where(members.c.team_id == team_id))


CREATED_AT = "created_at"  # a widget's date may be when records were created (unless a field has that key)


def date_text(key: str, dialect: str) -> ColumnElement:
    """A date field's ISO text, or the record's creation time as ISO text for ``created_at``."""
    if key != CREATED_AT:
        return json_value(Record.data, key)
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", Record.created_at), 'YYYY-MM-DD"T"HH24:MI:SS')
    return func.replace(func.substr(Record.created_at, 1, 19), " ", "T")


def date_range(key: str, period: Period, dialect: str = "sqlite") -> list[ColumnElement]:
    """``key`` (a date or date-time field) within ``period``; ISO text compares in date order."""
    value = date_text(key, dialect)
    out = []
    if period.start is not None:
        out.append(value >= period.start.isoformat())
    if period.end is not None:
        out.append(value < period.end.isoformat())
    return out


def base_where(ctx: Context, widget: Mapping, entity_key: str | None = None,
               period: Period | None = None) -> list[ColumnElement]:
    """The records a widget counts: live, of its entity, within the read scope, its filter and the filters."""
    entity_key = entity_key or widget["entity"]
    clauses = [Record.app_id == ctx.app.id, Record.entity_key == entity_key, Record.deleted_at.is_(None),
               ctx.rules.scope(entity_key, RecordAction.READ)]
    if isinstance(widget.get("filter"), Mapping) and entity_key == widget["entity"]:
        clauses.append(access.condition_sql(widget["filter"], ctx.user.id, ctx.dialect))
    period = period or ctx.filters.period
    if widget.get("date_field") and entity_key == widget["entity"]:
        clauses.extend(date_range(widget["date_field"], period, ctx.dialect))
    if ctx.filters.team_id is not None:
        clauses.append(in_team(ctx.filters.team_id))
    if ctx.filters.rep_id is not None:
        clauses.append(Record.owner_id == ctx.filters.rep_id)
    return clauses


def equals(ctx: Context, key: str, value: Any) -> ColumnElement:
    """``data[key] = value`` as the access conditions compare it (same text/number rules)."""
    return access.condition_sql({"field": key, "op": "eq", "value": value}, ctx.user.id, ctx.dialect)


def number(key: str) -> ColumnElement:
    return json_value(Record.data, key, numeric=True)


def bucket_expr(ctx: Context, key: str, bucket: str) -> ColumnElement:
    """The bucket of a date (or date-time) field as text: ``2026``, ``2026-Q1``, ``2026-03``, a week's Monday."""
    value = date_text(key, ctx.dialect)
    if bucket == "year":
        return func.substr(value, 1, 4)
    if bucket == "month":
        return func.substr(value, 1, 7)
    if bucket == "quarter":
        quarter = (cast(func.substr(value, 6, 2), Integer) + 2) // 3
        return type_coerce(func.substr(value, 1, 4), _text_type()) + literal("-Q") + cast(quarter, _text_type())
    if bucket == "due":
        return case((value.is_(None), None), (value < ctx.today.isoformat(), "overdue"), else_="due")
    day = func.substr(value, 1, 10)
    if ctx.dialect == "postgresql":
        return func.to_char(func.date_trunc("week", cast(day, _date_type())), "YYYY-MM-DD")
    return func.date(day, "weekday 0", "-6 days")


def _text_type():
    from sqlalchemy import String

    return String()


def _date_type():
    from sqlalchemy import Date

    return Date()


def stage_case(pipeline: pipelines.Pipeline, values: Mapping[str, float], default: float = 0) -> ColumnElement:
    stage = json_value(Record.data, pipeline.stage_field)
    whens = [(stage == key, literal(value)) for key, value in values.items()]
    return case(*whens, else_=literal(default)) if whens else literal(default)


def pipeline_of(ctx: Context, entity_key: str) -> pipelines.Pipeline | None:
    return pipelines.pipeline_for(ctx.session, ctx.app, entity_key)


def outcome_stages(pipeline: pipelines.Pipeline, outcome: pipelines.Outcome) -> list[str]:
    return [s.key for s in pipeline.stages if s.outcome is outcome]


# --- grouping -------------------------------------------------------------------------------------

@dataclass
class Grouping:
    """How rows are formed: the SQL of a row's key, how to label keys, and the clause of one key."""

    expr: ColumnElement | None  # None: one row for everything
    join: Callable[[Any], Any] | None
    where_key: Callable[[str], ColumnElement]
    labels: Callable[[list[str]], dict[str, str]]
    order: str  # "options", "key" or "value"
    options: list[str] = field(default_factory=list)


def grouping(ctx: Context, widget: Mapping, group_by: Mapping | None = None) -> Grouping:
    group_by = group_by if group_by is not None else widget.get("group_by")
    if not group_by:
        return Grouping(None, None, lambda key: true(), lambda keys: {k: "" for k in keys}, "key")
    if group_by.get("owner"):
        return Grouping(cast(Record.owner_id, _text_type()), None,
                        lambda key: Record.owner_id.is_(None) if key == NONE_KEY else Record.owner_id == _int(key),
                        lambda keys: user_names(ctx, keys), "value")
    if group_by.get("team"):
        members = team_members()
        return Grouping(cast(members.c.team_id, _text_type()),
                        lambda query: query.outerjoin(members, members.c.user_id == Record.owner_id),
                        lambda key: _team_clause(key), lambda keys: team_names(ctx, keys), "value")
    entity = catalog.entity(ctx.session, ctx.app, widget["entity"])
    key = group_by["field"]
    spec = entity.by_key.get(key)
    if group_by.get("bucket"):
        bucket = group_by["bucket"]
        expr = bucket_expr(ctx, key, bucket)
        return Grouping(expr, None, lambda k: expr.is_(None) if k == NONE_KEY else expr == k,
                        lambda keys: {k: bucket_label(k, bucket, ctx.locale) for k in keys},
                        "options" if bucket == "due" else "key", ["overdue", "due"] if bucket == "due" else [])
    expr = json_value(Record.data, key)
    def where(k):
        return (expr.is_(None) if k == NONE_KEY else equals(ctx, key, _typed(spec.type.name, k)))
    if spec.type.name == "select":
        options = [o["value"] for o in spec.definition.get("options", [])]
        names = {o["value"]: text_of(o.get("label", o["value"]), ctx.locale)
                 for o in spec.definition.get("options", [])}
        return Grouping(expr, None, where, lambda keys: {k: names.get(k, k) or say("none", ctx.locale) for k in keys},
                        "options", options)
    if spec.type.name == "user":
        return Grouping(expr, None, where, lambda keys: user_names(ctx, keys), "value")
    return Grouping(expr, None, where, lambda keys: record_titles(ctx, keys), "value")


def _typed(type_name: str, key: str) -> Any:
    return int(key) if type_name in ("user", "relation") and key.isdigit() else key


def _int(key: str) -> int:
    if not (key.isascii() and key.isdigit()):
        raise DashboardError(f"'bucket' must be a number here; got {key!r}.")
    return int(key)


def _team_clause(key: str) -> ColumnElement:
    members = team_members()
    if key == NONE_KEY:
        return or_(Record.owner_id.is_(None), Record.owner_id.not_in(select(members.c.user_id)))
    return in_team(_int(key))


def user_names(ctx: Context, keys: Sequence[str]) -> dict[str, str]:
    ids = [int(k) for k in keys if k and k.isdigit()]
    names = dict(ctx.session.execute(select(User.id, User.display_name).where(User.id.in_(ids))).all()) if ids else {}
    return {k: names.get(int(k), f"#{k}") if k and k.isdigit() else say("none", ctx.locale) for k in keys}


def team_names(ctx: Context, keys: Sequence[str]) -> dict[str, str]:
    ids = [int(k) for k in keys if k and k.isdigit()]
    names = dict(ctx.session.execute(select(Team.id, Team.name).where(Team.id.in_(ids))).all()) if ids else {}
    return {k: names.get(int(k), f"#{k}") if k and k.isdigit() else say("no_team", ctx.locale) for k in keys}


def record_titles(ctx: Context, keys: Sequence[str]) -> dict[str, str]:
    from formloom.runtime import listing

    ids = {int(k) for k in keys if k and k.isdigit()}
    titles = listing.titles(ctx.session, ids, ctx.rules)
    return {k: titles.get(int(k), f"#{k}") if k and k.isdigit() else (k or say("none", ctx.locale)) for k in keys}


def bucket_label(key: str, bucket: str, locale: str) -> str:
    if not key:
        return say("none", locale)
    if bucket == "due":
        return say(key, locale)
    zh = locale == "zh-CN"
    if bucket == "year":
        return f"{key}年" if zh else key
    if bucket == "quarter":
        year, _, quarter = key.partition("-Q")
        return f"{year}年第{quarter}季度" if zh else f"{year} Q{quarter}"
    if bucket == "month":
        year, _, month = key.partition("-")
        return f"{year}年{int(month)}月" if zh and month.isdigit() else key
    return f"{key}周" if zh else key  # a week is named by its Monday


def ordered(grouping: Grouping, rows: list[tuple[str, list[float | None]]],
            limit: int | None) -> list[tuple[str, list]]:
    """Rows in option, time or value order. A time series keeps its whole period unless the widget
    sets a ``limit``, and then its latest rows; other groupings keep their first ``limit`` rows."""
    if grouping.order == "options":
        rank = {k: i for i, k in enumerate(grouping.options)}
        rows.sort(key=lambda r: (rank.get(r[0], len(rank)), r[0]))
    elif grouping.order == "value":
        rows.sort(key=lambda r: (-(r[1][0] or 0), r[0]))
    else:
        rows.sort(key=lambda r: (r[0] == NONE_KEY, r[0]))
        return rows[-limit:] if limit else rows
    return rows[:limit or DEFAULT_LIMIT]


# --- generic widgets --------------------------------------------------------------------------------

@dataclass
class Aggregate:
    """One series computed by SQL (``expr``) or from the others (``derive``); ``where`` narrows its drill-down."""

    series: Series
    expr: ColumnElement | None = None
    derive: Callable[[dict[str, float | None]], float | None] | None = None
    where: ColumnElement | None = None
    drill_as: str | None = None  # derived series drill to another series' records


def measure_aggregate(ctx: Context, widget: Mapping) -> Aggregate:
    measure = widget["measure"]
    op = measure["op"]
    if op == "count":
        return Aggregate(Series("value", say("count", ctx.locale)), func.count(Record.id))
    entity = catalog.entity(ctx.session, ctx.app, widget["entity"])
    field_label = text_of(entity.by_key[measure["field"]].definition.get("label"), ctx.locale)
    value = number(measure["field"])
    if op == "sum":
        return Aggregate(Series("value", say("sum", ctx.locale, field=field_label), "money"),
                         func.coalesce(func.sum(value), 0))
    if op == "avg":
        return Aggregate(Series("value", say("avg", ctx.locale, field=field_label), "money"), func.avg(value))
    pipeline = pipeline_of(ctx, widget["entity"])
    weights = {s.key: (s.probability or 0) / 100 for s in pipeline.stages} if pipeline else {}
    return Aggregate(Series("value", say("weighted", ctx.locale, field=field_label), "money"),
                     func.coalesce(func.sum(value * stage_case(pipeline, weights)), 0) if pipeline else literal(0))


def grouped(ctx: Context, widget: Mapping, aggregates: list[Aggregate], where: list[ColumnElement] | None = None,
            group: Grouping | None = None, drill_extra: Mapping[str, str] | None = None) -> list[Row]:
    """One GROUP BY: a row per group key with a cell per aggregate, each linking to its records."""
    group = group or grouping(ctx, widget)
    where = base_where(ctx, widget) if where is None else where
    sql = [a for a in aggregates if a.expr is not None]
    key_expr = group.expr if group.expr is not None else literal(NONE_KEY)
    query = select(key_expr.label("bucket"), *[a.expr for a in sql]).select_from(Record)
    if group.join is not None:
        query = group.join(query)
    query = query.where(*where)
    if group.expr is not None:
        query = query.group_by(group.expr)
    raw: list[tuple[str, list]] = []
    for row in ctx.session.execute(query):
        values = {a.series.key: _float(v) for a, v in zip(sql, row[1:])}
        for a in aggregates:
            if a.derive is not None:
                values[a.series.key] = a.derive(values)
        raw.append(("" if row[0] is None else str(row[0]), [values[a.series.key] for a in aggregates]))
    if group.expr is None and not raw:
        raw = [(NONE_KEY, [0.0 if a.expr is not None else None for a in aggregates])]
    kept = ordered(group, raw, int(widget["limit"]) if widget.get("limit") else None)
    labels = group.labels([k for k, _ in kept])
    out = []
    for key, values in kept:
        cells = []
        for a, v in zip(aggregates, values):
            drill = {"bucket": key, "series": a.drill_as or a.series.key, **(drill_extra or {})}
            cells.append(Cell(v, drill))
        out.append(Row(key, labels.get(key, key), cells))
    return out


def _float(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)


def _fields_used(widget: Mapping) -> list[str]:
    """Field keys of the widget's entity that its numbers read."""
    keys = []
    if widget.get("measure", {}).get("field"):
        keys.append(widget["measure"]["field"])
    if (widget.get("group_by") or {}).get("field"):
        keys.append(widget["group_by"]["field"])
    if widget.get("date_field"):
        keys.append(widget["date_field"])
    keys.extend(_condition_fields(widget.get("filter")))
    metric = widget.get("metric") or {}
    keys.extend(metric[k] for k in ("amount_field", "customer_field") if metric.get(k))
    return keys


def _condition_fields(node: Any) -> list[str]:
    if not isinstance(node, Mapping):
        return []
    if "field" in node:
        return [node["field"]]
    children = node.get("all") or node.get("any") or ([node["not"]] if "not" in node else [])
    return [k for child in children for k in _condition_fields(child)]


def refusal(ctx: Context, widget: Mapping) -> WidgetData | None:
    """Why the viewer may not see this widget's numbers (an entity they cannot read, a hidden field)."""
    label = text_of(widget["label"], ctx.locale)
    entities = [widget["entity"]]
    metric = widget.get("metric") or {}
    if metric.get("name") == "target_vs_actual":
        entities.append(metric.get("targets") or "target")
    for entity_key in entities:
        if not ctx.rules.allows(entity_key, RecordAction.READ):
            entity = catalog.entity(ctx.session, ctx.app, entity_key)
            return WidgetData(widget["key"], widget["type"], label, "forbidden",
                              say("forbidden", ctx.locale, entity=text_of(entity.body["label"], ctx.locale)))
    hidden = ctx.rules.hidden(widget["entity"])
    pipeline = pipeline_of(ctx, widget["entity"])
    used = _fields_used(widget)
    if pipeline is not None and (widget.get("metric") or widget.get("measure", {}).get("op") == "weighted"):
        used.append(pipeline.stage_field)
    for key in used:
        if key in hidden:
            return WidgetData(widget["key"], widget["type"], label, "hidden", say("hidden", ctx.locale, field=key))
    if metric.get("name") == "target_vs_actual":  # the targets' own fields count too
        hidden = ctx.rules.hidden(entities[-1])
        for key in ("period_type", "year", "quarter", "month", "rep", "team", "amount"):
            if key in hidden:
                return WidgetData(widget["key"], widget["type"], label, "hidden",
                                  say("hidden", ctx.locale, field=f"{entities[-1]}.{key}"))
    return None


def widget_data(ctx: Context, widget: Mapping) -> WidgetData:
    """The numbers of one widget for the viewer, or why they may not see them."""
    from formloom.runtime import metrics

    refused = refusal(ctx, widget)
    if refused is not None:
        return refused
    data = WidgetData(widget["key"], widget["type"], text_of(widget["label"], ctx.locale))
    if widget.get("metric"):
        metrics.METRICS[widget["metric"]["name"]].compute(ctx, widget, data)
        return data
    aggregate = measure_aggregate(ctx, widget)
    data.series = [aggregate.series]
    data.rows = grouped(ctx, widget, [aggregate])
    if widget.get("compare") == "previous_period" and ctx.filters.period.start is not None:
        previous = ctx.filters.period.previous()
        before = grouped(ctx, widget, [replace(aggregate, series=Series("previous", say("previous", ctx.locale),
                                                                        aggregate.series.fmt))],
                         where=base_where(ctx, widget, period=previous))
        data.series.append(Series("previous", say("previous", ctx.locale), aggregate.series.fmt))
        for row in data.rows:
            match = next((b for b in before if b.key == row.key), None)
            row.cells.append(match.cells[0] if match else Cell(0.0, {"bucket": row.key, "series": "previous"}))
    return data


# --- drill-down -------------------------------------------------------------------------------------

@dataclass
class Drill:
    """The records behind one number: their entity and the WHERE clause that picked them."""

    entity_key: str
    where: list[ColumnElement]
    joins: Callable[[Any], Any] | None = None


def drill(ctx: Context, widget: Mapping, bucket: str, series: str) -> Drill:
    """The records behind the number in row ``bucket`` of ``series`` (the widget's own clauses)."""
    from formloom.runtime import metrics

    if refusal(ctx, widget) is not None:
        return Drill(widget["entity"], [false()])
    if widget.get("metric"):
        return metrics.METRICS[widget["metric"]["name"]].drill(ctx, widget, bucket, series)
    if series not in ("value", "previous"):
        raise DashboardError(f"Widget '{widget['key']}' has no series {series!r}; use 'value'.")
    period = ctx.filters.period.previous() if series == "previous" else None
    where = base_where(ctx, widget, period=period)
    group = grouping(ctx, widget)
    if group.expr is not None:
        where.append(group.where_key(bucket))
        if widget.get("measure", {}).get("op") in ("sum", "avg", "weighted"):
            where.append(number(widget["measure"]["field"]).is_not(None))
    elif widget.get("measure", {}).get("op") in ("sum", "avg", "weighted"):
        where.append(number(widget["measure"]["field"]).is_not(None))
    return Drill(widget["entity"], where)


def drill_page(ctx: Context, found: Drill, page: int, per_page: int = 50) -> tuple[list[Record], int]:
    """One page of the records behind a number, newest first, and how many there are."""
    count = select(func.count(Record.id)).where(*found.where)
    total = ctx.session.scalar(count) or 0
    query = (select(Record).where(*found.where).order_by(Record.id.desc())
             .limit(per_page).offset((max(page, 1) - 1) * per_page))
    return list(ctx.session.scalars(query)), total



"""Named dashboard metrics: numbers a plain count or sum cannot give, each defined once here.

A definition names a metric (``{"metric": {"name": "win_rate"}}``) instead of carrying code.
Each metric computes its rows with SQL and says which records stand behind each number
(:meth:`Metric.drill`), under the same scope and filters as the numbers. ``docs/dashboards.md``
describes what each one counts.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Integer, String, case, cast, false, func, literal, or_, select, type_coerce
from sqlalchemy.sql.expression import ColumnElement

from formloom.platform.db import json_value
from formloom.platform.models import Record, StageVisit, Team
from formloom.runtime import catalog
from formloom.runtime.access import RecordAction, Scope
from formloom.runtime.dashboards import (
    Aggregate,
    Cell,
    Context,
    DashboardError,
    Drill,
    Period,
    Row,
    Series,
    WidgetData,
    base_where,
    grouped,
    grouping,
    number,
    ordered,
    outcome_stages,
    pipeline_of,
    team_members,
)
from formloom.runtime.labels import text_of
from formloom.runtime.pipelines import Outcome, Pipeline

TEXT = {
    "reached": {"en": "Reached", "zh-CN": "到达数"},
    "amount": {"en": "Amount", "zh-CN": "金额"},
    "conversion": {"en": "Conversion to next stage", "zh-CN": "转化率（到下一阶段）"},
    "won": {"en": "Won", "zh-CN": "赢单"},
    "lost": {"en": "Lost", "zh-CN": "输单"},
    "win_rate": {"en": "Win rate", "zh-CN": "赢单率"},
    "target": {"en": "Target", "zh-CN": "目标"},
    "actual": {"en": "Actual (won)", "zh-CN": "实际（赢单）"},
    "attainment": {"en": "Attainment", "zh-CN": "完成率"},
    "buyers": {"en": "Customers with a won deal", "zh-CN": "有赢单的客户"},
    "repeat": {"en": "Customers with 2 or more", "zh-CN": "赢单 2 次及以上的客户"},
    "repurchase_rate": {"en": "Repurchase rate", "zh-CN": "复购率"},
    "prior": {"en": "Buyers 13–24 months ago", "zh-CN": "13–24 个月前有赢单的客户"},
    "churned": {"en": "Churned customers", "zh-CN": "流失客户"},
    "churn_rate": {"en": "Churn rate", "zh-CN": "流失率"},
    "all_time": {"en": "Counted over all time: stage history has no period.", "zh-CN": "按全部时间统计。"},
    "churn_note": {"en": "A won deal in the 12 months before the last 12, none in the last 12 (to {today}).",
                   "zh-CN": "过去 12 个月之前的 12 个月内有赢单，近 12 个月（截至 {today}）没有。"},
}


def _say(key: str, locale: str, **values: str) -> str:
    return text_of(TEXT[key], locale).format(**values)


def _rate(numerator: str, denominator: Callable[[dict], float | None]) -> Callable[[dict], float | None]:
    def derive(values: dict) -> float | None:
        total = denominator(values)
        return round((values.get(numerator) or 0) / total, 4) if total else None
    return derive


@dataclass(frozen=True)
class Metric:
    compute: Callable[[Context, Mapping, WidgetData], None]
    drill: Callable[[Context, Mapping, str, str], Drill]


def _pipeline(ctx: Context, widget: Mapping) -> Pipeline:
    pipeline = pipeline_of(ctx, widget["entity"])
    if pipeline is None:
        raise DashboardError(f"Entity '{widget['entity']}' has no pipeline; widget '{widget['key']}' needs one.")
    return pipeline


def _amount_field(widget: Mapping, pipeline: Pipeline) -> str | None:
    return (widget.get("metric") or {}).get("amount_field") or pipeline.amount_field


# --- conversion: of the records that reached a stage, how many reached the next -------------------

def _funnel_stages(pipeline: Pipeline) -> list:
    return [s for s in pipeline.stages if s.outcome is not Outcome.LOST]


def _reach(ctx: Context, pipeline: Pipeline):
    """Per record, the furthest stage (by funnel position) it ever entered, from the stage history."""
    stages = _funnel_stages(pipeline)
    position = case(*[(StageVisit.stage == s.key, i) for i, s in enumerate(stages)], else_=-1)
    return (select(StageVisit.record_id.label("rid"), func.max(position).label("furthest"))
            .where(StageVisit.app_id == ctx.app.id, StageVisit.pipeline_key == pipeline.key)
            .group_by(StageVisit.record_id).subquery("reach"))


def conversion_compute(ctx: Context, widget: Mapping, data: WidgetData) -> None:
    pipeline = _pipeline(ctx, widget)
    stages = _funnel_stages(pipeline)
    reach = _reach(ctx, pipeline)
    amount = _amount_field(widget, pipeline)
    columns = []
    for i in range(len(stages)):
        columns.append(func.sum(case((reach.c.furthest >= i, 1), else_=0)))
        columns.append(func.sum(case((reach.c.furthest >= i, number(amount)), else_=None)) if amount
                       else literal(None))
    row = ctx.session.execute(select(*columns).select_from(Record).join(reach, reach.c.rid == Record.id)
                              .where(*base_where(ctx, widget))).one()
    reached = [float(row[2 * i] or 0) for i in range(len(stages))]
    data.series = [Series("reached", _say("reached", ctx.locale)),
                   Series("amount", _say("amount", ctx.locale), "money"),
                   Series("conversion", _say("conversion", ctx.locale), "percent")]
    for i, stage in enumerate(stages):
        rate = round(reached[i + 1] / reached[i], 4) if i + 1 < len(stages) and reached[i] else None
        amount_value = float(row[2 * i + 1]) if row[2 * i + 1] is not None else 0.0
        data.rows.append(Row(stage.key, text_of(stage.label, ctx.locale), [
            Cell(reached[i], {"bucket": stage.key, "series": "reached"}),
            Cell(amount_value, {"bucket": stage.key, "series": "amount"}),
            Cell(rate, {"bucket": stage.key, "series": "conversion"} if rate is not None else None)]))
    if not widget.get("date_field"):
        data.note = _say("all_time", ctx.locale)


def conversion_drill(ctx: Context, widget: Mapping, bucket: str, series: str) -> Drill:
    pipeline = _pipeline(ctx, widget)
    keys = [s.key for s in _funnel_stages(pipeline)]
    if bucket not in keys or series not in ("reached", "amount", "conversion"):
        raise DashboardError(f"Widget '{widget['key']}' has no number at stage {bucket!r}, series {series!r}.")
    position = keys.index(bucket) + (1 if series == "conversion" else 0)  # a rate's records: those that went on
    reach = _reach(ctx, pipeline)
    return Drill(widget["entity"], [*base_where(ctx, widget),
                                    Record.id.in_(select(reach.c.rid).where(reach.c.furthest >= position))])


# --- win rate: won / (won + lost), closed in the period -----------------------------------------------

def _win_aggregates(ctx: Context, pipeline: Pipeline) -> list[Aggregate]:
    stage = json_value(Record.data, pipeline.stage_field)
    won, lost = outcome_stages(pipeline, Outcome.WON), outcome_stages(pipeline, Outcome.LOST)
    def tally(keys: list[str]) -> ColumnElement:
        return func.coalesce(func.sum(case((stage.in_(keys), 1), else_=0)), 0)
    return [Aggregate(Series("won", _say("won", ctx.locale)), tally(won)),
            Aggregate(Series("lost", _say("lost", ctx.locale)), tally(lost)),
            Aggregate(Series("win_rate", _say("win_rate", ctx.locale), "percent"),
                      derive=_rate("won", lambda v: (v.get("won") or 0) + (v.get("lost") or 0)), drill_as="closed")]


def _closed(pipeline: Pipeline, which: str) -> ColumnElement:
    stage = json_value(Record.data, pipeline.stage_field)
    won, lost = outcome_stages(pipeline, Outcome.WON), outcome_stages(pipeline, Outcome.LOST)
    return stage.in_({"won": won, "lost": lost, "closed": won + lost}[which])


def win_rate_compute(ctx: Context, widget: Mapping, data: WidgetData) -> None:
    pipeline = _pipeline(ctx, widget)
    aggregates = _win_aggregates(ctx, pipeline)
    data.series = [a.series for a in aggregates]
    data.rows = grouped(ctx, widget, aggregates, [*base_where(ctx, widget), _closed(pipeline, "closed")])
    data.primary = 2  # a kpi shows the rate


def win_rate_drill(ctx: Context, widget: Mapping, bucket: str, series: str) -> Drill:
    pipeline = _pipeline(ctx, widget)
    if series not in ("won", "lost", "closed"):
        raise DashboardError(f"Widget '{widget['key']}' has no series {series!r}; use won, lost or closed.")
    return Drill(widget["entity"], [*base_where(ctx, widget), _closed(pipeline, series),
                                    grouping(ctx, widget).where_key(bucket)])


# --- target vs actual -------------------------------------------------------------------------------

TIME_LEVELS = ("year", "quarter", "month")


def _target_options(widget: Mapping) -> tuple[str, str, str]:
    metric = widget["metric"]
    return metric.get("targets") or "target", metric.get("by") or "month", metric.get("level") or "team"


def _target_type(ctx: Context, by: str) -> str:
    """Which targets a row adds up: of its own level in time, else those matching the period's length."""
    if by in TIME_LEVELS:
        return by
    return {"this_month": "month", "this_quarter": "quarter", "last_12_months": "month"}.get(
        ctx.filters.period.key, "year")


def _target_int(key: str) -> ColumnElement:
    return cast(json_value(Record.data, key, numeric=True), Integer)


def _target_key(by: str) -> ColumnElement:
    """The row key of a target, in the form the actual amounts are bucketed in."""
    year = type_coerce(cast(_target_int("year"), String()), String())
    if by == "year":
        return year
    if by == "quarter":
        return year + literal("-Q") + cast(_target_int("quarter"), String())
    if by == "month":
        month = cast(_target_int("month"), String())
        return year + literal("-") + case((_target_int("month") < 10, literal("0") + month), else_=month)
    return json_value(Record.data, "rep" if by == "rep" else "team")


def _target_where(ctx: Context, widget: Mapping) -> list[ColumnElement]:
    """Targets of the period type, level and viewer's filters, starting within the period."""
    targets, by, level = _target_options(widget)
    kind = _target_type(ctx, by)
    rep, team = json_value(Record.data, "rep"), json_value(Record.data, "team")
    where = [Record.app_id == ctx.app.id, Record.entity_key == targets, Record.deleted_at.is_(None),
             ctx.rules.scope(targets, RecordAction.READ), json_value(Record.data, "period_type") == kind]
    if by == "rep" or (by in TIME_LEVELS and level == "rep"):
        where.append(rep.is_not(None))
    else:
        where.extend([rep.is_(None), team.is_not(None), team != ""])
    first_month = {"year": literal(1), "quarter": (_target_int("quarter") - 1) * 3 + 1, "month": _target_int("month")}
    month_index = _target_int("year") * 12 + first_month[kind] - 1
    period = ctx.filters.period
    if period.start is not None:
        where.append(month_index >= period.start.year * 12 + period.start.month - 1)
    if period.end is not None:
        where.append(month_index < period.end.year * 12 + period.end.month - 1)
    where.extend(_targets_in_view(ctx, widget, rep, team))
    if ctx.filters.rep_id is not None:
        where.append(rep == _user_text(ctx, ctx.filters.rep_id))
    if ctx.filters.team_id is not None:
        members = team_members()
        ids = [_user_text(ctx, i) for i in ctx.session.scalars(select(members.c.user_id).where(
            members.c.team_id == ctx.filters.team_id))]
        where.append(or_(rep.in_(ids) if ids else false(), team.in_(_team_words(ctx, ctx.filters.team_id))))
    return where


def _targets_in_view(ctx: Context, widget: Mapping, rep: ColumnElement, team: ColumnElement) -> list[ColumnElement]:
    """Only the targets of people whose results the viewer sees: a viewer who reads their own deals
    sees their own targets; one who reads their team's sees the team's people and teams. (A target
    without its actual beside it would read as nothing achieved.)"""
    scope = ctx.rules.grant(widget["entity"], RecordAction.READ).scope
    if scope is None or scope is Scope.ALL:
        return []
    if scope is Scope.OWN:
        return [rep == _user_text(ctx, ctx.user.id)]
    members = team_members()
    teams = ctx.session.scalars(select(Team).where(or_(
        Team.manager_id == ctx.user.id,
        Team.id.in_(select(members.c.team_id).where(members.c.user_id == ctx.user.id))))).all()
    words = [w for t in teams for w in (t.name, t.key)]
    people = [_user_text(ctx, i) for i in sorted(ctx.rules.team_ids | {ctx.user.id})]
    return [or_(rep.in_(people), team.in_(words) if words else false())]


def _user_text(ctx: Context, user_id: int):
    return str(user_id) if ctx.dialect == "postgresql" else user_id


def _team_words(ctx: Context, team_id: int) -> list[str]:
    """The words a target's team text may use for a team: its name or its key."""
    team = ctx.session.get(Team, team_id)
    return [team.name, team.key] if team is not None else []


def _team_ids(ctx: Context, words: list[str]) -> dict[str, str]:
    """Target team text → team id (as a row key), matching a team's name or key."""
    known = {}
    for team in ctx.session.scalars(select(Team)):
        known.setdefault(team.name.casefold(), str(team.id))
        known.setdefault(team.key.casefold(), str(team.id))
    return {w: known.get(w.casefold(), w) for w in words}


def _actual_grouping(ctx: Context, widget: Mapping):
    _, by, _ = _target_options(widget)
    if by in TIME_LEVELS:
        return grouping(ctx, widget, {"field": widget["date_field"], "bucket": by})
    return grouping(ctx, widget, {"owner": True} if by == "rep" else {"team": True})


def target_compute(ctx: Context, widget: Mapping, data: WidgetData) -> None:
    pipeline = _pipeline(ctx, widget)
    _, by, _ = _target_options(widget)
    amount = _amount_field(widget, pipeline)
    group = _actual_grouping(ctx, widget)
    actual_rows = grouped(ctx, {**widget, "limit": 50}, [Aggregate(Series("actual", ""), func.sum(number(amount)))],
                          [*base_where(ctx, widget), _closed(pipeline, "won")], group)
    actual = {r.key: r.cells[0].value for r in actual_rows}
    key = _target_key(by)
    found = ctx.session.execute(select(key, func.sum(number("amount"))).where(*_target_where(ctx, widget))
                                .group_by(key)).all()
    words = _team_ids(ctx, [str(k) for k, _ in found if k is not None]) if by == "team" else {}
    target: dict[str, float] = {}
    for k, value in found:
        row_key = words.get(str(k), str(k)) if by == "team" else str(k if k is not None else "")
        target[row_key] = target.get(row_key, 0.0) + float(value or 0)
    keys = sorted(set(actual) | set(target))
    raw = [(k, [target.get(k), actual.get(k) or 0.0]) for k in keys]
    kept = ordered(group, raw, int(widget.get("limit") or 50))
    labels = group.labels([k for k, _ in kept])
    data.series = [Series("target", _say("target", ctx.locale), "money"),
                   Series("actual", _say("actual", ctx.locale), "money"),
                   Series("attainment", _say("attainment", ctx.locale), "percent")]
    for k, (goal, done) in kept:
        rate = round(done / goal, 4) if goal else None
        data.rows.append(Row(k, labels.get(k, k), [
            Cell(goal, {"bucket": k, "series": "target"} if goal is not None else None),
            Cell(done, {"bucket": k, "series": "actual"}),
            Cell(rate, {"bucket": k, "series": "actual"} if rate is not None else None)]))


def target_drill(ctx: Context, widget: Mapping, bucket: str, series: str) -> Drill:
    pipeline = _pipeline(ctx, widget)
    targets, by, _ = _target_options(widget)
    if series == "actual":
        return Drill(widget["entity"], [*base_where(ctx, widget), _closed(pipeline, "won"),
                                        _actual_grouping(ctx, widget).where_key(bucket)])
    if series != "target":
        raise DashboardError(f"Widget '{widget['key']}' has no series {series!r}; use target or actual.")
    key = _target_key(by)
    if by == "team":
        words = _team_words(ctx, int(bucket)) if bucket.isdigit() else [bucket]
        match = key.in_(words)
    elif by == "rep":
        match = key == (_user_text(ctx, int(bucket)) if bucket.isdigit() else bucket)
    else:
        match = key == bucket
    return Drill(targets, [*_target_where(ctx, widget), match])


# --- customers: repurchase and churn -------------------------------------------------------------------

def _customer_field(widget: Mapping) -> str:
    return (widget.get("metric") or {}).get("customer_field") or "customer"


def _buyers(ctx: Context, widget: Mapping, period: Period | None = None):
    """Per customer, how many won deals (of the widget's entity, in scope, within the period)."""
    pipeline = _pipeline(ctx, widget)
    customer = cast(json_value(Record.data, _customer_field(widget), numeric=True), Integer)
    return (select(customer.label("cid"), func.count(Record.id).label("deals"))
            .where(*base_where(ctx, widget, period=period), _closed(pipeline, "won"),
                   json_value(Record.data, _customer_field(widget)).is_not(None))
            .group_by(customer).subquery("buyers"))


def _customers(ctx: Context, widget: Mapping, *conditions: ColumnElement) -> list[ColumnElement]:
    """Customer records the viewer may read, among those ``conditions`` pick."""
    entity = catalog.entity(ctx.session, ctx.app, widget["entity"])
    target = entity.by_key[_customer_field(widget)].definition["target"]
    return [Record.app_id == ctx.app.id, Record.entity_key == target, Record.deleted_at.is_(None),
            ctx.rules.scope(target, RecordAction.READ), *conditions]


def _count(ctx: Context, where: list[ColumnElement]) -> float:
    return float(ctx.session.scalar(select(func.count(Record.id)).where(*where)) or 0)


def _repurchase_where(ctx: Context, widget: Mapping, series: str) -> list[ColumnElement]:
    if series not in ("buyers", "repeat"):
        raise DashboardError(f"Widget '{widget['key']}' has no series {series!r}; use buyers or repeat.")
    buyers = _buyers(ctx, widget)
    least = 2 if series == "repeat" else 1
    return _customers(ctx, widget, Record.id.in_(select(buyers.c.cid).where(buyers.c.deals >= least)))


def repurchase_compute(ctx: Context, widget: Mapping, data: WidgetData) -> None:
    buyers = _count(ctx, _repurchase_where(ctx, widget, "buyers"))
    repeat = _count(ctx, _repurchase_where(ctx, widget, "repeat"))
    data.series = [Series("repurchase_rate", _say("repurchase_rate", ctx.locale), "percent"),
                   Series("repeat", _say("repeat", ctx.locale)), Series("buyers", _say("buyers", ctx.locale))]
    data.rows = [Row("", "", [Cell(round(repeat / buyers, 4) if buyers else None, {"bucket": "", "series": "repeat"}),
                              Cell(repeat, {"bucket": "", "series": "repeat"}),
                              Cell(buyers, {"bucket": "", "series": "buyers"})])]


def repurchase_drill(ctx: Context, widget: Mapping, bucket: str, series: str) -> Drill:
    entity = catalog.entity(ctx.session, ctx.app, widget["entity"])
    return Drill(entity.by_key[_customer_field(widget)].definition["target"], _repurchase_where(ctx, widget, series))


def churn_windows(today: date) -> tuple[Period, Period]:
    """The last 12 months (to today) and the 12 before them."""
    def years_back(n: int) -> date:
        try:
            return today.replace(year=today.year - n)
        except ValueError:  # 29 February
            return today.replace(year=today.year - n, day=28)
    tomorrow = today + timedelta(days=1)
    last = Period("last_year", years_back(1) + timedelta(days=1), tomorrow)
    return last, Period("year_before", years_back(2) + timedelta(days=1), last.start)


def _churn_where(ctx: Context, widget: Mapping, series: str) -> list[ColumnElement]:
    last, before = churn_windows(ctx.today)
    earlier = _buyers(ctx, widget, before)
    prior = Record.id.in_(select(earlier.c.cid))
    if series == "prior":
        return _customers(ctx, widget, prior)
    if series != "churned":
        raise DashboardError(f"Widget '{widget['key']}' has no series {series!r}; use churned or prior.")
    recent = _buyers(ctx, widget, last)
    return _customers(ctx, widget, prior, Record.id.not_in(select(recent.c.cid)))


def churn_compute(ctx: Context, widget: Mapping, data: WidgetData) -> None:
    churned = _count(ctx, _churn_where(ctx, widget, "churned"))
    prior = _count(ctx, _churn_where(ctx, widget, "prior"))
    data.series = [Series("churned", _say("churned", ctx.locale)), Series("prior", _say("prior", ctx.locale)),
                   Series("churn_rate", _say("churn_rate", ctx.locale), "percent")]
    data.rows = [Row("", "", [Cell(churned, {"bucket": "", "series": "churned"}),
                              Cell(prior, {"bucket": "", "series": "prior"}),
                              Cell(round(churned / prior, 4) if prior else None, {"bucket": "", "series": "churned"})])]
    data.note = _say("churn_note", ctx.locale, today=ctx.today.isoformat())


def churn_drill(ctx: Context, widget: Mapping, bucket: str, series: str) -> Drill:
    entity = catalog.entity(ctx.session, ctx.app, widget["entity"])
    return Drill(entity.by_key[_customer_field(widget)].definition["target"], _churn_where(ctx, widget, series))


METRICS: dict[str, Metric] = {
    "conversion": Metric(conversion_compute, conversion_drill),
    "win_rate": Metric(win_rate_compute, win_rate_drill),
    "target_vs_actual": Metric(target_compute, target_drill),
    "repurchase_rate": Metric(repurchase_compute, repurchase_drill),
    "churned": Metric(churn_compute, churn_drill),
}
# Which widget options each metric reads (checked when a dashboard is saved).
NEEDS_PIPELINE = frozenset(METRICS)
GROUPABLE = frozenset({"win_rate"})

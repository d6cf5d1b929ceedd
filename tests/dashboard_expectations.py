"""Independent computation of dashboard numbers, in plain Python over the records.

``expected(session, user, app, dashboard, widget, filters, today)`` returns ``{row key: {series key:
value}}`` for one widget, computed without the dashboard engine's SQL: it reads every record the
viewer may read (the access policy's scope is the only shared code) and counts in Python. The tests
compare it with what the dashboard shows; the same function can be run over the demo data::

    from tests.dashboard_expectations import expected
    expected(session, user, app, "sales", "funnel", dashboards.parse_filters(body, {}, today), today)
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from formloom.platform.models import App, Record, StageVisit, Team, TeamMember, User
from formloom.runtime import access, catalog, conditions, pipelines
from formloom.runtime.compiler import field_kinds


def expected(session, user: User, app: App, dashboard: str, widget_key: str, filters, today: date) -> dict:
    body = catalog.published_version(session, app, "dashboard", dashboard).body
    widget = next(w for w in body["widgets"] if w["key"] == widget_key)
    calc = _Calc(session, user, app, widget, filters, today)
    metric = (widget.get("metric") or {}).get("name")
    rows = getattr(calc, metric or "measure")()
    return _limited(widget, rows) if widget.get("limit") and not metric else rows


def _limited(widget: Mapping, rows: dict) -> dict:
    """A widget's ``limit`` keeps the latest dates, the first options, or else the largest values."""
    group_by = widget.get("group_by") or {}
    limit = int(widget["limit"])
    if group_by.get("bucket"):
        keys = sorted(rows)[-limit:]
    else:
        first = lambda key: next(iter(rows[key].values()), None) or 0  # noqa: E731
        keys = sorted(rows, key=lambda key: (-first(key), key))[:limit]
    return {key: rows[key] for key in keys}


def _team_members(session) -> dict[int, set[int]]:
    teams: dict[int, set[int]] = defaultdict(set)
    for team_id, user_id in session.execute(select(TeamMember.team_id, TeamMember.user_id)):
        teams[team_id].add(user_id)
    for team in session.scalars(select(Team)):
        if team.manager_id:
            teams[team.id].add(team.manager_id)
    return teams


class _Calc:
    def __init__(self, session, user, app, widget, filters, today):
        self.session, self.user, self.app, self.widget = session, user, app, widget
        self.filters, self.today = filters, today
        self.rules = access.policy(session, user, app)
        self.teams = _team_members(session)
        self.pipeline = pipelines.pipeline_for(session, app, widget["entity"])

    # --- records -----------------------------------------------------------------------------
    def readable(self, entity_key: str) -> list[Record]:
        return list(self.session.scalars(select(Record).where(
            Record.app_id == self.app.id, Record.entity_key == entity_key, Record.deleted_at.is_(None),
            self.rules.scope(entity_key, access.RecordAction.READ))))

    def date_of(self, record: Record, key: str) -> str | None:
        if key == "created_at" and key not in record.data:
            return record.created_at.strftime("%Y-%m-%dT%H:%M:%S")
        return record.data.get(key)

    def in_period(self, record: Record, period) -> bool:
        key = self.widget.get("date_field")
        if not key or period.start is None:
            return True
        value = self.date_of(record, key)
        return value is not None and period.start.isoformat() <= value[:10] < period.end.isoformat()

    def owner_ok(self, record: Record) -> bool:
        if self.filters.team_id is not None and record.owner_id not in self.teams.get(self.filters.team_id, set()):
            return False
        return self.filters.rep_id is None or record.owner_id == self.filters.rep_id

    def base(self, period=None) -> list[Record]:
        entity = catalog.entity(self.session, self.app, self.widget["entity"])
        kinds = field_kinds([f.definition for f in entity.fields], {})
        out = []
        for record in self.readable(self.widget["entity"]):
            if self.widget.get("filter") and not conditions.evaluate(self.widget["filter"], record.data, kinds,
                                                                     today=self.today, user_id=self.user.id):
                continue
            if self.in_period(record, period or self.filters.period) and self.owner_ok(record):
                out.append(record)
        return out

    # --- grouping ----------------------------------------------------------------------------
    def keys_of(self, record: Record, group: Mapping | None) -> list[str]:
        if not group:
            return [""]
        if group.get("owner"):
            return [str(record.owner_id) if record.owner_id else ""]
        if group.get("team"):
            found = [str(t) for t, members in self.teams.items() if record.owner_id in members]
            return found or [""]
        value = self.date_of(record, group["field"])
        if value is None or value == "":
            return [""]
        bucket = group.get("bucket")
        if bucket is None:
            return [str(value)]
        if bucket == "due":
            return ["overdue" if value < self.today.isoformat() else "due"]
        day = date.fromisoformat(value[:10])
        return [{"year": f"{day.year}", "month": f"{day.year}-{day.month:02d}",
                 "quarter": f"{day.year}-Q{(day.month + 2) // 3}",
                 "week": (day - timedelta(days=day.weekday())).isoformat()}[bucket]]

    # --- plain measures ----------------------------------------------------------------------
    def measure(self) -> dict:
        rows = self._measure(self.base())
        if self.widget.get("compare") and self.filters.period.start is not None:
            before = self._measure(self.base(self.filters.period.previous()))
            for key, values in rows.items():
                values["previous"] = before.get(key, {}).get("value", 0.0)
        return rows

    def _measure(self, records: list[Record]) -> dict:
        measure = self.widget["measure"]
        groups: dict[str, list[float]] = defaultdict(list)
        counts: Counter = Counter()
        for record in records:
            for key in self.keys_of(record, self.widget.get("group_by")):
                counts[key] += 1
                if measure["op"] != "count":
                    value = record.data.get(measure["field"])
                    if value is not None:
                        weight = 1.0
                        if measure["op"] == "weighted":
                            stage = self.pipeline.by_key.get(record.data.get(self.pipeline.stage_field))
                            weight = (stage.probability or 0) / 100 if stage else 0.0
                        groups[key].append(float(value) * weight)
        keys = set(counts) or ({""} if not self.widget.get("group_by") else set())
        out = {}
        for key in keys:
            values = groups.get(key, [])
            out[key] = {"value": {"count": float(counts[key]), "sum": sum(values), "weighted": sum(values),
                                  "avg": (sum(values) / len(values)) if values else None}[measure["op"]]}
        return out

    # --- metrics -----------------------------------------------------------------------------
    def _outcome(self, record: Record) -> str | None:
        stage = self.pipeline.by_key.get(record.data.get(self.pipeline.stage_field))
        return stage.outcome.value if stage else None

    def conversion(self) -> dict:
        funnel = [s for s in self.pipeline.stages if s.outcome is not pipelines.Outcome.LOST]
        position = {s.key: i for i, s in enumerate(funnel)}
        furthest: dict[int, int] = {}
        for record_id, stage in self.session.execute(select(StageVisit.record_id, StageVisit.stage).where(
                StageVisit.app_id == self.app.id, StageVisit.pipeline_key == self.pipeline.key)):
            furthest[record_id] = max(furthest.get(record_id, -1), position.get(stage, -1))
        records = [r for r in self.base() if r.id in furthest]
        amount = self.widget["metric"].get("amount_field") or self.pipeline.amount_field
        out = {}
        reached = [sum(1 for r in records if furthest[r.id] >= i) for i in range(len(funnel))]
        for i, stage in enumerate(funnel):
            out[stage.key] = {
                "reached": float(reached[i]),
                "amount": float(sum(float(r.data.get(amount) or 0) for r in records if furthest[r.id] >= i)),
                "conversion": reached[i + 1] / reached[i] if i + 1 < len(funnel) and reached[i] else None}
        return out

    def win_rate(self) -> dict:
        out: dict[str, dict[str, Any]] = {}
        for record in self.base():
            outcome = self._outcome(record)
            if outcome not in ("won", "lost"):
                continue
            for key in self.keys_of(record, self.widget.get("group_by")):
                row = out.setdefault(key, {"won": 0.0, "lost": 0.0})
                row[outcome] += 1
        if not out and not self.widget.get("group_by"):
            out[""] = {"won": 0.0, "lost": 0.0}
        for row in out.values():
            closed = row["won"] + row["lost"]
            row["win_rate"] = row["won"] / closed if closed else None
        return out

    def _target_type(self, by: str) -> str:
        if by in ("year", "quarter", "month"):
            return by
        return {"this_month": "month", "this_quarter": "quarter", "last_12_months": "month"}.get(
            self.filters.period.key, "year")

    def target_vs_actual(self) -> dict:
        metric = self.widget["metric"]
        by, level = metric.get("by", "month"), metric.get("level", "team")
        amount = metric.get("amount_field") or self.pipeline.amount_field
        actual: dict[str, float] = defaultdict(float)
        group = ({"owner": True} if by == "rep" else {"team": True} if by == "team"
                 else {"field": self.widget["date_field"], "bucket": by})
        for record in self.base():
            if self._outcome(record) == "won":
                for key in self.keys_of(record, group):
                    actual[key] += float(record.data.get(amount) or 0)
        target: dict[str, float] = defaultdict(float)
        kind = self._target_type(by)
        names = {}
        for team in self.session.scalars(select(Team)):
            names.setdefault(team.name.casefold(), str(team.id))
            names.setdefault(team.key.casefold(), str(team.id))
        period = self.filters.period
        for record in self.readable(metric.get("targets", "target")):
            data = record.data
            if data.get("period_type") != kind:
                continue
            rep_level = by == "rep" or (by in ("year", "quarter", "month") and level == "rep")
            if rep_level != (data.get("rep") is not None) or (not rep_level and not data.get("team")):
                continue
            first = {"year": 1, "quarter": (data.get("quarter") or 1) * 3 - 2, "month": data.get("month") or 1}[kind]
            start = date(int(data["year"]), int(first), 1)
            if period.start is not None and not (period.start <= start < period.end):
                continue
            if not self._target_in_view(data):
                continue
            if self.filters.rep_id is not None and data.get("rep") != self.filters.rep_id:
                continue
            if self.filters.team_id is not None:
                team = self.session.get(Team, self.filters.team_id)
                if data.get("rep") not in self.teams.get(team.id, set()) and data.get("team") not in (team.name,
                                                                                                     team.key):
                    continue
            key = {"year": f"{data['year']}", "quarter": f"{data['year']}-Q{data.get('quarter')}",
                   "month": f"{data['year']}-{int(data.get('month') or 0):02d}",
                   "rep": str(data.get("rep")),
                   "team": names.get(str(data.get("team")).casefold(), str(data.get("team")))}[by]
            target[key] += float(data.get("amount") or 0)
        out = {}
        for key in set(actual) | set(target):
            goal = target.get(key)
            out[key] = {"target": goal, "actual": actual.get(key, 0.0),
                        "attainment": actual.get(key, 0.0) / goal if goal else None}
        return out

    def _target_in_view(self, data: Mapping) -> bool:
        """A viewer of their own deals sees their own targets; of their team's, the team's people and teams."""
        scope = self.rules.grant(self.widget["entity"], access.RecordAction.READ).scope
        if scope is None or scope is access.Scope.ALL:
            return True
        me = self.user.id
        if scope is access.Scope.OWN:
            return data.get("rep") == me
        mine = [team for team in self.session.scalars(select(Team))
                if team.manager_id == me or me in self.teams.get(team.id, set())]
        people = {me} | {person for team in mine for person in self.teams.get(team.id, set())}
        return data.get("rep") in people or data.get("team") in {w for t in mine for w in (t.name, t.key)}

    def _won_by_customer(self, period=None) -> Counter:
        field = self.widget["metric"].get("customer_field", "customer")
        found: Counter = Counter()
        for record in self.base(period):
            if self._outcome(record) == "won" and record.data.get(field) is not None:
                found[int(record.data[field])] += 1
        return found

    def _readable_customers(self) -> set[int]:
        entity = catalog.entity(self.session, self.app, self.widget["entity"])
        field = self.widget["metric"].get("customer_field", "customer")
        return {r.id for r in self.readable(entity.by_key[field].definition["target"])}

    def repurchase_rate(self) -> dict:
        won = self._won_by_customer()
        readable = self._readable_customers()
        buyers = sum(1 for c, n in won.items() if n >= 1 and c in readable)
        repeat = sum(1 for c, n in won.items() if n >= 2 and c in readable)
        return {"": {"buyers": float(buyers), "repeat": float(repeat),
                     "repurchase_rate": repeat / buyers if buyers else None}}

    def churned(self) -> dict:
        from formloom.runtime.dashboards import Period

        today = self.today
        def back(n: int) -> date:
            try:
                return today.replace(year=today.year - n)
            except ValueError:
                return today.replace(year=today.year - n, day=28)
        last = Period("x", back(1) + timedelta(days=1), today + timedelta(days=1))
        before = Period("y", back(2) + timedelta(days=1), last.start)
        readable = self._readable_customers()
        prior = {c for c in self._won_by_customer(before) if c in readable}
        recent = set(self._won_by_customer(last))
        churned = prior - recent
        return {"": {"churned": float(len(churned)), "prior": float(len(prior)),
                     "churn_rate": len(churned) / len(prior) if prior else None}}


def shown(data) -> dict:
    """A widget's rows as the same ``{row key: {series key: value}}`` shape."""
    return {row.key: {s.key: c.value for s, c in zip(data.series, row.cells)} for row in data.rows}


def same(actual: dict, wanted: dict) -> bool:
    """Equal up to rounding (the engine rounds to 4 decimals); rows of only zeros may be left out."""
    keys = set(actual) | set(wanted)
    for key in keys:
        a, w = actual.get(key, {}), wanted.get(key, {})
        for series in set(a) | set(w):
            x, y = a.get(series), w.get(series)
            if x is None and y is None:
                continue
            if (x is None) != (y is None) and not ((x or 0) == 0 and (y or 0) == 0):
                return False
            if x is not None and y is not None and abs(x - y) > 1e-3 * max(1.0, abs(y)):
                return False
    return True



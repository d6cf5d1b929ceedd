"""Cross-reference checks of a dashboard definition: every widget's entity, fields and metric."""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from formloom.platform.errors import Problem

NUMERIC_TYPES = ("integer", "decimal", "currency", "percent", "rating", "formula")
DATE_TYPES = ("date", "datetime")
GROUP_TYPES = ("select", "user", "relation")
TARGET_FIELDS = ("period_type", "year", "quarter", "month", "rep", "team", "amount")
CHART_TYPES_NEEDING_ROWS = ("bar", "column", "line", "funnel", "donut")


def _fields(body: Mapping | None) -> dict[str, dict]:
    fields = (body or {}).get("fields")
    return {f["key"]: f for f in fields if isinstance(f, dict) and isinstance(f.get("key"), str)} \
        if isinstance(fields, list) else {}


def _pipeline_of(ctx: Any, entity_key: str) -> Mapping | None:
    return next((p for p in ctx.pipelines.values() if isinstance(p, dict) and p.get("entity") == entity_key), None)


def check_dashboard(body: dict, ctx: Any, broken: set[str]) -> Iterator[Problem]:
    """Widgets named once, of entities that exist, reading fields of the right types."""
    seen: set[str] = set()
    for i, widget in enumerate(body.get("widgets") or []):
        if not isinstance(widget, dict):
            continue
        path = f"$.widgets[{i}]"
        if isinstance(widget.get("key"), str):
            if widget["key"] in seen:
                yield Problem(f"{path}.key", f"Widget key '{widget['key']}' is used twice; keys must be unique.")
            seen.add(widget["key"])
        yield from check_widget(widget, path, ctx)


def check_widget(widget: dict, path: str, ctx: Any) -> Iterator[Problem]:
    entity_key = widget.get("entity")
    if not isinstance(entity_key, str):
        return
    if entity_key not in ctx.entities:
        yield Problem(f"{path}.entity", f"App '{ctx.app_key}' has no entity '{entity_key}'.")
        return
    fields = _fields(ctx.entities[entity_key])
    has_measure, has_metric = "measure" in widget, "metric" in widget
    if has_measure == has_metric:
        yield Problem(path, "A widget has either a 'measure' (count, sum, avg, weighted) or a named 'metric'; "
                            "give exactly one.")
    if isinstance(widget.get("measure"), dict):
        yield from _check_measure(widget["measure"], f"{path}.measure", entity_key, fields, ctx)
    if isinstance(widget.get("metric"), dict):
        yield from _check_metric(widget, f"{path}.metric", entity_key, fields, ctx)
    if isinstance(widget.get("group_by"), dict):
        yield from _check_group(widget["group_by"], f"{path}.group_by", entity_key, fields)
    date_key = widget.get("date_field")
    if isinstance(date_key, str) and not (date_key == "created_at" and date_key not in fields):
        yield from _field_of(f"{path}.date_field", entity_key, fields, date_key, DATE_TYPES,
                             "a date or date-time field")
    if isinstance(widget.get("filter"), dict):
        yield from _check_filter(widget["filter"], f"{path}.filter", fields, ctx)
    kind = widget.get("type")
    if kind == "kpi" and widget.get("group_by"):
        yield Problem(f"{path}.group_by", "A kpi widget shows one number; remove 'group_by' or use a chart type.")
    if widget.get("compare") and kind != "kpi":
        yield Problem(f"{path}.compare", "Only a kpi widget compares with the previous period.")
    if widget.get("compare") and not date_key:
        yield Problem(f"{path}.compare", "Comparing with the previous period needs 'date_field' (which dates the "
                                         "period applies to).")
    if kind in CHART_TYPES_NEEDING_ROWS and has_measure and not widget.get("group_by"):
        yield Problem(f"{path}.group_by", f"A {kind} chart needs 'group_by' (a select, user or relation field, "
                                          f"the owner, the team, or a date field with a bucket).")


def _field_of(path: str, entity_key: str, fields: dict, key: Any, types: tuple[str, ...],
              words: str) -> Iterator[Problem]:
    if not isinstance(key, str):
        return
    if key not in fields:
        yield Problem(path, f"Entity '{entity_key}' has no field '{key}'.")
    elif fields[key].get("type") not in types:
        yield Problem(path, f"'{key}' must be {words}; it is of type {fields[key].get('type')}.")
    elif fields[key].get("type") == "formula" and fields[key].get("result", "number") != "number" \
            and types == NUMERIC_TYPES:
        yield Problem(path, f"'{key}' must be {words}; its formula gives {fields[key].get('result')} values.")


def _check_measure(measure: dict, path: str, entity_key: str, fields: dict, ctx: Any) -> Iterator[Problem]:
    op = measure.get("op")
    if op == "count" and "field" in measure:
        yield Problem(f"{path}.field", "A count counts records; remove 'field' (or use sum or avg).")
    if op in ("sum", "avg", "weighted"):
        if "field" not in measure:
            yield Problem(f"{path}.field", f"'{op}' needs 'field', a number field of '{entity_key}'.")
        yield from _field_of(f"{path}.field", entity_key, fields, measure.get("field"), NUMERIC_TYPES, "a number field")
    if op == "weighted" and _pipeline_of(ctx, entity_key) is None:
        yield Problem(f"{path}.op", f"'weighted' multiplies by the stage probability of the entity's pipeline; "
                                    f"'{entity_key}' has no pipeline.")


def _check_group(group: dict, path: str, entity_key: str, fields: dict) -> Iterator[Problem]:
    choices = [k for k in ("field", "owner", "team") if k in group]
    if len(choices) != 1:
        yield Problem(path, 'Group by one thing: {"field": key} (with "bucket" for a date), {"owner": true} '
                            'or {"team": true}.')
        return
    if "field" not in group:
        if "bucket" in group:
            yield Problem(f"{path}.bucket", "'bucket' applies to a date field only.")
        return
    key = group["field"]
    if key == "created_at" and key not in fields:
        if "bucket" not in group or group["bucket"] == "due":
            yield Problem(f"{path}.bucket", "Grouping by when records were created needs 'bucket' (week, month, "
                                            "quarter or year).")
        return
    if key not in fields:
        yield Problem(f"{path}.field", f"Entity '{entity_key}' has no field '{key}'.")
        return
    type_name = fields[key].get("type")
    if type_name in DATE_TYPES:
        if "bucket" not in group:
            yield Problem(f"{path}.bucket", f"'{key}' is a date: give 'bucket' (week, month, quarter, year, "
                                            f"or due for overdue / not yet due).")
    elif type_name in GROUP_TYPES:
        if "bucket" in group:
            yield Problem(f"{path}.bucket", f"'bucket' applies to a date field; '{key}' is of type {type_name}.")
    else:
        yield Problem(f"{path}.field", f"Group by a select, user, relation or date field; '{key}' is of type "
                                       f"{type_name}.")


def _check_filter(condition: dict, path: str, fields: dict, ctx: Any) -> Iterator[Problem]:
    from formloom.runtime.access import when_problems
    from formloom.runtime.compiler import field_kinds

    kinds = field_kinds(list(fields.values()), ctx.entities)
    for where, message in when_problems(condition, kinds, path):
        yield Problem(where, message.replace("A scope condition", "A widget filter"))


def _check_metric(widget: dict, path: str, entity_key: str, fields: dict, ctx: Any) -> Iterator[Problem]:
    from formloom.runtime.metrics import GROUPABLE

    metric = widget["metric"]
    name = metric.get("name")
    if not isinstance(name, str):
        return
    if _pipeline_of(ctx, entity_key) is None:
        yield Problem(f"{path}.name", f"Metric '{name}' reads the stages of a pipeline; '{entity_key}' has none.")
    if widget.get("group_by") and name not in GROUPABLE:
        yield Problem(path.replace(".metric", ".group_by"), f"Metric '{name}' forms its own rows; remove 'group_by'.")
    if "amount_field" in metric:
        yield from _field_of(f"{path}.amount_field", entity_key, fields, metric["amount_field"], NUMERIC_TYPES,
                             "a number field")
    if name in ("win_rate", "target_vs_actual", "churned") and not widget.get("date_field"):
        yield Problem(path.replace(".metric", ".date_field"), f"Metric '{name}' needs 'date_field', the date a "
                                                              f"deal closed (for example closed_on).")
    if name in ("repurchase_rate", "churned"):
        key = metric.get("customer_field", "customer")
        yield from _field_of(f"{path}.customer_field", entity_key, fields, key, ("relation",), "a relation field")
    if name == "target_vs_actual":
        yield from _check_targets(metric, path, ctx)
    for option in ("targets", "by", "level"):
        if option in metric and name != "target_vs_actual":
            yield Problem(f"{path}.{option}", f"'{option}' belongs to metric target_vs_actual; remove it.")


def _check_targets(metric: dict, path: str, ctx: Any) -> Iterator[Problem]:
    targets = metric.get("targets", "target")
    if targets not in ctx.entities:
        yield Problem(f"{path}.targets", f"App '{ctx.app_key}' has no entity '{targets}' to read targets from.")
        return
    missing = [k for k in TARGET_FIELDS if k not in _fields(ctx.entities[targets])]
    if missing:
        yield Problem(f"{path}.targets", f"A targets entity needs the fields {', '.join(TARGET_FIELDS)}; "
                                         f"'{targets}' lacks {', '.join(missing)}.")

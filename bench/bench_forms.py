"""Benchmark: what the form engine costs to render and to validate a large form, per second.

The form is a 41-field ``deal``: 40 fields of most field types (formulas, conditions, a
cascading select, composites) plus a ``lines`` sub-table of 5 columns holding 20 rows. Every
measurement runs in this one process, with no database work and no HTTP server:

1. validate  ``validate_values(entity, raw)`` on form-shaped input (strings, as a browser posts
             them): coercion, visibility and required-when conditions, formulas, the submission
             check and the JSON Schema; no reference resolver.
2. render    the edit page of a record holding that document: a fresh request context, the form
             instance filled from the document, ``bind_choices``, ``form_logic`` and
             ``render_template("record_form.html")`` with ``base.html`` around it, as the view
             does. Also timed: the widgets alone (``str(form[attr])`` for every field, cell by
             cell for the sub-table rows) in one long-lived request context.
3. submit    a urlencoded POST of the 40 fields and 20 rows: a request context over the encoded
             body, the form instance parsing it, ``form_values``, then ``validate_values``.
             Also timed: the parsing alone, without ``validate_values``.
4. baselines (a) ``entity.validator.is_valid(document)``: the compiled JSON Schema alone on the
             stored document; (b) a ``json.dumps`` + ``json.loads`` round trip of the document;
             (c) a plain Jinja2 template of a trivial 40-input form.

Run from the repository root::

    /work/venv/bin/python bench/bench_forms.py            # about 40 s
    /work/venv/bin/python bench/bench_forms.py --quick    # a few seconds, rougher figures
    /work/venv/bin/python bench/bench_forms.py --profile  # also cProfile the submission and the page

This is not a test: it imports nothing from ``tests/``.
"""
from __future__ import annotations

import argparse
import cProfile
import importlib.metadata
import io
import json
import os
import platform
import pstats
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ROWS = 20
ENTITY_KEY = "deal"


# --- the definition -------------------------------------------------------------------------

PROVINCES = [{"value": "gd", "label": {"en": "Guangdong", "zh-CN": "广东"}},
             {"value": "zj", "label": {"en": "Zhejiang", "zh-CN": "浙江"}},
             {"value": "js", "label": {"en": "Jiangsu", "zh-CN": "江苏"}}]
CITIES = [{"value": "sz", "label": {"en": "Shenzhen", "zh-CN": "深圳"}, "parent": "gd"},
          {"value": "gz", "label": {"en": "Guangzhou", "zh-CN": "广州"}, "parent": "gd"},
          {"value": "hz", "label": {"en": "Hangzhou", "zh-CN": "杭州"}, "parent": "zj"},
          {"value": "nb", "label": {"en": "Ningbo", "zh-CN": "宁波"}, "parent": "zj"},
          {"value": "nj", "label": {"en": "Nanjing", "zh-CN": "南京"}, "parent": "js"},
          {"value": "sh", "label": {"en": "Shanghai (any province)", "zh-CN": "上海"}}]


def options(*values: str) -> list[dict]:
    return [{"value": v, "label": v.replace("_", " ").capitalize()} for v in values]


def deal_body() -> dict:
    """40 fields of most types plus a 5-column sub-table; no member, relation or file fields."""
    big_deal = {"all": [{"field": "budget", "op": "gte", "value": "10000.00"},
                        {"field": "stage", "op": "in", "value": ["proposal", "negotiation", "won"]}]}
    fields = [
        {"key": "title", "type": "text", "label": {"en": "Deal", "zh-CN": "商机"}, "required": True,
         "max_length": 120},
        {"key": "reference", "type": "text", "label": "Reference", "max_length": 40, "placeholder": "QT-..."},
        {"key": "summary", "type": "textarea", "label": "Summary", "max_length": 2000},
        {"key": "notes", "type": "textarea", "label": "Notes", "help": "Visible to the whole team."},
        {"key": "seats", "type": "integer", "label": "Seats", "min": 1, "max": 10000},
        {"key": "weight", "type": "decimal", "label": "Weight (t)", "precision": 3, "min": 0},
        {"key": "budget", "type": "currency", "label": "Budget", "min": 0, "currency": "CNY"},
        {"key": "discount", "type": "percent", "label": "Discount", "min": 0, "max": 100},
        {"key": "probability", "type": "percent", "label": "Probability", "min": 0, "max": 100},
        {"key": "start_date", "type": "date", "label": "Start", "min": "2020-01-01"},
        {"key": "close_date", "type": "date", "label": "Expected close",
         "required_when": {"field": "stage", "op": "in", "value": ["negotiation", "won"]}},
        {"key": "renewal_date", "type": "date", "label": "Renewal",
         "visible_when": {"field": "start_date", "op": "not_empty"},
         "required_when": {"field": "labels", "op": "contains", "value": "renewal"}},
        {"key": "meeting_at", "type": "datetime", "label": "Next meeting"},
        {"key": "followup_at", "type": "datetime", "label": "Follow-up",
         "visible_when": {"any": [{"field": "strategic", "op": "eq", "value": True},
                                  {"field": "channels", "op": "contains", "value": "partner"}]}},
        {"key": "call_at", "type": "time", "label": "Best time to call"},
        {"key": "effort", "type": "duration", "label": "Effort"},
        {"key": "strategic", "type": "boolean", "label": "Strategic"},
        {"key": "needs_approval", "type": "boolean", "label": "Needs approval"},
        {"key": "stage", "type": "select", "label": "Stage", "default": "lead",
         "options": options("lead", "proposal", "negotiation", "won", "lost")},
        {"key": "province", "type": "select", "label": "Province", "options": PROVINCES},
        {"key": "city", "type": "select", "label": "City", "options": CITIES, "filter_by": "province"},
        {"key": "channels", "type": "multiselect", "label": "Channels",
         "options": options("direct", "partner", "online", "event"), "max_items": 3},
        {"key": "labels", "type": "tags", "label": "Tags", "max_items": 10,
         "suggestions": ["vip", "renewal", "urgent"]},
        {"key": "contact_email", "type": "email", "label": "Contact e-mail", "required": True},
        {"key": "approver_email", "type": "email", "label": "Approver e-mail",
         "required_when": {"field": "needs_approval", "op": "eq", "value": True}},
        {"key": "contact_phone", "type": "phone", "label": "Contact phone"},
        {"key": "mobile", "type": "phone", "label": "Mobile"},
        {"key": "website", "type": "url", "label": "Website"},
        {"key": "priority", "type": "rating", "label": "Priority"},
        {"key": "satisfaction", "type": "rating", "label": "Satisfaction", "max": 10},
        {"key": "ship_to", "type": "address", "label": "Ship to"},
        {"key": "billing_address", "type": "address", "label": "Billing address", "style": "free"},
        {"key": "site", "type": "geolocation", "label": "Site"},
        {"key": "approval_note", "type": "textarea", "label": "Approval note", "required": True,
         "visible_when": {"field": "needs_approval", "op": "eq", "value": True}},
        {"key": "discount_reason", "type": "text", "label": "Discount reason",
         "visible_when": {"field": "discount", "op": "gt", "value": 0},
         "required_when": {"field": "discount", "op": "gt", "value": 10}},
        {"key": "big_deal_note", "type": "text", "label": "Big-deal note", "visible_when": big_deal},
        {"key": "lines", "type": "table", "label": "Line items", "min_rows": 1, "max_rows": 50,
         "fields": [
             {"key": "product", "type": "text", "label": "Product", "required": True, "max_length": 120},
             {"key": "qty", "type": "integer", "label": "Qty", "min": 1, "required": True},
             {"key": "price", "type": "currency", "label": "Unit price", "min": 0},
             {"key": "delivery", "type": "date", "label": "Delivery"},
             {"key": "amount", "type": "formula", "label": "Amount", "expression": "qty * price",
              "currency": "CNY"}]},
        {"key": "total", "type": "formula", "label": "Total", "expression": "SUM(lines.qty * lines.price)",
         "currency": "CNY"},
        {"key": "net", "type": "formula", "label": "Net total",
         "expression": "ROUND(total * (1 - discount / 100), 2)", "currency": "CNY"},
        {"key": "line_count", "type": "formula", "label": "Lines", "expression": "COUNT(lines.product)",
         "precision": 0},
        {"key": "display_title", "type": "formula", "label": "Display title", "result": "text",
         "expression": "CONCAT(title, ' / ', reference)"},
    ]
    return {"formloom": 1, "kind": "entity", "key": ENTITY_KEY, "label": {"en": "Deal", "zh-CN": "商机"},
            "title_field": "title", "fields": fields,
            "checks": [{"condition": {"any": [{"field": "close_date", "op": "empty"},
                                              {"field": "close_date", "op": "gte", "value": {"$field": "start_date"}}]},
                        "field": "close_date", "message": "The expected close must not be before the start."}]}


# --- the input --------------------------------------------------------------------------------

def line_rows() -> list[dict[str, str]]:
    """ROWS sub-table rows as the form posts them (the read-only formula cell comes back empty)."""
    return [{"product": f"Licence pack {i + 1:02d}", "qty": str(1 + i % 7),
             "price": f"{1 + (i * 1373) % 100000 / 100:.2f}",
             "delivery": (date(2026, 12, 1) + timedelta(days=i)).isoformat(), "amount": ""}
            for i in range(ROWS)]


def form_input() -> dict[str, Any]:
    """Raw values of the 36 typed fields and the 20 rows: strings, lists and dicts of strings."""
    return {
        "title": "Acme three-year renewal", "reference": "QT-2026-0042",
        "summary": "Renewal of 250 seats for three years.\r\nIncludes on-site training in Q1.",
        "notes": "Budget owner: CFO.\r\nProcurement wants the quote before 15 December.\r\n" * 3,
        "seats": "250", "weight": "12.345", "budget": "128500.00", "discount": "12.5", "probability": "60.0",
        "start_date": "2026-11-27", "close_date": "2026-12-31", "renewal_date": "2027-12-31",
        "meeting_at": "2026-12-03T10:30", "followup_at": "2026-12-10T09:00", "call_at": "14:30",
        "effort": "1h 30m", "strategic": "y", "needs_approval": "y", "stage": "negotiation",
        "province": "gd", "city": "sz", "channels": ["direct", "partner"], "labels": "vip, renewal, 渠道",
        "contact_email": "buyer@acme.example.com", "approver_email": "cfo@acme.example.com",
        "contact_phone": "+86 138-0000-0001", "mobile": "+86 139 1111 2222",
        "website": "https://www.acme.example.com/renewal", "priority": "4", "satisfaction": "8",
        "ship_to": {"province": "广东省", "city": "深圳市", "district": "南山区", "street": "科技园路1号"},
        "billing_address": {"street": "1 Market Street", "city": "San Francisco", "postcode": "94105",
                            "country": "USA"},
        "site": {"lat": "22.543096", "lng": "114.057865"},
        "approval_note": "A discount above 10% needs the CFO's sign-off.",
        "discount_reason": "Three-year commitment", "big_deal_note": "Board approval above 100k",
        "lines": line_rows(),
    }


def post_pairs(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """The same input as the (name, value) pairs a browser posts for the generated form."""
    from formloom.runtime.forms import attr_name

    pairs = []
    for key, value in raw.items():
        name = attr_name(key)
        if key == "lines":
            pairs += [(f"{name}-{i}-{attr_name(column)}", cell) for i, row in enumerate(value)
                      for column, cell in row.items()]
        elif isinstance(value, dict):
            pairs += [(f"{name}-{part}", text) for part, text in value.items()]
        elif isinstance(value, list):
            pairs += [(name, item) for item in value]
        else:
            pairs.append((name, value))
    return pairs


# --- timing ------------------------------------------------------------------------------------

@dataclass
class Timing:
    name: str
    what: str
    seconds_per_op: list[float]  # one figure per repeat
    iterations: int  # per repeat
    ratio_to: str | None = None  # "a" or "c"

    @property
    def best(self) -> float:
        """The fastest repeat: the one least disturbed by anything else on the machine."""
        return min(self.seconds_per_op)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds_per_op)


def measure(name: str, what: str, op: Callable[[], object], *, seconds: float, repeats: int, warmup: float,
            ratio_to: str | None = None) -> Timing:
    """Warm ``op`` up, size a repeat to about ``seconds``, and time ``repeats`` repeats."""
    count, started = 0, time.perf_counter()
    while count < 3 or time.perf_counter() - started < warmup:
        op()
        count += 1
    per_op = (time.perf_counter() - started) / count
    iterations = max(1, int(seconds / per_op))
    results = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(iterations):
            op()
        results.append((time.perf_counter() - started) / iterations)
    return Timing(name, what, results, iterations, ratio_to)


# --- the bench -------------------------------------------------------------------------------

class Bench:
    """The compiled entity, the Flask app and one callable per measurement."""

    def __init__(self, tmpdir: str):
        from flask import g, render_template
        from jinja2 import Environment
        from werkzeug.datastructures import MultiDict
        from werkzeug.test import EnvironBuilder

        from formloom.builder.checks import AppContext, check_definition
        from formloom.platform.app import create_app
        from formloom.platform.models import App, Record, User
        from formloom.runtime import catalog
        from formloom.runtime.compiler import checksum, compile_entity
        from formloom.runtime.fields import DisplayContext
        from formloom.runtime.forms import attr_name, bind_choices, compile_form, form_values, initial_data
        from formloom.runtime.labels import text_of
        from formloom.runtime.validation import Situation, validate_values
        from formloom.runtime.views import form_logic

        body = deal_body()
        problems = check_definition(body, AppContext("bench", entities={ENTITY_KEY: body}))
        assert not problems, "the bench definition has problems:\n" + "\n".join(map(str, problems))
        self.entity = entity = compile_entity(body, 1, checksum(body))
        self.raw = raw = form_input()
        self.document = document = validate_values(entity, raw)
        assert set(document) == set(entity.by_key), sorted(set(entity.by_key) - set(document))
        assert len(document["lines"]) == ROWS and document["total"] and document["net"], document
        self.validate_values = validate_values

        self.flask_app = flask_app = create_app({
            "TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{tmpdir}/bench.db",
            "INSTANCE_PATH": tmpdir})
        self.compiled = compiled = compile_form(entity, catalog.default_form(entity), "en")
        user = User(id=1, username="rep", display_name="Rep One", locale="en", is_active=True)
        app = App(id=1, key="bench", label={"en": "Bench", "zh-CN": "基准"})
        record = Record(id=1, entity_key=ENTITY_KEY, entity_version=1, data=document,
                        title=document["title"], version=3)
        page_environ = EnvironBuilder(path=f"/apps/bench/{ENTITY_KEY}/1/edit").get_environ()
        locked = {own for s in entity.fields if s.definition.get("fill_locked") for own in s.definition.get("fill", {})}
        attrs = [attr_name(key) for key in compiled.keys]

        def render_page() -> str:
            # Like runtime.views._form_page for GET on an existing record. The definition has no
            # member, relation or file fields, so bind_choices never reads the database (hence no
            # session), the page holds no files, and the display context names nobody.
            with flask_app.request_context(dict(page_environ)):
                g.user = user
                situation = Situation(user_id=user.id, record_id=record.id,
                                      extra_visibility=compiled.section_conditions)
                form = compiled.form_class(formdata=None, data=initial_data(entity, compiled, record.data))
                bind_choices(None, user, app, entity, compiled, form, lambda target: "", "Search")
                return render_template(
                    "record_form.html", app=app, entity=entity, compiled=compiled, form=form, record=record,
                    errors={}, attr_name=attr_name, version=record.version, conflict=None,
                    nav=[(ENTITY_KEY, entity.body["label"])], files={}, form_key=None,
                    logic=form_logic(entity, compiled, user.id, situation), locked=locked,
                    ctx=DisplayContext("en"), shown=record.data)

        def render_widgets() -> list[str]:
            form = compiled.form_class(formdata=None, data=initial_data(entity, compiled, document))
            out = []
            for attr in attrs:
                field = form[attr]
                if field.type == "FieldList":
                    out += [str(cell) for row in field for cell in row.form]
                else:
                    out.append(str(field))
            return out

        self.render_page, self.render_widgets = render_page, render_widgets
        self.widgets_context = flask_app.test_request_context()

        # The POST: encoded once (as test_request_context would), parsed afresh every time.
        builder = EnvironBuilder(path=f"/apps/bench/{ENTITY_KEY}/new", method="POST",
                                 data=MultiDict(post_pairs(raw)))
        environ = builder.get_environ()
        posted = environ["wsgi.input"].read()
        builder.close()
        self.post_bytes = len(posted)

        def parse() -> dict:
            env = dict(environ, **{"wsgi.input": io.BytesIO(posted)})
            with flask_app.request_context(env):
                return form_values(compiled.form_class(), compiled, entity)

        def submit() -> dict:
            env = dict(environ, **{"wsgi.input": io.BytesIO(posted)})
            with flask_app.request_context(env):
                return validate_values(entity, form_values(compiled.form_class(), compiled, entity))

        self.parse, self.submit = parse, submit

        # Baseline (c): a plain Jinja2 form of 40 inputs, autoescaped, compiled once.
        self.trivial_fields = [{"name": attr_name(spec.key), "label": text_of(spec.definition["label"], "en"),
                                "value": str(document.get(spec.key, ""))[:80]}
                               for spec in entity.fields if spec.key != "lines"]
        assert len(self.trivial_fields) == 40
        self.trivial_template = Environment(autoescape=True).from_string(
            '<form method="post" class="record-form">{% for f in fields %}<div class="field">'
            '<label class="label" for="{{ f.name }}">{{ f.label }}</label>'
            '<input type="text" id="{{ f.name }}" name="{{ f.name }}" value="{{ f.value }}"></div>'
            '{% endfor %}<button type="submit">Save</button></form>')

    def sanity_checks(self) -> dict[str, int]:
        """The operations do what they claim; returns output sizes for the report."""
        submitted = self.submit()
        assert submitted == self.document, "the posted form and the raw input validate differently"
        page = self.render_page()
        assert page.count("<tr data-row>") == ROWS, "the page does not show every row"
        assert f'name="f_lines-{ROWS - 1}-f_product" type="text" value="Licence pack {ROWS:02d}"' in page, page
        assert 'value="Acme three-year renewal"' in page and 'name="f_site-lat"' in page
        with self.widgets_context:
            widgets = self.render_widgets()
        assert self.entity.validator.is_valid(self.document)
        return {"page": len(page.encode()), "widgets": len("".join(widgets).encode()),
                "trivial": len(self.trivial().encode()), "post": self.post_bytes,
                "document": len(json.dumps(self.document, ensure_ascii=False).encode())}

    def trivial(self) -> str:
        return self.trivial_template.render(fields=self.trivial_fields)

    def run(self, seconds: float, repeats: int, warmup: float) -> list[Timing]:
        entity, raw, document = self.entity, self.raw, self.document
        validate_values, is_valid = self.validate_values, entity.validator.is_valid
        timed = dict(seconds=seconds, repeats=repeats, warmup=warmup)
        results = [
            measure("1", "validate: validate_values on form-shaped input",
                    lambda: validate_values(entity, raw), ratio_to="a", **timed),
            measure("2", "render: edit page, record_form.html + base.html",
                    self.render_page, ratio_to="c", **timed),
        ]
        with self.widgets_context:
            results.append(measure("2w", "  widgets only: form + str(field), row by row",
                                   self.render_widgets, ratio_to="c", **timed))
        results += [
            measure("3", "submit: parse the POST + form_values + validate",
                    self.submit, ratio_to="a", **timed),
            measure("3p", "  parse only: request + form + form_values",
                    self.parse, ratio_to="a", **timed),
            measure("a", "baseline: entity.validator.is_valid(document)",
                    lambda: is_valid(document), **timed),
            measure("b", "baseline: json.dumps + json.loads of the document",
                    lambda: json.loads(json.dumps(document)), **timed),
            measure("c", "baseline: plain Jinja2 form of 40 inputs", self.trivial, **timed),
        ]
        return results


# --- report ----------------------------------------------------------------------------------

def versions() -> str:
    names = ("Flask", "Werkzeug", "Jinja2", "WTForms", "Flask-WTF", "jsonschema")
    return (f"Python {platform.python_version()} ({platform.python_implementation()}) on {platform.platform()}, "
            f"{os.cpu_count()} CPUs\n" + ", ".join(f"{n} {importlib.metadata.version(n)}" for n in names))


def report(results: list[Timing], sizes: dict[str, int], repeats: int) -> None:
    by_name = {t.name: t for t in results}
    print(f"{'':3}{'operation':<52}{'ops/s':>9}{'µs/op':>10}{'median':>10}{'vs (a)':>9}{'vs (c)':>9}")
    for t in results:
        ratios = {k: (f"{t.best / by_name[k].best:8.1f}×" if t.ratio_to == k else "") for k in ("a", "c")}
        print(f"{t.name:<3}{t.what:<52}{1 / t.best:9,.0f}{t.best * 1e6:10.1f}{t.median * 1e6:10.1f}"
              f"{ratios['a']:>9}{ratios['c']:>9}")
    print(f"\nops/s and µs/op: the fastest of {repeats} repeats; median: the median repeat, in µs/op.")
    print("vs (a): times the JSON Schema check alone; vs (c): times the trivial Jinja2 form.")
    print(f"sizes: page {sizes['page'] / 1024:.0f} KiB, widgets {sizes['widgets'] / 1024:.0f} KiB, trivial form "
          f"{sizes['trivial'] / 1024:.1f} KiB, POST body {sizes['post'] / 1024:.1f} KiB, stored document "
          f"{sizes['document'] / 1024:.1f} KiB (JSON)")
    submit = by_name["3"].best
    print(f"shares (from separate runs, so they need not add up): of a submission, parsing the form "
          f"{by_name['3p'].best / submit:.0%} and validate_values {by_name['1'].best / submit:.0%}; "
          f"of validate_values, the JSON Schema {by_name['a'].best / by_name['1'].best:.0%}")


def _package(file: str, prefixes: list[str]) -> str:
    if file.startswith("~") or file.startswith("<"):
        return "builtins"
    if file.startswith(sysconfig.get_paths()["stdlib"] + "/"):
        return "stdlib"
    for prefix in prefixes:
        if file.startswith(prefix):
            rest = file[len(prefix):]
            return rest.split("/", 1)[0] if "/" in rest else rest.removesuffix(".py")
    return "stdlib"


def profile(label: str, op: Callable[[], object], iterations: int, top: int) -> None:
    """cProfile ``iterations`` calls of ``op``: own time by package, then the top functions."""
    for _ in range(3):
        op()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(iterations):
        op()
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    total = sum(row[2] for row in stats.values())  # the own time of every function
    prefixes = sorted({str(Path(p)) + "/" for p in sys.path if p.endswith("-packages")}
                      | {str(REPO) + "/", sysconfig.get_paths()["stdlib"] + "/"}, key=len, reverse=True)
    packages: dict[str, float] = {}
    for (file, _, _), row in stats.items():
        name = _package(file, prefixes)
        packages[name] = packages.get(name, 0.0) + row[2]
    print(f"\n--- cProfile of {iterations} × {label}: own time by package ---")
    print(", ".join(f"{name} {own / total:.0%}" for name, own in sorted(packages.items(), key=lambda i: -i[1])
                    if own / total >= 0.005))
    print(f"top {top} functions by own time (cum: with what they call; calls per operation)")
    print(f"{'own':>6}{'cum':>7}{'calls':>8}  function")
    for (file, line, name), (_, calls, own, cumulative, _) in sorted(stats.items(), key=lambda i: -i[1][2])[:top]:
        for prefix in prefixes:
            file = file.replace(prefix, "")
        where = f"{file}:{line}({name})" if line else name
        print(f"{own / total:6.1%}{cumulative / total:7.1%}{calls / iterations:8,.0f}  {where}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short repeats: a few seconds, rougher figures")
    parser.add_argument("--profile", action="store_true",
                        help="after the timed runs, cProfile the submission (3) and the page render (2)")
    parser.add_argument("--profile-top", type=int, default=10, help="functions of each profile to print")
    args = parser.parse_args(argv)
    seconds, repeats, warmup = (0.15, 3, 0.05) if args.quick else (0.6, 7, 0.3)

    started = time.perf_counter()
    tmpdir = tempfile.mkdtemp(prefix="formloom-bench-")
    try:
        bench = Bench(tmpdir)
        sizes = bench.sanity_checks()
        entity = bench.entity
        print(f"formloom form benchmark: a {len(entity.fields)}-field entity ({len(entity.fields) - 1} fields "
              f"+ a sub-table of {len(entity.by_key['lines'].definition['fields'])} columns), {ROWS} rows, "
              f"{len(entity.formulas)} formulas + 1 row formula")
        print(versions())
        print()
        results = bench.run(seconds, repeats, warmup)
        report(results, sizes, repeats)
        if args.profile:
            by_name = {t.name: t for t in results}
            profile("submission (3)", bench.submit, max(20, int(2 / by_name["3"].best)), args.profile_top)
            profile("page render (2)", bench.render_page, max(20, int(2 / by_name["2"].best)), args.profile_top)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

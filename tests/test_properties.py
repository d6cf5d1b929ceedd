"""Properties of the field types, validation and the record endpoints, on random definitions and input.

* Random entity definitions drawn from the field-type registry pass the definition checks.
* Sample values of every type validate and are stored unchanged; what the HTML form shows for
  editing a value reads back as the same value.
* A value made invalid is refused with an error for exactly that field, in a sentence that
  starts with the field's label.
* No input makes the JSON API or the generated HTML form answer 500.

Inputs that once broke the product are kept as plain regression tests at the end of this file.
"""
from __future__ import annotations

import copy
import json
import random
import re
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from formloom.builder import definitions
from formloom.builder.checks import AppContext, check_definition
from formloom.platform.auth import Cause
from formloom.platform.errors import RecordValidationError
from formloom.runtime import records
from formloom.runtime.compiler import CompiledEntity, checksum, compile_entity
from formloom.runtime.fields import FIELD_TYPES, FILE_TYPES, INTEGER_LIMIT, REFERENCE_TYPES, TABLE_COLUMN_TYPES
from formloom.runtime.labels import text_of
from formloom.runtime.validation import validate_values
from tests.conftest import bearer
from tests.factories import company_body, csrf_token, login

# Types whose values the tests can make up: not computed, not pointing into the database.
VALUE_TYPES = tuple(name for name, t in FIELD_TYPES.items()
                    if not t.computed and name not in REFERENCE_TYPES | FILE_TYPES)
# In a definition, but given no value: their values need the database.
NO_VALUE_TYPES = ("user", "users", "file", "image", "signature")
COMPUTED_TYPES = ("formula", "serial")
# relation, relations and lookup need another entity; they are left to the API property below.
COLUMN_TYPES = tuple(t for t in TABLE_COLUMN_TYPES if t not in ("user", "relation"))

NOT_AN_OPTION = "not-an-option"  # option values are drawn from [a-z0-9], so this is never one
FORMULAS = {"1 + 1": "2.00", "2 * 3": "6.00", "10 / 4": "2.50"}  # constant expressions, their stored values

def body_of(fields: list[dict], key: str = "t", label: Any = "T") -> dict:
    return {"formloom": 1, "kind": "entity", "key": key, "label": label, "fields": fields}


def compiled(body: dict) -> CompiledEntity:
    return compile_entity(body, 1, checksum(body))


def problems_of(body: dict) -> list:
    return check_definition(body, AppContext("props", entities={body["key"]: body}))


# --- strategies: definitions -----------------------------------------------------------------

KEYS = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
LABEL_TEXT = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -/()"
                                              "名称金额日期客户产品数量"), min_size=1, max_size=30).map(str.strip).filter(bool)
LABELS = st.one_of(LABEL_TEXT, st.fixed_dictionaries({"en": LABEL_TEXT, "zh-CN": LABEL_TEXT}))
OPTION_VALUES = st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True)


@st.composite
def option_lists(draw):
    values = draw(st.lists(OPTION_VALUES, min_size=1, max_size=6, unique=True))
    return [{"value": v, "label": draw(LABELS)} for v in values]


def on_grid(value: Decimal, places: int) -> int | float:
    """A number as a definition writes it (a JSON number) with at most ``places`` decimal places."""
    return int(value) if places == 0 else float(str(value.quantize(Decimal(1).scaleb(-places))))


@st.composite
def options_of(draw, type_name: str) -> dict:
    """The options of one field of ``type_name``: what it needs, and random extras within range."""
    t = FIELD_TYPES[type_name]
    opts: dict[str, Any] = copy.deepcopy(t.example)
    maybe = lambda: draw(st.booleans())  # noqa: E731
    if type_name in ("text", "textarea"):
        if maybe():
            opts["max_length"] = draw(st.integers(1, 100000))
        if maybe():
            opts["min_length"] = draw(st.integers(0, min(opts.get("max_length", t.default_max), 60)))
    elif type_name == "integer":
        bounds = sorted(draw(st.lists(st.integers(-INTEGER_LIMIT, INTEGER_LIMIT), min_size=2, max_size=2)))
        if maybe():
            opts["min"] = bounds[0]
        if maybe():
            opts["max"] = bounds[1]
    elif type_name in ("decimal", "currency", "percent"):
        places = t.default_precision
        if maybe():
            opts["precision"] = places = draw(st.integers(0, 10))
        # Bounds may have more places than the field (min 0.25 with 1 place: 0.3 is the least value);
        # at least one value must fit between them.
        bound_places = draw(st.integers(0, 10))
        step = Decimal(1).scaleb(-bound_places)
        numbers = st.integers(-10**5 * 10**bound_places, 10**5 * 10**bound_places).map(lambda n: step * n)
        low, high = sorted(draw(st.lists(numbers, min_size=2, max_size=2)))
        grid = Decimal(1).scaleb(-places)
        if maybe():
            opts["min"] = on_grid(low, bound_places)
        if maybe():
            opts["max"] = on_grid(high, bound_places)
        if "min" in opts and "max" in opts:
            assume(low.quantize(grid, rounding=ROUND_CEILING) <= high)
        if type_name == "currency" and maybe():
            opts["currency"] = draw(st.sampled_from(["CNY", "USD", "EUR", "JPY"]))
    elif type_name == "date":
        days = sorted(draw(st.lists(st.integers(-20000, 20000), min_size=2, max_size=2)))
        if maybe():
            opts["min"] = (date(2026, 1, 1) + timedelta(days=days[0])).isoformat()
        if maybe():
            opts["max"] = (date(2026, 1, 1) + timedelta(days=days[1])).isoformat()
    elif type_name in ("select", "multiselect"):
        opts["options"] = draw(option_lists())
        if type_name == "multiselect":
            count = len(opts["options"])
            if maybe():
                opts["max_items"] = draw(st.integers(1, count + 2))
            if maybe():
                opts["min_items"] = draw(st.integers(0, min(count, opts.get("max_items", count))))
    elif type_name == "rating":
        if maybe():
            opts["max"] = draw(st.integers(3, 10))
    elif type_name == "duration":
        if maybe():
            opts["max"] = draw(st.integers(1, 10**7))
    elif type_name == "tags":
        if maybe():
            opts["max_items"] = draw(st.integers(1, 100))
        if maybe():
            opts["max_length"] = draw(st.integers(1, 200))
    elif type_name == "address":
        if maybe():
            opts["style"] = draw(st.sampled_from(["cn", "free"]))
    elif type_name == "table":
        opts["fields"] = draw(columns())
        if maybe():
            opts["min_rows"] = draw(st.integers(0, 12))
        if maybe():
            opts["max_rows"] = draw(st.integers(max(opts.get("min_rows", 0), 1), 1000))
    elif type_name == "formula":
        opts["expression"] = draw(st.sampled_from(sorted(FORMULAS)))
    if type_name in VALUE_TYPES and maybe():
        opts["required"] = True
    return opts


@st.composite
def columns(draw) -> list[dict]:
    types = draw(st.lists(st.sampled_from(COLUMN_TYPES), min_size=1, max_size=4))
    if all(t == "formula" for t in types):  # rows would be blank
        types.append(draw(st.sampled_from([t for t in COLUMN_TYPES if t not in ("formula", "boolean")])))
    keys = draw(st.lists(KEYS, min_size=len(types), max_size=len(types), unique=True))
    return [{"key": k, "type": t, "label": draw(LABELS), **draw(options_of(t))}
            for k, t in zip(keys, types)]


@st.composite
def fields_of(draw, types: list[str]) -> list[dict]:
    keys = draw(st.lists(KEYS, min_size=len(types), max_size=len(types), unique=True))
    return [{"key": k, "type": t, "label": draw(LABELS), **draw(options_of(t))} for k, t in zip(keys, types)]


ANY_TYPE = st.sampled_from(VALUE_TYPES + NO_VALUE_TYPES + COMPUTED_TYPES)


@st.composite
def entity_bodies(draw, min_value_fields: int = 0) -> dict:
    types = draw(st.lists(ANY_TYPE, min_size=1, max_size=12))
    types += draw(st.lists(st.sampled_from(VALUE_TYPES), min_size=min_value_fields, max_size=min_value_fields))
    return body_of(draw(fields_of(types)), label=draw(LABELS))


def samples(body: dict, rng: random.Random) -> dict:
    """A document of sample values for the fields that can have one."""
    doc = {}
    for field in body["fields"]:
        field_type = FIELD_TYPES[field["type"]]
        if field_type.computed:
            continue
        value = field_type.sample(field, rng)
        if value is not None:
            doc[field["key"]] = value
    return doc


def typed_part(body: dict, document: dict) -> dict:
    """A stored document without what the server computes (formula fields and columns)."""
    by_key = {f["key"]: f for f in body["fields"]}
    out = {}
    for key, value in document.items():
        field = by_key[key]
        if FIELD_TYPES[field["type"]].computed:
            continue
        if field["type"] == "table":
            computed = {c["key"] for c in field["fields"] if FIELD_TYPES[c["type"]].computed}
            value = [{k: v for k, v in row.items() if k not in computed} for row in value]
        out[key] = value
    return out


# --- definitions and samples -----------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(body=entity_bodies())
def test_random_definitions_pass_the_checks(body):
    assert problems_of(body) == []


@settings(max_examples=150, deadline=None)
@given(body=entity_bodies(), seed=st.integers(0, 2**32))
def test_samples_validate_and_are_stored_unchanged(body, seed):
    entity = compiled(body)
    doc = samples(body, random.Random(seed))
    stored = validate_values(entity, doc)
    assert typed_part(body, stored) == doc
    for field in body["fields"]:
        if field["type"] == "formula":  # computed from constants: always there
            assert stored[field["key"]] == FORMULAS[field["expression"]]
        if field["type"] == "table" and field["key"] in stored:
            for row in stored[field["key"]]:
                assert all(row[c["key"]] == FORMULAS[c["expression"]] for c in field["fields"]
                           if c["type"] == "formula")


@settings(max_examples=150, deadline=None)
@given(body=entity_bodies(min_value_fields=1), seed=st.integers(0, 2**32))
def test_what_the_form_shows_for_editing_reads_back_as_the_same_value(body, seed):
    doc = samples(body, random.Random(seed))
    for field in body["fields"]:
        if field["key"] not in doc:
            continue
        field_type = FIELD_TYPES[field["type"]]
        shown = field_type.form_value(doc[field["key"]], field)
        read = field_type.coerce(field_type.from_form(shown, field), field)
        if field["type"] == "table":
            read = typed_part(body, {field["key"]: read})[field["key"]]
        assert read == doc[field["key"]], (field, shown)


# --- invalid values --------------------------------------------------------------------------

def _decimal_text(value: Any) -> Decimal:
    return Decimal(str(value))


def invalid_values(field: dict) -> list[Any]:
    """Values that field ``field`` must refuse, each for a reason of its own."""
    name = field["type"]
    t = FIELD_TYPES[name]
    out: list[Any] = []
    if name in ("text", "textarea"):
        limit = field.get("max_length", t.default_max)
        out += [42, 1.5, True, {"a": "b"}, ["x"], "x" * (limit + 1)]
        if field.get("min_length", 0) >= 2:
            out.append("y" * (field["min_length"] - 1))
    elif name == "email":
        out += ["not an email", "a@b", 5, "x@" + "y" * 260 + ".com"]
    elif name == "phone":
        out += ["call me", "12", "++86 138", 13800000000]
    elif name == "url":
        out += ["example.com", "ftp://x.example.com", "javascript:alert(1)", "https://a b"]
    elif name in ("integer", "rating"):
        out += ["abc", 1.5, "1.5", True, {"n": 1}, "1e3", [1]]
        if name == "rating":
            out += [0, field.get("max", 5) + 1, -1]
        elif "max" in field:
            out.append(field["max"] + 1)
        elif "min" in field:
            out.append(field["min"] - 1)
        else:
            out += [INTEGER_LIMIT + 1, -INTEGER_LIMIT - 1]
    elif name in ("decimal", "currency", "percent"):
        places = field.get("precision", t.default_precision)
        out += ["abc", True, "1e3", [1], {"v": 1}, "NaN", "1,23", 10**18, "1." + "1" * (places + 1)]
        if "max" in field:
            out.append(str(_decimal_text(field["max"]) + 1))
        if "min" in field:
            out.append(str(_decimal_text(field["min"]) - 1))
    elif name == "date":
        out += ["2026-02-29", "2026-02-30", "31/12/2026", "2026-1-1", 20260101, "tomorrow"]
        if "min" in field:
            out.append((date.fromisoformat(field["min"]) - timedelta(days=1)).isoformat())
        if "max" in field:
            out.append((date.fromisoformat(field["max"]) + timedelta(days=1)).isoformat())
    elif name == "datetime":
        out += ["tomorrow", "2026-13-01T00:00", "2026-02-29T10:00", "2026-03-01T24:00", 12345]
    elif name == "boolean":
        out += ["maybe", 1, 0, ["yes"], {"a": True}, 1.0]
    elif name == "select":
        out += [NOT_AN_OPTION, 1, [field["options"][0]["value"]], {"v": 1}]
    elif name == "multiselect":
        values = [o["value"] for o in field["options"]]
        out += [[NOT_AN_OPTION], [values[0], values[0]], {"a": 1}, [1], 7]
        if field.get("max_items", len(values)) < len(values):
            out.append(values[:field["max_items"] + 1])
        if field.get("min_items", 0) >= 2:
            out.append(values[:field["min_items"] - 1])
    elif name == "time":
        out += ["24:00", "9:5", "23:60", 930, "noon", "12:30 PM"]
    elif name == "duration":
        out += ["soon", -1, 1.5, True, "1:60", "0.01h"]
        if "max" in field:
            out.append(field["max"] + 1)
    elif name == "tags":
        out += [5, {"a": 1}, [1], ["x" * (field.get("max_length", 50) + 1)],
                [f"t{i}" for i in range(field.get("max_items", 20) + 1)]]
    elif name == "address":
        other = "province" if field.get("style") == "free" else "postcode"
        out += [{other: "x"}, 5, {"city": 5}, ["x"], {"city": "x" * 201}]
    elif name == "geolocation":
        out += [{"lat": 91, "lng": 0}, {"lat": 0, "lng": -181}, {"lat": 1}, "1,2",
                {"lat": 1, "lng": 2, "alt": 3}, {"lat": "x", "lng": 1}, [1, 2]]
    elif name == "table":
        out += ["x", {"a": 1}, 5, [{NOT_AN_OPTION: "x"}]]
        if field.get("max_rows", 200) <= 60:
            row = {c["key"]: FIELD_TYPES[c["type"]].sample(c, random.Random(0)) for c in field["fields"]
                   if not FIELD_TYPES[c["type"]].computed}
            out.append([row] * (field.get("max_rows", 200) + 1))
        for column in field["fields"]:
            if not FIELD_TYPES[column["type"]].computed:
                out += [[{column["key"]: bad}] for bad in invalid_values(column)[:3]]
    return out


def label_in(field: dict, locale: str) -> str:
    return text_of(field["label"], locale)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_an_invalid_value_is_refused_naming_that_field(data):
    body = data.draw(entity_bodies(min_value_fields=1))
    entity = compiled(body)
    targets = [f for f in body["fields"] if f["type"] in VALUE_TYPES]
    field = data.draw(st.sampled_from(targets))
    bad = data.draw(st.sampled_from(invalid_values(field)))
    locale = data.draw(st.sampled_from(["en", "zh-CN"]))
    doc = samples(body, random.Random(data.draw(st.integers(0, 2**32))))
    doc[field["key"]] = bad
    with pytest.raises(RecordValidationError) as raised:
        validate_values(entity, doc, locale=locale)
    errors = raised.value.fields
    assert list(errors) == [field["key"]], (bad, errors)
    label = label_in(field, locale)
    row_prefix = re.compile(rf"Row \d+ of {re.escape(label)}: ")
    for message in errors[field["key"]]:
        assert message.startswith(label) or (field["type"] == "table" and row_prefix.match(message)), message


# --- the JSON API and the HTML form never answer 500 -----------------------------------------

def fuzz_fields() -> list[dict]:
    """An entity with a field of nearly every type, with options, for the endpoint properties."""
    return [
        {"key": "name", "type": "text", "label": "Name", "max_length": 40},
        {"key": "notes", "type": "textarea", "label": "Notes", "max_length": 500},
        {"key": "seats", "type": "integer", "label": "Seats", "min": 1, "max": 10000},
        {"key": "weight", "type": "decimal", "label": "Weight", "precision": 3, "min": 0},
        {"key": "amount", "type": "currency", "label": "Amount", "min": 0, "currency": "CNY"},
        {"key": "discount", "type": "percent", "label": "Discount", "min": 0, "max": 100},
        {"key": "due", "type": "date", "label": "Due", "min": "2020-01-01"},
        {"key": "meeting", "type": "datetime", "label": "Meeting"},
        {"key": "strategic", "type": "boolean", "label": "Strategic"},
        {"key": "stage", "type": "select", "label": "Stage",
         "options": [{"value": "lead", "label": "Lead"}, {"value": "won", "label": {"en": "Won", "zh-CN": "赢单"}}]},
        {"key": "products", "type": "multiselect", "label": "Products", "max_items": 2,
         "options": [{"value": "crm", "label": "CRM"}, {"value": "erp", "label": "ERP"}, {"value": "bi", "label": "BI"}]},
        {"key": "mail", "type": "email", "label": "E-mail"},
        {"key": "tel", "type": "phone", "label": "Phone"},
        {"key": "web", "type": "url", "label": "Website"},
        {"key": "owner", "type": "user", "label": "Owner"},
        {"key": "team", "type": "users", "label": "Team"},
        {"key": "company", "type": "relation", "label": "Company", "target": "company"},
        {"key": "partners", "type": "relations", "label": "Partners", "target": "company"},
        {"key": "company_name", "type": "lookup", "label": "Company name", "relation": "company", "field": "name"},
        {"key": "stars", "type": "rating", "label": "Stars"},
        {"key": "call_at", "type": "time", "label": "Call at"},
        {"key": "effort", "type": "duration", "label": "Effort"},
        {"key": "labels", "type": "tags", "label": "Tags", "max_items": 5},
        {"key": "addr", "type": "address", "label": "Address"},
        {"key": "site", "type": "geolocation", "label": "Site"},
        {"key": "attachments", "type": "file", "label": "Attachments", "max_files": 3},
        {"key": "photo", "type": "image", "label": "Photo"},
        {"key": "signature", "type": "signature", "label": "Signature"},
        {"key": "number", "type": "serial", "label": "Number", "pattern": "FZ-{0000}"},
        {"key": "lines", "type": "table", "label": "Line items", "max_rows": 5, "fields": [
            {"key": "product", "type": "text", "label": "Product", "required": True},
            {"key": "qty", "type": "integer", "label": "Qty", "min": 1},
            {"key": "price", "type": "currency", "label": "Price", "min": 0},
            {"key": "unit", "type": "select", "label": "Unit", "options": [{"value": "pc", "label": "Piece"}]},
            {"key": "when", "type": "date", "label": "When"},
            {"key": "who", "type": "user", "label": "Who"},
            {"key": "amount", "type": "formula", "label": "Amount", "expression": "qty * price"}]},
        {"key": "total", "type": "formula", "label": "Total", "expression": "SUM(lines.qty * lines.price)"},
    ]


FUZZ_FIELDS = fuzz_fields()
FUZZ_KEYS = [f["key"] for f in FUZZ_FIELDS]
ID_KEYS = {f["key"] for f in FUZZ_FIELDS if f["type"] in REFERENCE_TYPES}
PART_KEYS = ["lat", "lng", "province", "city", "district", "street", "postcode", "country", "id", "name",
             "product", "qty", "price", "unit", "when", "who", "amount"]
FUZZ = "/api/v1/apps/fuzz/records/thing"

# Any character, lone surrogates included; NUL, '²' and '①' often.
SAFE_CHARS = st.one_of(st.characters(), st.sampled_from("\x00²①٣１\ud800"))
SAFE_TEXT = st.text(alphabet=SAFE_CHARS, max_size=30)
TRICKY = ["", " ", "\t", "0", "-0", "1", "-1", "1.5", "1,234.50", ".5", "1e3", "NaN", "Infinity", "true",
          "false", "on", "off", "yes", "2026-02-29", "2028-02-29", "2026-03-01T09:30+08:00", "2026-03-01 09:30",
          "24:00", "9:05", "1h 30m", "1:30", "1.5h", "90", "vip，渠道；x", "a,b,a", "https://example.com/",
          "a@b.co", "+86 138-0000-0000", "9007199254740991", "9007199254740992", "99999999999999999999",
          "999999999999999999.99", "lead", "won", "crm", "pc", "１２", "名称", "x" * 1001, "<script>", "' OR 1=1 --"]
STRINGS = st.one_of(SAFE_TEXT, st.sampled_from(TRICKY))


def small_number_text(text: str, bound: int) -> bool:
    """False for text that reads as a whole number beyond ``bound`` (an id the database overflows on)."""
    return not (text.strip().isdecimal() and int(text.strip()) > bound)


def json_values(int_bound: int | None = None):
    """Any JSON value (ints optionally bounded)."""
    ints = st.integers() if int_bound is None else st.integers(-int_bound, int_bound)
    strings = STRINGS if int_bound is None else STRINGS.filter(lambda text: small_number_text(text, int_bound))
    scalars = st.one_of(st.none(), st.booleans(), ints, st.floats(), strings)
    keys = st.one_of(st.sampled_from(PART_KEYS), SAFE_TEXT)
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(keys, inner, max_size=4)),
                        max_leaves=12)


FUZZ_BY_KEY = {f["key"]: f for f in FUZZ_FIELDS}


def shaped_values(field: dict):
    """Values shaped for ``field``: its samples, its invalid values, or ids that exist (1 to 3)."""
    name = field["type"]
    if name in VALUE_TYPES:
        sample = st.integers(0, 2**32).map(lambda seed: FIELD_TYPES[name].sample(field, random.Random(seed)))
        return st.one_of(sample, st.sampled_from(invalid_values(field)))
    ids = st.integers(1, 3)
    if name in ("user", "relation"):
        return st.one_of(ids, ids.map(str))
    if name in ("users", "relations"):
        return st.lists(st.one_of(ids, ids.map(str)), max_size=3)
    if name in FILE_TYPES:
        return st.lists(st.one_of(ids, st.fixed_dictionaries({"id": ids})), max_size=3)
    return json_values(2**31 - 1)  # computed fields: anything, it is ignored


def value_for(key: str):
    random_json = json_values(2**31 - 1 if key in ID_KEYS else None)
    return st.one_of(random_json, shaped_values(FUZZ_BY_KEY[key])) if key in FUZZ_BY_KEY else random_json


def fuzz_body() -> dict:
    return body_of(FUZZ_FIELDS, key="thing", label={"en": "Thing", "zh-CN": "事物"})


@pytest.fixture
def fuzz(db, admin):
    """A published app with a company and a thing of nearly every field type; the admin's token."""
    app = definitions.create_app(db, admin, "fuzz", "Fuzz")
    definitions.save_and_publish(db, admin, app, company_body())
    definitions.save_and_publish(db, admin, app, fuzz_body())
    records.create(db, admin, Cause.for_user(admin), app, "company", {"name": "Acme"})
    db.commit()
    return bearer(db, admin)


def assert_error_shape(response, sent_keys) -> None:
    body = response.get_json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str) and error["message"]
    if response.status_code == 422:
        assert error["code"] == "validation_failed"
        fields = error["fields"]
        assert fields and set(fields) <= set(FUZZ_KEYS) | set(sent_keys), fields
        assert all(isinstance(m, list) and m and all(isinstance(x, str) and x for x in m) for m in fields.values())


def test_fuzz_entity_passes_the_checks():
    body = fuzz_body()
    assert check_definition(body, AppContext("fuzz", entities={"company": company_body(), "thing": body})) == []


ENDPOINT_SETTINGS = settings(max_examples=60, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture])


@ENDPOINT_SETTINGS
@given(data=st.data())
def test_api_create_never_answers_500(client, fuzz, data):
    keys = data.draw(st.lists(st.sampled_from(FUZZ_KEYS + ["not_a_field"]), min_size=1, max_size=6, unique=True))
    payload = {key: data.draw(value_for(key), label=key) for key in keys}
    locale = data.draw(st.sampled_from(["en", "zh-CN"]))
    response = client.post(f"{FUZZ}?locale={locale}", json={"data": payload}, headers=fuzz)
    assert response.status_code in (201, 422), response.get_data(as_text=True)
    if response.status_code == 201:
        record = response.get_json()
        assert record["entity"] == "thing" and record["data"]["number"].startswith("FZ-")
    else:
        assert_error_shape(response, keys)


@ENDPOINT_SETTINGS
@given(body=json_values(2**31 - 1))
def test_api_create_with_any_json_body_never_answers_500(client, fuzz, body):
    response = client.post(FUZZ, data=json.dumps(body), content_type="application/json", headers=fuzz)
    assert response.status_code in (201, 400, 422), response.get_data(as_text=True)
    if response.status_code != 201:
        assert_error_shape(response, body.get("data", {}) if isinstance(body, dict) and
                           isinstance(body.get("data"), dict) else [])


def form_names() -> list[str]:
    """The names the generated form posts, and a few it does not know."""
    names = []
    for field in FUZZ_FIELDS:
        name = f"f_{field['key']}"
        if field["type"] == "address":
            names += [f"{name}-{p}" for p in ("province", "city", "district", "street")]
        elif field["type"] == "geolocation":
            names += [f"{name}-lat", f"{name}-lng"]
        elif field["type"] == "table":
            names += [f"{name}-{i}-f_{c['key']}" for i in (0, 1) for c in field["fields"]]
        elif field["type"] in FILE_TYPES:
            names += [name, f"{name}-keep"]
        else:
            names.append(name)
    return names + ["f_lines-7-f_qty", "f_unknown", "f_lines-x-f_qty", "_version"]


def form_samples(seeds: int = 5) -> dict[str, list[str]]:
    """Strings the form itself shows for sample values, by input name (what a browser sends back)."""
    out: dict[str, list[str]] = {}

    def add(name: str, value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                add(name, item)
        elif isinstance(value, bool):
            out.setdefault(name, []).append("y" if value else "")  # an unticked box sends nothing
        else:
            out.setdefault(name, []).append(str(value))

    for seed in range(seeds):
        for field in FUZZ_FIELDS:
            t = FIELD_TYPES[field["type"]]
            value = t.sample(field, random.Random(seed))
            if value is None:
                continue
            shown, name = t.form_value(value, field), f"f_{field['key']}"
            if field["type"] == "table":
                for i, row in enumerate(shown[:2]):
                    for attr, cell in row.items():
                        add(f"{name}-{i}-{attr}", cell)
            elif isinstance(shown, dict):
                for part, text in shown.items():
                    add(f"{name}-{part}", text)
            else:
                add(name, shown)
    return out


FORM_NAMES = form_names()
FORM_SAMPLES = form_samples()
# A form post is UTF-8: no browser can send a lone surrogate (the JSON API can, as "\ud800").
FORM_CHARS = SAFE_CHARS.filter(lambda c: not "\ud800" <= c <= "\udfff")
FORM_STRINGS = st.one_of(st.text(alphabet=FORM_CHARS, max_size=20), st.sampled_from(TRICKY))
ID_NAMES = {f"f_{key}" for key in ID_KEYS} | {n for n in FORM_NAMES if n.endswith("-keep")} | {"f_signature"}


def form_strings(name: str):
    strings = FORM_STRINGS
    return st.one_of(strings, st.sampled_from(FORM_SAMPLES[name])) if FORM_SAMPLES.get(name) else strings


@pytest.fixture
def form_token(client, admin, fuzz) -> str:
    """Log the admin in (once for all of a property's examples); the form's CSRF token."""
    login(client, "admin")
    return csrf_token(client, "/apps/fuzz/thing/new")


@ENDPOINT_SETTINGS
@given(data=st.data())
def test_html_form_never_answers_500(client, form_token, data):
    names = data.draw(st.lists(st.sampled_from(FORM_NAMES), min_size=1, max_size=10, unique=True))
    form = MultiDict([("csrf_token", form_token)])
    for name in names:
        for value in data.draw(st.lists(form_strings(name), min_size=1, max_size=2), label=name):
            form.add(name, value)
    response = client.post("/apps/fuzz/thing/new", data=form)
    assert response.status_code in (200, 302, 422), response.get_data(as_text=True)[:2000]


# --- regressions: inputs that once failed -------------------------------------------------------

def _sample_round_trips(field: dict, seeds: int = 60) -> None:
    body = body_of([{"key": "x", "label": "X", **field}])
    assert problems_of(body) == []
    entity = compiled(body)
    for seed in range(seeds):
        value = FIELD_TYPES[field["type"]].sample(field, random.Random(seed))
        assert validate_values(entity, {"x": value}) == {"x": value}, (seed, value)


@pytest.mark.parametrize("field", [
    {"type": "text", "max_length": 5},  # "Acme 12" cut to "Acme " was trimmed to "Acme"
    {"type": "text", "max_length": 6, "min_length": 6},
    {"type": "integer", "max": -5},  # randint(0, -5)
    {"type": "decimal", "max": -5},  # started at 0, above max
    {"type": "decimal", "min": 0.25, "max": 0.45, "precision": 1},  # 0.25 rounded to 0.2, below min
    {"type": "percent", "min": -0.04, "max": 0.04, "precision": 1},  # never "-0.0"
    {"type": "date", "min": "2030-01-01"},  # always a day of 2026
    {"type": "date", "max": "1999-12-31"},
    {"type": "tags", "max_length": 3},  # "renewal"
    {"type": "duration", "max": 20},  # up to 120
    {"type": "table", "min_rows": 10, "fields": [{"key": "a", "type": "text", "label": "A"}]},  # randint(10, 5)
    {"type": "decimal", "max": -0.001},  # the start rounded up to 0.00, above max
    {"type": "percent", "max": -1},  # the default min 0 won
    {"type": "table", "min_rows": 1, "fields": [{"key": "done", "type": "boolean", "label": "Done"}]},
], ids=lambda field: json.dumps(field))
def test_regression_sample_is_valid_for_its_definition(field):
    _sample_round_trips(field)


def test_regression_multiselect_min_items_above_max_items_is_refused():
    field = {"key": "m", "type": "multiselect", "label": "M", "min_items": 3, "max_items": 1,
             "options": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}, {"value": "c", "label": "C"}]}
    assert [p.path for p in problems_of(body_of([field]))] == ["$.fields[0].min_items"]


@pytest.mark.parametrize("payload", [
    {"effort": "²"}, {"owner": "²"}, {"team": ["①"]}, {"company": "³"}, {"attachments": ["²"]},
    {"owner": "99999999999999999999"}, {"attachments": [{"id": 2**64}]}, {"attachments": [2**31]},
    {"meeting": "0001-01-01T00:00+01:00"}, {"meeting": "9999-12-31T23:00-05:00"},
    {"name": "a\x00b"}, {"addr": {"city": "\x00"}}, {"labels": ["a\x00"]}, {"lines": [{"product": "x\x00"}]},
    {"addr": {"\x00": "x"}},
], ids=lambda payload: json.dumps(payload))
def test_regression_api_refuses_with_422(client, fuzz, payload):
    response = client.post(FUZZ, json={"data": payload}, headers=fuzz)
    assert response.status_code == 422, response.get_data(as_text=True)
    assert_error_shape(response, payload)


@pytest.mark.parametrize("form, status", [
    ({"f_effort": "²"}, 422), ({"f_owner": "²"}, 422), ({"f_meeting": "0001-01-01T00:00+01:00"}, 422),
    ({"f_name": "\x00"}, 422),
    ({"f_attachments-keep": "²"}, 302), ({"f_signature": "²"}, 302),  # not file ids: nothing is kept
], ids=lambda v: json.dumps(v))
def test_regression_html_form_answers_without_500(client, form_token, form, status):
    response = client.post("/apps/fuzz/thing/new", data={"csrf_token": form_token, **form})
    assert response.status_code == status, response.get_data(as_text=True)[:2000]


def test_regression_untouched_sub_table_row_with_a_checkbox_does_not_block_saving(client, db, admin):
    app = definitions.create_app(db, admin, "todo", "Todo")
    definitions.save_and_publish(db, admin, app, body_of([
        {"key": "title", "type": "text", "label": "Title", "required": True},
        {"key": "steps", "type": "table", "label": "Steps", "fields": [
            {"key": "step", "type": "text", "label": "Step", "required": True},
            {"key": "done", "type": "boolean", "label": "Done"}]}], key="task", label="Task"))
    db.commit()
    login(client, "admin")
    token = csrf_token(client, "/apps/todo/task/new")
    # The browser sends the one empty row the form shows, its checkbox unticked (so not sent).
    response = client.post("/apps/todo/task/new", data={"csrf_token": token, "f_title": "Write tests",
                                                          "f_steps-0-f_step": ""})
    assert response.status_code == 302, re.findall(r'<p class="error"[^>]*>(.*?)</p>', response.get_data(as_text=True))


# --- inputs that once broke the product --------------------------------------------------------

@pytest.mark.parametrize("payload", [
    {"owner": 2**63}, {"partners": [10**20]}, {"owner": 2**31}, {"owner": "2147483648"}, {"company": "99999999999"},
], ids=lambda payload: json.dumps(payload))
def test_regression_big_reference_ids_are_refused(client, fuzz, request, payload):
    response = client.post(FUZZ, json={"data": payload}, headers=fuzz)
    assert response.status_code == 422, response.get_data(as_text=True)
    # one message: the id is out of range, so it is not looked up as well
    assert len(response.get_json()["error"]["fields"][next(iter(payload))]) == 1


def test_regression_lone_surrogate_is_refused(client, fuzz, request):
    response = client.post(FUZZ, data='{"data": {"name": "\\ud800"}}', content_type="application/json",
                           headers=fuzz)
    assert response.status_code == 422, response.get_data(as_text=True)


def test_regression_search_with_nul(client, fuzz, request):
    response = client.get(f"{FUZZ}?q=%00", headers=fuzz)
    assert response.status_code in (200, 400), response.get_data(as_text=True)


def test_regression_definition_with_nul(client, db, admin, admin_headers, request):
    definitions.create_app(db, admin, "defs", "Defs")
    db.commit()
    body = body_of([{"key": "name", "type": "text", "label": "Na\x00me"}], key="thing")
    response = client.put("/api/v1/apps/defs/definitions/entity/thing", json=body, headers=admin_headers)
    assert response.status_code in (200, 422), response.get_data(as_text=True)


def test_regression_sub_table_member_and_record_columns_are_looked_up(client, db, admin, request):
    app = definitions.create_app(db, admin, "cols", "Cols")
    definitions.save_and_publish(db, admin, app, company_body())
    definitions.save_and_publish(db, admin, app, body_of([
        {"key": "lines", "type": "table", "label": "Lines", "fields": [
            {"key": "who", "type": "user", "label": "Who"},
            {"key": "co", "type": "relation", "label": "Company", "target": "company"}]}], key="job", label="Job"))
    db.commit()
    response = client.post("/api/v1/apps/cols/records/job", json={"data": {"lines": [{"who": 999, "co": 777}]}},
                           headers=bearer(db, admin))
    assert response.status_code == 422, response.get_data(as_text=True)


def test_regression_multiselect_min_items_above_the_options_is_refused(request):
    field = {"key": "m", "type": "multiselect", "label": "M", "min_items": 3, "max_items": 5,
             "options": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}]}
    assert problems_of(body_of([field])) != []




def test_regression_kept_file_ids_beyond_the_id_range(client, form_token, request):
    response = client.post("/apps/fuzz/thing/new", data={"csrf_token": form_token, "f_name": "x" * 41,
                                                          "f_attachments-keep": "9999999999"})
    assert response.status_code == 422, response.get_data(as_text=True)[:2000]


@pytest.mark.parametrize("name", ["f_company", "f_owner", "f_partners"])
@pytest.mark.parametrize("number", ["9007199254740991", "99999999999999999999"])  # beyond int4; beyond int8
def test_regression_html_form_with_an_id_beyond_the_database_range(client, form_token, name, number):
    response = client.post("/apps/fuzz/thing/new", data={"csrf_token": form_token, name: number})
    assert response.status_code == 422, response.get_data(as_text=True)[:2000]

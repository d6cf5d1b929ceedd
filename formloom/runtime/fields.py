"""The field-type registry: one small object per type.

Each type knows the definition options it accepts (a meta-schema fragment), the JSON Schema of
its stored value, how to coerce form or API input into that value, its WTForms field, how to
display a value, which filters it supports, and how to make sample values.
"""
from __future__ import annotations

import json
import random
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from wtforms import (
    BooleanField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    MultipleFileField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import (
    CheckboxInput,
    DateInput,
    DateTimeLocalInput,
    EmailInput,
    ListWidget,
    NumberInput,
    TelInput,
    TimeInput,
    URLInput,
)

from formloom.platform.errors import Problem
from formloom.runtime.labels import LOCALES, text_of
from formloom.runtime.messages import Message, counted


class CoercionError(ValueError):
    """Input that cannot be turned into a value of the field's type; the message is for the user."""

    def __init__(self, template: str, **params: Any):
        self.message = Message(template, **params)
        super().__init__(str(self.message))


@dataclass
class DisplayContext:
    """What displaying needs beyond the value: names of users and titles of related records."""

    locale: str = "en"
    users: dict[int, str] = dc_field(default_factory=dict)
    records: dict[int, str] = dc_field(default_factory=dict)


LABEL_SCHEMA = {"$ref": "#/$defs/label"}
NUMBER = {"type": "number"}
COMMON_OPTIONS = ("key", "type", "label", "help", "required", "default", "placeholder",
                  "visible_when", "required_when", "readonly_when", "hidden_value", "unique",
                  "default_from", "default_formula")

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PHONE_PATTERN = r"^\+?[0-9][0-9 ()\-]{3,22}[0-9]$"
URL_PATTERN = r"^https?://[^\s/$.?#][^\s]*$"
INTEGER_RE = re.compile(r"^[+-]?\d+$")
DECIMAL_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
GROUPED_DECIMAL_RE = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
INTEGER_LIMIT = 2**53 - 1  # exact in JavaScript and in JSON readers of every kind
ID_LIMIT = 2**31 - 1  # record, user and file ids are 32-bit integers in the database


def ascii_digits(text: str) -> bool:
    """Only 0-9 (``str.isdigit`` also accepts '²' and '①', which ``int`` refuses)."""
    return text.isascii() and text.isdigit()


def select_choices(pairs: list[tuple[str, str]], blank: bool = False) -> list[SelectChoice]:
    """WTForms choices from (value, label) pairs, optionally led by an empty choice."""
    return ([SelectChoice("", "—")] if blank else []) + [SelectChoice(v, label) for v, label in pairs]


def refuse_nul(raw: Any) -> None:
    """Text holding NUL (U+0000) cannot be stored (PostgreSQL refuses it in JSON); say so."""
    if isinstance(raw, str):
        if "\x00" in raw:
            raise CoercionError("contains a NUL character (U+0000), which cannot be stored; remove it")
        if not raw.isascii():
            try:
                raw.encode("utf-8")
            except UnicodeEncodeError:  # a lone UTF-16 surrogate such as "\ud800"
                raise CoercionError(
                    "contains a broken character (a lone surrogate), which cannot be stored; remove it") from None
    elif isinstance(raw, dict):
        for key, value in raw.items():
            refuse_nul(key)
            refuse_nul(value)
    elif isinstance(raw, list):
        for value in raw:
            refuse_nul(value)


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip() == "") or raw == []


def _value_repr(raw: Any) -> str:
    """The value as the person sent it: text in quotes, anything else as JSON (true, null, ...)."""
    if isinstance(raw, str):
        return f"'{raw[:60]}'"
    try:
        return json.dumps(raw, ensure_ascii=False, default=str)[:60]
    except ValueError:  # NaN, infinities, circular values
        return repr(raw)[:60]


class FieldType(ABC):
    """Base of the field types. Each type must give its value schema and sample values."""

    name = ""
    label: dict = {}
    options: dict = {}  # meta-schema of the type's own definition options
    filter_ops: tuple[str, ...] = ()
    sortable = True
    numeric = False  # sorted as a number
    describes = "a value"
    kind = "text"  # how conditions and formulas see the value (see docs/conditions.md)
    computed = False  # the server fills the value; input for it is ignored
    example: dict = {}  # options a definition of this type needs (for the builder, tests, fuzzing)

    def kind_of(self, field: dict) -> str:
        return self.kind

    def from_form(self, data: Any, field: dict) -> Any:
        """The raw value as a WTForms field hands it over (most types: unchanged)."""
        return data

    # --- definition -------------------------------------------------------------------------
    def option_schema(self) -> dict:
        props = {name: {} for name in COMMON_OPTIONS}
        props.update(self.options)
        return {"properties": props}

    def check(self, field: dict, path: str, ctx: CheckContext) -> list[Problem]:
        """Cross-field checks of one field definition beyond its meta-schema."""
        problems = []
        lo, hi = field.get("min"), field.get("max")
        if lo is not None and hi is not None and Decimal(str(lo)) > Decimal(str(hi)):
            problems.append(Problem(f"{path}.min", f"Field '{field['key']}' has min {lo} above max {hi}."))
        return problems

    # --- values -----------------------------------------------------------------------------
    @abstractmethod
    def schema(self, field: dict) -> dict:
        """The JSON Schema of a stored value of this field."""

    def coerce(self, raw: Any, field: dict) -> Any:
        """Turn input from a form (strings) or JSON into the stored value; None means empty."""
        if _blank(raw):
            return None
        refuse_nul(raw)
        return self.coerce_present(raw, field)

    def coerce_present(self, raw: Any, field: dict) -> Any:
        if not isinstance(raw, str):
            raise CoercionError("must be text, got {value}", value=_value_repr(raw))
        return raw.strip()

    def form_value(self, value: Any, field: dict) -> Any:
        """The value as the HTML form field shows it for editing."""
        return "" if value is None else str(value)

    def display(self, value: Any, field: dict, ctx: DisplayContext) -> str:
        return "" if value is None else str(value)

    @abstractmethod
    def sample(self, field: dict, rng: random.Random) -> Any:
        """A valid value for demo data, tests and fuzzing (None where it needs the database)."""

    # --- HTML -------------------------------------------------------------------------------
    def form_field(self, field: dict, label: str, locale: str):
        return StringField(label, render_kw=self.render_kw(field, locale))

    def render_kw(self, field: dict, locale: str) -> dict:
        kw = {}
        if field.get("placeholder"):
            kw["placeholder"] = text_of(field["placeholder"], locale)
        return kw

    # --- messages ---------------------------------------------------------------------------
    def invalid(self, raw: Any) -> CoercionError:
        return CoercionError("must be {describes}, got {value}", describes=self.describes, value=_value_repr(raw))

    def message(self, keyword: str, value: Any, field: dict, limit: Any) -> Message:
        """The sentence ending for a JSON Schema error (after the field's label)."""
        template = {
            "maxLength": "must be at most {limit} characters long",
            "minLength": "must be at least {limit} characters long",
            "minimum": "must be at least {limit}",
            "maximum": "must be at most {limit}",
            "minItems": "needs at least {limit} choices",
            "maxItems": "allows at most {limit} choices",
            "uniqueItems": "must not repeat a choice",
        }.get(keyword)
        if template:
            return counted(template, limit)
        if keyword in ("type", "pattern", "format"):
            return self.invalid(value).message
        return Message("is not valid: {value}", value=_value_repr(value))


# --- text-like -----------------------------------------------------------------------------

class Text(FieldType):
    name = "text"
    label = {"en": "Text", "zh-CN": "单行文本"}
    options = {"max_length": {"type": "integer", "minimum": 1, "maximum": 100000},
               "min_length": {"type": "integer", "minimum": 0}}
    filter_ops = ("eq", "contains")
    describes = "text"
    default_max = 1000
    words = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell"]

    def schema(self, field: dict) -> dict:
        schema = {"type": "string", "maxLength": field.get("max_length", self.default_max)}
        if field.get("min_length"):
            schema["minLength"] = field["min_length"]
        return schema

    def check(self, field, path, ctx):
        problems = super().check(field, path, ctx)
        if field.get("min_length", 0) > field.get("max_length", self.default_max):
            problems.append(Problem(f"{path}.min_length",
                                    f"Field '{field['key']}' has min_length above max_length."))
        return problems

    def sample(self, field, rng):
        limit = field.get("max_length", self.default_max)
        text = f"{rng.choice(self.words)} {rng.randint(1, 999)}"[:limit].strip()
        return text.ljust(field.get("min_length", 0), "x")


class Textarea(Text):
    name = "textarea"
    label = {"en": "Multi-line text", "zh-CN": "多行文本"}
    filter_ops = ("contains",)
    sortable = False
    default_max = 20000

    def coerce_present(self, raw, field):
        if not isinstance(raw, str):
            raise CoercionError("must be text, got {value}", value=_value_repr(raw))
        return raw.replace("\r\n", "\n").strip("\n")

    def form_field(self, field, label, locale):
        return TextAreaField(label, render_kw={**self.render_kw(field, locale), "rows": 4})


class FormattedText(Text):
    """Single-line text with a fixed format and an input of its own (e-mail, phone, web address)."""

    options = {}
    value_schema: dict = {}
    widget = None
    sample_format = ""

    def schema(self, field):
        return {"type": "string", **self.value_schema}

    def form_field(self, field, label, locale):
        return StringField(label, widget=self.widget, render_kw=self.render_kw(field, locale))

    def sample(self, field, rng):
        return self.sample_format.format(word=rng.choice(self.words).lower(), n=rng.randint(10, 99),
                                         a=rng.randint(1000, 9999), b=rng.randint(1000, 9999))


class Email(FormattedText):
    name = "email"
    label = {"en": "E-mail", "zh-CN": "邮箱"}
    describes = "an e-mail address like name@example.com"
    value_schema = {"format": "email", "pattern": EMAIL_PATTERN, "maxLength": 254}
    widget = EmailInput()
    sample_format = "{word}{n}@example.com"


class Phone(FormattedText):
    name = "phone"
    label = {"en": "Phone", "zh-CN": "电话"}
    describes = "a phone number of digits, spaces and dashes, with an optional leading +"
    value_schema = {"pattern": PHONE_PATTERN}
    widget = TelInput()
    sample_format = "+86 1{n}-{a}-{b}"


class Url(FormattedText):
    name = "url"
    label = {"en": "Web address", "zh-CN": "网址"}
    describes = "a web address starting with http:// or https://"
    value_schema = {"format": "uri", "pattern": URL_PATTERN, "maxLength": 2000}
    widget = URLInput()
    sample_format = "https://www.{word}.example.com/"


# --- numbers -------------------------------------------------------------------------------

class Integer(FieldType):
    name = "integer"
    label = {"en": "Whole number", "zh-CN": "整数"}
    options = {"min": {"type": "integer"}, "max": {"type": "integer"}}
    kind = "number"
    filter_ops = ("eq", "gte", "lte")
    numeric = True
    describes = "a whole number"

    def schema(self, field):
        schema = {"type": "integer", "minimum": -INTEGER_LIMIT, "maximum": INTEGER_LIMIT}
        if "min" in field:
            schema["minimum"] = max(field["min"], -INTEGER_LIMIT)
        if "max" in field:
            schema["maximum"] = min(field["max"], INTEGER_LIMIT)
        return schema

    def coerce_present(self, raw, field):
        if isinstance(raw, bool):
            raise CoercionError("must be a whole number, got {value}", value=_value_repr(raw))
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if isinstance(raw, str) and INTEGER_RE.match(raw.strip()) and len(raw.strip()) <= 20:
            return int(raw.strip())
        raise CoercionError("must be a whole number, got {value}", value=_value_repr(raw))

    def form_field(self, field, label, locale):
        kw = self.render_kw(field, locale)
        kw.update({k: field[o] for k, o in (("min", "min"), ("max", "max")) if o in field})
        return StringField(label, widget=NumberInput(step=1), render_kw=kw)

    def display(self, value, field, ctx):
        return "" if value is None else f"{value:,}"

    def sample(self, field, rng):
        lo = field.get("min", min(0, field.get("max", 0)))
        return rng.randint(lo, field.get("max", max(lo, 0) + 1000))


class DecimalNumber(FieldType):
    """Exact decimal numbers, stored as strings with a fixed number of places (money is exact)."""

    name = "decimal"
    label = {"en": "Decimal number", "zh-CN": "小数"}
    options = {"precision": {"type": "integer", "minimum": 0, "maximum": 10},
               "min": NUMBER, "max": NUMBER}
    kind = "number"
    filter_ops = ("eq", "gte", "lte")
    numeric = True
    default_precision = 2
    describes = "a number"

    def places(self, field):
        return field.get("precision", self.default_precision)

    def schema(self, field):
        places = self.places(field)
        fraction = rf"\.\d{{{places}}}" if places else ""
        bounds = {k: str(field[k]) for k in ("min", "max") if k in field}
        return {"type": "string", "pattern": rf"^-?\d{{1,18}}{fraction}$", "decimalRange": bounds}

    def coerce_present(self, raw, field):
        number = self.parse(raw)
        places = self.places(field)
        if abs(number) >= Decimal(10) ** 18:
            raise CoercionError("is too large")
        step = Decimal(1).scaleb(-places)
        exact = number.quantize(step)
        if exact != number:  # "5.00" fits no places; "5.01" does not (never a silent rounding)
            if places == 0:
                raise CoercionError("must be a whole number")
            raise CoercionError("allows at most 1 decimal place" if places == 1 else
                                  "allows at most {places} decimal places", places=places)
        return f"{exact.copy_abs() if exact.is_zero() else exact:f}"  # never "-0.00"

    def parse(self, raw: Any) -> Decimal:
        if isinstance(raw, bool):
            raise self.invalid(raw)
        if isinstance(raw, float):
            if raw != raw or raw in (float("inf"), float("-inf")):
                raise self.invalid(raw)
            return Decimal(repr(raw))  # the shortest digits of the float: 0.1 is exactly 0.1
        if isinstance(raw, int):
            raw = str(raw)
        if isinstance(raw, str):
            text = raw.strip().replace(" ", "")
            if GROUPED_DECIMAL_RE.match(text):
                text = text.replace(",", "")
            if DECIMAL_RE.match(text):
                try:
                    return Decimal(text)
                except InvalidOperation:
                    pass
        raise self.invalid(raw)

    def form_field(self, field, label, locale):
        kw = self.render_kw(field, locale)
        kw["inputmode"] = "decimal"
        return StringField(label, render_kw=kw)

    def display(self, value, field, ctx):
        if value is None:
            return ""
        return f"{Decimal(value):,.{self.places(field)}f}"

    def message(self, keyword, value, field, limit):
        if keyword == "pattern":
            return Message("must be {describes}", describes=self.describes)
        return super().message(keyword, value, field, limit)

    def sample(self, field, rng):
        step = Decimal(1).scaleb(-self.places(field))
        hi_given = Decimal(str(field["max"])) if "max" in field else None
        if "min" in field:
            lo = Decimal(str(field["min"])).quantize(step, rounding=ROUND_CEILING)  # first grid value >= min
        elif hi_given is not None and hi_given < 0:
            lo = hi_given.quantize(step, rounding=ROUND_FLOOR) - 100  # below a negative max
        else:
            lo = Decimal(0)
        hi = hi_given if hi_given is not None else lo + 100000
        span = int((hi - lo) / step)
        value = (lo + step * rng.randint(0, max(span, 0))).quantize(step)
        return f"{value.copy_abs() if value.is_zero() else value:f}"


CURRENCY_SYMBOLS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "HKD": "HK$"}


class Currency(DecimalNumber):
    name = "currency"
    label = {"en": "Currency", "zh-CN": "金额"}
    options = {**DecimalNumber.options,
               "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}
    describes = "an amount of money"

    def display(self, value, field, ctx):
        if value is None:
            return ""
        code = field.get("currency", "CNY")
        return f"{CURRENCY_SYMBOLS.get(code, code + ' ')}{super().display(value, field, ctx)}"


class Percent(DecimalNumber):
    name = "percent"
    label = {"en": "Percent", "zh-CN": "百分比"}
    describes = "a percentage"
    default_precision = 1

    def sample(self, field, rng):
        if "max" in field and Decimal(str(field["max"])) < 0:
            return super().sample(field, rng)
        return super().sample({"min": 0, "max": 100, **field}, rng)

    def display(self, value, field, ctx):
        return "" if value is None else f"{super().display(value, field, ctx)}%"


# --- dates ---------------------------------------------------------------------------------

class Date(FieldType):
    name = "date"
    label = {"en": "Date", "zh-CN": "日期"}
    options = {"min": {"type": "string", "format": "date"}, "max": {"type": "string", "format": "date"}}
    kind = "date"
    filter_ops = ("eq", "gte", "lte")
    describes = "a date like 2026-03-31"

    def schema(self, field):
        schema = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
        bounds = {k: field[k] for k in ("min", "max") if k in field}
        if bounds:
            schema["dateRange"] = bounds
        return schema

    def check(self, field, path, ctx):
        lo, hi = field.get("min"), field.get("max")
        if lo and hi and lo > hi:
            return [Problem(f"{path}.min", f"Field '{field['key']}' has min {lo} after max {hi}.")]
        return []

    def coerce_present(self, raw, field):
        if isinstance(raw, date) and not isinstance(raw, datetime):
            return raw.isoformat()
        return super().coerce_present(raw, field)

    def form_field(self, field, label, locale):
        return StringField(label, widget=DateInput(), render_kw=self.render_kw(field, locale))

    def sample(self, field, rng):
        lo = date.fromisoformat(field["min"]) if "min" in field else None
        hi = date.fromisoformat(field["max"]) if "max" in field else None
        start = lo or (min(hi, date(2026, 1, 1)) if hi else date(2026, 1, 1))
        days = (hi - start).days if hi else 364
        return (start + timedelta(days=rng.randint(0, max(days, 0)))).isoformat()


class DateTime(FieldType):
    name = "datetime"
    label = {"en": "Date and time", "zh-CN": "日期时间"}
    options = {}
    kind = "datetime"
    filter_ops = ("gte", "lte")
    describes = "a date and time like 2026-03-31 14:30"

    def schema(self, field):
        return {"type": "string", "format": "date-time"}

    def coerce_present(self, raw, field):
        if isinstance(raw, datetime):
            moment = raw
        elif isinstance(raw, str):
            text = raw.strip().replace(" ", "T", 1)
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise self.invalid(raw) from None
        else:
            raise self.invalid(raw)
        if moment.tzinfo is None:  # form input carries no zone: read it as UTC
            moment = moment.replace(tzinfo=UTC)
        try:
            moment = moment.astimezone(UTC)
        except (OverflowError, ValueError):  # an offset that leaves years 1-9999
            raise self.invalid(raw) from None
        return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T"
                f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}Z")

    def form_value(self, value, field):
        return "" if value is None else value[:16]

    def form_field(self, field, label, locale):
        return StringField(label, widget=DateTimeLocalInput(), render_kw=self.render_kw(field, locale))

    def display(self, value, field, ctx):
        return "" if value is None else value[:16].replace("T", " ") + " UTC"

    def sample(self, field, rng):
        moment = datetime(2026, 1, 1, 9, tzinfo=UTC) + timedelta(minutes=15 * rng.randint(0, 35000))
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- choices -------------------------------------------------------------------------------

class Boolean(FieldType):
    name = "boolean"
    label = {"en": "Yes / no", "zh-CN": "是/否"}
    options = {}
    kind = "boolean"
    filter_ops = ("eq",)
    describes = "yes or no (true or false)"
    TRUE = {"true", "1", "yes", "on", "y"}
    FALSE = {"false", "0", "no", "off", "n"}

    def schema(self, field):
        return {"type": "boolean"}

    def coerce(self, raw, field):
        if _blank(raw):
            return None
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in self.TRUE | self.FALSE:
            return raw.strip().lower() in self.TRUE
        raise self.invalid(raw)

    def form_value(self, value, field):
        return bool(value)

    def form_field(self, field, label, locale):
        return BooleanField(label)

    def display(self, value, field, ctx):
        if value is None:
            return ""
        words = {True: {"en": "Yes", "zh-CN": "是"}, False: {"en": "No", "zh-CN": "否"}}[value]
        return words.get(ctx.locale, words["en"])

    def sample(self, field, rng):
        return rng.random() < 0.5


OPTIONS_SCHEMA = {
    "type": "array", "minItems": 1, "maxItems": 500,
    "items": {"type": "object", "required": ["value", "label"], "additionalProperties": False,
              "properties": {"value": {"type": "string", "minLength": 1, "maxLength": 100},
                             "label": LABEL_SCHEMA,
                             "color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
                             "parent": {"anyOf": [{"type": "string"},
                                                  {"type": "array", "items": {"type": "string"}}]}}},
}
KEY_SCHEMA = {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}


class Select(FieldType):
    name = "select"
    label = {"en": "Single choice", "zh-CN": "下拉单选"}
    # filter_by: the key of another field; an option with a "parent" shows only while that
    # field's value is (one of) its parent (cascading choices: province -> city).
    example = {"options": [{"value": "a", "label": "A"}, {"value": "b", "label": "B"}]}
    options = {"options": OPTIONS_SCHEMA, "filter_by": KEY_SCHEMA}
    filter_ops = ("eq", "in")
    describes = "one of the listed choices"

    def option_schema(self):
        schema = super().option_schema()
        schema["required"] = ["options"]
        return schema

    def values(self, field) -> list[str]:
        return [o["value"] for o in field.get("options", [])]

    def schema(self, field):
        return {"type": "string", "enum": self.values(field)}

    def check(self, field, path, ctx):
        seen, problems = set(), []
        for i, option in enumerate(field.get("options", [])):
            if option["value"] in seen:
                problems.append(Problem(f"{path}.options[{i}].value",
                                        f"Option value '{option['value']}' appears twice in field '{field['key']}'."))
            seen.add(option["value"])
        return problems

    def coerce_present(self, raw, field):
        if isinstance(raw, str):
            return raw.strip()
        raise CoercionError("must be one of the listed choices, got {value}", value=_value_repr(raw))

    def choices(self, field, locale) -> list[tuple[str, str]]:
        return [(o["value"], text_of(o["label"], locale)) for o in field.get("options", [])]

    def form_field(self, field, label, locale):
        return SelectField(label, choices=[SelectChoice("", "—")] + self.option_choices(field, locale),
                           validate_choice=False)

    def option_choices(self, field: dict, locale: str) -> list[SelectChoice]:
        """Choices carrying their parents (cascading choices filter on them in the browser)."""
        return [SelectChoice(o["value"], text_of(o["label"], locale),
                             render_kw={"data-parent": json.dumps(self.parents(o))} if "parent" in o else {})
                for o in field.get("options", [])]

    @staticmethod
    def parents(option: dict) -> list[str]:
        parent = option.get("parent")
        return [] if parent is None else [parent] if isinstance(parent, str) else list(parent)

    def allowed(self, field: dict, parent_value: Any) -> set[str]:
        """The option values open while the field named by ``filter_by`` holds ``parent_value``."""
        held = set(parent_value) if isinstance(parent_value, list) else {parent_value}
        return {o["value"] for o in field.get("options", [])
                if "parent" not in o or held & set(self.parents(o))}

    def display(self, value, field, ctx):
        return dict(self.choices(field, ctx.locale)).get(value, "" if value is None else str(value))

    def message(self, keyword, value, field, limit):
        if keyword == "enum":
            names = {locale: ", ".join(label for _, label in self.choices(field, locale)) for locale in LOCALES}
            return Message("must be one of: {names}; got {value}", names=names, value=_value_repr(value))
        return super().message(keyword, value, field, limit)

    def sample(self, field, rng):
        return rng.choice(self.values(field))


class MultiSelect(Select):
    name = "multiselect"
    label = {"en": "Multiple choice", "zh-CN": "多选"}
    options = {"options": OPTIONS_SCHEMA, "filter_by": KEY_SCHEMA, "min_items": {"type": "integer", "minimum": 0},
               "max_items": {"type": "integer", "minimum": 1}}
    kind = "list"
    filter_ops = ("contains",)
    sortable = False

    def schema(self, field):
        schema = {"type": "array", "uniqueItems": True, "items": {"type": "string", "enum": self.values(field)}}
        if field.get("min_items"):
            schema["minItems"] = field["min_items"]
        if field.get("max_items"):
            schema["maxItems"] = field["max_items"]
        return schema

    def coerce_present(self, raw, field):
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise CoercionError("must be a list of the listed choices, got {value}", value=_value_repr(raw))
        values = [v.strip() for v in raw if v.strip()]
        return values or None

    def form_value(self, value, field):
        return list(value or [])

    def form_field(self, field, label, locale):
        return SelectMultipleField(label, choices=self.option_choices(field, locale), validate_choice=False,
                                   widget=ListWidget(prefix_label=False), option_widget=CheckboxInput())

    def display(self, value, field, ctx):
        labels = dict(self.choices(field, ctx.locale))
        return ", ".join(labels.get(v, v) for v in value or [])

    def check(self, field, path, ctx):
        problems = super().check(field, path, ctx)
        most = min(field.get("max_items", len(field.get("options", []))), len(field.get("options", [])))
        if field.get("min_items", 0) > most:
            problems.append(Problem(f"{path}.min_items", f"Field '{field['key']}' has min_items above max_items "
                                                         f"or above the number of options ({most})."))
        return problems

    def sample(self, field, rng):
        values = self.values(field)
        low = max(field.get("min_items", 1), 1)
        high = min(field.get("max_items", len(values)), len(values))
        return rng.sample(values, rng.randint(min(low, high), high))


# --- references ----------------------------------------------------------------------------

class Reference(FieldType):
    """A value that is the id of something else (a user, a record); existence is checked apart."""

    kind = "id"
    filter_ops = ("eq",)
    numeric = True

    def schema(self, field):
        return {"type": "integer", "minimum": 1, "maximum": ID_LIMIT}

    def coerce_present(self, raw, field):
        if isinstance(raw, bool):
            raise self.invalid(raw)
        if isinstance(raw, str) and ascii_digits(raw.strip()) and len(raw.strip()) < 12:
            raw = int(raw.strip())
        if isinstance(raw, int) and 1 <= raw <= ID_LIMIT:
            return raw
        if isinstance(raw, str) and ascii_digits(raw.strip()) and len(raw.strip()) < 12:
            return int(raw.strip())
        raise self.invalid(raw)

    def form_field(self, field, label, locale):
        return SelectField(label, choices=select_choices([], blank=True), validate_choice=False)

    def message(self, keyword, value, field, limit):
        return self.invalid(value).message


class Member(Reference):
    name = "user"
    label = {"en": "Member", "zh-CN": "成员"}
    options = {}
    describes = "an active member"

    def display(self, value, field, ctx):
        return "" if value is None else ctx.users.get(value, f"User #{value}")

    def sample(self, field, rng):
        return None  # members depend on the installation; demo data picks real ones


FILL_SCHEMA = {"type": "object", "maxProperties": 50, "propertyNames": KEY_SCHEMA,
               "additionalProperties": KEY_SCHEMA}


class Relation(Reference):
    name = "relation"
    label = {"en": "Related record", "zh-CN": "关联记录"}
    # fill: {field of this entity: field of the target} copied when a record is chosen
    # (data linkage); fill_locked: the copied fields cannot be edited. filter: {field of the
    # target: field of this entity} limits the choices to records that match.
    example = {"target": "company"}
    options = {"target": KEY_SCHEMA, "fill": FILL_SCHEMA, "fill_locked": {"type": "boolean"},
               "filter": FILL_SCHEMA}
    describes = "a record you can see"

    def option_schema(self):
        schema = super().option_schema()
        schema["required"] = ["target"]
        return schema

    def check(self, field, path, ctx):
        if field.get("target") and field["target"] not in ctx.entity_keys:
            known = ", ".join(sorted(ctx.entity_keys)) or "none yet"
            return [Problem(f"{path}.target", f"Field '{field['key']}' relates to entity "
                            f"'{field['target']}', which this app does not have (entities: {known}).")]
        return []

    def display(self, value, field, ctx):
        return "" if value is None else ctx.records.get(value, f"#{value}")

    def sample(self, field, rng):
        return None  # related records depend on the data; demo data picks real ones


# --- more single values ----------------------------------------------------------------------

class Rating(Integer):
    name = "rating"
    label = {"en": "Rating", "zh-CN": "评分"}
    options = {"max": {"type": "integer", "minimum": 3, "maximum": 10}}
    describes = "a rating"

    def stars(self, field: dict) -> int:
        return field.get("max", 5)

    def schema(self, field):
        return {"type": "integer", "minimum": 1, "maximum": self.stars(field)}

    def message(self, keyword, value, field, limit):
        if keyword in ("minimum", "maximum"):
            return Message("must be between 1 and {limit}", limit=self.stars(field))
        return super().message(keyword, value, field, limit)

    def form_field(self, field, label, locale):
        choices = [SelectChoice(str(i), "★" * i) for i in range(1, self.stars(field) + 1)]
        return RadioField(label, choices=choices, validate_choice=False)

    def display(self, value, field, ctx):
        return "" if value is None else "★" * value + "☆" * (self.stars(field) - value)

    def sample(self, field, rng):
        return rng.randint(1, self.stars(field))


TIME_RE = re.compile(r"^([0-9]{1,2}):([0-9]{2})(?::[0-9]{2})?$")


class Time(FieldType):
    name = "time"
    label = {"en": "Time", "zh-CN": "时间"}
    options = {}
    kind = "time"
    filter_ops = ("eq", "gte", "lte")
    describes = "a time like 14:30"

    def schema(self, field):
        return {"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$"}

    def coerce_present(self, raw, field):
        match = TIME_RE.match(raw.strip()) if isinstance(raw, str) else None
        if not match or int(match[1]) > 23 or int(match[2]) > 59:
            raise CoercionError("must be a time like 14:30, got {value}", value=_value_repr(raw))
        return f"{int(match[1]):02d}:{match[2]}"

    def form_field(self, field, label, locale):
        return StringField(label, widget=TimeInput(), render_kw=self.render_kw(field, locale))

    def sample(self, field, rng):
        return f"{rng.randint(8, 18):02d}:{rng.choice(['00', '15', '30', '45'])}"


DURATION_RE = re.compile(r"^(?:(\d+(?:\.\d+)?)\s*(?:h|hr|hrs|hours?|小时))?"
                         r"\s*(?:(\d+)\s*(?:m|min|mins|minutes?|分钟?))?$", re.IGNORECASE)


class Duration(FieldType):
    """A length of time, stored as whole minutes; typed as 90, 1:30, 1h 30m or 1.5h."""

    name = "duration"
    label = {"en": "Duration", "zh-CN": "时长"}
    options = {"max": {"type": "integer", "minimum": 1}}
    kind = "number"
    numeric = True
    filter_ops = ("eq", "gte", "lte")
    describes = "a duration"

    def schema(self, field):
        return {"type": "integer", "minimum": 0, "maximum": field.get("max", 10**7)}

    def coerce_present(self, raw, field):
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        text = raw.strip() if isinstance(raw, str) else ""
        if ascii_digits(text) and len(text) < 9:
            return int(text)
        clock = re.match(r"^(\d{1,5}):([0-5]\d)$", text)
        if clock:
            return int(clock[1]) * 60 + int(clock[2])
        match = DURATION_RE.match(text)
        if text and match and (match[1] or match[2]):
            hours = Decimal(match[1] or 0)
            minutes = hours * 60 + int(match[2] or 0)
            if minutes == minutes.to_integral_value():
                return int(minutes)
        raise CoercionError("must be a duration like 1h 30m or 90 (minutes), got {value}", value=_value_repr(raw))

    def form_value(self, value, field):
        return "" if value is None else self.display(value, field, DisplayContext())

    def display(self, value, field, ctx):
        if value is None:
            return ""
        hours, minutes = divmod(value, 60)
        if ctx.locale == "zh-CN":
            return (f"{hours}小时" if hours else "") + (f"{minutes}分钟" if minutes or not hours else "")
        parts = (f"{hours}h" if hours else "", f"{minutes}m" if minutes or not hours else "")
        return " ".join(part for part in parts if part)

    def form_field(self, field, label, locale):
        return StringField(label, render_kw={**self.render_kw(field, locale), "placeholder": "1h 30m"})

    def sample(self, field, rng):
        return min(rng.choice([15, 30, 45, 60, 90, 120]), field.get("max", 10**7))


class Tags(FieldType):
    name = "tags"
    label = {"en": "Tags", "zh-CN": "标签"}
    options = {"max_items": {"type": "integer", "minimum": 1, "maximum": 100},
               "max_length": {"type": "integer", "minimum": 1, "maximum": 200}}
    kind = "list"
    filter_ops = ("contains",)
    sortable = False
    describes = "a list of tags"
    SPLIT = re.compile(r"[,，;；\n]")

    def schema(self, field):
        return {"type": "array", "uniqueItems": True, "maxItems": field.get("max_items", 20),
                "items": {"type": "string", "minLength": 1, "maxLength": field.get("max_length", 50)}}

    def coerce_present(self, raw, field):
        if isinstance(raw, str):
            raw = self.SPLIT.split(raw)
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise self.invalid(raw)
        tags: list[str] = []
        for tag in (v.strip() for v in raw):
            if tag and tag not in tags:
                tags.append(tag)
        return tags or None

    def message(self, keyword, value, field, limit):
        if keyword == "maxItems":
            return counted("allows at most {limit} tags", limit)
        if keyword == "maxLength":
            return counted("has a tag longer than {limit} characters", limit)
        return super().message(keyword, value, field, limit)

    def form_value(self, value, field):
        return ", ".join(value or [])

    def form_field(self, field, label, locale):
        return StringField(label, render_kw={**self.render_kw(field, locale), "data-tags": "1"})

    def display(self, value, field, ctx):
        return ", ".join(value or [])

    def sample(self, field, rng):
        tags = rng.sample(["vip", "urgent", "渠道", "partner", "renewal"], rng.randint(1, 3))
        short = list(dict.fromkeys(t[:field.get("max_length", 50)] for t in tags))
        return short[:field.get("max_items", 20)]


# --- composite values ------------------------------------------------------------------------

class Composite(FieldType):
    """A value made of named parts, entered through a small sub-form."""

    kind = "object"
    filter_ops = ()
    sortable = False

    @abstractmethod
    def parts(self, field: dict) -> tuple[str, ...]:
        """The names of the value's parts, in the order the form shows them."""

    def part_label(self, part: str, locale: str) -> str:
        return text_of(self.PART_LABELS[part], locale)

    def form_field(self, field, label, locale):
        attrs = {part: self.part_field(part, field, locale) for part in self.parts(field)}
        return FormField(type(f"{self.name.title()}Form", (Form,), attrs), label=label, separator="-")

    def part_field(self, part: str, field: dict, locale: str):
        return StringField(self.part_label(part, locale))

    def form_value(self, value, field):
        return {part: "" if (value or {}).get(part) is None else str(value[part]) for part in self.parts(field)}

    def check_parts(self, raw: Any, field: dict) -> dict:
        if isinstance(raw, dict):
            unknown = [k for k in raw if k not in self.parts(field) and k != "csrf_token"]
            if unknown:
                raise CoercionError("has an unknown part '{part}'; use {parts}", part=unknown[0],
                                    parts=", ".join(self.parts(field)))
            return {k: v for k, v in raw.items() if k in self.parts(field)}
        raise self.invalid(raw)

    def coerce(self, raw, field):
        if _blank(raw) or (isinstance(raw, dict) and all(_blank(v) for v in raw.values())):
            return None
        refuse_nul(raw)
        return self.coerce_present(raw, field)


class Address(Composite):
    """Province, city, district and street (Chinese style), or free-form lines."""

    name = "address"
    label = {"en": "Address", "zh-CN": "地址"}
    options = {"style": {"enum": ["cn", "free"]}}
    describes = "an address"
    PART_LABELS = {"province": {"en": "Province", "zh-CN": "省/直辖市"}, "city": {"en": "City", "zh-CN": "市"},
                   "district": {"en": "District", "zh-CN": "区/县"}, "street": {"en": "Street", "zh-CN": "详细地址"},
                   "postcode": {"en": "Postcode", "zh-CN": "邮编"}, "country": {"en": "Country", "zh-CN": "国家/地区"}}

    def parts(self, field):
        if field.get("style") == "free":
            return ("street", "city", "postcode", "country")
        return ("province", "city", "district", "street")

    def schema(self, field):
        return {"type": "object", "additionalProperties": False, "minProperties": 1,
                "properties": {part: {"type": "string", "minLength": 1, "maxLength": 200}
                               for part in self.parts(field)}}

    def coerce_present(self, raw, field):
        if isinstance(raw, str):
            raw = {"street": raw}
        parts = self.check_parts(raw, field)
        value = {}
        for part, text in parts.items():
            if text is None or (isinstance(text, str) and not text.strip()):
                continue
            if not isinstance(text, str):
                raise self.invalid(raw)
            value[part] = " ".join(text.split())
        return value or None

    def part_field(self, part, field, locale):
        kw = {"autocomplete": {"province": "address-level1", "city": "address-level2",
                               "district": "address-level3", "street": "street-address",
                               "postcode": "postal-code", "country": "country-name"}[part]}
        return StringField(self.part_label(part, locale), render_kw=kw)

    def display(self, value, field, ctx):
        if not value:
            return ""
        parts = [value[p] for p in self.parts(field) if value.get(p)]
        return "".join(parts) if field.get("style", "cn") == "cn" and ctx.locale == "zh-CN" else ", ".join(parts)

    def sample(self, field, rng):
        if field.get("style") == "free":
            return {"street": f"{rng.randint(1, 200)} Market Street", "city": "San Francisco", "country": "USA"}
        return {"province": "广东省", "city": "深圳市", "district": rng.choice(["南山区", "福田区"]),
                "street": f"科技园路{rng.randint(1, 99)}号"}


class Geolocation(Composite):
    """A latitude and longitude, typed in or taken from the device (no map needed)."""

    name = "geolocation"
    label = {"en": "Location", "zh-CN": "定位"}
    options = {}
    describes = "a location"
    PART_LABELS = {"lat": {"en": "Latitude", "zh-CN": "纬度"}, "lng": {"en": "Longitude", "zh-CN": "经度"}}

    def parts(self, field):
        return ("lat", "lng")

    def schema(self, field):
        return {"type": "object", "required": ["lat", "lng"], "additionalProperties": False,
                "properties": {"lat": {"type": "number", "minimum": -90, "maximum": 90},
                               "lng": {"type": "number", "minimum": -180, "maximum": 180}}}

    def coerce_present(self, raw, field):
        parts = self.check_parts(raw, field)
        if any(_blank(parts.get(p)) for p in ("lat", "lng")):
            raise CoercionError("needs both latitude and longitude")
        value = {}
        for part in ("lat", "lng"):
            number = parts[part]
            if isinstance(number, bool) or not isinstance(number, (int, float, str)):
                raise self.invalid(raw)
            try:
                value[part] = round(float(Decimal(str(number).strip())), 6)
            except (InvalidOperation, ValueError):
                raise self.invalid(raw) from None
        if not (-90 <= value["lat"] <= 90 and -180 <= value["lng"] <= 180):
            raise CoercionError("must have a latitude between -90 and 90 and a longitude between -180 and 180")
        return value

    def message(self, keyword, value, field, limit):
        return Message("must have a latitude between -90 and 90 and a longitude between -180 and 180")

    def part_field(self, part, field, locale):
        return StringField(self.part_label(part, locale), render_kw={"inputmode": "decimal"})

    def display(self, value, field, ctx):
        return "" if not value else f"{value['lat']:.6f}, {value['lng']:.6f}"

    def sample(self, field, rng):
        return {"lat": round(rng.uniform(22.4, 22.8), 6), "lng": round(rng.uniform(113.8, 114.4), 6)}


# --- files -----------------------------------------------------------------------------------

FILE_VALUE_SCHEMA = {"type": "object", "required": ["id"], "additionalProperties": False,
                     "properties": {"id": {"type": "integer", "minimum": 1}, "name": {"type": "string"},
                                    "size": {"type": "integer"}, "type": {"type": "string"}}}


class Attachment(FieldType):
    """Uploaded files, stored apart; the record keeps ``{id, name, size, type}`` of each."""

    name = "file"
    label = {"en": "Attachment", "zh-CN": "附件"}
    options = {"max_files": {"type": "integer", "minimum": 1, "maximum": 50},
               "max_size_mb": {"type": "number", "exclusiveMinimum": 0, "maximum": 200},
               "accept": {"type": "array", "maxItems": 50,
                          "items": {"type": "string", "pattern": r"^(\.[A-Za-z0-9]{1,10}|[a-z]+/[a-z0-9.+*-]+)$"}}}
    kind = "object"
    filter_ops = ()
    sortable = False
    describes = "a list of uploaded files"
    images_only = False

    def schema(self, field):
        return {"type": "array", "items": FILE_VALUE_SCHEMA, "maxItems": field.get("max_files", 10)}

    def file_ids(self, value: Any) -> list[int]:
        return [item["id"] for item in value or []]

    def coerce_present(self, raw, field):
        if isinstance(raw, (int, dict)) and not isinstance(raw, bool):
            raw = [raw]
        if not isinstance(raw, list):
            raise self.invalid(raw)
        items, seen = [], set()
        for item in raw:
            file_id = item.get("id") if isinstance(item, dict) else item
            if isinstance(file_id, str) and ascii_digits(file_id.strip()) and len(file_id.strip()) < 12:
                file_id = int(file_id)
            if isinstance(file_id, bool) or not isinstance(file_id, int) or not 1 <= file_id <= ID_LIMIT:
                raise self.invalid(raw)
            if file_id not in seen:
                seen.add(file_id)
                items.append({"id": file_id})
        return items or None

    def message(self, keyword, value, field, limit):
        if keyword == "maxItems":
            return counted("allows at most {limit} files", limit)
        return super().message(keyword, value, field, limit)

    def form_field(self, field, label, locale):
        kw = {"multiple": field.get("max_files", 10) > 1}
        if field.get("accept"):
            kw["accept"] = ",".join(field["accept"])
        return MultipleFileField(label, render_kw=kw)

    def display(self, value, field, ctx):
        return ", ".join(item.get("name", f"#{item['id']}") for item in value or [])

    def sample(self, field, rng):
        return None  # files depend on the installation


class Image(Attachment):
    name = "image"
    label = {"en": "Image", "zh-CN": "图片"}
    options = {k: v for k, v in Attachment.options.items() if k != "accept"}
    describes = "an uploaded image"
    images_only = True

    def form_field(self, field, label, locale):
        return MultipleFileField(label, render_kw={"multiple": field.get("max_files", 10) > 1,
                                                   "accept": "image/png,image/jpeg,image/gif,image/webp"})


class Signature(Attachment):
    """A handwritten signature drawn on a canvas, stored as a PNG image."""

    name = "signature"
    label = {"en": "Signature", "zh-CN": "手写签名"}
    options = {}
    describes = "a drawn signature"
    images_only = True

    def schema(self, field):
        return {"type": "array", "items": FILE_VALUE_SCHEMA, "maxItems": 1}

    def form_field(self, field, label, locale):
        return HiddenField(label)

    def display(self, value, field, ctx):
        return "✍" if value else ""


# --- computed values -------------------------------------------------------------------------

class Serial(FieldType):
    """A number the server gives each new record from a pattern, like QT-{YYYY}{MM}-{0000}."""

    name = "serial"
    label = {"en": "Serial number", "zh-CN": "流水号"}
    example = {"pattern": "NO-{0000}"}
    options = {"pattern": {"type": "string", "minLength": 1, "maxLength": 60}}
    filter_ops = ("eq", "contains")
    computed = True
    describes = "text"

    def option_schema(self):
        schema = super().option_schema()
        schema["required"] = ["pattern"]
        return schema

    def check(self, field, path, ctx):
        from formloom.runtime.serials import check_pattern

        return [Problem(f"{path}.pattern", f"Field '{field['key']}': {message}")
                for message in check_pattern(field.get("pattern", ""))]

    def schema(self, field):
        return {"type": "string", "maxLength": 100}

    def form_field(self, field, label, locale):
        return StringField(label, render_kw={"readonly": True})

    def sample(self, field, rng):
        return None  # the server numbers each new record


FORMULA_RESULTS = {"number": "number", "text": "text", "date": "date", "datetime": "datetime",
                   "boolean": "boolean"}


class Formula(FieldType):
    """A value computed from other fields by an expression (see docs/formulas.md)."""

    name = "formula"
    label = {"en": "Formula", "zh-CN": "公式"}
    example = {"expression": "1 + 1"}
    options = {"expression": {"type": "string", "minLength": 1, "maxLength": 2000},
               "result": {"enum": list(FORMULA_RESULTS)},
               "precision": {"type": "integer", "minimum": 0, "maximum": 10},
               "currency": {"type": "string", "pattern": "^[A-Z]{3}$"}}
    computed = True
    filter_ops = ("eq", "gte", "lte")

    def option_schema(self):
        schema = super().option_schema()
        schema["required"] = ["expression"]
        return schema

    def result(self, field: dict) -> str:
        return field.get("result", "number")

    def kind_of(self, field):
        return FORMULA_RESULTS[self.result(field)]

    def delegate(self, field: dict) -> FieldType:
        return FIELD_TYPES[{"number": "currency" if field.get("currency") else "decimal", "text": "text",
                            "date": "date", "datetime": "datetime", "boolean": "boolean"}[self.result(field)]]

    def schema(self, field):
        return self.delegate(field).schema({k: v for k, v in field.items() if k not in ("min", "max")})

    def form_field(self, field, label, locale):
        return StringField(label, render_kw={"readonly": True, "data-computed": "1"})

    def display(self, value, field, ctx):
        return self.delegate(field).display(value, field, ctx)

    def sample(self, field, rng):
        return None  # computed from the other fields


class Lookup(FieldType):
    """A read-only copy of a field of the related record chosen in one of this entity's relations."""

    name = "lookup"
    label = {"en": "Lookup", "zh-CN": "查找引用"}
    example = {"relation": "company", "field": "name"}
    options = {"relation": KEY_SCHEMA, "field": KEY_SCHEMA}
    computed = True
    kind = "object"
    filter_ops = ()
    sortable = False

    def option_schema(self):
        schema = super().option_schema()
        schema["required"] = ["relation", "field"]
        return schema

    def schema(self, field):
        return {}

    def form_field(self, field, label, locale):
        return StringField(label, render_kw={"readonly": True, "data-computed": "1"})

    def display(self, value, field, ctx):
        shows = field.get("shows")  # the related field's definition, added when compiled
        if shows and shows.get("type") in FIELD_TYPES and value is not None:
            return FIELD_TYPES[shows["type"]].display(value, shows, ctx)
        if isinstance(value, dict):
            return ", ".join(str(v) for v in value.values())
        if isinstance(value, list):
            return ", ".join(str(v.get("name", v)) if isinstance(v, dict) else str(v) for v in value)
        return "" if value is None else str(value)

    def sample(self, field, rng):
        return None


# --- many references -------------------------------------------------------------------------

class Members(Member):
    name = "users"
    label = {"en": "Members", "zh-CN": "多成员"}
    kind = "ids"
    describes = "active members"
    sortable = False
    filter_ops = ("contains",)

    def schema(self, field):
        return {"type": "array", "uniqueItems": True, "maxItems": 100,
                "items": {"type": "integer", "minimum": 1, "maximum": ID_LIMIT}}

    def coerce_present(self, raw, field):
        if not isinstance(raw, list):
            raw = [raw]
        ids = []
        for item in raw:
            if _blank(item):
                continue
            value = Reference.coerce_present(self, item, field)
            if value not in ids:
                ids.append(value)
        return ids or None

    def form_value(self, value, field):
        return [str(v) for v in value or []]

    def form_field(self, field, label, locale):
        return SelectMultipleField(label, choices=[], validate_choice=False)

    def display(self, value, field, ctx):
        return ", ".join(ctx.users.get(v, f"User #{v}") for v in value or [])


class Relations(Relation):
    name = "relations"
    label = {"en": "Related records", "zh-CN": "关联多条记录"}
    options = {"target": KEY_SCHEMA, "filter": FILL_SCHEMA}
    kind = "ids"
    describes = "records you can see"
    sortable = False
    filter_ops = ("contains",)

    schema = Members.schema
    coerce_present = Members.coerce_present
    form_value = Members.form_value
    form_field = Members.form_field

    def display(self, value, field, ctx):
        return ", ".join(ctx.records.get(v, f"#{v}") for v in value or [])


# --- sub-tables ------------------------------------------------------------------------------

TABLE_COLUMN_TYPES = ("text", "textarea", "integer", "decimal", "currency", "percent", "date", "boolean",
                      "select", "user", "relation", "email", "phone", "url", "time", "rating", "formula")


def rows_message(bound: str, limit: int) -> Message:
    """The sub-table row bound ("min" or "max") as a sentence ending, singular or plural."""
    if bound == "min":
        return counted("needs at least {limit} rows", limit)
    return counted("allows at most {limit} rows", limit)


class RowErrors(CoercionError):
    """Problems in a sub-table's rows: ``(row number from 1, column key, message)``."""

    def __init__(self, problems: list[tuple[int, str, Message]]):
        self.problems = problems
        super().__init__("is not valid: {value}", value=f"{len(problems)} rows")


class Table(FieldType):
    """Rows of typed columns (line items), with a minimum and maximum number of rows."""

    name = "table"
    label = {"en": "Sub-table", "zh-CN": "子表单"}
    example = {"fields": [{"key": "item", "type": "text", "label": "Item", "required": True},
                          {"key": "qty", "type": "integer", "label": "Qty", "min": 1}]}
    options = {"fields": {"type": "array", "minItems": 1, "maxItems": 50, "items": {"$ref": "#/$defs/field"}},
               "min_rows": {"type": "integer", "minimum": 0, "maximum": 1000},
               "max_rows": {"type": "integer", "minimum": 1, "maximum": 1000}}
    kind = "object"
    filter_ops = ()
    sortable = False
    describes = "a list of rows"

    def option_schema(self):
        schema = super().option_schema()
        schema["required"] = ["fields"]
        return schema

    def columns(self, field: dict) -> list[dict]:
        return field.get("fields", [])

    def check(self, field, path, ctx):
        problems = []
        lo, hi = field.get("min_rows"), field.get("max_rows")
        if lo is not None and hi is not None and lo > hi:
            problems.append(Problem(f"{path}.min_rows", f"Field '{field['key']}' has min_rows above max_rows."))
        seen = set()
        for i, column in enumerate(self.columns(field)):
            col_path = f"{path}.fields[{i}]"
            if not isinstance(column, dict) or column.get("type") not in TABLE_COLUMN_TYPES:
                problems.append(Problem(f"{col_path}.type", f"Columns of sub-table '{field['key']}' may be of type "
                                                            f"{', '.join(TABLE_COLUMN_TYPES)}."))
                continue
            if column.get("key") in seen:
                problems.append(Problem(f"{col_path}.key", f"Column key '{column['key']}' is used twice in "
                                                           f"sub-table '{field['key']}'."))
            seen.add(column.get("key"))
            if column["type"] != "formula":
                problems.extend(FIELD_TYPES[column["type"]].check(column, col_path, ctx))
        return problems

    def schema(self, field):
        columns = self.columns(field)
        row = {"type": "object", "additionalProperties": False,
               "properties": {c["key"]: FIELD_TYPES[c["type"]].schema(c) for c in columns},
               "required": [c["key"] for c in columns if c.get("required")]}
        schema = {"type": "array", "items": row, "maxItems": field.get("max_rows", 200)}
        if field.get("min_rows"):
            schema["minItems"] = field["min_rows"]
        return schema

    def coerce_present(self, raw, field):
        if not isinstance(raw, list):
            raise CoercionError("must be a list, got {value}", value=_value_repr(raw))
        rows, problems = [], []
        keys = {c["key"] for c in self.columns(field)}
        for number, item in enumerate(raw, start=1):
            if not isinstance(item, dict):
                problems.append((number, "", Message("must be a row of column values, got {value}",
                                                     value=_value_repr(item))))
                continue
            row = {}
            for column in self.columns(field):
                column_type = FIELD_TYPES[column["type"]]
                if column_type.computed:
                    continue
                try:
                    value = column_type.coerce(item.get(column["key"]), column)
                except CoercionError as exc:
                    problems.append((number, column["key"], exc.message))
                    continue
                if value is not None:
                    row[column["key"]] = value
            unknown = [k for k in item if k not in keys]
            if unknown:
                problems.append((number, unknown[0], Message("is not valid: {value}", value=_value_repr(unknown[0]))))
            if row or any(not _blank(v) for v in item.values()):
                rows.append(row)
        if problems:
            raise RowErrors(problems)
        return rows or None

    def message(self, keyword, value, field, limit):
        if keyword == "minItems":
            return rows_message("min", limit)
        if keyword == "maxItems":
            return rows_message("max", limit)
        return super().message(keyword, value, field, limit)

    def form_field(self, field, label, locale):
        from formloom.runtime.forms import attr_name

        attrs = {attr_name(c["key"]): FIELD_TYPES[c["type"]].form_field(c, text_of(c["label"], locale), locale)
                 for c in self.columns(field)}
        row_form = type(f"Row_{field['key']}", (Form,), attrs)
        # No max_entries: WTForms would drop extra rows silently; the schema refuses them instead.
        return FieldList(FormField(row_form), label=label, min_entries=max(field.get("min_rows", 0), 1))

    def from_form(self, data, field):
        # An untouched row of the HTML form (blank, or only unticked boxes) is no row.
        return [{key[2:]: value for key, value in row.items()} for row in data or []
                if any(not _blank(value) and value is not False for value in row.values())]

    def form_value(self, value, field):
        from formloom.runtime.forms import attr_name

        rows = value or []
        return [{attr_name(c["key"]): FIELD_TYPES[c["type"]].form_value(row.get(c["key"]), c)
                 for c in self.columns(field)} for row in rows]

    def display(self, value, field, ctx):
        return f"{len(value or [])}"

    def sample(self, field, rng):
        low = max(field.get("min_rows", 0), 1)
        count = rng.randint(low, max(low, min(field.get("max_rows", 200), 5)))
        rows = []
        for _ in range(count):
            row = {}
            for column in self.columns(field):
                value = FIELD_TYPES[column["type"]].sample(column, rng)
                if value is not None:
                    row[column["key"]] = value
            rows.append(row)
        return rows


@dataclass
class CheckContext:
    """What cross-reference checks of a field need to know about the rest of the app."""

    entity_keys: set[str]
    entities: dict[str, dict] = dc_field(default_factory=dict)  # key -> body, this entity included


FIELD_TYPES: dict[str, FieldType] = {
    t.name: t for t in (
        Text(), Textarea(), Integer(), DecimalNumber(), Currency(), Percent(), Date(), DateTime(),
        Boolean(), Select(), MultiSelect(), Email(), Phone(), Url(), Member(), Relation(),
        Rating(), Time(), Duration(), Tags(), Address(), Geolocation(), Attachment(), Image(), Signature(),
        Serial(), Formula(), Lookup(), Members(), Relations(), Table(),
    )
}

# Types whose value refers to something outside the record (checked against the database).
REFERENCE_TYPES = frozenset(name for name, t in FIELD_TYPES.items() if isinstance(t, Reference))
FILE_TYPES = frozenset(name for name, t in FIELD_TYPES.items() if isinstance(t, Attachment))

def describe_types(locale: str = "en") -> list[dict]:
    """The registry as data, for the builder and for integrators (``GET /api/v1/field-types``)."""
    return [{"type": t.name, "label": text_of(t.label, locale), "options": t.option_schema(),
             "filter_ops": list(t.filter_ops), "sortable": t.sortable} for t in FIELD_TYPES.values()]

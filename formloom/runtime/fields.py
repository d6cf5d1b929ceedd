"""The field-type registry: one small object per type.

Each type knows the definition options it accepts (a meta-schema fragment), the JSON Schema of
its stored value, how to coerce form or API input into that value, its WTForms field, how to
display a value, which filters it supports, and how to make sample values.
"""
from __future__ import annotations

import random
from abc import ABC, abstractmethod
import re
from dataclasses import dataclass, field as dc_field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any

from wtforms import BooleanField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import CheckboxInput, ListWidget
from wtforms.widgets import DateInput, DateTimeLocalInput, EmailInput, NumberInput, TelInput, URLInput

from formloom.platform.errors import Problem
from formloom.runtime.labels import text_of


class CoercionError(ValueError):
    """Input that cannot be turned into a value of the field's type; the message is for the user."""


@dataclass
class DisplayContext:
    """What displaying needs beyond the value: names of users and titles of related records."""

    locale: str = "en"
    users: dict[int, str] = dc_field(default_factory=dict)
    records: dict[int, str] = dc_field(default_factory=dict)


LABEL_SCHEMA = {"$ref": "#/$defs/label"}
NUMBER = {"type": "number"}
COMMON_OPTIONS = ("key", "type", "label", "help", "required", "default", "placeholder")

EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PHONE_PATTERN = r"^\+?[0-9][0-9 ()\-]{3,22}[0-9]$"
URL_PATTERN = r"^https?://[^\s/$.?#][^\s]*$"
INTEGER_RE = re.compile(r"^[+-]?\d+$")
DECIMAL_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
GROUPED_DECIMAL_RE = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
INTEGER_LIMIT = 2**53 - 1  # exact in JavaScript and in JSON readers of every kind


def select_choices(pairs: list[tuple[str, str]], blank: bool = False) -> list[SelectChoice]:
    """WTForms choices from (value, label) pairs, optionally led by an empty choice."""
    return ([SelectChoice("", "—")] if blank else []) + [SelectChoice(v, label) for v, label in pairs]


def _blank(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip() == "") or raw == []


def _value_repr(raw: Any) -> str:
    text = raw if isinstance(raw, str) else repr(raw)
    return f"'{text[:60]}'" if isinstance(raw, str) else text[:60]


class FieldType(ABC):
    """Base of the field types. Each type must give its value schema and sample values."""

    name = ""
    label: dict = {}
    options: dict = {}  # meta-schema of the type's own definition options
    filter_ops: tuple[str, ...] = ()
    sortable = True
    numeric = False  # sorted as a number
    describes = "a value"

    # --- definition -------------------------------------------------------------------------
    def option_schema(self) -> dict:
        props = {name: {} for name in COMMON_OPTIONS}
        props.update(self.options)
        return {"properties": props}

    def check(self, field: dict, path: str, ctx: "CheckContext") -> list[Problem]:
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
        return self.coerce_present(raw, field)

    def coerce_present(self, raw: Any, field: dict) -> Any:
        if not isinstance(raw, str):
            raise CoercionError(f"must be text, got {_value_repr(raw)}")
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
    def message(self, keyword: str, value: Any, field: dict, limit: Any) -> str:
        """The sentence ending for a JSON Schema error (after the field's label)."""
        return {
            "type": f"must be {self.describes}, got {_value_repr(value)}",
            "maxLength": f"must be at most {limit} characters long",
            "minLength": f"must be at least {limit} characters long",
            "minimum": f"must be at least {limit}",
            "maximum": f"must be at most {limit}",
            "pattern": f"must be {self.describes}, got {_value_repr(value)}",
            "format": f"must be {self.describes}, got {_value_repr(value)}",
            "minItems": f"needs at least {limit} choices",
            "maxItems": f"allows at most {limit} choices",
            "uniqueItems": "must not repeat a choice",
        }.get(keyword, f"is not valid: {_value_repr(value)}")


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
        text = f"{rng.choice(self.words)} {rng.randint(1, 999)}"
        return text[:limit].rjust(field.get("min_length", 0), "x")


class Textarea(Text):
    name = "textarea"
    label = {"en": "Multi-line text", "zh-CN": "多行文本"}
    filter_ops = ("contains",)
    sortable = False
    default_max = 20000

    def coerce_present(self, raw, field):
        if not isinstance(raw, str):
            raise CoercionError(f"must be text, got {_value_repr(raw)}")
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
    filter_ops = ("eq", "gte", "lte")
    numeric = True
    describes = "a whole number"

    def schema(self, field):
        schema = {"type": "integer", "minimum": -INTEGER_LIMIT, "maximum": INTEGER_LIMIT}
        if "min" in field:
            schema["minimum"] = field["min"]
        if "max" in field:
            schema["maximum"] = field["max"]
        return schema

    def coerce_present(self, raw, field):
        if isinstance(raw, bool):
            raise CoercionError(f"must be a whole number, got {_value_repr(raw)}")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if isinstance(raw, str) and INTEGER_RE.match(raw.strip()) and len(raw.strip()) <= 20:
            return int(raw.strip())
        raise CoercionError(f"must be a whole number, got {_value_repr(raw)}")

    def form_field(self, field, label, locale):
        kw = self.render_kw(field, locale)
        kw.update({k: field[o] for k, o in (("min", "min"), ("max", "max")) if o in field})
        return StringField(label, widget=NumberInput(step=1), render_kw=kw)

    def display(self, value, field, ctx):
        return "" if value is None else f"{value:,}"

    def sample(self, field, rng):
        return rng.randint(field.get("min", 0), field.get("max", max(field.get("min", 0), 0) + 1000))


class DecimalNumber(FieldType):
    """Exact decimal numbers, stored as strings with a fixed number of places (money is exact)."""

    name = "decimal"
    label = {"en": "Decimal number", "zh-CN": "小数"}
    options = {"precision": {"type": "integer", "minimum": 0, "maximum": 10},
               "min": NUMBER, "max": NUMBER}
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
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            if places == 0:
                raise CoercionError("must be a whole number")
            raise CoercionError(f"allows at most {places} decimal place{'s' if places != 1 else ''}")
        if abs(number) >= Decimal(10) ** 18:
            raise CoercionError("is too large")
        return f"{number.quantize(Decimal(1).scaleb(-places)):f}"

    def parse(self, raw: Any) -> Decimal:
        if isinstance(raw, bool):
            raise CoercionError(f"must be {self.describes}, got {_value_repr(raw)}")
        if isinstance(raw, (int, float)):
            raw = repr(raw) if isinstance(raw, float) else str(raw)
        if isinstance(raw, str):
            text = raw.strip().replace(" ", "")
            if GROUPED_DECIMAL_RE.match(text):
                text = text.replace(",", "")
            if DECIMAL_RE.match(text):
                try:
                    return Decimal(text)
                except InvalidOperation:
                    pass
        raise CoercionError(f"must be {self.describes}, got {_value_repr(raw)}")

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
            return f"must be {self.describes}"
        return super().message(keyword, value, field, limit)

    def sample(self, field, rng):
        lo = Decimal(str(field.get("min", 0)))
        hi = Decimal(str(field.get("max", lo + 100000)))
        step = Decimal(1).scaleb(-self.places(field))
        span = int((hi - lo) / step)
        return f"{(lo + step * rng.randint(0, max(span, 0))).quantize(step):f}"


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
        return super().sample({"min": 0, "max": 100, **field}, rng)

    def display(self, value, field, ctx):
        return "" if value is None else f"{super().display(value, field, ctx)}%"


# --- dates ---------------------------------------------------------------------------------

class Date(FieldType):
    name = "date"
    label = {"en": "Date", "zh-CN": "日期"}
    options = {"min": {"type": "string", "format": "date"}, "max": {"type": "string", "format": "date"}}
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
        return (date(2026, 1, 1) + timedelta(days=rng.randint(0, 364))).isoformat()


class DateTime(FieldType):
    name = "datetime"
    label = {"en": "Date and time", "zh-CN": "日期时间"}
    options = {}
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
                raise CoercionError(f"must be {self.describes}, got {_value_repr(raw)}") from None
        else:
            raise CoercionError(f"must be {self.describes}, got {_value_repr(raw)}")
        if moment.tzinfo is None:  # form input carries no zone: read it as UTC
            moment = moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")

    def form_value(self, value, field):
        return "" if value is None else value[:16]

    def form_field(self, field, label, locale):
        return StringField(label, widget=DateTimeLocalInput(), render_kw=self.render_kw(field, locale))

    def display(self, value, field, ctx):
        return "" if value is None else value[:16].replace("T", " ") + " UTC"

    def sample(self, field, rng):
        moment = datetime(2026, 1, 1, 9, tzinfo=timezone.utc) + timedelta(minutes=15 * rng.randint(0, 35000))
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- choices -------------------------------------------------------------------------------

class Boolean(FieldType):
    name = "boolean"
    label = {"en": "Yes / no", "zh-CN": "是/否"}
    options = {}
    filter_ops = ("eq",)
    describes = "yes or no (true or false)"
    TRUE = {"true", "1", "yes", "on", "y"}
    FALSE = {"false", "0", "no", "off", "n"}

    def schema(self, field):
        return {"type": "boolean"}

    def coerce(self, raw, field):
        if raw is None or raw == "":
            return None
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.strip().lower() in self.TRUE | self.FALSE:
            return raw.strip().lower() in self.TRUE
        raise CoercionError(f"must be {self.describes}, got {_value_repr(raw)}")

    def form_value(self, value, field):
        return bool(value)

    def form_field(self, field, label, locale):
        return BooleanField(label)

    def display(self, value, field, ctx):
        if value is None:
            return ""
        return {True: {"en": "Yes", "zh-CN": "是"}, False: {"en": "No", "zh-CN": "否"}}[value].get(ctx.locale, "Yes" if value else "No")

    def sample(self, field, rng):
        return rng.random() < 0.5


OPTIONS_SCHEMA = {
    "type": "array", "minItems": 1, "maxItems": 500,
    "items": {"type": "object", "required": ["value", "label"], "additionalProperties": False,
              "properties": {"value": {"type": "string", "minLength": 1, "maxLength": 100},
                             "label": LABEL_SCHEMA,
                             "color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"}}},
}


class Select(FieldType):
    name = "select"
    label = {"en": "Single choice", "zh-CN": "下拉单选"}
    options = {"options": OPTIONS_SCHEMA}
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
        raise CoercionError(f"must be one of the listed choices, got {_value_repr(raw)}")

    def choices(self, field, locale) -> list[tuple[str, str]]:
        return [(o["value"], text_of(o["label"], locale)) for o in field.get("options", [])]

    def form_field(self, field, label, locale):
        return SelectField(label, choices=select_choices(self.choices(field, locale), blank=True),
                           validate_choice=False)

    def display(self, value, field, ctx):
        return dict(self.choices(field, ctx.locale)).get(value, "" if value is None else str(value))

    def message(self, keyword, value, field, limit):
        if keyword == "enum":
            names = ", ".join(label for _, label in self.choices(field, "en"))
            return f"must be one of: {names}; got {_value_repr(value)}"
        return super().message(keyword, value, field, limit)

    def sample(self, field, rng):
        return rng.choice(self.values(field))


class MultiSelect(Select):
    name = "multiselect"
    label = {"en": "Multiple choice", "zh-CN": "多选"}
    options = {"options": OPTIONS_SCHEMA, "min_items": {"type": "integer", "minimum": 0},
               "max_items": {"type": "integer", "minimum": 1}}
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
            raise CoercionError(f"must be a list of the listed choices, got {_value_repr(raw)}")
        values = [v.strip() for v in raw if v.strip()]
        return values or None

    def form_value(self, value, field):
        return list(value or [])

    def form_field(self, field, label, locale):
        return SelectMultipleField(label, choices=select_choices(self.choices(field, locale)), validate_choice=False,
                                   widget=ListWidget(prefix_label=False), option_widget=CheckboxInput())

    def display(self, value, field, ctx):
        labels = dict(self.choices(field, ctx.locale))
        return ", ".join(labels.get(v, v) for v in value or [])

    def sample(self, field, rng):
        values = self.values(field)
        low = max(field.get("min_items", 1), 1)
        high = min(field.get("max_items", len(values)), len(values))
        return rng.sample(values, rng.randint(min(low, high), high))


# --- references ----------------------------------------------------------------------------

class Reference(FieldType):
    """A value that is the id of something else (a user, a record); existence is checked apart."""

    filter_ops = ("eq",)
    numeric = True

    def schema(self, field):
        return {"type": "integer", "minimum": 1}

    def coerce_present(self, raw, field):
        if isinstance(raw, bool):
            raise CoercionError(f"must be {self.describes}, got {_value_repr(raw)}")
        if isinstance(raw, int):
            return raw
        if isinstance(raw, str) and raw.strip().isdigit():
            return int(raw.strip())
        raise CoercionError(f"must be {self.describes}, got {_value_repr(raw)}")

    def form_field(self, field, label, locale):
        return SelectField(label, choices=select_choices([], blank=True), validate_choice=False)

    def message(self, keyword, value, field, limit):
        return f"must be {self.describes}, got {_value_repr(value)}"


class Member(Reference):
    name = "user"
    label = {"en": "Member", "zh-CN": "成员"}
    options = {}
    describes = "an active member"

    def display(self, value, field, ctx):
        return "" if value is None else ctx.users.get(value, f"User #{value}")

    def sample(self, field, rng):
        return None  # members depend on the installation; demo data picks real ones


class Relation(Reference):
    name = "relation"
    label = {"en": "Related record", "zh-CN": "关联记录"}
    options = {"target": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$"}}
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


@dataclass
class CheckContext:
    """What cross-reference checks of a field need to know about the rest of the app."""

    entity_keys: set[str]


FIELD_TYPES: dict[str, FieldType] = {
    t.name: t for t in (
        Text(), Textarea(), Integer(), DecimalNumber(), Currency(), Percent(), Date(), DateTime(),
        Boolean(), Select(), MultiSelect(), Email(), Phone(), Url(), Member(), Relation(),
    )
}

# Types whose value refers to something outside the record (checked against the database).
REFERENCE_TYPES = frozenset(name for name, t in FIELD_TYPES.items() if isinstance(t, Reference))

def describe_types(locale: str = "en") -> list[dict]:
    """The registry as data, for the builder and for integrators (``GET /api/v1/field-types``)."""
    return [{"type": t.name, "label": text_of(t.label, locale), "options": t.option_schema(),
             "filter_ops": list(t.filter_ops), "sortable": t.sortable} for t in FIELD_TYPES.values()]

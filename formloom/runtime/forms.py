"""Compile a form definition into a cached WTForms class that renders and parses HTML.

WTForms does not decide validity here: it carries the typed strings to and from the page, and
:func:`formloom.runtime.validation.validate_values` decides, exactly as for the API.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session

from formloom.platform.models import App, User
from formloom.runtime.compiler import CompiledEntity, checksum
from formloom.runtime.fields import FILE_TYPES, ID_LIMIT, CoercionError, select_choices
from formloom.runtime.labels import text_of
from formloom.runtime.listing import lookup


def attr_name(key: str) -> str:
    """A safe WTForms attribute for a field key (keys like ``data`` or ``validate`` would clash)."""
    return f"f_{key}"


@dataclass(frozen=True)
class Placement:
    """How a form places one field: its width, the form's own help text, its own show-when."""

    width: str = ""  # "" lets the field's type decide; else full, half or third
    help: str = ""
    visible_when: Mapping | None = None


@dataclass(frozen=True)
class Section:
    label: str
    help: str
    keys: tuple[str, ...]
    items: tuple[tuple[str, str], ...] = ()  # ("field", key) or ("text", description)
    visible_when: Mapping | None = None
    placements: Mapping[str, Placement] = field(default_factory=lambda: MappingProxyType({}))

    def placement(self, key: str) -> Placement:
        return self.placements.get(key, DEFAULT_PLACEMENT)


DEFAULT_PLACEMENT = Placement()


@dataclass(frozen=True)
class CompiledForm:
    form_class: type[FlaskForm]
    sections: tuple[Section, ...]
    keys: tuple[str, ...]

    @property
    def section_conditions(self) -> dict[str, Mapping]:
        """Field key -> the form's visibility condition for it (its section's and its own, both)."""
        out = {}
        for section in self.sections:
            for key in section.keys:
                parts = [c for c in (section.visible_when, section.placement(key).visible_when) if c]
                if parts:
                    out[key] = parts[0] if len(parts) == 1 else {"all": parts}
        return out


_CACHE: dict[tuple, CompiledForm] = {}


def compile_form(entity: CompiledEntity, form_body: Mapping, locale: str) -> CompiledForm:
    """The form class for an entity version, a form body and a language (cached)."""
    cache_key = (entity.checksum, checksum(dict(form_body)), locale)
    compiled = _CACHE.get(cache_key)
    if compiled is None:
        if len(_CACHE) > 1024:
            _CACHE.clear()
        compiled = _CACHE[cache_key] = _compile(entity, form_body, locale)
    return compiled


def _compile(entity: CompiledEntity, form_body: Mapping, locale: str) -> CompiledForm:
    attrs: dict[str, Any] = {}
    sections, keys = [], []
    for section in form_body["sections"]:
        items, placements = [], {}
        for item in section["fields"]:
            key = item if isinstance(item, str) else item.get("field")
            if key is None:
                items.append(("text", text_of(item["text"], locale)))
            elif key in entity.by_key:
                items.append(("field", key))
                if isinstance(item, dict):
                    placements[key] = Placement(item.get("width", ""), text_of(item.get("help"), locale),
                                                item.get("visible_when"))
        items = tuple(items)
        section_keys = tuple(k for kind, k in items if kind == "field")
        for key in section_keys:  # created in display order: WTForms orders by creation
            spec = entity.by_key[key]
            label = text_of(spec.definition["label"], locale)
            attrs[attr_name(key)] = spec.type.form_field(spec.definition, label, locale)
        sections.append(Section(text_of(section.get("label"), locale), text_of(section.get("help"), locale),
                                section_keys, items, section.get("visible_when"), MappingProxyType(placements)))
        keys.extend(section_keys)
    form_class = type(f"Form_{entity.key}", (FlaskForm,), attrs)
    return CompiledForm(form_class, tuple(sections), tuple(keys))


def form_values(form: FlaskForm, compiled: CompiledForm, entity: CompiledEntity) -> dict[str, Any]:
    """The submitted raw values of the typed fields, keyed by field key (files are apart)."""
    values = {}
    for key in compiled.keys:
        spec = entity.by_key[key]
        if spec.type.computed or spec.type.name in FILE_TYPES:
            continue
        values[key] = spec.type.from_form(getattr(form, attr_name(key)).data, spec.definition)
    return values


def initial_data(entity: CompiledEntity, compiled: CompiledForm, values: Mapping) -> dict[str, Any]:
    """Stored values (or defaults) shaped for the form's fields."""
    return {attr_name(key): entity.by_key[key].type.form_value(values.get(key), entity.by_key[key].definition)
            for key in compiled.keys}


def bind_choices(session: Session, user: User, app: App, entity: CompiledEntity,
                 compiled: CompiledForm, form: FlaskForm, lookup_url: Callable[[str], str],
                 search_label: str = "Search") -> None:
    """Fill member and relation pickers with what this user may choose (plus current values)."""
    for key in compiled.keys:
        spec = entity.by_key[key]
        field = getattr(form, attr_name(key))
        many = spec.type.name in ("users", "relations")
        current = [_as_int(v) for v in field.data or []] if many else [_as_int(field.data)]
        current = [c for c in current if c]
        if spec.type.name in ("user", "users"):
            members = session.execute(select(User.id, User.display_name).where(User.is_active)
                                      .order_by(User.display_name))
            field.choices = select_choices([(str(i), name) for i, name in members], blank=not many)
        elif spec.type.name in ("relation", "relations"):
            target = spec.definition["target"]
            where = relation_filter(entity, spec.definition, lambda own: getattr(form, attr_name(own)).data
                                    if own in compiled.keys else None)
            options = lookup(session, user, app, target, "", limit=200, include_ids=current or None, where=where)
            field.choices = select_choices([(str(i), title) for i, title in options], blank=not many)
            field.render_kw = {"data-lookup": lookup_url(target), "data-search-label": search_label}
            if spec.definition.get("filter"):
                field.render_kw["data-filter"] = json.dumps({theirs: attr_name(own) for theirs, own
                                                             in spec.definition["filter"].items()})
        elif spec.type.name == "table":
            _bind_columns(session, user, app, spec, field, lookup_url, search_label)


def relation_filter(entity: CompiledEntity, definition: Mapping, value_of: Callable[[str], Any]) -> dict:
    """A relation's ``filter`` as field values of the target (own fields still empty are left out)."""
    where = {}
    for theirs, own in (definition.get("filter") or {}).items():
        spec = entity.by_key.get(own)
        if spec is None:
            continue
        try:
            value = spec.type.coerce(value_of(own), spec.definition)
        except CoercionError:
            continue
        if value is not None and not isinstance(value, (list, dict)):
            where[theirs] = value
    return where


def _bind_columns(session, user, app, spec, field, lookup_url, search_label) -> None:
    """Member and relation columns of a sub-table get their choices in every row."""
    members = None
    for column in spec.definition["fields"]:
        for row in field.entries:
            cell = getattr(row.form, attr_name(column["key"]))
            if column["type"] == "user":
                if members is None:
                    members = select_choices([(str(i), n) for i, n in session.execute(
                        select(User.id, User.display_name).where(User.is_active).order_by(User.display_name))],
                        blank=True)
                cell.choices = members
            elif column["type"] == "relation":
                current = _as_int(cell.data)
                options = lookup(session, user, app, column["target"], "", limit=200,
                                 include_ids=[current] if current else None)
                cell.choices = select_choices([(str(i), t) for i, t in options], blank=True)


def _as_int(value: Any) -> int | None:
    """An id typed into the form, if it can be one (huge numbers would overflow the database)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 1 <= number <= ID_LIMIT else None

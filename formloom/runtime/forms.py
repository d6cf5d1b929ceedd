"""Compile a form definition into a cached WTForms class that renders and parses HTML.

WTForms does not decide validity here: it carries the typed strings to and from the page, and
:func:`formloom.runtime.validation.validate_values` decides, exactly as for the API.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session

from formloom.platform.models import App, User
from formloom.runtime.compiler import CompiledEntity, checksum
from formloom.runtime.fields import select_choices
from formloom.runtime.labels import text_of
from formloom.runtime.listing import lookup


def attr_name(key: str) -> str:
    """A safe WTForms attribute for a field key (keys like ``data`` or ``validate`` would clash)."""
    return f"f_{key}"


@dataclass(frozen=True)
class Section:
    label: str
    help: str
    keys: tuple[str, ...]


@dataclass(frozen=True)
class CompiledForm:
    form_class: type[FlaskForm]
    sections: tuple[Section, ...]
    keys: tuple[str, ...]


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
        section_keys = tuple(k for k in section["fields"] if k in entity.by_key)
        for key in section_keys:  # created in display order: WTForms orders by creation
            spec = entity.by_key[key]
            label = text_of(spec.definition["label"], locale)
            attrs[attr_name(key)] = spec.type.form_field(spec.definition, label, locale)
        sections.append(Section(text_of(section.get("label"), locale), text_of(section.get("help"), locale),
                                section_keys))
        keys.extend(section_keys)
    form_class = type(f"Form_{entity.key}", (FlaskForm,), attrs)
    return CompiledForm(form_class, tuple(sections), tuple(keys))


def form_values(form: FlaskForm, compiled: CompiledForm) -> dict[str, Any]:
    """The submitted raw values, keyed by field key."""
    return {key: getattr(form, attr_name(key)).data for key in compiled.keys}


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
        current = _as_int(field.data)
        if spec.type.name == "user":
            members = session.execute(select(User.id, User.display_name).where(User.is_active)
                                      .order_by(User.display_name))
            field.choices = select_choices([(str(i), name) for i, name in members], blank=True)
        elif spec.type.name == "relation":
            target = spec.definition["target"]
            options = lookup(session, user, app, target, "", limit=200,
                             include_ids=[current] if current else None)
            field.choices = select_choices([(str(i), title) for i, title in options], blank=True)
            field.render_kw = {"data-lookup": lookup_url(target), "data-search-label": search_label}


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

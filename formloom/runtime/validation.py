"""Validate input for a record: the one source of truth for the HTML forms and the API alike.

Input arrives as a mapping of field key to raw value (strings from an HTML form, JSON values
from the API). The steps, in order:

1. each value is coerced by its field type (computed fields ignore input);
2. data linkage copies fields of a newly chosen related record, lookups are refreshed;
3. read-only conditions keep the stored value of fields that may not change now;
4. visibility conditions clear (or keep, as the definition says) the values of hidden fields;
5. formulas are computed, sub-table row formulas first;
6. the document is checked against the entity's compiled JSON Schema, conditional requirements,
   the admin's submission checks, uniqueness, and references (members, related records, files).

Every problem is collected, keyed by field, in the reader's language.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from formloom.platform.errors import RecordValidationError
from formloom.runtime import conditions
from formloom.runtime.compiler import CUSTOM_KEYWORDS, CompiledEntity, CompiledField
from formloom.runtime.fields import FIELD_TYPES, FILE_TYPES, REFERENCE_TYPES, CoercionError, RowErrors, rows_message
from formloom.runtime.formulas import Formula, FormulaRuntimeError, to_stored
from formloom.runtime.labels import text_of
from formloom.runtime.messages import Message, tr


class ReferenceResolver(Protocol):
    """Answers questions about the database: references, related records, duplicates, files."""

    def existing_users(self, ids: Iterable[int]) -> set[int]: ...

    def existing_records(self, entity_key: str, ids: Iterable[int]) -> set[int]: ...

    def record_values(self, entity_key: str, record_id: int) -> Mapping | None: ...

    def duplicate(self, entity_key: str, field_key: str, value: Any, exclude_id: int | None) -> str | None: ...

    def file_values(self, ids: Iterable[int]) -> dict[int, dict]: ...


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Situation:
    """Who submits, when, and which record: what conditions, defaults and formulas may ask."""

    user_id: int | None = None
    record_id: int | None = None
    now: datetime = dc_field(default_factory=_utcnow)
    extra_visibility: Mapping[str, Any] = dc_field(default_factory=dict)  # field -> condition (form sections)

    @property
    def today(self) -> date:
        return self.now.date()


def validate_values(entity: CompiledEntity, raw: Mapping[str, Any], *, base: Mapping | None = None,
                    resolver: ReferenceResolver | None = None, locale: str = "en",
                    situation: Situation | None = None) -> dict:
    """Return the full stored document for ``raw`` applied over ``base``.

    ``raw`` may hold only some fields (an update); a blank value clears a field. Values that
    ``base`` holds for fields the entity no longer has are kept untouched. Raises
    :class:`RecordValidationError` with every problem found.
    """
    situation = situation or Situation()
    base = dict(base or {})
    errors: dict[str, list[str]] = {}
    document = {k: v for k, v in base.items() if k in entity.by_key}
    retained = {k: v for k, v in base.items() if k not in entity.by_key}
    given: set[str] = set()

    for key, value in raw.items():
        field = entity.by_key.get(key)
        if field is None:
            errors[key] = [tr(locale, "'{key}' is not a field of {entity}; remove it or use one of: {keys}.",
                              key=key, entity=text_of(entity.body["label"], locale), keys=", ".join(entity.by_key))]
            continue
        if field.type.computed:
            continue  # the server's value is the one stored
        try:
            coerced = field.type.coerce(value, field.definition)
        except RowErrors as exc:
            errors.setdefault(key, []).extend(_row_sentence(field, row, column, message, locale)
                                              for row, column, message in exc.problems)
            continue
        except CoercionError as exc:
            errors.setdefault(key, []).append(_sentence(field, exc.message, locale))
            continue
        given.add(key)
        _put(document, key, coerced)

    if resolver is not None:
        _link(entity, document, base, given, resolver)
    _keep_read_only(entity, document, base, given, situation, errors, locale)
    hidden = _apply_visibility(entity, document, situation)
    compute(entity, document, situation, resolver)

    refused = set(errors)  # input that did not even parse: its schema errors would only repeat it
    for key, message in _schema_errors(entity, document, locale):
        if key not in refused and message not in errors.get(key, []):
            errors.setdefault(key, []).append(message)
    for key, message in _cascade_errors(entity, document, locale):
        errors.setdefault(key, []).append(message)
    for key, message in _required_errors(entity, document, hidden, situation, locale):
        if key not in errors:
            errors.setdefault(key, []).append(message)
    if not errors:
        for key, message in _check_errors(entity, document, hidden, situation, locale):
            errors.setdefault(key, []).append(message)

    if resolver is not None:
        changed = {k for k in entity.by_key if k in document and document[k] != base.get(k)}
        for key, message in _reference_errors(entity, document, changed, resolver, locale):
            errors.setdefault(key, []).append(message)
        for key, message in _unique_errors(entity, document, changed, resolver, situation, locale):
            errors.setdefault(key, []).append(message)
        for key, message in _filter_errors(entity, document, changed, resolver, locale):
            errors.setdefault(key, []).append(message)

    if errors:
        raise RecordValidationError(_ordered(entity, errors))
    return {**retained, **document}


def preview(entity: CompiledEntity, raw: Mapping[str, Any], *, base: Mapping, resolver: ReferenceResolver,
            situation: Situation) -> dict:
    """The document a form would give, leniently: values that do not parse are left out.

    For showing computed values and linked fields while a rep types; never stored.
    """
    document = {k: v for k, v in base.items() if k in entity.by_key}
    given: set[str] = set()
    for key, value in raw.items():
        spec = entity.by_key.get(key)
        if spec is None or spec.type.computed:
            continue
        try:
            _put(document, key, spec.type.coerce(value, spec.definition))
        except CoercionError:
            document.pop(key, None)
            continue
        given.add(key)
    _link(entity, document, base, given, resolver)
    _apply_visibility(entity, document, situation)
    compute(entity, document, situation, resolver)
    return document


def _put(document: dict, key: str, value: Any) -> None:
    if value is None:
        document.pop(key, None)
    else:
        document[key] = value


def _sentence(field: CompiledField, ending: Message | str, locale: str) -> str:
    text = ending.render(locale) if isinstance(ending, Message) else ending
    return tr(locale, "{label} {ending}.", label=text_of(field.definition["label"], locale), ending=text)


def _row_sentence(field: CompiledField, row: int, column: str, ending: Message, locale: str) -> str:
    if not column:
        return tr(locale, "Row {row} of {label}: {ending}.", row=row, label=text_of(field.definition["label"], locale),
                  ending=ending.render(locale))
    columns = {c["key"]: c for c in field.definition.get("fields", [])}
    name = text_of(columns[column]["label"], locale) if column in columns else column
    return tr(locale, "Row {row} of {label}: {column} {ending}.", row=row,
              label=text_of(field.definition["label"], locale), column=name, ending=ending.render(locale))


# --- linkage, read-only, visibility ----------------------------------------------------------

def _link(entity: CompiledEntity, document: dict, base: Mapping, given: set[str],
          resolver: ReferenceResolver) -> None:
    """Copy fields from related records: data linkage (``fill``) and lookups."""
    cache: dict[tuple[str, int], Mapping | None] = {}

    def related(relation_key: str) -> Mapping | None:
        spec = entity.by_key[relation_key].definition
        record_id = document.get(relation_key)
        if record_id is None:
            return None
        if (spec["target"], record_id) not in cache:
            cache[(spec["target"], record_id)] = resolver.record_values(spec["target"], record_id)
        return cache[(spec["target"], record_id)]

    for spec in entity.fields:
        fill = spec.definition.get("fill") if spec.type.name == "relation" else None
        if not fill:
            continue
        chosen = document.get(spec.key) != base.get(spec.key)
        locked = spec.definition.get("fill_locked", False)
        source = related(spec.key) or {}
        for own, theirs in fill.items():
            if own not in entity.by_key:
                continue
            if locked or (chosen and own not in given) or (chosen and document.get(own) is None):
                _put(document, own, source.get(theirs))
    for spec in entity.fields:
        if spec.type.name == "lookup" and spec.definition["relation"] in entity.by_key:
            source = related(spec.definition["relation"]) or {}
            _put(document, spec.key, source.get(spec.definition["field"]))


def _condition(entity: CompiledEntity, condition: Any, document: Mapping, situation: Situation) -> bool:
    return conditions.evaluate(condition, document, entity.kinds, today=situation.today, now=situation.now,
                               user_id=situation.user_id)


def _keep_read_only(entity: CompiledEntity, document: dict, base: Mapping, given: set[str],
                    situation: Situation, errors: dict, locale: str) -> None:
    """``readonly_when`` protects stored values: judged on the record as stored, before this change."""
    if situation.record_id is None:
        return
    for spec in entity.fields:
        condition = spec.definition.get("readonly_when")
        if condition is None or spec.key not in given or document.get(spec.key) == base.get(spec.key):
            continue
        if _condition(entity, condition, base, situation):
            errors.setdefault(spec.key, []).append(_sentence(spec, Message("is read-only now"), locale))


def hidden_fields(entity: CompiledEntity, document: Mapping, situation: Situation) -> set[str]:
    """Keys of the fields whose visibility conditions do not hold for ``document``."""
    hidden = set()
    for spec in entity.fields:
        rules = [spec.definition.get("visible_when"), situation.extra_visibility.get(spec.key)]
        if any(rule is not None and not _condition(entity, rule, document, situation) for rule in rules):
            hidden.add(spec.key)
    return hidden


def _apply_visibility(entity: CompiledEntity, document: dict, situation: Situation) -> set[str]:
    """Clear the values of hidden fields unless their definition says to keep them."""
    hidden = hidden_fields(entity, document, situation)
    for key in hidden:
        if entity.by_key[key].definition.get("hidden_value", "clear") == "clear":
            document.pop(key, None)
    return hidden


# --- computed values -------------------------------------------------------------------------

def compute(entity: CompiledEntity, document: dict, situation: Situation,
            resolver: ReferenceResolver | None) -> None:
    """Fill formula fields (and formula columns of sub-tables) from the other values."""
    def related(relation_key: str) -> Mapping | None:
        spec = entity.by_key.get(relation_key)
        if resolver is None or spec is None or document.get(relation_key) is None:
            return None
        return resolver.record_values(spec.definition["target"], document[relation_key])

    for table_key, formulas in entity.row_formulas.items():
        columns = {c["key"]: c for c in entity.by_key[table_key].definition["fields"]}
        rows = []
        for row in document.get(table_key) or []:
            row = dict(row)
            for column_key, formula in formulas:
                row[column_key] = _run(formula, row, columns[column_key], situation, None)
                if row[column_key] is None:
                    del row[column_key]
            rows.append(row)
        if rows:
            document[table_key] = rows
    for key, formula in entity.formulas:
        spec = entity.by_key[key]
        _put(document, key, _run(formula, document, spec.definition, situation, related))


def _run(formula: Formula, values: Mapping, definition: Mapping, situation: Situation, related) -> Any:
    """The formula's value in its stored form; empty when it cannot be computed."""
    try:
        result = formula.evaluate(values, today=situation.today, now=situation.now, related=related)
    except FormulaRuntimeError:
        return None  # e.g. a division by zero: the value stays empty
    result_kind = definition.get("result", "number")
    try:
        return to_stored(result, result_kind, definition.get("precision", 2))
    except (TypeError, ValueError, ArithmeticError):
        return None


def defaults(entity: CompiledEntity, situation: Situation) -> dict:
    """Starting values of a new record: static defaults, the current user, today, or a formula."""
    values: dict[str, Any] = {}
    for spec in entity.fields:
        definition = spec.definition
        source = definition.get("default_from")
        if "default" in definition:
            values[spec.key] = definition["default"]
        elif source == "current_user" and situation.user_id is not None:
            values[spec.key] = [situation.user_id] if spec.type.kind == "ids" else situation.user_id
        elif source == "today":
            values[spec.key] = situation.today.isoformat()
        elif source == "now":
            values[spec.key] = situation.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif spec.key in entity.default_formulas:
            value = _run(entity.default_formulas[spec.key], values, {"result": spec.type.kind_of(definition),
                                                                     "precision": definition.get("precision", 2)},
                         situation, None)
            if value is not None:
                values[spec.key] = value
    return values


# --- errors ----------------------------------------------------------------------------------

def _schema_errors(entity: CompiledEntity, document: dict, locale: str):
    for error in entity.validator.iter_errors(document):
        if error.validator == "required" and not error.path:
            for key in error.validator_value:
                if key not in error.instance:
                    yield key, _sentence(entity.by_key[key], Message("is required"), locale)
            continue
        key = error.path[0] if error.path else None
        field = entity.by_key.get(key)
        if field is None:
            continue
        if field.type.name == "table" and len(error.path) >= 2:
            yield key, _table_error(field, error, locale)
            continue
        yield key, _sentence(field, _ending(field.type, field.definition, error), locale)


def _ending(field_type, definition: Mapping, error) -> Message:
    if error.validator in CUSTOM_KEYWORDS:
        return error.formloom_message
    return field_type.message(error.validator, error.instance, definition, error.validator_value)


def _table_error(field: CompiledField, error, locale: str) -> str:
    from formloom.runtime.fields import FIELD_TYPES

    row = error.path[1] + 1
    columns = {c["key"]: c for c in field.definition["fields"]}
    if error.validator == "required" and len(error.path) == 2:
        missing = [k for k in error.validator_value if k not in error.instance]
        return _row_sentence(field, row, missing[0], Message("is required"), locale)
    column = columns.get(error.path[2]) if len(error.path) > 2 else None
    if column is None:
        return _sentence(field, field.type.message(error.validator, error.instance, field.definition,
                                                   error.validator_value), locale)
    ending = _ending(FIELD_TYPES[column["type"]], column, error)
    return _row_sentence(field, row, column["key"], ending, locale)


def _cascade_errors(entity: CompiledEntity, document: dict, locale: str):
    """Cascading choices: an option with parents fits only while its parent field holds one."""
    for spec in entity.fields:
        parent_key = spec.definition.get("filter_by")
        if not parent_key or spec.key not in document:
            continue
        allowed = spec.type.allowed(spec.definition, document.get(parent_key))
        chosen = document[spec.key] if isinstance(document[spec.key], list) else [document[spec.key]]
        for value in chosen:
            if value not in allowed:
                yield spec.key, _sentence(spec, Message("must be one of the listed choices, got {value}",
                                                        value=repr(value)), locale)


def _required_errors(entity: CompiledEntity, document: dict, hidden: set[str], situation: Situation,
                     locale: str):
    """Requirements that depend on conditions: required_when, and required fields that may hide."""
    for spec in entity.fields:
        if spec.key in hidden or spec.key in document or spec.type.computed:
            continue
        condition = spec.definition.get("required_when")
        required = spec.definition.get("required") and (
            "visible_when" in spec.definition or spec.key in situation.extra_visibility or condition is not None)
        if required or (condition is not None and _condition(entity, condition, document, situation)):
            yield spec.key, _sentence(spec, Message("is required"), locale)
        elif spec.definition.get("min_rows"):
            yield spec.key, _sentence(spec, rows_message("min", spec.definition["min_rows"]),
                                      locale)


def _check_errors(entity: CompiledEntity, document: dict, hidden: set[str], situation: Situation,
                  locale: str):
    """The admin's submission checks: each condition must hold, else its own message is shown."""
    for check in entity.checks:
        if check.get("when") is not None and not _condition(entity, check["when"], document, situation):
            continue
        if not _condition(entity, check["condition"], document, situation):
            key = check.get("field") or next(iter(sorted(conditions.fields_used(check["condition"]))), "")
            yield key, text_of(check["message"], locale)


def _reference_errors(entity: CompiledEntity, document: dict, changed: set[str],
                      resolver: ReferenceResolver, locale: str):
    for field in entity.fields:
        if field.key not in changed:
            continue
        value = document[field.key]
        if field.type.name in FILE_TYPES:
            found = resolver.file_values(field.type.file_ids(value))
            for item in value:
                if item["id"] not in found:
                    yield field.key, _sentence(field, Message(
                        "refers to file #{id}, which was not uploaded to this app", id=item["id"]), locale)
            document[field.key] = [found.get(item["id"], item) for item in value]
            continue
        if field.type.name == "table":
            yield from _column_reference_errors(field, value, resolver, locale)
            continue
        if field.type.name not in REFERENCE_TYPES:
            continue
        ids = value if isinstance(value, list) else [value]
        if field.type.name in ("user", "users"):
            found = resolver.existing_users(ids)
        else:
            found = resolver.existing_records(field.definition["target"], ids)
        for missing in (i for i in ids if i not in found):
            yield field.key, _sentence(field, Message("must be {describes}; #{id} is not one",
                                                      describes=field.type.describes, id=missing), locale)


def _column_reference_errors(field: CompiledField, rows: list, resolver: ReferenceResolver, locale: str):
    """Member and related-record columns of a sub-table: every id must exist, like top-level ones."""
    for column in field.definition["fields"]:
        if column["type"] not in ("user", "relation"):
            continue
        ids = {row[column["key"]] for row in rows if row.get(column["key"]) is not None}
        if not ids:
            continue
        found = (resolver.existing_users(ids) if column["type"] == "user"
                 else resolver.existing_records(column["target"], ids))
        describes = FIELD_TYPES[column["type"]].describes
        for number, row in enumerate(rows, start=1):
            value = row.get(column["key"])
            if value is not None and value not in found:
                yield field.key, _row_sentence(field, number, column["key"], Message(
                    "must be {describes}; #{id} is not one", describes=describes, id=value), locale)


def _unique_errors(entity: CompiledEntity, document: dict, changed: set[str], resolver: ReferenceResolver,
                   situation: Situation, locale: str):
    for field in entity.fields:
        if field.definition.get("unique") and field.key in changed:
            owner = resolver.duplicate(entity.key, field.key, document[field.key], situation.record_id)
            if owner is not None:
                yield field.key, _sentence(field, Message("already belongs to {title}", title=owner), locale)


def _filter_errors(entity: CompiledEntity, document: dict, changed: set[str], resolver: ReferenceResolver,
                   locale: str):
    """A relation with a ``filter`` accepts only records that match this record's fields."""
    for field in entity.fields:
        rules = field.definition.get("filter") if field.type.name in ("relation", "relations") else None
        if not rules or field.key not in document or not ({field.key} | set(rules.values())) & changed:
            continue
        chosen = document[field.key] if isinstance(document[field.key], list) else [document[field.key]]
        for record_id in chosen:
            values = resolver.record_values(field.definition["target"], record_id) or {}
            for theirs, own in rules.items():
                if own in document and values.get(theirs) != document[own]:
                    label = text_of(entity.by_key[own].definition["label"], locale) if own in entity.by_key else own
                    yield field.key, _sentence(field, Message("must be a record that matches {field}",
                                                              field=label), locale)
                    break


def _ordered(entity: CompiledEntity, errors: dict[str, list[str]]) -> dict[str, list[str]]:
    order = {key: i for i, key in enumerate(entity.by_key)}
    return dict(sorted(errors.items(), key=lambda item: order.get(item[0], -1)))

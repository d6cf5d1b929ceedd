"""Validate input for a record: the one source of truth for the HTML forms and the API alike.

Input arrives as a mapping of field key to raw value (strings from an HTML form, JSON values
from the API). Each value is coerced by its field type, the resulting document is checked
against the entity's compiled JSON Schema, and references (members, related records) are
checked against the database through a resolver. Every problem is collected, keyed by field.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Protocol

from formloom.platform.errors import RecordValidationError
from formloom.runtime.compiler import CUSTOM_KEYWORDS, CompiledEntity
from formloom.runtime.fields import REFERENCE_TYPES, CoercionError
from formloom.runtime.labels import text_of


class ReferenceResolver(Protocol):
    """Answers which referenced ids exist and may be used by the person submitting."""

    def existing_users(self, ids: Iterable[int]) -> set[int]: ...

    def existing_records(self, entity_key: str, ids: Iterable[int]) -> set[int]: ...


def validate_values(entity: CompiledEntity, raw: Mapping[str, Any], *, base: Mapping | None = None,
                    resolver: ReferenceResolver | None = None, locale: str = "en") -> dict:
    """Return the full stored document for ``raw`` applied over ``base``.

    ``raw`` may hold only some fields (an update); a blank value clears a field. Values that
    ``base`` holds for fields the entity no longer has are kept untouched. Raises
    :class:`RecordValidationError` with every problem found.
    """
    base = dict(base or {})
    errors: dict[str, list[str]] = {}
    document = {k: v for k, v in base.items() if k in entity.by_key}
    retained = {k: v for k, v in base.items() if k not in entity.by_key}

    for key, value in raw.items():
        field = entity.by_key.get(key)
        if field is None:
            errors[key] = [f"'{key}' is not a field of {text_of(entity.body['label'], locale)}; "
                           f"remove it or use one of: {', '.join(entity.by_key)}."]
            continue
        try:
            coerced = field.type.coerce(value, field.definition)
        except CoercionError as exc:
            errors.setdefault(key, []).append(_sentence(field, str(exc), locale))
            continue
        if coerced is None:
            document.pop(key, None)
        else:
            document[key] = coerced

    for key, message in _schema_errors(entity, document, locale):
        if key not in errors or message not in errors[key]:
            errors.setdefault(key, []).append(message)

    if resolver is not None:
        changed = {k for k in raw if k in document and document[k] != base.get(k)}
        for key, message in _reference_errors(entity, document, changed, resolver, locale):
            errors.setdefault(key, []).append(message)

    if errors:
        raise RecordValidationError(_ordered(entity, errors))
    return {**retained, **document}


def _sentence(field, ending: str, locale: str) -> str:
    return f"{text_of(field.definition['label'], locale)} {ending}."


def _schema_errors(entity: CompiledEntity, document: dict, locale: str):
    for error in entity.validator.iter_errors(document):
        if error.validator == "required":
            for key in error.validator_value:
                if key not in error.instance:
                    yield key, _sentence(entity.by_key[key], "is required", locale)
            continue
        key = error.path[0] if error.path else None
        field = entity.by_key.get(key)
        if field is None:
            continue
        if error.validator in CUSTOM_KEYWORDS:
            ending = error.message
        else:
            ending = field.type.message(error.validator, error.instance, field.definition,
                                        error.validator_value)
        yield key, _sentence(field, ending, locale)


def _reference_errors(entity: CompiledEntity, document: dict, changed: set[str],
                      resolver: ReferenceResolver, locale: str):
    for field in entity.fields:
        if field.type.name not in REFERENCE_TYPES or field.key not in changed:
            continue
        value = document[field.key]
        if field.type.name == "user":
            found = resolver.existing_users([value])
        else:
            found = resolver.existing_records(field.definition["target"], [value])
        if value not in found:
            yield field.key, _sentence(field, f"must be {field.type.describes}; #{value} is not one", locale)


def _ordered(entity: CompiledEntity, errors: dict[str, list[str]]) -> dict[str, list[str]]:
    order = {key: i for i, key in enumerate(entity.by_key)}
    return dict(sorted(errors.items(), key=lambda item: order.get(item[0], -1)))

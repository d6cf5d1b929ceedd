"""Compiled entities validating input: the case files in ``tests/cases/compiler/``.

Each file is a JSON array of cases::

    {"name", "fields": [field definitions], "input": {...}, "base"?: {stored document},
     "locale"?: "en" | "zh-CN", "entity_label"?: label,
     and one outcome: "expect": {stored document} | "errors": {key: [exact messages]}
                      | "error_patterns": {key: [regular expressions, matched in full]}
                      | "outcomes": [several of those, any of which will do]}

The fields form an entity ``t`` that must pass the definition checks. Validation runs with no
resolver: members, related records and files are not looked up, uniqueness is not checked.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from formloom.builder.checks import AppContext, check_definition
from formloom.platform.errors import RecordValidationError
from formloom.runtime.compiler import CompiledEntity, checksum, compile_entity
from formloom.runtime.fields import FIELD_TYPES
from formloom.runtime.validation import validate_values

CASES = Path(__file__).parent / "cases" / "compiler"
OUTCOMES = ("expect", "errors", "error_patterns", "outcomes")
# What relation fields in the cases may point at.
COMPANY = {"formloom": 1, "kind": "entity", "key": "company", "label": "Company", "title_field": "name",
           "fields": [{"key": "name", "type": "text", "label": "Company name", "required": True}]}


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON; the case files are read by other tools too")


def load_cases() -> list[tuple[str, dict]]:
    return [(path.stem, case) for path in sorted(CASES.glob("*.json"))
            for case in json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)]


ALL_CASES = load_cases()


def params() -> list[Any]:
    return [pytest.param(case, id=f"{stem}: {case['name']}") for stem, case in ALL_CASES]


def body_of(case: dict) -> dict:
    return {"formloom": 1, "kind": "entity", "key": "t", "label": case.get("entity_label", "T"),
            "fields": case["fields"]}


def entity_of(case: dict) -> CompiledEntity:
    body = body_of(case)
    return compile_entity(body, 1, checksum(body))


def run(case: dict, raw: dict | None = None, base: dict | None = None) -> tuple[dict | None, dict | None]:
    """(stored document, None) or (None, field errors)."""
    try:
        document = validate_values(entity_of(case), case["input"] if raw is None else raw,
                                   base=case.get("base") if base is None else base,
                                   locale=case.get("locale", "en"))
    except RecordValidationError as exc:
        return None, exc.fields
    return document, None


def mismatch(outcome: dict, document: dict | None, errors: dict | None) -> str | None:
    """Why the result does not match one expected outcome (None when it does)."""
    if "expect" in outcome:
        if errors is not None:
            return f"expected {outcome['expect']!r}, got errors {errors!r}"
        return None if document == outcome["expect"] else f"expected {outcome['expect']!r}, got {document!r}"
    if errors is None:
        return f"expected errors, got the document {document!r}"
    if "errors" in outcome:
        return None if errors == outcome["errors"] else f"expected errors {outcome['errors']!r}, got {errors!r}"
    patterns = outcome["error_patterns"]
    if set(errors) != set(patterns) or any(
            len(errors[k]) != len(p) or not all(re.fullmatch(x, m, re.S) for x, m in zip(p, errors[k]))
            for k, p in patterns.items()):
        return f"expected errors matching {patterns!r}, got {errors!r}"
    return None


# --- the cases -------------------------------------------------------------------------------

def test_case_files_are_well_formed():
    names = set()
    assert len(ALL_CASES) >= 90
    for stem, case in ALL_CASES:
        assert {"name", "fields", "input"} <= set(case), case.get("name")
        assert sum(k in case for k in OUTCOMES) == 1, case["name"]
        assert (stem, case["name"]) not in names, f"duplicate case name {case['name']!r}"
        names.add((stem, case["name"]))
        for outcome in case.get("outcomes", []):
            assert sum(k in outcome for k in OUTCOMES[:3]) == 1, case["name"]


def test_cases_cover_every_field_type_that_needs_no_database_lookup():
    used = set()
    for _, case in ALL_CASES:
        for field in case["fields"]:
            used.add(field["type"])
            used.update(column["type"] for column in field.get("fields", []))
    # A lookup copies a related record's field: it only does something with a resolver.
    # References and files are covered for their coercion only (no database here).
    expected = set(FIELD_TYPES) - {"lookup"}
    assert sorted(expected - used) == []


@pytest.mark.parametrize("case", params())
def test_case_definition_passes_the_checks(case):
    body = body_of(case)
    problems = check_definition(body, AppContext("cases", entities={"company": COMPANY, "t": body}))
    assert problems == []


@pytest.mark.parametrize("case", params())
def test_case_validates_as_expected(case):
    document, errors = run(case)
    outcomes = case.get("outcomes") or [case]
    reasons = [mismatch(outcome, document, errors) for outcome in outcomes]
    assert None in reasons, "; or ".join(r for r in reasons if r)


@pytest.mark.parametrize("case", [p for p in params() if "expect" in p.values[0]
                                  and not p.values[0].get("base")])
def test_stored_document_validates_to_itself(case):
    """A stored document is a fixed point: sending it back changes nothing."""
    entity = entity_of(case)
    stored = {k: v for k, v in case["expect"].items() if not entity.by_key[k].type.computed}
    document, errors = run(case, raw=stored, base={})
    assert errors is None
    assert document == case["expect"]

"""Formulas of computed fields: the case files, refusal speed, and properties.

Each file in ``tests/cases/formulas/`` is a JSON array of cases::

    {"name", "source", "fields": {key: {"kind", "columns"?, "target"?}}, "values", "related"?,
     "today", "now"?, and one of "expect" | "error" | "runtime_error"}

``expect`` encodes the result the way a user would read it: numbers as decimal strings with the
exact places computed ("3.30", not "3.3"), dates as ISO strings, datetimes as
"YYYY-MM-DDTHH:MM:SSZ", lists as arrays. ``error`` / ``runtime_error`` are substrings of the
message. Optional checks: ``kind`` (the inferred result kind), ``references`` and
``related_fields``. A ``source`` may be a list of ``[text, times]`` pieces, for inputs too long
to write out (``[["(", 1000], ["1", 1], [")", 1000]]``).
"""
from __future__ import annotations

import contextlib
import itertools
import json
import re
import time
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from formloom.runtime.formulas import (
    FieldInfo,
    Formula,
    FormulaError,
    FormulaRuntimeError,
    compile_formula,
    evaluation_order,
    to_stored,
)

CASES = Path(__file__).parent / "cases" / "formulas"
TODAY = date(2026, 3, 31)
NOW = datetime(2026, 3, 31, 10, 0, tzinfo=UTC)
ATTACK_BUDGET = 0.050  # seconds: a generous bound, the real speed is measured in benchmarks


def load_cases(pattern: str = "*.json") -> list:
    params = []
    for path in sorted(CASES.glob(pattern)):
        for case in json.loads(path.read_text(encoding="utf-8")):
            params.append(pytest.param(case, id=f"{path.stem}: {case['name']}"))
    return params


def source_of(case: dict) -> str:
    source = case["source"]
    return source if isinstance(source, str) else "".join(text * times for text, times in source)


def fields_of(case: dict) -> dict[str, FieldInfo]:
    return {key: FieldInfo(spec["kind"], spec.get("columns", {}), spec.get("target", {}))
            for key, spec in case.get("fields", {}).items()}


def encode(value: Any) -> Any:
    """A result as the case files write it."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return [encode(item) for item in value]
    return value


def evaluate_case(case: dict, formula: Formula) -> Any:
    related = case.get("related", {})
    now = datetime.fromisoformat(case["now"]) if "now" in case else NOW
    return formula.evaluate(case.get("values", {}), today=date.fromisoformat(case["today"]), now=now,
                            related=related.get)


def refuse(case: dict) -> None:
    """Compile and, if that passes, compute; an attack must fail in one of the two."""
    formula = compile_formula(source_of(case), fields_of(case))
    evaluate_case(case, formula)


def test_there_are_enough_cases():
    assert len(load_cases()) >= 110


@pytest.mark.parametrize("case", load_cases())
def test_case(case):
    source, fields = source_of(case), fields_of(case)
    if "error" in case:
        with pytest.raises(FormulaError) as caught:
            compile_formula(source, fields)
        assert case["error"] in caught.value.message
        return
    formula = compile_formula(source, fields)
    if "runtime_error" in case:
        with pytest.raises(FormulaRuntimeError) as caught:
            evaluate_case(case, formula)
        assert case["runtime_error"] in caught.value.message
        return
    assert encode(evaluate_case(case, formula)) == case["expect"]
    if "kind" in case:
        assert formula.result_kind == case["kind"]
    if "references" in case:
        assert formula.references == frozenset(case["references"])
    if "related_fields" in case:
        assert formula.related == frozenset(tuple(pair) for pair in case["related_fields"])


@pytest.mark.parametrize("case", load_cases("attacks.json"))
def test_attack_is_refused_quickly(case):
    assert "error" in case or "runtime_error" in case
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        with pytest.raises((FormulaError, FormulaRuntimeError)):
            refuse(case)
        timings.append(time.perf_counter() - start)
    assert min(timings) < ATTACK_BUDGET


# --- behaviour that the case files cannot express


FIELDS = {"qty": FieldInfo("number"), "price": FieldInfo("number"), "name": FieldInfo("text"),
          "lines": FieldInfo("table", {"qty": "number", "price": "number"}),
          "customer": FieldInfo("id", target={"discount": "number", "tier": "text"})}


def test_a_sub_table_over_1000_rows_is_refused():
    formula = compile_formula("SUM(lines.qty)", FIELDS)
    assert formula.evaluate({"lines": [{"qty": 1}] * 1000}, today=TODAY, now=NOW) == Decimal(1000)
    with pytest.raises(FormulaRuntimeError, match="more than 1,000"):
        formula.evaluate({"lines": [{"qty": 1}] * 1001}, today=TODAY, now=NOW)


def test_related_record_is_fetched_once_per_evaluation():
    calls = []

    def related(key: str) -> dict:
        calls.append(key)
        return {"discount": "0.1", "tier": "gold"}
    formula = compile_formula("CONCAT(customer.tier, customer.discount, customer.tier)", FIELDS)
    assert formula.evaluate({"customer": 1}, today=TODAY, now=NOW, related=related) == "gold0.1gold"
    assert calls == ["customer"]


def test_without_a_related_callback_related_fields_are_empty():
    formula = compile_formula("IFEMPTY(customer.discount, 0)", FIELDS)
    assert formula.evaluate({"customer": 1}, today=TODAY, now=NOW) == Decimal(0)


def test_references_name_top_level_fields_only():
    formula = compile_formula("SUM(lines.qty * lines.price) * (1 - customer.discount) + qty", FIELDS)
    assert formula.references == frozenset({"lines", "customer", "qty"})
    assert formula.related == frozenset({("customer", "discount")})


def test_the_process_decimal_context_is_neither_used_nor_changed():
    formula = compile_formula("1 / 3 + qty", FIELDS)
    with localcontext() as ctx:
        ctx.prec = 3
        ctx.clear_traps()
        ctx.clear_flags()
        result = formula.evaluate({"qty": "0.1"}, today=TODAY, now=NOW)
        assert not any(ctx.flags.values())
        assert ctx.prec == 3
    assert format(result, "f") == "0.4333333333333333333333333333333333"


def test_a_naive_now_is_read_as_utc():
    formula = compile_formula("NOW()", FIELDS)
    assert formula.evaluate({}, today=TODAY, now=datetime(2026, 3, 31, 10)) == NOW


def test_errors_are_value_errors_with_a_message():
    with pytest.raises(ValueError) as caught:
        compile_formula("nope", FIELDS)
    assert caught.value.message == str(caught.value)
    assert caught.value.message.endswith(".")


def test_the_longest_allowed_chain_of_operations_computes():
    formula = compile_formula("+".join(["qty"] * 150), FIELDS)
    assert formula.evaluate({"qty": "0.01"}, today=TODAY, now=NOW) == Decimal("1.50")


@pytest.mark.parametrize(("value", "kind", "places", "stored"), [
    (Decimal("2.675"), "number", 2, "2.68"),
    (Decimal("-2.5"), "number", 0, "-3"),
    (Decimal(3), "number", 2, "3.00"),
    (Decimal("0.1") + Decimal("0.2"), "number", 4, "0.3000"),
    (Decimal("59.97"), "number", 2, "59.97"),
    (date(2028, 2, 29), "date", 2, "2028-02-29"),
    (datetime(2026, 3, 31, 10, 0, 5, tzinfo=UTC), "datetime", 2, "2026-03-31T10:00:05Z"),
    (date(2026, 3, 31), "datetime", 2, "2026-03-31T00:00:00Z"),
    (True, "boolean", 2, True),
    ("北京", "text", 2, "北京"),
    (Decimal("1.50"), "text", 2, "1.50"),
    (None, "number", 2, None),
    ([Decimal("1.005"), "a"], "list", 2, ["1.01", "a"]),
])
def test_to_stored(value, kind, places, stored):
    assert to_stored(value, kind, places) == stored


@pytest.mark.parametrize(("value", "kind"), [(True, "number"), ("x", "number"), (Decimal(1), "date"),
                                             (Decimal(1), "boolean"), (Decimal(1), "table")])
def test_to_stored_refuses_a_result_of_the_wrong_type(value, kind):
    with pytest.raises(FormulaRuntimeError):
        to_stored(value, kind)


def order_fields(keys: list[str]) -> dict[str, FieldInfo]:
    return {key: FieldInfo("number") for key in keys + ["price", "qty"]}


def test_evaluation_order_puts_dependencies_first():
    fields = order_fields(["total", "tax", "subtotal"])
    formulas = {"total": compile_formula("subtotal + tax", fields),
                "tax": compile_formula("ROUND(subtotal * 0.1, 2)", fields),
                "subtotal": compile_formula("price * qty", fields)}
    assert evaluation_order(formulas) == ["subtotal", "tax", "total"]


def test_evaluation_order_names_the_cycle():
    fields = order_fields(["total", "tax", "subtotal"])
    formulas = {"total": compile_formula("subtotal + tax", fields),
                "tax": compile_formula("total * 0.1", fields),
                "subtotal": compile_formula("price * qty", fields)}
    with pytest.raises(FormulaError, match="total -> tax -> total"):
        evaluation_order(formulas)


def test_a_formula_that_refers_to_itself_is_a_cycle():
    formulas = {"total": compile_formula("total + 1", order_fields(["total"]))}
    with pytest.raises(FormulaError, match="total -> total"):
        evaluation_order(formulas)


# --- properties


def context() -> Context:
    return Context(prec=34, rounding=ROUND_HALF_EVEN)


OPS = {"+": lambda a, b: context().add(a, b), "-": lambda a, b: context().subtract(a, b),
       "*": lambda a, b: context().multiply(a, b),
       "/": lambda a, b: None if b.is_zero() else context().divide(a, b)}
LIMIT = Decimal(10**18)
DECIMALS = st.decimals(min_value=-10**6, max_value=10**6, places=3, allow_nan=False, allow_infinity=False)
LEAVES = st.tuples(DECIMALS, st.booleans())
TREES = st.recursive(LEAVES, lambda sub: st.tuples(sub, st.sampled_from(sorted(OPS)), sub), max_leaves=12)


def build(tree: tuple, values: dict) -> tuple[str, Decimal | None]:
    """Source text and the value Python's decimal module gives (None when it must fail)."""
    if len(tree) == 2:
        number, as_field = tree
        number = number.copy_abs() if number.is_zero() else number
        if as_field:
            key = f"x{len(values)}"
            values[key] = str(number)
            return key, number
        return f"({format(number, 'f')})", number
    left, op, right = tree
    left_source, a = build(left, values)
    right_source, b = build(right, values)
    result = None if a is None or b is None else OPS[op](a, b)
    if result is not None and result.copy_abs() > LIMIT:
        result = None
    if result is not None and result.is_zero():
        result = result.copy_abs()
    return f"({left_source} {op} {right_source})", result


@given(TREES)
@settings(max_examples=300, deadline=None)
def test_arithmetic_matches_the_decimal_module(tree):
    values: dict[str, str] = {}
    source, expected = build(tree, values)
    fields = {key: FieldInfo("number") for key in values}
    if expected is None:  # a division by zero or a number out of range on the way
        with pytest.raises((FormulaError, FormulaRuntimeError)):
            compile_formula(source, fields).evaluate(values, today=TODAY, now=NOW)
        return
    result = compile_formula(source, fields).evaluate(values, today=TODAY, now=NOW)
    assert format(result, "f") == format(expected, "f")


@given(DECIMALS, st.integers(min_value=-3, max_value=6))
def test_round_is_half_away_from_zero(number, places):
    formula = compile_formula(f"ROUND(x, {places})", {"x": FieldInfo("number")})
    result = formula.evaluate({"x": str(number)}, today=TODAY, now=NOW)
    exponent = Decimal(1).scaleb(-places)
    assert result == number.quantize(exponent, rounding=ROUND_HALF_UP)


TOKENS = ["(", ")", "[", "]", "{", "}", ",", ".", "'", '"', "-", "+", "*", "**", "/", "%", " ", "not ",
          " and ", " or ", "<", "==", ">=", "qty", "lines", "lines.qty", "name", "SUM(", "IF(", "ROUND(",
          "CONCAT(", "DATEADD(", "TODAY()", "1", "0", "0.5", "1e9", "9**9", "TRUE", "NULL", "__class__",
          "lambda", ":", "=", "for ", " in ", "f'", "\\", "\n", "#", "李", "\x00"]
FORMULA_TEXT = st.lists(st.sampled_from(TOKENS), max_size=80).map("".join)
ATOMS = st.sampled_from(["qty", "price", "name", "lines.qty", "lines.price", "customer.discount", "customer.tier",
                         "TODAY()", "NOW()", "NULL", "TRUE", "1", "0", "0.5", "-3", "1e9", "'a'", "'2026-01-31'"])
FUNCTION_NAMES = ["IF", "AND", "OR", "NOT", "SUM", "AVG", "MIN", "MAX", "COUNT", "ROUND", "ABS", "CONCAT", "LEN",
                  "DAYS", "DATEADD", "YEAR", "IFEMPTY"]
WELL_FORMED = st.recursive(ATOMS, lambda sub: st.one_of(
    st.tuples(sub, st.sampled_from([" + ", " - ", " * ", " / ", " % ", " ** ", " < ", " == ", " and ", " or "]),
              sub).map(lambda parts: f"({''.join(parts)})"),
    st.tuples(st.sampled_from(["-", "not "]), sub).map("".join),
    st.tuples(st.sampled_from(FUNCTION_NAMES), st.lists(sub, min_size=1, max_size=3)).map(
        lambda call: f"{call[0]}({', '.join(call[1])})")), max_leaves=15)
PRINTABLE = st.text(st.characters(min_codepoint=32, exclude_categories=("Cs",)), max_size=300)
VALUES = {"qty": "3", "price": "1.5", "name": "x", "lines": [{"qty": 1, "price": "2"}, {"qty": None}]}


@given(st.one_of(PRINTABLE, FORMULA_TEXT, WELL_FORMED))
@settings(max_examples=900, deadline=None)
@pytest.mark.filterwarnings("ignore::SyntaxWarning", "ignore::DeprecationWarning")
def test_any_text_gives_a_formula_or_a_formula_error(source):
    try:
        formula = compile_formula(source, FIELDS)
    except FormulaError:
        return
    with contextlib.suppress(FormulaRuntimeError):
        formula.evaluate(VALUES, today=TODAY, now=NOW, related=lambda key: {"discount": "0.2"})


KEYS = ["a", "b", "c", "d", "e"]


def has_cycle(deps: dict[str, set[str]]) -> bool:
    remaining = {key: set(refs) for key, refs in deps.items()}
    while True:
        ready = [key for key, refs in remaining.items() if not refs & remaining.keys()]
        if not ready:
            return bool(remaining)
        for key in ready:
            del remaining[key]


@given(st.dictionaries(st.sampled_from(KEYS), st.sets(st.sampled_from(KEYS)), min_size=1))
def test_evaluation_order_follows_references_or_names_a_cycle(graph):
    fields = {key: FieldInfo("number") for key in KEYS}
    formulas = {key: compile_formula(" + ".join(sorted(refs)) or "0", fields) for key, refs in graph.items()}
    deps = {key: refs & graph.keys() for key, refs in graph.items()}
    if has_cycle(deps):
        with pytest.raises(FormulaError) as caught:
            evaluation_order(formulas)
        path = re.search(r"circle: (.*)\.$", caught.value.message).group(1).split(" -> ")
        assert path[0] == path[-1] and len(path) >= 2
        assert all(after in deps[before] for before, after in itertools.pairwise(path))
        return
    order = evaluation_order(formulas)
    assert sorted(order) == sorted(graph)
    assert all(order.index(ref) < order.index(key) for key, refs in deps.items() for ref in refs)


def test_a_reference_copied_by_a_rule_is_stored_as_its_id():
    """A rule's formula naming a relation or user field (read as a number) stores the record or member id."""
    assert to_stored(Decimal("42"), "id") == 42
    for wrong in (Decimal("1.5"), Decimal("0"), "Acme", True):
        with pytest.raises(FormulaRuntimeError, match="cannot be stored as a reference"):
            to_stored(wrong, "id")

"""Conditions: the server's evaluator and checker, and the browser's evaluator, on shared cases.

Every file in tests/cases/conditions/ except check.json is a list of evaluation cases that both
formloom.runtime.conditions and formloom/platform/static/conditions.js must get right;
check.json holds cases for the save-time checker, which only the server has.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from formloom.runtime.conditions import (
    KINDS,
    MAX_NODES,
    OPERATORS,
    OPERATORS_BY_KIND,
    check,
    evaluate,
    fields_used,
)

ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = ROOT / "tests" / "cases" / "conditions"
CHECK_FILE = CASES_DIR / "check.json"
JS_TEST = ROOT / "tests" / "js" / "conditions.test.js"
JS_SAFE_INTEGER = 2**53 - 1


def _load(path: Path) -> list[dict[str, Any]]:
    return json.loads(path.read_text(encoding="utf-8"))


def _evaluation_files() -> list[Path]:
    return sorted(path for path in CASES_DIR.glob("*.json") if path != CHECK_FILE)


EVALUATION_CASES = [(path.stem, case) for path in _evaluation_files() for case in _load(path)]
CHECK_CASES = _load(CHECK_FILE)


def _params(cases: list[tuple[str, dict]]) -> list[Any]:
    return [pytest.param(case, id=f"{stem}: {case['name']}") for stem, case in cases]


def _run(case: dict[str, Any], values: Any = None) -> bool:
    now = case.get("now")
    return evaluate(case["condition"], case["values"] if values is None else values, case["kinds"],
                    today=date.fromisoformat(case["today"]),
                    now=datetime.fromisoformat(now) if now else None,
                    user_id=case.get("user_id"))


# --- shared evaluation cases -----------------------------------------------------------------

@pytest.mark.parametrize("case", _params(EVALUATION_CASES))
def test_case_evaluates_as_expected(case: dict[str, Any]) -> None:
    assert _run(case) is case["expect"]


@pytest.mark.parametrize("case", _params(EVALUATION_CASES))
def test_case_condition_passes_check(case: dict[str, Any]) -> None:
    assert check(case["condition"], case["kinds"]) == []


@pytest.mark.parametrize("case", _params([(s, c) for s, c in EVALUATION_CASES if "fields_used" in c]))
def test_case_reads_the_fields_it_names(case: dict[str, Any]) -> None:
    assert fields_used(case["condition"]) == set(case["fields_used"])


def _walk(node: Any) -> Any:
    yield node
    if isinstance(node, dict):
        for child in node.values():
            yield from _walk(child)
    elif isinstance(node, list):
        for child in node:
            yield from _walk(child)


def test_cases_exercise_every_operator_and_kind() -> None:
    conditions = [case["condition"] for _, case in EVALUATION_CASES]
    ops = {node["op"] for c in conditions for node in _walk(c) if isinstance(node, dict) and "op" in node}
    kinds = {kind for _, case in EVALUATION_CASES for kind in case["kinds"].values()}
    assert set(OPERATORS) <= ops
    assert set(KINDS) <= kinds
    assert len(EVALUATION_CASES) >= 110
    assert {case["expect"] for _, case in EVALUATION_CASES} == {True, False}


def test_case_names_are_unique_within_a_file() -> None:
    for path in [*_evaluation_files(), CHECK_FILE]:
        names = [case["name"] for case in _load(path)]
        assert len(names) == len(set(names)), path.name


def test_case_files_hold_only_integers_javascript_reads_exactly() -> None:
    for path in [*_evaluation_files(), CHECK_FILE]:
        for node in _walk(_load(path)):
            if isinstance(node, int) and not isinstance(node, bool):
                assert abs(node) <= JS_SAFE_INTEGER, f"{path.name}: write {node} as a decimal string"


# --- evaluation beyond the shared cases ------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats(allow_nan=True) | st.text(max_size=8)
    | st.sampled_from(["0", "-0.00", "12.50", "2026-03-31", "2026-03-31T09:00:00Z", "09:30", "1e3"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(case=st.sampled_from([case for _, case in EVALUATION_CASES]), data=st.data())
def test_values_of_any_shape_never_raise(case: dict[str, Any], data: st.DataObject) -> None:
    values = {key: data.draw(JSON_VALUES) for key in case["kinds"]}
    assert _run(case, values) in (True, False)


def test_now_with_a_time_zone_is_read_in_utc() -> None:
    kinds = {"at": "datetime"}
    condition = {"field": "at", "op": "eq", "value": {"$now": True}}
    beijing = timezone(timedelta(hours=8))
    now = datetime(2026, 3, 31, 17, 0, 0, 250_000, tzinfo=beijing)
    assert evaluate(condition, {"at": "2026-03-31T09:00:00Z"}, kinds, today=date(2026, 3, 31), now=now)


def test_today_far_beyond_the_calendar_matches_nothing() -> None:
    condition = {"field": "due", "op": "ne", "value": {"$today": 1}}
    assert evaluate(condition, {"due": "9999-12-31"}, {"due": "date"}, today=date(9999, 12, 31))
    assert not evaluate({"field": "due", "op": "eq", "value": {"$today": 1}}, {"due": "9999-12-31"},
                        {"due": "date"}, today=date(9999, 12, 31))


# --- checking conditions being saved ---------------------------------------------------------

@pytest.mark.parametrize("case", [pytest.param(case, id=case["name"]) for case in CHECK_CASES])
def test_check_reports_every_problem_with_its_path(case: dict[str, Any]) -> None:
    problems = check(case["condition"], case["kinds"], case.get("path", "$"))
    for want_path, fragment in case["problems"]:
        assert any(path == want_path and fragment in message for path, message in problems), problems
    assert len(problems) == len(case["problems"]), problems


@pytest.mark.parametrize("case", [pytest.param(case, id=case["name"]) for case in CHECK_CASES
                                  if case["problems"]])
def test_check_messages_are_sentences(case: dict[str, Any]) -> None:
    for _, message in check(case["condition"], case["kinds"], case.get("path", "$")):
        assert re.match(r"[A-Z]", message) and message.endswith("."), message


def _leaves(count: int) -> dict[str, Any]:
    return {"any": [{"field": "name", "op": "empty"}] * count}


def test_check_accepts_a_condition_of_the_largest_size() -> None:
    assert check(_leaves(MAX_NODES - 1), {"name": "text"}) == []


def test_check_refuses_a_condition_over_the_size_limit() -> None:
    problems = check(_leaves(MAX_NODES), {"name": "text"}, "$.rules[0].when")
    assert [path for path, _ in problems] == ["$.rules[0].when"]
    assert f"more than {MAX_NODES} parts" in problems[0][1]


def test_fields_used_includes_references_and_ignores_literals() -> None:
    condition = {"any": [{"field": "stage", "op": "eq", "value": {"$field": "fallback"}},
                         {"not": {"field": "amount", "op": "between", "value": [{"$field": "low"}, 5]}},
                         {"field": "owner", "op": "eq", "value": {"$user": True}},
                         {"field": "name", "op": "eq", "value": "$field"}]}
    assert fields_used(condition) == {"stage", "fallback", "amount", "low", "owner", "name"}


# --- the browser's evaluator -----------------------------------------------------------------

def _node_or_skip() -> str:
    node = shutil.which("node")
    if node:
        return node
    if os.environ.get("CI"):
        pytest.fail("Node.js is not installed, and CI must run the browser's condition evaluator.")
    pytest.skip("Node.js is not installed here, so the browser's condition evaluator cannot run.")


def test_javascript_evaluator_passes_the_shared_cases() -> None:
    node = _node_or_skip()
    result = subprocess.run([node, "--test", str(JS_TEST.relative_to(ROOT))], check=False, cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    passed = re.search(r"^\S* ?pass (\d+)$", output, re.MULTILINE)
    assert passed and int(passed[1]) >= len(EVALUATION_CASES), output


def test_javascript_applies_operators_to_the_same_kinds() -> None:
    node = _node_or_skip()
    script = "process.stdout.write(JSON.stringify(require('./formloom/platform/static/conditions.js')" \
             ".OPERATORS_BY_KIND))"
    result = subprocess.run([node, "-e", script], check=True, cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    browser = {kind: sorted(ops) for kind, ops in json.loads(result.stdout).items()}
    assert browser == {kind: sorted(ops) for kind, ops in OPERATORS_BY_KIND.items()}

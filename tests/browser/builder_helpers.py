"""Helpers the builder's browser tests share: a body's round trip through the visual editor, checked
for any body Hypothesis draws, and a condition added through the condition builder's pickers."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from tests.browser.conftest import Page

# JavaScript that opens, in the visual editor, what it shows closed, so that every control is built.
OPEN_EVERY_FIELD = """
      const count = document.querySelectorAll('[data-edit-field]').length;
      for (let i = 0; i < count; i++) {  // open each field's settings in turn (one is open at a time)
        const button = document.querySelectorAll('[data-edit-field]')[i];
        if (button && button.getAttribute('aria-expanded') === 'false') button.click();
      }"""
OPEN_EVERY_STAGE_AND_MOVE = """
      for (let round = 0; round < 20; round++) {  // one opens per round: the editor is drawn again
        const closed = [...document.querySelectorAll('.pr-toggle[aria-expanded="false"]')];
        if (!closed.length) break;
        closed.forEach((b) => { if (b.isConnected) b.click(); });
      }"""


def round_trip(page: Page, body: dict, open_all: str) -> dict:
    """Type ``body`` in JSON mode, go to the visual editor, open everything (``open_all``), and come back.

    Returns what JSON mode then shows (``text``) and what the editor holds (``body``).
    """
    return page.evaluate("""(body) => {
      const ed = window.formloomBuilder;
      const text = document.querySelector('[data-json-text]');
      ed.setMode('json');
      text.value = JSON.stringify(body, null, 2);
      ed.setMode('visual');""" + open_all + """
      ed.setMode('json');
      return {text: JSON.parse(text.value), body: ed.body};
    }""", body)


def assert_round_trips_unchanged(page: Page, bodies, open_all: str) -> None:
    """Every body drawn from the strategy ``bodies`` comes back from the visual editor as it went in."""

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(bodies)
    def check(body):
        out = round_trip(page, body, open_all)
        assert out["text"] == body
        assert out["body"] == body

    check()


def add_condition(builder, field: str, op: str, value: str) -> None:
    """Add a test to the condition builder ``builder`` (a locator): field, operator and a typed value."""
    builder.locator("[data-add-condition]").click()
    builder.locator("[data-cond-field]").select_option(field)
    builder.locator("[data-cond-op]").select_option(op)
    builder.locator("[data-cond-value]").fill(value)

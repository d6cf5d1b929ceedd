"""No admin-defined string and no record value ever runs as script, on any page, in a real browser.

One app (tests/browser/xss_seed.py) carries the payloads of tests/cases/xss_payloads.json in every
label, help text, placeholder, choice, section, text block, stage, checklist item, gate message,
approval step, rule, notification, record value, file name and comment. Every kind of page is
opened in Chromium, and on each one:

- no payload ran: no dialog opened and ``window.__xss`` is unset (each payload, if it ran, would
  call ``alert('<id>')`` or set ``window.__xss = '<id>'``);
- no Content Security Policy violation happened: the CSP forbids inline script, but escaping must
  hold without it, so a blocked payload is as much a failure as one that ran;
- no markup from a payload reached the document: no ``on*`` attribute, no ``javascript:`` link, no
  element the pages never make (``<svg>``, ``<style>``, a foreign ``<script>``, ...);
- the payloads the page is about are there as *text* (a page that dropped them could not pass).

Some pages are opened again with the CSP switched off, where a payload that got through would run.
Runs on SQLite only, with the app seeded once for the module: escaping happens in the templates and
scripts, which are the same whatever database holds the strings, and seeding once keeps the battery
to a few minutes.
"""
from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from werkzeug.serving import make_server

from formloom import create_app
from formloom.builder import definitions
from formloom.platform.auth import Cause
from formloom.platform.db import new_session
from formloom.platform.errors import RecordValidationError
from formloom.platform.models import App, User
from formloom.runtime import records
from tests.browser.builder_helpers import OPEN_EVERY_FIELD, OPEN_EVERY_STAGE_AND_MOVE
from tests.browser.conftest import DESKTOP, Page, expect, log_in
from tests.browser.xss_seed import APP, Seeded, load_payloads, seed

pytestmark = pytest.mark.browser

# Records every CSP violation of a frame, from before its first script runs.
WATCH_SCRIPT = """
(() => {
  const seen = [];
  Object.defineProperty(window, "__cspViolations", { value: seen });
  document.addEventListener("securitypolicyviolation", (e) => {
    seen.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline code"} (${e.sourceFile || ""}:${e.lineNumber})`);
  }, true);
})();
"""

# Markup a payload would leave behind if it reached a page unescaped. The pages themselves make
# none of these elements, no on* attribute and no link to a javascript:, vbscript: or data: URL
# (images excepted).
SCAN_SCRIPT = """
() => {
  const found = [];
  const own = (url) => { try { const u = new URL(url, location.href); return u.origin === location.origin; } catch (e) { return false; } };
  const show = (el) => el.outerHTML.slice(0, 200);
  const never = new Set(["svg", "math", "style", "object", "embed", "base", "frame", "frameset", "applet", "marquee",
    "template", "noscript", "xmp", "plaintext", "video", "audio", "source", "isindex", "animate", "mglyph", "mtext", "x"]);
  const urlAttrs = new Set(["href", "src", "action", "formaction", "data", "xlink:href", "background", "poster", "srcdoc"]);
  for (const el of document.querySelectorAll("*")) {
    const tag = el.localName;
    if (never.has(tag)) found.push(`a <${tag}> element: ${show(el)}`);
    if (tag === "script" && !(el.src && own(el.src) && new URL(el.src).pathname.startsWith("/static/"))
        && !(el.type === "application/json" && el.id === "builder-data")) found.push(`a foreign script: ${show(el)}`);
    if (tag === "iframe" && !el.hasAttribute("data-preview-frame")) found.push(`an iframe: ${show(el)}`);
    if (tag === "meta" && el.httpEquiv) found.push(`a meta http-equiv: ${show(el)}`);
    if (tag === "link" && !(el.rel === "stylesheet" && own(el.href))) found.push(`a link element: ${show(el)}`);
    if (tag === "img" && el.getAttribute("src") !== null && !own(el.src) && !el.src.startsWith("data:image/"))
      found.push(`a foreign image: ${show(el)}`);
    if (tag === "img" && /\\/x$/.test(el.src)) found.push(`an image a payload made: ${show(el)}`);
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      const value = attr.value.replace(/[\\u0000-\\u0020]/g, "").toLowerCase();
      if (name.startsWith("on")) found.push(`an event handler attribute ${name}: ${show(el)}`);
      if (urlAttrs.has(name) && /^(javascript|vbscript|data):/.test(value) && !value.startsWith("data:image/"))
        found.push(`a ${name} to ${value.slice(0, 60)}: ${show(el)}`);
      if (name === "style" && /url\\(|expression\\(|javascript/.test(value)) found.push(`a style attribute: ${show(el)}`);
    }
  }
  return found;
}
"""

# Every piece of text a person can see: text nodes (not scripts), form control values, the title.
TEXT_SCRIPT = """
() => {
  const parts = [document.title];
  if (!document.body) return parts;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.parentElement || !node.parentElement.closest("script, style, template")) parts.push(node.data);
  }
  for (const el of document.querySelectorAll("input, textarea")) parts.push(el.value);
  return parts;
}
"""

PAYLOADS = load_payloads()
PAYLOAD_IDS = {p["payload"]: p["id"] for p in PAYLOADS}
# For URL path segments: Werkzeug decodes %2F before routing, so a payload with a slash is two segments.
IN_PATHS = [p["payload"] for p in PAYLOADS if "/" not in p["payload"]]


def squash(text: str) -> str:
    """Text as a page shows it: runs of white space are one space (browsers do the same)."""
    return re.sub(r"\s+", " ", text).strip()


def described(text: str) -> str:
    """A payload by its id, for messages that stay readable."""
    return f"{PAYLOAD_IDS[text]} {text!r}" if text in PAYLOAD_IDS else repr(text)


# --- the app, served once for the module -----------------------------------------------------

@pytest.fixture(scope="module")
def xss_app(tmp_path_factory, sqlite_template):
    # SQLite only: what is escaped, and how, is decided by templates and scripts, the same on
    # every database; the strings come back from PostgreSQL's JSONB exactly as from SQLite.
    folder = tmp_path_factory.mktemp("xss")
    shutil.copy(sqlite_template, folder / "formloom.db")
    app = create_app({"INSTANCE_PATH": str(folder / "instance"), "DATABASE_URL": f"sqlite:///{folder / 'formloom.db'}",
                      "TESTING": True, "SECRET_KEY": "test-secret"})
    yield app
    app.extensions["formloom.engine"].dispose()


@pytest.fixture(scope="module")
def seeded(xss_app) -> Seeded:
    return seed(xss_app)


@pytest.fixture(scope="module")
def base(xss_app, seeded):
    server = make_server("127.0.0.1", 0, xss_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="formloom-xss-server", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def admin_state(browser, base, tmp_path_factory) -> str:
    """The admin's logged-in cookies, shared by the tests (one login for the module)."""
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = context.new_page()
    log_in(page, base, "admin", "Ada Admin")
    path = tmp_path_factory.mktemp("xss-state") / "admin.json"
    context.storage_state(path=str(path))
    context.close()
    return str(path)


@dataclass
class Watched:
    """A page with everything a payload could do recorded: dialogs, CSP reports, script errors."""

    page: Page
    base: str
    seeded: Seeded
    dialogs: list[str] = field(default_factory=list)
    csp_console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def s(self):
        return self.seeded.slots

    def visit(self, path: str) -> None:
        self.page.goto(self.base + path)
        self.settle()

    def settle(self) -> None:
        self.page.wait_for_load_state("networkidle")

    def check(self, what: str, shown: list[str] = ()) -> None:
        """Nothing ran, nothing was blocked, no payload markup is in the page, and ``shown`` is there as text."""
        self.settle()
        ran, found, violations, text = [], [], [], []
        # Frames of this site only (the builder's preview): a frame a payload made is reported by the
        # scan of its parent, and evaluating in one whose javascript: URL was blocked never returns.
        for frame in [f for f in self.page.frames if f.url.startswith(self.base + "/")]:
            marker = frame.evaluate("() => window.__xss")
            if marker is not None:
                ran.append(f"payload {marker} ran (window.__xss set) in frame {frame.url}")
            found += frame.evaluate(SCAN_SCRIPT)
            violations += frame.evaluate("() => window.__cspViolations || []")
            text += frame.evaluate(TEXT_SCRIPT)
        page_text = squash(" ".join(text))
        problems = ran + [f"a dialog opened: {m!r}" for m in self.dialogs] + found
        problems += [f"not shown as text: {described(t)}" for t in shown if squash(t) not in page_text]
        problems += [f"CSP violation: {v}" for v in violations]
        problems += [f"CSP violation in the console: {m[:150]}" for m in self.csp_console]
        problems += [f"script error: {m}" for m in self.errors]
        more = f"\n  ... and {len(problems) - 30} more" if len(problems) > 30 else ""
        assert not problems, f"{what} ({self.page.url}):\n  " + "\n  ".join(problems[:30]) + more


def watched_page(browser, base: str, seeded: Seeded, storage_state: str | None, *, bypass_csp: bool = False) -> Watched:
    context = browser.new_context(viewport=DESKTOP, locale="en-US", storage_state=storage_state, bypass_csp=bypass_csp)
    context.set_default_timeout(10_000)
    context.set_default_navigation_timeout(15_000)
    context.add_init_script(WATCH_SCRIPT)
    page = context.new_page()
    watched = Watched(page, base, seeded)

    def on_dialog(dialog) -> None:
        watched.dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: "Content Security Policy" in m.text and watched.csp_console.append(m.text))
    page.on("pageerror", lambda e: watched.errors.append(str(e)))
    return watched


@pytest.fixture
def admin_page(request, browser, base, seeded, admin_state, tmp_path):
    watched = watched_page(browser, base, seeded, admin_state)
    yield watched
    _close(request, watched, tmp_path)


@pytest.fixture
def unguarded_page(request, browser, base, seeded, admin_state, tmp_path):
    """The admin's page with the Content Security Policy switched off: a payload that got through would run."""
    watched = watched_page(browser, base, seeded, admin_state, bypass_csp=True)
    yield watched
    _close(request, watched, tmp_path)


@pytest.fixture
def anonymous_page(request, browser, base, seeded, tmp_path):
    watched = watched_page(browser, base, seeded, None)
    yield watched
    _close(request, watched, tmp_path)


def _close(request, watched: Watched, tmp_path) -> None:
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed and not watched.page.is_closed():
        path = tmp_path / "failure.png"
        watched.page.screenshot(path=str(path), full_page=True)
        print(f"browser screenshot of the failure: {path}  (page {watched.page.url})")
    watched.page.context.close()


def q(text: str) -> str:
    """A payload as one URL path segment or query value."""
    return quote(text, safe="")


# --- pages that show the seeded strings as they are ------------------------------------------

@dataclass
class Case:
    path: Callable[[Seeded], str]
    shown: Callable[[Seeded], list[str]]


def deal(name: str, tail: str = "") -> Callable[[Seeded], str]:
    return lambda d: f"/apps/{APP}/deal/{d.records[name]}{tail}"


def field_labels(s) -> list[str]:
    return [s["name.label.en"], s["v2.notes.label"], s["email.label"], s["site.label"], s["kind.label"],
            s["topics.label"], s["tags.label"], s["amount.label"], s["close_date.label"], s["stage.label"],
            s["account.label"], s["owner.label"], s["lines.label"], s["total.label"], s["attachments.label"],
            s["lost_reason.label"]]


def stage_labels(s) -> list[str]:
    return [s[f"pipeline.stage.{key}.label"] for key in ("lead", "proposal", "review", "won", "lost")]


PAGES = {
    "home": Case(lambda d: "/", lambda d: [d.slots["app.label.en"]]),
    "app page": Case(lambda d: f"/apps/{APP}/", lambda d: [
        d.slots["app.label.en"], d.slots["deal.label.en"], d.slots["account_entity.label.en"],
        d.slots["pipeline.label.en"], d.slots["full.name.changed"], d.slots["waiting.name"]]),
    "app page in Chinese": Case(lambda d: f"/apps/{APP}/?lang=zh-CN", lambda d: [
        d.slots["app.label.zh"], d.slots["deal.label.zh"], d.slots["account_entity.label.zh"],
        d.slots["pipeline.label.zh"]]),
    "record list": Case(lambda d: f"/apps/{APP}/deal/", lambda d: [
        d.slots["deal.label.en"], d.slots["name.label.en"], d.slots["email.label"], d.slots["site.label"],
        d.slots["kind.label"], d.slots["full.name.changed"], d.slots["full.email"], d.slots["full.site"],
        d.slots["kind.opt0.label"], d.slots["kind.opt1.label"], d.slots["moved.name"], d.slots["quick.label"],
        *[d.slots[f"stage.opt.{k}"] for k in ("lead", "proposal", "review", "won", "lost")]]),
    "record list searched for a payload": Case(
        lambda d: f"/apps/{APP}/deal/?q={q(d.slots['full.name.changed'])}",
        lambda d: [d.slots["full.name.changed"], d.slots["full.email"]]),
    "record list filtered by a payload choice": Case(
        lambda d: f"/apps/{APP}/deal/?f.kind={q(d.slots['kind.opt0.value'])}",
        lambda d: [d.slots["full.name.changed"], d.slots["kind.opt0.label"]]),
    "record list with a payload filter value": Case(
        lambda d: f"/apps/{APP}/deal/?f.kind={q(PAYLOADS[0]['payload'])}", lambda d: [d.slots["deal.label.en"]]),
    "record list filtered on a payload field": Case(
        lambda d: f"/apps/{APP}/deal/?f.{q(PAYLOADS[1]['payload'])}=1", lambda d: [PAYLOADS[1]["payload"]]),
    "record list sorted by a payload": Case(
        lambda d: f"/apps/{APP}/deal/?sort={q(PAYLOADS[2]['payload'])}", lambda d: [PAYLOADS[2]["payload"]]),
    "record page": Case(deal("full"), lambda d: [
        *field_labels(d.slots), d.slots["deal.label.en"], d.slots["section0.label"], d.slots["section1.label.en"],
        d.slots["full.name.changed"], d.slots["full.name"], d.slots["full.notes.changed"], d.slots["full.email"],
        d.slots["full.site"], d.slots["kind.opt0.label"], d.slots["topics.opt0.label"], d.slots["topics.opt2.label"],
        d.slots["full.tag0"], d.slots["full.tag1"], d.slots["full.line0.item"], d.slots["full.line1.item"],
        d.slots["lines.item.label"], d.slots["lines.qty.label"], d.slots["lines.grade.label"],
        d.slots["lines.grade.opt.label"], d.file_name, d.slots["account.first.name"], d.rep_name,
        d.slots["full.lost_reason"], d.slots["pipeline.label.en"], *stage_labels(d.slots)]),
    "record page after a move with a comment": Case(deal("moved"), lambda d: [
        d.slots["moved.name"], d.slots["moved.site"],
        d.slots["pipeline.stage.proposal.label"], d.slots["kind.opt1.label"]]),
    "record page waiting for approval": Case(deal("waiting"), lambda d: [
        d.slots["waiting.name"], d.slots["waiting.comment"], d.slots["pipeline.stage.review.label"]]),
    "record page after an approval": Case(deal("decided"), lambda d: [
        d.slots["decided.name"], d.slots["decided.comment"], d.slots["decided.approval.comment"]]),
    "create form": Case(lambda d: f"/apps/{APP}/deal/new", lambda d: [
        *[label for label in field_labels(d.slots) if label != d.slots["total.label"]], d.slots["deal.label.en"],
        d.slots["section0.label"], d.slots["section0.help"], d.slots["section0.text"], d.slots["form.name.help"],
        d.slots["section1.label.en"], d.slots["section1.help"], d.slots["section1.text.en"], d.slots["kind.opt0.label"],
        d.slots["kind.opt2.label"], d.slots["topics.opt1.label"], d.slots["lines.item.label"],
        d.slots["lines.grade.opt.label"], d.slots["account.first.name"], d.rep_name, d.slots["flag.label"],
        d.slots["total.label"]]),
    "create form in Chinese": Case(lambda d: f"/apps/{APP}/deal/new?lang=zh-CN", lambda d: [
        d.slots["name.label.zh"], d.slots["section1.label.zh"], d.slots["section1.text.zh"], d.slots["deal.label.zh"]]),
    "quick create form": Case(lambda d: f"/apps/{APP}/deal/new?form=deal_quick", lambda d: [
        d.slots["quick.section.label"], d.slots["quick.text"], d.slots["name.label.en"], d.slots["amount.label"]]),
    "create form asked for a payload form": Case(
        lambda d: f"/apps/{APP}/deal/new?form={q(PAYLOADS[3]['payload'])}", lambda d: [PAYLOADS[3]["payload"]]),
    "edit form": Case(deal("full", "/edit"), lambda d: [
        d.slots["full.name.changed"], d.slots["full.notes.changed"], d.slots["full.email"], d.slots["full.site"],
        d.slots["full.line0.item"], d.slots["full.line1.item"], d.slots["stage.opt.lead"], d.file_name,
        d.slots["pipeline.stage.proposal.label"]]),
    "kanban board": Case(lambda d: f"/apps/{APP}/pipelines/sales/", lambda d: [
        d.slots["pipeline.label.en"], *stage_labels(d.slots), d.slots["full.name.changed"], d.slots["bare.name"],
        d.slots["account.first.name"], d.slots["kind.opt0.label"], d.slots["full.tag0"], d.rep_name,
        d.slots["account.label"], d.slots["kind.label"]]),
    "pipeline statistics": Case(lambda d: f"/apps/{APP}/pipelines/sales/stats",
                                lambda d: [d.slots["pipeline.label.en"], *stage_labels(d.slots)]),
    "move page with a gate": Case(deal("bare", "/move?to=proposal"), lambda d: [
        d.slots["bare.name"], d.slots["pipeline.stage.proposal.label"], d.slots["pipeline.stage.lead.label"],
        d.slots["gate.proposal.condition.message"], d.slots["gate.proposal.checklist.confirmed"],
        d.slots["amount.label"]]),
    "move page with a checklist": Case(deal("decided", "/move?to=won"), lambda d: [
        d.slots["gate.won.checklist.signed"], d.slots["gate.won.checklist.paid.en"],
        d.slots["pipeline.stage.won.label"]]),
    "move page to a lost stage": Case(deal("bare", "/move?to=lost"), lambda d: [
        d.slots["gate.lost.condition.message.en"], d.slots["lost_reason.label"], d.slots["pipeline.stage.lost.label"]]),
    "move page with a failing transition": Case(deal("bare", "/move?to=review"), lambda d: [d.slots["bare.name"]]),
    "approvals inbox": Case(lambda d: "/approvals/", lambda d: [
        d.slots["waiting.name"], d.slots["waiting.comment"], d.slots["pipeline.stage.review.label"]]),
    "approval decision page": Case(lambda d: f"/approvals/{d.pending_request}", lambda d: [
        d.slots["waiting.name"], d.slots["waiting.comment"], d.slots["approval.step0.label"], d.rep_name,
        d.slots["pipeline.stage.review.label"], d.slots["pipeline.stage.proposal.label"]]),
    "decided approval": Case(lambda d: f"/approvals/{d.decided_request}", lambda d: [
        d.slots["decided.name"], d.slots["decided.comment"], d.slots["decided.approval.comment"]]),
    "notifications": Case(lambda d: "/notifications/", lambda d: [
        d.slots["rule.notify.title"], d.slots["rule.notify.message"], d.slots["full.name.changed"]]),
    "automation run log": Case(lambda d: f"/apps/{APP}/automation/", lambda d: [
        d.slots["rule.notify.label.en"], d.slots["rule.alert.label"]]),
    "rule run": Case(lambda d: f"/apps/{APP}/automation/runs/{d.rule_run}", lambda d: [d.slots["full.name.changed"]]),
    "automation health": Case(lambda d: f"/apps/{APP}/automation/health", lambda d: [d.slots["app.label.en"]]),
    "dry run of a draft rule": Case(lambda d: f"/apps/{APP}/automation/rules/draft_move/dry-run", lambda d: [
        d.slots["rule.draft.label"]]),
    "builder admin listing": Case(lambda d: f"/apps/{APP}/admin/", lambda d: [
        d.slots["app.label.en"], d.slots["deal.label.en"], d.slots["account_entity.label.en"], d.slots["note.label"],
        d.slots["form.label"], d.slots["quick.label"], d.slots["pipeline.label.en"], d.slots["rule.notify.label.en"],
        d.slots["rule.alert.label"], d.slots["rule.draft.label"]]),
    "builder admin searched for a payload": Case(
        lambda d: f"/apps/{APP}/admin/?q={q(PAYLOADS[4]['payload'])}", lambda d: [PAYLOADS[4]["payload"]]),
    "new definition page": Case(lambda d: f"/apps/{APP}/admin/form/new", lambda d: [
        d.slots["app.label.en"], d.slots["deal.label.en"], d.slots["account_entity.label.en"]]),
    "preview of the entity draft": Case(lambda d: f"/apps/{APP}/admin/entity/deal/preview", lambda d: [
        d.slots["v3.added.label"], d.slots["v3.notes.label"], d.slots["kind.opt1.label"]]),
    "preview of the form": Case(lambda d: f"/apps/{APP}/admin/form/deal/preview", lambda d: [
        d.slots["section0.label"], d.slots["section0.text"], d.slots["section1.text.en"], d.rep_name]),
    "versions and diff": Case(lambda d: f"/apps/{APP}/admin/entity/deal/versions", lambda d: [
        d.slots["deal.label.en"], d.slots["notes.label"], d.slots["v2.notes.label"], d.slots["v3.notes.label"],
        d.slots["v3.added.label"], d.slots["kind.opt0.label"], d.slots["kind.label"]]),
    "versions of the pipeline": Case(lambda d: f"/apps/{APP}/admin/pipeline/sales/versions", lambda d: [
        d.slots["pipeline.label.en"]]),
    "import page": Case(lambda d: "/apps/import", lambda d: []),
    "404 with a payload app key": Case(lambda d: f"/apps/{q(IN_PATHS[0])}/",
                                       lambda d: [IN_PATHS[0]]),
    "404 with a payload entity key": Case(lambda d: f"/apps/{APP}/{q(IN_PATHS[1])}/",
                                          lambda d: [IN_PATHS[1]]),
    "404 with a payload path": Case(lambda d: f"/nothing/{q(IN_PATHS[2])}", lambda d: []),
    "404 with a payload definition kind": Case(lambda d: f"/apps/{APP}/admin/{q(IN_PATHS[3])}/x/",
                                               lambda d: [IN_PATHS[3]]),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_page_shows_payloads_as_inert_text(admin_page: Watched, name: str):
    case = PAGES[name]
    admin_page.visit(case.path(admin_page.seeded))
    admin_page.check(name, case.shown(admin_page.seeded))


def test_choice_values_and_placeholders_reach_the_form_as_values(admin_page: Watched):
    """Choice values and placeholders live in attributes: they arrive there unchanged, not as markup."""
    s, page = admin_page.s, admin_page.page
    admin_page.visit(f"/apps/{APP}/deal/{admin_page.seeded.records['full']}/edit")
    admin_page.check("edit form")
    assert page.locator("#f_kind").input_value() == s["kind.opt0.value"]
    assert page.locator("#f_kind option").evaluate_all("(os) => os.map((o) => o.value)")[1:] == [
        s[f"kind.opt{i}.value"] for i in range(3)]
    topics = page.locator("[data-field='f_topics'] input[type=checkbox]")
    assert topics.evaluate_all("(boxes) => boxes.filter((b) => b.checked).map((b) => b.value)") == [
        s["topics.opt0.value"], s["topics.opt2.value"]]
    assert page.locator("#f_name").get_attribute("placeholder") == s["name.placeholder"]
    assert page.locator("#f_notes").get_attribute("placeholder") == s["notes.placeholder"]
    assert page.locator("#f_site").get_attribute("placeholder") == s["site.placeholder"]
    admin_page.visit(f"/apps/{APP}/deal/")
    assert page.locator("[id='f.kind'] option").evaluate_all("(os) => os.map((o) => o.value)")[1:] == [
        s[f"kind.opt{i}.value"] for i in range(3)]


def test_relation_picker_search_lists_payload_titles_as_text(admin_page: Watched):
    """The picker's options come from the lookup as JSON and are built by script."""
    s, page = admin_page.s, admin_page.page
    admin_page.visit(f"/apps/{APP}/deal/new")
    wanted = s["account.second.name"]
    with page.expect_response(lambda r: "/account/lookup" in r.url):
        page.locator("[data-field='f_account'] .picker-search").fill(wanted[:12])
    expect(page.locator("#f_account option")).to_contain_text([squash(wanted)])
    admin_page.check("relation picker after a search", [wanted])


def test_url_values_link_only_to_the_web(admin_page: Watched):
    """A web address field links to what it holds, always http(s) (the field refuses anything else)."""
    d = admin_page.seeded
    for name, slot in (("full", "full.site"), ("moved", "moved.site")):
        admin_page.visit(f"/apps/{APP}/deal/{d.records[name]}")
        admin_page.check(f"record page of {name}", [d.slots[slot]])
        link = admin_page.page.locator("[data-field='site'] dd a")
        assert link.get_attribute("href") == d.slots[slot]
        assert link.evaluate("(a) => a.protocol") == "https:"


# --- the builder: every editor in visual and JSON mode ---------------------------------------

OPEN_EVERY_TOGGLE = """
      for (let round = 0; round < 30; round++) {  // editors draw themselves again after each click
        const closed = [...document.querySelectorAll('[data-visual] button[aria-expanded="false"]')];
        if (!closed.length) break;
        closed.forEach((b) => { if (b.isConnected) b.click(); });
      }"""


@dataclass
class Editor:
    kind: str
    key: str
    open_all: str
    shown: Callable[[Seeded], list[str]]  # strings of the definition itself
    borrowed: Callable[[Seeded], list[str]] = lambda d: []  # labels of the entity it names, shown beside


EDITORS = {
    "entity": Editor("entity", "deal", OPEN_EVERY_FIELD, lambda d: [
        d.slots["deal.label.en"], d.slots["deal.label.zh"], d.slots["deal.description"], d.slots["name.label.en"],
        d.slots["v3.notes.label"], d.slots["kind.label"], d.slots["lines.label"], d.slots["v3.added.label"]]),
    "entity with problems": Editor("entity", "note", OPEN_EVERY_FIELD, lambda d: [
        d.slots["note.label"], d.slots["note.title.label"], d.slots["note.choice.label"], d.slots["note.choice.value"]]),
    "second entity": Editor("entity", "account", OPEN_EVERY_FIELD, lambda d: [
        d.slots["account_entity.label.en"], d.slots["account_entity.label.zh"], d.slots["account_entity.name.label"],
        d.slots["region.opt.label"], d.slots["region.opt.value"]]),
    "form": Editor("form", "deal", OPEN_EVERY_TOGGLE, lambda d: [
        d.slots["form.label"], d.slots["section0.label"], d.slots["section0.help"], d.slots["section0.text"],
        d.slots["form.name.help"], d.slots["section1.label.en"], d.slots["section1.text.en"]],
        lambda d: [d.slots["name.label.en"], d.slots["v3.notes.label"]]),
    "pipeline": Editor("pipeline", "sales", OPEN_EVERY_STAGE_AND_MOVE, lambda d: [
        d.slots["pipeline.label.en"], d.slots["pipeline.label.zh"], *stage_labels(d.slots),
        d.slots["pipeline.stage.lead.help"], d.slots["gate.proposal.condition.message"],
        d.slots["gate.proposal.checklist.confirmed"], d.slots["gate.won.checklist.paid.en"],
        d.slots["approval.step0.label"], d.slots["transition.lead_proposal.label"]]),
    "rule": Editor("rule", "notify_new", OPEN_EVERY_TOGGLE, lambda d: [
        d.slots["rule.notify.label.en"], d.slots["rule.notify.label.zh"], d.slots["rule.notify.description"],
        d.slots["rule.notify.message"], d.slots["rule.email.subject"], d.slots["rule.email.body"]]),
    "rule with a condition": Editor("rule", "draft_move", OPEN_EVERY_TOGGLE, lambda d: [
        d.slots["rule.draft.label"], d.slots["rule.draft.condition.value"], d.slots["rule.draft.move.comment"]],
        lambda d: [d.slots["topics.label"], d.slots["name.label.en"]]),
    "app settings": Editor("app", APP, OPEN_EVERY_TOGGLE, lambda d: [
        d.slots["app.label.en"], d.slots["app.label.zh"], d.slots["app.description"]]),
}


def strings_in(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


@pytest.mark.parametrize("name", list(EDITORS))
def test_builder_editor_shows_payloads_as_inert_text_in_both_modes(admin_page: Watched, name: str):
    editor, page = EDITORS[name], admin_page.page
    admin_page.visit(f"/apps/{APP}/admin/{editor.kind}/{editor.key}/")
    page.evaluate("() => {" + editor.open_all + "}")
    own, borrowed = editor.shown(admin_page.seeded), editor.borrowed(admin_page.seeded)
    admin_page.check(f"{name} editor, visual mode, everything opened", own + borrowed)
    page.get_by_role("button", name="JSON", exact=True).click()
    admin_page.check(f"{name} editor, JSON mode")
    in_json = strings_in(json.loads(page.locator("[data-json-text]").input_value()))
    assert [described(t) for t in own if t not in in_json] == []
    page.get_by_role("button", name="Visual", exact=True).click()
    admin_page.check(f"{name} editor, back in visual mode", own[:1])


def test_problems_repeating_payloads_show_as_text(admin_page: Watched):
    s, page = admin_page.s, admin_page.page
    admin_page.visit(f"/apps/{APP}/admin/entity/note/")
    expect(page.locator("[data-problems] li").first).to_be_visible()
    problems = page.locator("[data-problems]").inner_text()
    assert squash(s["note.choice.value"]) in squash(problems)
    admin_page.check("problems of the note draft", [s["note.choice.value"]])


def test_preview_pane_of_the_form_editor_shows_payloads_as_text(admin_page: Watched):
    s, page = admin_page.s, admin_page.page
    admin_page.visit(f"/apps/{APP}/admin/form/deal/")
    with page.expect_response(lambda r: "/preview" in r.url):
        page.locator("[data-preview-toggle]").click()
    preview = page.frame_locator("[data-preview-frame]")
    expect(preview.locator("legend").first).to_be_visible()
    # check() looks into the frame too: it is of this site
    admin_page.check("form editor with its preview", [s["section0.label"], s["section0.text"], s["section1.text.en"]])
    assert squash(s["section0.text"]) in squash(preview.locator("form.record-form").inner_text())


def test_publish_dialog_lists_payload_labels_as_text(admin_page: Watched):
    """The changes and the impact check of the deal draft: a field added, a label changed, a choice removed."""
    s, page = admin_page.s, admin_page.page
    admin_page.visit(f"/apps/{APP}/admin/entity/deal/")
    page.get_by_role("button", name="Publish", exact=True).click()
    dialog = page.locator("[data-publish-dialog]")
    expect(dialog).to_be_visible()
    expect(dialog.locator("[data-impact]")).to_have_count(1)
    admin_page.check("publish dialog", [s["v3.added.label"], s["v3.notes.label"], s["v2.notes.label"],
                                        s["kind.opt0.label"], s["kind.label"], s["kind.opt1.label"]])
    changes = squash(dialog.locator("[data-publish-changes]").inner_text())
    assert squash(s["v3.added.label"]) in changes and squash(s["v3.notes.label"]) in changes
    impact = dialog.locator("[data-impact]")
    assert squash(s["kind.opt0.label"]) in squash(impact.locator("legend").inner_text())
    targets = impact.locator("[data-target] option")
    assert targets.evaluate_all("(os) => os.map((o) => o.value)") == [s["kind.opt1.value"], s["kind.opt2.value"]]
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()


def test_board_messages_built_by_script_show_payloads_as_text(admin_page: Watched):
    """A refused drag shows the gate's messages on the card; a move announces the card and the stage."""
    d, page = admin_page.seeded, admin_page.page
    admin_page.visit(f"/apps/{APP}/pipelines/sales/")
    bare = f'.board-card[data-id="{d.records["bare"]}"]'
    page.drag_and_drop(bare, '.board-column[data-stage="proposal"]')
    message = page.locator(f"{bare} .card-message")
    expect(message).to_be_visible()
    admin_page.check("board, a move refused by the gate", [d.slots["gate.proposal.condition.message"],
                                                           d.slots["amount.label"], d.slots["bare.name"]])
    assert squash(d.slots["gate.proposal.condition.message"]) in squash(message.inner_text())
    moved = f'.board-card[data-id="{d.records["moved"]}"]'
    # Dropped on the column's head: the refused card's message now fills the middle of the column.
    page.drag_and_drop(moved, '.board-column[data-stage="lead"]', target_position={"x": 40, "y": 20})
    expect(page.locator(f'.board-column[data-stage="lead"] {moved}')).to_be_visible()
    status = page.locator(".board-status")
    expect(status).not_to_be_empty()
    admin_page.check("board, a move", [d.slots["moved.name"], d.slots["pipeline.stage.lead.label"]])
    assert squash(d.slots["moved.name"]) in squash(status.text_content())
    assert squash(d.slots["pipeline.stage.lead.label"]) in squash(status.text_content())


def test_form_sent_back_with_errors_keeps_payloads_as_values(admin_page: Watched):
    """What a rep typed comes back in the fields, and the entity's check message shows, all as text."""
    s, page = admin_page.s, admin_page.page
    typed_name, typed_email, typed_line = PAYLOADS[9]["payload"], PAYLOADS[10]["payload"], PAYLOADS[11]["payload"]
    admin_page.visit(f"/apps/{APP}/deal/new")
    page.fill("#f_name", typed_name)
    page.fill("#f_email", typed_email)  # not an e-mail address: refused
    page.locator("[data-table='f_lines'] tbody tr").first.locator("input").first.fill(typed_line)
    page.check("#f_flag")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".error-summary")).to_be_visible()
    admin_page.check("create form sent back", [typed_name, typed_email, typed_line])
    assert page.locator("#f_name").input_value() == typed_name
    page.fill("#f_email", "")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".error-summary")).to_contain_text(squash(s["deal.check.message"]))
    admin_page.check("create form sent back by the entity's check", [typed_name, s["deal.check.message"]])


def test_move_refused_by_the_gate_gives_the_comment_back_as_text(admin_page: Watched):
    """The move page keeps the comment typed for a move the gate refuses (a textarea: </textarea> must stay text)."""
    d, page = admin_page.seeded, admin_page.page
    comment = next(p["payload"] for p in PAYLOADS if p["payload"].startswith("</textarea>"))
    admin_page.visit(f"/apps/{APP}/deal/{d.records['bare']}/move?to=proposal")
    page.fill("#comment", comment)
    page.locator("form.stacked button.primary").click()
    expect(page.locator("#move-error")).to_be_visible()
    admin_page.check("move page sent back", [comment, d.slots["gate.proposal.condition.message"]])
    assert page.locator("#comment").input_value() == comment


@pytest.mark.parametrize("rule", ["notify_new", "draft_move"])
def test_dry_run_results_show_payloads_as_text(admin_page: Watched, rule: str):
    d, page = admin_page.seeded, admin_page.page
    admin_page.visit(f"/apps/{APP}/automation/rules/{rule}/dry-run")
    page.locator("form.filters button.primary").click()
    expect(page.locator("table.dry-run tbody tr").first).to_be_visible()
    label = d.slots["rule.notify.label.en"] if rule == "notify_new" else d.slots["rule.draft.label"]
    admin_page.check(f"dry run of {rule}", [label, d.slots["full.name.changed"], d.slots["bare.name"]])


def test_import_page_repeats_payloads_as_text(admin_page: Watched):
    """A file that is not JSON is named in the error; a bundle's problems quote its strings."""
    page = admin_page.page
    not_json = next(t for t in IN_PATHS if '"' not in t and "\\" not in t)
    admin_page.visit("/apps/import")
    page.set_input_files("#bundle", files=[{"name": not_json, "mimeType": "application/json", "buffer": b"{nope"}])
    page.get_by_role("button", name="Import").click()
    expect(page.locator(".error-summary")).to_be_visible()
    admin_page.check("import of a file that is not JSON", [not_json])
    twice = PAYLOADS[12]["payload"]
    bundle = {"formloom": 1, "kind": "bundle",
              "app": {"formloom": 1, "kind": "app", "key": "imported", "label": PAYLOADS[13]["payload"]},
              "definitions": [{"formloom": 1, "kind": "entity", "key": "thing", "label": PAYLOADS[14]["payload"],
                               "fields": [{"key": "pick", "type": "select", "label": PAYLOADS[15]["payload"],
                                           "options": [{"value": twice, "label": "a"}, {"value": twice, "label": "b"}]}]}]}
    page.set_input_files("#bundle", files=[{"name": "bundle.json", "mimeType": "application/json",
                                            "buffer": json.dumps(bundle).encode()}])
    page.get_by_role("button", name="Import").click()
    expect(page.locator(".error-summary li").first).to_be_visible()
    admin_page.check("import of a bundle with problems", [twice])


@pytest.mark.parametrize("path", ["/apps/new", f"/apps/{APP}/admin/entity/new"])
def test_new_app_and_definition_forms_sent_back_keep_payload_names(admin_page: Watched, path: str):
    page = admin_page.page
    english, chinese = PAYLOADS[16]["payload"], PAYLOADS[17]["payload"]
    admin_page.visit(path)
    page.fill("#label_en", english)
    page.fill("#label_zh", chinese)
    page.fill("#key", APP if path == "/apps/new" else "deal")  # taken: the form comes back
    page.locator("form.builder-form button[type=submit]").click()
    expect(page.locator(".error-summary")).to_be_visible()
    admin_page.check(f"{path} sent back", [english, chinese])


@pytest.mark.parametrize("target", [PAYLOADS[20]["payload"], PAYLOADS[22]["payload"], PAYLOADS[29]["payload"],
                                    f"/apps/{APP}/?x={PAYLOADS[0]['payload']}"])
def test_login_with_a_payload_next_lands_on_this_site(anonymous_page: Watched, target: str):
    page = anonymous_page.page
    anonymous_page.visit(f"/login?next={q(target)}")
    anonymous_page.check("login page")
    page.fill("#username", "admin")
    page.fill("#password", "correct-horse-42")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator(".topbar .who")).to_have_text("Ada Admin")
    assert page.url.startswith(anonymous_page.base + "/")
    anonymous_page.check("the page after logging in")


# --- the rep's side: what a rep sees of the same strings -------------------------------------

@pytest.fixture(scope="module")
def rep_state(browser, base, seeded, tmp_path_factory) -> str:
    context = browser.new_context(viewport=DESKTOP, locale="en-US")
    page = context.new_page()
    log_in(page, base, "rep", seeded.rep_name)  # the rep's display name is a payload too
    path = tmp_path_factory.mktemp("xss-state") / "rep.json"
    context.storage_state(path=str(path))
    context.close()
    return str(path)


@pytest.fixture
def rep_page(request, browser, base, seeded, rep_state, tmp_path):
    watched = watched_page(browser, base, seeded, rep_state)
    yield watched
    _close(request, watched, tmp_path)


REP_PAGES = {
    "approvals I asked for": Case(lambda d: "/approvals/?box=requested", lambda d: [
        d.slots["waiting.name"], d.slots["decided.name"], d.rep_name]),
    "my approval request": Case(lambda d: f"/approvals/{d.pending_request}", lambda d: [
        d.slots["waiting.name"], d.slots["waiting.comment"], d.slots["approval.step0.label"]]),
    "my notifications": Case(lambda d: "/notifications/", lambda d: [
        d.slots["rule.alert.title"], d.slots["rule.alert.message"]]),
    "record page": PAGES["record page"],
    "kanban board": Case(lambda d: f"/apps/{APP}/pipelines/sales/?scope=mine", lambda d: [
        d.slots["pipeline.label.en"], d.slots["full.name.changed"]]),
}


@pytest.mark.parametrize("name", list(REP_PAGES))
def test_rep_page_shows_payloads_as_inert_text(rep_page: Watched, name: str):
    case = REP_PAGES[name]
    rep_page.visit(case.path(rep_page.seeded))
    rep_page.check(f"{name}, as the rep", case.shown(rep_page.seeded))


# --- what the seed holds, and what the checks refuse -----------------------------------------

def test_every_payload_is_placed_somewhere(seeded):
    placed = set(seeded.slots.placed.values())
    assert len(PAYLOADS) >= 50 and len(PAYLOAD_IDS) == len(PAYLOADS)
    assert [p["id"] for p in PAYLOADS if p["payload"] not in placed] == []


def test_checks_take_payloads_as_free_text_but_not_as_keys_or_colours(xss_app, seeded):
    """Labels, help, placeholders and choice values are free text; keys and colours have a format."""
    db = new_session(xss_app)
    try:
        app = db.query(App).filter_by(key=APP).one()
        texts = [p["payload"] for p in PAYLOADS]
        fields = [{"key": f"f{i}", "type": "select", "label": text, "help": text, "placeholder": text,
                   "options": [{"value": text, "label": text}]} for i, text in enumerate(texts)]
        body = {"formloom": 1, "kind": "entity", "key": "probe", "label": texts[0], "description": texts[1],
                "fields": [{"key": "title", "type": "text", "label": texts[2]}, *fields], "title_field": "title"}
        assert definitions.check(db, app, "entity", "probe", body) == []
        bad = {**body, "fields": [{**body["fields"][0], "key": texts[3]}, *fields]}
        assert "$.fields[0].key" in {p.path for p in definitions.check(db, app, "entity", "probe", bad)}
        pipeline = json.loads(json.dumps(definitions.current_body(db, definitions.get(db, app, "pipeline", "sales"))))
        pipeline["stages"][0]["color"] = texts[4]
        assert "$.stages[0].color" in {p.path for p in definitions.check(db, app, "pipeline", "sales", pipeline)}
    finally:
        db.close()


@pytest.mark.parametrize("value", [p["payload"] for p in PAYLOADS if p["kind"] == "javascript: URL"])
def test_url_fields_refuse_anything_but_web_addresses(xss_app, seeded, value):
    db = new_session(xss_app)
    try:
        app = db.query(App).filter_by(key=APP).one()
        rep = db.query(User).filter_by(username="rep").one()
        with pytest.raises(RecordValidationError) as refused:
            records.create(db, rep, Cause.for_user(rep), app, "deal", {"name": "probe", "site": value})
        assert list(refused.value.fields) == ["site"]
    finally:
        db.rollback()
        db.close()


# --- escaping holds without the CSP too ------------------------------------------------------

UNGUARDED = ["record page", "edit form", "create form", "kanban board", "move page with a gate",
             "approval decision page", "notifications", "versions and diff", "builder admin listing",
             "404 with a payload app key", "record list with a payload filter value"]


@pytest.mark.parametrize("name", UNGUARDED + [f"{name} editor" for name in ("entity", "form", "pipeline", "rule")])
def test_without_the_csp_no_payload_runs_either(unguarded_page: Watched, name: str):
    if name in PAGES:
        case = PAGES[name]
        unguarded_page.visit(case.path(unguarded_page.seeded))
        shown = case.shown(unguarded_page.seeded)
    else:
        editor = EDITORS[name.removesuffix(" editor")]
        unguarded_page.visit(f"/apps/{APP}/admin/{editor.kind}/{editor.key}/")
        unguarded_page.page.evaluate("() => {" + editor.open_all + "}")
        shown = editor.shown(unguarded_page.seeded)
    unguarded_page.check(f"{name}, without the CSP", shown)


def test_a_stored_address_that_is_not_a_web_address_is_shown_but_not_linked(admin_page: Watched, xss_app):
    """The url field refuses such values; one stored anyway (an old row, a database edit) is not linked."""
    value = next(p["payload"] for p in PAYLOADS if p["payload"].startswith("javascript:"))
    db = new_session(xss_app)
    try:
        app = db.query(App).filter_by(key=APP).one()
        rep = db.query(User).filter_by(username="rep").one()
        record = records.create(db, rep, Cause.for_user(rep), app, "deal", {"name": "Stored as it was"})
        record.data = {**record.data, "site": value}  # past the field's validation, as old data could be
        db.commit()
        record_id = record.id
    finally:
        db.close()
    admin_page.visit(f"/apps/{APP}/deal/{record_id}")
    admin_page.check("record page with a stored javascript: address", [value])
    expect(admin_page.page.locator("[data-field='site'] dd a")).to_have_count(0)

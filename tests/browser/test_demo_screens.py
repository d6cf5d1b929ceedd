"""The CRM with its demo data in a real browser, as a sales manager opens it on a Monday morning:
every dashboard draws its charts from the demo year, the boards show the deals and quotations in
their stages, the lead list offers the public pool; in English and in Chinese. Screenshots land in
docs/screenshots/ (crm-*.png).
"""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from formloom.platform import auth
from formloom.platform.models import User
from formloom.platform.storage import storage_for
from formloom.templates_library import install
from formloom.templates_library.demo import load_demo_data
from tests.browser.conftest import Page, expect, log_in, whole_page
from tests.factories import PASSWORD

pytestmark = pytest.mark.browser

TODAY = date.today()  # the demo year ends today, as `formloom demo` makes it
DASHBOARDS = {"sales": ("Sales", "销售分析"), "targets": ("Targets", "目标达成"), "activity": ("Activity", "销售活动"),
              "customers": ("Customers", "客户分析"), "payments": ("Payments", "回款分析")}
BOARDS = ("sales", "quotation", "contract", "service")  # the pipelines of deals, quotations, contracts, tickets


@pytest.fixture
def demo(app, db, admin):
    crm = install(db, admin)
    load_demo_data(db, admin, crm, seed=7, today=TODAY, scale=0.1, storage=storage_for(app))
    manager = db.scalar(select(User).where(User.username == "zhang.min"))
    auth.set_password(manager, PASSWORD)
    db.commit()
    return crm


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_dashboards_and_boards_render_the_demo_year(page: Page, live_server, demo, screenshots, lang):
    log_in(page, live_server, "zhang.min", "张敏")
    suffix = "" if lang == "en" else "-zh"
    for key, titles in DASHBOARDS.items():
        page.goto(f"{live_server}/apps/crm/dashboards/{key}?lang={lang}&period=last_12_months")
        charts = page.locator("svg.chart")
        expect(charts.first).to_be_visible()
        # Drawn from data: every chart on the page has marks, and no widget is left empty.
        assert page.locator("svg.chart a.chart-link").count() >= charts.count(), key
        assert page.locator(".widget-refused").count() == 0, key
        heading = page.locator("h1").inner_text()
        assert titles[0 if lang == "en" else 1] in heading, (key, heading)
        assert page.js_errors == [], key
        whole_page(page, screenshots / f"crm-dashboard-{key}{suffix}.png")
    for pipeline in BOARDS:
        page.goto(f"{live_server}/apps/crm/pipelines/{pipeline}/?lang={lang}")
        cards = page.locator(".board-card")
        expect(cards.first).to_be_visible()
        assert cards.count() >= 5, pipeline
        assert page.js_errors == [], pipeline
        whole_page(page, screenshots / f"crm-board-{pipeline}{suffix}.png")
    page.goto(f"{live_server}/apps/crm/lead/?lang={lang}")
    expect(page.locator("table tbody tr").first).to_be_visible()
    pool = page.get_by_role("link", name="Public pool" if lang == "en" else "公海", exact=True).first
    pool.click()
    expect(page.get_by_role("button", name="Claim" if lang == "en" else "领取").first).to_be_visible()
    whole_page(page, screenshots / f"crm-lead-pool{suffix}.png")
    assert page.js_errors == []

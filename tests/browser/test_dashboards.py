"""The CRM dashboards in a real browser: every dashboard draws its SVG charts, a bar's link opens the
records behind it, and PNG download turns a chart into an image file. Screenshots in English and
Chinese land in docs/screenshots/.
"""
from __future__ import annotations

import pytest

from tests.browser.conftest import Page, expect, log_in, whole_page
from tests.dashboard_data import build

pytestmark = pytest.mark.browser

DASHBOARDS = ("sales", "targets", "activity", "customers", "payments")


@pytest.fixture
def crm(db):
    return build(db)


def test_each_crm_dashboard_draws_its_charts_and_drills_down(page: Page, live_server, crm, screenshots):
    log_in(page, live_server, "boss", "Ada Admin")
    for key in DASHBOARDS:
        page.goto(f"{live_server}/apps/crm/dashboards/{key}?period={crm.today.year}")
        expect(page.locator("svg.chart").first).to_be_visible()
        box = page.locator("svg.chart").first.bounding_box()
        assert box["width"] > 200 and box["height"] > 60, key
        assert page.js_errors == [], key
        whole_page(page, screenshots / f"dashboard-{key}.png")
    page.goto(f"{live_server}/apps/crm/dashboards/sales?period={crm.today.year}")
    bar = page.locator("#widget-win_rate_by_rep svg a.chart-link").first
    bar.click()
    expect(page.locator("table.drill-records tbody tr").first).to_be_visible()
    assert "/dashboards/sales/win_rate_by_rep/records?" in page.url
    page.locator("table.drill-records tbody a").first.click()
    expect(page.locator("h1")).to_be_visible()
    assert "/apps/crm/opportunity/" in page.url


def test_png_download_of_a_chart_gives_an_image_file(page: Page, live_server, crm, tmp_path):
    log_in(page, live_server, "boss", "Ada Admin")
    page.goto(f"{live_server}/apps/crm/dashboards/sales?period={crm.today.year}")
    with page.expect_download() as caught:
        page.locator("#widget-forecast button[data-png]").click()
    download = caught.value
    assert download.suggested_filename == "sales-forecast.png"
    path = tmp_path / "chart.png"
    download.save_as(str(path))
    content = path.read_bytes()
    assert content[:8] == b"\x89PNG\r\n\x1a\n" and len(content) > 2000
    assert page.js_errors == []


def test_dashboards_read_in_chinese(page: Page, live_server, crm, screenshots):
    log_in(page, live_server, "boss", "Ada Admin")
    page.goto(f"{live_server}/apps/crm/dashboards/sales?lang=zh-CN&period={crm.today.year}")
    expect(page.locator("h1")).to_have_text("销售分析")
    expect(page.locator("#title-funnel")).to_have_text("销售漏斗")
    expect(page.locator("#widget-funnel svg.chart")).to_be_visible()
    whole_page(page, screenshots / "dashboard-sales-zh.png")
    page.goto(f"{live_server}/apps/crm/dashboards/targets?period={crm.today.year}")
    expect(page.locator("#widget-by_rep svg.chart")).to_be_visible()
    whole_page(page, screenshots / "dashboard-targets-zh.png")

"""Every number of every CRM dashboard over the demo data equals an independent computation.

The demo generator fills a year of two teams' work (here at a tenth of its size, which keeps every
kind of record and every stage, tier and payment status); the dashboards' SQL must agree with a
plain-Python count over the records (tests/dashboard_expectations.py) for an admin, a team manager
and a rep, over several periods and the team and rep filters.
"""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from formloom.platform.models import Team, User
from formloom.platform.storage import storage_for
from formloom.runtime import dashboards
from formloom.templates_library import install
from formloom.templates_library.demo import load_demo_data
from tests.dashboard_expectations import expected, same, shown

TODAY = date(2026, 10, 15)
SCALE = 0.1  # 200 leads, 80 customers, 120 opportunities with their quotations, contracts and payments


@pytest.fixture
def demo(app, db, admin):
    crm = install(db, admin)
    load_demo_data(db, admin, crm, seed=7, today=TODAY, scale=SCALE, storage=storage_for(app))
    db.commit()
    return crm


def user(db, username: str) -> User:
    return db.scalar(select(User).where(User.username == username))


def test_every_dashboard_number_over_the_demo_data_equals_an_independent_computation(db, admin, demo):
    east = db.scalar(select(Team.id).where(Team.key == "east_sales"))
    li = user(db, "li.wei")
    viewers = {"admin": admin, "manager": user(db, "zhang.min"), "rep": li}
    periods = [{"period": str(TODAY.year)}, {"period": "last_12_months"}, {"period": "all"},
               {"period": "this_quarter", "team": str(east)}, {"period": str(TODAY.year), "rep": str(li.id)}]
    compared = nonzero = 0
    for who, viewer in viewers.items():
        for body in dashboards.published(db, demo):
            for args in periods if who == "admin" else periods[:1]:
                filters = dashboards.parse_filters(body, args, TODAY)
                ctx = dashboards.context(db, viewer, demo, filters, TODAY)
                for widget in body["widgets"]:
                    got = shown(dashboards.widget_data(ctx, widget))
                    wanted = expected(db, viewer, demo, body["key"], widget["key"], filters, TODAY)
                    assert same(got, wanted), (who, args, body["key"], widget["key"], sorted((k, got.get(k), wanted.get(k)) for k in set(got) | set(wanted) if got.get(k) != wanted.get(k)))
                    compared += 1
                    nonzero += any(v for row in wanted.values() for v in row.values())
    # The demo data gives nearly every widget something to show: the comparison is not of zeros.
    assert compared >= 100 and nonzero >= compared * 0.8, (compared, nonzero)

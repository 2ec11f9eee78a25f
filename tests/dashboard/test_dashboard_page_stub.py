"""Unit-level checks of the BUILT page in real Chromium, fed by a stub of the backend API.

These prove the production bundle (not the dev server) renders the documented API shape
and follows the SSE stream. The real backend, broker and Couchbase are exercised by
test_dashboard_e2e.py.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from .dashboard_sample import sample_analytics
from .dashboard_stub import serve_stub
from .dashboard_tools import KPI_FIELDS, ROW_IDS

pytestmark = pytest.mark.browser


def test_built_page_shows_the_served_totals_and_orders(page: Page, dashboard_dist: Path) -> None:
    document = sample_analytics(orders=12)
    with serve_stub(dashboard_dist, document) as (url, _state):
        page.goto(url)
        expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "live")
        for test_id, field in KPI_FIELDS.items():
            value = page.get_by_test_id(test_id).get_attribute("data-value")
            assert value is not None and float(value) == document["totals"][field], test_id
        ids = page.get_by_test_id("order-row").evaluate_all(ROW_IDS)
        assert ids == [order["order_id"] for order in document["orders"]]


def test_built_page_follows_a_pushed_change_without_reload(
    page: Page, dashboard_dist: Path
) -> None:
    document = sample_analytics(orders=5)
    with serve_stub(dashboard_dist, document) as (url, state):
        page.goto(url)
        expect(page.get_by_test_id("order-row")).to_have_count(5)
        page.evaluate("window.__sameDocument = true")

        changed = copy.deepcopy(document)
        newest = dict(changed["orders"][0], order_id="ord_pushed_after_load")
        changed["orders"].insert(0, newest)
        changed["totals"]["orders"] += 1
        state.set(changed)

        expect(page.get_by_test_id("order-row").first).to_have_attribute(
            "data-order-id", "ord_pushed_after_load"
        )
        expect(page.get_by_test_id("kpi-total-orders")).to_have_attribute(
            "data-value", str(changed["totals"]["orders"])
        )
        assert page.evaluate("window.__sameDocument") is True


def test_built_page_tabs_past_the_charts_to_the_scrollable_lists(
    page: Page, dashboard_dist: Path
) -> None:
    # The chart plots are decorative (their data is in hidden tables): they must not take
    # keyboard focus, while the two scrollable lists must.
    with serve_stub(dashboard_dist, sample_analytics(orders=30)) as (url, _state):
        page.goto(url)
        expect(page.get_by_test_id("order-row")).to_have_count(30)
        page.keyboard.press("Tab")
        expect(page.get_by_role("region", name="Latest orders table")).to_be_focused()
        page.keyboard.press("Tab")
        expect(page.get_by_role("region", name="Fraud alerts list")).to_be_focused()

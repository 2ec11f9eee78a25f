"""End to end: the built dashboard in real headless Chromium, served by the real backend,
fed by the real analytics and payment services through the real broker and gocaves.

One stack per module (starting it is the slow part); the tests only add to it, so each one
reads what it compares from the live API at the time it compares.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer
from devinfra.dashboard_page import kpi_values
from devinfra.gocaves import Gocaves
from devinfra.kafka import KafkaBroker
from devinfra.procs import free_port
from orderpipeline.core.order import new_order_id
from playwright.sync_api import Page, expect

from .dashboard_stack import Stack, order_json, unique_topics
from .dashboard_tools import ARTIFACTS, ROW_IDS

pytestmark = [pytest.mark.kafka, pytest.mark.couchbase, pytest.mark.browser]

INITIAL_ORDERS = 40


@pytest.fixture(scope="module")
def stack(
    kafka: KafkaBroker,
    gocaves: Gocaves,
    dashboard_dist: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    # A cluster of this module's own (what the `couchbase` fixture makes per test), so the
    # stack is started once for the module.
    cluster = gocaves.create_cluster(bucket="order_analytics")
    topics = unique_topics()
    kafka.create_topics([v for k, v in topics.items() if k.endswith("_TOPIC")])
    env = (
        dict(os.environ)
        | kafka.service_env()
        | cluster.service_env()
        | topics
        | {"PAYMENT_PROCESSING_DELAY_MS": "5", "LOG_LEVEL": "INFO"}
    )
    stack = Stack(env=env, logs=tmp_path_factory.mktemp("dashboard-e2e"), backend_port=free_port())
    try:
        stack.start_worker("analytics")
        stack.start_worker("payment")
        stack.start_backend(dashboard_dist)
        stack.run_producer(INITIAL_ORDERS)
        stack.wait_for_totals(orders=INITIAL_ORDERS, payments=INITIAL_ORDERS)
        yield stack
    finally:
        stack.stop()


def open_live(page: Page, stack: Stack) -> None:
    page.goto(stack.url)
    expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "live")


def test_page_lists_the_produced_orders_newest_first(page: Page, stack: Stack) -> None:
    open_live(page, stack)
    api = stack.analytics()
    expect(page.get_by_test_id("order-row")).to_have_count(len(api["orders"]))
    assert len(api["orders"]) >= INITIAL_ORDERS
    assert page.get_by_test_id("order-row").evaluate_all(ROW_IDS) == [
        order["order_id"] for order in api["orders"]
    ]


def test_kpi_cards_equal_the_backend_aggregates(page: Page, stack: Stack) -> None:
    open_live(page, stack)
    totals = stack.analytics()["totals"]
    assert totals["orders"] >= INITIAL_ORDERS
    assert kpi_values(page) == pytest.approx({k: float(v) for k, v in totals.items()}, rel=0, abs=0)
    # Newer than the rows shown: the cards are aggregates over every order.
    assert totals["payments"] == totals["orders"]


def test_new_order_appears_without_reload(page: Page, stack: Stack) -> None:
    open_live(page, stack)
    before = stack.analytics()["totals"]
    page.evaluate("window.__sameDocument = true")

    order_id = new_order_id()
    producer = Producer(stack_kafka_config(stack))
    producer.produce(
        stack.env["ORDERS_TOPIC"], key=order_id, value=order_json(order_id, 512.25, "DE")
    )
    assert producer.flush(10) == 0

    expect(page.get_by_test_id("order-row").first).to_have_attribute(
        "data-order-id", order_id, timeout=30_000
    )
    expect(page.get_by_test_id("kpi-total-orders")).to_have_attribute(
        "data-value", str(before["orders"] + 1)
    )
    # A DE order above the threshold: the fraud rule flags it, with its reason.
    alert = page.locator(f'[data-testid="fraud-alert"][data-order-id="{order_id}"]')
    expect(alert.locator("[data-reason]")).to_have_attribute(
        "data-reason", "HIGH_AMOUNT_RISKY_COUNTRY"
    )
    assert page.evaluate("window.__sameDocument") is True

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "dashboard.png")


def test_unavailable_shows_when_backend_stops_and_clears_when_it_returns(
    page: Page, stack: Stack, dashboard_dist: Path
) -> None:
    open_live(page, stack)
    page.evaluate("window.__sameDocument = true")
    state = page.get_by_test_id("connection-state")
    assert stack.backend is not None

    stack.backend.stop()
    expect(state).to_have_attribute("data-state", "unavailable", timeout=15_000)
    expect(state).to_have_text("Backend unavailable")
    # The last data stays on screen meanwhile.
    expect(page.get_by_test_id("order-row").first).to_be_visible()

    stack.start_backend(dashboard_dist)
    expect(state).to_have_attribute("data-state", "live", timeout=30_000)
    assert page.evaluate("window.__sameDocument") is True


def stack_kafka_config(stack: Stack) -> dict[str, str]:
    return {
        "bootstrap.servers": stack.env["KAFKA_BOOTSTRAP_SERVERS"],
        "security.protocol": stack.env["KAFKA_SECURITY_PROTOCOL"],
    }


@pytest.mark.chaos
def test_unavailable_shows_while_couchbase_is_frozen_and_clears_when_it_resumes(
    page: Page, stack: Stack, gocaves: Gocaves
) -> None:
    # The backend stays up and keeps the stream open, so only the page's probe of the API
    # (after a quiet spell) can notice that the data behind it went stale.
    open_live(page, stack)
    state = page.get_by_test_id("connection-state")
    gocaves.pause()
    try:
        expect(state).to_have_attribute("data-state", "unavailable", timeout=30_000)
        expect(page.get_by_test_id("stale-banner")).to_contain_text("503")
    finally:
        gocaves.resume()
    expect(state).to_have_attribute("data-state", "live", timeout=30_000)

"""The backend as a real process against gocaves, with data written by the real analytics
consumer from the real broker."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from devinfra.gocaves import CouchbaseCluster
from devinfra.procs import free_port

from tests.analytics.helpers import (
    ServiceProcess,
    Topics,
    assert_analytics_exact,
    make_orders,
    produce_orders,
    wait_until,
)

pytestmark = [pytest.mark.couchbase]


def get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        process.close()


def start_backend(
    couchbase: CouchbaseCluster, tmp_path: Path, processes: list[ServiceProcess], **env: str
) -> int:
    port = free_port()
    backend = ServiceProcess(
        "backend", {**couchbase.service_env(), "BACKEND_PORT": str(port), **env}, tmp_path
    ).start()
    processes.append(backend)
    wait_until(lambda: _answers(port), 30, "the backend to listen")
    return port


def _answers(port: int) -> bool:
    try:
        return get(port, "/healthz")[0] == 200
    except OSError:
        return False


@pytest.mark.kafka
def test_backend_serves_the_exact_aggregates_and_streams_changes(
    kafka: Any, couchbase: CouchbaseCluster, tmp_path: Path, processes: list[ServiceProcess]
) -> None:
    topics = Topics.unique()
    topics.create(kafka)
    orders = make_orders(400, seed=3)
    produce_orders(kafka, topics.orders, orders)
    analytics = ServiceProcess(
        "analytics", {**kafka.service_env(), **couchbase.service_env(), **topics.env()}, tmp_path
    ).start()
    processes.append(analytics)
    port = start_backend(couchbase, tmp_path, processes)

    def counted() -> int:
        status, body = get(port, "/api/analytics")
        return int(body["totals"]["orders"]) if status == 200 else -1

    wait_until(lambda: counted() == len(orders), 60, "the backend to show every order")
    status, body = get(port, "/api/analytics")
    assert status == 200
    now = datetime.strptime(body["updated_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert_analytics_exact(body, orders, set(), now)
    status, page = get(port, "/api/orders?limit=7")
    assert [o["order_id"] for o in page["orders"]] == [o["order_id"] for o in body["orders"][:7]]
    assert get(port, "/api/orders?limit=500")[0] == 422

    # The stream sends the current analytics at once, then an event after new orders arrive.
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stream", timeout=30) as stream:
        first = _next_event(stream)
        assert first["totals"]["orders"] == len(orders)
        more = make_orders(10, seed=4)
        produce_orders(kafka, topics.orders, more)
        while (event := _next_event(stream))["totals"]["orders"] < len(orders) + len(more):
            assert event["totals"]["orders"] >= len(orders)
    assert event["totals"]["orders"] == len(orders) + len(more)


def _next_event(stream: Any) -> dict[str, Any]:
    """The data of the next `analytics` event (keepalive comments skipped)."""
    event = None
    while True:
        line = stream.readline().decode().rstrip("\n")
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: ") and event == "analytics":
            data: dict[str, Any] = json.loads(line.removeprefix("data: "))
            return data


def test_readyz_and_api_are_503_while_couchbase_is_paused(
    gocaves: Any, couchbase: CouchbaseCluster, tmp_path: Path, processes: list[ServiceProcess]
) -> None:
    port = start_backend(
        couchbase,
        tmp_path,
        processes,
        COUCHBASE_KV_TIMEOUT_SECONDS="1",
        BACKEND_MAX_STALENESS_SECONDS="2",
    )
    wait_until(lambda: get(port, "/readyz")[0] == 200, 30, "readiness")
    wait_until(lambda: get(port, "/api/analytics")[0] == 200, 30, "the first snapshot")
    gocaves.pause()
    try:
        status, body = get(port, "/readyz")
        assert status == 503
        assert body["detail"]
        wait_until(lambda: get(port, "/api/analytics")[0] == 503, 30, "stale data to be refused")
        assert get(port, "/healthz")[0] == 200  # alive, just not ready
    finally:
        gocaves.resume()
    wait_until(lambda: get(port, "/readyz")[0] == 200, 30, "readiness after the outage")
    wait_until(lambda: get(port, "/api/analytics")[0] == 200, 30, "fresh data after the outage")

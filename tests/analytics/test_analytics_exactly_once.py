"""The analytics consumer as a real process against the real broker and gocaves: every order
stored once and counted once, whatever is redelivered, killed or restarted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from devinfra.gocaves import CouchbaseCluster
from orderpipeline.core.aggregate_store import PAYMENT_PREFIX, SOURCE_FIELD, AnalyticsStore
from orderpipeline.core.order import Order

from .helpers import (
    ServiceProcess,
    Topics,
    assert_analytics_exact,
    end_offsets,
    make_orders,
    payment_record,
    produce,
    produce_orders,
    read_committed,
    read_view,
    reset_group_offsets,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.couchbase]


@pytest.fixture
def collection(couchbase: CouchbaseCluster) -> Iterator[Any]:
    cluster = couchbase.connect()
    try:
        yield cluster.bucket(couchbase.bucket).default_collection()
    finally:
        cluster.close()


@pytest.fixture
def topics(kafka: Any) -> Topics:
    names = Topics.unique()
    names.create(kafka)
    return names


@pytest.fixture
def analytics(
    kafka: Any, couchbase: CouchbaseCluster, topics: Topics, tmp_path: Path
) -> Iterator[Any]:
    """A factory of analytics processes (same group, same cluster); all closed at the end."""
    started: list[ServiceProcess] = []

    def start(**env: str) -> ServiceProcess:
        service = ServiceProcess(
            "analytics",
            {**kafka.service_env(), **couchbase.service_env(), **topics.env(), **env},
            tmp_path,
        ).start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.close()


def applied_everything(collection: Any, kafka: Any, topics: Topics) -> bool:
    """Every partition aggregate has reached the end of its partition."""
    aggregates, _ = AnalyticsStore(collection).read_all()
    ends = {
        (topic, p): end
        for topic in (topics.orders, topics.payments)
        for p, end in end_offsets(kafka, topic).items()
    }
    reached = {(pid.topic, pid.partition): agg.next_offset for pid, agg in aggregates.items()}
    return all(reached.get(key, 0) >= end for key, end in ends.items())


def counted_orders(collection: Any) -> int:
    return int(read_view(collection, datetime.now(UTC))["totals"]["orders"])


def assert_exact(collection: Any, orders: list[Order], paid: set[str]) -> None:
    now = datetime.now(UTC)
    assert_analytics_exact(read_view(collection, now), orders, paid, now)
    # Exactly one document per order, and it is the order as produced.
    result = collection.get_multi([o.order_id for o in orders], return_exceptions=True)
    assert not result.exceptions
    for order in orders:
        stored = dict(result.results[order.order_id].content_as[dict])
        assert stored.pop(SOURCE_FIELD)["topic"].startswith("orders-")
        assert stored == order.model_dump(mode="json")


def test_n_orders_make_n_documents_and_exact_aggregates(
    kafka: Any, topics: Topics, collection: Any, analytics: Any
) -> None:
    orders = make_orders(600)
    produce_orders(kafka, topics.orders, orders)
    # Invalid messages go to the dead-letter topic and count nothing.
    produce(kafka, topics.orders, [(b"bad", b"not json"), (None, b'{"order_id": 1}')])
    # A duplicate order (same order_id, another message) is stored and counted once.
    produce_orders(kafka, topics.orders, orders[:5])
    # Payments: one record per paid order, some delivered twice by an at-least-once payer.
    paid = orders[::3]
    produce(kafka, topics.payments, [(o.order_id.encode(), payment_record(o)) for o in paid])
    produce(kafka, topics.payments, [(o.order_id.encode(), payment_record(o)) for o in paid[:7]])

    service = analytics()
    wait_until(lambda: applied_everything(collection, kafka, topics), 60, "analytics to catch up")

    assert_exact(collection, orders, {o.order_id for o in paid})
    assert collection.get(PAYMENT_PREFIX + paid[0].order_id).content_as[dict]["status"] == "PAID"
    assert service.metric("orderpipeline_analytics_duplicates_total") == 5 + 7
    wait_until(lambda: service.metric("orderpipeline_dead_lettered_total") == 2, 10, "dead letters")
    assert service.stop() == 0
    assert len(read_committed(kafka, topics.dlq)) == 2


def test_sigkill_mid_stream_and_restart_still_counts_every_order_once(
    kafka: Any, topics: Topics, collection: Any, analytics: Any
) -> None:
    orders = make_orders(6000, seed=11)
    produce_orders(kafka, topics.orders, orders)
    # Small batches: many aggregate writes, so the kill lands between two of them.
    fast = {"ANALYTICS_BATCH_SIZE": "100", "ANALYTICS_SESSION_TIMEOUT_MS": "6000"}
    first = analytics(**fast)
    wait_until(lambda: counted_orders(collection) > 0, 60, "the first batches")
    first.kill()
    counted_at_kill = counted_orders(collection)
    assert 0 < counted_at_kill < len(orders), "the kill must land mid-stream"

    second = analytics(**fast)
    wait_until(lambda: counted_orders(collection) > counted_at_kill, 60, "progress after restart")
    second.kill()
    analytics(ANALYTICS_SESSION_TIMEOUT_MS="6000")
    wait_until(lambda: applied_everything(collection, kafka, topics), 90, "analytics to finish")

    assert_exact(collection, orders, set())


def test_a_group_offset_reset_rereads_nothing_and_orders_published_again_count_once(
    kafka: Any, topics: Topics, collection: Any, analytics: Any
) -> None:
    orders = make_orders(800, seed=5)
    produce_orders(kafka, topics.orders, orders)
    first = analytics()
    wait_until(lambda: applied_everything(collection, kafka, topics), 60, "the first pass")
    assert first.stop() == 0

    # The group's offsets reset to the beginning: Couchbase, not Kafka, decides where a
    # partition resumes, so not one message below the stored next_offset is read again.
    # And every order published once more (what a producer replaying its log would do): each
    # reaches the consumer a second time, as a new message, and is not counted.
    reset_group_offsets(kafka, topics.group, [topics.orders, topics.payments])
    produce_orders(kafka, topics.orders, orders)
    second = analytics()
    wait_until(lambda: applied_everything(collection, kafka, topics), 60, "the second pass")

    assert second.metric("orderpipeline_analytics_redelivered_total") == 0
    assert second.metric("orderpipeline_analytics_duplicates_total") == len(orders)
    assert_exact(collection, orders, set())


def test_couchbase_outage_backs_off_without_crashing_and_loses_nothing(
    kafka: Any, gocaves: Any, topics: Topics, collection: Any, analytics: Any
) -> None:
    service = analytics(COUCHBASE_KV_TIMEOUT_SECONDS="0.5")
    first, second = make_orders(300, seed=1), make_orders(300, seed=2)
    produce_orders(kafka, topics.orders, first)
    wait_until(lambda: applied_everything(collection, kafka, topics), 60, "the first orders")
    gocaves.pause()
    try:
        produce_orders(kafka, topics.orders, second)
        errors = 'orderpipeline_errors_total{kind="couchbase",service="analytics"}'
        wait_until(lambda: service.metric(errors) > 0, 30, "the consumer to notice the outage")
        assert service.alive()
    finally:
        gocaves.resume()
    wait_until(lambda: applied_everything(collection, kafka, topics), 60, "recovery")
    assert service.alive()
    assert_exact(collection, first + second, set())


@pytest.mark.parametrize(("transactions", "dead_letters"), [("true", 2), ("false", 4)])
def test_a_replay_after_committed_dead_letters_sends_none_again_with_transactions(
    kafka: Any,
    topics: Topics,
    collection: Any,
    analytics: Any,
    transactions: str,
    dead_letters: int,
) -> None:
    orders = make_orders(300, seed=3)
    produce_orders(kafka, topics.orders, orders)
    produce(kafka, topics.orders, [(b"bad", b"not json"), (None, b'{"order_id": 1}')])
    first = analytics(KAFKA_TRANSACTIONS=transactions)
    wait_until(lambda: applied_everything(collection, kafka, topics), 60, "the first pass")
    assert first.stop() == 0
    assert len(read_committed(kafka, topics.dlq)) == 2

    # The crash window: the dead letters and offsets committed in Kafka, the aggregates never
    # written (removed here), so the restart reads every message again from Couchbase's view.
    for p in range(3):
        collection.remove(f"analytics::partition::{topics.orders}::{p}")
    second = analytics(KAFKA_TRANSACTIONS=transactions)
    wait_until(lambda: applied_everything(collection, kafka, topics), 60, "the replay")
    assert second.stop() == 0

    assert_exact(collection, orders, set())  # the claims keep the replay from counting twice
    # With transactions the committed offset says "dead letters done": none sent again. At
    # least once (KAFKA_TRANSACTIONS=false) they are sent again.
    assert len(read_committed(kafka, topics.dlq)) == dead_letters

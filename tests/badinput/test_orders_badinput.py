"""Generated bad messages on `orders` against the real fraud, payment and analytics processes:
each goes to the dead-letter topic with a reason from every consumer, the counters count it,
the services keep running, and the aggregates hold exactly the valid orders.

Duplicate order_ids with different content follow the rule of docs/reliability.md: the first
stored wins; analytics does not count the later one and dead-letters it with a reason; fraud and
payment are stateless per message and treat it as an order (their outputs are keyed by
order_id, so a reader keeps one per key)."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.chaos.harness import (
    Pipeline,
    Proc,
    collection_of,
    expected_aggregates,
    partition_docs,
    read_values,
    stored_aggregates,
    wait_processed,
)

from .strategies import invalid_message, valid_order

pytestmark = [pytest.mark.kafka, pytest.mark.couchbase]

CONSUMERS = ("fraud", "payment", "analytics")


class BadInputRun:
    """One pipeline shared by the generated examples, and what they should have caused."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.procs: dict[str, Proc] = pipeline.start_consumers()
        # Every consumer must have joined before the first message, or a slow joiner would
        # start at the end (it starts at the beginning: auto.offset.reset=earliest anyway).
        self.valid: dict[str, dict[str, Any]] = {}  # first content per order_id
        self.dead = Counter[str]()  # expected dead letters per service
        self.producer = Producer(
            # Not idempotent: librdkafka 2.x crashed the test process (SIGSEGV) while a fresh
            # broker answered "coordinator load in progress" to the idempotence PID request.
            {**pipeline.broker.client_config(), "linger.ms": 5}
        )

    def produce(self, items: list[tuple[bytes | None, bytes | None]]) -> None:
        for key, value in items:
            self.producer.produce(self.pipeline.names.orders, key=key, value=value)
            self.producer.poll(0)
        assert self.producer.flush(30) == 0


@pytest.fixture(scope="module")
def run(
    kafka: Any, gocaves: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BadInputRun]:
    couchbase = gocaves.create_cluster(bucket="order_analytics")
    pipeline = Pipeline(kafka, couchbase, tmp_path_factory.mktemp("badinput"))
    try:
        yield BadInputRun(pipeline)
    finally:
        pipeline.close()


def dead_letters(broker: Any, topic: str) -> list[tuple[str, str]]:
    """(service, reason) of every message on the dead-letter topic."""
    out: list[tuple[str, str]] = []
    # read_committed, as a downstream reader must; the end is the last stable offset and
    # the position (not a count) says when it is reached: transaction markers take offsets.
    consumer = Consumer(
        {**broker.client_config(), "group.id": "dlq-reader", "isolation.level": "read_committed"}
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p))[1] for p in meta}
        consumer.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end])
        tps = [TopicPartition(topic, p) for p, end in ends.items() if end]
        while any(tp.offset < ends[tp.partition] for tp in consumer.position(tps)):
            for msg in consumer.consume(1000, 2):
                if msg.error() is None:
                    # A consumed message's headers are a list of (str, bytes | None); the
                    # stub's HeadersType also covers the dict and str values produce() accepts.
                    raw = cast(list[tuple[str, bytes | None]], msg.headers() or [])
                    headers = {k: (v or b"").decode() for k, v in raw}
                    out.append(
                        (
                            headers.get("x-dead-letter-service", ""),
                            headers.get("x-dead-letter-reason", ""),
                        )
                    )
        return out
    finally:
        consumer.close()


batch = st.tuples(
    st.lists(invalid_message, min_size=20, max_size=40),
    st.lists(valid_order(), min_size=5, max_size=15),
    st.integers(0, 3),  # conflicting duplicates of earlier valid orders
    st.integers(0, 2**32),  # seed of the choices among earlier orders (their number varies)
)


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    database=None,
    # The examples share one pipeline and its counters: no shrinking (re-runs) after a failure.
    phases=[Phase.generate],
)
@given(example=batch)
def test_invalid_messages_are_dead_lettered_and_change_no_aggregate(
    run: BadInputRun,
    example: tuple[list[tuple[str, bytes]], list[dict[str, Any]], int, int],
) -> None:
    bad, valid, conflicts, seed = example
    rng = random.Random(seed)
    pipeline = run.pipeline
    items: list[tuple[bytes | None, bytes | None]] = [(b"bad", value) for _, value in bad] + [
        (None, None)
    ]  # a tombstone: no value at all
    earlier = list(run.valid.values())
    for order in valid:
        run.valid[order["order_id"]] = order
        items.append((order["order_id"].encode(), json.dumps(order).encode()))
    # The same order_id again with another amount: first stored wins.
    dupes = [
        dict(o, amount=o["amount"] + 1) for o in rng.sample(earlier, min(conflicts, len(earlier)))
    ]
    items += [(o["order_id"].encode(), json.dumps(o).encode()) for o in dupes]
    # Identical redelivery of a valid order: not counted, not a dead letter.
    if earlier:
        same = rng.choice(earlier)
        items.append((same["order_id"].encode(), json.dumps(same).encode()))
    run.produce(items)
    for service in CONSUMERS:
        run.dead[service] += len(bad) + 1
    run.dead["analytics"] += len(dupes)

    wait_processed(pipeline, 90)

    for name, proc in run.procs.items():
        assert proc.alive() and proc.starts == 1, f"{name} died: {proc.output()[-3000:]}"
        assert proc.metric("orderpipeline_dead_lettered_total") == run.dead[name], name
    letters = dead_letters(pipeline.broker, pipeline.names.dlq)
    assert Counter(service for service, _ in letters) == run.dead
    assert all(reason for _, reason in letters)
    conflicts_seen = sum("different content" in r for s, r in letters if s == "analytics")
    assert conflicts_seen == run.dead["analytics"] - run.dead["fraud"]

    with collection_of(pipeline.couchbase) as collection:
        stored = stored_aggregates(partition_docs(collection, pipeline.names))
        first = {o["order_id"]: collection.get(o["order_id"]).content_as[dict] for o in dupes}
    expected = expected_aggregates(list(run.valid.values()))
    for key in ("orders", "sales", "fraud_alerts", "by_country", "by_status", "per_minute"):
        assert stored[key] == expected[key], key
    paid = {
        json.loads(v)["order_id"] for _, v in read_values(pipeline.broker, pipeline.names.payments)
    }
    assert paid == set(run.valid)
    assert stored["payments"] == len(run.valid)
    for order in dupes:
        assert first[order["order_id"]]["amount"] == run.valid[order["order_id"]]["amount"]

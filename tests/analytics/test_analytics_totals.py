"""The running totals on the analytics topic (analytics/totals.py): one publisher, changed
totals only, and every member's offsets committed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from orderpipeline.analytics.totals import TotalsPublisher
from orderpipeline.core.aggregate import PartitionAggregate, Record, apply_batch
from orderpipeline.core.aggregate_store import PartitionId
from orderpipeline.core.order import Order

ORDERS0 = PartitionId("orders", 0)


def order(i: int, amount: float) -> Order:
    return Order(
        order_id=f"ord_{i}",
        customer_id=i,
        amount=amount,
        currency="USD",
        country="DE",
        status="CREATED",
        created_at=datetime.now(UTC),
    )


class FakeTxn:
    def __init__(self) -> None:
        self.commits: list[list[TopicPartition]] = []
        self.open = False

    def ensure_open(self) -> None:
        self.open = True

    def commit(self, offsets: list[TopicPartition]) -> None:
        self.commits.append(offsets)
        self.open = False

    def abort(self) -> None:
        self.open = False


class FakeProducer:
    def __init__(self) -> None:
        self.records: list[tuple[str, bytes, bytes]] = []

    def produce(self, topic: str, key: bytes, value: bytes) -> None:
        self.records.append((topic, key, value))


class FakeMetrics:
    def produced(self, _topic: str) -> None: ...

    def error(self, _kind: str) -> None: ...


class FakeLog:
    def debug(self, *_args: Any, **_kwargs: Any) -> None: ...

    def warning(self, *_args: Any, **_kwargs: Any) -> None: ...


class FakeSession:
    def __init__(self, transactional: bool) -> None:
        self.transactional = transactional
        self.txn = FakeTxn()
        self.producer = FakeProducer()
        self.log = FakeLog()
        self.ctx = type("Ctx", (), {"metrics": FakeMetrics()})()


class FakeStore:
    """What Couchbase holds: every member's partition aggregates."""

    def __init__(self) -> None:
        self.aggregates: dict[PartitionId, PartitionAggregate] = {}

    def write(self, pid: PartitionId, *amounts: float) -> None:
        start = self.aggregates.get(pid, PartitionAggregate())
        records = [
            Record(start.next_offset + i, order(1000 * pid.partition + start.next_offset + i, a))
            for i, a in enumerate(amounts)
        ]
        self.aggregates[pid] = apply_batch(start, records)

    def read_all(self) -> tuple[dict[PartitionId, PartitionAggregate], tuple[int, ...]]:
        return dict(self.aggregates), ()


class Member:
    """One analytics member's publisher, with a clock the test moves."""

    def __init__(self, store: FakeStore, owns_partition_0: bool, transactional: bool) -> None:
        self.now = 100.0
        self.owns = owns_partition_0
        self.session = FakeSession(transactional)
        self.publisher = TotalsPublisher(
            self.session,  # type: ignore[arg-type]
            store,  # type: ignore[arg-type]
            "order-analytics",
            1.0,
            publishes=lambda: self.owns,
            clock=lambda: self.now,
        )

    def tick(self, offsets: dict[PartitionId, int] | None = None) -> dict[PartitionId, int]:
        self.now += 1.0
        return self.publisher.maybe_publish(lambda: offsets or {})

    def published(self) -> list[dict[str, Any]]:
        return [json.loads(value) for _, _, value in self.session.producer.records]


@pytest.mark.parametrize("transactional", [True, False])
def test_only_the_owner_of_orders_partition_0_publishes_the_totals(transactional: bool) -> None:
    store = FakeStore()
    owner = Member(store, owns_partition_0=True, transactional=transactional)
    other = Member(store, owns_partition_0=False, transactional=transactional)
    store.write(PartitionId("orders", 1), 10.0, 20.0)
    other.publisher.changed()
    other.tick({PartitionId("orders", 1): 2})
    owner.tick()
    assert other.published() == []
    # The other member's writes reach the topic through the owner, which read them.
    assert [(t["order_count"], t["total_sales"]) for t in owner.published()] == [(2, 30.0)]


def test_a_member_that_does_not_publish_still_commits_the_offsets_it_wrote() -> None:
    store = FakeStore()
    other = Member(store, owns_partition_0=False, transactional=True)
    store.write(PartitionId("orders", 1), 10.0)
    other.publisher.changed()
    committed = other.tick({PartitionId("orders", 1): 1})
    assert committed == {PartitionId("orders", 1): 1}
    assert [
        [(tp.topic, tp.partition, tp.offset) for tp in c] for c in other.session.txn.commits
    ] == [[("orders", 1, 1)]]
    # Nothing new written: no empty transaction every interval.
    assert other.tick({PartitionId("orders", 1): 1}) == {}
    assert len(other.session.txn.commits) == 1


@pytest.mark.parametrize("transactional", [True, False])
def test_unchanged_totals_are_not_published_again(transactional: bool) -> None:
    store = FakeStore()
    owner = Member(store, owns_partition_0=True, transactional=transactional)
    store.write(ORDERS0, 5.0)
    owner.publisher.changed()
    owner.tick()
    owner.publisher.changed()  # a write that left the totals as they were (a redelivery)
    owner.tick()
    owner.tick()
    store.write(ORDERS0, 7.0)
    owner.tick()
    assert [t["order_count"] for t in owner.published()] == [1, 2]


def test_nothing_is_published_before_the_interval_has_passed() -> None:
    store = FakeStore()
    owner = Member(store, owns_partition_0=True, transactional=False)
    store.write(ORDERS0, 5.0)
    owner.tick()
    store.write(ORDERS0, 6.0)
    owner.now += 0.5  # half an interval after the last publication
    assert owner.publisher.maybe_publish(dict) == {}
    assert [t["order_count"] for t in owner.published()] == [1]

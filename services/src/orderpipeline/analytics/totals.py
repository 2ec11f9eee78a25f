"""The running totals analytics publishes to the analytics topic, at most once a
`ANALYTICS_PUBLISH_INTERVAL_SECONDS`.

One member of the group publishes: the one that owns partition 0 of the orders topic. Each
member used to publish after its own writes, so with several replicas two of them read the
same totals from Couchbase and wrote the same record twice (bench-chaos, 1 -> 3 -> 1: 4 of 75
records were copies). The publisher reads every partition's aggregate from Couchbase (whoever
owns it) each interval and publishes only totals that differ from the last it published, so
the other members' writes reach the topic too, and a missed publication loses nothing: the
next one carries the same totals.

With transactions the message is committed together with the offsets of the aggregates this
process has written; a member that does not publish commits those offsets alone, so every
member's committed offset keeps up while no dead letter needs a commit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import TopicPartition

from orderpipeline.core.aggregate import PartitionAggregate, merge
from orderpipeline.core.aggregate_store import AnalyticsStore, PartitionId, StoreUnavailable
from orderpipeline.core.session import KafkaSession
from orderpipeline.core.transactions import TransactionAborted

TOTALS_KEY = b"totals"
# The member that owns this partition of the orders topic publishes the totals.
TOTALS_PARTITION = 0


def totals_of(total: PartitionAggregate) -> dict[str, Any]:
    """The running totals (the original's two fields first), without their time."""
    return {
        "total_sales": round(float(total.sales), 2),
        "order_count": total.orders,
        "fraud_alerts": total.fraud_alerts,
        "payments": total.payments,
    }


def record(totals: dict[str, Any]) -> bytes:
    """The record published to the analytics topic: the totals and when they were read."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({**totals, "updated_at": now}).encode()


class TotalsPublisher:
    """Publishes changed totals when this member owns the publishing partition (`publishes()`),
    and commits the offsets of what this member wrote (`changed()`), once an interval."""

    def __init__(
        self,
        session: KafkaSession,
        store: AnalyticsStore,
        topic: str,
        interval_s: float,
        publishes: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.store = store
        self.topic = topic
        self.interval_s = interval_s
        self.publishes = publishes
        self._clock = clock
        self._dirty = False
        self._last = 0.0
        self._published: dict[str, Any] | None = None

    def changed(self) -> None:
        """This member wrote an aggregate since its last commit."""
        self._dirty = True

    def maybe_publish(
        self, offsets: Callable[[], Mapping[PartitionId, int]]
    ) -> dict[PartitionId, int]:
        """Publish and commit if due. `offsets()` are the offsets to commit (transactions only);
        returns those it committed (empty when none)."""
        now = self._clock()
        if now - self._last < self.interval_s:
            return {}
        owner = self.publishes()
        if not owner and not self._dirty:
            return {}
        totals = self._new_totals() if owner else None
        self._last = now
        if totals is None and not (self._dirty and self.session.transactional):
            return {}
        value = None if totals is None else record(totals)
        if self.session.transactional:
            committed = self._in_transaction(value, dict(offsets()))
            if committed is not None:
                self._dirty = False
                if totals is not None:
                    self._published = totals
            return committed or {}
        if value is not None:
            try:
                self.session.producer.produce(self.topic, key=TOTALS_KEY, value=value)
            except BufferError:
                return {}  # published at the next interval: the totals still differ
            self.session.ctx.metrics.produced(self.topic)
            self._published = totals
        self._dirty = False
        return {}

    def _new_totals(self) -> dict[str, Any] | None:
        """The totals as stored now, or None when they are what was published last (or
        Couchbase does not answer: the next interval tries again)."""
        try:
            aggregates, _ = self.store.read_all()
        except StoreUnavailable as exc:
            self.session.log.debug("running totals not published", error=str(exc))
            return None
        totals = totals_of(merge(aggregates.values()))
        return None if totals == self._published else totals

    def _in_transaction(
        self, value: bytes | None, offsets: dict[PartitionId, int]
    ) -> dict[PartitionId, int] | None:
        """The totals (when there are new ones) and `offsets`, in one transaction; the offsets
        committed, or None when the transaction did not commit."""
        txn = self.session.txn
        try:
            txn.ensure_open()
            if value is not None:
                self.session.producer.produce(self.topic, key=TOTALS_KEY, value=value)
            txn.commit([TopicPartition(p.topic, p.partition, o) for p, o in offsets.items()])
        except BufferError:
            txn.abort()
            return None
        except TransactionAborted as exc:
            # Nothing is lost: the totals are published again from Couchbase next time.
            self.session.log.warning("transaction aborted, totals not published", error=str(exc))
            self.session.ctx.metrics.error("transaction_aborted")
            txn.abort()
            return None
        if value is not None:
            self.session.ctx.metrics.produced(self.topic)
        return offsets

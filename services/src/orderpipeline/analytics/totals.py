"""The running totals analytics publishes to the analytics topic, at most once a
`ANALYTICS_PUBLISH_INTERVAL_SECONDS` and only after an aggregate changed.

They are read back from Couchbase (every partition's aggregate, whoever owns it), so a
missed publication loses nothing: the next one carries the same totals. With transactions the
message is committed together with the offsets of the aggregates this process has written,
so the committed offset keeps up while no dead letter needs a commit.
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


def totals_message(total: PartitionAggregate) -> dict[str, Any]:
    """The running totals published to the analytics topic (the original's two fields first)."""
    return {
        "total_sales": round(float(total.sales), 2),
        "order_count": total.orders,
        "fraud_alerts": total.fraud_alerts,
        "payments": total.payments,
        "updated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


class TotalsPublisher:
    """Publishes the totals when they may have changed (`changed()`) and the interval passed."""

    def __init__(
        self,
        session: KafkaSession,
        store: AnalyticsStore,
        topic: str,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.session = session
        self.store = store
        self.topic = topic
        self.interval_s = interval_s
        self._clock = clock
        self._dirty = False
        self._last = 0.0

    def changed(self) -> None:
        """An aggregate was written since the last publication."""
        self._dirty = True

    def maybe_publish(
        self, offsets: Callable[[], Mapping[PartitionId, int]]
    ) -> dict[PartitionId, int]:
        """Publish if due. `offsets()` are the offsets to commit with the totals (transactions
        only); returns those it committed (empty when none)."""
        now = self._clock()
        if not self._dirty or now - self._last < self.interval_s:
            return {}
        try:
            aggregates, _ = self.store.read_all()
        except StoreUnavailable as exc:
            self.session.log.debug("running totals not published", error=str(exc))
            return {}
        self._last = now
        self._dirty = False
        value = json.dumps(totals_message(merge(aggregates.values()))).encode()
        if self.session.transactional:
            return self._in_transaction(value, dict(offsets()))
        try:
            self.session.producer.produce(self.topic, key=TOTALS_KEY, value=value)
            self.session.ctx.metrics.produced(self.topic)
        except BufferError:
            self._dirty = True
        return {}

    def _in_transaction(
        self, value: bytes, offsets: dict[PartitionId, int]
    ) -> dict[PartitionId, int]:
        """The totals and `offsets`, in one transaction."""
        txn = self.session.txn
        try:
            txn.ensure_open()
            self.session.producer.produce(self.topic, key=TOTALS_KEY, value=value)
            txn.commit([TopicPartition(p.topic, p.partition, o) for p, o in offsets.items()])
        except BufferError:
            txn.abort()
            self._dirty = True
            return {}
        except TransactionAborted as exc:
            # Nothing is lost: the totals are published again from Couchbase next time.
            self.session.log.warning("transaction aborted, totals not published", error=str(exc))
            self.session.ctx.metrics.error("transaction_aborted")
            txn.abort()
            self._dirty = True
            return {}
        self.session.ctx.metrics.produced(self.topic)
        return offsets

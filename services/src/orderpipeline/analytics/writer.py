"""The Couchbase side of a batch, on a thread of its own: claim its documents, decide what
each partition counts (plan.py), and write the partition aggregates.

One thread, one batch at a time, submitted by the consumer loop only once the previous
batch's outcome is handled: so each aggregate is applied on top of the one written before
it, with that write's CAS. What the thread buys is overlap: while it waits for Couchbase (the
SDK releases the GIL during I/O), the loop consumes and parses the next batch.

Nothing here talks to Kafka: a batch that has dead letters to send comes back unsaved, and
the loop sends them (and commits them with the batch's offsets) before saving it.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from prometheus_client import Counter

from orderpipeline.analytics.plan import (
    DeadLetter,
    Plans,
    SummedAhead,
    conflicting,
    invalid_of,
    not_sent_yet,
    resolve,
)
from orderpipeline.core.aggregate import PartitionAggregate, Record, apply_batch, combine
from orderpipeline.core.aggregate_store import (
    AggregateConflict,
    AnalyticsStore,
    PartitionId,
    StoreUnavailable,
)
from orderpipeline.core.fraud_rule import FraudRule
from orderpipeline.core.logging import get_logger

DUPLICATES = Counter(
    "orderpipeline_analytics_duplicates",
    "Orders or payments not counted because another message already stored the same id",
)
CONFLICTS = Counter(
    "orderpipeline_analytics_conflicts",
    "Partition aggregate writes refused by CAS (another owner wrote first); reloaded",
)


@dataclass(frozen=True)
class Owned:
    """A partition this process owns, with its aggregate as stored and the document's CAS."""

    aggregate: PartitionAggregate
    cas: int | None


@dataclass
class Saved:
    """What a save did, per partition: written (the new state), refused by CAS (another
    owner wrote first: reload it), or not answered (with the error)."""

    written: dict[PartitionId, Owned] = field(default_factory=dict)
    conflicts: list[PartitionId] = field(default_factory=list)
    failed: list[PartitionId] = field(default_factory=list)
    error: StoreUnavailable | None = None


@dataclass
class Written:
    """A claimed batch: its records (and sums, when every claim was granted), and either its
    save or the dead letters to send first."""

    records: dict[PartitionId, list[Record]]
    deltas: dict[PartitionId, PartitionAggregate] | None
    dead: list[DeadLetter]
    saved: Saved | None


class BatchWriter:
    """Claims and saves batches on one background thread; see the module docstring."""

    def __init__(self, store: AnalyticsStore, rule: FraudRule, service: str) -> None:
        self.store = store
        self.rule = rule
        self.log = get_logger(service)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="couchbase-writer")

    def submit(
        self,
        plans: Plans,
        ahead: SummedAhead,
        ends: Mapping[PartitionId, int],
        owned: Mapping[PartitionId, Owned],
        committed: Mapping[PartitionId, int],
    ) -> Future[Written]:
        """Claim and (without dead letters to send first) save `plans` in the background,
        on top of `owned`. Raises StoreUnavailable from `result()` when the claim failed."""
        return self._pool.submit(self.write, plans, ahead, dict(ends), dict(owned), dict(committed))

    def write(
        self,
        plans: Plans,
        ahead: SummedAhead,
        ends: Mapping[PartitionId, int],
        owned: Mapping[PartitionId, Owned],
        committed: Mapping[PartitionId, int],
    ) -> Written:
        claims = ahead.claims
        owned_keys = self.store.claim(claims)
        if owned_keys.issuperset(claims):
            resolved, deltas = ahead.resolved, ahead.deltas
        else:
            resolved, deltas = resolve(plans, claims, owned_keys, self.rule, ends), None
        DUPLICATES.inc(resolved.duplicates)
        conflicts: list[DeadLetter] = []
        if resolved.duplicate_orders:
            ids = {order.order_id for _, order in resolved.duplicate_orders}
            conflicts = conflicting(resolved.duplicate_orders, self.store.documents(ids))
        dead = not_sent_yet(invalid_of(plans) + conflicts, committed)
        if dead:
            return Written(resolved.records, deltas, dead, None)
        return Written(resolved.records, deltas, [], self.save(resolved.records, deltas, owned))

    def save(
        self,
        records: Mapping[PartitionId, list[Record]],
        deltas: Mapping[PartitionId, PartitionAggregate] | None,
        owned: Mapping[PartitionId, Owned],
    ) -> Saved:
        """Add each partition's batch to its aggregate (its sums, or else its records) and
        write it, CAS-guarded."""
        saved = Saved()
        for pid, recs in records.items():
            state = owned.get(pid)
            if state is None:  # revoked before the batch was submitted
                continue
            if deltas is not None:
                aggregate = combine(state.aggregate, deltas[pid])
            else:
                aggregate = apply_batch(state.aggregate, recs)
            try:
                cas = self.store.save(pid, aggregate, state.cas)
            except AggregateConflict:
                CONFLICTS.inc()
                self.log.warning(
                    "partition aggregate written by another owner, reloading",
                    topic=pid.topic,
                    partition=pid.partition,
                )
                saved.conflicts.append(pid)
                continue
            except StoreUnavailable as exc:
                saved.failed.append(pid)
                saved.error = exc
                continue
            saved.written[pid] = Owned(aggregate, cas)
        return saved

    def close(self) -> None:
        self._pool.shutdown(wait=True)

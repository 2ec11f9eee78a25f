"""Which partitions this process owns and where each one resumes: Couchbase decides, not the
group's committed offset.

On assignment a partition is paused until its aggregate is loaded (`load_pending`), then it
seeks to the aggregate's `next_offset` and resumes. A partition whose aggregate another
owner wrote (CAS conflict), or that could not seek, is reloaded the same way. These are the
session's Rebalance hooks for analytics. Every pause and resume goes through the session, so
its consume-stall watch (core/stall.py) knows the messages of a paused partition wait on
purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from confluent_kafka import KafkaException, Message, TopicPartition
from prometheus_client import Counter

from orderpipeline.analytics.writer import Owned
from orderpipeline.core.aggregate_store import AnalyticsStore, PartitionId, StoreUnavailable
from orderpipeline.core.session import KafkaSession

SKIPPED = Counter(
    "orderpipeline_analytics_redelivered",
    "Messages skipped because their partition aggregate already contains them",
)


def _tps(pids: Iterable[PartitionId]) -> list[TopicPartition]:
    return [TopicPartition(p.topic, p.partition) for p in pids]


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]


class Partitions:
    """The owned partitions (aggregate and CAS as stored), those still loading, and per
    partition the group's committed offset (with transactions: dead letters done below it)."""

    def __init__(
        self,
        session: KafkaSession,
        store: AnalyticsStore,
        topics: tuple[str, ...],
        before_handover: Callable[[], None],
    ) -> None:
        self.session = session
        self.store = store
        self.topics = topics
        self.log = session.log
        # Called before partitions are given up: the batch being written finishes first.
        self._before_handover = before_handover
        self.owned: dict[PartitionId, Owned] = {}
        self.pending: set[PartitionId] = set()
        self.committed: dict[PartitionId, int] = {}
        self.paused_all = False

    # --- rebalances (the session's Rebalance hooks) --------------------------------------------

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        # Couchbase decides where each partition resumes: hold it until its aggregate is loaded.
        self.session.consumer.assign(partitions)
        self.session.pause(partitions)
        self.pending.update(PartitionId(tp.topic, tp.partition) for tp in partitions)
        self.log.info("partitions assigned", partitions=_names(partitions))

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        # Every batch handed to the writer is written (or refused) before we let go.
        self._before_handover()
        for tp in partitions:
            pid = PartitionId(tp.topic, tp.partition)
            self.owned.pop(pid, None)
            self.pending.discard(pid)
            self.committed.pop(pid, None)
        self.log.info("partitions revoked", partitions=_names(partitions))

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        # Nothing uncommitted is held for Kafka: a lost partition is given up like a revoked one
        # (its aggregate's CAS keeps a late write of ours from overwriting the new owner's).
        self.on_revoke(partitions)

    # --- loading -------------------------------------------------------------------------------

    def load_pending(self) -> None:
        """Load the pending partitions' aggregates, seek, resume. Raises StoreUnavailable."""
        pids = sorted(self.pending)
        loaded = self.store.load(pids)
        self.store.write_manifest(self._partition_counts())
        self.committed.update(self._committed_offsets(pids))
        for pid, stored in loaded.items():
            # The rebalance callback can run while we load (seen after a broker restart): a
            # partition revoked meanwhile is no longer ours to resume.
            if pid in self.pending:
                self.owned[pid] = Owned(stored.aggregate, stored.cas)
                self.pending.discard(pid)
        self.seek(pids)
        pids = [p for p in pids if p in self.owned]
        self.session.resume(_tps(pids))
        self.log.info(
            "partitions resumed from Couchbase",
            positions={
                f"{p.topic}[{p.partition}]": self.owned[p].aggregate.next_offset for p in pids
            },
        )

    def reload(self, pids: Iterable[PartitionId]) -> None:
        """Forget what we hold of `pids` and load them from Couchbase again (paused until then)."""
        pids = list(pids)
        for pid in pids:
            self.owned.pop(pid, None)
        self.pending.update(pids)
        if pids:
            self.session.pause(_tps(pids))

    def _committed_offsets(self, pids: list[PartitionId]) -> dict[PartitionId, int]:
        if not self.session.transactional:
            return {}
        try:
            found = self.session.consumer.committed(_tps(pids), timeout=10.0)
        except KafkaException as exc:
            raise StoreUnavailable(f"no committed offsets: {exc}") from exc
        return {PartitionId(tp.topic, tp.partition): max(0, tp.offset) for tp in found}

    def _partition_counts(self) -> dict[str, int]:
        try:
            metadata = self.session.consumer.list_topics(timeout=5.0)
        except KafkaException as exc:
            raise StoreUnavailable(f"no topic metadata: {exc}") from exc
        return {
            topic: len(metadata.topics[topic].partitions)
            for topic in self.topics
            if topic in metadata.topics and metadata.topics[topic].error is None
        }

    # --- positions -----------------------------------------------------------------------------

    def fresh(self, messages: list[Message]) -> dict[PartitionId, list[Message]]:
        """The messages to apply, by partition: of owned partitions, at or above the stored
        `next_offset` (below it: already counted, a redelivery)."""
        work: dict[PartitionId, list[Message]] = {}
        owned = self.owned
        for msg in messages:
            err = msg.error()
            if err is not None:
                self.session.consume_error(err)
                continue
            pid = PartitionId(msg.topic() or "", msg.partition() or 0)
            state = owned.get(pid)
            # A partition still loading is re-read from its stored offset once loaded.
            if state is None:
                continue
            if (msg.offset() or 0) < state.aggregate.next_offset:
                SKIPPED.inc()
                continue
            work.setdefault(pid, []).append(msg)
        return work

    def ends(
        self, pids: Iterable[PartitionId], last: dict[PartitionId, int]
    ) -> dict[PartitionId, int]:
        """Per partition, the consumer's position now: the next offset to read, past any
        transaction marker that followed `last` (the batch's last offset + 1)."""
        ends = dict(last)
        for tp in self.session.consumer.position(_tps(pids)):
            pid = PartitionId(tp.topic, tp.partition)
            if tp.offset > ends.get(pid, tp.offset):
                ends[pid] = tp.offset
        return ends

    def seek(self, pids: Iterable[PartitionId]) -> None:
        """Read `pids` again from their stored `next_offset` (what was consumed past it and not
        written is forgotten)."""
        consumer = self.session.consumer
        for pid in pids:
            state = self.owned.get(pid)
            if state is None:
                continue
            try:
                consumer.seek(TopicPartition(pid.topic, pid.partition, state.aggregate.next_offset))
            except KafkaException as exc:
                # Revoked since, or not ready after a broker restart: crashing here turned a
                # broker restart into a crash. Forget the partition; if it is still ours,
                # load it from Couchbase again on the next step.
                self.owned.pop(pid, None)
                if pid in self._assigned():
                    self.reload([pid])
                self.log.warning(
                    "could not seek, partition reloaded if still assigned",
                    topic=pid.topic,
                    partition=pid.partition,
                    error=str(exc),
                )

    def _assigned(self) -> set[PartitionId]:
        return {PartitionId(tp.topic, tp.partition) for tp in self.session.consumer.assignment()}

    def pause_all(self) -> None:
        assignment = self.session.consumer.assignment()
        if assignment:
            self.session.pause(assignment)
        self.paused_all = True

    def resume_owned(self) -> None:
        # Pending partitions stay paused until their aggregate is loaded.
        self.session.resume(_tps(self.owned))
        self.paused_all = False

    def offsets_to_commit(self) -> dict[PartitionId, int]:
        """Every owned partition's stored position, never below what the group committed."""
        return {
            pid: max(state.aggregate.next_offset, self.committed.get(pid, 0))
            for pid, state in self.owned.items()
        }

"""The analytics consumer loop: orders and payments in, Couchbase documents out, exactly once.

Per batch and per partition it owns:
1. skip messages below the partition's stored `next_offset` (already applied);
2. claim each order document (`insert` with its `_source`, see core/aggregate_store.py)
   and dead-letter invalid messages (delivered before going on);
3. apply the batch to the partition aggregate in memory (core/aggregate.py);
4. write the aggregate with its new `next_offset` in one CAS-guarded replace;
5. store the offsets for librdkafka's auto-commit.
A crash anywhere repeats at most steps 1-4 for messages whose aggregate was not written,
and step 1 or the claim makes the repetition count nothing twice. Couchbase, not the
committed Kafka offset, decides where a partition resumes: on assignment the partition is
paused until its aggregate is loaded, then it seeks to `next_offset`.

When Couchbase does not answer, the batch is rewound (seek), every partition paused and the
loop backs off exponentially while it keeps polling (so the group membership stays alive).

Kafka outputs (dead letters, running totals) with `KAFKA_TRANSACTIONS` (default): a batch with
dead letters writes them in a Kafka transaction that also commits the batch's offsets, before
its aggregate is written; on a replay (the aggregate write never happened) a message below the
group's committed offset is not dead-lettered again, because its dead letter was committed
with that offset. Totals are published in a transaction that commits the offsets of the
aggregates written so far. So the committed offset is exactly "dead letters done", Couchbase's
`next_offset` "counted", and neither output appears twice for a read_committed reader.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from prometheus_client import Counter

from orderpipeline.analytics.settings import AnalyticsSettings
from orderpipeline.core.aggregate import (
    JsonDict,
    PartitionAggregate,
    Record,
    apply_batch,
    merge,
)
from orderpipeline.core.aggregate_store import (
    PAYMENT_PREFIX,
    SOURCE_FIELD,
    AggregateConflict,
    AnalyticsStore,
    PartitionId,
    StoreUnavailable,
    source_of,
)
from orderpipeline.core.deadletter import DeadLetters
from orderpipeline.core.exit_codes import EXIT_FAILURE
from orderpipeline.core.fraud_rule import REASON, FraudRule, is_suspicious
from orderpipeline.core.kafka import (
    DeliveryFailed,
    ErrorWatcher,
    close_clients,
    consumer_config,
    producer_config,
    transactional_config,
)
from orderpipeline.core.logging import get_logger
from orderpipeline.core.order import InvalidMessage, Order, parse_order
from orderpipeline.core.payment import parse_payment
from orderpipeline.core.runner import ServiceContext
from orderpipeline.core.transactions import (
    ProducerRenewal,
    Transaction,
    TransactionAborted,
    TransactionFatal,
)

SKIPPED = Counter(
    "orderpipeline_analytics_redelivered",
    "Messages skipped because their partition aggregate already contains them",
)
DUPLICATES = Counter(
    "orderpipeline_analytics_duplicates",
    "Orders or payments not counted because another message already stored the same id",
)
CONFLICTS = Counter(
    "orderpipeline_analytics_conflicts",
    "Partition aggregate writes refused by CAS (another owner wrote first); reloaded",
)
BACKOFF_MAX_S = 15.0
CONFLICT_REASON = "duplicate order_id with different content (first stored wins)"


@dataclass
class Owned:
    """A partition this process owns, with its aggregate as stored and the document's CAS."""

    aggregate: PartitionAggregate
    cas: int | None


@dataclass(frozen=True)
class Planned:
    """A fresh message: which document it claims (if any) and what it counts if it owns it."""

    offset: int
    key: str | None = None
    order: Order | None = None
    payment: bool = False


class Backoff:
    """Exponential back-off with jitter, reset by the first success."""

    def __init__(self) -> None:
        self.failures = 0
        self.until = 0.0

    def fail(self) -> float:
        delay: float = min(BACKOFF_MAX_S, 0.25 * 2.0**self.failures) * random.uniform(0.8, 1.2)
        self.failures += 1
        self.until = time.monotonic() + delay
        return delay

    def succeed(self) -> None:
        self.failures = 0
        self.until = 0.0

    @property
    def waiting(self) -> bool:
        return time.monotonic() < self.until


class AnalyticsConsumer:
    """Consumes orders and payments until stopped; see the module docstring."""

    def __init__(self, settings: AnalyticsSettings, ctx: ServiceContext, store: AnalyticsStore):
        self.settings = settings
        self.ctx = ctx
        self.store = store
        self.rule: FraudRule = settings.fraud_rule
        self.log = get_logger(ctx.name)
        self.watcher = ErrorWatcher(ctx.name)
        self.transactional = settings.transactions
        self.producer = self._new_producer()
        self.consumer = Consumer(
            consumer_config(
                settings,
                settings.group_id,
                f"{ctx.name}-consumer",
                error_cb=self.watcher,
                stats_cb=ctx.metrics.record_librdkafka_stats,
                **{
                    "session.timeout.ms": settings.session_timeout_ms,
                    "heartbeat.interval.ms": max(1000, settings.session_timeout_ms // 5),
                    # librdkafka prefetches up to 64 MB by default; a few batches ahead is
                    # plenty when Couchbase, not Kafka, sets the pace (keeps RSS < 150 MB).
                    "queued.max.messages.kbytes": 16384,
                },
            )
        )
        self.dead_letters = DeadLetters(
            self.producer, settings.dead_letter_topic, ctx.name, ctx.metrics
        )
        self.topics = (settings.orders_topic, settings.payments_topic)
        self.owned: dict[PartitionId, Owned] = {}
        self.pending: set[PartitionId] = set()
        self.backoff = Backoff()
        self.txn = self._transaction()
        self._renew = ProducerRenewal(ctx.name, ctx.metrics, self._new_producer)
        # Per partition: the group's committed offset. Messages below it had their dead
        # letters committed (transactional mode), so a replay must not send them again.
        self.committed: dict[PartitionId, int] = {}
        self._paused_all = False
        self._dirty = False
        self._last_publish = 0.0

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> int:
        try:
            if self.transactional:
                self.txn.init()
            return self._run()
        except TransactionFatal as exc:
            # Fenced or a fatal producer error: exit; the restart brings a fresh producer and
            # resumes from Couchbase and the committed offsets.
            self.log.error("transactional producer unusable, exiting", error=str(exc))
            self.ctx.metrics.error("transaction_fatal")
            return EXIT_FAILURE

    def _run(self) -> int:
        self.consumer.subscribe(
            list(self.topics),
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        self.log.info("consuming", topics=list(self.topics), group=self.settings.group_id)
        try:
            while not self.ctx.stop.is_set():
                try:
                    self.step()
                except TransactionFatal as exc:
                    self._renew_producer(str(exc))
            return 0
        finally:
            self.close()

    def _transaction(self) -> Transaction:
        return Transaction(
            self.producer,
            self.consumer,
            self.ctx.name,
            self.ctx.stop.is_set,
            self._before_retry,
            self.settings.transaction_timeout_ms / 1000.0,
        )

    def _before_retry(self) -> None:
        # Waiting for the broker is not a stuck loop (and the wait is bounded inside a
        # transaction), but wrong credentials surface only through error_cb.
        self.ctx.health.beat()
        self.watcher.raise_if_fatal()

    def _new_producer(self) -> Producer:
        settings = self.settings
        extra = transactional_config(settings, settings.group_id) if self.transactional else {}
        return Producer(
            producer_config(settings, f"{self.ctx.name}-producer", error_cb=self.watcher, **extra)
        )

    def _renew_producer(self, reason: str) -> None:
        """A fresh producer (core/transactions.py, ProducerRenewal), and every partition
        reloaded from Couchbase and the committed offsets: the outcome of the last commit is
        unknown."""
        self.producer = self._renew(self.producer, reason)
        self.dead_letters = DeadLetters(
            self.producer, self.settings.dead_letter_topic, self.ctx.name, self.ctx.metrics
        )
        self.txn = self._transaction()
        self.txn.init()
        pids = list(self.owned)
        self.owned.clear()
        self.pending.update(pids)
        if pids:
            self.consumer.pause([TopicPartition(p.topic, p.partition) for p in pids])

    def step(self) -> None:
        """One iteration: load newly assigned partitions, consume a batch, apply it."""
        self.ctx.health.beat()
        self.watcher.raise_if_fatal()
        if self.backoff.waiting:
            self.consumer.consume(1, min(0.1, max(0.0, self.backoff.until - time.monotonic())))
            return
        if self._paused_all:
            self._resume_owned()
        if self.pending:
            self._load_pending()
            if self.backoff.waiting:
                return
        messages = self.consumer.consume(
            self.settings.batch_size, self.settings.batch_timeout_seconds
        )
        if messages:
            self._process(messages)
        self.producer.poll(0)
        self._maybe_publish()

    def close(self) -> None:
        close_clients(self.producer, self.consumer)

    # --- rebalances ----------------------------------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Couchbase decides where each partition resumes: hold it until its aggregate is loaded.
        consumer.assign(partitions)
        consumer.pause(partitions)
        self.pending.update(PartitionId(tp.topic, tp.partition) for tp in partitions)
        self.log.info("partitions assigned", partitions=_names(partitions))

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Every applied batch is already written; nothing to finish.
        for tp in partitions:
            pid = PartitionId(tp.topic, tp.partition)
            self.owned.pop(pid, None)
            self.pending.discard(pid)
            self.committed.pop(pid, None)
        self.log.info("partitions revoked", partitions=_names(partitions))

    def _load_pending(self) -> None:
        pids = sorted(self.pending)
        try:
            loaded = self.store.load(pids)
            self.store.write_manifest(self._partition_counts())
            committed = self._committed_offsets(pids)
        except StoreUnavailable as exc:
            self._unavailable(exc, [])
            return
        self.committed.update(committed)
        for pid, stored in loaded.items():
            # The rebalance callback can run while we load (seen after a broker restart): a
            # partition revoked meanwhile is no longer ours to resume.
            if pid in self.pending:
                self.owned[pid] = Owned(stored.aggregate, stored.cas)
                self.pending.discard(pid)
        self._seek(pids)
        pids = [p for p in pids if p in self.owned]
        self.consumer.resume([TopicPartition(p.topic, p.partition) for p in pids])
        self.log.info(
            "partitions resumed from Couchbase",
            positions={
                f"{p.topic}[{p.partition}]": self.owned[p].aggregate.next_offset for p in pids
            },
        )
        self._available()

    def _committed_offsets(self, pids: list[PartitionId]) -> dict[PartitionId, int]:
        if not self.transactional:
            return {}
        try:
            found = self.consumer.committed(
                [TopicPartition(p.topic, p.partition) for p in pids], timeout=10.0
            )
        except KafkaException as exc:
            raise StoreUnavailable(f"no committed offsets: {exc}") from exc
        return {PartitionId(tp.topic, tp.partition): max(0, tp.offset) for tp in found}

    def _partition_counts(self) -> dict[str, int]:
        try:
            metadata = self.consumer.list_topics(timeout=5.0)
        except KafkaException as exc:
            raise StoreUnavailable(f"no topic metadata: {exc}") from exc
        return {
            topic: len(metadata.topics[topic].partitions)
            for topic in self.topics
            if topic in metadata.topics and metadata.topics[topic].error is None
        }

    # --- one batch -----------------------------------------------------------------------------

    def _process(self, messages: list[Message]) -> None:
        started = time.monotonic()
        work: dict[PartitionId, list[Message]] = {}
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    self.ctx.metrics.error("consume")
                    self.watcher.check(err)
                continue
            pid = PartitionId(msg.topic() or "", msg.partition() or 0)
            owned = self.owned.get(pid)
            # A partition still loading is re-read from its stored offset once loaded.
            if owned is None:
                continue
            if (msg.offset() or 0) < owned.aggregate.next_offset:
                SKIPPED.inc()
                continue
            work.setdefault(pid, []).append(msg)
        if not work:
            return
        for pid, msgs in work.items():
            self.ctx.metrics.consumed(pid.topic, len(msgs))
        ends = self._batch_ends(work)
        try:
            records = self._claim(work)
            if self.txn.is_open:
                self._commit_dead_letters(ends)
        # A dead letter not delivered is handled like an unavailable store: rewind, retry later.
        except (StoreUnavailable, DeliveryFailed) as exc:
            if self.txn.is_open:
                self.txn.abort()
            self._unavailable(exc, list(work))
            return
        except TransactionAborted as exc:
            self._aborted(exc, list(work))
            return
        for pid, end in ends.items():
            # Past transaction markers after the last record, so a partition of a
            # transactional topic (payments) can be applied up to its end.
            if end - 1 > (work[pid][-1].offset() or 0):
                records[pid].append(Record(end - 1))
        self._save(records)
        self.ctx.metrics.processing_seconds.observe(time.monotonic() - started)

    def _plan(self, pid: PartitionId, msg: Message, claims: dict[str, JsonDict]) -> Planned:
        offset = msg.offset() or 0
        source = source_of(pid.topic, pid.partition, offset)
        max_bytes = self.settings.order_max_bytes
        if pid.topic == self.settings.orders_topic:
            order = parse_order(msg.value(), max_bytes)
            doc = order.model_dump(mode="json")
            key = order.order_id
            claims.setdefault(key, {**doc, SOURCE_FIELD: source})
            return Planned(offset, key, order=order)
        payment = parse_payment(msg.value(), max_bytes)
        key = PAYMENT_PREFIX + payment.order_id
        claims.setdefault(key, {**payment.document(), SOURCE_FIELD: source})
        return Planned(offset, key, payment=True)

    def _claim(self, work: dict[PartitionId, list[Message]]) -> dict[PartitionId, list[Record]]:
        """Dead-letter the invalid, claim the documents; the records each partition applies."""
        claims: dict[str, JsonDict] = {}
        plans: dict[PartitionId, list[Planned]] = {}
        dead: list[tuple[Message, str]] = []
        by_offset: dict[tuple[PartitionId, int], Message] = {}
        for pid, msgs in work.items():
            plan = plans[pid] = []
            for msg in msgs:
                by_offset[pid, msg.offset() or 0] = msg
                try:
                    plan.append(self._plan(pid, msg, claims))
                except InvalidMessage as exc:
                    dead.append((msg, exc.reason))
                    plan.append(Planned(msg.offset() or 0))
        self._send_dead_letters(dead)
        owned_keys = self.store.claim(claims)
        records: dict[PartitionId, list[Record]] = {}
        duplicates: list[tuple[Message, Order]] = []
        for pid, plan in plans.items():
            out = records[pid] = []
            for p in plan:
                mine = (
                    p.key is not None
                    and p.key in owned_keys
                    and claims[p.key][SOURCE_FIELD] == source_of(pid.topic, pid.partition, p.offset)
                )
                if p.key is not None and not mine:
                    DUPLICATES.inc()
                    if p.order is not None:
                        duplicates.append((by_offset[pid, p.offset], p.order))
                if not mine:
                    out.append(Record(p.offset))
                elif p.order is not None:
                    flagged = is_suspicious(p.order, self.rule)
                    out.append(Record(p.offset, p.order, REASON if flagged else None))
                else:
                    out.append(Record(p.offset, payment=True))
        self._send_dead_letters(self._conflicting(duplicates))
        return records

    def _conflicting(self, duplicates: list[tuple[Message, Order]]) -> list[tuple[Message, str]]:
        """Duplicates whose content differs from the order stored first under their order_id.

        First write wins; an identical duplicate (a redelivery, a producer retry) is just not
        counted, but a different order reusing the id is a producer bug worth a dead letter.
        """
        if not duplicates:
            return []
        stored = self.store.documents({order.order_id for _, order in duplicates})
        conflicts = []
        for msg, order in duplicates:
            first = dict(stored.get(order.order_id, {}))
            first.pop(SOURCE_FIELD, None)
            if first and first != order.model_dump(mode="json"):
                conflicts.append((msg, CONFLICT_REASON))
        return conflicts

    def _batch_ends(self, work: dict[PartitionId, list[Message]]) -> dict[PartitionId, int]:
        """Per partition, the consumer's position after this batch: the next offset to read,
        past any transaction marker that followed the batch's last record."""
        positions = self.consumer.position([TopicPartition(p.topic, p.partition) for p in work])
        ends = {pid: (msgs[-1].offset() or 0) + 1 for pid, msgs in work.items()}
        for tp in positions:
            pid = PartitionId(tp.topic, tp.partition)
            if tp.offset > ends.get(pid, tp.offset):
                ends[pid] = tp.offset
        return ends

    def _commit_dead_letters(self, ends: dict[PartitionId, int]) -> None:
        """Commit the open transaction (this batch's dead letters) with the batch's offsets."""
        offsets = {pid: max(end, self.committed.get(pid, 0)) for pid, end in ends.items()}
        self.txn.commit([TopicPartition(p.topic, p.partition, o) for p, o in offsets.items()])
        self.committed.update(offsets)

    def _aborted(self, exc: TransactionAborted, rewind: list[PartitionId]) -> None:
        """The transaction is lost: abort it and read the batch again from Couchbase's offset."""
        self.log.warning("transaction aborted, re-reading the batch", error=str(exc))
        self.ctx.metrics.error("transaction_aborted")
        self.txn.abort()
        self._seek(rewind)

    def _send_dead_letters(self, dead: list[tuple[Message, str]]) -> None:
        if self.transactional:
            # Already dead-lettered in a committed transaction (a replay after a crash).
            dead = [
                (msg, reason)
                for msg, reason in dead
                if (msg.offset() or 0)
                >= self.committed.get(PartitionId(msg.topic() or "", msg.partition() or 0), 0)
            ]
        if not dead:
            return
        if self.transactional:
            self.txn.ensure_open()
        failures: list[KafkaError] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(err)

        for msg, reason in dead:
            self.ctx.metrics.error("invalid_message")
            self.log.warning(
                "invalid message sent to the dead-letter topic",
                reason=reason,
                topic=msg.topic(),
                partition=msg.partition(),
                offset=msg.offset(),
            )
            while True:
                try:
                    self.dead_letters.send(msg, reason, delivered)
                    break
                except BufferError:
                    self.producer.poll(0.05)
        if self.transactional:
            return  # delivered by the transaction's commit, with the batch's offsets
        # The offsets of these messages move on with the aggregate: deliver first.
        if self.producer.flush(30) > 0 or failures:
            raise DeliveryFailed(failures[0].str() if failures else "dead letters not delivered")

    def _save(self, records: dict[PartitionId, list[Record]]) -> None:
        stored: list[TopicPartition] = []
        failed: list[PartitionId] = []
        error: Exception | None = None
        for pid, recs in records.items():
            owned = self.owned.get(pid)
            if owned is None:  # revoked while we worked (cannot happen between polls)
                continue
            aggregate = apply_batch(owned.aggregate, recs)
            try:
                cas = self.store.save(pid, aggregate, owned.cas)
            except AggregateConflict:
                CONFLICTS.inc()
                self.log.warning(
                    "partition aggregate written by another owner, reloading",
                    topic=pid.topic,
                    partition=pid.partition,
                )
                self.owned.pop(pid, None)
                self.pending.add(pid)
                self.consumer.pause([TopicPartition(pid.topic, pid.partition)])
                continue
            except StoreUnavailable as exc:
                failed.append(pid)
                error = exc
                continue
            self.owned[pid] = Owned(aggregate, cas)
            stored.append(TopicPartition(pid.topic, pid.partition, aggregate.next_offset))
            self._dirty = True
        if stored and not self.transactional:
            try:
                self.consumer.store_offsets(offsets=stored)
            except KafkaException as exc:
                # Revoked meanwhile: harmless, Couchbase holds the position.
                self.log.warning("could not store offsets", error=str(exc))
        if error is not None:
            self._unavailable(error, failed)
        else:
            self._available()

    # --- Couchbase outages ---------------------------------------------------------------------

    def _seek(self, pids: list[PartitionId]) -> None:
        for pid in pids:
            owned = self.owned.get(pid)
            if owned is None:
                continue
            try:
                self.consumer.seek(
                    TopicPartition(pid.topic, pid.partition, owned.aggregate.next_offset)
                )
            except KafkaException as exc:
                # Revoked since, or not ready after a broker restart: crashing here turned a
                # broker restart into a crash. Forget the partition; if it is still ours,
                # load it from Couchbase again on the next step.
                self.owned.pop(pid, None)
                if pid in self._assigned():
                    self.pending.add(pid)
                    self.consumer.pause([TopicPartition(pid.topic, pid.partition)])
                self.log.warning(
                    "could not seek, partition reloaded if still assigned",
                    topic=pid.topic,
                    partition=pid.partition,
                    error=str(exc),
                )

    def _assigned(self) -> set[PartitionId]:
        return {PartitionId(tp.topic, tp.partition) for tp in self.consumer.assignment()}

    def _unavailable(self, exc: Exception, rewind: list[PartitionId]) -> None:
        """Forget the consumed-but-unwritten messages (seek back) and pause everything."""
        self._seek(rewind)
        assignment = self.consumer.assignment()
        if assignment:
            self.consumer.pause(assignment)
        self._paused_all = True
        delay = self.backoff.fail()
        self.ctx.metrics.error("couchbase")
        self.ctx.health.set_ready(False, f"couchbase unavailable: {exc}")
        self.log.warning(
            "couchbase unavailable, backing off", error=str(exc), retry_in_s=round(delay, 2)
        )

    def _available(self) -> None:
        if self.backoff.failures:
            self.log.info("couchbase available again")
        self.backoff.succeed()
        self.ctx.health.set_ready(True)

    def _resume_owned(self) -> None:
        # Pending partitions stay paused until their aggregate is loaded.
        self.consumer.resume([TopicPartition(p.topic, p.partition) for p in self.owned])
        self._paused_all = False

    # --- running totals on the analytics topic -------------------------------------------------

    def _maybe_publish(self) -> None:
        now = time.monotonic()
        if not self._dirty or now - self._last_publish < self.settings.publish_interval_seconds:
            return
        try:
            aggregates, _ = self.store.read_all()
        except StoreUnavailable as exc:
            self.log.debug("running totals not published", error=str(exc))
            return
        self._last_publish = now
        self._dirty = False
        value = json.dumps(totals_message(merge(aggregates.values()))).encode()
        if self.transactional:
            self._publish_in_transaction(value)
            return
        try:
            self.producer.produce(self.settings.analytics_topic, key=b"totals", value=value)
            self.ctx.metrics.produced(self.settings.analytics_topic)
        except BufferError:
            self._dirty = True

    def _publish_in_transaction(self, value: bytes) -> None:
        """The totals and the offsets of every aggregate written so far, in one transaction."""
        offsets = {
            pid: max(owned.aggregate.next_offset, self.committed.get(pid, 0))
            for pid, owned in self.owned.items()
        }
        try:
            self.txn.ensure_open()
            self.producer.produce(self.settings.analytics_topic, key=b"totals", value=value)
            self.txn.commit([TopicPartition(p.topic, p.partition, o) for p, o in offsets.items()])
        except BufferError:
            self.txn.abort()
            self._dirty = True
            return
        except TransactionAborted as exc:
            # Nothing is lost: the totals are published again from Couchbase next time.
            self.log.warning("transaction aborted, totals not published", error=str(exc))
            self.ctx.metrics.error("transaction_aborted")
            self.txn.abort()
            self._dirty = True
            return
        self.committed.update(offsets)
        self.ctx.metrics.produced(self.settings.analytics_topic)


def totals_message(total: PartitionAggregate) -> dict[str, Any]:
    """The running totals published to the analytics topic (the original's two fields first)."""
    return {
        "total_sales": round(float(total.sales), 2),
        "order_count": total.orders,
        "fraud_alerts": total.fraud_alerts,
        "payments": total.payments,
        "updated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _names(partitions: list[TopicPartition]) -> list[str]:
    return [f"{tp.topic}[{tp.partition}]" for tp in partitions]

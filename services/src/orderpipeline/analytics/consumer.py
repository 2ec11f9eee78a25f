"""The analytics consumer loop: orders and payments in, Couchbase documents out, exactly once.

Per batch and per partition it owns:
1. skip messages below the partition's stored `next_offset` (already applied; partitions.py);
2. parse each message into the document it claims (plan.py);
3. claim each document (`insert` with its `_source`, see core/aggregate_store.py);
4. dead-letter invalid messages and conflicting duplicates (delivered, or committed in the
   batch's transaction, before going on);
5. apply the batch to the partition aggregate (core/aggregate.py) and write it with its new
   `next_offset` in one CAS-guarded replace;
6. store the offsets for librdkafka's auto-commit (without transactions).
A crash anywhere repeats at most steps 1-5 for messages whose aggregate was not written,
and step 1 or the claim makes the repetition count nothing twice. Couchbase, not the
committed Kafka offset, decides where a partition resumes (partitions.py).

Steps 3 and 5 run on the writer's thread (writer.py) while this loop consumes, parses and
sums the next batch (summed as if its claims will be granted, which they almost always are;
plan.py): Couchbase's round trips overlap Kafka, parsing and the aggregate math. The writer
takes one batch at a time, and the next is submitted only after this loop took the previous
one's outcome, so each aggregate is written on top of the one before, in offset order. If a
batch is not written (Couchbase unavailable, a CAS conflict), the batch parsed meanwhile is
dropped for those partitions and they are read again from their stored `next_offset`: nothing
past an unwritten batch is ever applied. A batch with dead letters to send comes back from
the writer unsaved; this loop sends them (step 4, Kafka stays on this thread), then saves it.

When Couchbase does not answer, the batch is rewound (seek), every partition paused and the
loop backs off (outage.py) while it keeps polling (so the group membership stays alive).

Every consume() is reported to the session's consume-stall watch (core/stall.py): messages
waiting on partitions that are not paused, and none consumed for long, fail /healthz so the
pod is restarted. The partitions paused for an outage, or until their aggregate is loaded,
do not count: the session is told of every pause (partitions.py).

Kafka outputs (dead letters, running totals) with `KAFKA_TRANSACTIONS` (default): a batch with
dead letters writes them in a Kafka transaction that also commits the batch's offsets, before
its aggregate is written; on a replay (the aggregate write never happened) a message below the
group's committed offset is not dead-lettered again, because its dead letter was committed
with that offset. Totals are published in a transaction that commits the offsets of the
aggregates written so far (totals.py). So the committed offset is exactly "dead letters done",
Couchbase's `next_offset` "counted", and neither output appears twice for a read_committed
reader.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, wait
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from orderpipeline.analytics.outage import Outage
from orderpipeline.analytics.partitions import Partitions
from orderpipeline.analytics.plan import DeadLetter, Plans, SummedAhead, plan_batch, sum_ahead
from orderpipeline.analytics.settings import AnalyticsSettings
from orderpipeline.analytics.totals import TOTALS_PARTITION, TotalsPublisher
from orderpipeline.analytics.writer import BatchWriter, Saved, Written
from orderpipeline.core.aggregate_store import AnalyticsStore, PartitionId, StoreUnavailable
from orderpipeline.core.exit_codes import EXIT_FAILURE, EXIT_OK
from orderpipeline.core.kafka import DeliveryFailed
from orderpipeline.core.logging import get_logger
from orderpipeline.core.runner import ServiceContext
from orderpipeline.core.session import KafkaSession
from orderpipeline.core.transactions import TransactionAborted, TransactionFatal


@dataclass
class InFlight:
    """The batch the writer is working on."""

    plans: Plans
    ends: dict[PartitionId, int]
    future: Future[Written]
    started: float


class AnalyticsConsumer:
    """Consumes orders and payments until stopped; see the module docstring."""

    def __init__(self, settings: AnalyticsSettings, ctx: ServiceContext, store: AnalyticsStore):
        self.settings = settings
        self.ctx = ctx
        self.log = get_logger(ctx.name)
        self.session = KafkaSession(
            settings,
            ctx,
            settings.group_id,
            # A crashed member is noticed within ANALYTICS_SESSION_TIMEOUT_MS: heartbeat
            # often enough for that short a session.
            consumer_overrides={
                "heartbeat.interval.ms": max(1000, settings.session_timeout_ms // 5)
            },
        )
        self.topics = (settings.orders_topic, settings.payments_topic)
        self.partitions = Partitions(self.session, store, self.topics, self._wait_in_flight)
        self.writer = BatchWriter(store, settings.fraud_rule, ctx.name)
        publishing = PartitionId(settings.orders_topic, TOTALS_PARTITION)
        self.totals = TotalsPublisher(
            self.session,
            store,
            settings.analytics_topic,
            settings.publish_interval_seconds,
            publishes=lambda: publishing in self.partitions.owned,
        )
        self.outage = Outage()
        self.in_flight: InFlight | None = None

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> int:
        try:
            if self.session.transactional:
                self.session.txn.init()
            return self._run()
        except TransactionFatal as exc:
            # Fenced or a fatal producer error: exit; the restart brings a fresh producer and
            # resumes from Couchbase and the committed offsets.
            self.log.error("transactional producer unusable, exiting", error=str(exc))
            self.ctx.metrics.error("transaction_fatal")
            return EXIT_FAILURE
        finally:
            self.close()

    def _run(self) -> int:
        self.session.subscribe(list(self.topics), self.partitions)
        self.log.info("consuming", topics=list(self.topics), group=self.settings.group_id)
        while not self.ctx.stop.is_set():
            try:
                self.step()
            except TransactionFatal as exc:
                self._renew_producer(str(exc))
        self._finish()
        return EXIT_OK

    def step(self) -> None:
        """One iteration: load newly assigned partitions, consume and parse a batch while the
        writer writes the previous one, then hand this one to the writer."""
        self.session.beat()
        consumer = self.session.consumer
        if self.outage.waiting:
            self.session.consumed(len(consumer.consume(1, min(0.1, self.outage.remaining()))))
            return
        partitions = self.partitions
        if partitions.paused_all:
            partitions.resume_owned()
        if partitions.pending:
            self._finish()
            self._load_pending()
            if self.outage.waiting:
                return
        messages = consumer.consume(self.settings.batch_size, self.settings.batch_timeout_seconds)
        self.session.consumed(len(messages))
        work = partitions.fresh(messages) if messages else {}
        ends = self._ends(work)
        plans = plan_batch(work, self.settings.orders_topic, self.settings.order_max_bytes)
        ahead = self._sum_ahead(plans, ends)
        rewound = self._finish()
        if plans:
            self._submit(plans, ahead, ends, rewound)
        self.session.producer.poll(0)
        self.partitions.committed.update(
            self.totals.maybe_publish(self.partitions.offsets_to_commit)
        )

    def _ends(self, work: dict[PartitionId, list[Message]]) -> dict[PartitionId, int]:
        for pid, msgs in work.items():
            self.ctx.metrics.consumed(pid.topic, len(msgs))
        if not work:
            return {}
        last = {pid: (msgs[-1].offset() or 0) + 1 for pid, msgs in work.items()}
        return self.partitions.ends(work, last)

    def _sum_ahead(self, plans: Plans, ends: dict[PartitionId, int]) -> SummedAhead:
        """The batch's sums, computed while the writer still writes the batch before."""
        owned = self.partitions.owned
        next_offsets = {pid: owned[pid].aggregate.next_offset for pid in plans}
        return sum_ahead(plans, self.settings.fraud_rule, ends, next_offsets)

    def _submit(
        self,
        plans: Plans,
        ahead: SummedAhead,
        ends: dict[PartitionId, int],
        rewound: set[PartitionId],
    ) -> None:
        """Hand `plans` to the writer, without the partitions that must be read again (the
        batch before was not written for them): those go back to their stored offset."""
        owned = self.partitions.owned
        if self.outage.waiting:
            rewound = set(plans)
        keep = {pid: plan for pid, plan in plans.items() if pid in owned and pid not in rewound}
        dropped = [pid for pid in plans if pid not in keep]
        if dropped:
            self.partitions.seek(dropped)
            if not keep:
                return
            ahead = self._sum_ahead(keep, ends)  # without the dropped partitions' claims
        future = self.writer.submit(
            keep, ahead, ends, {pid: owned[pid] for pid in keep}, self.partitions.committed
        )
        self.in_flight = InFlight(keep, ends, future, time.monotonic())

    def _wait_in_flight(self) -> None:
        """Let the writer finish its batch (its outcome is taken later by `_finish`)."""
        if self.in_flight is not None:
            wait([self.in_flight.future])

    def _finish(self) -> set[PartitionId]:
        """Take the outcome of the batch being written; returns the partitions that must be
        read again from their stored offset."""
        flight, self.in_flight = self.in_flight, None
        if flight is None:
            return set()
        pids = list(flight.plans)
        try:
            written = flight.future.result()
            saved = written.saved
            if saved is None:
                self._send_dead_letters(written.dead, flight.ends)
                saved = self.writer.save(written.records, written.deltas, self.partitions.owned)
        # A dead letter not delivered is handled like an unavailable store: rewind, retry later.
        except (StoreUnavailable, DeliveryFailed) as exc:
            if self.session.txn.is_open:
                self.session.txn.abort()
            self._unavailable(exc, pids)
            return set(pids)
        except TransactionAborted as exc:
            self._aborted(exc, pids)
            return set(pids)
        self._saved(saved)
        self.ctx.metrics.processing_seconds.observe(time.monotonic() - flight.started)
        return set(saved.failed) | set(saved.conflicts)

    def _saved(self, saved: Saved) -> None:
        partitions = self.partitions
        stored: list[TopicPartition] = []
        for pid, state in saved.written.items():
            if pid not in partitions.owned:  # revoked while it was written
                continue
            partitions.owned[pid] = state
            stored.append(TopicPartition(pid.topic, pid.partition, state.aggregate.next_offset))
        if stored:
            self.totals.changed()
        partitions.reload(pid for pid in saved.conflicts if pid in partitions.owned)
        if stored and not self.session.transactional:
            try:
                self.session.consumer.store_offsets(offsets=stored)
            except KafkaException as exc:
                # Revoked meanwhile: harmless, Couchbase holds the position.
                self.log.warning("could not store offsets", error=str(exc))
        if saved.error is not None:
            self._unavailable(saved.error, saved.failed)
        else:
            self._available()

    def close(self) -> None:
        self.writer.close()
        self.session.close()

    # --- dead letters --------------------------------------------------------------------------

    def _send_dead_letters(self, dead: list[DeadLetter], ends: dict[PartitionId, int]) -> None:
        """Deliver the batch's dead letters before its aggregate is written: with transactions
        committed together with the batch's offsets, without them flushed."""
        session = self.session
        owned = self.partitions.owned
        dead = [d for d in dead if PartitionId(d[0].topic() or "", d[0].partition() or 0) in owned]
        if session.transactional:
            session.txn.ensure_open()
        failures: list[KafkaError] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(err)

        for msg, reason in dead:
            session.produce(session.dead_letter(msg, reason, delivered))
        if session.transactional:
            committed = self.partitions.committed
            offsets = {p: max(e, committed.get(p, 0)) for p, e in ends.items() if p in owned}
            session.txn.commit(
                [TopicPartition(p.topic, p.partition, o) for p, o in offsets.items()]
            )
            committed.update(offsets)
            return
        # The offsets of these messages move on with the aggregate: deliver first.
        if session.producer.flush(30) > 0 or failures:
            raise DeliveryFailed(failures[0].str() if failures else "dead letters not delivered")

    # --- failures ------------------------------------------------------------------------------

    def _load_pending(self) -> None:
        try:
            self.partitions.load_pending()
        except StoreUnavailable as exc:
            self._unavailable(exc, [])
            return
        self._available()

    def _renew_producer(self, reason: str) -> None:
        """A fresh producer (core/session.py), and every partition reloaded from Couchbase and
        the committed offsets: the outcome of the last commit is unknown."""
        self._wait_in_flight()
        self.in_flight = None  # written or not, the reload below reads where Couchbase says
        self.session.renew_producer(reason)
        self.session.txn.init()
        self.partitions.reload(list(self.partitions.owned))

    def _aborted(self, exc: TransactionAborted, rewind: list[PartitionId]) -> None:
        """The transaction is lost: abort it and read the batch again from Couchbase's offset."""
        self.log.warning("transaction aborted, re-reading the batch", error=str(exc))
        self.ctx.metrics.error("transaction_aborted")
        self.session.txn.abort()
        self.partitions.seek(rewind)

    def _unavailable(self, exc: Exception, rewind: list[PartitionId]) -> None:
        """Forget the consumed-but-unwritten messages (seek back) and pause everything."""
        self.partitions.seek(rewind)
        self.partitions.pause_all()
        delay = self.outage.fail()
        self.ctx.metrics.error("couchbase")
        self.ctx.health.set_ready(False, f"couchbase unavailable: {exc}")
        self.log.warning(
            "couchbase unavailable, backing off", error=str(exc), retry_in_s=round(delay, 2)
        )

    def _available(self) -> None:
        if self.outage.failures:
            self.log.info("couchbase available again")
        self.outage.succeed()
        self.ctx.health.set_ready(True)

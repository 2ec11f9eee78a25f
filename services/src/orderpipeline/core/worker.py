"""The consume -> process -> produce loop shared by the Kafka-to-Kafka workers (fraud, payment).

A `Handler` turns each valid order into zero or more outputs (a `Scheduler` beside it when
some are emitted later); the worker does the rest:
parsing (invalid messages become dead letters), producing, committing, rebalances, and a
graceful stop (finish in-flight work, commit, leave the group). Its clients, transaction and
dead letters are a `KafkaSession` (core/session.py), the same analytics runs on.

Two modes (`KAFKA_TRANSACTIONS`):
- transactions (default): outputs wait in their batch until every older batch is finished
  too (offsets.py); then they are produced into the open Kafka transaction, and the
  transaction commits them together with their batches' offsets (the next offset to read)
  every `KAFKA_TRANSACTION_INTERVAL_MS` or `KAFKA_TRANSACTION_MAX_MESSAGES`. An aborted
  transaction rewinds the consumer to the committed offsets; a fatal error (fenced) ends the
  process (exit 1) for a restart. Exactly once for `read_committed` readers.
- at least once: outputs are produced at once with delivery callbacks, and an offset is stored
  only when the outputs of its message and of every earlier one are acknowledged.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from orderpipeline.core.broker import wait_for_broker
from orderpipeline.core.config import KafkaSettings
from orderpipeline.core.exit_codes import EXIT_FAILURE, EXIT_OK
from orderpipeline.core.kafka import DeliveryFailed, KafkaFatalError
from orderpipeline.core.logging import get_logger
from orderpipeline.core.offsets import Batch, DeliveryCallback, OffsetTracker, Output
from orderpipeline.core.order import InvalidMessage, Order, parse_order
from orderpipeline.core.runner import ServiceContext
from orderpipeline.core.session import KafkaSession
from orderpipeline.core.transactions import (
    Transaction,
    TransactionAborted,
    TransactionFatal,
    rewind_to_committed,
)

MAX_BATCH = 1000


class Emit(Protocol):
    def __call__(self, topic: str, key: str, value: bytes, batch: Batch) -> None: ...


class Handler(Protocol):
    """What a service plugs into the worker: each valid order, its outputs through `emit`."""

    def process(self, order: Order, batch: Batch, emit: Emit) -> None:
        """Handle one valid order; every output goes through `emit` (tied to `batch`)."""


class Scheduler(Protocol):
    """Work a handler defers (payment's simulated processing): emitted later, by `tick`.

    A handler that defers work holds its batch (`batch.add()`) in `process` and releases it
    (`batch.release()`) once the deferred output is emitted, so the batch's offsets wait.
    """

    def capacity(self) -> int:
        """How many more messages may be taken now (bounded concurrency)."""

    def next_due(self) -> float | None:
        """Monotonic time at which `tick` has work, or None."""

    def tick(self, now: float, emit: Emit) -> None:
        """Emit whatever work has become due."""

    def busy(self) -> bool:
        """Work scheduled but not emitted yet."""

    def forget(self) -> None:
        """Drop scheduled work: its messages will be read again (aborted or lost)."""


class NothingScheduled:
    """The Scheduler of a handler that emits everything from `process` (fraud)."""

    def capacity(self) -> int:
        return MAX_BATCH

    def next_due(self) -> float | None:
        return None

    def tick(self, now: float, emit: Emit) -> None:
        return None

    def busy(self) -> bool:
        return False

    def forget(self) -> None:
        return None


class ConsumerWorker:
    """Runs a Handler on the orders topic until stopped."""

    def __init__(
        self,
        settings: KafkaSettings,
        ctx: ServiceContext,
        group_id: str,
        handler: Handler,
        scheduler: Scheduler | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.settings = settings
        self.ctx = ctx
        self.handler = handler
        self.scheduler: Scheduler = scheduler or NothingScheduled()
        self.max_batch = max_batch
        self.log = get_logger(ctx.name)
        self.tracker = OffsetTracker()
        self.transactional = settings.transactions
        self.session = KafkaSession(settings, ctx, group_id)
        self._max_bytes = settings.order_max_bytes
        self._assigned: list[TopicPartition] = []
        self._txn_interval_s = settings.transaction_interval_ms / 1000.0
        self._txn_max = settings.transaction_max_messages
        # Released batches whose outputs are in the open transaction and offsets not yet sent.
        self._txn_offsets: dict[tuple[str, int], int] = {}
        self._txn_batches: list[Batch] = []
        self._txn_messages = 0
        self._counters: dict[str, DeliveryCallback] = {}

    # The session's clients, looked up on every use: a renewal replaces them.
    @property
    def producer(self) -> Producer:
        return self.session.producer

    @property
    def consumer(self) -> Consumer:
        return self.session.consumer

    @property
    def txn(self) -> Transaction:
        return self.session.txn

    def _renew_producer(self, reason: str) -> None:
        """A fresh producer (core/session.py), and read again from the committed offsets."""
        self.session.renew_producer(reason)
        self._forget()
        self.txn.init()
        rewind_to_committed(self.consumer)

    # --- outputs -------------------------------------------------------------------------------

    def emit(self, topic: str, key: str, value: bytes, batch: Batch) -> None:
        """One output of `batch`: held for its transaction, or produced at once and its
        offset kept until the delivery report."""
        produced = self.ctx.metrics.produced
        if self.transactional:
            counted = self._counters.get(topic)
            if counted is None:
                counted = self._counters[topic] = self._counter(topic)
            batch.outputs.append(Output(topic, key.encode(), value, counted))
            return
        tracker = self.tracker

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                produced(topic)
            tracker.on_delivery(batch, err)

        batch.add()
        self._produce(Output(topic, key.encode(), value, delivered))

    def _counter(self, topic: str) -> DeliveryCallback:
        """The delivery callback of a transactional output: count it (the transaction's
        commit, not this callback, decides whether it counts for readers)."""
        produced = self.ctx.metrics.produced

        def counted(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                produced(topic)

        return counted

    def _produce(self, output: Output) -> None:
        self.session.produce(output)

    def _dead_letter(self, msg: Message, reason: str, batch: Batch) -> None:
        if self.transactional:
            batch.outputs.append(self.session.dead_letter(msg, reason, lambda _e, _m: None))
            return
        batch.add()
        tracker = self.tracker
        self._produce(
            self.session.dead_letter(msg, reason, lambda err, _m: tracker.on_delivery(batch, err))
        )

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> int:
        if not wait_for_broker(
            self.producer, self.session.watcher, self.ctx, self.settings.orders_topic
        ):
            self._close()
            return EXIT_OK
        if self.transactional:
            try:
                self.txn.init()
            except (TransactionFatal, TransactionAborted) as exc:
                self.log.error(
                    "cannot start transactions, exiting (a broker without transactions needs "
                    "KAFKA_TRANSACTIONS=false; a broker with ACLs, WRITE on the transactional id)",
                    error=str(exc),
                )
                self._close()
                return EXIT_FAILURE
        self.ctx.health.set_ready(True)
        self.session.subscribe([self.settings.orders_topic], self)
        self.log.info("consuming", topic=self.settings.orders_topic)
        try:
            while not self.ctx.stop.is_set():
                try:
                    self._guarded(self._step)
                except TransactionFatal as exc:
                    self._renew_producer(str(exc))
            self._guarded(self._drain)
            self._commit()
            return EXIT_OK
        except DeliveryFailed as exc:
            self.log.error("an output could not be delivered, exiting", error=str(exc))
            self.ctx.metrics.error("delivery")
            return EXIT_FAILURE
        except TransactionFatal as exc:
            # Fenced (a newer instance owns our work) or a fatal producer error: nothing this
            # producer writes can commit any more. Exit; the restart brings a fresh producer,
            # and everything uncommitted is read again.
            self.log.error("transactional producer unusable, exiting", error=str(exc))
            self.ctx.metrics.error("transaction_fatal")
            return EXIT_FAILURE
        finally:
            self._close()

    def _guarded(self, body: Any) -> None:
        """Run `body`; an aborted transaction rewinds to the committed offsets."""
        try:
            body()
        except TransactionAborted as exc:
            self._abort(str(exc))
            rewind_to_committed(self.consumer)

    def _abort(self, reason: str) -> None:
        self.log.warning("transaction aborted, re-reading from the committed offsets", error=reason)
        self.ctx.metrics.error("transaction_aborted")
        self.txn.abort()
        self._forget()

    def _forget(self) -> None:
        self.tracker.forget()
        self.scheduler.forget()
        self._txn_offsets.clear()
        self._txn_batches.clear()
        self._txn_messages = 0

    def _step(self) -> None:
        self.session.beat()
        capacity = min(self.max_batch, self.scheduler.capacity())
        timeout = self._timeout()
        if capacity > 0:
            messages = self.consumer.consume(capacity, timeout)
        else:
            messages = []
            self.producer.poll(timeout)
        if messages:
            self._process(messages)
        # Messages waiting and none consumed for long fails the liveness probe (core/stall.py).
        self.session.consumed(len(messages))
        self.scheduler.tick(time.monotonic(), self.emit)
        self.producer.poll(0)
        self._store()

    def _timeout(self) -> float:
        due = self.scheduler.next_due()
        if self._txn_batches:
            commit_at = self.txn.opened_at + self._txn_interval_s
            due = commit_at if due is None else min(due, commit_at)
        if due is None:
            return 0.1 if not self.tracker.idle else 0.5
        return max(0.0, min(0.5, due - time.monotonic()))

    def _process(self, messages: list[Message]) -> None:
        if self.transactional:
            messages = self._still_assigned(messages)
        batch = self.tracker.open(messages)
        handler, emit, max_bytes = self.handler, self.emit, self._max_bytes
        valid = 0
        for msg in messages:
            err = msg.error()
            if err is not None:
                self.session.consume_error(err)
                continue
            try:
                order = parse_order(msg.value(), max_bytes)
            except InvalidMessage as exc:
                self._dead_letter(msg, exc.reason, batch)
                continue
            valid += 1
            handler.process(order, batch, emit)
        self.tracker.close(batch)
        self.ctx.metrics.consumed(self.settings.orders_topic, valid)

    def _still_assigned(self, messages: list[Message]) -> list[Message]:
        """Drop messages of partitions revoked during the consume() that returned them.

        Their offsets were committed on revocation and the new owner reads on from there; a
        transaction must not commit their outputs (or offsets) a second time.
        """
        assigned = {(tp.topic, tp.partition) for tp in self._assigned}
        kept = [
            m for m in messages if m.error() is not None or (m.topic(), m.partition()) in assigned
        ]
        if len(kept) < len(messages):
            self.log.info("messages of revoked partitions dropped", count=len(messages) - len(kept))
        return kept

    def _store(self, final: bool = False) -> None:
        if self.transactional:
            self._transact(final)
            return
        if self.tracker.failure is not None:
            raise DeliveryFailed(self.tracker.failure.str())
        offsets, finished = self.tracker.release()
        if offsets:
            try:
                self.consumer.store_offsets(offsets=offsets)
            except KafkaException as exc:
                # A partition revoked meanwhile: its new owner re-processes from the commit.
                self.log.warning("could not store offsets", error=str(exc))
        now = time.monotonic()
        observe = self.ctx.metrics.processing_seconds.observe
        for batch in finished:
            observe(now - batch.started)
        self.ctx.metrics.in_flight.set(self.tracker.in_flight)

    def _transact(self, final: bool) -> None:
        """Move finished batches into the open transaction; commit it when it is due."""
        offsets, finished = self.tracker.release()
        if finished:
            self.txn.ensure_open()
            for batch in finished:
                for output in batch.outputs:
                    self._produce(output)
                batch.outputs.clear()
                self._txn_messages += batch.size
            self._txn_batches.extend(finished)
            self._txn_offsets.update(((tp.topic, tp.partition), tp.offset) for tp in offsets)
        self.ctx.metrics.in_flight.set(self.tracker.in_flight)
        if not self._txn_batches:
            return
        due = self.txn.opened_at + self._txn_interval_s <= time.monotonic()
        if final or due or self._txn_messages >= self._txn_max:
            self.txn.commit([TopicPartition(t, p, o) for (t, p), o in self._txn_offsets.items()])
            now = time.monotonic()
            observe = self.ctx.metrics.processing_seconds.observe
            for batch in self._txn_batches:
                observe(now - batch.started)
            self._txn_offsets.clear()
            self._txn_batches.clear()
            self._txn_messages = 0

    def _drain(self, deadline_s: float = 30.0) -> None:
        """Finish everything in flight: scheduled work, then delivery reports (or the last
        transaction)."""
        deadline = time.monotonic() + deadline_s
        while (self.scheduler.busy() or not self.tracker.idle) and time.monotonic() < deadline:
            self.ctx.health.beat()
            self.scheduler.tick(time.monotonic(), self.emit)
            self.producer.poll(min(0.05, self._timeout()))
            self._store()
        if self.transactional:
            self._store(final=True)
        if not self.tracker.idle:
            self.log.warning("stopping with undelivered outputs; they will be redone")

    def _commit(self) -> None:
        if self.transactional:
            return  # offsets were committed by the last transaction
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError._NO_OFFSET:
                return
            self.log.warning("final commit failed", error=str(exc))

    def _close(self) -> None:
        self.session.close()

    # --- rebalances (the session's Rebalance hooks) ---------------------------------------------

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        self._assigned = list(partitions)
        self.log.info("partitions assigned", partitions=[p.partition for p in partitions])

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        # Finish and commit what we hold so the next owner does not redo it.
        try:
            self._drain()
        except DeliveryFailed:
            self.tracker.forget()
        except TransactionAborted as exc:
            # The next owner reads from the committed offsets: no rewind needed here.
            self._abort(str(exc))
        self._commit()
        self._forget()
        self._assigned = []
        self.log.info("partitions revoked", partitions=[p.partition for p in partitions])

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        # Another member owns them now: committing would be wrong, redelivery covers us.
        # (A zombie that wakes up after its session timeout usually learns it here, before
        # its next commit would have been fenced by the group generation.)
        if self.transactional and self.txn.is_open:
            self.log.warning("transaction aborted: partitions lost to another member")
            self.ctx.metrics.error("transaction_aborted")
            self.txn.abort()
        self._forget()
        self._assigned = []
        self.log.warning("partitions lost", partitions=[p.partition for p in partitions])


__all__ = [
    "ConsumerWorker",
    "DeliveryFailed",
    "Emit",
    "Handler",
    "KafkaFatalError",
    "NothingScheduled",
    "Scheduler",
]

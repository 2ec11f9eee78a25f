"""The consume -> process -> produce loop shared by the Kafka-to-Kafka workers (fraud, payment).

A `Handler` turns each valid order into zero or more outputs; the worker does the rest:
parsing (invalid messages become dead letters), producing with delivery callbacks, storing
offsets only for messages whose outputs are durable (see offsets.py), rebalances, and a
graceful stop (finish in-flight work, store, commit, leave the group).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from orderpipeline.core.config import KafkaSettings
from orderpipeline.core.deadletter import DeadLetters
from orderpipeline.core.kafka import (
    ErrorWatcher,
    KafkaFatalError,
    close_clients,
    consumer_config,
    producer_config,
    raise_from,
)
from orderpipeline.core.logging import get_logger
from orderpipeline.core.offsets import Batch, OffsetTracker
from orderpipeline.core.order import InvalidMessage, Order, parse_order
from orderpipeline.core.runner import EXIT_FAILURE, EXIT_OK, ServiceContext

MAX_BATCH = 1000


class Emit(Protocol):
    def __call__(self, topic: str, key: str, value: bytes, batch: Batch) -> None: ...


class Handler(Protocol):
    """What a service plugs into the worker."""

    def process(self, order: Order, batch: Batch, emit: Emit) -> None:
        """Handle one valid order; every output goes through `emit` (tied to `batch`)."""

    def capacity(self) -> int:
        """How many more messages may be taken now (bounded concurrency); MAX_BATCH if any."""

    def next_due(self) -> float | None:
        """Monotonic time at which `tick` has work, or None."""

    def tick(self, now: float, emit: Emit) -> None:
        """Emit whatever work has become due."""

    def busy(self) -> bool:
        """Work scheduled but not emitted yet."""


class ConsumerWorker:
    """Runs a Handler on the orders topic until stopped."""

    def __init__(
        self,
        settings: KafkaSettings,
        ctx: ServiceContext,
        group_id: str,
        handler: Handler,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.settings = settings
        self.ctx = ctx
        self.handler = handler
        self.max_batch = max_batch
        self.log = get_logger(ctx.name)
        self.watcher = ErrorWatcher(ctx.name)
        self.tracker = OffsetTracker()
        self.producer = Producer(
            producer_config(settings, f"{ctx.name}-producer", error_cb=self.watcher)
        )
        self.consumer = Consumer(
            consumer_config(
                settings,
                group_id,
                f"{ctx.name}-consumer",
                error_cb=self.watcher,
                stats_cb=ctx.metrics.record_librdkafka_stats,
            )
        )
        self.dead_letters = DeadLetters(
            self.producer, settings.dead_letter_topic, ctx.name, ctx.metrics
        )
        self._max_bytes = settings.order_max_bytes
        self._assigned: list[TopicPartition] = []

    # --- outputs -------------------------------------------------------------------------------

    def emit(self, topic: str, key: str, value: bytes, batch: Batch) -> None:
        """Produce one output of `batch`; its offset waits for the delivery report."""
        tracker = self.tracker
        produced = self.ctx.metrics.produced

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is None:
                produced(topic)
            tracker.on_delivery(batch, err)

        batch.add()
        self._produce(topic, key.encode(), value, delivered)

    def _produce(self, topic: str, key: bytes, value: bytes, callback: Any) -> None:
        while True:
            try:
                self.producer.produce(topic, value=value, key=key, on_delivery=callback)
                return
            except BufferError:
                # Local queue full: serve delivery reports to make room.
                self.producer.poll(0.05)

    def _dead_letter(self, msg: Message, reason: str, batch: Batch) -> None:
        self.ctx.metrics.error("invalid_message")
        self.log.warning(
            "invalid message sent to the dead-letter topic",
            reason=reason,
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
        )
        batch.add()
        tracker = self.tracker
        while True:
            try:
                self.dead_letters.send(msg, reason, lambda err, _m: tracker.on_delivery(batch, err))
                return
            except BufferError:
                self.producer.poll(0.05)

    # --- the loop ------------------------------------------------------------------------------

    def run(self) -> int:
        if not wait_for_broker(self.producer, self.watcher, self.ctx, self.settings.orders_topic):
            self._close()
            return EXIT_OK
        self.ctx.health.set_ready(True)
        self.consumer.subscribe(
            [self.settings.orders_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        self.log.info("consuming", topic=self.settings.orders_topic)
        try:
            while not self.ctx.stop.is_set():
                self._step()
            self._drain()
            self._commit()
            return EXIT_OK
        except DeliveryFailed as exc:
            self.log.error("an output could not be delivered, exiting", error=str(exc))
            self.ctx.metrics.error("delivery")
            return EXIT_FAILURE
        finally:
            self._close()

    def _step(self) -> None:
        ctx = self.ctx
        ctx.health.beat()
        self.watcher.raise_if_fatal()
        capacity = min(self.max_batch, self.handler.capacity())
        timeout = self._timeout()
        if capacity > 0:
            messages = self.consumer.consume(capacity, timeout)
        else:
            messages = []
            self.producer.poll(timeout)
        if messages:
            self._process(messages)
        self.handler.tick(time.monotonic(), self.emit)
        self.producer.poll(0)
        self._store()

    def _timeout(self) -> float:
        due = self.handler.next_due()
        if due is None:
            return 0.1 if not self.tracker.idle else 0.5
        return max(0.0, min(0.5, due - time.monotonic()))

    def _process(self, messages: list[Message]) -> None:
        batch = self.tracker.open(messages)
        handler, emit, max_bytes = self.handler, self.emit, self._max_bytes
        valid = 0
        for msg in messages:
            err = msg.error()
            if err is not None:
                self._consume_error(err)
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

    def _consume_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            return
        self.ctx.metrics.error("consume")
        self.watcher.check(err)

    def _store(self) -> None:
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

    def _drain(self, deadline_s: float = 30.0) -> None:
        """Finish everything in flight: scheduled work, then delivery reports."""
        deadline = time.monotonic() + deadline_s
        while (self.handler.busy() or not self.tracker.idle) and time.monotonic() < deadline:
            self.ctx.health.beat()
            self.handler.tick(time.monotonic(), self.emit)
            self.producer.poll(min(0.05, self._timeout()))
            self._store()
        if not self.tracker.idle:
            self.log.warning("stopping with undelivered outputs; they will be redone")

    def _commit(self) -> None:
        try:
            self.consumer.commit(asynchronous=False)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError._NO_OFFSET:
                return
            self.log.warning("final commit failed", error=str(exc))

    def _close(self) -> None:
        close_clients(self.producer, self.consumer)

    # --- rebalances ----------------------------------------------------------------------------

    def _on_assign(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned = list(partitions)
        self.log.info("partitions assigned", partitions=[p.partition for p in partitions])

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Finish and commit what we hold so the next owner does not redo it.
        try:
            self._drain()
        except DeliveryFailed:
            self.tracker.forget()
        self._commit()
        self._assigned = []
        self.log.info("partitions revoked", partitions=[p.partition for p in partitions])

    def _on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Another member owns them now: committing would be wrong, redelivery covers us.
        self.tracker.forget()
        self._assigned = []
        self.log.warning("partitions lost", partitions=[p.partition for p in partitions])


class DeliveryFailed(Exception):
    """An output was not delivered (after librdkafka's own retries)."""


def wait_for_broker(
    producer: Producer, watcher: ErrorWatcher, ctx: ServiceContext, topic: str
) -> bool:
    """Block until the broker answers a metadata request; False if stopped first.

    Raises KafkaFatalError at once for errors no retry can fix (bad credentials, TLS).
    """
    log = get_logger(ctx.name)
    last_log = 0.0
    while not ctx.stop.is_set():
        ctx.health.beat()
        try:
            producer.list_topics(topic, timeout=1.0)
            return True
        except KafkaException as exc:
            producer.poll(0)
            watcher.raise_if_fatal()
            fatal = raise_from(exc)
            if fatal.code is not None and fatal.code in (KafkaError._AUTHENTICATION,):
                raise fatal from None
            if time.monotonic() - last_log > 30:
                log.warning("waiting for the Kafka broker", error=str(fatal))
                last_log = time.monotonic()
    return False


__all__ = [
    "ConsumerWorker",
    "DeliveryFailed",
    "Emit",
    "Handler",
    "KafkaFatalError",
    "wait_for_broker",
]

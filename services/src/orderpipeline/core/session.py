"""One consumer service's Kafka clients and what keeps them usable: the session every
consumer (core/worker.py for fraud and payment, analytics/) runs on.

A `KafkaSession` owns:
- a group consumer and a producer configured by core/kafka.py (transactional with
  `KAFKA_TRANSACTIONS`), both reporting to one `ErrorWatcher`, with librdkafka's statistics
  recorded as metrics;
- the consume-stall liveness signal (core/stall.py): the consumer reports each consume()
  (`consumed`), and pauses and resumes partitions through the session (`pause`, `resume`) so
  that a partition paused on purpose is never taken for a stalled one;
- the producer's `Transaction` and its `ProducerRenewal` (core/transactions.py);
- dead letters (core/deadletter.py), logged and counted the same way for every consumer;
- the health beat every loop turn and every transactional retry makes;
- the rebalance callbacks, which it passes to the consumer's `Rebalance` hooks.

What to process and when to commit stays with the consumer: this module knows nothing of
batches, handlers or Couchbase.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from orderpipeline.core.config import KafkaSettings
from orderpipeline.core.deadletter import DeadLetters, produce_output
from orderpipeline.core.kafka import (
    ErrorWatcher,
    close_clients,
    consumer_config,
    producer_config,
    transactional_config,
)
from orderpipeline.core.logging import get_logger
from orderpipeline.core.offsets import DeliveryCallback, Output
from orderpipeline.core.runner import ServiceContext
from orderpipeline.core.stall import ConsumeWatch, Partition
from orderpipeline.core.transactions import ProducerRenewal, Transaction, TransactionFatal


def _keys(partitions: Iterable[TopicPartition]) -> list[Partition]:
    return [(tp.topic, tp.partition) for tp in partitions]


class Rebalance(Protocol):
    """What a consumer does when the group moves partitions (called inside `consume()`)."""

    def on_assign(self, partitions: list[TopicPartition]) -> None:
        """The partitions are ours from now on."""

    def on_revoke(self, partitions: list[TopicPartition]) -> None:
        """The partitions are handed over cleanly: finish (or commit) what we hold of them."""

    def on_lost(self, partitions: list[TopicPartition]) -> None:
        """Another member owns the partitions already: committing for them would be wrong."""


class KafkaSession:
    """A service's consumer, producer, transaction and dead letters; see the module docstring."""

    def __init__(
        self,
        settings: KafkaSettings,
        ctx: ServiceContext,
        group_id: str,
        consumer_overrides: Mapping[str, Any] | None = None,
    ) -> None:
        self.settings = settings
        self.ctx = ctx
        self.group_id = group_id
        self.log = get_logger(ctx.name)
        self.watcher = ErrorWatcher(ctx.name)
        self.transactional = settings.transactions
        self.consume_watch = ConsumeWatch()
        self._stalled: str | None = None
        self.producer = self._new_producer()
        self.consumer = Consumer(
            consumer_config(
                settings,
                group_id,
                f"{ctx.name}-consumer",
                error_cb=self.watcher,
                stats_cb=self._on_stats,
                **(consumer_overrides or {}),
            )
        )
        self.dead_letters = DeadLetters(
            self.producer, settings.dead_letter_topic, ctx.name, ctx.metrics
        )
        self.txn = self._transaction()
        self._renew = ProducerRenewal(ctx.name, ctx.metrics, self._new_producer)

    # --- clients -------------------------------------------------------------------------------

    def _new_producer(self) -> Producer:
        settings = self.settings
        extra = transactional_config(settings, self.group_id) if self.transactional else {}
        return Producer(
            producer_config(settings, f"{self.ctx.name}-producer", error_cb=self.watcher, **extra)
        )

    def _transaction(self) -> Transaction:
        return Transaction(
            self.producer,
            self.consumer,
            self.ctx.name,
            self.ctx.stop.is_set,
            self.beat,
            self.settings.transaction_timeout_ms / 1000.0,
        )

    def _on_stats(self, stats_json: str) -> None:
        self.ctx.metrics.record_librdkafka_stats(stats_json)
        self.consume_watch.on_stats(json.loads(stats_json))

    def renew_producer(self, reason: str) -> None:
        """A fresh producer, transaction and dead-letter sender (ProducerRenewal: raises
        TransactionFatal the second time within a minute). The caller then forgets its
        uncommitted work, calls `txn.init()` and reads again from its committed state."""
        self.producer = self._renew(self.producer, reason)
        self.dead_letters = DeadLetters(
            self.producer, self.settings.dead_letter_topic, self.ctx.name, self.ctx.metrics
        )
        self.txn = self._transaction()

    def subscribe(self, topics: list[str], hooks: Rebalance) -> None:
        watch = self.consume_watch

        def assigned(partitions: list[TopicPartition]) -> None:
            watch.restart()  # before the hooks, which may pause what they were given
            hooks.on_assign(partitions)

        self.consumer.subscribe(
            topics,
            on_assign=lambda _consumer, partitions: assigned(partitions),
            on_revoke=lambda _consumer, partitions: hooks.on_revoke(partitions),
            on_lost=lambda _consumer, partitions: hooks.on_lost(partitions),
        )

    def pause(self, partitions: list[TopicPartition]) -> None:
        """Stop fetching `partitions` (assigned ones: librdkafka ignores the pause of any other)
        on purpose: their waiting messages are no stall. Every pause goes through here; a
        `consumer.pause()` the watch never heard of would fail the liveness probe after
        CONSUME_STALL_S."""
        self.consumer.pause(partitions)
        self.consume_watch.on_pause(_keys(partitions))

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.consumer.resume(partitions)
        self.consume_watch.on_resume(_keys(partitions))

    def close(self) -> None:
        """Deliver what the producer holds, leave the group, close both clients."""
        try:
            close_clients(self.producer, self.consumer)
        except TransactionFatal as exc:
            # Leaving the group ran on_lost, whose abort a fenced producer refused: the
            # broker aborts that transaction after its timeout anyway; exit without a trace.
            self.log.warning("open transaction left to the broker to abort", error=str(exc))

    # --- every loop turn -----------------------------------------------------------------------

    def beat(self) -> None:
        """Tell the liveness probe the loop turns, and end it on an error no retry fixes
        (wrong credentials surface only through error_cb, also while a call is retried)."""
        self.ctx.health.beat()
        self.watcher.raise_if_fatal()

    def consumed(self, count: int) -> None:
        """What one consume() call returned (`count` messages, 0 too): report a consumer that
        turns but gets nothing while messages wait (core/stall.py) to the liveness probe, and
        its end."""
        watch = self.consume_watch
        watch.consumed(count)
        stalled = watch.stalled(time.monotonic())
        if stalled == self._stalled:
            return
        # The reason changes every second (it says for how long): logged and counted once
        # per stall, while the probe always answers with the latest.
        if self._stalled is None:
            self.log.error("consuming stalled, failing the liveness probe", reason=stalled)
            self.ctx.metrics.error("consume_stalled")
        elif stalled is None:
            self.log.info("consuming again")
        self._stalled = stalled
        self.ctx.health.set_stalled(stalled)

    def consume_error(self, err: KafkaError) -> None:
        """An error consume() returned in place of a message: counted, and raised if fatal."""
        if err.code() == KafkaError._PARTITION_EOF:
            return
        self.ctx.metrics.error("consume")
        self.watcher.check(err)

    def produce(self, output: Output) -> None:
        """Produce `output`, waiting while librdkafka's local queue is full."""
        while True:
            try:
                produce_output(self.producer, output)
                return
            except BufferError:
                # Local queue full: serve delivery reports to make room.
                self.producer.poll(0.05)

    # --- dead letters --------------------------------------------------------------------------

    def dead_letter(self, msg: Message, reason: str, on_delivery: DeliveryCallback) -> Output:
        """The dead letter of `msg`, logged and counted as an invalid message; the caller
        produces it now (`produce`) or holds it for its transaction."""
        self.ctx.metrics.error("invalid_message")
        self.log.warning(
            "invalid message sent to the dead-letter topic",
            reason=reason,
            topic=msg.topic(),
            partition=msg.partition(),
            offset=msg.offset(),
        )
        return self.dead_letters.output(msg, reason, on_delivery)

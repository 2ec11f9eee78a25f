"""At-least-once offset tracking: which offsets may be stored because their outputs are durable.

Messages are tracked in batches (what one `consume()` returned). A batch holds one pending
count per output still in flight (an alert, a payment, a dead letter, a timer) plus one for
itself until the worker closes it. Batches complete out of order (outputs go to different
partitions, payments finish at different times), but offsets are released strictly in
consumption order: a completed batch waits for every older batch. So a stored offset is always
below the lowest message whose output is unfinished, per partition.

With transactions an output is finished once it is emitted (held in its batch, not yet
produced): the worker produces the outputs of released batches into the open transaction and
commits their offsets with them (worker.py).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from confluent_kafka import KafkaError, Message, TopicPartition

DeliveryCallback = Callable[[KafkaError | None, Message], None]


class Output(NamedTuple):
    """An output held back until its batch's offsets are committed (transactional mode).

    A NamedTuple: one is built per output on the hot path, and a tuple is the cheapest."""

    topic: str
    key: bytes | None
    value: bytes | None
    on_delivery: DeliveryCallback
    headers: list[tuple[str, bytes]] | None = None


class Batch:
    """The messages of one consume() call and how many of their outputs are still pending.

    With transactions, `outputs` holds what the batch produced until the batch leaves the
    tracker: a transaction then writes those outputs together with the batch's offsets, so it
    never commits an output whose input it does not commit (or the reverse).
    """

    __slots__ = ("next_offsets", "outputs", "pending", "size", "started")

    def __init__(self, messages: list[Message]) -> None:
        self.started = time.monotonic()
        self.size = len(messages)
        # The offset to store per partition is the next one to read (last + 1).
        self.next_offsets: dict[tuple[str, int], int] = {}
        for msg in messages:
            offset = msg.offset()
            if offset is not None and offset >= 0:
                self.next_offsets[(msg.topic() or "", msg.partition() or 0)] = offset + 1
        self.pending = 1  # the worker's own reference, released by OffsetTracker.close()
        self.outputs: list[Output] = []

    def add(self, count: int = 1) -> None:
        """An output for this batch is now in flight (or deferred work holds the batch)."""
        self.pending += count

    def release(self) -> None:
        """Deferred work that held the batch (`add`) is done: its output is now in flight
        through `emit`, which holds the batch in its own right."""
        self.pending -= 1

    @property
    def done(self) -> bool:
        return self.pending == 0


class OffsetTracker:
    """Orders batches and yields the offsets that are safe to store."""

    def __init__(self) -> None:
        self._batches: deque[Batch] = deque()
        self.failure: KafkaError | None = None
        self.in_flight = 0

    def open(self, messages: list[Message]) -> Batch:
        batch = Batch(messages)
        self._batches.append(batch)
        self.in_flight += batch.size
        return batch

    def close(self, batch: Batch) -> None:
        """Every output of `batch` has been started; it completes when they are delivered."""
        batch.pending -= 1

    def on_delivery(self, batch: Batch, err: KafkaError | None) -> None:
        """One output of `batch` is durable (err is None) or failed for good."""
        if err is not None and self.failure is None:
            self.failure = err
        batch.pending -= 1

    def release(self) -> tuple[list[TopicPartition], list[Batch]]:
        """Pop the completed prefix of batches: offsets to store and the batches themselves.

        Nothing is released after a delivery failure: the messages will be consumed again
        after the restart that the failure causes.
        """
        if self.failure is not None:
            return [], []
        merged: dict[tuple[str, int], int] = {}
        finished: list[Batch] = []
        batches = self._batches
        while batches and batches[0].pending == 0:
            batch = batches.popleft()
            merged.update(batch.next_offsets)
            finished.append(batch)
            self.in_flight -= batch.size
        return [TopicPartition(t, p, o) for (t, p), o in merged.items()], finished

    @property
    def idle(self) -> bool:
        """No batch waits for an output."""
        return not self._batches

    def forget(self) -> None:
        """Drop every batch (partitions lost): their messages will be redelivered."""
        self._batches.clear()
        self.in_flight = 0

"""librdkafka's transaction error classes, each with its prescribed answer (unit level: a fake
producer and consumer raise the errors; the real broker's behaviour is in
test_exactly_once_kafka.py)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message, TopicPartition
from orderpipeline.core import transactions
from orderpipeline.core.config import WorkerSettings
from orderpipeline.core.exit_codes import EXIT_FAILURE
from orderpipeline.core.health import HealthState
from orderpipeline.core.lifecycle import StopFlag
from orderpipeline.core.logging import configure_logging
from orderpipeline.core.metrics import ServiceMetrics
from orderpipeline.core.offsets import Batch
from orderpipeline.core.order import Order
from orderpipeline.core.runner import ServiceContext
from orderpipeline.core.transactions import (
    ProducerRenewal,
    Transaction,
    TransactionAborted,
    TransactionFatal,
    classify,
    rewind_to_committed,
)
from orderpipeline.core.worker import ConsumerWorker, Emit

from tests.kafka_fakes import FakeMessage

RETRIABLE = KafkaError(KafkaError._TIMED_OUT, "timed out", retriable=True)
ABORTABLE = KafkaError(KafkaError.UNKNOWN_MEMBER_ID, "unknown member", txn_requires_abort=True)
FENCED = KafkaError(KafkaError._FENCED, "fenced by a newer instance", fatal=True)
UNCLASSIFIED = KafkaError(KafkaError._STATE, "erroneous state")


@pytest.fixture(autouse=True)
def no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transactions, "RETRY_PAUSE_S", 0.0)
    # Log to this test's stdout: an earlier test may have configured a stream closed since.
    configure_logging("INFO", service="test")


@dataclass
class FakeProducer:
    """Records the transactional calls; `failures[name]` are raised by successive calls."""

    failures: dict[str, list[KafkaError]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    produced: list[tuple[str, bytes | None]] = field(default_factory=list)
    sent_offsets: list[list[TopicPartition]] = field(default_factory=list)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        queue = self.failures.get(name)
        if queue:
            raise KafkaException(queue.pop(0))

    def init_transactions(self, _timeout: float) -> None:
        self._call("init")

    def begin_transaction(self) -> None:
        self._call("begin")

    def send_offsets_to_transaction(
        self, offsets: list[TopicPartition], _metadata: Any, _timeout: float
    ) -> None:
        self._call("send_offsets")
        self.sent_offsets.append(offsets)

    def commit_transaction(self, _timeout: float) -> None:
        self._call("commit")

    def abort_transaction(self, _timeout: float) -> None:
        self._call("abort")

    def produce(self, topic: str, value: bytes | None = None, **_kw: Any) -> None:
        self.produced.append((topic, value))

    def poll(self, _timeout: float) -> int:
        return 0

    def flush(self, _timeout: float) -> int:
        return 0

    def purge(self) -> None:
        self.calls.append("purge")


@dataclass
class FakeConsumer:
    committed_offsets: dict[int, int] = field(default_factory=dict)
    sought: list[tuple[int, int]] = field(default_factory=list)

    def consumer_group_metadata(self) -> str:
        return "group-metadata"

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("orders", p) for p in (0, 1)]

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [
            TopicPartition(tp.topic, tp.partition, self.committed_offsets.get(tp.partition, -1001))
            for tp in partitions
        ]

    def seek(self, tp: TopicPartition) -> None:
        self.sought.append((tp.partition, tp.offset))

    def close(self) -> None:
        return None


def txn(producer: FakeProducer, consumer: FakeConsumer | None = None) -> Transaction:
    return Transaction(cast(Any, producer), cast(Any, consumer or FakeConsumer()), "test")


def test_the_three_classes_follow_librdkafka_and_anything_else_counts_as_fatal() -> None:
    assert classify(KafkaException(RETRIABLE)) == "retriable"
    assert classify(KafkaException(ABORTABLE)) == "abortable"
    assert classify(KafkaException(FENCED)) == "fatal"
    assert classify(KafkaException(UNCLASSIFIED)) == "fatal"
    # fatal wins over the other flags
    both = KafkaError(KafkaError._FENCED, "x", fatal=True, txn_requires_abort=True, retriable=True)
    assert classify(KafkaException(both)) == "fatal"


def test_a_retriable_error_retries_the_same_call_until_it_succeeds() -> None:
    producer = FakeProducer(failures={"commit": [RETRIABLE, RETRIABLE]})
    t = txn(producer)
    t.ensure_open()
    t.commit([TopicPartition("orders", 0, 11)])
    assert producer.calls == ["begin", "send_offsets", "commit", "commit", "commit"]
    assert not t.is_open and t.commits == 1


def test_a_retriable_error_while_stopping_ends_with_fatal_instead_of_retrying_forever() -> None:
    producer = FakeProducer(failures={"commit": [RETRIABLE] * 100})
    t = Transaction(cast(Any, producer), cast(Any, FakeConsumer()), "test", lambda: True)
    t.ensure_open()
    with pytest.raises(TransactionFatal):
        t.commit([TopicPartition("orders", 0, 11)])
    assert producer.calls.count("commit") == 1


def test_a_retriable_error_checks_for_errors_reported_elsewhere_before_retrying() -> None:
    # Wrong credentials reach error_cb while init_transactions only times out (retriable).
    producer = FakeProducer(failures={"init": [RETRIABLE] * 100})

    class WrongCredentials(Exception):
        pass

    def raise_if_fatal() -> None:
        raise WrongCredentials

    t = Transaction(cast(Any, producer), cast(Any, FakeConsumer()), "test", None, raise_if_fatal)
    with pytest.raises(WrongCredentials):
        t.init()
    assert producer.calls == ["init"]


def test_a_call_still_retriable_after_the_transaction_timeout_counts_as_fatal() -> None:
    producer = FakeProducer(failures={"send_offsets": [RETRIABLE] * 100})
    t = Transaction(cast(Any, producer), cast(Any, FakeConsumer()), "test", timeout_s=0.0)
    t.ensure_open()
    with pytest.raises(TransactionFatal, match="still failing"):
        t.commit([TopicPartition("orders", 0, 11)])
    assert producer.calls.count("send_offsets") == 1


def test_a_call_that_never_returns_is_given_up_after_its_timeout_and_counts_as_fatal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # librdkafka 2.16 can block in send_offsets_to_transaction past its own timeout for good.
    monkeypatch.setattr(transactions, "CALL_TIMEOUT_S", 0.1)
    monkeypatch.setattr(transactions, "HANG_GRACE_S", 0.2)
    released = threading.Event()

    class HangingProducer(FakeProducer):
        def send_offsets_to_transaction(
            self, offsets: list[TopicPartition], metadata: Any, timeout: float
        ) -> None:
            self.calls.append("send_offsets")
            released.wait(30)

    producer = HangingProducer()
    t = txn(producer)
    t.ensure_open()
    started = time.monotonic()
    try:
        with pytest.raises(TransactionFatal, match="no answer after"):
            t.commit([TopicPartition("orders", 0, 11)])
    finally:
        released.set()
    assert 0.3 <= time.monotonic() - started < 5
    assert producer.calls == ["begin", "send_offsets"]


def test_an_abortable_error_raises_aborted_and_abort_discards_the_transaction() -> None:
    producer = FakeProducer(failures={"send_offsets": [ABORTABLE]})
    t = txn(producer)
    t.ensure_open()
    with pytest.raises(TransactionAborted):
        t.commit([TopicPartition("orders", 0, 11)])
    assert "commit" not in producer.calls
    t.abort()
    assert producer.calls[-1] == "abort" and not t.is_open and t.aborts == 1


def test_a_fatal_error_is_raised_at_once_and_never_retried() -> None:
    producer = FakeProducer(failures={"commit": [FENCED, FENCED]})
    t = txn(producer)
    t.ensure_open()
    with pytest.raises(TransactionFatal, match="fenced"):
        t.commit([TopicPartition("orders", 0, 11)])
    assert producer.calls.count("commit") == 1


def test_a_fenced_producer_that_refuses_purge_and_flush_is_still_replaced_once() -> None:
    # librdkafka raises _FENCED even from purge() and flush() of a fenced producer.
    class Fenced(FakeProducer):
        def purge(self) -> None:
            raise KafkaException(FENCED)

        def flush(self, _timeout: float) -> int:
            raise KafkaException(FENCED)

    fresh = FakeProducer()
    renew = ProducerRenewal("test", ServiceMetrics("test"), lambda: cast(Any, fresh))
    renewed: Any = renew(cast(Any, Fenced()), "fenced")
    assert renewed is fresh
    with pytest.raises(TransactionFatal, match="failed the same way"):
        renew(cast(Any, fresh), "fenced again")


def test_rewind_seeks_every_assigned_partition_to_its_committed_offset() -> None:
    consumer = FakeConsumer(committed_offsets={0: 42})
    rewind_to_committed(cast(Any, consumer))
    # Partition 1 has no committed offset: back to the beginning (auto.offset.reset=earliest).
    assert consumer.sought == [(0, 42), (1, OFFSET_BEGINNING)]


# --- the worker's transactional path -------------------------------------------------------------


def an_order(order_id: str) -> bytes:
    return json.dumps(
        {
            "order_id": order_id,
            "customer_id": 1,
            "amount": 10.0,
            "currency": "USD",
            "country": "US",
            "status": "CREATED",
            "created_at": "2026-11-27T03:40:00.123Z",
            "source": "order-service",
        }
    ).encode()


class ManualHandler:
    """Like payment: each order's output is emitted when the test says so."""

    def __init__(self) -> None:
        self.waiting: dict[str, tuple[Order, Batch]] = {}
        self.release: list[str] = []
        self.forgotten = False

    def process(self, order: Order, batch: Batch, emit: Emit) -> None:
        batch.add()
        self.waiting[order.order_id] = (order, batch)

    def capacity(self) -> int:
        return 1000

    def next_due(self) -> float | None:
        return None

    def tick(self, now: float, emit: Emit) -> None:
        for order_id in self.release:
            _order, batch = self.waiting.pop(order_id)
            emit("payments", order_id, order_id.encode(), batch)
            batch.release()
        self.release = []

    def busy(self) -> bool:
        return bool(self.waiting)

    def forget(self) -> None:
        self.waiting.clear()
        self.forgotten = True


def a_worker(producer: FakeProducer, consumer: FakeConsumer) -> tuple[ConsumerWorker, Any]:
    settings = WorkerSettings(
        bootstrap_servers="127.0.0.1:1", transactions=True, transaction_interval_ms=1
    )
    ctx = ServiceContext("test", StopFlag(), HealthState(), ServiceMetrics("test"))
    handler = ManualHandler()
    worker = ConsumerWorker(settings, ctx, "group", handler, scheduler=handler)
    session = worker.session
    session.producer.flush(0)
    session.consumer.close()
    session.producer = session.txn.producer = cast(Any, producer)
    session.consumer = session.txn.consumer = cast(Any, consumer)
    session.dead_letters._producer = cast(Any, producer)
    worker._assigned = [TopicPartition("orders", p) for p in (0, 1)]
    return worker, handler


def consume(worker: ConsumerWorker, *messages: FakeMessage) -> None:
    worker._process(cast(list[Message], list(messages)))


def test_outputs_completed_above_an_unfinished_order_wait_for_the_next_transaction() -> None:
    producer, consumer = FakeProducer(), FakeConsumer()
    worker, handler = a_worker(producer, consumer)
    consume(worker, FakeMessage("orders", 0, 0, an_order("ord_a")))
    consume(worker, FakeMessage("orders", 0, 1, an_order("ord_b")))
    handler.release = ["ord_b"]  # the later order finishes first
    handler.tick(0, worker.emit)
    worker._store(final=True)
    assert producer.produced == [] and "commit" not in producer.calls

    handler.release = ["ord_a"]
    handler.tick(0, worker.emit)
    worker._store(final=True)
    # Both outputs, in input order, committed with the next offset to read (last + 1).
    assert producer.produced == [("payments", b"ord_a"), ("payments", b"ord_b")]
    assert producer.calls == ["begin", "send_offsets", "commit"]
    assert [(tp.partition, tp.offset) for tp in producer.sent_offsets[0]] == [(0, 2)]


def test_dead_letters_are_held_and_committed_with_their_offsets_like_any_output() -> None:
    producer, consumer = FakeProducer(), FakeConsumer()
    worker, _ = a_worker(producer, consumer)
    consume(worker, FakeMessage("orders", 1, 7, b"{not json"))
    assert producer.produced == []
    worker._store(final=True)
    assert producer.produced == [(worker.session.dead_letters.topic, b"{not json")]
    assert [(tp.partition, tp.offset) for tp in producer.sent_offsets[0]] == [(1, 8)]


def test_an_abortable_commit_aborts_forgets_the_work_and_rewinds_to_the_committed_offsets() -> None:
    producer = FakeProducer(failures={"send_offsets": [ABORTABLE]})
    consumer = FakeConsumer(committed_offsets={0: 0, 1: 5})
    worker, handler = a_worker(producer, consumer)
    consume(
        worker,
        FakeMessage("orders", 0, 0, an_order("ord_a")),
        FakeMessage("orders", 0, 1, an_order("ord_b")),
    )
    handler.release = ["ord_a", "ord_b"]
    handler.tick(0, worker.emit)
    worker._guarded(lambda: worker._store(final=True))
    assert producer.calls == ["begin", "send_offsets", "abort"]
    assert handler.forgotten and worker.tracker.idle
    assert consumer.sought == [(0, 0), (1, 5)]
    # The next transaction starts clean: nothing of the aborted one is committed later.
    worker._store(final=True)
    assert producer.calls.count("commit") == 0


def test_messages_of_a_partition_revoked_during_consume_are_not_processed() -> None:
    producer, consumer = FakeProducer(), FakeConsumer()
    worker, handler = a_worker(producer, consumer)
    worker._assigned = [TopicPartition("orders", 0)]  # partition 1 was just revoked
    consume(
        worker,
        FakeMessage("orders", 0, 3, an_order("ord_kept")),
        FakeMessage("orders", 1, 9, an_order("ord_x")),
    )
    assert list(handler.waiting) == ["ord_kept"]
    handler.release = ["ord_kept"]
    handler.tick(0, worker.emit)
    worker._store(final=True)
    assert [(tp.partition, tp.offset) for tp in producer.sent_offsets[0]] == [(0, 4)]


def test_a_fenced_producer_is_replaced_once_then_the_worker_exits_with_1_not_a_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producer, consumer = FakeProducer(failures={"commit": [FENCED]}), FakeConsumer({0: 1})
    fresh = FakeProducer(failures={"commit": [FENCED]})
    configs: list[dict[str, Any]] = []

    def new_producer(config: dict[str, Any]) -> FakeProducer:
        configs.append(config)
        return fresh

    worker, handler = a_worker(producer, consumer)
    monkeypatch.setattr("orderpipeline.core.session.Producer", new_producer)
    steps: list[int] = []

    def one_step() -> None:
        steps.append(1)
        consume(worker, FakeMessage("orders", 0, len(steps), an_order(f"ord_{len(steps)}")))
        handler.release = list(handler.waiting)
        handler.tick(0, worker.emit)
        worker._store(final=True)

    monkeypatch.setattr(worker, "_step", one_step)
    monkeypatch.setattr(worker, "_close", lambda: None)
    monkeypatch.setattr("orderpipeline.core.worker.wait_for_broker", lambda *_a: True)
    monkeypatch.setattr(worker.consumer, "subscribe", lambda *_a, **_k: None, raising=False)
    assert worker.run() == EXIT_FAILURE
    # One fresh producer (a new transactional.id), rewound to the committed offsets; fenced
    # again within the minute: exit for a restart.
    assert steps == [1, 1]
    assert producer.calls == ["init", "begin", "send_offsets", "commit", "purge"]
    assert fresh.calls == ["init", "begin", "send_offsets", "commit"]
    assert consumer.sought == [(0, 1), (1, OFFSET_BEGINNING)]
    assert configs[0]["transactional.id"].startswith("group-")

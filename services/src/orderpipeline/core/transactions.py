"""Kafka transactions: outputs and input offsets committed together, or not at all.

librdkafka sorts every transactional error into one of three classes, and each has one
prescribed answer (confluent-kafka's documented transactional API):

- retriable (`KafkaError.retriable()`): the same call may simply be made again;
- abortable (`KafkaError.txn_requires_abort()`): the transaction is lost; abort it and make the
  consumer read again from its committed position (`TransactionAborted`);
- fatal (`KafkaError.fatal()`, e.g. `_FENCED`: a newer instance with our transactional.id, or
  the broker bumped our epoch after a transaction timed out): this producer can do nothing
  more (`TransactionFatal`); the worker replaces it with a fresh producer, or exits for a
  restart if that already happened within the last minute (never a loop).

A call inside a transaction that stays retriable for longer than the transaction timeout is
treated as fatal too: by then the broker has aborted the transaction anyway, and librdkafka was
seen retrying a timed-out send_offsets_to_transaction forever after a broker restart.

So is a call that does not return at all. librdkafka does not always honour a transactional
call's own timeout: after a broker restart, send_offsets_to_transaction was seen blocked for
good (py-spy: waiting in rd_kafka_txn_op_req0 minutes after the broker was back), because its
request to the group coordinator waits for a broker state change that never comes (librdkafka
issues 5456 and 5511, open in 2.16). Each call that talks to the broker therefore runs in a
helper thread, and one still running `HANG_GRACE_S` after its own timeout makes the producer
unusable (fatal): the worker starts a fresh producer, whose coordinator lookups start afresh.

Any error in none of those classes is treated as fatal: guessing that it is safe to go on is
how duplicates or losses happen, and a restart is always safe.

A zombie (a process frozen past its session timeout whose partitions moved on) is fenced by
the group metadata sent with its offsets (KIP-447): the coordinator refuses offsets from an
old generation or an unknown member, and librdkafka reports that as abortable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from orderpipeline.core.logging import get_logger
from orderpipeline.core.metrics import ServiceMetrics

T = TypeVar("T")

# How long one transactional call may block before librdkafka reports a (retriable) timeout.
CALL_TIMEOUT_S = 30.0
# init_transactions is the first call that needs the broker: a short timeout, so errors that
# arrive through error_cb (wrong credentials) are checked within seconds.
INIT_TIMEOUT_S = 5.0
RETRY_PAUSE_S = 0.5
# A fatal error gets a fresh producer once; a second one within this time ends the process.
RENEW_MIN_INTERVAL_S = 60.0
# How long past its own timeout a transactional call may still block before it is given up.
HANG_GRACE_S = 10.0


class TransactionAborted(Exception):
    """The open transaction had to be aborted: its outputs are discarded, its inputs re-read."""


class TransactionFatal(Exception):
    """The transactional producer is unusable (fenced or a fatal error): exit for a restart."""


def error_of(exc: KafkaException) -> KafkaError | None:
    arg = exc.args[0] if exc.args else None
    return arg if isinstance(arg, KafkaError) else None


def classify(exc: KafkaException) -> str:
    """'fatal', 'abortable' or 'retriable', in that precedence (librdkafka's definitions)."""
    error = error_of(exc)
    if error is None or error.fatal():
        return "fatal"
    if error.txn_requires_abort():
        return "abortable"
    if error.retriable():
        return "retriable"
    return "fatal"


def bounded(what: str, op: Callable[[], T], limit_s: float) -> T:
    """Run `op` in a helper thread, wait at most `limit_s`; raise TransactionFatal if it has not
    returned by then (the thread is left behind: a blocked librdkafka call cannot be cancelled,
    and its producer is replaced). Its result or exception is passed on."""
    outcome: list[T] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            outcome.append(op())
        except BaseException as exc:  # handed to the caller's thread, which raises it
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name=f"txn-{what}", daemon=True).start()
    if not done.wait(limit_s):
        raise TransactionFatal(
            f"{what}: no answer after {limit_s:.0f} s, past its own timeout (librdkafka hang)"
        )
    if failure:
        raise failure[0]
    return outcome[0]


def call(
    what: str,
    op: Callable[[], T],
    on_retry: Callable[[KafkaError], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    give_up_after_s: float | None = None,
) -> T:
    """Run a transactional call: retry retriable errors, raise the other two classes.

    `should_stop` ends the retries (raising TransactionFatal): a stopping process that cannot
    reach the broker exits, and the restart re-reads whatever was not committed. So does a
    call still retriable after `give_up_after_s`.
    """
    started = time.monotonic()
    while True:
        try:
            return op()
        except KafkaException as exc:
            kind = classify(exc)
            error = error_of(exc)
            text = error.str() if error is not None else str(exc)
            if kind == "fatal":
                raise TransactionFatal(f"{what}: {text}") from exc
            if kind == "abortable":
                raise TransactionAborted(f"{what}: {text}") from exc
            if should_stop is not None and should_stop():
                raise TransactionFatal(f"{what}: {text} (stopping)") from exc
            if give_up_after_s is not None and time.monotonic() - started > give_up_after_s:
                raise TransactionFatal(
                    f"{what}: {text} (still failing after {give_up_after_s:.0f} s)"
                ) from exc
            if on_retry is not None and error is not None:
                on_retry(error)
            time.sleep(RETRY_PAUSE_S)


class Transaction:
    """One producer's transactions, opened on the first output and committed with offsets.

    The caller produces through `producer` only between `ensure_open()` and `commit()`;
    `commit(offsets)` sends the offsets (the next offset to read per partition) with the
    consumer's group metadata and commits. `abort()` discards everything since `ensure_open()`.
    """

    def __init__(
        self,
        producer: Producer,
        consumer: Consumer,
        service: str,
        should_stop: Callable[[], bool] | None = None,
        before_retry: Callable[[], None] | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.producer = producer
        self.consumer = consumer
        self.log = get_logger(service)
        self.should_stop = should_stop
        # e.g. ErrorWatcher.raise_if_fatal: a retriable timeout may hide wrong credentials.
        self.before_retry = before_retry
        # The transaction timeout: retrying a call of a transaction beyond it is pointless.
        self.timeout_s = timeout_s
        self.is_open = False
        self.opened_at = 0.0
        self.commits = 0
        self.aborts = 0
        self._last_retry_log = 0.0

    def _retrying(self, error: KafkaError) -> None:
        self.producer.poll(0)  # serve error_cb
        if self.before_retry is not None:
            self.before_retry()
        now = time.monotonic()
        if now - self._last_retry_log > 30:
            self._last_retry_log = now
            self.log.warning("transactional call failed, retrying", error=error.str())

    def _call(self, what: str, op: Callable[[], T]) -> T:
        return call(what, op, self._retrying, self.should_stop, self.timeout_s)

    @staticmethod
    def _bounded(what: str, op: Callable[[], T], timeout_s: float | None = None) -> Callable[[], T]:
        """`op`, a librdkafka call given `timeout_s` (CALL_TIMEOUT_S), given up HANG_GRACE_S
        after that."""
        return lambda: bounded(what, op, (timeout_s or CALL_TIMEOUT_S) + HANG_GRACE_S)

    def init(self) -> None:
        """Register the transactional.id (fences an older producer with the same id).

        Retried without a bound (a broker still starting), until stopped."""
        call(
            "init_transactions",
            self._bounded(
                "init_transactions",
                lambda: self.producer.init_transactions(INIT_TIMEOUT_S),
                INIT_TIMEOUT_S,
            ),
            self._retrying,
            self.should_stop,
        )

    def ensure_open(self) -> None:
        if not self.is_open:
            self._call("begin_transaction", self.producer.begin_transaction)
            self.is_open = True
            self.opened_at = time.monotonic()
            # A point a fault test can wait for: outputs may now be written uncommitted.
            self.log.debug("transaction open")

    def commit(self, offsets: list[TopicPartition]) -> None:
        """Offsets and outputs in one commit. Raises TransactionAborted / TransactionFatal."""
        if not self.is_open:
            if not offsets:
                return
            self.ensure_open()
        if offsets:
            metadata: Any = self.consumer.consumer_group_metadata()
            self._call(
                "send_offsets_to_transaction",
                self._bounded(
                    "send_offsets_to_transaction",
                    lambda: self.producer.send_offsets_to_transaction(
                        offsets, metadata, CALL_TIMEOUT_S
                    ),
                ),
            )
        self._call(
            "commit_transaction",
            self._bounded(
                "commit_transaction", lambda: self.producer.commit_transaction(CALL_TIMEOUT_S)
            ),
        )
        self.is_open = False
        self.commits += 1

    def abort(self) -> None:
        """Discard the open transaction (its outputs become invisible to read_committed)."""
        self.is_open = False
        self.aborts += 1
        try:
            self._call(
                "abort_transaction",
                self._bounded(
                    "abort_transaction", lambda: self.producer.abort_transaction(CALL_TIMEOUT_S)
                ),
            )
        except TransactionAborted as exc:
            # An abort cannot itself need an abort; librdkafka would call that fatal.
            raise TransactionFatal(str(exc)) from exc


class ProducerRenewal:
    """Replaces a transactional producer that can do nothing more (fenced, a fatal error, a
    call that hangs) with a fresh one from `make` (a new transactional.id, so new coordinator
    lookups). A second time within RENEW_MIN_INTERVAL_S raises TransactionFatal instead: the
    process exits for a restart rather than loop. The caller then rebuilds what used the old
    producer and reads again from where its committed state says."""

    def __init__(self, service: str, metrics: ServiceMetrics, make: Callable[[], Producer]) -> None:
        self.log = get_logger(service)
        self.metrics = metrics
        self.make = make
        self.renewed_at = -RENEW_MIN_INTERVAL_S

    def __call__(self, old: Producer, reason: str) -> Producer:
        now = time.monotonic()
        if now - self.renewed_at < RENEW_MIN_INTERVAL_S:
            raise TransactionFatal(f"{reason} (a fresh producer failed the same way)")
        self.renewed_at = now
        self.log.warning("transactional producer unusable, starting a fresh one", error=reason)
        self.metrics.error("transaction_fatal")
        # Whatever it still holds belongs to a transaction that will never commit. A fenced
        # producer refuses even this (KafkaException _FENCED, seen after a broker restart):
        # best effort, it is dropped either way.
        for release in (old.purge, lambda: old.flush(0)):
            try:
                release()
            except KafkaException as exc:
                self.log.info("old producer not released", error=str(exc))
        return self.make()


def rewind_to_committed(consumer: Consumer, timeout: float = CALL_TIMEOUT_S) -> None:
    """Seek every assigned partition back to the group's committed offset.

    After an abort the consumer's position is ahead of what was committed; reading on from
    there would skip the aborted inputs. A partition without a committed offset goes back to
    the beginning (the workers' `auto.offset.reset` is earliest). Raises TransactionFatal when
    the position cannot be restored: exiting is safe, skipping is not.
    """
    assignment = consumer.assignment()
    if not assignment:
        return
    try:
        committed = consumer.committed(assignment, timeout=timeout)
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
    except KafkaException as exc:
        raise TransactionFatal(f"cannot rewind to the committed offsets: {exc}") from exc

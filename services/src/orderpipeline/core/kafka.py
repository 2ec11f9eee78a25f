"""confluent-kafka client configuration built from settings, and fatal-error detection.

Guarantees encoded here:
- producers are idempotent with `acks=all` (no duplicates or reordering from retries);
- consumers never store an offset themselves (`enable.auto.offset.store=False`): a service
  stores a message's offset only after its output is durably delivered, and librdkafka's
  periodic auto-commit then commits only stored offsets (at-least-once);
- configuration mistakes that retrying cannot fix (bad credentials, TLS trust, authorization)
  become one `KafkaFatalError` instead of an endless loop of retries and log lines.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from orderpipeline.core.config import KafkaSettings
from orderpipeline.core.logging import get_logger

# Errors no retry can fix: the credentials, the CA or the ACLs must change.
FATAL_CODES = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError._SSL,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.GROUP_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
    }
)

_HINTS = {
    KafkaError._AUTHENTICATION: (
        "check KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM"
    ),
    KafkaError.SASL_AUTHENTICATION_FAILED: "check KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD",
    KafkaError._SSL: "check KAFKA_SSL_CA_LOCATION and KAFKA_SECURITY_PROTOCOL",
}


class KafkaFatalError(Exception):
    """A Kafka error that retrying cannot fix. `str()` is one line with a hint."""

    def __init__(self, error: KafkaError | str) -> None:
        if isinstance(error, KafkaError):
            hint = _HINTS.get(error.code(), "check the Kafka settings and ACLs")
            text = f"{error.name()}: {error.str()} ({hint})"
            self.code: int | None = error.code()
        else:
            text, self.code = error, None
        super().__init__(" ".join(text.split()))


def is_fatal(error: KafkaError) -> bool:
    return bool(error.fatal()) or error.code() in FATAL_CODES


def client_config(settings: KafkaSettings, client_id: str) -> dict[str, Any]:
    """Connection and security options shared by producers, consumers and admin clients."""
    conf: dict[str, Any] = {
        "bootstrap.servers": settings.bootstrap_servers,
        "security.protocol": settings.security_protocol,
        "client.id": client_id,
        # librdkafka's log lines go through the JSON logger (see kafka_logger()).
        "logger": kafka_logger(),
    }
    if settings.uses_sasl:
        conf["sasl.mechanism"] = settings.sasl_mechanism
        if settings.sasl_username is not None:
            conf["sasl.username"] = settings.sasl_username
        if settings.sasl_password is not None:
            conf["sasl.password"] = settings.sasl_password.get_secret_value()
    if settings.ssl_ca_location and settings.security_protocol in ("SSL", "SASL_SSL"):
        conf["ssl.ca.location"] = settings.ssl_ca_location
    return conf


def producer_config(settings: KafkaSettings, client_id: str, **overrides: Any) -> dict[str, Any]:
    """An idempotent, acks=all producer that batches (linger) and compresses."""
    conf = client_config(settings, client_id)
    conf.update(
        {
            "enable.idempotence": True,
            "acks": "all",
            # A few ms of batching costs little latency and multiplies throughput.
            "linger.ms": 5,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500_000,
            # While the broker is away, librdkafka buffers up to 1 GB by default: 500k queued
            # orders alone would take a worker near its 256Mi limit. 32 MB is ~0.4 s of orders
            # at full speed (same throughput in `make bench`); BufferError makes callers wait.
            "queue.buffering.max.kbytes": 32_768,
        }
    )
    conf.update(overrides)
    return conf


def transactional_config(settings: KafkaSettings, group_id: str) -> dict[str, Any]:
    """Producer options for exactly-once outputs (core/transactions.py).

    The transactional.id is unique per process, prefixed with the group (so one prefixed ACL
    covers every replica): zombies are fenced by the consumer group's generation sent with
    the offsets (KIP-447), not by reusing an id, and the transaction of a killed process is
    aborted by the broker after `transaction.timeout.ms`.
    """
    return {
        "transactional.id": f"{group_id}-{uuid.uuid4().hex[:12]}",
        "transaction.timeout.ms": settings.transaction_timeout_ms,
    }


def consumer_config(
    settings: KafkaSettings, group_id: str, client_id: str, **overrides: Any
) -> dict[str, Any]:
    """A group consumer that commits only offsets the service stored (see module docstring).

    With transactions the offsets are committed only inside them, never by auto-commit.
    Either way it reads only committed transactions: another service's aborted outputs
    must not count.
    """
    conf = client_config(settings, client_id)
    conf.update(
        {
            "group.id": group_id,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": not settings.transactions,
            "auto.commit.interval.ms": 1000,
            "enable.auto.offset.store": False,
            "enable.partition.eof": False,
            "session.timeout.ms": settings.session_timeout_ms,
            "statistics.interval.ms": 5000,
            # librdkafka prefetches up to 64 MB per consumer by default. 8 MB keeps a fast
            # consumer busy (fraud: as fast as with 16 MB) and its RSS ~20 MB lower (125 MB
            # against 145 MB, under the 150 MB budget with room).
            "queued.max.messages.kbytes": 8192,
            # When that queue is full librdkafka postpones the partition's next fetch by this
            # long (default 1 s). A consumer that drains its queue in well under a second then
            # idles: fraud ran at 120k orders/s with the default and 175-185k with 10 ms.
            "fetch.queue.backoff.ms": 10,
        }
    )
    conf.update(overrides)
    return conf


def kafka_logger() -> logging.Logger:
    """The stdlib logger librdkafka writes to.

    Below DEBUG it stays quiet: every error librdkafka logs also reaches `ErrorWatcher`, which
    logs it once, so a broker outage does not print the same failure from two places.
    """
    logger = logging.getLogger("librdkafka")
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logger.setLevel(logging.CRITICAL + 1)
    else:
        logger.setLevel(logging.DEBUG)
    return logger


class DeliveryFailed(Exception):
    """An output or a dead letter was not delivered (after librdkafka's own retries)."""


class ErrorWatcher:
    """`error_cb` for every client: logs transient errors (rate-limited), remembers fatal ones.

    librdkafka retries transient errors by itself. The worker loop calls `raise_if_fatal()`
    after each poll so an unrecoverable error ends the process with one clear line.
    """

    def __init__(self, service: str, log_every: float = 30.0) -> None:
        self._log = get_logger("kafka").bind(service=service)
        self._lock = threading.Lock()
        self._last_logged: dict[int, float] = {}
        self._log_every = log_every
        self.fatal: KafkaError | None = None

    def __call__(self, error: KafkaError) -> None:
        if is_fatal(error):
            with self._lock:
                if self.fatal is None:
                    self.fatal = error
            return
        now = time.monotonic()
        with self._lock:
            last = self._last_logged.get(error.code())
            if last is not None and now - last < self._log_every:
                return
            self._last_logged[error.code()] = now
        self._log.warning("kafka error, retrying", error=error.str(), code=error.name())

    def raise_if_fatal(self) -> None:
        if self.fatal is not None:
            raise KafkaFatalError(self.fatal)

    def check(self, error: KafkaError) -> None:
        """For errors returned by consume(): raise if fatal, else log (rate-limited)."""
        if is_fatal(error):
            raise KafkaFatalError(error)
        self(error)


def raise_from(exc: KafkaException) -> KafkaFatalError:
    """Wrap a KafkaException raised by a client call as a one-line fatal error."""
    arg = exc.args[0] if exc.args else str(exc)
    return KafkaFatalError(arg if isinstance(arg, KafkaError) else str(arg))


def close_clients(producer: Producer, consumer: Consumer, flush_seconds: float = 10.0) -> None:
    """Deliver what the producer holds, then close the consumer even if that fails.

    Consumer.close() commits the stored offsets and leaves the group at once, so
    partitions move to another member without waiting for a session timeout. A producer in a
    fatal state (fenced) refuses to flush: nothing it holds could be delivered anyway.
    """
    try:
        producer.flush(flush_seconds)
    except KafkaException as exc:
        get_logger("kafka").warning("producer not flushed at close", error=str(exc))
    finally:
        consumer.close()

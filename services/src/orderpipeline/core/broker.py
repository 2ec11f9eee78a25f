"""Waiting for the Kafka broker at start-up: every service that produces does it first."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, KafkaException, Producer

from orderpipeline.core.kafka import ErrorWatcher, raise_from
from orderpipeline.core.logging import get_logger
from orderpipeline.core.runner import ServiceContext


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

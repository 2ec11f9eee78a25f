"""Helpers for the services' integration tests: run a service as a real subprocess, read topics.

Only the broker fixture's documented attributes are used (bootstrap_servers, security_protocol,
sasl_username, sasl_password, ca_file, client_config(), create_topics()).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import (
    Consumer,
    Message,
    Producer,
    TopicPartition,
)

BIN = Path(sys.executable).parent / "orderpipeline"


@dataclass
class Topics:
    """Per-test topic and group names, so tests sharing the session broker never interfere."""

    orders: str
    alerts: str
    payments: str
    dlq: str
    fraud_group: str
    payment_group: str

    @classmethod
    def unique(cls) -> Topics:
        tag = uuid.uuid4().hex[:8]
        return cls(
            f"orders-{tag}",
            f"fraud-alerts-{tag}",
            f"payments-{tag}",
            f"orders-dlq-{tag}",
            f"fraud-group-{tag}",
            f"payments-group-{tag}",
        )

    def env(self) -> dict[str, str]:
        return {
            "ORDERS_TOPIC": self.orders,
            "FRAUD_ALERTS_TOPIC": self.alerts,
            "PAYMENTS_TOPIC": self.payments,
            "DEAD_LETTER_TOPIC": self.dlq,
            "FRAUD_GROUP_ID": self.fraud_group,
            "PAYMENT_GROUP_ID": self.payment_group,
        }

    def create(self, broker: Any) -> None:
        broker.create_topics([self.orders, self.alerts, self.payments, self.dlq], partitions=3)


def broker_env(broker: Any) -> dict[str, str]:
    """The services' environment (docs/contracts.md) for the fixture's broker."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "KAFKA_SECURITY_PROTOCOL": broker.security_protocol,
    }
    if broker.sasl_username:
        env |= {
            "KAFKA_SASL_MECHANISM": "PLAIN",
            "KAFKA_SASL_USERNAME": broker.sasl_username,
            "KAFKA_SASL_PASSWORD": broker.sasl_password,
            "KAFKA_SSL_CA_LOCATION": str(broker.ca_file),
        }
    return env


class Service:
    """`orderpipeline <name>` as a subprocess with its output in a file."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HEALTH_PORT": "0",
            "ORDERPIPELINE_SECRETS_DIR": str(log_dir / "no-secrets"),
            **env,
        }
        self._file = self.log.open("w")
        self.process = subprocess.Popen(
            [str(BIN), name], env=full_env, stdout=self._file, stderr=subprocess.STDOUT
        )

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        finally:
            self._file.flush()

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def output(self) -> str:
        self._file.flush()
        return self.log.read_text()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._file.close()


def start(
    services: list[Service], name: str, broker: Any, topics: Topics, tmp: Path, **env: str
) -> Service:
    """`orderpipeline <name>` against `broker` and `topics`, added to `services` (the fixture
    in conftest.py closes it)."""
    service = Service(name, {**broker_env(broker), **topics.env(), **env}, tmp)
    services.append(service)
    return service


def read_topic(
    broker: Any, topic: str, until: Callable[[list[Message]], bool], timeout: float = 120
) -> list[Message]:
    """Every message of `topic` from the beginning, once `until(messages)` holds or time is up."""
    consumer = Consumer(
        {
            **broker.client_config(),
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # What a downstream reader must set: no record of an aborted or open transaction.
            "isolation.level": "read_committed",
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for msg in consumer.consume(1000, 0.5):
                if msg.error() is None:
                    messages.append(msg)
            if until(messages):
                break
        return messages
    finally:
        consumer.close()


def produce_raw(broker: Any, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
    producer = Producer({**broker.client_config(), "enable.idempotence": True})
    for key, value in items:
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def committed(broker: Any, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition of `topic`.

    Read through a consumer that never subscribes (so it does not join the group):
    librdkafka 2.16's AdminClient.list_consumer_group_offsets can crash the whole
    process while the broker is still loading the group coordinator.
    """
    consumer = Consumer({**broker.client_config(), "group.id": group})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        offsets = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=30)
        return {tp.partition: tp.offset for tp in offsets if tp.offset >= 0}
    finally:
        consumer.close()


def end_offsets(broker: Any, topic: str, isolation: str = "read_committed") -> dict[int, int]:
    """The end offset of each non-empty partition (a group commits nothing for an empty one).

    read_committed: the last stable offset (an open transaction's records are beyond it);
    read_uncommitted: the high watermark, which includes them.
    """
    consumer = Consumer(
        {**broker.client_config(), "group.id": "end-offsets", "isolation.level": isolation}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in partitions
        }
        return {p: end for p, end in ends.items() if end > 0}
    finally:
        consumer.close()


def values(messages: list[Message]) -> list[dict[str, Any]]:
    return [json.loads(m.value() or b"") for m in messages]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")

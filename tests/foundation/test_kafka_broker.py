"""The real Kafka broker: produce and consume, plain and over SASL_SSL."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from devinfra.kafka import KafkaBroker


def _round_trip(broker: KafkaBroker, count: int) -> list[bytes | None]:
    topic = f"smoke-{uuid.uuid4().hex[:8]}"
    broker.create_topics([topic], partitions=1)
    producer = Producer(broker.client_config() | {"enable.idempotence": True, "acks": "all"})
    for i in range(count):
        producer.produce(topic, key=str(i).encode(), value=f"message-{i}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer(
        broker.client_config()
        | {"group.id": topic, "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )
    consumer.subscribe([topic])
    received: list[bytes | None] = []
    try:
        for _ in range(60):
            msg = consumer.poll(1.0)
            if msg is None:
                if len(received) >= count:
                    break
                continue
            assert msg.error() is None, msg.error()
            received.append(msg.value())
    finally:
        consumer.close()
    return received


def test_plaintext_broker_round_trips_messages_in_order(kafka: KafkaBroker) -> None:
    assert _round_trip(kafka, 50) == [f"message-{i}".encode() for i in range(50)]


def test_sasl_ssl_broker_round_trips_messages(kafka_sasl: KafkaBroker) -> None:
    assert kafka_sasl.security_protocol == "SASL_SSL"
    assert _round_trip(kafka_sasl, 10) == [f"message-{i}".encode() for i in range(10)]


def test_sasl_ssl_broker_rejects_a_wrong_password(kafka_sasl: KafkaBroker) -> None:
    errors: list[KafkaError] = []
    producer = Producer(
        kafka_sasl.client_config() | {"sasl.password": "wrong", "error_cb": errors.append}
    )
    # Errors are delivered through poll(); authentication fails within a second.
    for _ in range(20):
        producer.poll(0.5)
        if errors:
            break
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors


def test_sasl_ssl_broker_rejects_plaintext_clients(kafka_sasl: KafkaBroker) -> None:
    admin = AdminClient(
        {"bootstrap.servers": kafka_sasl.bootstrap_servers, "security.protocol": "PLAINTEXT"}
    )
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)

"""BASELINE fraud consumer: one message at a time, auto-commit, dict-based rule."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, Producer


def is_fraud(order: dict[str, Any]) -> bool:
    return bool(order.get("amount", 0) > 300 and order.get("country") not in ["US", "CA"])


def run(
    client_config: dict[str, Any], topic: str, alerts_topic: str, total: int, max_seconds: float
) -> float:
    """Orders/s reading `topic` from the start until `total` messages or `max_seconds`."""
    consumer = Consumer(
        {
            **client_config,
            "group.id": f"baseline-fraud-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,  # commits before the alert is sent: defect 3
        }
    )
    producer = Producer(client_config)
    consumer.subscribe([topic])
    seen, started = 0, None
    deadline = time.perf_counter() + max_seconds + 30
    while seen < total and time.perf_counter() < deadline:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        if started is None:
            started = time.perf_counter()
            deadline = started + max_seconds
        order = json.loads(msg.value() or b"{}")
        if is_fraud(order):
            alert = {
                "order_id": order["order_id"],
                "reason": "HIGH_AMOUNT_RISKY_COUNTRY",
                "amount": order["amount"],
                "country": order["country"],
            }
            producer.produce(alerts_topic, value=json.dumps(alert).encode())
            producer.poll(0)
        seen += 1
    elapsed = time.perf_counter() - (started or time.perf_counter())
    producer.flush(30)
    consumer.close()
    return seen / elapsed if elapsed > 0 else 0.0

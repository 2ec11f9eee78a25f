"""BASELINE producer: generate an order, send it, block until the broker confirms, repeat."""

from __future__ import annotations

import json
import random
import time
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer


def generate_order(order_id: int) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer_id": random.randint(1000, 9999),
        "amount": round(random.uniform(10, 500), 2),
        "currency": "USD",
        "country": random.choice(["US", "CA", "DE", "IN", "GB", "FR", "CN", "BR"]),
        "status": random.choice(["CREATED", "CONFIRMED", "CANCELLED"]),
        "created_at": datetime.now(UTC).replace(tzinfo=None).isoformat() + "Z",
        "source": "order-service",
    }


def run(client_config: dict[str, Any], topic: str, seconds: float) -> float:
    """Orders/s over `seconds` of the original loop (without its SLEEP_SECONDS pause)."""
    producer = Producer({**client_config, "acks": "all", "linger.ms": 10, "retries": 5})
    # Warm-up outside the timed window, as for ours: connecting and the first metadata fetch
    # are not the loop being measured (the topic is created before, too).
    producer.produce(topic, key=b"0", value=json.dumps(generate_order(0)).encode())
    producer.flush(20)
    sent, order_id = 0, 1
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        order = generate_order(order_id)
        producer.produce(topic, key=str(order_id).encode(), value=json.dumps(order).encode())
        producer.flush(20)  # the original's future.get(timeout=20)
        sent += 1
        order_id += 1
    return sent / (time.perf_counter() - started)

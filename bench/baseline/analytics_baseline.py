"""BASELINE analytics consumer: the original design, for comparison only.

A per-message loop with auto-commit, one synchronous `upsert` per order, running totals in
process memory (lost on restart, double-counted on redelivery: defect 2) published to the
analytics topic after every order.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, Producer


def run(
    client_config: dict[str, Any],
    collection: Any,
    topic: str,
    analytics_topic: str,
    total: int,
    max_seconds: float,
) -> float:
    """Orders/s from the first message until `total` orders are stored (or `max_seconds`)."""
    consumer = Consumer(
        {
            **client_config,
            "group.id": f"baseline-analytics-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,  # commits before the upsert: defect 3
        }
    )
    producer = Producer(client_config)
    consumer.subscribe([topic])
    total_sales, order_count = 0.0, 0
    started: float | None = None
    deadline = time.perf_counter() + max_seconds + 30
    try:
        while order_count < total and time.perf_counter() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            if started is None:
                started = time.perf_counter()
                deadline = started + max_seconds
            order = json.loads(msg.value() or b"{}")
            total_sales += float(order.get("amount", 0))
            order_count += 1
            collection.upsert(str(order["order_id"]), order)  # one blocking round trip each
            analytics = {"total_sales": round(total_sales, 2), "order_count": order_count}
            producer.produce(analytics_topic, value=json.dumps(analytics).encode())
            producer.poll(0)
        elapsed = time.perf_counter() - (started or time.perf_counter())
        return order_count / elapsed if elapsed > 0 else 0.0
    finally:
        producer.flush(10)
        consumer.close()

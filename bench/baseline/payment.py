"""BASELINE payment consumer: sleep 100 ms per order, sequentially, then send the payment."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from confluent_kafka import Consumer, Producer


def run(client_config: dict[str, Any], topic: str, payments_topic: str, seconds: float) -> float:
    """Orders/s over `seconds` once the first order arrives."""
    consumer = Consumer(
        {
            **client_config,
            "group.id": f"baseline-payment-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
        }
    )
    producer = Producer(client_config)
    consumer.subscribe([topic])
    done, started = 0, None
    while started is None or time.perf_counter() - started < seconds:
        msg = consumer.poll(1.0)
        if msg is None or msg.error():
            continue
        started = started or time.perf_counter()
        order = json.loads(msg.value() or b"{}")
        time.sleep(0.1)  # simulate 100ms processing time
        payment = {
            "order_id": order["order_id"],
            "status": "PAID",
            "amount": order["amount"],
            "country": order["country"],
            "timestamp": time.time(),
        }
        producer.produce(
            payments_topic, key=str(order["order_id"]).encode(), value=json.dumps(payment).encode()
        )
        producer.poll(0)
        done += 1
    elapsed = time.perf_counter() - (started or time.perf_counter())
    producer.flush(30)
    consumer.close()
    return done / elapsed if elapsed > 0 else 0.0

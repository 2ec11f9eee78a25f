"""The payment handler: simulated work overlaps up to the in-flight bound, in arrival order."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from orderpipeline.core.offsets import Batch
from orderpipeline.core.order import Order
from orderpipeline.payment import PaymentHandler, payment_json


def order(n: int) -> Order:
    return Order(
        order_id=f"ord_{n}",
        customer_id=1,
        amount=10.0 + n,
        currency="USD",
        country="DE",
        status="CREATED",
        created_at=datetime(2026, 11, 27, 3, 40, 0, 123000, tzinfo=UTC),
    )


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def __call__(self, topic: str, key: str, value: bytes, batch: Batch) -> None:
        batch.add()
        self.sent.append((topic, key))


def test_payments_are_emitted_only_after_the_delay_and_in_arrival_order() -> None:
    handler = PaymentHandler("payments", delay_s=0.1, max_in_flight=10)
    batch = Batch([])
    emit = Recorder()
    for n in range(3):
        handler.process(order(n), batch, emit)
    due = handler.next_due()
    assert due is not None
    handler.tick(due - 0.01, emit)
    assert emit.sent == []
    handler.tick(due + 0.2, emit)
    assert emit.sent == [("payments", "ord_0"), ("payments", "ord_1"), ("payments", "ord_2")]
    assert not handler.busy()


def test_capacity_shrinks_with_work_in_flight() -> None:
    handler = PaymentHandler("payments", delay_s=1.0, max_in_flight=2)
    batch = Batch([])
    handler.process(order(1), batch, Recorder())
    assert handler.capacity() == 1
    handler.process(order(2), batch, Recorder())
    assert handler.capacity() == 0


def test_the_batch_keeps_waiting_until_the_payment_itself_is_delivered() -> None:
    handler = PaymentHandler("payments", delay_s=0.0, max_in_flight=2)
    batch = Batch([])
    emit = Recorder()
    handler.process(order(1), batch, emit)
    batch.pending -= 1  # the worker closes the batch
    assert batch.pending == 1  # the scheduled work
    handler.tick(float("inf"), emit)
    assert batch.pending == 1  # now the emitted payment's delivery
    assert not batch.done


def test_the_payment_record_has_the_documented_fields() -> None:
    record = json.loads(payment_json(order(1), "2026-11-27T03:40:01.000Z"))
    assert record == {
        "order_id": "ord_1",
        "status": "PAID",
        "amount": 11.0,
        "country": "DE",
        "currency": "USD",
        "paid_at": "2026-11-27T03:40:01.000Z",
    }

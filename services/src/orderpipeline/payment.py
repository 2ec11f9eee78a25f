"""Payment service: reads every order (group `payments-group`), simulates the payment work and
publishes a `Payment` (core/payment.py: order_id, status PAID, amount, country, currency,
paid_at) to `payments`, keyed by order_id.

The original slept 100 ms per order in its consume loop, capping a replica at 10 orders/s.
Here the work of up to PAYMENT_MAX_IN_FLIGHT orders overlaps: each order waits on a timer
(standing in for an asynchronous call to a payment provider) while the loop keeps consuming.
Offsets are stored only below the lowest order whose payment is not yet delivered
(core/offsets.py), so a crash redoes unfinished payments instead of losing them.
"""

from __future__ import annotations

import time
from collections import deque

from pydantic import Field

from orderpipeline.core.config import WorkerSettings
from orderpipeline.core.offsets import Batch
from orderpipeline.core.order import Order, utc_now
from orderpipeline.core.payment import Payment
from orderpipeline.core.runner import ServiceContext, run_service
from orderpipeline.core.worker import ConsumerWorker, Emit


class PaymentSettings(WorkerSettings):
    group_id: str = Field("payments-group", min_length=1, validation_alias="PAYMENT_GROUP_ID")
    processing_delay_ms: float = Field(
        100.0, ge=0, le=600_000, validation_alias="PAYMENT_PROCESSING_DELAY_MS"
    )
    max_in_flight: int = Field(1000, ge=1, le=1_000_000, validation_alias="PAYMENT_MAX_IN_FLIGHT")


def payment_json(order: Order, paid_at: str) -> bytes:
    """The payment record of `order` (core/payment.py, the model analytics parses it with)."""
    return Payment.of(order, paid_at).to_json()


class PaymentHandler:
    """Schedules each order's simulated work and emits its payment when the work is done
    (the worker's Handler and Scheduler)."""

    def __init__(self, payments_topic: str, delay_s: float, max_in_flight: int) -> None:
        self.payments_topic = payments_topic
        self.delay_s = delay_s
        self.max_in_flight = max_in_flight
        # Every order waits the same delay, so due times are increasing in arrival order and a
        # FIFO is a correct (O(1)) timer queue.
        self._queue: deque[tuple[float, Order, Batch]] = deque()

    def process(self, order: Order, batch: Batch, emit: Emit) -> None:
        batch.add()  # the batch waits for this payment
        self._queue.append((time.monotonic() + self.delay_s, order, batch))

    def capacity(self) -> int:
        return self.max_in_flight - len(self._queue)

    def next_due(self) -> float | None:
        return self._queue[0][0] if self._queue else None

    def tick(self, now: float, emit: Emit) -> None:
        queue = self._queue
        if not queue or queue[0][0] > now:
            return
        paid_at = utc_now()
        topic = self.payments_topic
        while queue and queue[0][0] <= now:
            _, order, batch = queue.popleft()
            emit(topic, order.order_id, payment_json(order, paid_at), batch)
            batch.release()

    def busy(self) -> bool:
        return bool(self._queue)

    def forget(self) -> None:
        self._queue.clear()


def _main(settings: PaymentSettings, ctx: ServiceContext) -> int:
    handler = PaymentHandler(
        settings.payments_topic, settings.processing_delay_ms / 1000.0, settings.max_in_flight
    )
    return ConsumerWorker(settings, ctx, settings.group_id, handler, scheduler=handler).run()


def run() -> int:
    """Entry point of `orderpipeline payment`."""
    return run_service("payment", PaymentSettings, _main)

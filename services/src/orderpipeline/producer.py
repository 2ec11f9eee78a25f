"""Producer service: publishes generated orders to `orders`, keyed by order_id.

Unlike the original (a blocking `future.get()` per order, ids restarting at 1), sends are
asynchronous with delivery callbacks, the producer is idempotent with acks=all, ids are
unique across restarts and replicas, and SIGTERM flushes what is queued before exiting.
Rate: PRODUCER_RATE orders/s (0 = as fast as possible); the original SLEEP_SECONDS still works
(rate = 1 / SLEEP_SECONDS). PRODUCER_COUNT stops after that many orders.
"""

from __future__ import annotations

import json
import random
import time
from typing import Annotated, Any

from confluent_kafka import KafkaError, Message, Producer
from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from orderpipeline.core.broker import wait_for_broker
from orderpipeline.core.config import WorkerSettings
from orderpipeline.core.exit_codes import EXIT_FAILURE, EXIT_OK
from orderpipeline.core.kafka import ErrorWatcher, producer_config
from orderpipeline.core.logging import get_logger
from orderpipeline.core.order import OrderIdGenerator, utc_now
from orderpipeline.core.runner import ServiceContext, run_service

CHUNK = 5000  # orders queued between two polls of delivery reports when running flat out


def _split(value: object) -> object:
    if isinstance(value, str):
        return tuple(v.strip().upper() for v in value.split(",") if v.strip())
    return value


class ProducerSettings(WorkerSettings):
    rate: float = Field(10.0, ge=0, allow_inf_nan=False, validation_alias="PRODUCER_RATE")
    # The original's knob; used only when PRODUCER_RATE is not set.
    sleep_seconds: float | None = Field(
        None, ge=0, allow_inf_nan=False, validation_alias="SLEEP_SECONDS"
    )
    count: int | None = Field(None, ge=0, validation_alias="PRODUCER_COUNT")
    countries: Annotated[tuple[str, ...], NoDecode] = Field(
        ("US", "CA", "DE", "IN", "GB", "FR", "CN", "BR"),
        min_length=1,
        validation_alias="PRODUCER_COUNTRIES",
    )
    statuses: Annotated[tuple[str, ...], NoDecode] = Field(
        ("CREATED", "CONFIRMED", "CANCELLED"), min_length=1, validation_alias="PRODUCER_STATUSES"
    )
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$", validation_alias="PRODUCER_CURRENCY")
    min_amount: float = Field(
        10.0, ge=0, allow_inf_nan=False, validation_alias="PRODUCER_MIN_AMOUNT"
    )
    max_amount: float = Field(
        500.0, ge=0, allow_inf_nan=False, validation_alias="PRODUCER_MAX_AMOUNT"
    )
    source: str = Field(
        "order-service", min_length=1, max_length=128, validation_alias="PRODUCER_SOURCE"
    )

    _split_lists = field_validator("countries", "statuses", mode="before")(_split)

    @field_validator("countries")
    @classmethod
    def _country_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for code in value:
            if len(code) != 2 or not code.isalpha() or not code.isascii():
                raise ValueError(f"not a two-letter country code: {code!r}")
        return value

    @field_validator("statuses")
    @classmethod
    def _status_names(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for status in value:
            if len(status) > 32 or not status.replace("_", "").isalnum() or not status.isascii():
                raise ValueError(f"not a status name: {status!r}")
        return value

    @model_validator(mode="after")
    def _amounts(self) -> ProducerSettings:
        if self.min_amount > self.max_amount:
            raise ValueError("PRODUCER_MIN_AMOUNT is above PRODUCER_MAX_AMOUNT")
        return self

    @property
    def effective_rate(self) -> float:
        """Orders per second; 0 means as fast as possible."""
        if "rate" not in self.model_fields_set and self.sleep_seconds is not None:
            return 0.0 if self.sleep_seconds == 0 else 1.0 / self.sleep_seconds
        return self.rate


class OrderFactory:
    """Generates random orders as (key, JSON value) like the original producer did.

    Writes the JSON directly: every string in it is an id or a value validated in the
    settings, so no escaping is needed, and this is the producer's hot path.
    """

    def __init__(self, settings: ProducerSettings, seed: int | None = None) -> None:
        self._random = random.Random(seed).random
        self._countries = settings.countries
        self._statuses = settings.statuses
        self._low = settings.min_amount
        self._span = settings.max_amount - settings.min_amount
        self._ids = OrderIdGenerator()
        self._tail = (
            f',"currency":"{settings.currency}","country":"%s","status":"%s",'
            f'"created_at":"%s","source":{json.dumps(settings.source)}}}'
        )
        self._ms = -1
        self._now = ""

    def _created_at(self) -> str:
        ms = time.time_ns() // 1_000_000
        if ms != self._ms:
            self._ms, self._now = ms, utc_now()
        return self._now

    def __call__(self) -> tuple[bytes, bytes]:
        rnd = self._random
        order_id = self._ids()
        amount = round(self._low + self._span * rnd(), 2)
        value = (
            f'{{"order_id":"{order_id}","customer_id":{1000 + int(rnd() * 9000)},'
            f'"amount":{amount!r}'
            + self._tail
            % (
                self._countries[int(rnd() * len(self._countries))],
                self._statuses[int(rnd() * len(self._statuses))],
                self._created_at(),
            )
        )
        return order_id.encode(), value.encode()


class DeliveryStats:
    """Counts delivery reports; the producer's `on_delivery` callback."""

    def __init__(self, ctx: ServiceContext, topic: str) -> None:
        self.delivered = 0
        self.failed = 0
        self._published = 0
        self._counter = ctx.metrics
        self._topic = topic
        self._log = get_logger(ctx.name)
        self._last_error_log = 0.0

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:
        if err is None:
            self.delivered += 1
            return
        self.failed += 1
        self._counter.error("delivery")
        now = time.monotonic()
        if now - self._last_error_log > 10:
            self._last_error_log = now
            self._log.error("order not delivered", error=err.str(), failed_so_far=self.failed)

    def publish(self) -> None:
        """Move the delivered count into the Prometheus counter (cheaper than per message)."""
        if self.delivered:
            self._counter.produced(self._topic, self.delivered)
            self._published += self.delivered
            self.delivered = 0

    @property
    def total_delivered(self) -> int:
        return self._published + self.delivered


def _due(rate: float, started: float, sent: int, now: float) -> int:
    """How many orders are due at `now` to keep `rate` since `started`."""
    return int((now - started) * rate) + 1 - sent


def produce_orders(
    settings: ProducerSettings, ctx: ServiceContext, producer: Producer, stats: DeliveryStats
) -> int:
    """The producing loop; returns how many orders were queued."""
    make = OrderFactory(settings)
    produce: Any = producer.produce
    topic, rate, count = settings.orders_topic, settings.effective_rate, settings.count
    sent, started = 0, time.monotonic()
    while not ctx.stop.is_set() and (count is None or sent < count):
        ctx.health.beat()
        if rate > 0:
            now = time.monotonic()
            due = _due(rate, started, sent, now)
            if due <= 0:
                producer.poll(min(0.5, (sent - (now - started) * rate) / rate))
                stats.publish()
                continue
            if due > rate + CHUNK:
                # More than a second behind (broker slow, process paused): do not burst to
                # catch up, carry on at the rate from here.
                started = now - sent / rate
                due = 1
        else:
            due = CHUNK
        if count is not None:
            due = min(due, count - sent)
        for _ in range(min(due, CHUNK)):
            key, value = make()
            while True:
                try:
                    produce(topic, value=value, key=key, on_delivery=stats)
                    break
                except BufferError:
                    producer.poll(0.05)
            sent += 1
        producer.poll(0)
        stats.publish()
    return sent


def _main(settings: ProducerSettings, ctx: ServiceContext) -> int:
    log = get_logger(ctx.name)
    watcher = ErrorWatcher(ctx.name)
    producer = Producer(producer_config(settings, "producer", error_cb=watcher))
    if not wait_for_broker(producer, watcher, ctx, settings.orders_topic):
        return EXIT_OK
    ctx.health.set_ready(True)
    stats = DeliveryStats(ctx, settings.orders_topic)
    log.info(
        "producing", topic=settings.orders_topic, rate=settings.effective_rate, count=settings.count
    )
    sent = 0
    try:
        sent = produce_orders(settings, ctx, producer, stats)
    finally:
        # SIGTERM or count reached: deliver what is queued before exiting.
        left = producer.flush(30)
        stats.publish()
    watcher.raise_if_fatal()
    log.info(
        "flushed",
        queued=sent,
        delivered=stats.total_delivered,
        failed=stats.failed,
        undelivered=left,
    )
    return EXIT_FAILURE if stats.failed or left else EXIT_OK


def run() -> int:
    """Entry point of `orderpipeline producer`."""
    return run_service("producer", ProducerSettings, _main)

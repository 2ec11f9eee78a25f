"""Dead letters: a message that is not a valid order goes to DEAD_LETTER_TOPIC, unchanged.

The value and key are the original bytes; headers say why and where it came from, so an
operator can inspect, fix and replay it. The consumer then moves on: one bad message never
stops a service. Its offset is stored only once the dead letter itself is delivered.
"""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from orderpipeline.core.metrics import ServiceMetrics
from orderpipeline.core.offsets import DeliveryCallback, Output

REASON_HEADER = "x-dead-letter-reason"
SERVICE_HEADER = "x-dead-letter-service"
TOPIC_HEADER = "x-original-topic"
PARTITION_HEADER = "x-original-partition"
OFFSET_HEADER = "x-original-offset"


def dead_letter_headers(
    reason: str, service: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """The headers of a dead letter (all UTF-8 text)."""
    return [
        (REASON_HEADER, reason.encode()),
        (SERVICE_HEADER, service.encode()),
        (TOPIC_HEADER, topic.encode()),
        (PARTITION_HEADER, str(partition).encode()),
        (OFFSET_HEADER, str(offset).encode()),
    ]


def headers_dict(message: Message) -> dict[str, str]:
    """A dead letter's headers as text, for tests and tooling."""
    result: dict[str, str] = {}
    headers: Any = message.headers() or []
    for key, value in headers:
        result[key] = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return result


class DeadLetters:
    """Sends invalid messages to the dead-letter topic and counts them when delivered."""

    def __init__(
        self, producer: Producer, topic: str, service: str, metrics: ServiceMetrics
    ) -> None:
        self._producer = producer
        self.topic = topic
        self._service = service
        self._metrics = metrics

    def output(self, message: Message, reason: str, on_delivery: DeliveryCallback) -> Output:
        """The dead letter of `message` (value and key unchanged), to produce later."""
        headers = dead_letter_headers(
            reason,
            self._service,
            message.topic() or "",
            message.partition() or 0,
            message.offset() or 0,
        )
        counter = self._metrics.dead_lettered

        def delivered(err: KafkaError | None, msg: Message) -> None:
            if err is None:
                counter.inc()
            on_delivery(err, msg)

        return Output(self.topic, message.key(), message.value(), delivered, headers)

    def send(self, message: Message, reason: str, on_delivery: DeliveryCallback) -> None:
        """Produce `message` (value and key unchanged) with `reason`; `on_delivery` as usual."""
        produce_output(self._producer, self.output(message, reason, on_delivery))


def produce_output(producer: Producer, output: Output) -> None:
    """Produce one held output; BufferError (local queue full) is the caller's to handle."""
    produce: Any = producer.produce
    produce(
        output.topic,
        value=output.value,
        key=output.key,
        headers=output.headers,
        on_delivery=output.on_delivery,
    )

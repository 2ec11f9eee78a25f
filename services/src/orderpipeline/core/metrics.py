"""Prometheus metrics every worker exposes on `/metrics` (see health.py).

All series carry a `service` label. `ServiceMetrics` binds that label once, because
`labels()` lookups cost more than the increment itself on a hot path.
"""

from __future__ import annotations

import json
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter(
    "orderpipeline_messages_consumed", "Messages read from Kafka", ["service", "topic"]
)
PRODUCED = Counter(
    "orderpipeline_messages_produced",
    "Messages whose delivery the broker confirmed",
    ["service", "topic"],
)
ERRORS = Counter("orderpipeline_errors", "Errors by kind", ["service", "kind"])
DEAD_LETTERED = Counter(
    "orderpipeline_dead_lettered", "Invalid messages sent to the dead-letter topic", ["service"]
)
LAG = Gauge(
    "orderpipeline_consumer_lag",
    "Messages between the committed position and the end of the partition",
    ["service", "topic", "partition"],
)
IN_FLIGHT = Gauge(
    "orderpipeline_in_flight", "Messages consumed whose output is not yet durable", ["service"]
)
PROCESSING_SECONDS = Histogram(
    "orderpipeline_processing_seconds",
    "From consuming a batch of messages to their outputs being durably delivered",
    ["service"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


class ServiceMetrics:
    """The metric children of one service, labels bound once."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.errors_by_kind: dict[str, Counter] = {}
        self.dead_lettered = DEAD_LETTERED.labels(service)
        self.in_flight = IN_FLIGHT.labels(service)
        self.processing_seconds = PROCESSING_SECONDS.labels(service)
        self._consumed: dict[str, Counter] = {}
        self._produced: dict[str, Counter] = {}

    def consumed(self, topic: str, count: int = 1) -> None:
        child = self._consumed.get(topic)
        if child is None:
            child = self._consumed[topic] = CONSUMED.labels(self.service, topic)
        child.inc(count)

    def produced(self, topic: str, count: int = 1) -> None:
        child = self._produced.get(topic)
        if child is None:
            child = self._produced[topic] = PRODUCED.labels(self.service, topic)
        child.inc(count)

    def error(self, kind: str) -> None:
        child = self.errors_by_kind.get(kind)
        if child is None:
            child = self.errors_by_kind[kind] = ERRORS.labels(self.service, kind)
        child.inc()

    def record_librdkafka_stats(self, stats_json: str) -> None:
        """`stats_cb` for a consumer: publish per-partition consumer lag."""
        stats: dict[str, Any] = json.loads(stats_json)
        for topic, topic_stats in stats.get("topics", {}).items():
            for partition, p in topic_stats.get("partitions", {}).items():
                lag = p.get("consumer_lag_stored", p.get("consumer_lag", -1))
                if partition == "-1" or lag is None or lag < 0:
                    continue
                LAG.labels(self.service, topic, partition).set(lag)

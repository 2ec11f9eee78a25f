"""Helpers for the analytics and backend integration tests: orders, topics, a service subprocess,
and the aggregates computed independently of the service's own code."""

from __future__ import annotations

import ctypes
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from orderpipeline.core.order import Order, new_order_id

BIN = Path(sys.executable).parent / "orderpipeline"
COUNTRIES = ["US", "CA", "DE", "FR", "IN", "BR"]
STATUSES = ["CREATED", "PAID", "SHIPPED"]


@dataclass(frozen=True)
class Topics:
    """Per-test names so tests sharing the session broker never see each other's data."""

    orders: str
    payments: str
    analytics: str
    dlq: str
    group: str

    @classmethod
    def unique(cls) -> Topics:
        tag = uuid.uuid4().hex[:8]
        return cls(
            f"orders-{tag}", f"payments-{tag}", f"analytics-{tag}", f"dlq-{tag}", f"ag-{tag}"
        )

    def create(self, broker: Any) -> None:
        broker.create_topics([self.orders, self.payments, self.analytics, self.dlq], partitions=3)

    def env(self) -> dict[str, str]:
        return {
            "ORDERS_TOPIC": self.orders,
            "PAYMENTS_TOPIC": self.payments,
            "ANALYTICS_TOPIC": self.analytics,
            "DEAD_LETTER_TOPIC": self.dlq,
            "ANALYTICS_GROUP_ID": self.group,
        }


def make_orders(count: int, seed: int = 7) -> list[Order]:
    """Orders spread over the last 90 minutes, about a quarter of them over the fraud limit."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    return [
        Order(
            order_id=new_order_id(),
            customer_id=rng.randint(1, 10_000),
            amount=rng.randint(100, 50_000) / 100,
            currency="USD",
            country=rng.choice(COUNTRIES),
            status=rng.choice(STATUSES),
            created_at=now - timedelta(seconds=rng.randint(0, 90 * 60)),
            source="test",
        )
        for _ in range(count)
    ]


def produce(broker: Any, topic: str, items: list[tuple[bytes | None, bytes]]) -> None:
    producer = Producer({**broker.client_config(), "linger.ms": 5})
    for key, value in items:
        producer.produce(topic, key=key, value=value)
        producer.poll(0)
    assert producer.flush(30) == 0


def produce_orders(broker: Any, topic: str, orders: list[Order]) -> None:
    produce(broker, topic, [(o.order_id.encode(), o.to_json()) for o in orders])


def end_offsets(broker: Any, topic: str, partitions: int = 3) -> dict[int, int]:
    from confluent_kafka import Consumer

    # read_committed: the end is the last stable offset (nothing of an open transaction).
    consumer = Consumer(
        {
            **broker.client_config(),
            "group.id": f"probe-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
        }
    )
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()


def read_committed(broker: Any, topic: str, partitions: int = 3) -> list[Message]:
    """Every record of `topic` a read_committed reader sees, up to the last stable offset.

    Read until the position (which moves past transaction markers) reaches the end: with
    transactional writers the last offset of a partition is a marker, not a record.
    """
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            **broker.client_config(),
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in tps}
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        found: list[Message] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found += [m for m in consumer.consume(1000, 0.2) if m.error() is None]
            at = {tp.partition: tp.offset for tp in consumer.position(tps)}
            if all(end == 0 or at[p] >= end for p, end in ends.items()):
                return found
        raise AssertionError(f"could not read {topic} to its end {ends}")
    finally:
        consumer.close()


def reset_group_offsets(broker: Any, group: str, topics: list[str], partitions: int = 3) -> None:
    """Set the group's committed offsets to 0: Kafka would deliver everything again."""
    from confluent_kafka import ConsumerGroupTopicPartitions

    admin = AdminClient(broker.client_config())
    tps = [TopicPartition(t, p, 0) for t in topics for p in range(partitions)]
    futures = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, tps)])
    for future in futures.values():
        future.result(timeout=30)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: a crashed test run leaves no service behind.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


class ServiceProcess:
    """`orderpipeline <name>` as a real subprocess, output in a file."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        # Port 0: the kernel picks a free port as the server binds. A port chosen here first
        # could be taken by another process before the service binds it (seen: the service
        # exited "address already in use" while the test waited on its /metrics).
        self._port: int | None = None
        self._log_start = 0
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HEALTH_PORT": "0",
            "ORDERPIPELINE_SECRETS_DIR": str(log_dir / "no-secrets"),
            "LOG_LEVEL": "INFO",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self._port = None
        self._log_start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [str(BIN), self.name],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM and wait; the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(30)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    @property
    def health_port(self) -> int:
        """The port this run's health server listens on, from its `started` log line."""
        if self._port is None:
            self._port = self.wait_started()
        return self._port

    def wait_started(self, timeout: float = 60.0) -> int:
        """Wait for this run's `started` line (signal handlers installed, health server up);
        its health port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.log.open("rb") as log:
                log.seek(self._log_start)
                for line in log.read().decode(errors="replace").splitlines():
                    if '"health_port"' in line:
                        return int(json.loads(line)["health_port"])
            if not self.alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"{self.name} did not open its health port:\n{self.output()[-2000:]}")

    def metric(self, name: str) -> float:
        """The sum of the /metrics samples whose name and labels start with `name`, e.g.
        `orderpipeline_errors_total{kind="couchbase"` (0 when there are none)."""
        url = f"http://127.0.0.1:{self.health_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )


# --- the expected aggregates, computed without the service's code ------------------------------


def is_fraud(order: Order) -> bool:
    """The documented rule with its defaults: amount > 300 and a country other than US/CA."""
    return order.amount > 300 and order.country not in ("US", "CA")


def exact(amount: float) -> Decimal:
    return Decimal(str(amount))


def expected_totals(orders: list[Order], paid_order_ids: set[str]) -> dict[str, Any]:
    """What `/api/analytics` must report for these orders (per_minute left aside)."""
    sales = sum((exact(o.amount) for o in orders), Decimal(0))
    by_country: dict[str, list[Any]] = {}
    for o in orders:
        row = by_country.setdefault(o.country, [0, Decimal(0)])
        row[0] += 1
        row[1] += exact(o.amount)
    newest = sorted(orders, key=lambda o: (o.created_at, o.order_id), reverse=True)
    return {
        "orders": len(orders),
        "sales": float(sales),
        "fraud_alerts": sum(1 for o in orders if is_fraud(o)),
        "payments": len(paid_order_ids),
        "by_country": {c: (n, float(s)) for c, (n, s) in by_country.items()},
        "by_status": dict(Counter(o.status for o in orders)),
        "latest_ids": [o.order_id for o in newest],
        "alert_ids": [o.order_id for o in newest if is_fraud(o)],
    }


def expected_minutes(orders: list[Order], now: datetime) -> dict[str, tuple[int, float]]:
    """Orders and sales per UTC minute for the 60 minutes up to `now`'s minute."""
    current = now.replace(second=0, microsecond=0)
    window = {(current - timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:00Z") for i in range(60)}
    rows: dict[str, list[Any]] = {}
    for o in orders:
        key = o.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:00Z")
        if key in window:
            row = rows.setdefault(key, [0, Decimal(0)])
            row[0] += 1
            row[1] += exact(o.amount)
    return {k: (n, float(s)) for k, (n, s) in rows.items()}


def payment_record(order: Order) -> bytes:
    record = {"order_id": order.order_id, "status": "PAID", "amount": order.amount}
    return json.dumps(record).encode()


def assert_analytics_exact(
    body: dict[str, Any], orders: list[Order], paid: set[str], now: datetime
) -> None:
    """Every figure of an `/api/analytics` body equals the independent computation."""
    want = expected_totals(orders, paid)
    totals = body["totals"]
    assert totals["orders"] == want["orders"]
    assert totals["sales"] == want["sales"]
    assert totals["fraud_alerts"] == want["fraud_alerts"]
    assert totals["payments"] == want["payments"]
    assert {r["country"]: (r["orders"], r["sales"]) for r in body["by_country"]} == want[
        "by_country"
    ]
    assert {r["status"]: r["orders"] for r in body["by_status"]} == want["by_status"]
    assert [o["order_id"] for o in body["orders"]] == want["latest_ids"][:50]
    assert [a["order_id"] for a in body["latest_fraud_alerts"]] == want["alert_ids"][:50]
    minutes = {r["minute"]: (r["orders"], r["sales"]) for r in body["per_minute"] if r["orders"]}
    assert minutes == expected_minutes(orders, now)
    assert len(body["per_minute"]) == 60


def read_view(collection: Any, now: datetime) -> dict[str, Any]:
    """The analytics as the backend would serve them, straight from the stored documents."""
    from orderpipeline.backend.view import analytics_view, latest_alerts, latest_orders
    from orderpipeline.core.aggregate import LATEST_ALERTS, LATEST_ORDERS, merge
    from orderpipeline.core.aggregate_store import AnalyticsStore

    aggregates, _ = AnalyticsStore(collection).read_all()
    total = merge(aggregates.values())
    orders, alerts = latest_orders(total, LATEST_ORDERS), latest_alerts(total, LATEST_ALERTS)
    return analytics_view(total, now, orders, alerts).model_dump(mode="json")

"""The fault scenarios' machinery, shared by tests/chaos (small sizes) and bench/chaos.py (full
sizes): the real services as subprocesses, the faults, and a report computed independently of
the services' code from what Kafka and Couchbase hold.

Nothing here imports the services' aggregate code: the expected figures are recomputed from
the orders read back from the `orders` topic, with Decimal arithmetic on the JSON text.

Accounting is by order id, never by counts: *produced* is the set of order ids the broker
acknowledged, read back from `orders` (read_committed, as every reader here); *lost* is the set
of those without their Couchbase document; duplicates are counted per output topic.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from tests.analytics.helpers import ServiceProcess

PARTITIONS = 3
# The fraud rule's documented defaults (docs/services.md), restated here on purpose.
FRAUD_THRESHOLD = Decimal(300)
TRUSTED = {"US", "CA"}
PARTITION_DOC = "analytics::partition::{topic}::{partition}"


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition`; a poll that raises (a broker or Couchbase still recovering from the
    fault) counts as not yet, and the last error is named on timeout."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception as exc:
            last_error = f" (last error: {type(exc).__name__}: {exc})"
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{last_error}")


class Proc(ServiceProcess):
    """A service process that keeps count across restarts: how often it was started, every
    exit code, and its JSON log events."""

    def __init__(self, service: str, env: dict[str, str], workdir: Path) -> None:
        super().__init__(service, env, workdir)
        self.starts = 0
        self.exit_codes: list[int] = []

    def start(self) -> Proc:
        super().start()
        self.starts += 1
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def signal(self, sig: signal.Signals) -> None:
        """SIGSTOP / SIGCONT: freeze and resume (a zombie, or a moment held for a fault)."""
        os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL: no chance to flush, commit or leave the group."""
        super().kill()
        assert self.process is not None and self.process.returncode is not None
        self.exit_codes.append(self.process.returncode)

    def stop(self, timeout: float = 60) -> int:
        code = super().stop(timeout)
        self.exit_codes.append(code)
        return code

    def log_events(self, event: str) -> list[dict[str, Any]]:
        """The JSON log lines whose `event` is `event`."""
        found = []
        for line in self.output().splitlines():
            if f'"{event}"' in line:
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if record.get("event") == event:
                        found.append(record)
        return found


def http_get(port: int, path: str, timeout: float = 10) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body)
        except ValueError:
            return exc.code, {"raw": body.decode(errors="replace")}


@dataclass(frozen=True)
class Names:
    """Per-scenario topics and groups, so scenarios sharing a broker never see each other."""

    orders: str
    alerts: str
    payments: str
    analytics: str
    dlq: str
    fraud_group: str
    payment_group: str
    analytics_group: str

    @classmethod
    def unique(cls) -> Names:
        t = uuid.uuid4().hex[:8]
        return cls(
            f"orders-{t}",
            f"fraud-alerts-{t}",
            f"payments-{t}",
            f"order-analytics-{t}",
            f"orders-dlq-{t}",
            f"fraud-group-{t}",
            f"payments-group-{t}",
            f"analytics-group-{t}",
        )

    def env(self) -> dict[str, str]:
        return {
            "ORDERS_TOPIC": self.orders,
            "FRAUD_ALERTS_TOPIC": self.alerts,
            "PAYMENTS_TOPIC": self.payments,
            "ANALYTICS_TOPIC": self.analytics,
            "DEAD_LETTER_TOPIC": self.dlq,
            "FRAUD_GROUP_ID": self.fraud_group,
            "PAYMENT_GROUP_ID": self.payment_group,
            "ANALYTICS_GROUP_ID": self.analytics_group,
        }


# Fast failover: a SIGKILLed member's partitions move after 6 s (the broker's minimum) instead
# of 45 s; short simulated payment work; a Couchbase outage noticed within a second.
FAST = {
    "KAFKA_TRANSACTIONS": "true",
    "KAFKA_SESSION_TIMEOUT_MS": "6000",
    "ANALYTICS_SESSION_TIMEOUT_MS": "6000",
    "PAYMENT_PROCESSING_DELAY_MS": "5",
    "COUCHBASE_KV_TIMEOUT_SECONDS": "1",
}


class Pipeline:
    """The services of one scenario against one broker and one Couchbase (gocaves) cluster."""

    def __init__(self, broker: Any, couchbase: Any, workdir: Path) -> None:
        self.broker = broker
        self.couchbase = couchbase
        self.workdir = workdir
        self.names = Names.unique()
        self.procs: list[Proc] = []
        self.producers: list[Proc] = []
        broker.create_topics(
            [
                self.names.orders,
                self.names.alerts,
                self.names.payments,
                self.names.analytics,
                self.names.dlq,
            ],
            partitions=PARTITIONS,
        )

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **self.broker.service_env(),
            **self.couchbase.service_env(),
            **self.names.env(),
            **FAST,
            **extra,
        }

    def start(self, service: str, **extra: str) -> Proc:
        proc = Proc(service, self.env(**extra), self.workdir).start()
        self.procs.append(proc)
        return proc

    def start_consumers(self) -> dict[str, Proc]:
        return {name: self.start(name) for name in ("fraud", "payment", "analytics")}

    def start_producer(self, count: int | None, rate: float) -> Proc:
        extra = {"PRODUCER_RATE": str(rate)}
        if count is not None:
            extra["PRODUCER_COUNT"] = str(count)
        proc = self.start("producer", **extra)
        self.producers.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            proc.close()

    # --- what the producers say they delivered (a cross-check only) ---------------------------

    def reported(self) -> int | None:
        """Orders the producers report as delivered (their `flushed` log line at exit); None
        when a producer never wrote it (SIGKILLed). The report's `produced` does not use this:
        it is the set of order ids read back from Kafka."""
        total = 0
        for proc in self.producers:
            lines = proc.log_events("flushed")
            if not lines:
                return None
            total += sum(int(line["delivered"]) for line in lines)
        return total

    def wait_producers(self, timeout: float) -> None:
        for proc in self.producers:
            assert proc.process is not None
            code = proc.process.wait(timeout)
            assert code == 0, f"producer exited {code}: {proc.output()[-2000:]}"


# --- reading Kafka ------------------------------------------------------------------------------


def reader_config(broker: Any) -> dict[str, Any]:
    """What every reader here sets, as a downstream reader must: read_committed (no record of
    an open or aborted transaction)."""
    return {
        **broker.client_config(),
        "group.id": f"reader-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
    }


def end_offsets(broker: Any, topic: str, isolation: str = "read_committed") -> dict[int, int]:
    """Per partition: the last stable offset (read_committed) or the high watermark."""
    consumer = Consumer({**reader_config(broker), "isolation.level": isolation})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(PARTITIONS)
        }
    finally:
        consumer.close()


def committed(broker: Any, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition of `topic` (-1001: none yet).

    Asked through a consumer of the group that never subscribes (so it does not join it): the
    AdminClient's list_consumer_group_offsets crashes librdkafka 2.16 (SIGSEGV in
    rd_kafka_cgrp_op) when the coordinator answers COORDINATOR_LOAD_IN_PROGRESS.
    """
    consumer = Consumer({**broker.client_config(), "group.id": group, "enable.auto.commit": False})
    try:
        found = consumer.committed(
            [TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=10
        )
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def open_transaction(broker: Any, topic: str) -> bool:
    """Records beyond the last stable offset of some partition: a transaction is open."""
    stable = end_offsets(broker, topic, "read_committed")
    high = end_offsets(broker, topic, "read_uncommitted")
    return any(end > stable.get(p, 0) for p, end in high.items())


def group_done(broker: Any, group: str, topic: str) -> bool:
    """The group has committed the end of every non-empty partition of `topic`."""
    ends = end_offsets(broker, topic)
    done = committed(broker, group, topic)
    return all(done.get(p, -1) >= end for p, end in ends.items() if end > 0)


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def read_records(broker: Any, topic: str, starts: dict[int, int] | None = None) -> list[Record]:
    """Every committed record of `topic` (from `starts`, default 0) up to its stable end.

    Stops on the consumer's position, not on a record's offset: the position moves past
    transaction markers and aborted records, which a read_committed reader never receives.
    """
    ends = end_offsets(broker, topic)
    starts = starts or {}
    todo = {p: end for p, end in ends.items() if end > starts.get(p, 0)}
    consumer = Consumer(reader_config(broker))
    out: list[Record] = []
    try:
        consumer.assign([TopicPartition(topic, p, starts.get(p, 0)) for p in todo])
        deadline = time.monotonic() + 120
        while todo and time.monotonic() < deadline:
            for msg in consumer.consume(5000, 0.2):
                if msg.error() is None and (msg.offset() or 0) < todo.get(msg.partition() or 0, 0):
                    out.append(
                        Record(
                            msg.partition() or 0, msg.offset() or 0, msg.key(), msg.value() or b""
                        )
                    )
            for tp in consumer.position([TopicPartition(topic, p) for p in list(todo)]):
                if tp.offset >= todo[tp.partition]:
                    del todo[tp.partition]
        assert not todo, f"could not read {topic} to its end: {todo}"
        return out
    finally:
        consumer.close()


def read_values(broker: Any, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every committed (key, value) of `topic` up to its stable end."""
    return [(r.key, r.value) for r in read_records(broker, topic)]


def record_ends(broker: Any, topic: str, tail: int = 64) -> dict[int, int]:
    """Per partition: the offset after its last committed record (0 if none).

    A consumer that has read everything reaches this, not the end offset: with transactional
    writers the last offsets of a partition are markers (or aborted records). Reads only the
    tail, and the whole partition when the tail holds no committed record.
    """
    ends = end_offsets(broker, topic)
    found: dict[int, int] = {}
    for p, end in ends.items():
        if end == 0:
            found[p] = 0
            continue
        for start in (max(0, end - tail), 0):
            records = [r for r in read_records(broker, topic, {p: start}) if r.partition == p]
            if records or start == 0:
                found[p] = records[-1].offset + 1 if records else 0
                break
    return found


def ids_of(values: list[tuple[bytes | None, bytes]]) -> Counter[str]:
    return Counter(str(json.loads(v)["order_id"]) for _, v in values)


# --- reading Couchbase --------------------------------------------------------------------------


@contextlib.contextmanager
def collection_of(couchbase: Any) -> Iterator[Any]:
    cluster = couchbase.connect()
    try:
        yield cluster.bucket(couchbase.bucket).default_collection()
    finally:
        cluster.close()


def stored_ids(collection: Any, ids: list[str]) -> set[str]:
    """Which of `ids` have an order document."""
    found: set[str] = set()
    for i in range(0, len(ids), 1000):
        chunk = ids[i : i + 1000]
        result = collection.get_multi(chunk, return_exceptions=True)
        found.update(result.results)
    return found


def partition_docs(collection: Any, names: Names) -> list[dict[str, Any]]:
    keys = [
        PARTITION_DOC.format(topic=t, partition=p)
        for t in (names.orders, names.payments)
        for p in range(PARTITIONS)
    ]
    result = collection.get_multi(keys, return_exceptions=True, timeout=timedelta(seconds=10))
    return [r.content_as[dict] for r in result.results.values()]


def analytics_done(broker: Any, collection: Any, names: Names) -> bool:
    """Every partition document has reached the end of its partition."""
    reached = {
        (d["topic"], d["partition"]): int(d["next_offset"])
        for d in partition_docs(collection, names)
    }
    for topic in (names.orders, names.payments):
        for p, end in record_ends(broker, topic).items():
            if end > 0 and reached.get((topic, p), 0) < end:
                return False
    return True


# --- the report ---------------------------------------------------------------------------------


@dataclass
class Report:
    """One scenario's figures (a row of docs/reliability.md)."""

    scenario: str
    produced: int = 0  # distinct order ids acknowledged by the broker (read back from `orders`)
    producer_reported: int | None = None  # the producers' own count (None: SIGKILLed)
    in_kafka: int = 0  # messages on `orders`
    in_kafka_twice: int = 0  # an order_id on `orders` more than once
    stored: int = 0  # acknowledged order ids with their Couchbase document
    lost: int = 0  # acknowledged order ids without their document (set difference)
    lost_ids: list[str] = field(default_factory=list)  # the first few, to look them up
    counted: int = 0  # orders in the analytics aggregates
    counted_twice: int = 0  # counted minus distinct stored, when positive
    aggregates_exact: bool = False
    mismatches: list[str] = field(default_factory=list)
    alerts_expected: int = 0
    alerts_seen: int = 0  # distinct order_ids on fraud-alerts
    alerts_duplicates: int = 0  # extra alert records (documented: at-least-once, same key)
    alerts_unexpected: int = 0  # alerts for orders the rule does not flag
    payments_expected: int = 0
    payments_seen: int = 0
    payments_duplicates: int = 0
    payments_unexpected: int = 0
    totals_records: int = 0  # running totals on `order-analytics`
    totals_duplicates: int = 0  # identical totals records beyond the first
    transactions: bool = True  # exactly-once outputs: every duplicate count must be 0
    faults: str = ""
    seconds: float = 0.0

    def duplicates_ok(self) -> bool:
        return not self.transactions or (
            self.alerts_duplicates == 0
            and self.payments_duplicates == 0
            and self.totals_duplicates == 0
        )

    def ok(self) -> bool:
        return (
            self.duplicates_ok()
            and self.lost == 0
            and self.counted_twice == 0
            and self.in_kafka_twice == 0
            and self.aggregates_exact
            and self.alerts_seen == self.alerts_expected
            and self.alerts_unexpected == 0
            and self.payments_seen == self.payments_expected
            and self.payments_unexpected == 0
            and self.stored == self.produced
        )

    def line(self) -> str:
        return (
            f"{self.scenario}: produced={self.produced} stored={self.stored} lost={self.lost} "
            f"counted_twice={self.counted_twice} exact={self.aggregates_exact} "
            f"alerts={self.alerts_seen}/{self.alerts_expected} (+{self.alerts_duplicates} dup) "
            f"payments={self.payments_seen}/{self.payments_expected} "
            f"(+{self.payments_duplicates} dup) totals={self.totals_records} "
            f"(+{self.totals_duplicates} dup) faults=[{self.faults}]"
            + (f" lost_ids={self.lost_ids}" if self.lost_ids else "")
            + (f" mismatches={self.mismatches}" if self.mismatches else "")
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _money(text_amount: Any) -> Decimal:
    return Decimal(str(text_amount))


def expected_aggregates(orders: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals, per country/status/minute, from the orders themselves (amounts parsed as
    Decimal from the JSON text, so the sums are exact)."""
    by_country: dict[str, list[Any]] = {}
    by_status: Counter[str] = Counter()
    per_minute: dict[str, list[Any]] = {}
    sales = Decimal(0)
    alerts = 0
    for o in orders:
        amount = _money(o["amount"])
        sales += amount
        row = by_country.setdefault(o["country"], [0, Decimal(0)])
        row[0] += 1
        row[1] += amount
        by_status[o["status"]] += 1
        minute = str(o["created_at"])[:16] + ":00Z"
        cell = per_minute.setdefault(minute, [0, Decimal(0)])
        cell[0] += 1
        cell[1] += amount
        if amount > FRAUD_THRESHOLD and o["country"] not in TRUSTED:
            alerts += 1
    return {
        "orders": len(orders),
        "sales": sales,
        "fraud_alerts": alerts,
        "by_country": {k: (n, s) for k, (n, s) in by_country.items()},
        "by_status": dict(by_status),
        "per_minute": {k: (n, s) for k, (n, s) in per_minute.items()},
    }


def stored_aggregates(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The same figures summed over the stored partition documents."""
    orders_docs = [d for d in docs if "orders" in d]
    by_country: dict[str, list[Any]] = {}
    by_status: Counter[str] = Counter()
    per_minute: dict[str, list[Any]] = {}
    for d in orders_docs:
        for k, b in d["by_country"].items():
            row = by_country.setdefault(k, [0, Decimal(0)])
            row[0] += int(b["orders"])
            row[1] += Decimal(str(b["sales"]))
        for k, n in d["by_status"].items():
            by_status[k] += int(n)
        for k, b in d["per_minute"].items():
            cell = per_minute.setdefault(k, [0, Decimal(0)])
            cell[0] += int(b["orders"])
            cell[1] += Decimal(str(b["sales"]))
    return {
        "orders": sum(int(d["orders"]) for d in orders_docs),
        "sales": sum((Decimal(str(d["sales"])) for d in orders_docs), Decimal(0)),
        "fraud_alerts": sum(int(d["fraud_alerts"]) for d in orders_docs),
        "payments": sum(int(d["payments"]) for d in orders_docs),
        "by_country": {k: (n, s) for k, (n, s) in by_country.items() if n},
        "by_status": {k: n for k, n in by_status.items() if n},
        "per_minute": {k: (n, s) for k, (n, s) in per_minute.items() if n},
    }


def wait_processed(pipeline: Pipeline, timeout: float) -> None:
    """Until fraud and payment have committed the end of `orders` and analytics has applied
    every order and payment."""
    broker, names = pipeline.broker, pipeline.names
    with collection_of(pipeline.couchbase) as collection:
        wait_until(
            lambda: (
                group_done(broker, names.fraud_group, names.orders)
                and group_done(broker, names.payment_group, names.orders)
            ),
            timeout,
            "fraud and payment to commit every order",
        )
        # A killed process's transaction stays open until the broker aborts it (after
        # KAFKA_TRANSACTION_TIMEOUT_MS); until then read_committed readers stop before it.
        outputs = (names.alerts, names.payments)
        wait_until(
            lambda: not any(open_transaction(broker, topic) for topic in outputs),
            timeout,
            "every transaction on the output topics to be resolved",
        )
        wait_until(
            lambda: analytics_done(broker, collection, names),
            timeout,
            "analytics to apply every order and payment",
        )


def build_report(pipeline: Pipeline, scenario: str, faults: str, seconds: float) -> Report:
    """The figures of a finished scenario, from Kafka and Couchbase only."""
    broker, names = pipeline.broker, pipeline.names
    report = Report(scenario, faults=faults, seconds=round(seconds, 1))
    report.transactions = pipeline.env().get("KAFKA_TRANSACTIONS", "true") == "true"
    report.producer_reported = pipeline.reported()
    raw_orders = read_values(broker, names.orders)
    report.in_kafka = len(raw_orders)
    order_counts = ids_of(raw_orders)
    report.in_kafka_twice = sum(n - 1 for n in order_counts.values())
    first: dict[str, dict[str, Any]] = {}
    for _, value in raw_orders:
        order = json.loads(value)
        first.setdefault(str(order["order_id"]), order)
    orders = list(first.values())
    produced = set(first)
    report.produced = len(produced)
    with collection_of(pipeline.couchbase) as collection:
        stored_set = stored_ids(collection, list(first))
        stored = stored_aggregates(partition_docs(collection, names))
    lost = sorted(produced - stored_set)
    report.stored = len(produced & stored_set)
    report.lost = len(lost)
    report.lost_ids = lost[:10]
    report.counted = stored["orders"]
    report.counted_twice = max(0, report.counted - report.stored)

    expected = expected_aggregates(orders)
    alerts = ids_of(read_values(broker, names.alerts))
    payments = ids_of(read_values(broker, names.payments))
    expected["payments"] = len(payments)
    report.mismatches = [
        f"{key}: stored {stored[key]!r} != expected {expected[key]!r}"
        if key in ("orders", "sales", "fraud_alerts", "payments")
        else f"{key} differs"
        for key in expected
        if stored[key] != expected[key]
    ]
    report.aggregates_exact = not report.mismatches

    fraud_ids = {
        o["order_id"]
        for o in orders
        if _money(o["amount"]) > FRAUD_THRESHOLD and o["country"] not in TRUSTED
    }
    report.alerts_expected = len(fraud_ids)
    report.alerts_seen = len(set(alerts) & fraud_ids)
    report.alerts_duplicates = sum(alerts.values()) - len(alerts)
    report.alerts_unexpected = len(set(alerts) - fraud_ids)
    report.payments_expected = len(first)
    report.payments_seen = len(set(payments) & set(first))
    report.payments_duplicates = sum(payments.values()) - len(payments)
    report.payments_unexpected = len(set(payments) - set(first))
    totals = Counter(value for _, value in read_values(broker, names.analytics))
    report.totals_records = sum(totals.values())
    report.totals_duplicates = report.totals_records - len(totals)
    return report

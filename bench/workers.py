"""Throughput and memory of the real producer, fraud and payment processes, each next to its
baseline (bench/baseline/).

Each service runs as `orderpipeline <service>` exactly as deployed. Its rate is read from its
own Prometheus counters (polled every 50 ms) between the first and the last counted message,
so process start-up and group joining are not counted, for ours nor for the baselines.

Fraud and payment run in both modes on the same input: with Kafka transactions (the default,
exactly once) and with `KAFKA_TRANSACTIONS=false` (at least once), so the transactions' cost is
read off one run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from bench.baseline import fraud as baseline_fraud
from bench.baseline import payment as baseline_payment
from bench.baseline import producer as baseline_producer
from bench.common import BenchEnv, Figure, rss_mb, summarize

BIN = Path(sys.executable).parent / "orderpipeline"


@dataclass
class Run:
    rate: float
    peak_rss_mb: float


def _metric(port: int, name: str, label: str | None = None) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (label is None or label in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _health_port(log: Path, process: subprocess.Popen[bytes], timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if '"health_port"' in line:
                return int(json.loads(line)["health_port"])
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"service did not start:\n{log.read_text()[-2000:]}")


def _log_time(log: Path, event: str) -> float:
    for line in log.read_text().splitlines():
        if f'"event": "{event}"' in line:
            stamp = json.loads(line)["timestamp"].replace("Z", "+00:00")
            return datetime.fromisoformat(stamp).timestamp()
    raise RuntimeError(f"no {event!r} in {log}")


def run_producer(env: BenchEnv, total: int, **overrides: str) -> Run:
    """Run the producer for `total` orders; rate from its own log (first send to flushed)."""
    log = env.workdir / f"producer-{uuid.uuid4().hex[:6]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN), "producer"],
            env=env.service_env(PRODUCER_RATE="0", PRODUCER_COUNT=str(total), **overrides),
            stdout=out,
            stderr=out,
        )
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, rss_mb(process.pid))
        time.sleep(0.05)
    if process.returncode != 0:
        raise RuntimeError(f"producer failed:\n{log.read_text()[-2000:]}")
    elapsed = _log_time(log, "flushed") - _log_time(log, "producing")
    return Run(total / elapsed, peak)


def run_service(
    env: BenchEnv, service: str, counter: str, label: str, total: int, **overrides: str
) -> Run:
    """Start `service`, wait until `counter{label}` reaches `total`, stop it; rate and RSS."""
    log = env.workdir / f"{service}-{uuid.uuid4().hex[:6]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN), service], env=env.service_env(**overrides), stdout=out, stderr=out
        )
    try:
        port = _health_port(log, process)
        first: tuple[float, float] | None = None
        peak = 0.0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            now, count = time.perf_counter(), _metric(port, counter, label)
            peak = max(peak, rss_mb(process.pid))
            if first is None and count > 0:
                first = (now, count)
            if count >= total:
                break
            if process.poll() is not None:
                raise RuntimeError(f"{service} exited early:\n{log.read_text()[-2000:]}")
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{service} did not finish in time")
        assert first is not None
        elapsed = now - first[0]
        rate = (count - first[1]) / elapsed if elapsed > 0 else float("nan")
        return Run(rate, peak)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def _warm_up(env: BenchEnv, topic: str, count: int) -> None:
    """Read `topic` once, so the first measured consumer does not pay for a cold broker
    (measured: the first of several identical consumers was up to 25% slower)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**env.kafka_client_config, "group.id": f"warm-{uuid.uuid4().hex[:6]}"})
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
        seen, deadline = 0, time.monotonic() + 60
        while seen < count and time.monotonic() < deadline:
            seen += len(consumer.consume(10_000, 0.5))
    finally:
        consumer.close()


def _warm_up_coordinators(env: BenchEnv) -> None:
    """Have the broker create its internal topics before anything is timed.

    The first transactional producer and the first committing group on a fresh broker make it
    create `__transaction_state` and `__consumer_offsets` (50 partitions each): measured, the
    first transactional fraud run paid 1-2 s of broker CPU for that, which the baselines
    (no transactions) never pay. One transaction and one group commit here, untimed.
    """
    from confluent_kafka import Consumer, Producer, TopicPartition

    warm = f"bench-warm-{uuid.uuid4().hex[:6]}"
    _create_topics(env, [warm], partitions=1)
    producer = Producer({**env.kafka_client_config, "transactional.id": warm})
    producer.init_transactions(60)
    producer.begin_transaction()
    producer.produce(warm, value=b"warm")
    producer.commit_transaction(60)
    consumer = Consumer({**env.kafka_client_config, "group.id": warm})
    try:
        consumer.commit(offsets=[TopicPartition(warm, 0, 1)], asynchronous=False)
    finally:
        consumer.close()


def _create_topics(env: BenchEnv, names: list[str], partitions: int = 3) -> None:
    admin = AdminClient(env.kafka_client_config)
    for future in admin.create_topics([NewTopic(n, partitions, 1) for n in names]).values():
        future.result(60)


def measure(env: BenchEnv, quick: bool) -> list[Figure]:
    runs = 1 if quick else 3
    orders = 100_000 if quick else 300_000
    payments = 10_000 if quick else 30_000
    producer_runs: list[Run] = []
    fraud_runs: list[Run] = []
    payment_runs: list[Run] = []
    fraud_alo: list[Run] = []
    payment_alo: list[Run] = []
    base_producer: list[float] = []
    base_fraud: list[float] = []
    base_payment: list[float] = []
    _warm_up_coordinators(env)
    for i in range(runs):
        tag = f"{i}-{uuid.uuid4().hex[:6]}"
        topic, small = f"bench-orders-{tag}", f"bench-orders-small-{tag}"
        outputs = {
            "FRAUD_ALERTS_TOPIC": f"bench-alerts-{tag}",
            "PAYMENTS_TOPIC": f"bench-payments-{tag}",
            "DEAD_LETTER_TOPIC": f"bench-dlq-{tag}",
        }
        baseline_topic = f"bench-baseline-{tag}"
        _create_topics(env, [topic, small, baseline_topic, *outputs.values()])
        print(f"  run {i + 1}/{runs}: producer ({orders} orders)", flush=True)
        producer_runs.append(
            run_producer(env, orders, ORDERS_TOPIC=topic)
        )  # fmt: skip
        _warm_up(env, topic, orders)
        for mode, runs_of_mode in (("true", fraud_runs), ("false", fraud_alo)):
            print(f"  fraud (KAFKA_TRANSACTIONS={mode})", flush=True)
            runs_of_mode.append(
                run_service(
                    env, "fraud", "orderpipeline_messages_consumed_total", "", orders,
                    ORDERS_TOPIC=topic, FRAUD_GROUP_ID=f"bench-fraud-{mode}-{tag}",
                    KAFKA_TRANSACTIONS=mode, **outputs,
                )
            )  # fmt: skip
        run_producer(env, payments, ORDERS_TOPIC=small)
        for mode, runs_of_mode in (("true", payment_runs), ("false", payment_alo)):
            print(f"  payment ({payments} orders, 100 ms each, transactions {mode})", flush=True)
            runs_of_mode.append(
                run_service(
                    env, "payment", "orderpipeline_messages_produced_total", "payments", payments,
                    ORDERS_TOPIC=small, PAYMENT_GROUP_ID=f"bench-payment-{mode}-{tag}",
                    PAYMENT_PROCESSING_DELAY_MS="100", KAFKA_TRANSACTIONS=mode, **outputs,
                )
            )  # fmt: skip
        print("  baselines", flush=True)
        conf = env.kafka_client_config
        base_producer.append(baseline_producer.run(conf, baseline_topic, 3.0))
        base_fraud.append(
            baseline_fraud.run(conf, topic, outputs["FRAUD_ALERTS_TOPIC"], orders, 10.0)
        )
        base_payment.append(
            baseline_payment.run(conf, small, outputs["PAYMENTS_TOPIC"], 2.0 if quick else 3.0)
        )
    rss = {
        "producer": [r.peak_rss_mb for r in producer_runs],
        "fraud": [r.peak_rss_mb for r in fraud_runs],
        "payment": [r.peak_rss_mb for r in payment_runs],
    }
    return [
        summarize(
            "producer orders/s (acks=all, idempotent)", "orders/s",
            [r.rate for r in producer_runs], base_producer,
            ">= 100000 and >= 20x baseline",
            lambda v, b: v >= 100_000 and b is not None and v >= 20 * b,
        ),
        summarize(
            "fraud consumer orders/s, transactions (exactly once)", "orders/s",
            [r.rate for r in fraud_runs], base_fraud,
            ">= 50000 and >= baseline (issue 11)",
            lambda v, b: v >= 50_000 and b is not None and v >= b,
        ),
        summarize(
            "fraud consumer orders/s, KAFKA_TRANSACTIONS=false (at least once)", "orders/s",
            [r.rate for r in fraud_alo], base_fraud, ">= 50000", lambda v, b: v >= 50_000,
        ),
        summarize(
            "payment orders/s, 1 replica, 100 ms simulated work, transactions", "orders/s",
            [r.rate for r in payment_runs], base_payment, ">= 1000", lambda v, b: v >= 1000,
        ),
        summarize(
            "payment orders/s, 1 replica, 100 ms simulated work, KAFKA_TRANSACTIONS=false",
            "orders/s", [r.rate for r in payment_alo], base_payment, ">= 1000",
            lambda v, b: v >= 1000,
        ),
        *(
            summarize(
                f"RSS per worker process: {name}", "MB", values, None, "< 150",
                lambda v, b: v < 150,
            )
            for name, values in rss.items()
        ),
    ]  # fmt: skip

"""The fault scenarios, parameterised by size: tests/chaos runs them small, bench/chaos.py at
the issue's full size. Each returns a `Report` (harness.py) and never asserts: the caller
decides, so a failing run still prints and records its figures."""

from __future__ import annotations

import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from .harness import (
    Pipeline,
    Proc,
    Report,
    build_report,
    collection_of,
    committed,
    http_get,
    open_transaction,
    partition_docs,
    stored_aggregates,
    wait_processed,
    wait_until,
)


@dataclass(frozen=True)
class Size:
    orders: int
    rate: float  # orders/s from the producer
    kills: int = 2  # per consumer (consumer scenario) or broker kills
    outage_s: float = 10.0  # Couchbase pause
    broker_down_s: float = 3.0
    settle_s: float = 180.0  # how long processing may take after the faults
    seed: int = 1


def _finish(pipeline: Pipeline, name: str, faults: str, started: float, size: Size) -> Report:
    pipeline.wait_producers(timeout=size.orders / size.rate + size.settle_s)
    try:
        wait_processed(pipeline, size.settle_s)
    except AssertionError as exc:
        faults += f"; NOT FINISHED: {exc}"
    return build_report(pipeline, name, faults, time.monotonic() - started)


def broker_kill(broker: Any, couchbase: Any, workdir: Path, size: Size) -> Report:
    """SIGKILL the (scenario's own) broker while orders flow, restart it on the same data."""
    pipeline = Pipeline(broker, couchbase, workdir)
    started = time.monotonic()
    try:
        pipeline.start_consumers()
        # Without a count, stopped below: a producer that finished its burst while the broker
        # was still restarting (30 s and more on a loaded machine) exited 1 with orders
        # undelivered after its 30 s flush, failing a scenario about the consumers.
        producer = pipeline.start_producer(None, size.rate)
        duration = size.orders / size.rate
        downs: list[float] = []
        names = pipeline.names
        for i in range(size.kills):
            # Spread the kills over the first two thirds of the production, but never before
            # fraud and payment commit: a broker lost by consumers that never joined (a slow
            # start on a loaded machine) tests nothing of their recovery.
            target = started + duration * (i + 1) / (size.kills + 1.5)
            time.sleep(max(0.0, target - time.monotonic()))
            wait_until(
                lambda: all(
                    max(committed(broker, group, names.orders).values()) > 0
                    for group in (names.fraud_group, names.payment_group)
                ),
                120,
                "fraud and payment to commit before the broker is killed",
            )
            broker.kill()
            down = time.monotonic()
            time.sleep(size.broker_down_s)
            broker.start()
            downs.append(time.monotonic() - down)
        # The burst's time is over and the broker is back: SIGTERM flushes what is queued.
        time.sleep(max(0.0, started + duration - time.monotonic()))
        producer.stop()
        faults = f"broker SIGKILL x{size.kills}, down {', '.join(f'{d:.0f}' for d in downs)} s"
        return _finish(pipeline, "broker SIGKILL + restart", faults, started, size)
    finally:
        pipeline.close()


def consumer_kills(broker: Any, couchbase: Any, workdir: Path, size: Size) -> Report:
    """SIGKILL fraud, payment and analytics at random moments, each `size.kills` times,
    restarting each at once (what a Deployment does)."""
    pipeline = Pipeline(broker, couchbase, workdir)
    rng = random.Random(size.seed)
    started = time.monotonic()
    try:
        consumers = pipeline.start_consumers()
        pipeline.start_producer(size.orders, size.rate)
        duration = size.orders / size.rate
        events = sorted(
            (rng.uniform(1.0, duration + 2.0), name)
            for name in consumers
            for _ in range(size.kills)
        )
        for at, name in events:
            time.sleep(max(0.0, started + at - time.monotonic()))
            proc = consumers[name]
            proc.kill()
            proc.start()
        faults = f"SIGKILL x{size.kills} each of fraud, payment, analytics at random moments"
        return _finish(pipeline, "consumers SIGKILLed", faults, started, size)
    finally:
        pipeline.close()


@dataclass
class OutageLog:
    """What was observed while Couchbase was paused."""

    readyz: set[int] = field(default_factory=set)
    api: set[int] = field(default_factory=set)
    api_detail: str = ""
    readyz_detail: str = ""
    analytics_pids: set[int] = field(default_factory=set)
    committed_moved: bool = False
    backoff_lines: int = 0
    errors_metric: float = 0.0


def couchbase_outage(
    broker: Any, gocaves: Any, couchbase: Any, workdir: Path, size: Size
) -> tuple[Report, OutageLog, dict[str, Any]]:
    """SIGSTOP the (scenario's own) gocaves for `size.outage_s` while orders flow."""
    pipeline = Pipeline(broker, couchbase, workdir)
    started = time.monotonic()
    seen = OutageLog()
    after: dict[str, Any] = {}
    try:
        consumers = pipeline.start_consumers()
        analytics = consumers["analytics"]
        backend = pipeline.start("backend", BACKEND_PORT=str(port := _free()))
        wait_until(lambda: http_get(port, "/readyz")[0] == 200, 60, "the backend to be ready")
        pipeline.start_producer(size.orders, size.rate)
        with collection_of(couchbase) as collection:
            wait_until(
                lambda: stored_aggregates(partition_docs(collection, pipeline.names))["orders"] > 0,
                60,
                "analytics to store the first orders",
            )
        backoffs_before = len(analytics.log_events("couchbase unavailable, backing off"))
        gocaves.pause()
        paused = time.monotonic()
        baseline: dict[int, int] | None = None
        try:
            while time.monotonic() - paused < size.outage_s:
                ready, ready_body = http_get(port, "/readyz")
                seen.readyz.add(ready)
                if ready == 503:
                    seen.readyz_detail = str(ready_body.get("detail", ""))
                status, body = http_get(port, "/api/analytics")
                seen.api.add(status)
                if status == 503:
                    seen.api_detail = str(body.get("detail", ""))
                assert analytics.process is not None
                if analytics.alive():
                    seen.analytics_pids.add(analytics.pid)
                else:
                    seen.analytics_pids.add(-1)
                # Offsets stored before the pause may still be committed in the first
                # auto-commit interval (1 s); from then on nothing may move.
                if baseline is None and time.monotonic() - paused > 2.5:
                    baseline = committed(
                        broker, pipeline.names.analytics_group, pipeline.names.orders
                    )
                time.sleep(0.5)
            end = committed(broker, pipeline.names.analytics_group, pipeline.names.orders)
            seen.committed_moved = baseline is not None and end != baseline
            seen.errors_metric = analytics.metric('orderpipeline_errors_total{kind="couchbase"')
        finally:
            gocaves.resume()
        seen.backoff_lines = (
            len(analytics.log_events("couchbase unavailable, backing off")) - backoffs_before
        )
        resumed = time.monotonic()
        wait_until(lambda: http_get(port, "/readyz")[0] == 200, 60, "readyz after the outage")
        after["readyz_back_s"] = round(time.monotonic() - resumed, 1)
        wait_until(lambda: http_get(port, "/api/analytics")[0] == 200, 60, "the API after it")
        after["api_back_s"] = round(time.monotonic() - resumed, 1)
        faults = (
            f"gocaves SIGSTOP {size.outage_s:.0f} s; analytics retries {seen.backoff_lines}, "
            f"restarts {analytics.starts - 1}; backend /readyz {sorted(seen.readyz)}, "
            f"/api {sorted(seen.api)}, ready again after {after['readyz_back_s']} s"
        )
        report = _finish(pipeline, "Couchbase paused", faults, started, size)
        after["analytics_alive"] = analytics.alive()
        after["analytics_starts"] = analytics.starts
        after["backend_alive"] = backend.alive()
        final = http_get(port, "/api/analytics")
        after["api_orders"] = final[1].get("totals", {}).get("orders") if final[0] == 200 else None
        return report, seen, after
    finally:
        pipeline.close()


def rebalance(broker: Any, couchbase: Any, workdir: Path, size: Size) -> tuple[Report, list[int]]:
    """Analytics scaled 1 -> 3 -> 1 (SIGTERM, as a scale-down does) while orders flow."""
    pipeline = Pipeline(broker, couchbase, workdir)
    started = time.monotonic()
    try:
        pipeline.start_consumers()
        pipeline.start_producer(size.orders, size.rate)
        duration = size.orders / size.rate
        time.sleep(duration / 4)
        extra = [pipeline.start("analytics"), pipeline.start("analytics")]
        time.sleep(duration / 3)
        codes = [_stop_in_thread(p) for p in extra]
        exit_codes = [t.result() for t in codes]
        faults = f"analytics 1 -> 3 -> 1 (scale-down by SIGTERM, exit codes {exit_codes})"
        return _finish(pipeline, "analytics rebalance 1->3->1", faults, started, size), exit_codes
    finally:
        pipeline.close()


def producer_sigterm(broker: Any, couchbase: Any, workdir: Path, size: Size) -> tuple[Report, int]:
    """SIGTERM the producer mid-stream: what it acknowledged is in Kafka, once."""
    pipeline = Pipeline(broker, couchbase, workdir)
    started = time.monotonic()
    try:
        producer = pipeline.start_producer(None, size.rate)
        wait_until(
            lambda: producer.metric("orderpipeline_messages_produced_total") >= size.orders,
            size.orders / size.rate + 60,
            f"{size.orders} acknowledged orders",
        )
        code = producer.stop()
        report = build_producer_report(pipeline, time.monotonic() - started)
        report.faults = f"producer SIGTERM mid-stream at {size.rate:.0f}/s, exit code {code}"
        return report, code
    finally:
        pipeline.close()


def build_producer_report(pipeline: Pipeline, seconds: float) -> Report:
    """Kafka-only figures: what the producer says it delivered vs. the ids on the topic (no
    consumers run here)."""
    from .harness import ids_of, read_values

    report = Report("producer SIGTERM", seconds=round(seconds, 1))
    values = read_values(pipeline.broker, pipeline.names.orders)
    ids = ids_of(values)
    report.produced = len(ids)
    report.producer_reported = pipeline.reported()
    report.in_kafka = len(values)
    report.in_kafka_twice = sum(n - 1 for n in ids.values())
    report.stored = len(ids)  # "stored" = distinct orders in Kafka for this scenario
    report.lost = max(0, (report.producer_reported or 0) - len(ids))
    report.aggregates_exact = True  # nothing aggregated in this scenario
    report.counted = -1
    return report


def producer_sigkill(broker: Any, couchbase: Any, workdir: Path, size: Size) -> Report:
    """SIGKILL the producer mid-burst (no flush, no last log line), then a new producer
    finishes the run. Every order the broker acknowledged (read back from `orders`) must be
    stored once; orders the killed producer had queued but not sent are simply not there."""
    pipeline = Pipeline(broker, couchbase, workdir)
    started = time.monotonic()
    try:
        pipeline.start_consumers()
        first = pipeline.start("producer", PRODUCER_RATE=str(size.rate))
        half = size.orders // 2
        wait_until(
            lambda: first.metric("orderpipeline_messages_produced_total") >= half,
            half / size.rate + 60,
            f"{half} acknowledged orders",
        )
        acked_before = int(first.metric("orderpipeline_messages_produced_total"))
        first.kill()
        pipeline.start_producer(size.orders - half, size.rate)
        faults = (
            f"producer SIGKILL after >= {acked_before} acknowledged (its own metric), "
            "a new producer for the rest"
        )
        return _finish(pipeline, "producer SIGKILL mid-burst", faults, started, size)
    finally:
        pipeline.close()


def freeze_in_transaction(
    proc: Proc, broker: Any, topic: str, feed: Proc, deadline_s: float = 300.0
) -> None:
    """SIGSTOP `proc` at a moment one of its transactions is open on `topic`, checked while it
    is frozen (the moment is held, not hoped for).

    `feed` is a producer without a count: it keeps orders coming until the moment is held (then
    it is stopped, SIGTERM), so a consumer that had already finished a finite burst (a loaded
    machine) still opens transactions. Fails after `deadline_s` saying what was tried.
    """
    deadline = time.monotonic() + deadline_s
    frozen = 0
    last_error = ""
    try:
        while time.monotonic() < deadline:
            assert feed.alive(), f"the feeding producer exited: {feed.output()[-1500:]}"
            try:
                is_open = open_transaction(broker, topic)
            except KafkaException as exc:  # a slow answer on a loaded machine: ask again
                last_error, is_open = str(exc), False
            if not is_open:
                time.sleep(0.25)
                continue
            proc.signal(signal.SIGSTOP)
            frozen += 1
            time.sleep(0.5)
            if open_transaction(broker, topic):
                return
            proc.signal(signal.SIGCONT)
        raise AssertionError(
            f"never caught {proc.name} with a transaction open on {topic} within "
            f"{deadline_s:.0f} s while orders kept coming (frozen {frozen} times on an open "
            f"transaction, each committed before the check; last error: "
            f"{last_error or 'none'}); its last output: {proc.output()[-1500:]}"
        )
    finally:
        # Stopped once it has started: a SIGTERM before its handler is installed (Python still
        # importing, on a loaded machine) kills it with -15 instead of a clean stop.
        feed.wait_started()
        feed.stop()


# Long transactions (2 s) in the two scenarios below, so the moment is wide enough to hold.
LONG_TXN = {"KAFKA_TRANSACTION_INTERVAL_MS": "2000", "KAFKA_TRANSACTION_TIMEOUT_MS": "10000"}


def killed_in_transaction(broker: Any, couchbase: Any, workdir: Path, size: Size) -> Report:
    """Payment frozen while its transaction is open (proven), then SIGKILLed and restarted."""
    pipeline = Pipeline(broker, couchbase, workdir)
    started = time.monotonic()
    try:
        pipeline.start("fraud")
        pipeline.start("analytics")
        payment = pipeline.start("payment", **LONG_TXN)
        pipeline.start_producer(size.orders, size.rate)
        time.sleep(size.orders / size.rate / 3)
        feed = pipeline.start_producer(None, size.rate)
        freeze_in_transaction(payment, broker, pipeline.names.payments, feed)
        payment.kill()
        payment.start()
        faults = "payment SIGSTOPped with a transaction open (checked), SIGKILLed, restarted"
        return _finish(pipeline, "consumer killed in a transaction", faults, started, size)
    finally:
        pipeline.close()


def zombie(broker: Any, couchbase: Any, workdir: Path, size: Size) -> Report:
    """Fraud frozen with a transaction open past its session timeout; a replacement takes its
    partitions; the zombie then resumes and must be fenced (its late writes never visible)."""
    pipeline = Pipeline(broker, couchbase, workdir)
    started = time.monotonic()
    try:
        pipeline.start("payment")
        pipeline.start("analytics")
        # Its transaction outlives the freeze: the group generation must fence it (KIP-447).
        frozen = pipeline.start("fraud", **{**LONG_TXN, "KAFKA_TRANSACTION_TIMEOUT_MS": "60000"})
        pipeline.start_producer(size.orders, size.rate)
        time.sleep(size.orders / size.rate / 3)
        feed = pipeline.start_producer(None, size.rate)
        freeze_in_transaction(frozen, broker, pipeline.names.alerts, feed)
        pipeline.start("fraud")
        time.sleep(12)  # past the 6 s session timeout: the replacement owns every partition
        frozen.signal(signal.SIGCONT)
        wait_until(
            lambda: (
                bool(frozen.log_events("transaction aborted: partitions lost to another member"))
                or bool(
                    frozen.log_events("transaction aborted, re-reading from the committed offsets")
                )
                or not frozen.alive()
            ),
            60,
            "the zombie to be fenced",
        )
        fenced = "exited" if not frozen.alive() else "aborted its transaction"
        faults = f"fraud SIGSTOPped in a transaction 12 s, replaced, resumed: {fenced}"
        return _finish(pipeline, "zombie consumer", faults, started, size)
    finally:
        pipeline.close()


class _Result(threading.Thread):
    def __init__(self, proc: Proc) -> None:
        super().__init__(daemon=True)
        self.proc = proc
        self.code: int | None = None

    def run(self) -> None:
        self.code = self.proc.stop()

    def result(self) -> int:
        self.join(90)
        assert self.code is not None, f"{self.proc.name} did not stop"
        return self.code


def _stop_in_thread(proc: Proc) -> _Result:
    thread = _Result(proc)
    thread.start()
    return thread


def _free() -> int:
    from devinfra.procs import free_port

    return free_port()

"""`make up`'s local stack: order acknowledged by Kafka -> its row in the dashboard.

The stack as `make up` starts it (its own Kafka and gocaves, the four workers, the backend
serving the built dashboard), on free ports; 50 orders produced from the host one every
0.2 s while the stack's own producer runs, each timed from the broker's ack to its row in
headless Chromium. One stack per run (starting it is the slow part).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devinfra.journey import PRODUCE_ORDERS
from devinfra.procs import free_port
from devinfra.stack import Stack

from bench.common import BenchEnv, Figure, summarize
from bench.dashboard_latency import ORDERS, TEMPLATE, Produce, order_to_row_ms, percentile


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    # Stack reads its ports from the environment, as `make up` does.
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _producer(bootstrap_servers: str) -> Produce:
    def produce(count: int, interval: float) -> dict[str, float]:
        # The same script the node benchmark runs inside a pod.
        done = subprocess.run(
            [sys.executable, "-c", PRODUCE_ORDERS, str(count), str(interval), json.dumps(TEMPLATE)],
            env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers},
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        acked: dict[str, float] = json.loads(done.stdout)
        return acked

    return produce


def measure(env: BenchEnv, quick: bool) -> list[Figure]:
    del quick  # one stack per run either way
    with (
        tempfile.TemporaryDirectory(prefix="bench-stack-", dir=env.workdir) as tmp,
        _environment(
            ORDERPIPELINE_DASHBOARD_PORT=str(free_port()),
            ORDERPIPELINE_KAFKA_PORT=str(free_port()),
            PRODUCER_RATE="20",
        ),
    ):
        stack = Stack(Path(tmp) / "stack")
        try:
            stack.start()
            # The stack's own broker, or the one KAFKA_BOOTSTRAP_SERVERS names (as in `make up`).
            kafka = stack.kafka.service_env() if stack.kafka is not None else os.environ
            bootstrap = kafka["KAFKA_BOOTSTRAP_SERVERS"]
            latencies = order_to_row_ms(stack.url, _producer(bootstrap))
        finally:
            stack.stop()
    return [
        summarize(f"stack: order -> row in Chromium, p50 ({ORDERS} orders)", "ms",
                  [statistics.median(latencies)], None, "reported", None),
        summarize(f"stack: order -> row in Chromium, p99 ({ORDERS} orders)", "ms",
                  [percentile(latencies, 99)], None, "< 500 ms", lambda v, _: v < 500),
    ]  # fmt: skip

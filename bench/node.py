"""The real node: how long a person waits, and how fast an order reaches the browser.

- node-up, warm: the toolchain and images built, a fresh node (nothing imported yet);
- the journey: `helm install` of the operator, the dev Kafka and Couchbase, then
  `kubectl apply -f samples/minimal.yaml` -> every pod Running and Ready (images present);
- order produced (broker ack, inside a pod) -> its row in Chromium at http://orders.local/
  through the Traefik ingress, over 50 orders while the pipeline's own producer runs.

Needs root and no other node running (`make node-down`). One node and one journey per
benchmark run (a second would measure the same cold caches again); the latency figure is
taken over every order of the run.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from devinfra.chromium import host_resolver_args
from devinfra.journey import HOST, OPERATOR_NAMESPACE, PIPELINE, Journey
from devinfra.node import RealNode, build_images
from devinfra.nodeconfig import NODE_IP
from devinfra.procs import wait_for

from bench.common import BenchEnv, Figure, summarize
from bench.dashboard_latency import ORDERS, TEMPLATE, order_to_row_ms, percentile


def _apply_to_ready(journey: Journey) -> tuple[float, float]:
    """(helm install -> all Ready, kubectl apply of the sample -> all Ready), in seconds."""
    started = time.monotonic()
    journey.install_infrastructure()
    applied = time.monotonic()
    journey.apply_sample()
    wait_for(
        lambda: (
            journey.all_pods_ready(("default", OPERATOR_NAMESPACE))
            and len(journey.pods(f"{PIPELINE}-")) >= 6
        ),
        timeout=300,
        interval=0.5,
        what="every pod Running and Ready",
    )
    done = time.monotonic()
    return done - started, done - applied


def _latencies(journey: Journey) -> list[float]:
    """Broker ack -> row in Chromium via the ingress, orders produced inside a pod."""

    def produce(count: int, interval: float) -> dict[str, float]:
        return journey.produce_orders(TEMPLATE, count=count, interval=interval)

    return order_to_row_ms(f"http://{HOST}/", produce, tuple(host_resolver_args(HOST, NODE_IP)))


def measure(env: BenchEnv, quick: bool) -> list[Figure]:
    del quick  # one node per run either way (see the module's docstring)
    images = build_images()
    with tempfile.TemporaryDirectory(prefix="bench-node-", dir=env.workdir) as tmp:
        node = RealNode(Path(tmp))
        started = time.monotonic()
        try:
            node.start(images)
            node_up = time.monotonic() - started
            journey = Journey(node)
            total, apply = _apply_to_ready(journey)
            latencies = _latencies(journey)
        finally:
            left = node.stop()
        if left:
            raise RuntimeError("the node left on the host:\n" + "\n".join(left))
    p99 = percentile(latencies, 99)
    return [
        summarize("node: node-up, warm (toolchain and images built)", "s", [node_up], None,
                  "reported", None),
        summarize("node: helm install + dev infra + sample -> every pod Ready", "s", [total],
                  None, "reported", None),
        summarize("node: kubectl apply sample -> every pod Running and Ready", "s", [apply],
                  None, "< 60 s", lambda v, _: v < 60),
        summarize(f"node: order -> row in Chromium via the ingress, p50 ({ORDERS} orders)", "ms",
                  [statistics.median(latencies)], None, "reported", None),
        summarize(f"node: order -> row in Chromium via the ingress, p99 ({ORDERS} orders)", "ms",
                  [p99], None, "< 1000 ms", lambda v, _: v < 1000),
    ]  # fmt: skip

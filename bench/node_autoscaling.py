"""The real node: a burst of 200,000 orders drained by the payment group, with a fixed single
replica and then with lag-based autoscaling (1 -> up to the 3 partitions of `orders`).

Payment is the group autoscaling is for: one replica is bounded by its simulated work
(`maxInFlight` 1000 orders of 100 ms: at most 10,000 orders/s), not by the machine, so more
replicas can drain faster where the CPU allows. The operator runs as installed (the chart's
defaults: a lag reading every 15 s) and the autoscaling spec is the CRD's defaults but
`enabled` and `maxReplicas: 3` (the partitions: a fourth replica would sit idle).

Drain time = the burst produced (every order acknowledged by the broker) -> the group's
committed offsets at the log end of `orders` (lag 0), read from the broker inside a pod
every 0.25 s (the broker advertises a name only pods resolve). The burst is produced by
one process in the backend's pod, right after every group has caught up with `orders`;
the pipeline's own producer is scaled to 0 so that lag 0 is an end, not a moment. Fraud
and analytics read the burst too, on the same two cores: that is the pipeline as it runs.

Needs root and no other node running (`make node-down`); one node per run.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from devinfra.journey import PIPELINE, Journey
from devinfra.node import RealNode, build_images
from devinfra.procs import wait_for

from bench.common import BenchEnv, Figure, summarize

BURST = 200_000
PARTITIONS = 3  # of `orders` in samples/node-infra
PAYMENT = f"{PIPELINE}-payment"
AUTOSCALING = {"enabled": True, "minReplicas": 1, "maxReplicas": PARTITIONS}
# "Faster" means beyond the noise of one run against another: two runs in which payment
# never scaled (the operator could not read the lag) differed by 14% (24.9 s and 21.4 s).
FASTER = 0.8

# Run with `python - BOOTSTRAP COUNT` in a pod of the services image. Waits until every group
# has read all of `orders`, produces COUNT orders, then reads payments-group's lag on
# `orders` until it is 0. Prints {"produce_s", "drain_s", "lag": [[seconds, lag], ...]}.
BURST_SCRIPT = """
import json, sys, time
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from orderpipeline.core.order import new_order_id
bootstrap, count = sys.argv[1], int(sys.argv[2])
def reader(group):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "enable.auto.commit": False})
readers = [reader(g) for g in ("fraud-group", "payments-group", "analytics-group")]
parts = [TopicPartition("orders", p)
         for p in readers[0].list_topics("orders", timeout=15).topics["orders"].partitions]
answered = time.monotonic()
def lag(consumer):
    # `orders` is written without transactions: log end - committed is exact here. A broker
    # too busy to answer in time is asked again (None); one silent for 2 minutes (evicted,
    # say) ends the run.
    global answered
    try:
        total = 0
        for tp in consumer.committed(parts, timeout=15):
            low, high = consumer.get_watermark_offsets(tp, timeout=15, cached=False)
            total += high - max(tp.offset, low)
        answered = time.monotonic()
        return total
    except KafkaException as exc:
        if time.monotonic() - answered > 120:
            raise SystemExit(f"the broker has not answered for 2 minutes: {exc}")
        return None
deadline = time.monotonic() + 900
while any(lag(c) != 0 for c in readers):
    if time.monotonic() > deadline:
        raise SystemExit("the groups did not catch up with `orders` before the burst")
    time.sleep(1)
producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                     "linger.ms": 20, "queue.buffering.max.kbytes": 32768})
stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
started = time.monotonic()
for i in range(count):
    order = {"order_id": new_order_id(), "customer_id": i % 1000, "amount": 42.5,
             "currency": "USD", "country": "US", "status": "CREATED",
             "source": "bench-node-autoscaling", "created_at": stamp}
    value = json.dumps(order)
    while True:
        try:
            producer.produce("orders", key=order["order_id"], value=value)
            break
        except BufferError:
            producer.poll(0.05)
    producer.poll(0)
if producer.flush(300) != 0:
    raise SystemExit("the burst was not acknowledged")
produced = time.monotonic()
seen = []
while True:
    left = lag(readers[1])
    now = time.monotonic()
    seen.append([round(now - produced, 2), left])
    if left == 0:
        break
    if now - produced > 1800:
        raise SystemExit("payment did not drain the burst in 30 minutes")
    time.sleep(0.25)
for c in readers:
    c.close()
print(json.dumps({"produce_s": produced - started, "drain_s": now - produced, "lag": seen}))
"""


def _backend(journey: Journey) -> str:
    """The webapp backend's Deployment: the services image, and no part in the drain."""
    names = journey.kubectl("get", "deployments", "-o", "name").split()
    return next(n for n in names if n.startswith(f"deployment.apps/{PIPELINE}") and "backend" in n)


def _payment(journey: Journey, autoscaling: dict[str, Any] | None) -> None:
    """Payment at one ready replica, fixed (`autoscaling` None) or autoscaled."""
    spec = {"replicas": 1, "autoscaling": autoscaling or {"enabled": False}}
    patch = json.dumps({"spec": {"payment": spec}})
    journey.kubectl("patch", "orderpipeline", PIPELINE, "--type=merge", "-p", patch)
    wait_for(
        lambda: len(journey.pods(PAYMENT)) == 1 and journey.all_pods_ready(("default",)),
        timeout=300,
        interval=1,
        what="one ready payment replica",
    )


def _operator_reads_lag(journey: Journey) -> bool:
    """The operator's status has a number for payment's lag (not `unknown`): it reaches
    the broker, so a burst can scale the group."""
    status = journey.json("get", "orderpipeline", PIPELINE).get("status") or {}
    lag = (status.get("consumers") or {}).get("payment", {}).get("lag")
    return isinstance(lag, int)


def _drain(journey: Journey, backend: str) -> dict[str, Any]:
    out = journey.node.kubectl(
        "exec", "-i", backend, "--", "python", "-", "kafka:9092", str(BURST),
        input=BURST_SCRIPT, timeout=3600,
    ).stdout  # fmt: skip
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _scaled_events(journey: Journey) -> list[str]:
    events = journey.json("get", "events", "--field-selector", "reason=Scaled")["items"]
    return [e["message"] for e in events if "payment" in e["message"]]


def _run(node: RealNode) -> tuple[dict[str, Any], dict[str, Any], int, list[str]]:
    journey = Journey(node)
    journey.install()
    journey.set_producer_replicas(0)
    backend = _backend(journey)
    _payment(journey, None)
    fixed = _drain(journey, backend)
    _payment(journey, AUTOSCALING)
    wait_for(lambda: _operator_reads_lag(journey), timeout=120, interval=2,
             what="payment's lag in the operator's status")  # fmt: skip
    scaled = _drain(journey, backend)
    # Still at its peak: scale-down waits for the stabilization window (300 s).
    deployment = journey.json("get", "deployment", PAYMENT)
    return fixed, scaled, int(deployment["spec"]["replicas"]), _scaled_events(journey)


def measure(env: BenchEnv, quick: bool) -> list[Figure]:
    del quick  # one node and one burst of each kind per run
    images = build_images()
    with tempfile.TemporaryDirectory(prefix="bench-node-autoscaling-", dir=env.workdir) as tmp:
        node = RealNode(Path(tmp))
        try:
            node.start(images)
            fixed, scaled, replicas, events = _run(node)
        finally:
            left = node.stop()
        if left:
            raise RuntimeError("the node left on the host:\n" + "\n".join(left))
    print(json.dumps({"fixed": fixed, "autoscaled": scaled, "events": events}), flush=True)
    name = f"node: {BURST:,}-order burst drained by payment"
    return [
        summarize(f"{name}, 1 fixed replica", "s", [fixed["drain_s"]], None, "reported", None),
        summarize(f"{name}, autoscaled 1 -> {replicas} replicas", "s", [scaled["drain_s"]],
                  None, f"scaled, and <= {FASTER:.0%} of 1 fixed replica",
                  lambda v, _: replicas > 1 and v <= FASTER * fixed["drain_s"]),
        summarize(f"node: {BURST:,}-order burst produced in a pod", "s",
                  [fixed["produce_s"], scaled["produce_s"]], None, "reported", None),
    ]  # fmt: skip

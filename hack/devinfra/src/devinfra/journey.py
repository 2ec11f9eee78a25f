"""The user's journey on the real node, as the README tells it, for tests and benchmarks.

`install(node)` is the README's commands: `helm install` the operator chart, the
development Kafka and Couchbase (`samples/node-infra/`), then `samples/minimal.yaml`,
waiting where a person would. The rest reads what a person would look at: the backend
through the ingress, the pods, and Kafka from inside a pod (the broker advertises a
cluster DNS name that only pods resolve).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from devinfra.node import RealNode
from devinfra.nodeconfig import NODE_IP
from devinfra.procs import wait_for
from devinfra.toolchain import REPO_ROOT

OPERATOR_NAMESPACE = "orderpipeline-system"
OPERATOR_RELEASE = "orderpipeline-operator"
PIPELINE = "orders"
HOST = "orders.local"

# Run with `python -` in a pod of the services image (confluent_kafka and the pipeline's
# Kafka settings are there): every order in `orders`, read committed, as count and cents.
AUDIT_ORDERS = """
import json, os, time
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
              "group.id": "node-audit", "enable.auto.commit": False,
              "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
parts = [TopicPartition("orders", p, 0)
         for p in c.list_topics("orders", timeout=15).topics["orders"].partitions]
ends = {tp.partition: c.get_watermark_offsets(tp, timeout=15)[1] for tp in parts}
c.assign(parts)
left = {p for p, end in ends.items() if end > 0}
ids, cents, deadline = set(), 0, time.monotonic() + 60
while left and time.monotonic() < deadline:
    m = c.poll(1)
    if m is None or m.error():
        continue
    order = json.loads(m.value())
    if order["order_id"] not in ids:
        ids.add(order["order_id"])
        cents += round(order["amount"] * 100)
    if m.offset() + 1 >= ends[m.partition()]:
        left.discard(m.partition())
c.close()
print(json.dumps({"orders": len(ids), "cents": cents, "complete": not left}))
"""

# argv: count, interval in seconds, then a JSON template of the order. Produces `count`
# orders one after the other (fresh ids unless the template has one, created now) and
# prints {order_id: broker-ack time (epoch s)}.
PRODUCE_ORDERS = """
import json, os, sys, time
from confluent_kafka import Producer
from orderpipeline.core.order import new_order_id
count, interval, template = int(sys.argv[1]), float(sys.argv[2]), json.loads(sys.argv[3])
p = Producer({"bootstrap.servers": os.environ["KAFKA_BOOTSTRAP_SERVERS"],
              "enable.idempotence": True, "linger.ms": 0})
acked = {}
def done(err, msg):
    if err is None:
        acked[msg.key().decode()] = time.time()
for i in range(count):
    order = dict(template)
    order["order_id"] = template.get("order_id") or new_order_id()
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    order["created_at"] = stamp + ".%03dZ" % (now % 1 * 1000)
    p.produce("orders", key=order["order_id"], value=json.dumps(order), on_delivery=done)
    p.flush(15)
    time.sleep(interval)
print(json.dumps(acked))
"""


class Journey:
    """The pipeline of samples/minimal.yaml on a running RealNode."""

    def __init__(self, node: RealNode) -> None:
        self.node = node

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 300) -> str:
        return self.node.kubectl(*args, input=input, timeout=timeout).stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    # -- the README's commands ----------------------------------------------------

    def install(self) -> None:
        self.install_infrastructure()
        self.apply_sample()

    def install_infrastructure(self) -> None:
        """The operator (helm install) and the development Kafka and Couchbase."""
        self.kubectl("create", "namespace", OPERATOR_NAMESPACE)
        self.kubectl(
            "label", "namespace", OPERATOR_NAMESPACE,
            "pod-security.kubernetes.io/enforce=restricted",
        )  # fmt: skip
        self.node.helm(
            "install", OPERATOR_RELEASE, str(REPO_ROOT / "charts" / "orderpipeline-operator"),
            "--namespace", OPERATOR_NAMESPACE, "--wait", "--timeout", "5m",
        )  # fmt: skip
        self.kubectl("apply", "-k", str(REPO_ROOT / "samples" / "node-infra"))
        self.kubectl(
            "wait", "--for=condition=Complete", "job/kafka-topics", "--timeout=600s", timeout=620
        )
        self.kubectl("wait", "--for=condition=Available", "deployment/couchbase", "--timeout=300s")

    def apply_sample(self) -> None:
        """`kubectl apply -f samples/minimal.yaml`, then wait for the pipeline's Ready."""
        self.kubectl("apply", "-f", str(REPO_ROOT / "samples" / "minimal.yaml"))
        self.kubectl(
            "wait", "--for=condition=Ready", f"orderpipeline/{PIPELINE}", "--timeout=300s",
            timeout=320,
        )  # fmt: skip

    # -- what a person looks at -----------------------------------------------------

    def analytics(self) -> dict[str, Any]:
        """GET /api/analytics through the ingress, as the browser reaches it."""
        request = urllib.request.Request(f"http://{NODE_IP}/api/analytics", headers={"Host": HOST})
        with urllib.request.urlopen(request, timeout=10) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body

    def pods(self, prefix: str = "", namespace: str = "default") -> list[dict[str, Any]]:
        """Running, not terminating pods whose name starts with `prefix`."""
        items = self.json("get", "pods", "-n", namespace)["items"]
        return [
            p
            for p in items
            if p["metadata"]["name"].startswith(prefix)
            and p["metadata"].get("deletionTimestamp") is None
            and p["status"].get("phase") == "Running"
        ]

    def all_pods_ready(self, namespaces: tuple[str, ...]) -> bool:
        for namespace in namespaces:
            for pod in self.json("get", "pods", "-n", namespace)["items"]:
                if pod["status"].get("phase") == "Succeeded":
                    continue  # a finished Job's pod
                statuses = pod["status"].get("containerStatuses") or [{"ready": False}]
                if pod["status"].get("phase") != "Running" or not all(s["ready"] for s in statuses):
                    return False
        return True

    def in_pod(self, deployment: str, script: str, *args: str) -> str:
        return self.kubectl(
            "exec", "-i", f"deploy/{deployment}", "--", "python", "-", *args, input=script
        )

    def audit_orders(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.in_pod(f"{PIPELINE}-fraud", AUDIT_ORDERS))
        if not result["complete"]:
            raise RuntimeError(f"could not read all of `orders`: {result}")
        return result

    def produce_orders(
        self, template: dict[str, Any], count: int = 1, interval: float = 0.0
    ) -> dict[str, float]:
        out = self.in_pod(
            f"{PIPELINE}-fraud", PRODUCE_ORDERS, str(count), str(interval), json.dumps(template)
        )
        acked: dict[str, float] = json.loads(out)
        return acked

    def set_producer_replicas(self, replicas: int) -> None:
        patch = {"spec": {"producer": {"replicas": replicas}}}
        self.kubectl("patch", "orderpipeline", PIPELINE, "--type=merge", "-p", json.dumps(patch))
        wait_for(
            lambda: len(self.pods(f"{PIPELINE}-producer")) == replicas,
            timeout=120,
            what=f"{replicas} producer pods",
        )

    def wait_totals_match_topic(self, timeout: float = 180) -> dict[str, Any]:
        """Until the backend's totals equal the orders in Kafka (analytics caught up)."""
        seen: dict[str, Any] = {}

        def caught_up() -> bool:
            truth = self.audit_orders()
            totals = self.analytics()["totals"]
            seen.update(truth=truth, totals=totals)
            return bool(
                totals["orders"] == truth["orders"]
                and round(totals["sales"] * 100) == truth["cents"]
            )

        try:
            wait_for(caught_up, timeout=timeout, interval=3, what="totals equal to the topic")
        except TimeoutError as exc:
            raise AssertionError(f"totals never matched the topic: {seen}") from exc
        return seen

"""Live status and lag-based autoscaling with the real Kafka broker, the real local cluster and
the operator as a subprocess. The kwok node's pods are Ready but consume nothing, so a
backlog stays until a real consumer process of the group (`orderpipeline fraud`) reads it."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from devinfra.cluster import LocalCluster
from devinfra.kafka import KafkaBroker
from devinfra.procs import ManagedProcess, free_port

from .operator_helpers import (
    LAG_INTERVAL_SECONDS,
    LAGGING_AFTER_SECONDS,
    ROOT,
    STUCK_SECONDS,
    OperatorProcess,
    apply,
    eventually,
    get,
    pipeline,
)

pytestmark = [pytest.mark.cluster, pytest.mark.kafka]

PARTITIONS = 3
SCALED = "Scaled"
# One interval for the reading, one for a reading that started just before the change,
# and the Deployment write: "within one status interval" on a loaded 2-core machine.
WITHIN_ONE_INTERVAL = 2 * LAG_INTERVAL_SECONDS + 4


class Topics:
    """Five topics of this test only (the groups' committed offsets are per topic)."""

    def __init__(self, broker: KafkaBroker) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.broker = broker
        self.names = {
            "orders": f"orders-{suffix}",
            "fraudAlerts": f"alerts-{suffix}",
            "payments": f"payments-{suffix}",
            "analytics": f"analytics-{suffix}",
            "deadLetter": f"dlq-{suffix}",
        }
        broker.create_topics(list(self.names.values()), partitions=PARTITIONS)

    @property
    def orders(self) -> str:
        return self.names["orders"]

    def produce(self, topic: str, count: int, partition: int | None = None) -> None:
        producer = Producer(self.broker.client_config())
        for i in range(count):
            if partition is None:
                producer.produce(topic, key=str(i), value=b"{}")
            else:
                producer.produce(topic, key=str(i), value=b"{}", partition=partition)
        assert producer.flush(30) == 0

    def orders_lag(self, group: str) -> int:
        """The group's lag on `orders` read from the broker itself (not the operator's status,
        which is written only on a meaningful change and so can show a drain late)."""
        reader = Consumer(
            {**self.broker.client_config(), "group.id": group, "enable.auto.commit": False}
        )
        try:
            partitions = [TopicPartition(self.orders, p) for p in range(PARTITIONS)]
            total = 0
            for tp in reader.committed(partitions, timeout=10):
                low, high = reader.get_watermark_offsets(tp, timeout=10)
                total += high - (tp.offset if tp.offset >= 0 else low)
            return total
        finally:
            reader.close()


@pytest.fixture
def topics(kafka: KafkaBroker) -> Topics:
    return Topics(kafka)


def lag_pipeline(name: str, topics: Topics, **spec: Any) -> dict[str, Any]:
    """A pipeline on the real broker; no producer and no webapp (they do not change lag)."""
    spec.setdefault("producer", {"enabled": False})
    spec.setdefault("webapp", {"enabled": False})
    kafka = {"bootstrapServers": topics.broker.bootstrap_servers, "topics": topics.names}
    return pipeline(name, kafka=kafka, **spec)


def autoscaled(**policy: int) -> dict[str, Any]:
    return {"autoscaling": {"enabled": True, **policy}}


def status(k8s: LocalCluster, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = get(k8s, namespace, "opl", name).get("status") or {}
    return found


def consumer(k8s: LocalCluster, namespace: str, name: str, group: str) -> dict[str, Any]:
    found: dict[str, Any] = (status(k8s, namespace, name).get("consumers") or {}).get(group) or {}
    return found


def condition(k8s: LocalCluster, namespace: str, name: str, kind: str) -> dict[str, Any]:
    for cond in status(k8s, namespace, name).get("conditions") or []:
        if cond["type"] == kind:
            found: dict[str, Any] = cond
            return found
    return {}


def replicas(k8s: LocalCluster, namespace: str, deployment: str) -> int | None:
    """spec.replicas of the Deployment (None while it does not exist yet)."""
    found = k8s.kubectl("-n", namespace, "get", "deploy", deployment, "-o", "json", check=False)
    if found.returncode != 0:
        return None
    return int(json.loads(found.stdout)["spec"]["replicas"])


def events(k8s: LocalCluster, namespace: str, reason: str) -> list[str]:
    items = get(k8s, namespace, "events", "--field-selector", f"reason={reason}")["items"]
    return [str(e.get("message") or e.get("note") or "") for e in items]


@pytest.fixture
def fraud_process(kafka: KafkaBroker, topics: Topics, tmp_path: Path) -> Iterator[ManagedProcess]:
    """A real `orderpipeline fraud` of fraud-group on this test's topics, started by the test."""
    env = {
        "PATH": "/usr/bin:/bin",
        **kafka.service_env(),
        "ORDERS_TOPIC": topics.orders,
        "FRAUD_ALERTS_TOPIC": topics.names["fraudAlerts"],
        "DEAD_LETTER_TOPIC": topics.names["deadLetter"],
        "HEALTH_PORT": str(free_port()),
        "ORDERPIPELINE_SECRETS_DIR": str(tmp_path / "no-secrets"),
    }
    proc = ManagedProcess(
        "fraud",
        [ROOT / ".venv" / "bin" / "orderpipeline", "fraud"],
        log_path=tmp_path / "fraud.log",
        env=env,
    )
    yield proc
    proc.stop()


def test_status_shows_each_groups_lag_partitions_and_ready_replicas(
    k8s: LocalCluster, operator: OperatorProcess, namespace: str, topics: Topics
) -> None:
    topics.produce(topics.orders, 120)
    topics.produce(topics.names["payments"], 30)
    topics.produce(topics.names["fraudAlerts"], 999)  # no group of the pipeline reads it
    apply(k8s, namespace, lag_pipeline("live", topics))

    def reported() -> bool:
        return consumer(k8s, namespace, "live", "analytics").get("lag") == 150

    eventually(reported, timeout=60, what="analytics lag 150 in the status")
    fraud = consumer(k8s, namespace, "live", "fraud")
    assert (fraud["group"], fraud["topics"], fraud["lag"]) == ("fraud-group", [topics.orders], 120)
    assert (fraud["partitions"], fraud["stuckPartitions"], fraud["autoscaling"]) == (3, [], False)
    eventually(
        lambda: consumer(k8s, namespace, "live", "payment").get("readyReplicas") == 1,
        timeout=60, what="payment readyReplicas 1",
    )  # fmt: skip
    assert consumer(k8s, namespace, "live", "analytics")["partitions"] == 6
    assert status(k8s, namespace, "live")["summary"]["lag"] == "390"
    printed = k8s.kubectl("-n", namespace, "get", "opl", "live").stdout.split("\n")[1].split()
    assert printed[4] == "390"
    assert condition(k8s, namespace, "live", "Lagging")["status"] == "False"
    metrics = operator.metrics()
    line = (
        f'orderpipeline_operator_consumer_lag{{group="fraud",namespace="{namespace}",'
        f'pipeline="live"}} 120.0'
    )
    assert line in metrics


def test_small_lag_moves_are_on_metrics_but_not_written_to_the_status(
    k8s: LocalCluster, operator: OperatorProcess, namespace: str, topics: Topics
) -> None:
    topics.produce(topics.orders, 1000)
    apply(k8s, namespace, lag_pipeline("calm", topics))

    def settled() -> bool:
        """Ready replicas seen, and a rate (which needs a second reading) known."""
        groups = status(k8s, namespace, "calm").get("consumers") or {}
        return len(groups) == 3 and all(
            g.get("readyReplicas") == 1 and "ratePerSecond" in g for g in groups.values()
        )

    eventually(settled, timeout=60, what="every group read twice with its replica ready")
    before = get(k8s, namespace, "opl", "calm")["metadata"]["resourceVersion"]
    topics.produce(topics.orders, 20)  # 2%: not worth a status write
    time.sleep(3 * LAG_INTERVAL_SECONDS)
    after = get(k8s, namespace, "opl", "calm")
    assert after["metadata"]["resourceVersion"] == before
    assert after["status"]["consumers"]["fraud"]["lag"] == 1000
    line = (
        f'orderpipeline_operator_consumer_lag{{group="fraud",namespace="{namespace}",'
        f'pipeline="calm"}} 1020.0'
    )
    assert line in operator.metrics()


def test_growing_lag_sets_lagging(
    k8s: LocalCluster, operator: OperatorProcess, namespace: str, topics: Topics
) -> None:
    apply(k8s, namespace, lag_pipeline("grow", topics))
    eventually(
        lambda: consumer(k8s, namespace, "grow", "fraud").get("lag") == 0,
        timeout=60, what="first reading",
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while condition(k8s, namespace, "grow", "Lagging").get("status") != "True":
        assert time.monotonic() < deadline, "Lagging never became True while lag grew"
        topics.produce(topics.orders, 50)
        time.sleep(LAG_INTERVAL_SECONDS / 2)
    cond = condition(k8s, namespace, "grow", "Lagging")
    assert cond["reason"] == "LagGrowing"
    assert f"growing for over {LAGGING_AFTER_SECONDS}s" in cond["message"]


def test_backlog_scales_up_within_one_interval_capped_by_the_partitions(
    k8s: LocalCluster, operator: OperatorProcess, namespace: str, topics: Topics
) -> None:
    spec = lag_pipeline(
        "burst", topics, fraud=autoscaled(minReplicas=1, maxReplicas=10, lagPerReplica=100)
    )
    apply(k8s, namespace, spec)
    eventually(
        lambda: consumer(k8s, namespace, "burst", "fraud").get("lag") == 0,
        timeout=60, what="first reading",
    )  # fmt: skip
    assert replicas(k8s, namespace, "burst-fraud") == 1

    topics.produce(topics.orders, 150)
    started = time.monotonic()
    eventually(
        lambda: replicas(k8s, namespace, "burst-fraud") == 2,
        timeout=WITHIN_ONE_INTERVAL, what="fraud scaled to ceil(150/100) = 2",
    )  # fmt: skip
    scaled_after = time.monotonic() - started
    # The reading may have caught the producer half-way: a lag above 100, up to 150.
    said = re.compile(r"Scaled fraud up from 1 to 2 replicas: lag 1[0-5]\d \(lagPerReplica 100\)")
    eventually(
        lambda: any(said.match(m) for m in events(k8s, namespace, SCALED)),
        timeout=10, what=f"a Scaled Event with the lag, in {events(k8s, namespace, SCALED)}",
    )  # fmt: skip

    topics.produce(topics.orders, 850)  # lag 1000: 10 wanted, 3 partitions
    eventually(
        lambda: replicas(k8s, namespace, "burst-fraud") == 3,
        timeout=WITHIN_ONE_INTERVAL, what="fraud scaled to the 3 partitions",
    )  # fmt: skip
    time.sleep(2 * LAG_INTERVAL_SECONDS)
    assert replicas(k8s, namespace, "burst-fraud") == 3
    assert replicas(k8s, namespace, "burst-payment") == 1  # not autoscaled: spec.replicas
    message = condition(k8s, namespace, "burst", "Lagging")["message"]
    assert "maxReplicas 10 is above the 3 partitions" in message
    print(f"scale-up after the backlog appeared: {scaled_after:.1f} s")


def test_consumed_backlog_scales_down_only_after_the_window(
    k8s: LocalCluster,
    operator: OperatorProcess,
    namespace: str,
    topics: Topics,
    fraud_process: ManagedProcess,
) -> None:
    window = 12
    fraud = autoscaled(
        minReplicas=1, maxReplicas=3, lagPerReplica=100, scaleDownStabilizationSeconds=window
    )
    topics.produce(topics.orders, 300)
    apply(k8s, namespace, lag_pipeline("drain", topics, fraud=fraud))
    eventually(
        lambda: replicas(k8s, namespace, "drain-fraud") == 3,
        timeout=60, what="fraud scaled up to 3 for the backlog",
    )  # fmt: skip
    fraud_process.start()
    eventually(
        lambda: topics.orders_lag("fraud-group") == 0,
        timeout=90, what="the real fraud consumer drained the backlog (read from the broker)",
    )  # fmt: skip
    drained = time.monotonic()
    # The last reading that still saw the backlog was at most one interval before.
    hold_until = drained + window - LAG_INTERVAL_SECONDS - 1
    while time.monotonic() < hold_until:
        assert replicas(k8s, namespace, "drain-fraud") == 3, "scaled down inside the window"
        time.sleep(0.5)
    eventually(
        lambda: replicas(k8s, namespace, "drain-fraud") == 1,
        timeout=window + WITHIN_ONE_INTERVAL, what="fraud scaled down to minReplicas",
    )  # fmt: skip
    said = "Scaled fraud down from 3 to 1 replicas: lag 0"
    eventually(
        lambda: any(m.startswith(said) for m in events(k8s, namespace, SCALED)),
        timeout=10, what=f"a Scaled Event for the scale-down in {events(k8s, namespace, SCALED)}",
    )  # fmt: skip


def test_scales_to_zero_without_lag_and_from_zero_when_lag_appears(
    k8s: LocalCluster, operator: OperatorProcess, namespace: str, topics: Topics
) -> None:
    fraud = autoscaled(
        minReplicas=0, maxReplicas=3, lagPerReplica=100, scaleDownStabilizationSeconds=0
    )
    apply(k8s, namespace, lag_pipeline("zero", topics, fraud=fraud))
    eventually(
        lambda: consumer(k8s, namespace, "zero", "fraud").get("lag") == 0,
        timeout=60, what="first reading",
    )  # fmt: skip
    assert replicas(k8s, namespace, "zero-fraud") == 0
    topics.produce(topics.orders, 5)
    eventually(
        lambda: replicas(k8s, namespace, "zero-fraud") == 1,
        timeout=WITHIN_ONE_INTERVAL, what="fraud back to 1 replica as soon as lag appears",
    )  # fmt: skip


def test_hand_scaled_autoscaled_consumer_is_reverted(
    k8s: LocalCluster, operator: OperatorProcess, namespace: str, topics: Topics
) -> None:
    apply(k8s, namespace, lag_pipeline("owned", topics, payment=autoscaled(minReplicas=2)))
    eventually(
        lambda: replicas(k8s, namespace, "owned-payment") == 2,
        timeout=60, what="payment at minReplicas",
    )  # fmt: skip
    k8s.kubectl("-n", namespace, "scale", "deploy", "owned-payment", "--replicas=7")
    eventually(
        lambda: replicas(k8s, namespace, "owned-payment") == 2,
        timeout=30, what="hand-scaled payment reverted to the scaler's count",
    )  # fmt: skip


def test_stuck_partition_is_reported_and_adds_no_replicas(
    k8s: LocalCluster, operator: OperatorProcess, namespace: str, topics: Topics
) -> None:
    """kwok's fraud pod is Ready and never commits: partition 0's lag stands still."""
    fraud = autoscaled(
        minReplicas=1, maxReplicas=3, lagPerReplica=10, scaleDownStabilizationSeconds=0
    )
    topics.produce(topics.orders, 100, partition=0)
    apply(k8s, namespace, lag_pipeline("stuck", topics, fraud=fraud))
    eventually(
        lambda: consumer(k8s, namespace, "stuck", "fraud").get("lag") == 100,
        timeout=60, what="first reading",
    )  # fmt: skip

    def reported() -> bool:
        return consumer(k8s, namespace, "stuck", "fraud").get("stuckPartitions") == [
            f"{topics.orders}/0"
        ]

    eventually(reported, timeout=STUCK_SECONDS + 30, what="partition 0 reported stuck")
    assert condition(k8s, namespace, "stuck", "Lagging")["reason"] == "PartitionStuck"
    eventually(
        lambda: replicas(k8s, namespace, "stuck-fraud") == 1,
        timeout=WITHIN_ONE_INTERVAL, what="no replicas for a stuck partition's lag",
    )  # fmt: skip


def test_kafka_unreachable_makes_lag_unknown_and_scales_nothing(
    k8s: LocalCluster, operator: OperatorProcess, namespace: str
) -> None:
    closed = f"127.0.0.1:{free_port()}"
    spec = pipeline(
        "dark",
        kafka={"bootstrapServers": closed},
        producer={"enabled": False},
        webapp={"enabled": False},
        fraud=autoscaled(minReplicas=2, maxReplicas=5, lagPerReplica=1),
        payment=autoscaled(minReplicas=0, scaleDownStabilizationSeconds=0),
    )
    apply(k8s, namespace, spec)

    def unknown() -> bool:
        return condition(k8s, namespace, "dark", "Lagging").get("status") == "Unknown"

    eventually(unknown, timeout=60, what="Lagging=Unknown")
    cond = condition(k8s, namespace, "dark", "Lagging")
    assert cond["reason"] == "KafkaUnreachable"
    assert closed in cond["message"]
    assert consumer(k8s, namespace, "dark", "fraud")["lag"] == "unknown"
    assert status(k8s, namespace, "dark")["summary"]["lag"] == "unknown"
    # Everything else goes on: the pipeline is Ready, nothing scaled, the operator is alive.
    k8s.kubectl("-n", namespace, "wait", "opl/dark", "--for=condition=Ready", "--timeout=60s")
    time.sleep(3 * LAG_INTERVAL_SECONDS)
    assert replicas(k8s, namespace, "dark-fraud") == 2
    # minReplicas 0, but a lag nobody could read is not a lag of zero: one consumer stays.
    assert replicas(k8s, namespace, "dark-payment") == 1
    assert events(k8s, namespace, SCALED) == []
    assert operator.alive()
    operator.proc.ensure_running()


def test_kafka_going_down_scales_nothing_and_recovers_when_it_returns(
    k8s: LocalCluster, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    """A broker of this test only, stopped and started again: while it is away nothing is
    scaled and the operator keeps running; when it is back
    (its group coordinator loading: the moment that crashes librdkafka's
    list_consumer_group_offsets) the lag is read again."""
    with KafkaBroker(tmp_path / "kafka", heap="256m") as broker:
        topics = Topics(broker)
        topics.produce(topics.orders, 250)
        fraud = autoscaled(minReplicas=1, maxReplicas=3, lagPerReplica=100)
        apply(k8s, namespace, lag_pipeline("flaky", topics, fraud=fraud))
        eventually(
            lambda: replicas(k8s, namespace, "flaky-fraud") == 3,
            timeout=60, what="fraud scaled to 3 for the backlog",
        )  # fmt: skip
        broker.stop()

        def unknown() -> bool:
            return condition(k8s, namespace, "flaky", "Lagging").get("status") == "Unknown"

        eventually(unknown, timeout=30, what="Lagging=Unknown while the broker is down")
        scaled_before = events(k8s, namespace, SCALED)
        time.sleep(3 * LAG_INTERVAL_SECONDS)
        assert replicas(k8s, namespace, "flaky-fraud") == 3
        assert events(k8s, namespace, SCALED) == scaled_before
        assert consumer(k8s, namespace, "flaky", "fraud")["lag"] == "unknown"
        operator.proc.ensure_running()

        broker.start()
        eventually(
            lambda: consumer(k8s, namespace, "flaky", "fraud").get("lag") == 250,
            timeout=60, what="lag read again after the broker returned",
        )  # fmt: skip
        assert condition(k8s, namespace, "flaky", "Lagging")["status"] != "Unknown"
        assert replicas(k8s, namespace, "flaky-fraud") == 3
        operator.proc.ensure_running()


def test_lag_is_read_with_the_pipelines_own_sasl_credentials_and_ca(
    k8s: LocalCluster, operator: OperatorProcess, namespace: str, kafka_sasl: KafkaBroker
) -> None:
    """SASL_SSL like Confluent Cloud: the username, password and CA come from the
    pipeline's Secrets, and a wrong password says so in the condition."""
    topics = Topics(kafka_sasl)
    topics.produce(topics.orders, 42)
    k8s.kubectl(
        "-n", namespace, "create", "secret", "generic", "kafka-credentials",
        f"--from-literal=username={kafka_sasl.sasl_username}",
        f"--from-literal=password={kafka_sasl.sasl_password}",
        f"--from-file=ca.crt={kafka_sasl.ca_file}",
    )  # fmt: skip
    kafka = {
        "bootstrapServers": kafka_sasl.bootstrap_servers,
        "securityProtocol": "SASL_SSL",
        "saslMechanism": "PLAIN",
        "credentialsSecretRef": {"name": "kafka-credentials"},
        "caSecretRef": {"name": "kafka-credentials"},
        "topics": topics.names,
    }
    spec = pipeline("sasl", kafka=kafka, producer={"enabled": False}, webapp={"enabled": False})
    apply(k8s, namespace, spec)
    eventually(
        lambda: consumer(k8s, namespace, "sasl", "fraud").get("lag") == 42,
        timeout=60, what="lag read over SASL_SSL",
    )  # fmt: skip

    k8s.kubectl(
        "-n", namespace, "patch", "secret", "kafka-credentials", "--type=merge",
        "-p", '{"stringData": {"password": "wrong"}}',
    )  # fmt: skip

    def refused() -> bool:
        cond = condition(k8s, namespace, "sasl", "Lagging")
        return cond.get("reason") == "KafkaUnreachable" and "Invalid username or password" in str(
            cond.get("message")
        )

    eventually(refused, timeout=60, what="Lagging=Unknown naming the failed authentication")
    # The cause reads the same at every reading: one write, not one per interval.
    first = get(k8s, namespace, "opl", "sasl")["metadata"]["resourceVersion"]
    time.sleep(3 * LAG_INTERVAL_SECONDS)
    assert get(k8s, namespace, "opl", "sasl")["metadata"]["resourceVersion"] == first
    assert str(kafka_sasl.sasl_password) not in json.dumps(status(k8s, namespace, "sasl"))

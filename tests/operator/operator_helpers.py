"""Helpers of the operator's integration tests (kubectl through the `k8s` fixture)."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from devinfra.cluster import LocalCluster
from devinfra.procs import ManagedProcess, free_port, wait_for

RESYNC_SECONDS = 3
# The lag reader's settings in the tests: a short interval, Lagging after a few readings of
# growth, a partition stuck after STUCK_SECONDS without a commit while its consumer is
# ready (the kwok node's pods are always ready and never consume).
LAG_INTERVAL_SECONDS = 2
LAGGING_AFTER_SECONDS = 4
STUCK_SECONDS = 20
COUCHBASE_SECRET = "couchbase-credentials"
ROOT = Path(__file__).resolve().parents[2]


class OperatorProcess:
    """`orderpipeline-operator` with a short resync so drift tests stay quick."""

    def __init__(self, k8s: LocalCluster, workdir: Path) -> None:
        self.liveness_port = free_port()
        self.metrics_port = free_port()
        env = {
            **os.environ,
            **k8s.env,
            "OPERATOR_HELM_BINARY": str(k8s.toolchain.helm),
            "OPERATOR_WEBAPP_CHART": str(ROOT / "charts" / "webapp"),
            "OPERATOR_RESYNC_SECONDS": str(RESYNC_SECONDS),
            "OPERATOR_HELM_TIMEOUT_SECONDS": "60",
            "OPERATOR_UNINSTALL_ATTEMPTS": "2",
            "OPERATOR_LIVENESS_PORT": str(self.liveness_port),
            "OPERATOR_METRICS_PORT": str(self.metrics_port),
            "OPERATOR_LAG_INTERVAL_SECONDS": str(LAG_INTERVAL_SECONDS),
            "OPERATOR_KAFKA_TIMEOUT_SECONDS": "3",
            "OPERATOR_LAGGING_AFTER_SECONDS": str(LAGGING_AFTER_SECONDS),
            "OPERATOR_STUCK_PARTITION_SECONDS": str(STUCK_SECONDS),
        }
        self.proc = ManagedProcess(
            "orderpipeline-operator",
            [ROOT / ".venv" / "bin" / "orderpipeline-operator"],
            log_path=workdir / "operator.log",
            env=env,
        )

    def start(self) -> None:
        self.proc.start()
        wait_for(
            self.alive, timeout=60, what="operator liveness endpoint",
            alive=self.proc.ensure_running,
        )  # fmt: skip

    def alive(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=1
            ):
                return True
        except OSError:
            return False

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())


def install_operator_crds(k8s: LocalCluster) -> None:
    """The CRDs, and the kopf peering the operator runs with cluster-wide."""
    k8s.install_crds(ROOT / "crds")
    peering = {
        "apiVersion": "kopf.dev/v1",
        "kind": "ClusterKopfPeering",
        "metadata": {"name": "orderpipeline-operator"},
    }
    k8s.kubectl("apply", "-f", "-", input=json.dumps(peering))


def create_namespace(k8s: LocalCluster, name: str) -> None:
    """Namespace `name` holding the Couchbase credentials Secret the samples reference."""
    k8s.kubectl("create", "namespace", name)
    k8s.kubectl(
        "-n", name, "create", "secret", "generic", COUCHBASE_SECRET,
        "--from-literal=username=Administrator", "--from-literal=password=password",
    )  # fmt: skip


def pipeline(name: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kafka": {"bootstrapServers": "kafka:9092"},
        "couchbase": {
            "connectionString": "couchbase://couchbase",
            "credentialsSecretRef": {"name": COUCHBASE_SECRET},
        },
    }
    body.update(spec)
    return {
        "apiVersion": "orderpipeline.io/v1alpha1",
        "kind": "OrderPipeline",
        "metadata": {"name": name},
        "spec": body,
    }


def apply(k8s: LocalCluster, namespace: str, obj: dict[str, Any]) -> None:
    k8s.kubectl("-n", namespace, "apply", "-f", "-", input=yaml.safe_dump(obj))


def get(k8s: LocalCluster, namespace: str, *what: str) -> Any:
    return json.loads(k8s.kubectl("-n", namespace, "get", *what, "-o", "json").stdout)


def wait_ready(k8s: LocalCluster, namespace: str, name: str, timeout: int = 90) -> dict[str, Any]:
    """Ready for the current generation (a Ready left from the previous one does not count)."""
    generation = get(k8s, namespace, "opl", name)["metadata"]["generation"]
    k8s.kubectl(
        "-n", namespace, "wait", f"opl/{name}", f"--timeout={timeout}s",
        f"--for=jsonpath={{.status.observedGeneration}}={generation}",
    )  # fmt: skip
    k8s.kubectl(
        "-n", namespace, "wait", f"opl/{name}", "--for=condition=Ready", f"--timeout={timeout}s"
    )
    obj: dict[str, Any] = get(k8s, namespace, "opl", name)
    return obj


def pods_by_component(k8s: LocalCluster, namespace: str, instance: str) -> dict[str, set[str]]:
    """Live (not terminating) pod names per app.kubernetes.io/component."""
    items = get(k8s, namespace, "pods", "-l", f"app.kubernetes.io/instance={instance}")["items"]
    out: dict[str, set[str]] = {}
    for pod in items:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        component = pod["metadata"]["labels"].get("app.kubernetes.io/component", "?")
        out.setdefault(component, set()).add(pod["metadata"]["name"])
    return out


def eventually(check: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")

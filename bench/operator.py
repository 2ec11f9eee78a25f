"""Operator benchmark: apply -> children created and apply -> Ready for 1 and 20
OrderPipelines, and the operator's RSS, on the real local cluster (kwok node).

Targets (issue 5): children < 3 s, Ready < 15 s, RSS < 150 MB.
Runnable alone: `python -m bench.operator [--quick] [--stock-controller-manager]`.

The local kube-controller-manager (devinfra.cluster) runs with `--kube-api-qps=200
--kube-api-burst=400`: at its default client rate limit (20 requests/s) it needs ~25 s
just to create the ReplicaSets and Pods of 20 pipelines' 120 Deployments, whatever the
operator does, and that, not the operator, would be the Ready figure. `--stock-controller-manager`
measures with the defaults (docs/operator.md has both figures).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from devinfra.cluster import LocalCluster
from devinfra.procs import ManagedProcess, free_port, wait_for
from kubernetes import client, config

from bench.common import BenchEnv, Figure, rss_mb, summarize

ROOT = Path(__file__).resolve().parents[1]
GROUP, VERSION, PLURAL = "orderpipeline.io", "v1alpha1", "orderpipelines"
WORKERS = ("producer", "fraud", "payment", "analytics")


def _pipeline(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "OrderPipeline",
        "metadata": {"name": name},
        "spec": {
            "kafka": {"bootstrapServers": "kafka:9092"},
            "couchbase": {
                "connectionString": "couchbase://couchbase",
                "credentialsSecretRef": {"name": "couchbase-credentials"},
            },
            "webapp": {"host": f"{name}.local"},
        },
    }


class _StockControllerManager(LocalCluster):
    """The local cluster with the controller-manager's default client rate limit."""

    def _controller_manager(self) -> ManagedProcess:
        proc = super()._controller_manager()
        proc.argv = [a for a in proc.argv if not a.startswith("--kube-api-")]
        return proc


class Cluster:
    """The cluster, the CRDs and the operator, with API clients for fast polling."""

    def __init__(self, workdir: Path, stock_controller_manager: bool = False) -> None:
        kind = _StockControllerManager if stock_controller_manager else LocalCluster
        self.k8s = kind(workdir / "cluster").start()
        self.k8s.install_crds(ROOT / "crds")
        peering = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
                   "metadata": {"name": "orderpipeline-operator"}}  # fmt: skip
        self.k8s.kubectl("apply", "-f", "-", input=json.dumps(peering))
        # The kubernetes client's config loaders carry no annotations.
        config.load_kube_config(str(self.k8s.kubeconfig))  # type: ignore[no-untyped-call]
        self.core, self.apps = client.CoreV1Api(), client.AppsV1Api()
        self.custom = client.CustomObjectsApi()
        live = free_port()
        env = {
            **os.environ, **self.k8s.env,
            "OPERATOR_HELM_BINARY": str(self.k8s.toolchain.helm),
            "OPERATOR_WEBAPP_CHART": str(ROOT / "charts" / "webapp"),
            "OPERATOR_LIVENESS_PORT": str(live), "OPERATOR_METRICS_PORT": str(free_port()),
        }  # fmt: skip
        self.operator = ManagedProcess(
            "orderpipeline-operator", [ROOT / ".venv" / "bin" / "orderpipeline-operator"],
            log_path=workdir / "operator.log", env=env,
        ).start()  # fmt: skip
        wait_for(
            lambda: bool(urllib.request.urlopen(f"http://127.0.0.1:{live}/healthz", timeout=1)),
            timeout=60, what="operator", alive=self.operator.ensure_running,
        )  # fmt: skip
        self._ns = 0

    def namespace(self) -> str:
        self._ns += 1
        name = f"bench-{self._ns}"
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        self.core.create_namespaced_secret(
            name,
            client.V1Secret(metadata=client.V1ObjectMeta(name="couchbase-credentials"),
                            string_data={"username": "u", "password": "p"}),
        )  # fmt: skip
        return name

    def create(self, namespace: str, name: str) -> None:
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, _pipeline(name)
        )

    def children_exist(self, namespace: str, names: list[str]) -> bool:
        deployments = self.apps.list_namespaced_deployment(namespace).items
        have = {d.metadata.name for d in deployments if d.metadata}
        cms = {
            c.metadata.name
            for c in self.core.list_namespaced_config_map(namespace).items
            if c.metadata
        }
        return all({f"{n}-{w}" for w in WORKERS} <= have and f"{n}-config" in cms for n in names)

    def ready(self, namespace: str, names: list[str]) -> bool:
        # The custom-objects API returns the decoded JSON list, typed as object.
        items = cast(
            dict[str, Any],
            self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL),
        )
        ready = {
            i["metadata"]["name"]
            for i in items["items"]
            if any(c["type"] == "Ready" and c["status"] == "True"
                   for c in (i.get("status") or {}).get("conditions", []))
        }  # fmt: skip
        return set(names) <= ready

    def stop(self) -> None:
        self.operator.stop()
        self.k8s.stop()


def _until(check: Callable[[], bool], started: float, timeout: float = 300) -> float:
    while not check():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("benchmark condition not reached")
        time.sleep(0.05)
    return time.perf_counter() - started


def _round(cluster: Cluster, count: int, spread: int) -> tuple[float, float]:
    """Apply `count` pipelines over `spread` namespaces: (children seconds, Ready seconds)."""
    spaces = [cluster.namespace() for _ in range(spread)]
    wanted: dict[str, list[str]] = {ns: [] for ns in spaces}
    started = time.perf_counter()
    for i in range(count):
        ns = spaces[i % spread]
        cluster.create(ns, f"p{i}")
        wanted[ns].append(f"p{i}")
    children = _until(
        lambda: all(cluster.children_exist(ns, n) for ns, n in wanted.items()), started
    )
    ready = _until(lambda: all(cluster.ready(ns, n) for ns, n in wanted.items()), started)
    return children, ready


def measure(env: BenchEnv, quick: bool, stock_controller_manager: bool = False) -> list[Figure]:
    cluster = Cluster(env.workdir / "operator-bench", stock_controller_manager)
    try:
        single = [_round(cluster, 1, 1) for _ in range(1 if quick else 3)]
        many = [_round(cluster, 20, 4) for _ in range(1)]
        rss = rss_mb(cluster.operator.pid or 0)
    finally:
        cluster.stop()
    return [
        summarize("operator: apply -> children (1 pipeline)", "s", [c for c, _ in single], None,
                  "< 3 s", lambda v, _: v < 3),
        summarize("operator: apply -> Ready (1 pipeline)", "s", [r for _, r in single], None,
                  "< 15 s", lambda v, _: v < 15),
        summarize("operator: apply -> children (20 pipelines)", "s", [c for c, _ in many], None,
                  "< 3 s", lambda v, _: v < 3),
        summarize("operator: apply -> Ready (20 pipelines)", "s", [r for _, r in many], None,
                  "< 15 s", lambda v, _: v < 15),
        summarize("operator: RSS after 20 pipelines", "MB", [rss], None,
                  "< 150 MB", lambda v, _: v < 150),
    ]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--stock-controller-manager", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-operator-") as tmp:
        env = BenchEnv(
            workdir=Path(tmp), bootstrap_servers="", kafka_client_config={}, kafka_env={}
        )
        figures = measure(env, args.quick, args.stock_controller_manager)
    json.dump([f.to_json() for f in figures], sys.stdout, indent=2)
    print()
    return 0 if all(f.met is not False for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())

"""Every pod either chart can render, in every `ci/*-values.yaml` scenario, is admitted by the
real API server into a namespace that enforces the restricted Pod Security Standard.

A Deployment is admitted whatever its pod template says (Pod Security only warns for it): the
proof is that its ReplicaSet could create every pod, with no FailedCreate event.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from devinfra.cluster import LocalCluster

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
CHARTS = [ROOT / "charts" / "webapp", ROOT / "charts" / "orderpipeline-operator"]
SCENARIOS = [
    (chart, values) for chart in CHARTS for values in sorted(chart.glob("ci/*-values.yaml"))
]
# What pods need to be created; the rest of a chart (Ingress, RBAC, ...) carries no pod.
POD_KINDS = {"Deployment", "Pod"}
SUPPORT_KINDS = {"ServiceAccount", "ConfigMap", "Secret"}


def _json(k8s: LocalCluster, *args: str) -> Any:
    return json.loads(k8s.kubectl(*args, "-o", "json").stdout)


def restricted_namespace(k8s: LocalCluster) -> str:
    name = f"pss-{uuid.uuid4().hex[:6]}"
    k8s.kubectl("create", "namespace", name)
    k8s.kubectl(
        "label", "namespace", name, "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
    )  # fmt: skip
    return name


def pods_settled(k8s: LocalCluster, ns: str, deployments: int) -> bool:
    """Every Deployment has a ReplicaSet and every ReplicaSet tried to create its pods."""
    replica_sets = _json(k8s, "-n", ns, "get", "replicasets")["items"]
    if len(replica_sets) < deployments:
        return False
    failed = any(
        e.get("reason") == "FailedCreate" for e in _json(k8s, "-n", ns, "get", "events")["items"]
    )
    created = all(
        rs["status"].get("replicas", 0) == rs["spec"].get("replicas", 0) for rs in replica_sets
    )
    return failed or created


def install_pods(
    k8s: LocalCluster, ns: str, chart: Path, values: Path, *sets: str
) -> tuple[str, list[str], int, int]:
    """Apply what carries pods; (kubectl's errors, FailedCreate messages, pods created, pods
    wanted)."""
    args = ["template", "pss", str(chart), "--namespace", ns, "--values", str(values)]
    for item in sets:
        args += ["--set", item]
    manifests = [m for m in yaml.safe_load_all(k8s.helm(*args).stdout) if m]
    # Objects the chart puts in other namespaces (the namespaced operator's Roles) carry no
    # pod; everything with a pod goes into the restricted namespace.
    wanted = [m for m in manifests if m["kind"] in POD_KINDS | SUPPORT_KINDS]
    for m in wanted:
        m["metadata"]["namespace"] = ns
    deployments = sum(1 for m in wanted if m["kind"] == "Deployment")
    bare_pods = sum(1 for m in wanted if m["kind"] == "Pod")
    assert deployments, f"{values.name} renders no Deployment"
    result = k8s.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(wanted), check=False)
    errors = result.stderr if result.returncode else ""  # a bare Pod is refused right here
    deadline = time.monotonic() + 60
    while not pods_settled(k8s, ns, deployments):
        assert time.monotonic() < deadline, "ReplicaSets did not create their pods"
        time.sleep(0.5)
    events = _json(k8s, "-n", ns, "get", "events")["items"]
    refused = [e["message"] for e in events if e.get("reason") == "FailedCreate"]
    pods = _json(k8s, "-n", ns, "get", "pods")["items"]
    wanted_pods = bare_pods + sum(
        rs["spec"].get("replicas", 0) for rs in _json(k8s, "-n", ns, "get", "replicasets")["items"]
    )
    return errors, refused, len(pods), wanted_pods


@pytest.mark.parametrize(
    ("chart", "values"), SCENARIOS, ids=[f"{c.name}-{v.stem}" for c, v in SCENARIOS]
)
def test_every_rendered_pod_is_admitted_under_restricted(
    k8s: LocalCluster, chart: Path, values: Path
) -> None:
    ns = restricted_namespace(k8s)
    try:
        errors, refused, created, wanted = install_pods(k8s, ns, chart, values)
        assert errors == ""
        assert refused == [], refused
        assert created == wanted > 0
    finally:
        k8s.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def test_a_pod_that_breaks_the_standard_would_be_caught(k8s: LocalCluster) -> None:
    """The check above can fail: the same install with privilege escalation allowed is refused."""
    ns = restricted_namespace(k8s)
    webapp = CHARTS[0]
    try:
        errors, refused, created, _ = install_pods(
            k8s, ns, webapp, webapp / "ci" / "quickstart-values.yaml",
            "containerSecurityContext.allowPrivilegeEscalation=true",
        )  # fmt: skip
        assert "violates PodSecurity" in errors  # the bare helm-test Pod
        assert refused and all("violates PodSecurity" in m for m in refused)  # the Deployments'
        assert created == 0
    finally:
        k8s.kubectl("delete", "namespace", ns, "--wait=false", check=False)

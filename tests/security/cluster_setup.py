"""One operator deployment the cluster security tests share: the operator chart installed in
namespace-list mode, and the operator process running with nothing but its ServiceAccount's
token, reconciling an OrderPipeline whose Secrets hold canary credentials. Every namespace is
labelled to enforce the restricted Pod Security Standard."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from devinfra.cluster import LocalCluster
from devinfra.procs import ManagedProcess, free_port, wait_for

from .canary import new_canary

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_CHART = ROOT / "charts" / "orderpipeline-operator"
PEERING = "orderpipeline-operator"
FREEZE_ID = "security-tests"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
PIPELINE = "vault"
RELEASE = "secop"


@dataclass
class Deployment:
    k8s: LocalCluster
    system: str  # the operator's own namespace
    watched: str  # the one namespace it watches
    other: str  # a namespace it must not reach
    service_account: str
    token_kubeconfig: Path
    canaries: dict[str, str] = field(default_factory=dict)
    operator: ManagedProcess | None = None
    metrics_port: int = 0

    @property
    def sa_user(self) -> str:
        return f"system:serviceaccount:{self.system}:{self.service_account}"

    def as_operator(self, *args: str) -> subprocess.CompletedProcess[str]:
        """kubectl authenticated with the operator's own token (no impersonation)."""
        env = {**os.environ, "KUBECONFIG": str(self.token_kubeconfig)}
        return subprocess.run(
            [str(self.k8s.toolchain.kubectl), *args],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip


def namespace(k8s: LocalCluster, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    k8s.kubectl("create", "namespace", name)
    k8s.kubectl("label", "namespace", name, *(f"{k}={v}" for k, v in RESTRICTED.items()))
    return name


def freeze_other_operators(k8s: LocalCluster) -> None:
    """Pause any all-namespaces operator of this session (kopf peering, highest priority),
    so only the operator under test can have made what the tests see."""
    k8s.kubectl("apply", "-f", str(ROOT / "crds"))
    k8s.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s",
        "crd/orderpipelines.orderpipeline.io", "crd/clusterkopfpeerings.kopf.dev",
    )  # fmt: skip
    peering = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering",
               "metadata": {"name": PEERING}}  # fmt: skip
    k8s.kubectl("apply", "-f", "-", input=json.dumps(peering))
    kopf(k8s, "freeze", "-A", "-P", PEERING, "-i", FREEZE_ID, "-p", "1000000", "-t", "1800")


def resume_other_operators(k8s: LocalCluster) -> None:
    kopf(k8s, "resume", "-A", "-P", PEERING, "-i", FREEZE_ID)


def kopf(k8s: LocalCluster, *args: str) -> None:
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "kopf"), *args],
        env=k8s.env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def token_kubeconfig(k8s: LocalCluster, system: str, sa: str, path: Path) -> Path:
    """A kubeconfig with a short-lived token of the ServiceAccount, as the pod would have."""
    token = k8s.kubectl("create", "token", sa, "-n", system, "--duration=2h").stdout.strip()
    admin = yaml.safe_load(k8s.kubeconfig.read_text())
    cluster = admin["clusters"][0]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "operator", "user": {"token": token}}],
                "contexts": [
                    {"name": "op", "context": {"cluster": cluster["name"], "user": "operator"}}
                ],
                "current-context": "op",
            }
        )
    )
    path.chmod(0o600)
    return path


def install_operator_chart(k8s: LocalCluster, system: str, watched: str) -> str:
    k8s.helm(
        "install", RELEASE, str(OPERATOR_CHART), "-n", system, "--set", "crds.install=false",
        "--set", f"watchNamespaces={{{watched}}}", "--wait", "--timeout", "120s",
    )  # fmt: skip
    return f"{RELEASE}-orderpipeline-operator"


def plant_secrets(k8s: LocalCluster, watched: str) -> dict[str, str]:
    canaries = {
        "kafka-password": new_canary("kafka-password"),
        "couchbase-password": new_canary("couchbase-password"),
        # Not a secret in itself, but a mounted Secret must stay a mount, never inlined.
        "kafka-ca": new_canary("kafka-ca"),
    }
    k8s.kubectl(
        "-n", watched, "create", "secret", "generic", "kafka-credentials",
        "--from-literal=username=orders", f"--from-literal=password={canaries['kafka-password']}",
    )  # fmt: skip
    k8s.kubectl(
        "-n", watched, "create", "secret", "generic", "couchbase-credentials",
        "--from-literal=username=Administrator",
        f"--from-literal=password={canaries['couchbase-password']}",
    )  # fmt: skip
    k8s.kubectl(
        "-n", watched, "create", "secret", "generic", "kafka-ca",
        f"--from-literal=ca.crt={canaries['kafka-ca']}",
    )  # fmt: skip
    return canaries


def pipeline_manifest() -> dict[str, Any]:
    return {
        "apiVersion": "orderpipeline.io/v1alpha1",
        "kind": "OrderPipeline",
        "metadata": {"name": PIPELINE},
        "spec": {
            "kafka": {
                "bootstrapServers": "kafka.example:9093",
                "securityProtocol": "SASL_SSL",
                "credentialsSecretRef": {"name": "kafka-credentials"},
                "caSecretRef": {"name": "kafka-ca"},
            },
            "couchbase": {
                "connectionString": "couchbases://cb.example",
                "credentialsSecretRef": {"name": "couchbase-credentials"},
            },
        },
    }


def start_operator(deployment: Deployment, workdir: Path) -> None:
    """The operator as the chart configures it, but authenticated only by the SA token."""
    liveness = free_port()
    deployment.metrics_port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(deployment.token_kubeconfig),
        "HELM_CACHE_HOME": str(workdir / "helm" / "cache"),
        "HELM_CONFIG_HOME": str(workdir / "helm" / "config"),
        "HELM_DATA_HOME": str(workdir / "helm" / "data"),
        "OPERATOR_NAMESPACES": deployment.watched,
        "OPERATOR_STANDALONE": "true",
        "OPERATOR_HELM_BINARY": str(deployment.k8s.toolchain.helm),
        "OPERATOR_WEBAPP_CHART": str(ROOT / "charts" / "webapp"),
        "OPERATOR_HELM_TIMEOUT_SECONDS": "60",
        "OPERATOR_RESYNC_SECONDS": "5",
        "OPERATOR_LIVENESS_PORT": str(liveness),
        "OPERATOR_METRICS_PORT": str(deployment.metrics_port),
    }
    process = ManagedProcess(
        "orderpipeline-operator (service account)",
        [ROOT / ".venv" / "bin" / "orderpipeline-operator"],
        log_path=workdir / "operator.log",
        env=env,
    )
    deployment.operator = process.start()

    def alive() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{liveness}/healthz", timeout=1):
            return True

    wait_for(alive, timeout=60, what="operator liveness", alive=process.ensure_running)


def wait_ready(deployment: Deployment, timeout: int = 150) -> dict[str, Any]:
    k8s, ns = deployment.k8s, deployment.watched

    def ready() -> bool:
        assert deployment.operator is not None
        deployment.operator.ensure_running()
        obj = json.loads(k8s.kubectl("-n", ns, "get", "opl", PIPELINE, "-o", "json").stdout)
        conditions = obj.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    try:
        wait_for(ready, timeout=timeout, what=f"OrderPipeline {PIPELINE} Ready", interval=1)
    except TimeoutError as exc:
        assert deployment.operator is not None
        raise AssertionError(f"{exc}; operator log:\n{deployment.operator.log_tail(40)}") from None
    obj: dict[str, Any] = json.loads(
        k8s.kubectl("-n", ns, "get", "opl", PIPELINE, "-o", "json").stdout
    )
    return obj

"""The operator on the real API server, in namespace-list mode, running with only its
ServiceAccount's token: its RBAC is enough to make a pipeline Ready, it cannot reach beyond
its namespaces or escalate, every pod it causes passes the restricted Pod Security Standard,
and the canary credentials in the referenced Secrets appear nowhere else."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from devinfra.cluster import LocalCluster

from .canary import decode_helm_release, http_text, leaks
from .cluster_setup import (
    PIPELINE,
    RELEASE,
    Deployment,
    freeze_other_operators,
    install_operator_chart,
    namespace,
    pipeline_manifest,
    plant_secrets,
    resume_other_operators,
    start_operator,
    token_kubeconfig,
    wait_ready,
)

pytestmark = pytest.mark.cluster

WORKERS = ("producer", "fraud", "payment", "analytics")
REFERENCED_SECRETS = {"kafka-credentials", "couchbase-credentials", "kafka-ca"}


@pytest.fixture(scope="module")
def deployment(k8s: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    workdir = tmp_path_factory.mktemp("security-operator")
    freeze_other_operators(k8s)
    system, watched, other = (namespace(k8s, p) for p in ("secsys", "secteam", "secother"))
    try:
        sa = install_operator_chart(k8s, system, watched)
        dep = Deployment(
            k8s, system, watched, other, sa,
            token_kubeconfig(k8s, system, sa, workdir / "operator-sa.kubeconfig"),
        )  # fmt: skip
        dep.canaries = plant_secrets(k8s, watched)
        # A Secret the operator must not be able to read.
        k8s.kubectl("-n", other, "create", "secret", "generic", "elsewhere",
                    "--from-literal=password=not-for-the-operator")  # fmt: skip
        start_operator(dep, workdir)
        k8s.kubectl("-n", watched, "apply", "-f", "-", input=json.dumps(pipeline_manifest()))
        yield dep
    finally:
        k8s.kubectl("-n", watched, "delete", "opl", PIPELINE, "--timeout=90s", check=False)
        if "dep" in locals() and dep.operator is not None:
            dep.operator.stop()
        k8s.helm("uninstall", RELEASE, "-n", system, check=False)
        for ns in (system, watched, other):
            k8s.kubectl("delete", "namespace", ns, "--wait=false", check=False)
        resume_other_operators(k8s)


@pytest.fixture(scope="module")
def ready(deployment: Deployment) -> dict[str, Any]:
    return wait_ready(deployment)


def _json(k8s: LocalCluster, *args: str) -> Any:
    return json.loads(k8s.kubectl(*args, "-o", "json").stdout)


def test_operator_with_only_its_service_account_makes_the_pipeline_ready(
    deployment: Deployment, ready: dict[str, Any]
) -> None:
    status = ready["status"]
    summary = status["summary"]
    assert (summary["producer"], summary["consumers"]) == ("1/1", "3/3")
    # Read with the pipeline's own Kafka settings; no broker runs in this test.
    assert summary["lag"] == "unknown"
    assert status["webapp"]["state"] == "deployed"
    assert status["lastError"] == ""
    # The release was written by the operator's identity, not by an admin.
    deployments = _json(deployment.k8s, "-n", deployment.watched, "get", "deployments")
    names = {d["metadata"]["name"] for d in deployments["items"]}
    assert {f"{PIPELINE}-{w}" for w in WORKERS} <= names
    assert any(n.endswith("-backend") for n in names)


def test_every_pod_passes_the_restricted_pod_security_standard(
    deployment: Deployment, ready: dict[str, Any]
) -> None:
    k8s = deployment.k8s
    for ns in (deployment.system, deployment.watched):
        labels = _json(k8s, "get", "namespace", ns)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        events = _json(k8s, "-n", ns, "get", "events")["items"]
        refused = [e["message"] for e in events if e.get("reason") == "FailedCreate"]
        assert refused == [], refused
        replica_sets = _json(k8s, "-n", ns, "get", "replicasets")["items"]
        assert replica_sets
        for rs in replica_sets:
            wanted = rs["spec"].get("replicas", 0)
            assert rs["status"].get("replicas", 0) == wanted, rs["metadata"]["name"]
    pods = _json(k8s, "-n", deployment.watched, "get", "pods")["items"]
    components = {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods}
    assert set(WORKERS) | {"backend", "dashboard"} <= components, components
    operator_pods = _json(k8s, "-n", deployment.system, "get", "pods")["items"]
    assert len(operator_pods) == 1


def _can(deployment: Deployment, verb: str, resource: str, ns: str | None) -> bool:
    """`kubectl auth can-i` as the operator; `pods/exec` means the subresource (kubectl would
    read `TYPE/NAME`, an object named exec, which says nothing about the subresource)."""
    kind, _, subresource = resource.partition("/")
    args = ["auth", "can-i", verb, kind, f"--as={deployment.sa_user}"]
    args += [f"--subresource={subresource}"] if subresource else []
    args += ["-n", ns] if ns else []
    answer: str = deployment.k8s.kubectl(*args, check=False).stdout.strip()
    return answer == "yes"


def test_operator_can_do_what_it_needs_in_its_namespace(deployment: Deployment) -> None:
    for verb, resource in [
        ("watch", "orderpipelines.orderpipeline.io"),
        ("patch", "orderpipelines.orderpipeline.io/status"),
        ("create", "deployments.apps"),
        ("get", "secrets"),
        ("create", "events"),
    ]:
        assert _can(deployment, verb, resource, deployment.watched), (verb, resource)


def test_operator_cannot_read_secrets_outside_its_namespaces(deployment: Deployment) -> None:
    for ns in (deployment.other, deployment.system, "kube-system", "default"):
        for verb in ("get", "list", "watch"):
            assert not _can(deployment, verb, "secrets", ns), (verb, ns)
    assert not _can(deployment, "list", "secrets", None)
    # Its real token, not impersonation: the API server refuses.
    result = deployment.as_operator("-n", deployment.other, "get", "secret", "elsewhere")
    assert result.returncode != 0 and "forbidden" in result.stderr.lower()
    result = deployment.as_operator("get", "secrets", "-A")
    assert result.returncode != 0 and "forbidden" in result.stderr.lower()


ESCALATIONS = [
    # RBAC objects: granting itself (or anyone) more.
    ("create", "clusterrolebindings.rbac.authorization.k8s.io", None),
    ("create", "clusterroles.rbac.authorization.k8s.io", None),
    ("create", "rolebindings.rbac.authorization.k8s.io", "watched"),
    ("create", "roles.rbac.authorization.k8s.io", "watched"),
    ("update", "roles.rbac.authorization.k8s.io", "watched"),
    ("bind", "clusterroles.rbac.authorization.k8s.io", None),
    ("bind", "roles.rbac.authorization.k8s.io", "watched"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io", None),
    ("escalate", "roles.rbac.authorization.k8s.io", "watched"),
    # Acting as someone else.
    ("impersonate", "users", None),
    ("impersonate", "groups", None),
    ("impersonate", "serviceaccounts", "watched"),
    ("create", "serviceaccounts/token", "watched"),
    ("create", "certificatesigningrequests.certificates.k8s.io", None),
    # Reaching into workloads and nodes.
    ("create", "pods", "watched"),
    ("create", "pods/exec", "watched"),
    ("create", "pods/attach", "watched"),
    ("get", "nodes/proxy", None),
    ("update", "nodes", None),
    ("create", "mutatingwebhookconfigurations.admissionregistration.k8s.io", None),
    ("update", "customresourcedefinitions.apiextensions.k8s.io", None),
    ("update", "namespaces", None),
]


@pytest.mark.parametrize(("verb", "resource", "where"), ESCALATIONS)
def test_operator_cannot_escalate(
    deployment: Deployment, verb: str, resource: str, where: str | None
) -> None:
    ns = deployment.watched if where == "watched" else where
    assert not _can(deployment, verb, resource, ns)


def test_operator_rules_name_every_verb_and_resource(deployment: Deployment) -> None:
    """No wildcard anywhere: every right is spelled out (so none arrives unnoticed)."""
    k8s = deployment.k8s
    selector = f"app.kubernetes.io/instance={RELEASE}"
    roles = _json(k8s, "get", "clusterroles", "-l", selector)["items"]
    roles += _json(k8s, "-n", deployment.watched, "get", "roles", "-l", selector)["items"]
    assert len(roles) == 2
    for role in roles:
        for rule in role["rules"]:
            for key in ("verbs", "resources", "apiGroups"):
                assert "*" not in rule.get(key, []), (role["metadata"]["name"], rule)
            assert not {"bind", "escalate", "impersonate"} & set(rule["verbs"])
    listed = k8s.kubectl(
        "auth", "can-i", "--list", f"--as={deployment.sa_user}", "-n", deployment.watched
    ).stdout
    for line in listed.splitlines()[1:]:
        if line.startswith(("selfsubject", "/")):  # granted to every authenticated user
            continue
        assert "[*]" not in line and not line.startswith("*"), line


def test_planted_credentials_appear_nowhere(
    deployment: Deployment, ready: dict[str, Any], tmp_path: Path
) -> None:
    k8s, ns = deployment.k8s, deployment.watched
    places: dict[str, str] = {}
    for kind in ("configmaps", "deployments", "replicasets", "pods", "events", "services"):
        places[f"{kind} (all namespaces)"] = k8s.kubectl("get", kind, "-A", "-o", "json").stdout
    places["OrderPipeline"] = k8s.kubectl("-n", ns, "get", "opl", PIPELINE, "-o", "json").stdout
    places["helm get values --all"] = k8s.helm(
        "get", "values", PIPELINE, "-n", ns, "--all", "-o", "json"
    ).stdout
    places["helm get manifest"] = k8s.helm("get", "manifest", PIPELINE, "-n", ns).stdout
    secrets = _json(k8s, "get", "secrets", "-A")["items"]
    releases = [s for s in secrets if s.get("type") == "helm.sh/release.v1"]
    assert any(s["metadata"]["namespace"] == ns for s in releases)
    for secret in releases:
        name = f"helm release {secret['metadata']['namespace']}/{secret['metadata']['name']}"
        places[name] = decode_helm_release(secret["data"]["release"])
    # Every other Secret: a copy of a credential (e.g. a chart-made Secret) is a leak too.
    for secret in secrets:
        meta = secret["metadata"]
        if meta["namespace"] == ns and meta["name"] in REFERENCED_SECRETS:
            continue
        if secret.get("type") != "helm.sh/release.v1":
            places[f"secret {meta['namespace']}/{meta['name']}"] = json.dumps(secret)
    places["operator /metrics"] = http_text(f"http://127.0.0.1:{deployment.metrics_port}/metrics")[
        1
    ]
    assert deployment.operator is not None
    places["operator log"] = deployment.operator.log_path.read_text(errors="replace")
    assert (
        "couchbase-credentials" in places["operator log"] + places["deployments (all namespaces)"]
    )
    assert leaks(places, deployment.canaries.values()) == []

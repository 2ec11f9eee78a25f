"""Both charts against the real local API server (kube-apiserver + kwok node): server-side
validation, Pod Security admission, install/upgrade/uninstall and the operator's RBAC.

kwok marks pods Running/Ready but never runs a container: a bare Pod such as the
`helm test` hook never completes, so its test checks admission and scheduling only.
"""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import OPERATOR, ROOT, WEBAPP, ci_values, parse_manifests, template_args

pytestmark = pytest.mark.cluster

CLUSTER_SCOPED = {"CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Namespace"}
RESTRICTED = "pod-security.kubernetes.io/enforce=restricted"


def _namespace(k8s: Any, prefix: str, restricted: bool = True) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    k8s.kubectl("create", "namespace", name)
    if restricted:
        k8s.kubectl(
            "label",
            "namespace",
            name,
            RESTRICTED,
            "pod-security.kubernetes.io/enforce-version=latest",
        )
    return name


def _json(k8s: Any, *args: str) -> Any:
    return json.loads(k8s.kubectl(*args, "-o", "json").stdout)


@pytest.mark.parametrize(
    "chart,values",
    [(WEBAPP, v) for v in ci_values(WEBAPP)] + [(OPERATOR, v) for v in ci_values(OPERATOR)],
    ids=lambda p: p.name if isinstance(p, Path) else None,
)
def test_every_rendered_manifest_is_accepted_by_the_api_server(
    k8s: Any, chart: Path, values: Path
) -> None:
    namespace = _namespace(k8s, "dry")
    for watched in ("orders-a", "orders-b"):  # the namespaced operator scenario's Roles
        k8s.kubectl("create", "namespace", watched, check=False)
    rendered = k8s.helm(*template_args(chart, "rel", [values], {}, namespace)).stdout
    manifests = parse_manifests(rendered)
    # The local cluster has no Gateway API CRDs (they are not in any reachable registry):
    # HTTPRoute is checked by the render tests only.
    accepted = [m for m in manifests if m["kind"] != "HTTPRoute"]
    assert {m["kind"] for m in manifests} - {m["kind"] for m in accepted} <= {"HTTPRoute"}
    # Objects of other namespaces (the namespaced operator's Roles) keep theirs.
    for m in accepted:
        if m["kind"] not in CLUSTER_SCOPED:
            m["metadata"].setdefault("namespace", namespace)
    # A dry run persists nothing, and a Pod's ServiceAccount must exist: create those first.
    accounts = [m for m in accepted if m["kind"] == "ServiceAccount"]
    if accounts:
        k8s.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(accounts))
    result = k8s.kubectl(
        "apply", "--dry-run=server", "-f", "-",
        input=yaml.safe_dump_all(accepted), check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(accepted)


def test_restricted_namespace_rejects_a_privileged_pod(k8s: Any) -> None:
    """The Pod Security label is enforced here, so the installs below prove something."""
    namespace = _namespace(k8s, "psa")
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root"},
        "spec": {
            "containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]
        },
    }
    result = k8s.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(pod), check=False)
    assert result.returncode != 0 and "violates PodSecurity" in result.stderr


def test_webapp_installs_upgrades_and_uninstalls_in_a_restricted_namespace(k8s: Any) -> None:
    ns = _namespace(k8s, "webapp")
    k8s.helm(
        "install", "shop", str(WEBAPP), "-n", ns,
        "--values", str(WEBAPP / "ci" / "quickstart-values.yaml"), "--wait", "--timeout", "120s",
    )  # fmt: skip
    deployments = _json(k8s, "get", "deployments", "-n", ns)["items"]
    assert {d["metadata"]["name"] for d in deployments} == {
        "shop-webapp-backend",
        "shop-webapp-dashboard",
    }
    assert all(d["status"].get("readyReplicas") == 1 for d in deployments)
    before = _json(k8s, "get", "deployment", "shop-webapp-backend", "-n", ns)
    ingress = _json(k8s, "get", "ingress", "shop-webapp", "-n", ns)
    assert ingress["spec"]["rules"][0]["host"] == "orders.local"

    k8s.helm(
        "upgrade", "shop", str(WEBAPP), "-n", ns, "--reuse-values",
        "--set", "backend.replicas=2", "--set", "couchbase.bucket=orders_v2",
        "--wait", "--timeout", "120s",
    )  # fmt: skip
    after = _json(k8s, "get", "deployment", "shop-webapp-backend", "-n", ns)
    assert after["spec"]["replicas"] == 2
    checksum = "checksum/config"
    assert (
        after["spec"]["template"]["metadata"]["annotations"][checksum]
        != before["spec"]["template"]["metadata"]["annotations"][checksum]
    )
    config = _json(k8s, "get", "configmap", "shop-webapp-backend", "-n", ns)
    assert config["data"]["COUCHBASE_BUCKET"] == "orders_v2"
    status = json.loads(k8s.helm("status", "shop", "-n", ns, "-o", "json").stdout)
    assert status["version"] == 2 and status["info"]["status"] == "deployed"

    k8s.helm("uninstall", "shop", "-n", ns, "--wait")
    leftovers = k8s.kubectl(
        "get",
        "deploy,svc,ingress,cm,secret",
        "-n",
        ns,
        "-l",
        "app.kubernetes.io/instance=shop",
        "-o",
        "name",
    )
    assert leftovers.stdout.strip() == ""


def test_helm_test_hook_is_admitted_and_targets_the_backend_service(k8s: Any) -> None:
    ns = _namespace(k8s, "hook")
    k8s.helm(
        "install",
        "web",
        str(WEBAPP),
        "-n",
        ns,
        "--set",
        "couchbase.password=x",
        "--wait",
        "--timeout",
        "120s",
    )
    # On kwok the hook pod runs no container, so it never succeeds: helm test times out.
    k8s.helm("test", "web", "-n", ns, "--timeout", "10s", check=False)
    pod = _json(k8s, "get", "pod", "web-webapp-test-healthz", "-n", ns)
    assert pod["status"]["phase"] == "Running"  # admitted by restricted PSA and scheduled
    assert pod["spec"]["containers"][0]["args"] == ["http://web-webapp-backend:8000/healthz"]
    service = _json(k8s, "get", "service", "web-webapp-backend", "-n", ns)
    assert service["spec"]["ports"][0]["port"] == 8000
    k8s.helm("uninstall", "web", "-n", ns)


def _can(k8s: Any, sa: str, verb: str, resource: str, namespace: str | None) -> bool:
    # "pods/exec" to kubectl means the pod named exec: subresources need their flag.
    kind, _, subresource = resource.partition("/")
    args = ["auth", "can-i", verb, kind, f"--as={sa}"]
    args += [f"--subresource={subresource}"] if subresource else []
    args += ["-n", namespace] if namespace else []
    answer = k8s.kubectl(*args, check=False)
    # An unknown resource is a "no" with a warning: that must not pass as "cannot".
    assert "doesn't have a resource type" not in answer.stderr, answer.stderr
    stdout: str = answer.stdout
    return stdout.strip() == "yes"


def test_operator_chart_upgrades_the_crd_and_keeps_it_on_uninstall(
    k8s: Any, tmp_path: Path
) -> None:
    ns = _namespace(k8s, "opsys")
    # --take-ownership: other tests of the session may have applied crds/ directly.
    install = ("--take-ownership", "--wait", "--timeout", "120s")
    k8s.helm("install", "op", str(OPERATOR), "-n", ns, *install)
    deployment = _json(k8s, "get", "deployment", "op-orderpipeline-operator", "-n", ns)
    assert deployment["status"].get("readyReplicas") == 1

    # A new chart version with a changed CRD: `helm upgrade` must bring the change.
    chart = tmp_path / "orderpipeline-operator"
    shutil.copytree(OPERATOR, chart)
    crd_file = chart / "files" / "orderpipelines.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    crd["spec"]["versions"][0]["additionalPrinterColumns"].append(
        {"name": "Upgraded", "type": "string", "jsonPath": ".spec.logLevel", "priority": 1}
    )
    crd_file.write_text(yaml.safe_dump(crd))
    # --force-conflicts: fields of a CRD first applied with kubectl stay owned by
    # kubectl's field manager; Helm 4 applies server-side, so it must take them over.
    k8s.helm(
        "upgrade", "op", str(chart), "-n", ns, "--force-conflicts", "--wait", "--timeout", "120s"
    )
    live = _json(k8s, "get", "crd", "orderpipelines.orderpipeline.io")
    assert "Upgraded" in [
        c["name"] for c in live["spec"]["versions"][0]["additionalPrinterColumns"]
    ]

    k8s.helm("uninstall", "op", "-n", ns, "--wait")
    assert k8s.kubectl("get", "deployment", "-n", ns, "-o", "name").stdout.strip() == ""
    kept = _json(k8s, "get", "crd", "orderpipelines.orderpipeline.io")
    assert "Upgraded" in [
        c["name"] for c in kept["spec"]["versions"][0]["additionalPrinterColumns"]
    ]
    # Leave the repository's CRD for the rest of the session.
    k8s.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "-f",
        str(ROOT / "crds" / "orderpipelines.yaml"),
    )


@pytest.fixture
def crd_present(k8s: Any) -> None:
    """The OrderPipeline CRD, for operator charts installed with crds.install=false."""
    k8s.install_crds(ROOT / "crds")


@pytest.mark.usefixtures("crd_present")
def test_cluster_wide_operator_can_reconcile_but_not_escalate(k8s: Any) -> None:
    ns = _namespace(k8s, "opcw")
    k8s.helm("install", "opcw", str(OPERATOR), "-n", ns, "--set", "crds.install=false")
    sa = f"system:serviceaccount:{ns}:opcw-orderpipeline-operator"
    try:
        for verb, resource, where in [
            ("watch", "orderpipelines.orderpipeline.io", None),
            ("patch", "orderpipelines.orderpipeline.io/status", "team-a"),
            ("create", "deployments.apps", "team-a"),
            ("delete", "configmaps", "team-a"),
            ("create", "ingresses.networking.k8s.io", "team-a"),
            ("create", "events", "team-a"),
            ("list", "customresourcedefinitions.apiextensions.k8s.io", None),
        ]:
            assert _can(k8s, sa, verb, resource, where), f"cannot {verb} {resource} in {where}"
        for verb, resource, where in [
            ("create", "clusterroles.rbac.authorization.k8s.io", None),
            ("create", "rolebindings.rbac.authorization.k8s.io", "team-a"),
            ("delete", "namespaces", None),
            ("delete", "customresourcedefinitions.apiextensions.k8s.io", None),
            ("create", "pods/exec", "team-a"),
            ("create", "pods", "team-a"),
            ("update", "nodes", None),
        ]:
            assert not _can(k8s, sa, verb, resource, where), f"can {verb} {resource} in {where}"
    finally:
        k8s.helm("uninstall", "opcw", "-n", ns)


@pytest.mark.usefixtures("crd_present")
def test_namespaced_operator_reaches_nothing_outside_its_namespaces(k8s: Any) -> None:
    ns = _namespace(k8s, "opns")
    watched = [_namespace(k8s, "team", restricted=False) for _ in range(2)]
    other = _namespace(k8s, "other", restricted=False)
    k8s.helm(
        "install", "opns", str(OPERATOR), "-n", ns, "--set", "crds.install=false",
        "--set", f"watchNamespaces={{{watched[0]},{watched[1]}}}",
    )  # fmt: skip
    sa = f"system:serviceaccount:{ns}:opns-orderpipeline-operator"
    try:
        for namespace in watched:
            assert _can(k8s, sa, "create", "deployments.apps", namespace)
            assert _can(
                k8s, sa, "get", "secrets", namespace
            )  # referenced credentials, helm records
            assert _can(k8s, sa, "patch", "orderpipelines.orderpipeline.io/status", namespace)
        for namespace in (other, "kube-system", ns):
            assert not _can(k8s, sa, "get", "secrets", namespace), namespace
            assert not _can(k8s, sa, "list", "secrets", namespace), namespace
            assert not _can(k8s, sa, "create", "deployments.apps", namespace), namespace
        assert not _can(k8s, sa, "list", "secrets", None)  # not cluster-wide either
    finally:
        k8s.helm("uninstall", "opns", "-n", ns)


def test_operator_installs_into_a_restricted_namespace(k8s: Any) -> None:
    ns = _namespace(k8s, "oppsa")
    k8s.helm(
        "install",
        "oppsa",
        str(OPERATOR),
        "-n",
        ns,
        "--set",
        "crds.install=false",
        "--wait",
        "--timeout",
        "120s",
    )
    pods = _json(k8s, "get", "pods", "-n", ns)["items"]
    assert len(pods) == 1 and pods[0]["status"]["phase"] == "Running"
    k8s.helm("uninstall", "oppsa", "-n", ns)

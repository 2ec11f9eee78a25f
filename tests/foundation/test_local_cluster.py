"""The local control plane: real API server, controllers, scheduler, kwok node."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from devinfra.cluster import NODE_NAME, LocalCluster
from devinfra.procs import wait_for

CRD = textwrap.dedent(
    """
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: widgets.smoke.example.com}
    spec:
      group: smoke.example.com
      scope: Namespaced
      names: {plural: widgets, singular: widget, kind: Widget}
      versions:
      - name: v1
        served: true
        storage: true
        schema:
          openAPIV3Schema:
            type: object
            properties:
              spec:
                type: object
                required: [size]
                properties:
                  size: {type: integer, minimum: 1}
    """
)


def test_node_is_ready_and_server_reports_pinned_version(k8s: LocalCluster) -> None:
    node = json.loads(k8s.kubectl("get", "node", NODE_NAME, "-o", "json").stdout)
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"
    version = json.loads(k8s.kubectl("version", "-o", "json").stdout)["serverVersion"]
    assert version["gitVersion"] == k8s.toolchain.versions["KUBERNETES_VERSION"]


def test_crd_is_served_and_its_schema_enforced(k8s: LocalCluster) -> None:
    k8s.kubectl("apply", "-f", "-", input=CRD)
    k8s.kubectl("wait", "--for=condition=Established", "crd/widgets.smoke.example.com")
    good = "apiVersion: smoke.example.com/v1\nkind: Widget\nmetadata: {name: a}\nspec: {size: 2}\n"
    k8s.kubectl("apply", "-f", "-", input=good)
    bad = good.replace("name: a", "name: b").replace("size: 2", "size: 0")
    rejected = k8s.kubectl("apply", "-f", "-", input=bad, check=False)
    assert rejected.returncode != 0
    assert "spec.size" in rejected.stderr


def test_deployment_pods_become_ready_and_are_garbage_collected(k8s: LocalCluster) -> None:
    k8s.kubectl("create", "namespace", "smoke-deploy")
    k8s.kubectl(
        "-n", "smoke-deploy", "create", "deployment", "web", "--image=web:1", "--replicas=2"
    )
    k8s.kubectl(
        "-n", "smoke-deploy", "wait", "--for=condition=Available", "deployment/web", "--timeout=60s"
    )
    pods = json.loads(k8s.kubectl("-n", "smoke-deploy", "get", "pods", "-o", "json").stdout)
    assert len(pods["items"]) == 2
    assert all(p["spec"]["nodeName"] == NODE_NAME for p in pods["items"])
    k8s.kubectl("-n", "smoke-deploy", "delete", "deployment", "web", "--cascade=background")

    def pods_gone() -> bool:
        out = k8s.kubectl("-n", "smoke-deploy", "get", "pods", "-o", "name").stdout
        return out.strip() == ""

    wait_for(pods_gone, timeout=60, what="garbage collection of the Deployment's pods")


def test_helm_installs_and_uninstalls_a_chart(k8s: LocalCluster) -> None:
    chart = Path(__file__).parent / "fixtures" / "smoke-chart"
    k8s.helm(
        "install",
        "smoke",
        str(chart),
        "--namespace",
        "smoke-helm",
        "--create-namespace",
        "--set",
        "greeting=hi",
        "--wait",
    )
    data = k8s.kubectl(
        "-n", "smoke-helm", "get", "configmap", "smoke-smoke", "-o", "jsonpath={.data.greeting}"
    ).stdout
    assert data == "hi"
    status = json.loads(k8s.helm("status", "smoke", "-n", "smoke-helm", "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    k8s.helm("uninstall", "smoke", "-n", "smoke-helm", "--wait")
    gone = k8s.kubectl("-n", "smoke-helm", "get", "configmap", "smoke-smoke", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr


def test_restarted_api_server_keeps_its_state(k8s: LocalCluster) -> None:
    k8s.kubectl("create", "configmap", "survivor", "--from-literal=k=v")
    k8s.restart_apiserver()
    assert k8s.kubectl("get", "configmap", "survivor", "-o", "jsonpath={.data.k}").stdout == "v"

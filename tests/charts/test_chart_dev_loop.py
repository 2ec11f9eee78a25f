"""kind-config.yaml and skaffold.yaml carry what docs/kubernetes.md relies on."""

from __future__ import annotations

from typing import Any

import yaml

from .conftest import ROOT


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / name).read_text())
    return data


def test_kind_maps_host_ports_80_and_443_to_the_ingress_node() -> None:
    kind = _load("kind-config.yaml")
    assert kind["apiVersion"] == "kind.x-k8s.io/v1alpha4" and kind["kind"] == "Cluster"
    assert kind["name"] == "orderpipeline"  # `kind delete cluster --name orderpipeline`
    (node,) = kind["nodes"]
    ports = {(m["containerPort"], m["hostPort"]) for m in node["extraPortMappings"]}
    assert ports == {(80, 80), (443, 443)}
    assert node["labels"]["ingress-ready"] == "true"  # the ingress controller's nodeSelector


def test_skaffold_builds_the_three_images_from_their_dockerfiles() -> None:
    skaffold = _load("skaffold.yaml")
    assert skaffold["apiVersion"].startswith("skaffold/v4")
    artifacts = {a["image"]: a for a in skaffold["build"]["artifacts"]}
    assert set(artifacts) == {
        "orderpipeline/services",
        "orderpipeline/dashboard",
        "orderpipeline/operator",
    }
    for artifact in artifacts.values():
        dockerfile = ROOT / artifact["context"] / artifact["docker"]["dockerfile"]
        assert dockerfile.is_file(), dockerfile
    assert skaffold["build"]["local"]["push"] is False  # kind loads the images


def test_skaffold_installs_the_operator_chart_and_applies_the_minimal_sample() -> None:
    skaffold = _load("skaffold.yaml")
    (release,) = skaffold["deploy"]["helm"]["releases"]
    assert (ROOT / release["chartPath"] / "Chart.yaml").is_file()
    assert release["namespace"] == "orderpipeline-system"
    templates = release["setValueTemplates"]
    assert "IMAGE_REPO_orderpipeline_operator" in templates["image.repository"]
    assert "IMAGE_TAG_orderpipeline_services" in templates["defaultImageTag"]
    assert skaffold["manifests"]["rawYaml"] == ["samples/minimal.yaml"]
    sample = list(yaml.safe_load_all((ROOT / "samples" / "minimal.yaml").read_text()))
    pipeline = next(d for d in sample if d["kind"] == "OrderPipeline")
    # The port-forward targets the webapp release the operator names after the pipeline.
    (forward,) = skaffold["portForward"]
    assert forward["resourceName"] == f"{pipeline['metadata']['name']}-webapp-dashboard"


def test_kubernetes_doc_names_the_files_and_a_maintained_ingress_controller() -> None:
    doc = (ROOT / "docs" / "kubernetes.md").read_text()
    for needle in (
        "kind create cluster --config kind-config.yaml",
        "skaffold run",
        "skaffold dev",
        "traefik",
        "helm.sh/resource-policy: keep",
        "orders.local",
    ):
        assert needle in doc, needle

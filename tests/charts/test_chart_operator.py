"""charts/orderpipeline-operator rendered with the pinned helm: CRD strategy, RBAC, security."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from orderpipeline_operator.settings import Settings

from .conftest import OPERATOR, ROOT, HelmRun, Render, by_kind, ci_values, container_env, one

REPOSITORY_CRD = ROOT / "crds" / "orderpipelines.yaml"
CHART_CRD = OPERATOR / "files" / "orderpipelines.yaml"


@pytest.mark.parametrize("values", ci_values(OPERATOR), ids=lambda p: p.name)
def test_lint_strict_passes_for_every_ci_scenario(helm_run: HelmRun, values: Path) -> None:
    result = helm_run("lint", "--strict", OPERATOR, "--values", values)
    assert "0 chart(s) failed" in result.stdout


def test_chart_crd_copy_equals_the_repository_crd() -> None:
    assert CHART_CRD.read_bytes() == REPOSITORY_CRD.read_bytes(), (
        "the chart's CRD copy differs from crds/orderpipelines.yaml:"
        " run `cp crds/orderpipelines.yaml charts/orderpipeline-operator/files/`"
    )


def test_crd_is_a_template_so_upgrades_reach_the_cluster(render: Render) -> None:
    assert not (OPERATOR / "crds").exists(), "Helm never upgrades crds/: keep the CRD templated"
    crd = one(render(OPERATOR), "CustomResourceDefinition")
    expected = yaml.safe_load(REPOSITORY_CRD.read_text())
    assert crd["spec"] == expected["spec"]
    assert crd["metadata"]["name"] == expected["metadata"]["name"]


def test_crd_survives_uninstall(render: Render) -> None:
    crd = one(render(OPERATOR), "CustomResourceDefinition")
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_crd_can_be_left_to_someone_else(render: Render) -> None:
    assert not by_kind(render(OPERATOR, sets={"crds.install": "false"}), "CustomResourceDefinition")


def _rules(role: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    ]


def test_no_rule_grants_rbac_exec_or_wildcards(render: Render) -> None:
    for values in ci_values(OPERATOR):
        manifests = render(OPERATOR, values=[values])
        for role in by_kind(manifests, "ClusterRole") + by_kind(manifests, "Role"):
            for group, resource, verb in _rules(role):
                where = f"{role['metadata']['name']}: {group}/{resource} {verb}"
                assert "*" not in (group, resource, verb), where
                assert group != "rbac.authorization.k8s.io", where
                assert "/" not in resource or resource.startswith("orderpipelines/"), where
                assert resource not in {"nodes", "namespaces"} or verb in {"get", "list", "watch"}


def test_namespaced_mode_reaches_secrets_only_in_the_watched_namespaces(render: Render) -> None:
    manifests = render(OPERATOR, values=[OPERATOR / "ci" / "namespaced-values.yaml"])
    cluster_role = one(manifests, "ClusterRole")
    assert all(resource != "secrets" for _, resource, _ in _rules(cluster_role))
    for role in by_kind(manifests, "Role"):
        assert ("", "secrets", "get") in _rules(role), role["metadata"]["namespace"]


def test_cluster_wide_mode_binds_one_cluster_role(render: Render) -> None:
    manifests = render(OPERATOR, release="op", namespace="operators")
    assert not by_kind(manifests, "Role")
    role = one(manifests, "ClusterRole")
    assert ("apps", "deployments", "create") in _rules(role)
    binding = one(manifests, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "op-orderpipeline-operator", "namespace": "operators"}
    ]


def test_namespaced_mode_grants_workloads_only_in_the_watched_namespaces(render: Render) -> None:
    manifests = render(OPERATOR, values=[OPERATOR / "ci" / "namespaced-values.yaml"])
    roles = by_kind(manifests, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["orders-a", "orders-b"]
    assert all(("apps", "deployments", "create") in _rules(r) for r in roles)
    cluster_resources = {resource for _, resource, _ in _rules(one(manifests, "ClusterRole"))}
    assert cluster_resources == {"customresourcedefinitions", "namespaces"}
    deployment = one(manifests, "Deployment")
    assert container_env(deployment)["OPERATOR_NAMESPACES"] == "orders-a,orders-b"


def test_operator_reads_every_setting_the_chart_passes(render: Render) -> None:
    deployment = one(render(OPERATOR, sets={"logLevel": "DEBUG"}), "Deployment")
    env = {k: v for k, v in container_env(deployment).items() if isinstance(v, str)}
    passed = {k.removeprefix("OPERATOR_").lower() for k in env if k.startswith("OPERATOR_")}
    # Settings ignores unknown variables, so a misspelt one would be lost silently.
    assert passed <= set(Settings.model_fields), passed - set(Settings.model_fields)
    assert {k for k in env if not k.startswith("OPERATOR_")} <= {"PYTHONUNBUFFERED", "HOME"}
    # Values typed as Any: Settings parses the environment's strings into its field types.
    values: dict[str, Any] = {
        k.removeprefix("OPERATOR_").lower(): v for k, v in env.items() if k.startswith("OPERATOR_")
    }
    settings = Settings(**values)
    assert settings.log_level == "DEBUG"


def test_operator_pod_is_restricted_with_writable_tmp(render: Render) -> None:
    deployment = one(render(OPERATOR), "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = spec["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize(
    ("sets", "where"),
    [
        ({"watchNamespaces[0]": "Not_A_Namespace"}, "/watchNamespaces/0"),
        ({"helmConcurrency": "0"}, "/helmConcurrency"),
        ({"crds.install": "maybe"}, "/crds/install"),
        ({"watchNamespace[0]": "orders"}, "watchNamespace"),
    ],
)
def test_schema_rejects_bad_values_naming_the_field(
    render_error: Any, sets: dict[str, str], where: str
) -> None:
    stderr = render_error(OPERATOR, sets)
    assert "schema" in stderr and where in stderr, stderr

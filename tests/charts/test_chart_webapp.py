"""charts/webapp rendered with the pinned helm: lint, names, Ingress, security, schema."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import (
    WEBAPP,
    HelmRun,
    Render,
    by_kind,
    ci_values,
    container_env,
    names,
    one,
    pod_specs,
)

SCENARIOS = ci_values(WEBAPP)
QUICKSTART = WEBAPP / "ci" / "quickstart-values.yaml"
EXISTING_SECRET = {"couchbase.existingSecret": "cb-creds"}


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.name)
def test_lint_strict_passes_for_every_ci_scenario(helm_run: HelmRun, values: Path) -> None:
    result = helm_run("lint", "--strict", WEBAPP, "--values", values)
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("release", ["shop", "orders-webapp", "x"])
def test_every_name_is_derived_from_the_release(render: Render, release: str) -> None:
    manifests = render(WEBAPP, release=release, sets=EXISTING_SECRET)
    all_names = {m["metadata"]["name"] for m in manifests}
    assert all(name.startswith(release) for name in all_names), all_names
    services = {m["metadata"]["name"] for m in by_kind(manifests, "Service")}
    ingress = one(manifests, "Ingress")
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends <= services, f"Ingress points at {backends}, Services are {services}"
    dashboard = one(manifests, "Deployment", "-dashboard")
    backend_url = container_env(dashboard)["BACKEND_URL"]
    backend_host = re.match(r"http://([^:]+):8000$", backend_url)
    assert backend_host and backend_host.group(1) in services


def test_two_releases_in_one_namespace_share_no_name(render: Render) -> None:
    first = {(m["kind"], m["metadata"]["name"]) for m in render(WEBAPP, "a", sets=EXISTING_SECRET)}
    second = {(m["kind"], m["metadata"]["name"]) for m in render(WEBAPP, "b", sets=EXISTING_SECRET)}
    assert not first & second


def test_ingress_uses_class_name_and_never_the_class_annotation(render: Render) -> None:
    manifests = render(WEBAPP, sets={**EXISTING_SECRET, "ingress.className": "traefik"})
    ingress = one(manifests, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "traefik"
    assert "kubernetes.io/ingress.class" not in (ingress["metadata"].get("annotations") or {})


def test_ingress_without_class_name_leaves_the_default_class(render: Render) -> None:
    ingress = one(render(WEBAPP, sets=EXISTING_SECRET), "Ingress")
    assert "ingressClassName" not in ingress["spec"]
    assert not ingress["metadata"].get("annotations")


def test_ingress_refuses_class_name_together_with_class_annotation(helm_run: HelmRun) -> None:
    result = helm_run(
        "template", "rel", WEBAPP, "--values", QUICKSTART,
        "--set", "ingress.className=traefik",
        "--set-string", r"ingress.annotations.kubernetes\.io/ingress\.class=traefik",
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "not both" in result.stderr


def test_ingress_sends_api_to_the_backend_and_the_rest_to_the_dashboard(render: Render) -> None:
    sets = {**EXISTING_SECRET, "ingress.host": "orders.test"}
    manifests = render(WEBAPP, release="web", sets=sets)
    rule = one(manifests, "Ingress")["spec"]["rules"][0]
    assert rule["host"] == "orders.test"
    routes = {p["path"]: p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    assert routes == {"/api": "web-webapp-backend", "/": "web-webapp-dashboard"}


def test_ingress_tls_uses_the_named_secret(render: Render) -> None:
    sets = {**EXISTING_SECRET, "ingress.tls.enabled": "true", "ingress.tls.secretName": "tls"}
    tls = one(render(WEBAPP, sets=sets), "Ingress")["spec"]["tls"]
    assert tls == [{"hosts": ["orders.local"], "secretName": "tls"}]


def test_httproute_replaces_the_ingress_when_chosen(render: Render) -> None:
    manifests = render(WEBAPP, release="web", values=[WEBAPP / "ci" / "httproute-values.yaml"])
    assert not by_kind(manifests, "Ingress")
    route = one(manifests, "HTTPRoute")
    assert route["spec"]["hostnames"] == ["orders.example.com"]
    assert route["spec"]["parentRefs"] == [{"name": "eg", "namespace": "envoy-gateway-system"}]
    targets = [rule["backendRefs"][0]["name"] for rule in route["spec"]["rules"]]
    assert targets == ["web-webapp-backend", "web-webapp-dashboard"]


@pytest.mark.parametrize("values", SCENARIOS, ids=lambda p: p.name)
def test_every_pod_meets_the_restricted_pod_security_standard(render: Render, values: Path) -> None:
    for name, spec in pod_specs(render(WEBAPP, values=[values])):
        pod_sc = spec["securityContext"]
        assert pod_sc["runAsNonRoot"] is True, name
        assert pod_sc["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert container["resources"]["limits"]["memory"], name


def test_deployments_get_a_writable_tmp_on_a_read_only_root(render: Render) -> None:
    for name, spec in pod_specs(render(WEBAPP, values=[QUICKSTART])):
        if name.endswith("test-healthz"):
            continue
        mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0]["volumeMounts"]}
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], name


def test_backend_probes_healthz_and_readyz_on_8000(render: Render) -> None:
    backend = one(render(WEBAPP, values=[QUICKSTART]), "Deployment", "-backend")
    container = backend["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["backend"]
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def _backend_env(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    backend = one(manifests, "Deployment", "-backend")
    env: list[dict[str, Any]] = backend["spec"]["template"]["spec"]["containers"][0]["env"]
    return env


def test_couchbase_credentials_come_from_the_existing_secret(render: Render) -> None:
    sets = {"couchbase.existingSecret": "capella", "couchbase.passwordKey": "pw"}
    manifests = render(WEBAPP, sets=sets)
    env = {e["name"]: e for e in _backend_env(manifests)}
    assert env["COUCHBASE_PASSWORD"] == {
        "name": "COUCHBASE_PASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "capella", "key": "pw"}},
    }
    assert env["COUCHBASE_USERNAME"]["valueFrom"]["secretKeyRef"]["name"] == "capella"
    assert not by_kind(manifests, "Secret")


def test_quick_start_password_goes_to_a_secret_not_the_pod_spec(render: Render) -> None:
    manifests = render(WEBAPP, release="q", values=[QUICKSTART])
    secret = one(manifests, "Secret")
    assert secret["metadata"]["name"] == "q-webapp-couchbase"
    password = next(e for e in _backend_env(manifests) if e["name"] == "COUCHBASE_PASSWORD")
    assert "value" not in password
    assert password["valueFrom"]["secretKeyRef"]["name"] == "q-webapp-couchbase"
    assert "quickstart-only" not in yaml.safe_dump(by_kind(manifests, "Deployment"))


def test_missing_couchbase_credentials_fail_with_a_hint(render_error: Any) -> None:
    stderr = render_error(WEBAPP, {})
    assert "couchbase.existingSecret" in stderr and "couchbase.password" in stderr


def test_install_without_couchbase_credentials_fails_with_the_hint(helm_run: HelmRun) -> None:
    # The defaults lint clean (test_chart_defaults.py), yet installing them must still refuse.
    refused = helm_run("install", "--dry-run=client", "rel", WEBAPP, check=False)
    assert refused.returncode != 0
    assert "couchbase credentials missing" in refused.stderr, refused.stderr
    assert "couchbase.existingSecret" in refused.stderr and "couchbase.password" in refused.stderr
    # The same install with a password goes through: the refusal is about the credentials.
    helm_run("install", "--dry-run=client", "rel", WEBAPP, "--set", "couchbase.password=x")


def _checksums(manifests: list[dict[str, Any]]) -> dict[str, str]:
    backend = one(manifests, "Deployment", "-backend")
    annotations = backend["spec"]["template"]["metadata"]["annotations"]
    return {k: v for k, v in annotations.items() if k.startswith("checksum/")}


def test_a_config_change_rolls_the_backend_pods(render: Render) -> None:
    before = _checksums(render(WEBAPP, values=[QUICKSTART]))
    changed = _checksums(render(WEBAPP, values=[QUICKSTART], sets={"couchbase.bucket": "other"}))
    assert before["checksum/config"] != changed["checksum/config"]
    new_password = _checksums(render(WEBAPP, values=[QUICKSTART], sets={"couchbase.password": "x"}))
    assert before["checksum/secret"] != new_password["checksum/secret"]


def test_an_unrelated_change_keeps_the_backend_pods(render: Render) -> None:
    before = _checksums(render(WEBAPP, values=[QUICKSTART]))
    after = _checksums(render(WEBAPP, values=[QUICKSTART], sets={"dashboard.replicas": "3"}))
    assert before == after


def test_disruption_budgets_and_autoscalers_when_enabled(render: Render) -> None:
    sets = {
        **EXISTING_SECRET,
        "backend.pdb.enabled": "true",
        "backend.autoscaling.enabled": "true",
        "dashboard.autoscaling.enabled": "true",
    }
    manifests = render(WEBAPP, release="r", sets=sets)
    assert names(manifests, "PodDisruptionBudget") == ["r-webapp-backend"]
    hpas = {
        h["spec"]["scaleTargetRef"]["name"] for h in by_kind(manifests, "HorizontalPodAutoscaler")
    }
    assert hpas == {"r-webapp-backend", "r-webapp-dashboard"}
    # The HPA owns the replica count: the Deployments must not fight it on upgrade.
    assert all("replicas" not in d["spec"] for d in by_kind(manifests, "Deployment"))


def test_no_disruption_budget_or_autoscaler_by_default(render: Render) -> None:
    manifests = render(WEBAPP, sets=EXISTING_SECRET)
    assert not by_kind(manifests, "PodDisruptionBudget")
    assert not by_kind(manifests, "HorizontalPodAutoscaler")


def test_backend_only_renders_no_dashboard(render: Render) -> None:
    manifests = render(WEBAPP, values=[WEBAPP / "ci" / "backend-only-values.yaml"])
    names = {m["metadata"]["name"] for m in manifests}
    assert not any("dashboard" in n for n in names)
    assert not by_kind(manifests, "Ingress")


def test_helm_test_hook_calls_healthz_through_the_backend_service(render: Render) -> None:
    manifests = render(WEBAPP, release="web", sets=EXISTING_SECRET)
    hook = one(manifests, "Pod")
    assert hook["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert hook["spec"]["containers"][0]["args"] == ["http://web-webapp-backend:8000/healthz"]
    assert one(manifests, "Service", "-backend")["metadata"]["name"] == "web-webapp-backend"


BAD_VALUES = [
    ({"backend.replicas": "-1"}, "/backend/replicas"),
    ({"couchbase.connectionString": "http://couchbase:8091"}, "/couchbase/connectionString"),
    ({"ingress.host": "https://orders.local"}, "/ingress/host"),
    ({"image.pullPolicy": "Sometimes"}, "/image/pullPolicy"),
    ({"ingress.className": "Not A Class"}, "/ingress/className"),
    ({"backend.service.port": "70000"}, "/backend/service/port"),
    ({"backend.logLevel": "LOUD"}, "/backend/logLevel"),
    ({"couchbase.bucket": "orders/../x"}, "/couchbase/bucket"),
    ({"ingres.enabled": "false"}, "ingres"),
]


@pytest.mark.parametrize(("sets", "where"), BAD_VALUES, ids=[w for _, w in BAD_VALUES])
def test_schema_rejects_bad_values_naming_the_field(
    render_error: Any, sets: dict[str, str], where: str
) -> None:
    stderr = render_error(WEBAPP, {**EXISTING_SECRET, **sets})
    assert "schema" in stderr and where in stderr, stderr


def _documented(lines: list[str], index: int) -> bool:
    """Whether the comment block right above line `index` contains a helm-docs `# --`."""
    above = index - 1
    while above >= 0 and lines[above].lstrip().startswith("#"):
        if lines[above].lstrip().startswith("# --"):
            return True
        above -= 1
    return False


@pytest.mark.parametrize("chart", ["webapp", "orderpipeline-operator"])
def test_every_value_has_a_helm_docs_comment(chart: str) -> None:
    lines = (WEBAPP.parent / chart / "values.yaml").read_text().splitlines()
    key = re.compile(r"^(\s*)([A-Za-z][\w.-]*):(.*)$")
    undocumented = []
    for i, line in enumerate(lines):
        match = key.match(line)
        if not match:
            continue
        indent, name, rest = len(match.group(1)), match.group(2), match.group(3).strip()
        rest_of_file = (n for n in lines[i + 1 :] if n.strip() and not n.lstrip().startswith("#"))
        following = next(rest_of_file, "")
        child = key.match(following)
        is_section = not rest and child is not None and len(child.group(1)) > indent
        if is_section and not _documented(lines, i):
            continue  # a group of documented values, e.g. `backend:`
        if not _documented(lines, i) and not _owner_documented(lines, i, indent, key):
            undocumented.append(name)
    assert not undocumented, f"values without a `# --` comment in {chart}: {undocumented}"


def _owner_documented(lines: list[str], index: int, indent: int, key: re.Pattern[str]) -> bool:
    """A line inside a documented multi-line value (resources, securityContext): one of its
    enclosing keys carries the `# --` comment."""
    for j in range(index - 1, -1, -1):
        match = key.match(lines[j])
        if match and len(match.group(1)) < indent:
            if _documented(lines, j):
                return True
            indent = len(match.group(1))
    return False

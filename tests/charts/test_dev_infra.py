"""samples/dev-infra/: the development-only Kafka and Couchbase that samples/minimal.yaml
points at, checked against the real local API server (kube-apiserver + kwok node).

kwok schedules pods and marks them Running without running a container, so these tests
prove what the API server, Pod Security admission, the controllers and the scheduler
decide; that Kafka and Couchbase start and the init Jobs complete is not checked here.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from .conftest import ROOT, Manifest, by_kind, one

pytestmark = pytest.mark.cluster

DEV_INFRA = ROOT / "samples" / "dev-infra"
MINIMAL = ROOT / "samples" / "minimal.yaml"
PURPOSE = "orderpipeline.io/purpose"
DEV_ONLY = "development only, not for production"
KAFKA_DEFAULT_PORT = 9092
COUCHBASE_MGMT_PORT = 8091  # couchbase:// bootstraps over KV, falls back to management
COUCHBASE_KV_PORT = 11210


def _load(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _files() -> list[Path]:
    return sorted(DEV_INFRA.glob("*.yaml"))


def _dev_infra() -> list[Manifest]:
    return [m for path in _files() for m in _load(path)]


def _minimal(kind: str) -> Manifest:
    return one(_load(MINIMAL), kind)


def _versions() -> dict[str, str]:
    lines = (ROOT / "hack" / "versions.env").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def _pod_spec(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def _env(workload: Manifest) -> dict[str, Any]:
    (container,) = _pod_spec(workload)["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def _workload_behind(service: Manifest, manifests: list[Manifest]) -> Manifest:
    """The one Deployment whose pods the Service selects."""
    selector = service["spec"]["selector"].items()
    found = [
        d
        for d in by_kind(manifests, "Deployment")
        if selector <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    assert len(found) == 1, f"Service {service['metadata']['name']} selects {len(found)}"
    return found[0]


def _service_ports(service: Manifest, manifests: list[Manifest]) -> set[int]:
    """The Service's ports whose targetPort is a port the selected container declares."""
    (container,) = _pod_spec(_workload_behind(service, manifests))["containers"]
    declared = {p["name"]: p["containerPort"] for p in container["ports"]}
    ports = set()
    for port in service["spec"]["ports"]:
        target = port["targetPort"]
        assert target in declared or target in declared.values(), (service, target)
        ports.add(port["port"])
    return ports


def _namespace(k8s: Any) -> str:
    name = f"devinfra-{uuid.uuid4().hex[:6]}"
    k8s.kubectl("create", "namespace", name)
    k8s.kubectl(
        "label", "namespace", name,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/enforce-version=latest",
        "pod-security.kubernetes.io/warn=restricted",
        "pod-security.kubernetes.io/warn-version=latest",
    )  # fmt: skip
    return name


def _pods(k8s: Any, namespace: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(
        k8s.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout
    )["items"]
    return items


def _owner(pod: dict[str, Any], k8s: Any, namespace: str) -> str:
    """`Deployment/name` or `Job/name` that the pod belongs to."""
    (ref,) = pod["metadata"]["ownerReferences"]
    if ref["kind"] == "ReplicaSet":
        rs = json.loads(
            k8s.kubectl("get", "replicaset", ref["name"], "-n", namespace, "-o", "json").stdout
        )
        (ref,) = rs["metadata"]["ownerReferences"]
    return f"{ref['kind']}/{ref['name']}"


def _scheduled(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return bool(pod["spec"].get("nodeName")) and any(
        c["type"] == "PodScheduled" and c["status"] == "True" for c in conditions
    )


def test_every_dev_infra_manifest_is_accepted_by_the_api_server(k8s: Any) -> None:
    namespace = _namespace(k8s)
    manifests = _dev_infra()
    assert {m["kind"] for m in manifests} == {"Service", "Deployment", "Job", "Secret"}
    result = k8s.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", str(DEV_INFRA), check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(server dry run)") == len(manifests)
    assert "PodSecurity" not in result.stderr, result.stderr


def test_dev_infra_pods_are_admitted_under_restricted_and_scheduled(k8s: Any) -> None:
    namespace = _namespace(k8s)
    applied = k8s.kubectl("apply", "-n", namespace, "-f", str(DEV_INFRA))
    assert "would violate PodSecurity" not in applied.stderr, applied.stderr

    workloads = {
        f"{m['kind']}/{m['metadata']['name']}"
        for m in _dev_infra()
        if m["kind"] in ("Deployment", "Job")
    }
    assert workloads == {
        "Deployment/kafka",
        "Deployment/couchbase",
        "Job/kafka-topics",
        "Job/couchbase-init",
    }
    deadline = time.monotonic() + 60
    while True:
        pods = _pods(k8s, namespace)
        owners = {_owner(p, k8s, namespace) for p in pods if _scheduled(p)}
        if owners >= workloads or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    # Pods exist only if Pod Security admitted them into this `restricted` namespace.
    assert owners >= workloads, {p["metadata"]["name"]: p.get("status") for p in pods}

    # What the skaffold hook relies on: applying the same files again changes nothing
    # (a Job's pod template is immutable; a changed one would be refused). kubectl always
    # reports a Secret written with stringData as "configured": its stored version must stay.
    def secret_version() -> str:
        secret = k8s.kubectl(
            "get", "secret", "couchbase-credentials", "-n", namespace, "-o", "json"
        )
        version: str = json.loads(secret.stdout)["metadata"]["resourceVersion"]
        return version

    before = secret_version()
    again = k8s.kubectl("apply", "-n", namespace, "-f", str(DEV_INFRA))
    lines = again.stdout.strip().splitlines()
    assert len(lines) == len(_dev_infra())
    others = [line for line in lines if not line.startswith("secret/")]
    assert all(line.endswith(" unchanged") for line in others), again.stdout
    assert secret_version() == before


def test_kafka_service_and_topics_match_the_minimal_sample() -> None:
    manifests = _dev_infra()
    pipeline = _minimal("OrderPipeline")
    (server,) = pipeline["spec"]["kafka"]["bootstrapServers"].split(",")
    host, port = server.rsplit(":", 1)
    service = one(manifests, "Service", host)
    assert service["metadata"]["name"] == host
    assert int(port) in _service_ports(service, manifests)

    broker = _workload_behind(service, manifests)
    env = _env(broker)
    # Clients are sent back to the advertised address: it must be the sample's.
    assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{server}"
    assert pipeline["spec"]["kafka"].get("securityProtocol", "PLAINTEXT") == "PLAINTEXT"
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft combined mode
    (container,) = _pod_spec(broker)["containers"]
    assert container["image"] == f"apache/kafka:{_versions()['KAFKA_VERSION']}"

    topics_job = one(manifests, "Job", "kafka-topics")
    (job_container,) = _pod_spec(topics_job)["containers"]
    assert job_container["image"] == container["image"]
    job_env = _env(topics_job)
    assert job_env["BOOTSTRAP_SERVERS"] == server
    assert job_env["PARTITIONS"] == "3"
    expected = set(pipeline["spec"]["kafka"].get("topics", {}).values()) or _crd_default_topics()
    assert set(job_env["TOPICS"].split()) == expected


def _crd_default_topics() -> set[str]:
    """The topic names an OrderPipeline gets when it names none (the sample names none)."""
    (crd,) = _load(ROOT / "crds" / "orderpipelines.yaml")
    (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
    kafka = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["kafka"]
    return set(kafka["properties"]["topics"]["default"].values())


def test_couchbase_service_bucket_and_credentials_match_the_minimal_sample() -> None:
    manifests = _dev_infra()
    couchbase = _minimal("OrderPipeline")["spec"]["couchbase"]
    url = urlsplit(couchbase["connectionString"])
    assert url.scheme == "couchbase" and url.port is None
    service = one(manifests, "Service", str(url.hostname))
    assert service["metadata"]["name"] == url.hostname
    assert {COUCHBASE_MGMT_PORT, COUCHBASE_KV_PORT} <= _service_ports(service, manifests)
    # A port named "couchbase" would make DNS answer the SDK's SRV lookup.
    assert all(p["name"] != "couchbase" for p in service["spec"]["ports"])

    init = one(manifests, "Job", "couchbase-init")
    env = _env(init)
    assert env["COUCHBASE_URL"] == f"http://{url.hostname}:{COUCHBASE_MGMT_PORT}"
    assert env["BUCKET"] == couchbase["bucket"] == "order_analytics"
    secret = couchbase["credentialsSecretRef"]["name"]
    for variable, key in (("CB_USERNAME", "username"), ("CB_PASSWORD", "password")):
        assert env[variable] == {"secretKeyRef": {"name": secret, "key": key}}


def test_dev_infra_carries_the_same_credentials_secret_as_the_minimal_sample() -> None:
    (copy,) = by_kind(_dev_infra(), "Secret")
    assert copy == _minimal("Secret")
    assert (
        copy["metadata"]["name"]
        == _minimal("OrderPipeline")["spec"]["couchbase"]["credentialsSecretRef"]["name"]
    )


def test_every_dev_infra_object_says_development_only() -> None:
    for path in _files():
        assert "DEVELOPMENT ONLY, NOT FOR PRODUCTION" in path.read_text(), path
    for m in _dev_infra():
        if m["kind"] == "Secret":  # byte-for-byte the sample's Secret, checked above
            continue
        assert m["metadata"]["annotations"][PURPOSE] == DEV_ONLY, m["metadata"]["name"]
        assert m["metadata"]["labels"]["app.kubernetes.io/part-of"] == "orderpipeline-dev-infra"
        if m["kind"] in ("Deployment", "Job"):
            template = m["spec"]["template"]["metadata"]
            assert template["annotations"][PURPOSE] == DEV_ONLY
            # Not `orderpipeline`: the docs' `rollout restart -l part-of=orderpipeline`
            # would otherwise replace these pods and lose their emptyDir data.
            assert template["labels"]["app.kubernetes.io/part-of"] == "orderpipeline-dev-infra"


def test_skaffold_applies_dev_infra_and_waits_for_its_jobs_before_the_sample() -> None:
    skaffold = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    deploy = skaffold["deploy"]
    # Skaffold runs the helm deployer, then the kubectl deployer, whose before-hooks run
    # before it applies the manifests (samples/minimal.yaml).
    assert list(deploy) == ["helm", "kubectl"]
    assert skaffold["manifests"]["rawYaml"] == ["samples/minimal.yaml"]
    (hook,) = deploy["kubectl"]["hooks"]["before"]
    command = " ".join(hook["host"]["command"])
    apply_at = command.index("apply -f samples/dev-infra/")
    wait_at = command.index("wait --for=condition=Complete")
    assert apply_at < wait_at
    jobs = {f"job/{m['metadata']['name']}" for m in by_kind(_dev_infra(), "Job")}
    assert all(job in command[wait_at:] for job in jobs), command
    assert '--context "$SKAFFOLD_KUBE_CONTEXT"' in command


def test_kubernetes_doc_starts_dev_infra_before_skaffold_deploys_the_pipeline() -> None:
    doc = (ROOT / "docs" / "kubernetes.md").read_text()
    apply_at = doc.index("kubectl apply -f samples/dev-infra/")
    wait_at = doc.index("kubectl wait --for=condition=Complete job/kafka-topics job/couchbase-init")
    assert apply_at < wait_at < doc.index("skaffold run") < doc.index("http://orders.local/")

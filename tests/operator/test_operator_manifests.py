"""Unit tests of the pure spec -> manifest functions (no cluster)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any, cast

import pytest
from orderpipeline_operator.manifests.checksum import component_checksum, fingerprint
from orderpipeline_operator.manifests.components import components
from orderpipeline_operator.manifests.configmap import config_data, configmap
from orderpipeline_operator.manifests.deployments import deployment
from orderpipeline_operator.manifests.labels import CHECKSUM_ANNOTATION
from orderpipeline_operator.manifests.webapp_values import values_checksum, webapp_values
from orderpipeline_operator.runtime import Operator
from orderpipeline_operator.spec import PipelineSpec, parse_spec
from orderpipeline_operator.workers import secret_fingerprints

MINIMAL: dict[str, Any] = {
    "kafka": {"bootstrapServers": "kafka:9092"},
    "couchbase": {
        "connectionString": "couchbase://couchbase",
        "credentialsSecretRef": {"name": "cb"},
    },
}
SASL: dict[str, Any] = {
    **MINIMAL,
    "kafka": {
        "bootstrapServers": "pkc-1.confluent.cloud:9092",
        "securityProtocol": "SASL_SSL",
        "credentialsSecretRef": {"name": "confluent", "usernameKey": "key"},
        "caSecretRef": {"name": "kafka-ca"},
    },
}
SECRETS = {
    ("cb", "username"): b"Administrator",
    ("cb", "password"): b"hunter2",
    ("confluent", "key"): b"API_KEY",
    ("confluent", "password"): b"API_SECRET",
    ("kafka-ca", "ca.crt"): b"-----BEGIN CERTIFICATE-----",
}


def spec_with(**changes: Any) -> PipelineSpec:
    raw = {**MINIMAL, **changes}
    return parse_spec(raw)


def checksums(
    spec: PipelineSpec, secrets: Mapping[tuple[str, str], bytes | None]
) -> dict[str, str]:
    config = config_data(spec)
    return {c.name: component_checksum(c, config, secrets) for c in components(spec)}


def deployments(spec: PipelineSpec) -> dict[str, dict[str, Any]]:
    config = config_data(spec)
    return {
        c.name: deployment("orders", spec, c, component_checksum(c, config, SECRETS), "1.2.3")
        for c in components(spec)
    }


def env_of(dep: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_minimal_spec_gives_four_workers_with_defaults() -> None:
    deps = deployments(parse_spec(MINIMAL))
    assert sorted(deps) == ["analytics", "fraud", "payment", "producer"]
    for name, dep in deps.items():
        assert dep["metadata"]["name"] == f"orders-{name}"
        assert dep["spec"]["replicas"] == 1
        container = dep["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == "orderpipeline/services:1.2.3"
        assert container["args"] == [name]


def test_disabled_producer_has_no_deployment() -> None:
    spec = spec_with(producer={"enabled": False})
    assert "producer" not in deployments(spec)


def test_configmap_holds_contract_names_and_no_secret() -> None:
    spec = parse_spec(SASL)
    cm = configmap("orders", spec)
    data = cm["data"]
    assert cm["metadata"]["name"] == "orders-config"
    assert data["KAFKA_BOOTSTRAP_SERVERS"] == "pkc-1.confluent.cloud:9092"
    assert data["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["FRAUD_AMOUNT_THRESHOLD"] == "300"
    assert data["FRAUD_TRUSTED_COUNTRIES"] == "US,CA"
    assert data["KAFKA_SSL_CA_LOCATION"] == "/etc/orderpipeline/kafka-ca/ca.crt"
    text = repr(cm)
    for secret in SECRETS.values():
        assert secret.decode() not in text


def test_secrets_only_through_secret_key_ref() -> None:
    deps = deployments(parse_spec(SASL))
    for dep in deps.values():
        text = repr(dep)
        for secret in SECRETS.values():
            assert secret.decode() not in text
        env = env_of(dep)
        assert env["KAFKA_SASL_PASSWORD"]["valueFrom"] == {
            "secretKeyRef": {"name": "confluent", "key": "password"}
        }
        assert env["KAFKA_SASL_USERNAME"]["valueFrom"]["secretKeyRef"]["key"] == "key"
        assert all("value" not in e for n, e in env.items() if n != "HEALTH_PORT")
    assert "COUCHBASE_PASSWORD" in env_of(deps["analytics"])
    assert "COUCHBASE_PASSWORD" not in env_of(deps["fraud"])


def test_plaintext_kafka_has_no_sasl_env() -> None:
    env = env_of(deployments(parse_spec(MINIMAL))["fraud"])
    assert "KAFKA_SASL_PASSWORD" not in env
    assert "KAFKA_SSL_CA_LOCATION" not in env


def test_ca_secret_is_mounted_as_a_file() -> None:
    pod = deployments(parse_spec(SASL))["payment"]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "kafka-ca")
    assert volume["secret"] == {
        "secretName": "kafka-ca",
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "kafka-ca")
    assert mount["mountPath"] == "/etc/orderpipeline/kafka-ca"
    assert mount["readOnly"] is True


@pytest.mark.parametrize("name", ["producer", "fraud", "payment", "analytics"])
def test_pods_meet_the_restricted_pod_security_standard(name: str) -> None:
    pod = deployments(parse_spec(MINIMAL))[name]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = pod["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False


def test_probes_target_the_health_port() -> None:
    container = deployments(parse_spec(MINIMAL))["fraud"]["spec"]["template"]["spec"]["containers"][
        0
    ]
    assert container["ports"] == [{"name": "health", "containerPort": 8081, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert env_of({"spec": {"template": {"spec": {"containers": [container]}}}})["HEALTH_PORT"] == {
        "name": "HEALTH_PORT",
        "value": "8081",
    }


def test_resources_merge_spec_over_defaults() -> None:
    spec = spec_with(fraud={"resources": {"limits": {"memory": "1Gi", "cpu": 2}}})
    res = deployments(spec)["fraud"]["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res == {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"memory": "1Gi", "cpu": 2},
    }


def test_fraud_threshold_changes_only_the_fraud_checksum() -> None:
    before = checksums(parse_spec(MINIMAL), SECRETS)
    after = checksums(spec_with(fraud={"amountThreshold": 500}), SECRETS)
    assert {n for n in before if before[n] != after[n]} == {"fraud"}


def test_couchbase_secret_changes_only_the_analytics_checksum() -> None:
    spec = parse_spec(SASL)
    rotated = {**SECRETS, ("cb", "password"): b"new"}
    before, after = checksums(spec, SECRETS), checksums(spec, rotated)
    assert {n for n in before if before[n] != after[n]} == {"analytics"}


def test_kafka_secret_changes_every_worker_checksum() -> None:
    spec = parse_spec(SASL)
    rotated = {**SECRETS, ("confluent", "password"): b"new"}
    before, after = checksums(spec, SECRETS), checksums(spec, rotated)
    assert {n for n in before if before[n] != after[n]} == set(before)


def test_checksum_is_on_the_pod_template_and_stable() -> None:
    a = deployments(parse_spec(MINIMAL))["payment"]
    b = deployments(parse_spec(MINIMAL))["payment"]
    assert a == b
    assert len(a["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION]) == 64


def test_missing_secret_changes_the_checksum() -> None:
    spec = parse_spec(MINIMAL)
    missing = {**SECRETS, ("cb", "password"): None}
    assert checksums(spec, SECRETS)["analytics"] != checksums(spec, missing)["analytics"]


def test_secret_fingerprint_is_keyed_by_the_secrets_uid() -> None:
    uid = "6f1c8e0a-0000-4000-8000-000000000001"
    assert fingerprint(uid, b"hunter2") == fingerprint(uid, b"hunter2")
    assert fingerprint(uid, b"hunter2") != fingerprint(uid, b"hunter3")
    # The same password in a re-created Secret: a new fingerprint, the pods roll.
    assert fingerprint(uid, b"hunter2") != fingerprint(uid.replace("1", "2"), b"hunter2")


class FakeKube:
    """Serves Secrets as the API does: uid and data; the uid changes on re-creation."""

    def __init__(self, uid: str) -> None:
        self.uid = uid

    def secret_values(self, _namespace: str, name: str) -> tuple[str, dict[str, bytes]] | None:
        data = {key: value for (secret, key), value in SECRETS.items() if secret == name}
        return (self.uid, data) if data else None


def test_checksums_do_not_follow_from_the_passwords_alone() -> None:
    """The checksum the operator writes depends on the Secret's uid: a reader of Deployments
    who guesses every password still cannot confirm the guess."""
    spec = parse_spec(SASL)

    def analytics_checksum(uid: str) -> str:
        op = cast(Operator, SimpleNamespace(kube=FakeKube(uid)))
        fingerprints, problems = secret_fingerprints(op, "default", spec)
        assert problems == []
        return checksums(spec, fingerprints)["analytics"]

    same = analytics_checksum("uid-1")
    assert analytics_checksum("uid-1") == same
    assert analytics_checksum("uid-2") != same  # same passwords, re-created Secrets
    # What the passwords alone give, raw or hashed, is not what was written.
    assert same not in {
        checksums(spec, SECRETS)["analytics"],
        checksums(spec, {k: hashlib.sha256(v).digest() for k, v in SECRETS.items()})["analytics"],
    }


def test_webapp_values_follow_the_contract() -> None:
    spec = parse_spec(
        {
            **MINIMAL,
            "webapp": {
                "host": "orders.example.com",
                "ingressClassName": "nginx",
                "tls": {"secretName": "tls"},
                "backend": {"replicas": 2},
            },
        }
    )
    values = webapp_values(spec, "1.2.3")
    assert values["couchbase"] == {
        "connectionString": "couchbase://couchbase",
        "bucket": "order_analytics",
        "existingSecret": "cb",
        "usernameKey": "username",
        "passwordKey": "password",
    }
    assert values["ingress"]["host"] == "orders.example.com"
    assert values["ingress"]["className"] == "nginx"
    assert values["ingress"]["tls"] == {"enabled": True, "secretName": "tls"}
    assert values["backend"]["replicas"] == 2
    assert values["image"]["tag"] == "1.2.3"


def test_free_form_values_merge_under_typed_fields() -> None:
    spec = spec_with(
        webapp={
            "host": "a.example.com",
            "values": {"ingress": {"host": "evil.example.com", "annotations": {"x": "y"}}},
        }
    )
    values = webapp_values(spec, "1")
    assert values["ingress"]["host"] == "a.example.com"
    assert values["ingress"]["annotations"] == {"x": "y"}
    spec2 = spec_with(webapp={"values": {"backend": {"extraEnv": [1]}}})
    assert webapp_values(spec2, "1")["backend"]["extraEnv"] == [1]


def test_values_checksum_changes_with_values_and_chart() -> None:
    values = webapp_values(parse_spec(MINIMAL), "1")
    assert values_checksum(values, "c1") == values_checksum(dict(values), "c1")
    assert values_checksum(values, "c1") != values_checksum(values, "c2")
    other = webapp_values(spec_with(webapp={"host": "b.local"}), "1")
    assert values_checksum(values, "c1") != values_checksum(other, "c1")

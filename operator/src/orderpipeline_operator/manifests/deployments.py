"""One Deployment per worker (producer, fraud, payment, analytics)."""

from __future__ import annotations

from typing import Any

from orderpipeline_operator.manifests.components import Component
from orderpipeline_operator.manifests.configmap import CA_DIR, CA_FILE
from orderpipeline_operator.manifests.labels import (
    CHECKSUM_ANNOTATION,
    common_labels,
    configmap_name,
    deployment_name,
    selector_labels,
)
from orderpipeline_operator.manifests.security import (
    container_security_context,
    pod_security_context,
)
from orderpipeline_operator.spec import PipelineSpec, Resources

HEALTH_PORT = 8081
DEFAULT_RESOURCES: dict[str, dict[str, int | str]] = {
    "requests": {"cpu": "50m", "memory": "64Mi"},
    "limits": {"memory": "256Mi"},
}


def resources(spec: Resources) -> dict[str, dict[str, int | str]]:
    """The spec's requests/limits over sensible defaults, key by key."""
    return {
        "requests": {**DEFAULT_RESOURCES["requests"], **spec.requests},
        "limits": {**DEFAULT_RESOURCES["limits"], **spec.limits},
    }


def env(pipeline: str, component: Component) -> list[dict[str, Any]]:
    """Settings by reference to the ConfigMap, Secrets only through secretKeyRef."""
    config = configmap_name(pipeline)
    items: list[dict[str, Any]] = [{"name": "HEALTH_PORT", "value": str(HEALTH_PORT)}]
    items += [
        {"name": key, "valueFrom": {"configMapKeyRef": {"name": config, "key": key}}}
        for key in component.config_keys
    ]
    items += [
        {
            "name": ref.env,
            "valueFrom": {"secretKeyRef": {"name": ref.secret, "key": ref.key}},
        }
        for ref in component.secret_keys
    ]
    return items


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "health"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _volumes(component: Component) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """An emptyDir for /tmp (the root filesystem is read-only) and the Kafka CA if any."""
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    if component.ca_secret is not None:
        volumes.append(
            {
                "name": "kafka-ca",
                "secret": {
                    "secretName": component.ca_secret.secret,
                    "items": [{"key": component.ca_secret.key, "path": CA_FILE}],
                },
            }
        )
        mounts.append({"name": "kafka-ca", "mountPath": CA_DIR, "readOnly": True})
    return volumes, mounts


def container(pipeline: str, spec: PipelineSpec, component: Component, tag: str) -> dict[str, Any]:
    _, mounts = _volumes(component)
    return {
        "name": component.name,
        "image": f"{spec.image.repository}:{tag}",
        "imagePullPolicy": spec.image.pull_policy,
        "command": ["orderpipeline"],
        "args": [component.name],
        "env": env(pipeline, component),
        "ports": [{"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"}],
        "livenessProbe": _probe("/healthz", period=10, failures=3),
        "readinessProbe": _probe("/readyz", period=5, failures=2),
        "resources": resources(component.resources),
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    }


def deployment(
    pipeline: str, spec: PipelineSpec, component: Component, checksum: str, default_tag: str
) -> dict[str, Any]:
    labels = common_labels(pipeline, component.name)
    volumes, _ = _volumes(component)
    pod_spec: dict[str, Any] = {
        # Workers never call the Kubernetes API.
        "automountServiceAccountToken": False,
        # Service links would inject e.g. KAFKA_PORT from a Service named `kafka`.
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "terminationGracePeriodSeconds": 30,
        "containers": [container(pipeline, spec, component, spec.image.tag or default_tag)],
        "volumes": volumes,
    }
    if spec.image.pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": name} for name in spec.image.pull_secrets]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": deployment_name(pipeline, component.name), "labels": labels},
        "spec": {
            "replicas": component.replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector_labels(pipeline, component.name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
            },
            "template": {
                "metadata": {"labels": labels, "annotations": {CHECKSUM_ANNOTATION: checksum}},
                "spec": pod_spec,
            },
        },
    }

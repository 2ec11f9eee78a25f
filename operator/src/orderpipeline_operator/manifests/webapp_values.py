"""Values for the charts/webapp Helm release (the contract in docs/contracts.md).

Only references to Secrets go in: the chart reads the credentials from `existingSecret`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from orderpipeline_operator.manifests.deployments import resources
from orderpipeline_operator.manifests.labels import CHECKSUM_ANNOTATION
from orderpipeline_operator.spec import PipelineSpec


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` wins; nested mappings merge, everything else is replaced."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def typed_values(spec: PipelineSpec, default_tag: str, secret_checksum: str) -> dict[str, Any]:
    web = spec.webapp
    couchbase = spec.couchbase
    ingress: dict[str, Any] = {
        "enabled": True,
        "className": web.ingress_class_name or "",
        "host": web.host,
        "annotations": dict(web.ingress_annotations),
        "tls": {
            "enabled": web.tls is not None,
            "secretName": web.tls.secret_name if web.tls else "",
        },
    }
    return {
        "image": {
            "repository": spec.image.repository,
            "tag": spec.image.tag or default_tag,
            "pullPolicy": spec.image.pull_policy,
        },
        "imagePullSecrets": [{"name": name} for name in spec.image.pull_secrets],
        "backend": {
            "replicas": web.backend.replicas,
            "resources": resources(web.backend.resources),
            # The backend reads the Couchbase Secret: a rotated Secret must roll it too.
            "podAnnotations": {CHECKSUM_ANNOTATION: secret_checksum},
        },
        "dashboard": {
            "enabled": web.dashboard.enabled,
            "replicas": web.dashboard.replicas,
            "image": {
                "repository": web.dashboard.image.repository,
                "tag": web.dashboard.image.tag or default_tag,
                "pullPolicy": spec.image.pull_policy,
            },
            "resources": resources(web.dashboard.resources),
        },
        "couchbase": {
            "connectionString": couchbase.connection_string,
            "bucket": couchbase.bucket,
            "existingSecret": couchbase.credentials_secret_ref.name,
            "usernameKey": couchbase.credentials_secret_ref.username_key,
            "passwordKey": couchbase.credentials_secret_ref.password_key,
        },
        "ingress": ingress,
    }


def webapp_values(
    spec: PipelineSpec, default_tag: str, secret_checksum: str = ""
) -> dict[str, Any]:
    """spec.webapp.values under the typed fields: the typed API is the source of truth.

    `secret_checksum` digests the Couchbase credentials (see checksum.secret_checksum).
    """
    return deep_merge(spec.webapp.values, typed_values(spec, default_tag, secret_checksum))


def values_checksum(values: dict[str, Any], chart_digest: str) -> str:
    """Changes when the values or the chart change: the signal to run `helm upgrade`."""
    payload = json.dumps(values, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{chart_digest}\0{payload}".encode()).hexdigest()[:32]

"""The worker Deployments of a pipeline: the settings ConfigMap, one Deployment per worker
(server-side apply, owned by the pipeline), and the Secrets' fingerprints their pod
templates carry so that a rotated Secret rolls exactly the workers that use it."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import kopf

from orderpipeline_operator.consumer_groups import consumer_groups
from orderpipeline_operator.events import post_event
from orderpipeline_operator.manifests.checksum import (
    SecretFingerprints,
    component_checksum,
    fingerprint,
)
from orderpipeline_operator.manifests.components import (
    ALL_COMPONENTS,
    Component,
    SecretKey,
    components,
)
from orderpipeline_operator.manifests.configmap import config_data, configmap
from orderpipeline_operator.manifests.deployments import deployment
from orderpipeline_operator.manifests.labels import deployment_name
from orderpipeline_operator.runtime import Operator
from orderpipeline_operator.scaler import forget_decisions, replicas_for
from orderpipeline_operator.spec import PipelineSpec
from orderpipeline_operator.status import WorkerState, worker_state


def scaled_components(op: Operator, body: Mapping[str, Any], spec: PipelineSpec) -> list[Component]:
    """The spec's workers with the replica count each gets now (the scaler's when a
    consumer is autoscaled: the operator owns it, and a hand edit is drift)."""
    memory = op.memory(body)
    groups = {g.name: g for g in consumer_groups(spec)}
    for group in groups.values():
        forget_decisions(memory, group)
    return [
        dataclasses.replace(c, replicas=replicas_for(memory, groups[c.name]))
        if c.name in groups
        else c
        for c in components(spec)
    ]


def secret_fingerprints(
    op: Operator, namespace: str, spec: PipelineSpec
) -> tuple[SecretFingerprints, list[str]]:
    """A fingerprint of every Secret key the spec references (workers and webapp), and what
    is missing. Only fingerprints leave this function: the values are not kept."""
    cb = spec.couchbase.credentials_secret_ref
    refs = {
        r
        for c in components(spec)
        for r in (*c.secret_keys, *([c.ca_secret] if c.ca_secret else []))
    }
    refs |= {
        SecretKey("COUCHBASE_USERNAME", cb.name, cb.username_key),
        SecretKey("COUCHBASE_PASSWORD", cb.name, cb.password_key),
    }
    values: dict[tuple[str, str], bytes | None] = {}
    problems: list[str] = []
    for name in sorted({r.secret for r in refs}):
        secret = op.kube.secret_values(namespace, name)
        uid, data = secret if secret is not None else ("", None)
        if data is None:
            problems.append(f"Secret {name!r} not found in namespace {namespace!r}")
        for ref in (r for r in refs if r.secret == name):
            value = None if data is None else data.get(ref.key)
            values[(name, ref.key)] = None if value is None else fingerprint(uid, value)
            if data is not None and ref.key not in data:
                problems.append(f"Secret {name!r} has no key {ref.key!r} (for {ref.env})")
    return values, problems


def _owned(obj: dict[str, Any], owner: Mapping[str, Any]) -> dict[str, Any]:
    kopf.adopt(obj, owner=dict(owner))  # type: ignore[arg-type]
    return obj


def apply_workers(
    op: Operator, body: Mapping[str, Any], spec: PipelineSpec, secrets: SecretFingerprints
) -> dict[str, WorkerState]:
    """ConfigMap, then the Deployments (so a rolled pod sees the new settings)."""
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    wanted = scaled_components(op, body, spec)
    config = config_data(spec)
    op.kube.apply(_owned(configmap(name, spec), body))
    workers: dict[str, WorkerState] = {}
    for comp in wanted:
        checksum = component_checksum(comp, config, secrets)
        manifest = deployment(name, spec, comp, checksum, op.settings.default_image_tag)
        applied = op.kube.apply(_owned(manifest, body))
        workers[comp.name] = worker_state(manifest["metadata"]["name"], comp.replicas, applied)
    for unwanted in set(ALL_COMPONENTS) - {c.name for c in wanted}:
        if op.kube.delete_deployment(namespace, deployment_name(name, unwanted)):
            post_event(body, "info", reason="Deleted", message=f"Deleted the {unwanted} Deployment")
    return workers


def observe_workers(
    op: Operator, body: Mapping[str, Any], spec: PipelineSpec
) -> dict[str, WorkerState]:
    """Read-only view of the Deployments (for a suspended pipeline)."""
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    out = {}
    for comp in scaled_components(op, body, spec):
        dep_name = deployment_name(name, comp.name)
        out[comp.name] = worker_state(
            dep_name, comp.replicas, op.kube.get_deployment(namespace, dep_name)
        )
    return out

"""One reconcile of one OrderPipeline: children from the spec, then status from the children.

Synchronous on purpose: kopf runs sync handlers in its thread pool, and the official
`kubernetes` client and helm are blocking. A per-pipeline lock serialises the pipeline's
own handlers with the ones triggered by its Deployments and with its lag readings.
The children are in workers.py and webapp_release.py; this module puts them together and
writes the status.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from orderpipeline_operator.events import post_event
from orderpipeline_operator.manifests.checksum import SecretFingerprints
from orderpipeline_operator.manifests.labels import deployment_name, release_name
from orderpipeline_operator.metrics import RECONCILE_ERRORS, RECONCILE_SECONDS, RECONCILES
from orderpipeline_operator.runtime import Operator
from orderpipeline_operator.spec import InvalidSpec, PipelineSpec, parse_spec
from orderpipeline_operator.status import (
    WebappState,
    WorkerState,
    build_status,
    invalid_spec_status,
    is_ready,
    release_rolled_out,
    status_changed,
    worker_state,
)
from orderpipeline_operator.webapp_release import ensure_webapp, observe_webapp
from orderpipeline_operator.workers import (
    apply_workers,
    observe_workers,
    scaled_components,
    secret_fingerprints,
)


class ReconcileError(Exception):
    """A step failed; the message is for the user (status, Events)."""


def write_status(
    op: Operator,
    body: Mapping[str, Any],
    spec: PipelineSpec,
    workers: Mapping[str, WorkerState],
    webapp: WebappState,
    error: str | None,
    generation: int | None = None,
) -> dict[str, Any]:
    """Patch the status only when it changes; say so in an Event when Ready flips.

    `generation`: the one observed (default: the body's, which a reconcile has just applied).
    """
    meta = body["metadata"]
    previous = op.statuses.last(body)
    observed = int(meta.get("generation", 1)) if generation is None else generation
    memory = op.memory(body)
    status = build_status(
        observed, workers, webapp, error, spec.suspend, previous,
        consumers=memory.entries, lagging=memory.lagging,
    )  # fmt: skip
    changed = status_changed(previous, status)
    if changed:
        op.kube.patch_status(meta["namespace"], meta["name"], status)
    # A merge patch: keys the new status does not have (status.consumers before the first
    # lag reading) stay as they were.
    op.statuses.remember(body, {**previous, **status}, ready=is_ready(status))
    was, now = is_ready(previous), is_ready(status)
    if changed and now and not was:
        post_event(body, "info", reason="Ready", message="All workers and the webapp are ready")
    elif changed and was and not now:
        post_event(body, "warn", reason="NotReady", message=status["conditions"][0]["message"])
    return status


def report_invalid_spec(op: Operator, body: Mapping[str, Any], problem: InvalidSpec) -> None:
    """Say in the status (Degraded, lastError) and once in an Event why nothing happens."""
    meta = body["metadata"]
    with op.lock(meta["uid"]):
        previous = op.statuses.last(body)
        status = invalid_spec_status(int(meta.get("generation", 1)), str(problem), previous)
        if status_changed(previous, status):
            op.kube.patch_status(meta["namespace"], meta["name"], status)
            post_event(body, "warn", reason="InvalidSpec", message=str(problem))
        op.statuses.remember(body, {**previous, **status}, ready=False)


def reconcile(op: Operator, body: Mapping[str, Any], trigger: str) -> dict[str, Any]:
    """Converge the children to the spec and report. Raises ReconcileError to retry later,
    InvalidSpec (reported in the status) when retrying cannot help."""
    started = time.monotonic()
    try:
        spec = parse_spec(body["spec"])
    except InvalidSpec as problem:
        report_invalid_spec(op, body, problem)
        RECONCILES.labels(trigger=trigger, result="invalid-spec").inc()
        raise
    with op.lock(body["metadata"]["uid"]):
        previous = op.statuses.last(body)
        errors: list[str] = []
        if spec.suspend:
            workers = observe_workers(op, body, spec)
            webapp = observe_webapp(op, body, spec, previous)
        else:
            secrets: SecretFingerprints = {}
            try:
                secrets, problems = secret_fingerprints(op, body["metadata"]["namespace"], spec)
                errors += problems
                workers = apply_workers(op, body, spec, secrets)
            except ApiException as exc:
                RECONCILE_ERRORS.labels(stage="workers").inc()
                errors.append(
                    f"applying the workers failed: {exc.status} {exc.reason}: {_api_message(exc)}"
                )
                workers = observe_workers(op, body, spec)
            webapp, helm_error = ensure_webapp(op, body, spec, previous, secrets)
            if helm_error:
                RECONCILE_ERRORS.labels(stage="webapp").inc()
                errors.append(helm_error)
        error = "; ".join(errors) or None
        status = write_status(op, body, spec, workers, webapp, error)
    RECONCILE_SECONDS.observe(time.monotonic() - started)
    RECONCILES.labels(trigger=trigger, result="error" if error else "ok").inc()
    if error:
        post_event(body, "warn", reason="ReconcileFailed", message=error[:1000])
        raise ReconcileError(error)
    return status


def refresh_status(
    op: Operator,
    body: Mapping[str, Any],
    deployments: Mapping[str, Mapping[str, Any]],
    release_deployments: list[Mapping[str, Any]],
) -> None:
    """Status from already-known Deployments (a Deployment's watch event): no reconcile.

    `deployments` are the workers' by component, `release_deployments` the webapp's."""
    spec = parse_spec(body["spec"])
    with op.lock(body["metadata"]["uid"]):
        previous = op.statuses.last(body)
        workers = {
            comp.name: worker_state(
                deployment_name(body["metadata"]["name"], comp.name),
                comp.replicas,
                deployments.get(comp.name),
            )
            for comp in scaled_components(op, body, spec)
        }
        web = previous.get("webapp") or {}
        webapp = WebappState(
            enabled=spec.webapp.enabled,
            release=release_name(body["metadata"]["name"]),
            revision=int(web.get("revision", 0)),
            state=str(web.get("state", "absent")),
            values_checksum=str(web.get("valuesChecksum", "")),
            rolled_out=release_rolled_out(release_deployments),
        )
        error = previous.get("lastError") or None
        # Not the body's generation: its reconcile may not have run or finished (an API
        # server outage, a newer spec), so the release is not known to match it yet.
        observed = int(previous.get("observedGeneration", 0))
        write_status(op, body, spec, workers, webapp, error, generation=observed)


def _api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message", ""))[:500]
    except ValueError:
        return ""

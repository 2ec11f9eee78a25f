"""One reconcile of one OrderPipeline: children from the spec, then status from the children.

Synchronous on purpose: kopf runs sync handlers in its thread pool, and the official
`kubernetes` client and helm are blocking. A per-pipeline lock serialises the pipeline's
own handlers with the ones triggered by its Deployments.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from orderpipeline_operator.consumer_groups import consumer_groups
from orderpipeline_operator.helm import Helm, HelmError, chart_digest
from orderpipeline_operator.kube import Kube
from orderpipeline_operator.manifests.checksum import (
    SecretFingerprints,
    component_checksum,
    fingerprint,
    secret_checksum,
)
from orderpipeline_operator.manifests.components import (
    ALL_COMPONENTS,
    Component,
    SecretKey,
    components,
)
from orderpipeline_operator.manifests.configmap import config_data, configmap
from orderpipeline_operator.manifests.deployments import deployment
from orderpipeline_operator.manifests.labels import deployment_name, release_name
from orderpipeline_operator.manifests.webapp_values import values_checksum, webapp_values
from orderpipeline_operator.metrics import (
    PER_CONSUMER,
    PIPELINES_READY,
    RECONCILE_ERRORS,
    RECONCILE_SECONDS,
    RECONCILES,
)
from orderpipeline_operator.scaler import LiveStore, PipelineMemory, replicas_for
from orderpipeline_operator.settings import Settings
from orderpipeline_operator.spec import PipelineSpec, parse_spec
from orderpipeline_operator.status import (
    WebappState,
    WorkerState,
    build_status,
    is_ready,
    release_rolled_out,
    status_changed,
    worker_state,
)


class ReconcileError(Exception):
    """A step failed; the message is for the user (status, Events)."""


@dataclass
class Operator:
    """What the handlers share: clients, settings, and the status each pipeline was given."""

    settings: Settings
    kube: Kube
    helm: Helm
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)
    # uid -> the status last written: the source of truth for "did anything change".
    _written: dict[str, dict[str, Any]] = field(default_factory=dict)
    _ready: set[str] = field(default_factory=set)
    # The lag reader's memory (readings, the scaler's replica counts, the live status).
    live: LiveStore = field(default_factory=LiveStore)

    def lock(self, uid: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(uid, threading.Lock())

    def forget(self, uid: str, namespace: str = "", name: str = "") -> None:
        with self._locks_guard:
            self._locks.pop(uid, None)
            self._written.pop(uid, None)
            self._ready.discard(uid)
            PIPELINES_READY.set(len(self._ready))
        self.live.forget(uid)
        for gauge in PER_CONSUMER:
            for group in ("fraud", "payment", "analytics"):
                with contextlib.suppress(KeyError):  # never read: no series
                    gauge.remove(namespace, name, group)

    def remember_status(self, body: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """The status just written (the next "did anything change" compares with it)."""
        self._written[body["metadata"]["uid"]] = copy.deepcopy(dict(status))

    def memory(self, body: Mapping[str, Any]) -> PipelineMemory:
        return self.live.memory(body["metadata"]["uid"], self.last_status(body))

    def last_status(self, body: Mapping[str, Any]) -> dict[str, Any]:
        uid = body["metadata"]["uid"]
        return self._written.get(uid) or dict(body.get("status") or {})


def scaled_components(op: Operator, body: Mapping[str, Any], spec: PipelineSpec) -> list[Component]:
    """The spec's workers with the replica count each gets now (the scaler's when a
    consumer is autoscaled: the operator owns it, and a hand edit is drift)."""
    memory = op.memory(body)
    groups = {g.name: g for g in consumer_groups(spec)}
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


def _release_selector(release: str) -> str:
    return f"app.kubernetes.io/instance={release},app.kubernetes.io/managed-by=Helm"


def ensure_webapp(
    op: Operator,
    body: Mapping[str, Any],
    spec: PipelineSpec,
    previous: Mapping[str, Any],
    secrets: SecretFingerprints,
) -> tuple[WebappState, str | None]:
    """Install/upgrade the release only when its values or chart changed or it is not deployed.

    helm does not wait: the rollout is followed through the release's Deployments (here
    and in refresh_status), and a revision that fails or does not become available within
    OPERATOR_HELM_TIMEOUT_SECONDS is undone, so the release is never left broken.
    """
    name, namespace = body["metadata"]["name"], body["metadata"]["namespace"]
    release = release_name(name)
    current = op.kube.helm_release(namespace, release)
    if not spec.webapp.enabled:
        if current is not None:
            op.helm.uninstall(release, namespace)
            post_event(body, "info", reason="Uninstalled", message=f"Uninstalled release {release}")
        return WebappState(enabled=False, release=release), None
    chart = op.settings.webapp_chart
    ref = spec.couchbase.credentials_secret_ref
    couchbase = secret_checksum(
        [(ref.name, ref.username_key), (ref.name, ref.password_key)], secrets
    )
    values = webapp_values(spec, op.settings.default_image_tag, couchbase)
    checksum = values_checksum(values, chart_digest(chart))
    applied = (previous.get("webapp") or {}).get("valuesChecksum", "")
    if current is not None and current[1] == "deployed" and applied == checksum:
        deployments = op.kube.list_deployments(namespace, _release_selector(release))
        # None at all: deleted by hand, and the upgrade below restores them.
        if deployments:
            rolled_out = release_rolled_out(deployments)
            state = WebappState(True, release, current[0], "deployed", checksum, rolled_out)
            if rolled_out or time.time() - current[2] < op.settings.helm_timeout_seconds:
                return state, None
            return _undo_stuck_rollout(op, body, state, namespace)
    try:
        if current is not None and current[1].startswith("pending-"):
            # Left by a helm run that was interrupted (operator restart): with one active
            # operator and this pipeline's lock held, nobody else is running helm on it.
            if current[1] == "pending-install" or current[0] <= 1:
                op.helm.uninstall(release, namespace)
            else:
                op.helm.rollback(release, namespace)
        result = op.helm.upgrade(release, namespace, chart, values)
    except (HelmError, FileNotFoundError) as exc:
        undone = _undo_failed_revision(op, release, namespace, current)
        after = op.kube.helm_release(namespace, release)
        state = WebappState(
            True, release, after[0] if after else 0, after[1] if after else "absent", applied
        )
        return state, f"helm upgrade of release {release} failed: {exc}{undone}"
    verb = "Installed" if current is None else "Upgraded"
    post_event(
        body, "info", reason=verb, message=f"{verb} release {release} (revision {result.revision})"
    )
    rolled_out = release_rolled_out(op.kube.list_deployments(namespace, _release_selector(release)))
    return WebappState(True, release, result.revision, result.state, checksum, rolled_out), None


def _undo_failed_revision(
    op: Operator, release: str, namespace: str, before: tuple[int, str, int] | None
) -> str:
    """A revision helm created and could not apply goes: back to the previous revision,
    or no release at all when it was the first install (what `--rollback-on-failure` did).
    Returns what was done, for the error message."""
    after = op.kube.helm_release(namespace, release)
    if after is None or after[1] == "deployed" or (before is not None and after[0] == before[0]):
        return ""  # helm failed before writing a revision (bad values, chart, cluster)
    try:
        if before is None or after[0] <= 1:
            op.helm.uninstall(release, namespace)
            return "; the failed install was uninstalled"
        op.helm.rollback(release, namespace)
    except (HelmError, FileNotFoundError) as exc:
        return f"; undoing revision {after[0]} failed too: {exc}"
    return f"; rolled back from failed revision {after[0]}"


def _undo_stuck_rollout(
    op: Operator, body: Mapping[str, Any], state: WebappState, namespace: str
) -> tuple[WebappState, str]:
    """The release's Deployments did not become available in time: roll back to the
    previous revision, and forget the applied values so that a later reconcile tries
    again (with backoff). A first install has nothing to go back to: only reported."""
    timeout = op.settings.helm_timeout_seconds
    message = (
        f"webapp release {state.release} revision {state.revision}: "
        f"Deployments not available after {timeout}s"
    )
    if state.revision <= 1:
        return state, message
    try:
        op.helm.rollback(state.release, namespace)
    except (HelmError, FileNotFoundError) as exc:
        return state, f"{message}; rollback failed: {exc}"
    after = op.kube.helm_release(namespace, state.release)
    post_event(body, "warn", reason="RolledBack", message=f"{message}: rolled back")
    rolled_back = WebappState(
        True, state.release, after[0] if after else 0, after[1] if after else "absent", "",
        rolled_out=False,
    )  # fmt: skip
    return rolled_back, f"{message}: rolled back"


def observe_webapp(
    op: Operator, body: Mapping[str, Any], spec: PipelineSpec, previous: Mapping[str, Any]
) -> WebappState:
    namespace = body["metadata"]["namespace"]
    release = release_name(body["metadata"]["name"])
    if not spec.webapp.enabled:
        return WebappState(enabled=False, release=release)
    current = op.kube.helm_release(namespace, release)
    applied = (previous.get("webapp") or {}).get("valuesChecksum", "")
    if current is None:
        return WebappState(True, release, values_checksum=applied)
    rolled_out = release_rolled_out(op.kube.list_deployments(namespace, _release_selector(release)))
    return WebappState(True, release, current[0], current[1], applied, rolled_out)


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
    previous = op.last_status(body)
    observed = int(meta.get("generation", 1)) if generation is None else generation
    memory = op.memory(body)
    status = build_status(
        observed, workers, webapp, error, spec.suspend, previous,
        consumers=memory.entries, lagging=memory.lagging,
    )  # fmt: skip
    if status_changed(previous, status):
        op.kube.patch_status(meta["namespace"], meta["name"], status)
        op.remember_status(body, status)
        was, now = is_ready(previous), is_ready(status)
        if now and not was:
            post_event(body, "info", reason="Ready", message="All workers and the webapp are ready")
        elif was and not now:
            post_event(body, "warn", reason="NotReady", message=status["conditions"][0]["message"])
    else:
        op._written.setdefault(meta["uid"], copy.deepcopy(status))
    if is_ready(status):
        op._ready.add(meta["uid"])
    else:
        op._ready.discard(meta["uid"])
    PIPELINES_READY.set(len(op._ready))
    return status


def reconcile(op: Operator, body: Mapping[str, Any], trigger: str) -> dict[str, Any]:
    """Converge the children to the spec and report. Raises ReconcileError to retry later."""
    started = time.monotonic()
    spec = parse_spec(body["spec"])
    with op.lock(body["metadata"]["uid"]):
        previous = op.last_status(body)
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
        previous = op.last_status(body)
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


def post_event(body: Mapping[str, Any], kind: str, *, reason: str, message: str) -> None:
    """A Kubernetes Event on the pipeline (kopf posts it; never fails the reconcile).

    kopf.event, not kopf.info: kopf.info drops the Event when the posting level is above
    INFO, and the level is WARNING so that kopf's own log lines do not become Events."""
    kopf.event(
        kopf.Body(dict(body)),  # type: ignore[arg-type]
        type="Normal" if kind == "info" else "Warning",
        reason=reason,
        message=message,
    )


def _api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message", ""))[:500]
    except ValueError:
        return ""

"""The webapp Helm release of a pipeline: install/upgrade only when its values or chart
changed or it is not deployed, follow its rollout through its Deployments (helm does not
wait), and undo a revision that failed or did not become available in time."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from orderpipeline_operator.events import post_event
from orderpipeline_operator.helm import HelmError, Release, chart_digest
from orderpipeline_operator.manifests.checksum import SecretFingerprints, secret_checksum
from orderpipeline_operator.manifests.labels import release_name
from orderpipeline_operator.manifests.webapp_values import values_checksum, webapp_values
from orderpipeline_operator.runtime import Operator
from orderpipeline_operator.spec import PipelineSpec
from orderpipeline_operator.status import WebappState, release_rolled_out


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
    if current is not None and current.state == "deployed" and applied == checksum:
        deployments = op.kube.list_deployments(namespace, _release_selector(release))
        # None at all: deleted by hand, and the upgrade below restores them.
        if deployments:
            rolled_out = release_rolled_out(deployments)
            state = WebappState(True, release, current.revision, "deployed", checksum, rolled_out)
            if rolled_out or time.time() - current.modified_at < op.settings.helm_timeout_seconds:
                return state, None
            return _undo_stuck_rollout(op, body, state, namespace)
    try:
        if current is not None and current.state.startswith("pending-"):
            # Left by a helm run that was interrupted (operator restart): with one active
            # operator and this pipeline's lock held, nobody else is running helm on it.
            if current.state == "pending-install" or current.revision <= 1:
                op.helm.uninstall(release, namespace)
            else:
                op.helm.rollback(release, namespace)
        result = op.helm.upgrade(release, namespace, chart, values)
    except (HelmError, FileNotFoundError) as exc:
        undone = _undo_failed_revision(op, release, namespace, current)
        after = op.kube.helm_release(namespace, release)
        state = WebappState(
            True,
            release,
            after.revision if after else 0,
            after.state if after else "absent",
            applied,
        )
        return state, f"helm upgrade of release {release} failed: {exc}{undone}"
    verb = "Installed" if current is None else "Upgraded"
    post_event(
        body, "info", reason=verb, message=f"{verb} release {release} (revision {result.revision})"
    )
    rolled_out = release_rolled_out(op.kube.list_deployments(namespace, _release_selector(release)))
    return WebappState(True, release, result.revision, result.state, checksum, rolled_out), None


def _undo_failed_revision(
    op: Operator, release: str, namespace: str, before: Release | None
) -> str:
    """A revision helm created and could not apply goes: back to the previous revision,
    or no release at all when it was the first install (what `--rollback-on-failure` did).
    Returns what was done, for the error message."""
    after = op.kube.helm_release(namespace, release)
    if after is None or after.state == "deployed" or (before and after.revision == before.revision):
        return ""  # helm failed before writing a revision (bad values, chart, cluster)
    try:
        if before is None or after.revision <= 1:
            op.helm.uninstall(release, namespace)
            return "; the failed install was uninstalled"
        op.helm.rollback(release, namespace)
    except (HelmError, FileNotFoundError) as exc:
        return f"; undoing revision {after.revision} failed too: {exc}"
    return f"; rolled back from failed revision {after.revision}"


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
        True, state.release, after.revision if after else 0, after.state if after else "absent", "",
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
    return WebappState(True, release, current.revision, current.state, applied, rolled_out)

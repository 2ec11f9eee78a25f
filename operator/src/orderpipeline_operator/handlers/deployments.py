"""Watch the workers' and the webapp release's Deployments: a fresh status as soon as
they change (helm does not wait: this is how a rollout is followed), and an immediate
restore when one is deleted (hand edits wait for the resync timer)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from orderpipeline_operator.handlers.blocking import in_thread
from orderpipeline_operator.kube import GROUP, PLURAL, VERSION
from orderpipeline_operator.manifests.labels import MANAGED_BY
from orderpipeline_operator.reconcile import ReconcileError, reconcile, refresh_status
from orderpipeline_operator.spec import InvalidSpec

_INSTANCE = "app.kubernetes.io/instance"
_COMPONENT = "app.kubernetes.io/component"
# The webapp chart's Deployments are Helm's; index keys tell them from the workers.
_HELM = "Helm"
_WEBAPP = "webapp/"
# Deployment events of one pipeline within this window make one status refresh.
_COALESCE_SECONDS = 0.25


def _ours_or_helms(value: str | None, **_: Any) -> bool:
    return value in (MANAGED_BY, _HELM)


_MANAGED: Any = {
    "app.kubernetes.io/part-of": "orderpipeline",
    "app.kubernetes.io/managed-by": _ours_or_helms,
    _INSTANCE: kopf.PRESENT,
}


@kopf.index(GROUP, VERSION, PLURAL)
def pipelines_by_name(*, namespace: str | None, name: str, body: kopf.Body, **_: Any) -> Any:
    return {(namespace, name): copy.deepcopy(dict(body))}


@kopf.index("apps", "v1", "deployments", labels=_MANAGED)
def workers_by_pipeline(
    *, namespace: str | None, labels: Mapping[str, str], body: kopf.Body, **_: Any
) -> Any:
    """Only what status needs, not the whole Deployment (memory with many pipelines)."""
    summary = {
        "metadata": {"generation": body.metadata.get("generation", 1)},
        "spec": {"replicas": body.spec.get("replicas", 1)},
        "status": dict(body.status),
    }
    helms = labels.get("app.kubernetes.io/managed-by") == _HELM
    key = f"{_WEBAPP}{body.metadata.name}" if helms else labels.get(_COMPONENT)
    return {(namespace, labels.get(_INSTANCE)): (key, summary)}


@kopf.on.event("apps", "v1", "deployments", labels=_MANAGED)
async def worker_changed(
    *, type: str, namespace: str | None, labels: Mapping[str, str], memo: Any,
    logger: logging.Logger | logging.LoggerAdapter[Any], **kwargs: Any,
) -> None:  # fmt: skip
    """Async, and coalesced per pipeline: a rollout of 20 pipelines sends hundreds of
    Deployment events, and one blocking handler each would queue the pipelines' own
    reconciles (children, helm) behind them in kopf's thread pool."""
    # kopf passes the indexes by their function names; they are live views.
    pipelines_by_name: kopf.Index[Any, Any] = kwargs["pipelines_by_name"]
    workers_by_pipeline: kopf.Index[Any, Any] = kwargs["workers_by_pipeline"]
    key = (namespace, labels.get(_INSTANCE))
    pipeline = _active_pipeline(pipelines_by_name, key)
    if pipeline is None:
        return
    if type == "DELETED":
        logger.info("Deployment of %s/%s deleted: restoring", *key)
        try:
            await in_thread(reconcile, memo.operator, pipeline, "child-deleted")
        except ReconcileError as exc:
            logger.warning("restore failed: %s", exc)  # the resync timer retries
        except InvalidSpec:
            pass  # reported in the status; nothing is restored until the spec changes
        return
    pending: set[Any] = memo.setdefault("refreshing", set())
    if key in pending:
        return  # a refresh is already scheduled, and will read this change from the index
    pending.add(key)
    try:
        await asyncio.sleep(_COALESCE_SECONDS)
    finally:
        pending.discard(key)
    pipeline = _active_pipeline(pipelines_by_name, key)
    if pipeline is None:
        return
    known = dict(workers_by_pipeline.get(key, []))
    workers = {k: v for k, v in known.items() if not str(k).startswith(_WEBAPP)}
    webapp = [v for k, v in known.items() if str(k).startswith(_WEBAPP)]
    # InvalidSpec: the status says so already (reconcile.report_invalid_spec).
    with contextlib.suppress(InvalidSpec):
        await in_thread(refresh_status, memo.operator, pipeline, workers, webapp)


def _active_pipeline(pipelines: kopf.Index[Any, Any], key: Any) -> dict[str, Any] | None:
    """The pipeline a Deployment belongs to, unless it is gone, being deleted or suspended."""
    if key not in pipelines:
        return None
    (pipeline,) = pipelines[key]
    if pipeline["metadata"].get("deletionTimestamp") or pipeline["spec"].get("suspend"):
        return None
    found: dict[str, Any] = pipeline
    return found

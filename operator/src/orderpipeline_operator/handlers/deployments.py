"""Watch the workers' Deployments: a fresh status as soon as they change, and an
immediate restore when one is deleted (hand edits wait for the resync timer)."""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from orderpipeline_operator.kube import GROUP, PLURAL, VERSION
from orderpipeline_operator.manifests.labels import MANAGED_BY
from orderpipeline_operator.reconcile import ReconcileError, reconcile, refresh_status

_MANAGED = {"app.kubernetes.io/managed-by": MANAGED_BY}
_INSTANCE = "app.kubernetes.io/instance"
_COMPONENT = "app.kubernetes.io/component"


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
    return {(namespace, labels.get(_INSTANCE)): (labels.get(_COMPONENT), summary)}


@kopf.on.event("apps", "v1", "deployments", labels=_MANAGED)
def worker_changed(
    *, type: str, namespace: str | None, labels: Mapping[str, str], memo: Any,
    logger: logging.Logger | logging.LoggerAdapter[Any], **kwargs: Any,
) -> None:  # fmt: skip
    # kopf passes the indexes by their function names.
    pipelines_by_name: kopf.Index[Any, Any] = kwargs["pipelines_by_name"]
    workers_by_pipeline: kopf.Index[Any, Any] = kwargs["workers_by_pipeline"]
    key = (namespace, labels.get(_INSTANCE))
    if key not in pipelines_by_name:
        return
    (pipeline,) = pipelines_by_name[key]
    if pipeline["metadata"].get("deletionTimestamp") or pipeline["spec"].get("suspend"):
        return
    if type == "DELETED":
        logger.info("Deployment of %s/%s deleted: restoring", *key)
        try:
            reconcile(memo.operator, pipeline, trigger="child-deleted")
        except ReconcileError as exc:
            logger.warning("restore failed: %s", exc)  # the resync timer retries
        return
    known = dict(workers_by_pipeline.get(key, []))
    refresh_status(memo.operator, pipeline, known)

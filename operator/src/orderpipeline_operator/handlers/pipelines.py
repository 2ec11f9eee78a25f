"""Handlers of OrderPipeline objects: reconcile on create/update/resume and on a timer,
uninstall the webapp release on deletion."""

from __future__ import annotations

import copy
import logging
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from orderpipeline_operator.helm import HelmError
from orderpipeline_operator.kube import GROUP, PLURAL, VERSION
from orderpipeline_operator.manifests.labels import release_name
from orderpipeline_operator.reconcile import ReconcileError, reconcile
from orderpipeline_operator.runtime import Operator
from orderpipeline_operator.settings import get_settings
from orderpipeline_operator.spec import InvalidSpec


def _raw(body: kopf.Body) -> dict[str, Any]:
    """A plain-dict snapshot of the object (kopf's Body is a live view)."""
    return copy.deepcopy(dict(body))


def _backoff(retry: int) -> float:
    return float(min(300, 5 * 2**retry))


# The API server unreachable or refusing (a restart, "storage is (re)initializing") in the
# middle of a reconcile: retried like a failed step. Left to kopf, any exception waits 60 s,
# and the resync timer would wait as long.
_RETRIABLE = (ReconcileError, ApiException, HTTPError)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
def reconcile_pipeline(*, body: kopf.Body, memo: Any, retry: int, reason: str, **_: Any) -> None:
    try:
        reconcile(memo.operator, _raw(body), trigger=str(reason))
    except InvalidSpec as exc:
        # Reported in the status; kopf calls this handler again only for a changed spec.
        raise kopf.PermanentError(str(exc)) from exc
    except _RETRIABLE as exc:
        # Retried with backoff; the status and an Event say what failed (if it could be told).
        raise kopf.TemporaryError(str(exc), delay=_backoff(retry)) from exc


@kopf.timer(
    GROUP, VERSION, PLURAL,
    interval=get_settings().resync_seconds,
    initial_delay=get_settings().resync_seconds,
    idle=None,
)  # fmt: skip
def resync_pipeline(
    *, body: kopf.Body, memo: Any, logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any
) -> None:
    """Drift: a deleted or hand-edited child, a rotated Secret, a release that is not deployed."""
    try:
        reconcile(memo.operator, _raw(body), trigger="timer")
    except InvalidSpec:
        pass  # already in the status (written once: an unchanged report writes nothing)
    except _RETRIABLE as exc:
        logger.warning("resync failed: %s", exc)  # the next tick retries


@kopf.on.delete(GROUP, VERSION, PLURAL)
def delete_pipeline(
    *, body: kopf.Body, memo: Any, retry: int, name: str, namespace: str | None,
    logger: logging.Logger | logging.LoggerAdapter[Any], **_: Any,
) -> None:  # fmt: skip
    """Uninstall the release; Deployments and the ConfigMap go by their owner references.

    A release that keeps failing to uninstall must not block the deletion forever: after
    OPERATOR_UNINSTALL_ATTEMPTS tries the finalizer is released with a warning Event.
    """
    operator: Operator = memo.operator
    release = release_name(name)
    try:
        operator.helm.uninstall(release, namespace or "default")
    except (HelmError, FileNotFoundError) as exc:
        if retry + 1 < operator.settings.uninstall_attempts:
            raise kopf.TemporaryError(f"helm uninstall {release}: {exc}", delay=5) from exc
        logger.warning("giving up uninstalling release %s: %s", release, exc)
        kopf.warn(
            body, reason="UninstallFailed",
            message=f"Gave up uninstalling release {release} after {retry + 1} attempts: {exc}",
        )  # fmt: skip
    finally:
        operator.forget(body["metadata"]["uid"], namespace or "", name)

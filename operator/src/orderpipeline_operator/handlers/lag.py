"""The lag timer: every OPERATOR_LAG_INTERVAL_SECONDS per pipeline, read its consumer
groups' offsets, refresh the live status, and apply what the scaler decided."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from orderpipeline_operator.events import post_event
from orderpipeline_operator.kube import GROUP, PLURAL, VERSION
from orderpipeline_operator.live import observe_lag
from orderpipeline_operator.metrics import SCALINGS
from orderpipeline_operator.reconcile import ReconcileError, reconcile
from orderpipeline_operator.runtime import Operator
from orderpipeline_operator.settings import get_settings
from orderpipeline_operator.spec import InvalidSpec

Logger = logging.Logger | logging.LoggerAdapter[Any]


@kopf.timer(GROUP, VERSION, PLURAL, interval=get_settings().lag_interval_seconds, idle=None)
def read_lag(*, body: kopf.Body, memo: Any, logger: Logger, **_: Any) -> None:
    """Never raises for Kafka (a reading says `unknown` instead) nor for the API server (the
    next tick tries again): a timer that raised would wait kopf's 60 s error delay."""
    operator: Operator = memo.operator
    raw = dict(body)
    try:
        scalings = observe_lag(operator, raw)
    except InvalidSpec:
        return  # the reconcile reports it (Degraded) and waits for a new spec
    except (ApiException, HTTPError) as exc:
        logger.warning("lag reading: Kubernetes API: %s", exc)
        return
    for change in scalings:
        SCALINGS.labels(direction="up" if change.after > change.before else "down").inc()
        post_event(raw, "info", reason="Scaled", message=change.message)
    if scalings:
        try:
            reconcile(operator, raw, trigger="autoscale")
        except (ReconcileError, InvalidSpec, ApiException, HTTPError) as exc:
            logger.warning("applying the scaled replicas: %s", exc)  # the resync retries

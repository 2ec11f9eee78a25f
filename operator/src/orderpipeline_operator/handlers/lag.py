"""The lag timer: every OPERATOR_LAG_INTERVAL_SECONDS per pipeline, read its consumer
groups' offsets, refresh the live status, and apply what the scaler decided."""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from orderpipeline_operator.events import post_event
from orderpipeline_operator.handlers.blocking import in_thread
from orderpipeline_operator.kube import GROUP, PLURAL, VERSION
from orderpipeline_operator.live import observe_lag, read_kafka
from orderpipeline_operator.metrics import SCALINGS
from orderpipeline_operator.reconcile import ReconcileError, reconcile
from orderpipeline_operator.runtime import Operator
from orderpipeline_operator.settings import get_settings
from orderpipeline_operator.spec import InvalidSpec

Logger = logging.Logger | logging.LoggerAdapter[Any]


@kopf.timer(GROUP, VERSION, PLURAL, interval=get_settings().lag_interval_seconds, idle=None)
async def read_lag(*, body: kopf.Body, memo: Any, logger: Logger, **_: Any) -> None:
    """Never raises for Kafka (a reading says `unknown` instead) nor for the API server (the
    next tick tries again): a timer that raised would wait kopf's 60 s error delay.

    Async, with the Kafka half in the operator's own small pool (OPERATOR_KAFKA_READERS):
    an unreachable broker holds a reader for the whole timeout, and many of them must
    neither take kopf's handler threads from the reconciles nor run dozens of librdkafka
    clients at once (each reading has three; 60 at once cost ~40 MB of RSS that stays)."""
    operator: Operator = memo.operator
    raw = copy.deepcopy(dict(body))
    loop = asyncio.get_running_loop()
    try:
        reading = await loop.run_in_executor(operator.kafka_readers, read_kafka, operator, raw)
        scalings = await in_thread(observe_lag, operator, raw, reading)
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
            await in_thread(reconcile, operator, raw, "autoscale")
        except (ReconcileError, InvalidSpec, ApiException, HTTPError) as exc:
            logger.warning("applying the scaled replicas: %s", exc)  # the resync retries

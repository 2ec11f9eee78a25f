"""The lag reader: one kopf daemon per pipeline that reads its consumer groups' offsets,
refreshes the live status, applies what the scaler decided, and sleeps until the next
reading: OPERATOR_LAG_INTERVAL_SECONDS, or OPERATOR_LAG_FAST_INTERVAL_SECONDS while an
autoscaled group's lag heads for more replicas (reading_interval.py).

A daemon and not a kopf timer: a timer's interval is fixed when the handler is registered,
and the point here is that each reading chooses the next one."""

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
from orderpipeline_operator.spec import InvalidSpec

Logger = logging.Logger | logging.LoggerAdapter[Any]


@kopf.daemon(GROUP, VERSION, PLURAL)
async def read_lag(
    *, body: kopf.Body, memo: Any, logger: Logger, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """Reads until the pipeline is deleted or the operator stops or pauses (kopf starts it
    again on resume). A reading in flight finishes first: `stopped` ends only the sleep,
    and kopf keeps a deleted pipeline's finalizer until then (startup.py)."""
    operator: Operator = memo.operator
    while not stopped:
        # `body` is kopf's live view: each reading sees the spec as it is now.
        wait = await _read_once(operator, copy.deepcopy(dict(body)), logger)
        await stopped.wait(wait)


async def _read_once(operator: Operator, raw: dict[str, Any], logger: Logger) -> float:
    """One reading; returns the seconds until the next. Never raises for Kafka (a reading
    says `unknown` instead) nor for the API server (the regular interval, then again):
    an exception would stop the daemon for kopf's 60 s error delay.

    The Kafka half runs in the operator's own small pool (OPERATOR_KAFKA_READERS): an
    unreachable broker holds a reader for the whole timeout, and many of them must neither
    take kopf's handler threads from the reconciles nor run dozens of librdkafka clients
    at once (each reading has three; 60 at once cost ~40 MB of RSS that stays)."""
    regular = operator.settings.lag_interval_seconds
    loop = asyncio.get_running_loop()
    try:
        reading = await loop.run_in_executor(operator.kafka_readers, read_kafka, operator, raw)
        observed = await in_thread(observe_lag, operator, raw, reading)
    except InvalidSpec:
        return regular  # the reconcile reports it (Degraded) and waits for a new spec
    except (ApiException, HTTPError) as exc:
        logger.warning("lag reading: Kubernetes API: %s", exc)
        return regular
    for change in observed.scalings:
        SCALINGS.labels(direction="up" if change.after > change.before else "down").inc()
        post_event(raw, "info", reason="Scaled", message=change.message)
    if observed.scalings:
        try:
            await in_thread(reconcile, operator, raw, "autoscale")
        except (ReconcileError, InvalidSpec, ApiException, HTTPError) as exc:
            logger.warning("applying the scaled replicas: %s", exc)  # the resync retries
    return observed.next_reading_in

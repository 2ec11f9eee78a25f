"""Operator start-up: clients, peering, persistence, metrics, probes."""

from __future__ import annotations

import logging
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
from prometheus_client import start_http_server

from orderpipeline_operator.helm import Helm
from orderpipeline_operator.kube import Kube, load_config
from orderpipeline_operator.manifests.labels import GROUP
from orderpipeline_operator.runtime import Operator
from orderpipeline_operator.settings import get_settings


@kopf.on.startup()
def configure(
    *,
    settings: kopf.OperatorSettings,
    memo: Any,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    **_: Any,
) -> None:
    conf = get_settings()
    load_config()
    # One active replica: the others see a peer with a higher priority and pause.
    settings.peering.name = conf.peering_name
    settings.peering.mandatory = not conf.standalone
    settings.peering.standalone = conf.standalone
    settings.peering.priority = random.randint(1, 32767)
    # kopf's bookkeeping under our own group, not kopf.zalando.org.
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # Only warnings become Events by themselves; Ready/Installed/... are posted explicitly.
    settings.posting.level = logging.WARNING
    # Handlers are sync (blocking client, helm): give the pool room for concurrent pipelines.
    # A thread waiting for helm must not delay other pipelines' Deployments.
    settings.execution.max_workers = conf.worker_threads
    settings.watching.server_timeout = 300
    # A deleted pipeline keeps its finalizer until its lag reader has stopped (a reading
    # waits up to OPERATOR_KAFKA_TIMEOUT_SECONDS); kopf looks again after this many
    # seconds (default 60: a deletion during a reading would wait a minute).
    settings.background.cancellation_polling = 1
    memo.operator = Operator(
        settings=conf,
        kube=Kube(conf.field_manager, pool_size=conf.worker_threads),
        helm=Helm(conf.helm_binary, conf.helm_timeout_seconds, conf.helm_concurrency),
        kafka_readers=ThreadPoolExecutor(conf.kafka_readers, thread_name_prefix="kafka-lag"),
    )
    if conf.metrics_port:
        start_http_server(conf.metrics_port)
    logger.info(
        "orderpipeline-operator configured: chart=%s helm=%s namespaces=%s",
        conf.webapp_chart, conf.helm_binary, conf.namespaces or "all",
    )  # fmt: skip


@kopf.on.probe(id="pipelines")
def pipelines_probe(*, memo: Any, **_: Any) -> int:
    """Liveness payload: how many pipelines are Ready (the endpoint answering is the point)."""
    operator: Operator = memo.operator
    return operator.statuses.ready_count

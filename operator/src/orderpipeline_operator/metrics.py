"""Prometheus metrics of the operator (served on OPERATOR_METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "orderpipeline_operator_reconciles_total",
    "Reconciles of OrderPipelines by trigger and result",
    ["trigger", "result"],
)
RECONCILE_ERRORS = Counter(
    "orderpipeline_operator_reconcile_errors_total",
    "Failed reconciles by the stage that failed",
    ["stage"],
)
RECONCILE_SECONDS = Histogram(
    "orderpipeline_operator_reconcile_seconds",
    "Duration of one reconcile",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
HELM_RUNS = Counter(
    "orderpipeline_operator_helm_runs_total", "helm invocations", ["action", "result"]
)
PIPELINES_READY = Gauge(
    "orderpipeline_operator_pipelines_ready", "OrderPipelines whose Ready condition is True"
)
CONSUMER_LAG = Gauge(
    "orderpipeline_operator_consumer_lag",
    "Messages a consumer group has still to read (its topics only); absent while unknown",
    ["namespace", "pipeline", "group"],
)
CONSUMER_REPLICAS_DESIRED = Gauge(
    "orderpipeline_operator_consumer_replicas_desired",
    "Replicas the consumer's Deployment should have (the scaler's when autoscaled)",
    ["namespace", "pipeline", "group"],
)
CONSUMER_REPLICAS_READY = Gauge(
    "orderpipeline_operator_consumer_replicas_ready",
    "Ready replicas of the consumer's Deployment",
    ["namespace", "pipeline", "group"],
)
SCALINGS = Counter(
    "orderpipeline_operator_scalings_total",
    "Replica changes made by the lag-based autoscaler",
    ["direction"],
)
LAG_READS = Counter(
    "orderpipeline_operator_lag_reads_total", "Readings of the consumer offsets", ["result"]
)
PER_CONSUMER = (CONSUMER_LAG, CONSUMER_REPLICAS_DESIRED, CONSUMER_REPLICAS_READY)

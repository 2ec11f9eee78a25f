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

"""One reading of a pipeline's consumer groups: offsets from Kafka with the pipeline's own
settings and Secrets, ready replicas from its Deployments; then the live status (written
only when it changed meaningfully), the metrics, the scaler's decisions, and when to read
again.

Kafka unreachable is a reading too: lag `unknown`, `Lagging=Unknown` saying why, nothing
scaled; everything else the operator does goes on.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orderpipeline_operator.consumer_groups import consumer_groups
from orderpipeline_operator.kafka_offsets import KafkaUnavailable, client_config, read_offsets
from orderpipeline_operator.lag import PartitionOffsets, track
from orderpipeline_operator.live_status import (
    LAGGING,
    ConsumerView,
    consumer_entry,
    consumers_changed,
    lagging_condition,
    total_lag,
)
from orderpipeline_operator.manifests.labels import MANAGED_BY
from orderpipeline_operator.metrics import (
    CONSUMER_LAG,
    CONSUMER_REPLICAS_DESIRED,
    CONSUMER_REPLICAS_READY,
    LAG_READS,
)
from orderpipeline_operator.reading_interval import next_interval
from orderpipeline_operator.runtime import Operator
from orderpipeline_operator.scaler import (
    PipelineMemory,
    Scaling,
    forget_decisions,
    replicas_for,
    scale,
)
from orderpipeline_operator.spec import PipelineSpec, parse_spec
from orderpipeline_operator.status import is_ready, keep_transition_times, timestamp

_COMPONENT = "app.kubernetes.io/component"


def kafka_config(op: Operator, namespace: str, spec: PipelineSpec) -> dict[str, Any]:
    """The workers' Kafka settings, with the values of the Secrets they reference."""
    kafka, secret, ca = spec.kafka, None, None
    ref = kafka.credentials_secret_ref
    if ref is not None and kafka.security_protocol.startswith("SASL"):
        found = op.kube.secret_values(namespace, ref.name)
        if found is None:
            raise KafkaUnavailable(f"Secret {ref.name!r} not found in namespace {namespace!r}")
        secret = found[1]
    ca_ref = kafka.ca_secret_ref
    if ca_ref is not None and kafka.security_protocol in ("SSL", "SASL_SSL"):
        found = op.kube.secret_values(namespace, ca_ref.name)
        if found is None or ca_ref.key not in found[1]:
            raise KafkaUnavailable(f"Secret {ca_ref.name!r} with key {ca_ref.key!r} not found")
        ca = found[1][ca_ref.key]
    return client_config(kafka, secret, ca, namespace)


def ready_replicas(op: Operator, namespace: str, pipeline: str) -> dict[str, int]:
    selector = f"app.kubernetes.io/instance={pipeline},app.kubernetes.io/managed-by={MANAGED_BY}"
    return {
        str(d["metadata"].get("labels", {}).get(_COMPONENT)): int(
            (d.get("status") or {}).get("readyReplicas", 0)
        )
        for d in op.kube.list_deployments(namespace, selector)
    }


@dataclass(frozen=True)
class Reading:
    """The groups' offsets at one moment, or why they could not be read."""

    offsets: Mapping[str, list[PartitionOffsets]]
    error: str | None
    at: float  # monotonic seconds


def read_kafka(op: Operator, body: Mapping[str, Any]) -> Reading:
    """The Kafka half of a reading: blocks up to OPERATOR_KAFKA_TIMEOUT_SECONDS per call
    (handlers/lag.py runs it in the small pool of Kafka readers)."""
    spec = parse_spec(body["spec"])
    try:
        config = kafka_config(op, body["metadata"]["namespace"], spec)
        offsets = read_offsets(config, consumer_groups(spec), op.settings.kafka_timeout_seconds)
    except KafkaUnavailable as exc:
        LAG_READS.labels(result="error").inc()
        return Reading({}, f"{spec.kafka.bootstrap_servers}: {exc}", time.monotonic())
    LAG_READS.labels(result="ok").inc()
    return Reading(offsets, None, time.monotonic())


@dataclass(frozen=True)
class Observed:
    """What a reading decided: the replica changes (the caller applies them and says so in
    Events), and how many seconds until the next reading (reading_interval.py)."""

    scalings: list[Scaling]
    next_reading_in: float


def observe_lag(op: Operator, body: Mapping[str, Any], reading: Reading) -> Observed:
    """Remember a reading and report it."""
    spec = parse_spec(body["spec"])
    meta = body["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    groups = consumer_groups(spec)
    ready = ready_replicas(op, namespace, name)
    offsets, error, now = reading.offsets, reading.error, reading.at
    scalings: list[Scaling] = []
    with op.lock(uid):
        memory = op.memory(body)
        views: list[ConsumerView] = []
        for group in groups:
            labels = (namespace, name, group.name)
            lag = None
            if error is None:
                mem = memory.consumer(group.name)
                lag, mem.history = track(
                    mem.history,
                    offsets[group.name],
                    now=now,
                    reset=group.reset,
                    consumer_alive=ready.get(group.name, 0) > 0,
                    stuck_after=op.settings.stuck_partition_seconds,
                )
                CONSUMER_LAG.labels(*labels).set(lag.lag)
                if group.autoscaling.enabled and not spec.suspend:
                    change = scale(memory, group, lag, now)
                    if change is not None:
                        scalings.append(change)
                forget_decisions(memory, group)
            else:
                # After an outage the clocks restart: consumers could not commit either, so
                # an offset that stood still then says nothing about a stuck partition.
                memory.consumer(group.name).history = None
                with contextlib.suppress(KeyError):  # unknown: no sample, not a stale one
                    CONSUMER_LAG.remove(*labels)
            replicas = replicas_for(memory, group)
            CONSUMER_REPLICAS_DESIRED.labels(*labels).set(replicas)
            CONSUMER_REPLICAS_READY.labels(*labels).set(ready.get(group.name, 0))
            views.append(ConsumerView(group, lag, ready.get(group.name, 0), replicas))
        _write(op, body, memory, views, error)
    interval = next_interval(
        ((v.group.autoscaling, v.replicas, v.lag) for v in views),
        regular=op.settings.lag_interval_seconds,
        fast=op.settings.lag_fast_interval_seconds,
        suspended=spec.suspend,
    )
    return Observed(scalings, interval)


def _same(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> bool:
    keys = ("status", "reason", "message")
    return before is not None and all(before.get(k) == after.get(k) for k in keys)


def _write(
    op: Operator,
    body: Mapping[str, Any],
    memory: PipelineMemory,
    views: list[ConsumerView],
    error: str | None,
) -> None:
    """Patch status.consumers, summary.lag and the Lagging condition when they changed
    meaningfully (live_status.consumers_changed); the rest of the status is left alone."""
    previous = op.statuses.last(body)
    entries = {v.group.name: consumer_entry(v) for v in views}
    generation = int(previous.get("observedGeneration", 0))
    lagging = lagging_condition(views, error, op.settings.lagging_after_seconds, generation)
    if not consumers_changed(memory.entries, entries) and _same(memory.lagging, lagging):
        return
    old_conditions = previous.get("conditions") or []
    conditions = keep_transition_times(
        [*(c for c in old_conditions if c.get("type") != LAGGING), lagging],
        old_conditions,
        timestamp(),
    )
    # A merge patch: keys an entry no longer has (partitions while Kafka is away) are nulled.
    patch_entries = {
        group: {**dict.fromkeys(set(memory.entries.get(group, {})) - set(entry)), **entry}
        for group, entry in entries.items()
    }
    summary = {**(previous.get("summary") or {}), "lag": total_lag(entries)}
    meta = body["metadata"]
    op.kube.patch_status(
        meta["namespace"],
        meta["name"],
        {"consumers": patch_entries, "summary": summary, "conditions": conditions},
    )
    memory.entries = entries
    memory.lagging = next(c for c in conditions if c["type"] == LAGGING)
    written = {**previous, "consumers": entries, "summary": summary, "conditions": conditions}
    op.statuses.remember(body, written, ready=is_ready(written))

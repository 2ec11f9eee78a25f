"""The live part of the status: `status.consumers.<name>`, `status.summary.lag` and the
`Lagging` condition, and whether a new reading changed them enough to be written.

Pure functions. Lag under load moves at every reading; writing each one would make a
status write (and a watch event for every client) every interval per pipeline, so small
moves are not written: the status says where the lag is, /metrics says it exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orderpipeline_operator.autoscaling import upper_bound
from orderpipeline_operator.consumer_groups import ConsumerGroup
from orderpipeline_operator.lag import GroupLag

UNKNOWN = "unknown"
LAGGING = "Lagging"
# A lag is rewritten when it moves by more than this share of itself (and this many
# messages), or when it becomes zero or stops being zero.
_LAG_SHARE, _LAG_MIN = 0.1, 10
_RATE_SHARE, _RATE_MIN = 0.25, 1.0


@dataclass(frozen=True)
class ConsumerView:
    """What is known of one consumer after a reading."""

    group: ConsumerGroup
    lag: GroupLag | None  # None: Kafka could not be read
    ready: int
    replicas: int  # the count the Deployment should have (the scaler's when autoscaled)


def consumer_entry(view: ConsumerView) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "group": view.group.group_id,
        "topics": list(view.group.topics),
        "lag": UNKNOWN if view.lag is None else view.lag.lag,
        "readyReplicas": view.ready,
        "replicas": view.replicas,
        "autoscaling": view.group.autoscaling.enabled,
    }
    if view.lag is not None:
        entry["partitions"] = view.lag.partitions
        entry["stuckPartitions"] = list(view.lag.stuck)
        if view.lag.rate is not None:
            entry["ratePerSecond"] = round(view.lag.rate, 1)
    return entry


def total_lag(entries: Mapping[str, Mapping[str, Any]]) -> str:
    """The LAG printer column: the sum over the groups' entries, or unknown if any is."""
    lags = [entry.get("lag") for entry in entries.values()]
    if not lags:
        return ""
    if not all(isinstance(lag, int) for lag in lags):
        return UNKNOWN
    return str(sum(int(lag) for lag in lags if isinstance(lag, int)))


def _cap_notes(views: list[ConsumerView]) -> list[str]:
    """Say so when maxReplicas is above what the partitions let consume."""
    notes = []
    for v in views:
        policy = v.group.autoscaling
        if v.lag is None or not policy.enabled or not v.lag.max_topic_partitions:
            continue
        if policy.max_replicas > upper_bound(policy, v.lag.max_topic_partitions):
            notes.append(
                f"{v.group.name}: maxReplicas {policy.max_replicas} is above the "
                f"{v.lag.max_topic_partitions} partitions of its topics, so at most "
                f"{v.lag.max_topic_partitions} replicas run (more would sit idle)"
            )
    return notes


def lagging_condition(
    views: list[ConsumerView],
    kafka_error: str | None,
    lagging_after: float,
    generation: int,
) -> dict[str, Any]:
    """True while a group's lag has grown for `lagging_after` seconds or a partition is
    stuck; Unknown while Kafka cannot be read. Messages hold no numbers that move at every
    reading (a changed message is a status write)."""
    notes = _cap_notes(views)
    if kafka_error is not None:
        status, reason = "Unknown", "KafkaUnreachable"
        message = (
            f"Cannot read the consumer groups' offsets from Kafka: {kafka_error}. "
            "Lag is unknown and no consumer is scaled until Kafka answers"
        )
    else:
        growing = [v.group.name for v in views if v.lag and v.lag.growing_for >= lagging_after]
        stuck = [
            f"{v.group.name} ({', '.join(v.lag.stuck)})" for v in views if v.lag and v.lag.stuck
        ]
        parts = []
        if growing:
            parts.append(f"lag of {', '.join(growing)} growing for over {lagging_after:g}s")
        if stuck:
            parts.append(f"stuck partitions, not moving while consumers run: {'; '.join(stuck)}")
        status = "True" if parts else "False"
        reason = ("LagGrowing" if growing else "PartitionStuck") if parts else "KeepingUp"
        text = "; ".join(parts)
        message = text[:1].upper() + text[1:]
    return {
        "type": LAGGING,
        "status": status,
        "reason": reason,
        "message": "; ".join([m for m in (message, *notes) if m]),
        "observedGeneration": generation,
    }


def _moved(before: Any, after: Any, share: float, least: float) -> bool:
    if not isinstance(before, int | float) or not isinstance(after, int | float):
        return bool(before != after)
    if (before == 0) != (after == 0):
        return True
    return abs(after - before) > max(least, share * max(abs(before), abs(after)))


def consumers_changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
    """True when `after` differs from what was written in more than small lag/rate moves."""
    if set(before) != set(after):
        return True
    for name, new in after.items():
        old = before[name]
        steady = ("lag", "ratePerSecond")
        if {k: v for k, v in old.items() if k not in steady} != {
            k: v for k, v in new.items() if k not in steady
        }:
            return True
        if _moved(old.get("lag"), new.get("lag"), _LAG_SHARE, _LAG_MIN):
            return True
        if _moved(old.get("ratePerSecond"), new.get("ratePerSecond"), _RATE_SHARE, _RATE_MIN):
            return True
    return False

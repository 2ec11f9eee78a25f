"""What the lag reader remembers between readings, per pipeline, and the replica count each
consumer's Deployment gets from it.

The memory is the operator's own (one active replica, see peering). After a restart the
replica counts come back from the status the operator wrote (`status.consumers.<name>
.replicas`), so a restart neither scales anything down nor waits a window to catch up.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orderpipeline_operator.autoscaling import Recommendation, decide, recommend, upper_bound
from orderpipeline_operator.consumer_groups import ConsumerGroup
from orderpipeline_operator.lag import GroupHistory, GroupLag


@dataclass
class ConsumerMemory:
    history: GroupHistory | None = None
    recommendations: tuple[Recommendation, ...] = ()
    replicas: int | None = None  # chosen by the scaler; None until it has decided
    partitions: int = 0  # the most partitions of one of its topics, at the last reading


@dataclass
class PipelineMemory:
    consumers: dict[str, ConsumerMemory] = field(default_factory=dict)
    # The live status as last written: status.consumers and the Lagging condition. A
    # reconcile writes them unchanged, so only a reading decides when they change.
    entries: dict[str, Any] = field(default_factory=dict)
    lagging: dict[str, Any] | None = None

    def consumer(self, name: str) -> ConsumerMemory:
        return self.consumers.setdefault(name, ConsumerMemory())


class LiveStore:
    """PipelineMemory per pipeline uid. Callers hold the pipeline's lock while they change it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._pipelines: dict[str, PipelineMemory] = {}

    def memory(self, uid: str, status: Mapping[str, Any]) -> PipelineMemory:
        """The pipeline's memory; a new one starts from the status written before."""
        with self._guard:
            found = self._pipelines.get(uid)
            if found is None:
                found = self._pipelines[uid] = _from_status(status)
            return found

    def forget(self, uid: str) -> None:
        with self._guard:
            self._pipelines.pop(uid, None)


def _from_status(status: Mapping[str, Any]) -> PipelineMemory:
    entries = {
        name: dict(entry)
        for name, entry in (status.get("consumers") or {}).items()
        if isinstance(entry, Mapping)
    }
    memory = PipelineMemory(entries=entries)
    for name, entry in entries.items():
        if entry.get("autoscaling") and isinstance(entry.get("replicas"), int):
            memory.consumer(name).replicas = int(entry["replicas"])
    lagging = [c for c in status.get("conditions") or [] if c.get("type") == "Lagging"]
    memory.lagging = dict(lagging[0]) if lagging else None
    return memory


def replicas_for(memory: PipelineMemory, group: ConsumerGroup) -> int:
    """The replica count the group's Deployment gets now.

    Autoscaling off: spec.<name>.replicas. On: the scaler's last decision, kept within
    the current bounds (a changed minReplicas/maxReplicas applies at once); before the
    first decision, minReplicas but at least 1: a lag not read yet (or a Kafka the operator
    cannot reach) is not a lag of zero, and must not leave a group without a consumer.
    """
    policy = group.autoscaling
    if not policy.enabled:
        return group.replicas
    known = memory.consumers.get(group.name)
    undecided = max(policy.min_replicas, 1)
    chosen = known.replicas if known and known.replicas is not None else undecided
    upper = upper_bound(policy, known.partitions if known else 0)
    return max(policy.min_replicas, min(chosen, upper))


def forget_decisions(memory: PipelineMemory, group: ConsumerGroup) -> None:
    """Autoscaling is off for the group: its decisions go, so that turning it on again
    starts as a new pipeline does (minReplicas, at least 1, until a reading decides), not
    from a count decided for a load long gone. The readings' history stays: it is the
    group's lag, whoever sets the replicas."""
    known = memory.consumers.get(group.name)
    if known is not None and not group.autoscaling.enabled:
        known.replicas = None
        known.recommendations = ()


@dataclass(frozen=True)
class Scaling:
    name: str
    before: int
    after: int
    lag: int
    lag_per_replica: int

    @property
    def message(self) -> str:
        direction = "up" if self.after > self.before else "down"
        return (
            f"Scaled {self.name} {direction} from {self.before} to {self.after} replicas: "
            f"lag {self.lag} (lagPerReplica {self.lag_per_replica})"
        )


def scale(
    memory: PipelineMemory, group: ConsumerGroup, lag: GroupLag, now: float
) -> Scaling | None:
    """Decide the group's replicas from a reading; remember it; say what changed."""
    policy = group.autoscaling
    current = replicas_for(memory, group)
    mem = memory.consumer(group.name)
    mem.partitions = lag.max_topic_partitions
    recommended = recommend(policy, lag.scaling_lag, lag.max_topic_partitions, any_lag=lag.lag > 0)
    after, mem.recommendations = decide(
        policy, current, recommended, mem.recommendations, now, lag.max_topic_partitions
    )
    mem.replicas = after
    if after == current:
        return None
    return Scaling(group.name, current, after, lag.lag, policy.lag_per_replica)

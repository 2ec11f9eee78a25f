"""How many replicas a consumer should have for its lag. Pure functions.

    recommended = ceil(lag / lagPerReplica), clamped to [minReplicas, maxReplicas] and to the
    partitions (a consumer beyond that count gets no partition and sits idle), and at least 1
    while there is any lag (a group scaled to zero comes back as soon as lag appears).

Scaling up happens at once. Scaling down follows the highest recommendation of the last
`scaleDownStabilizationSeconds` (as the HorizontalPodAutoscaler does), so a lag that
dips between two bursts does not drop replicas that are needed again a moment later.
"""

from __future__ import annotations

from dataclasses import dataclass

from orderpipeline_operator.spec import Autoscaling


@dataclass(frozen=True)
class Recommendation:
    at: float  # monotonic seconds
    replicas: int


def upper_bound(policy: Autoscaling, partitions: int) -> int:
    """maxReplicas, or the partition count when it is lower (0 partitions: unknown)."""
    return min(policy.max_replicas, partitions) if partitions > 0 else policy.max_replicas


def recommend(policy: Autoscaling, lag: int, partitions: int, *, any_lag: bool) -> int:
    """Replicas for `lag` right now. `any_lag`: the group has lag at all (also in partitions
    left out of `lag`, like stuck ones): then at least one consumer must run."""
    wanted = -(-max(lag, 0) // policy.lag_per_replica)  # ceil without floats
    replicas = min(max(wanted, policy.min_replicas), upper_bound(policy, partitions))
    return max(replicas, 1) if any_lag else replicas


def decide(
    policy: Autoscaling,
    current: int,
    recommended: int,
    history: tuple[Recommendation, ...],
    now: float,
    partitions: int,
) -> tuple[int, tuple[Recommendation, ...]]:
    """The replica count to set, and the recommendations to keep for the next decision.

    An empty history (a new pipeline, an operator restart) counts `current` as recommended
    now, so nothing scales down before one full window of evidence. A lowered maxReplicas
    applies at once: the window is for the lag's dips, not for the user's bounds.
    """
    window = policy.scale_down_stabilization_seconds
    seen = history or (Recommendation(now, current),)
    kept = (*(r for r in seen if now - r.at < window), Recommendation(now, recommended))
    if recommended >= current:
        return recommended, kept
    held = max(recommended, min(current, max(r.replicas for r in kept)))
    return min(held, upper_bound(policy, partitions)), kept

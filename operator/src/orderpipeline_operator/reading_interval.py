"""How soon a pipeline's consumer lag is read again. Pure.

A reading decides the replicas for the lag it sees; between two readings the scaler is
blind. At the regular interval (OPERATOR_LAG_INTERVAL_SECONDS) a lag that climbs
towards the next replica waits a whole interval for it. So the next reading comes after
the fast interval when, for some autoscaled group that can still grow,

    the lag it has now + its growth per second x the regular interval
    would recommend more replicas than it has now

that is: at the rate it grew since the last reading, the lag would call for a scale-up
before the regular reading. Everything else waits the regular interval: a lag that is
steady, shrinking or small (the projection stays under the next replica), a group at
its upper bound (maxReplicas or the partitions: reading sooner cannot add a replica), a
suspended pipeline, and a Kafka that cannot be read (no lag: nothing projected), so an
unreachable broker is never asked faster than before.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from orderpipeline_operator.autoscaling import recommend, upper_bound
from orderpipeline_operator.lag import GroupLag
from orderpipeline_operator.spec import Autoscaling


def heading_for_more(policy: Autoscaling, replicas: int, lag: GroupLag, horizon: float) -> bool:
    """`replicas` (the count just decided) will not do for this lag within `horizon`
    seconds if it keeps growing as it did since the previous reading."""
    if not policy.enabled or replicas >= upper_bound(policy, lag.max_topic_partitions):
        return False
    growth = max(lag.growth or 0.0, 0.0)  # a first reading has no growth yet
    projected = lag.scaling_lag + math.ceil(growth * horizon)
    wanted = recommend(policy, projected, lag.max_topic_partitions, any_lag=lag.lag > 0)
    return wanted > replicas


def next_interval(
    groups: Iterable[tuple[Autoscaling, int, GroupLag | None]],
    *,
    regular: float,
    fast: float,
    suspended: bool,
) -> float:
    """Seconds until the next reading, from each group's (policy, replicas decided, lag;
    None when Kafka could not be read). Never shorter than `fast` nor longer than
    `regular`."""
    if suspended:
        return regular  # nothing is scaled: reading sooner would only cost
    soon = any(
        lag is not None and heading_for_more(policy, replicas, lag, regular)
        for policy, replicas, lag in groups
    )
    return min(fast, regular) if soon else regular

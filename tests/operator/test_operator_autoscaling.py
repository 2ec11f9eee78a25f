"""The desired-replicas formula and the scale-down window (autoscaling.py), and the
scaler's memory (scaler.py): pure, no cluster."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st
from orderpipeline_operator.autoscaling import Recommendation, decide, recommend
from orderpipeline_operator.consumer_groups import ConsumerGroup
from orderpipeline_operator.lag import GroupLag
from orderpipeline_operator.scaler import PipelineMemory, replicas_for, scale
from orderpipeline_operator.spec import Autoscaling


def policy(**kw: int) -> Autoscaling:
    return Autoscaling(enabled=True, **kw)


policies = st.builds(
    lambda lo, span, per, window: Autoscaling(
        enabled=True,
        min_replicas=lo,
        max_replicas=max(1, lo + span),
        lag_per_replica=per,
        scale_down_stabilization_seconds=window,
    ),
    st.integers(0, 20),
    st.integers(0, 30),
    st.integers(1, 10_000),
    st.integers(0, 600),
)
lags = st.integers(0, 10_000_000)
partitions = st.integers(0, 64)


def test_recommendation_is_lag_over_lag_per_replica_rounded_up() -> None:
    p = policy(min_replicas=1, max_replicas=10, lag_per_replica=1000)
    assert recommend(p, 0, 12, any_lag=False) == 1
    assert recommend(p, 1, 12, any_lag=True) == 1
    assert recommend(p, 1000, 12, any_lag=True) == 1
    assert recommend(p, 1001, 12, any_lag=True) == 2
    assert recommend(p, 4500, 12, any_lag=True) == 5


def test_recommendation_is_capped_by_max_replicas_and_partitions() -> None:
    p = policy(min_replicas=1, max_replicas=10, lag_per_replica=100)
    assert recommend(p, 1_000_000, 64, any_lag=True) == 10
    assert recommend(p, 1_000_000, 3, any_lag=True) == 3


def test_scale_to_zero_without_lag_and_back_as_soon_as_lag_appears() -> None:
    p = policy(min_replicas=0, max_replicas=5, lag_per_replica=1000)
    assert recommend(p, 0, 3, any_lag=False) == 0
    assert recommend(p, 1, 3, any_lag=True) == 1


def test_stuck_lag_alone_keeps_one_replica_and_adds_none() -> None:
    p = policy(min_replicas=0, max_replicas=5, lag_per_replica=10)
    assert recommend(p, 0, 3, any_lag=True) == 1


@given(policies, lags, partitions)
def test_recommendation_stays_within_the_bounds(p: Autoscaling, lag: int, parts: int) -> None:
    n = recommend(p, lag, parts, any_lag=lag > 0)
    upper = min(p.max_replicas, parts) if parts else p.max_replicas
    assert n <= max(upper, 1 if lag else 0)
    assert n >= min(p.min_replicas, upper)
    if lag > 0:
        assert n >= 1


@given(policies, lags, lags, partitions)
def test_more_lag_never_recommends_fewer_replicas(
    p: Autoscaling, a: int, b: int, parts: int
) -> None:
    low, high = sorted((a, b))
    assert recommend(p, low, parts, any_lag=low > 0) <= recommend(p, high, parts, any_lag=high > 0)


@given(policies, st.integers(0, 50), st.integers(0, 50), st.integers(1, 64))
def test_scale_up_is_immediate(p: Autoscaling, current: int, recommended: int, parts: int) -> None:
    now = 1000.0
    after, _ = decide(p, current, recommended, (), now, 64)
    if recommended >= current:
        assert after == recommended


@given(policies, st.integers(1, 50), st.integers(0, 49))
def test_scale_down_waits_for_the_stabilization_window(
    p: Autoscaling, current: int, lower: int
) -> None:
    current = min(current, p.max_replicas)  # as the scaler keeps it
    recommended = max(p.min_replicas, min(lower, current - 1))
    assume(recommended < current)
    start = 1000.0
    history: tuple[Recommendation, ...] = ()
    # Within the window: each reading recommends fewer, the count holds.
    after, history = decide(p, current, recommended, history, start, 64)
    if p.scale_down_stabilization_seconds > 0:
        assert after == current
    # A full window later every higher recommendation has expired.
    later = start + p.scale_down_stabilization_seconds
    after, _ = decide(p, after, recommended, history, later, 64)
    assert after == recommended


def test_scale_down_follows_the_highest_recommendation_in_the_window() -> None:
    p = policy(min_replicas=1, max_replicas=10, scale_down_stabilization_seconds=60)
    history = (Recommendation(0, 8), Recommendation(30, 5))
    assert decide(p, 8, 2, history, 50, 12)[0] == 8
    assert decide(p, 8, 2, history, 65, 12)[0] == 5
    assert decide(p, 8, 2, history, 95, 12)[0] == 2


def test_lowered_max_replicas_applies_at_once() -> None:
    p = policy(min_replicas=1, max_replicas=3, scale_down_stabilization_seconds=300)
    assert decide(p, 8, 3, (Recommendation(0, 8),), 10, 12)[0] == 3


def _group(**kw: int) -> ConsumerGroup:
    return ConsumerGroup("fraud", "fraud-group", ("orders",), policy(**kw), replicas=7)


def _lag(lag: int, partitions: int = 3) -> GroupLag:
    return GroupLag(lag, lag, partitions, partitions, None, (), 0.0)


def test_replicas_come_from_spec_when_autoscaling_is_off() -> None:
    group = ConsumerGroup("fraud", "fraud-group", ("orders",), Autoscaling(), replicas=7)
    assert replicas_for(PipelineMemory(), group) == 7


def test_replicas_start_at_min_and_follow_the_scaler() -> None:
    memory, group = PipelineMemory(), _group(min_replicas=2, lag_per_replica=100)
    assert replicas_for(memory, group) == 2
    change = scale(memory, group, _lag(450), now=0)
    assert change is not None
    assert (change.before, change.after, change.lag) == (2, 3, 450)
    assert "lag 450" in change.message
    assert replicas_for(memory, group) == 3
    assert scale(memory, group, _lag(450), now=15) is None


def test_replicas_after_a_restart_come_from_the_written_status() -> None:
    from orderpipeline_operator.scaler import LiveStore

    status = {"consumers": {"fraud": {"autoscaling": True, "replicas": 4, "lag": 10}}}
    memory = LiveStore().memory("uid", status)
    assert replicas_for(memory, _group(min_replicas=1, max_replicas=10)) == 4


def test_scale_to_zero_allowed_only_after_a_reading_said_there_is_no_lag() -> None:
    memory, group = PipelineMemory(), _group(min_replicas=0, scale_down_stabilization_seconds=0)
    assert replicas_for(memory, group) == 1  # nothing read yet: lag unknown, not zero
    change = scale(memory, group, _lag(0), now=0)
    assert change is not None
    assert (change.before, change.after) == (1, 0)
    assert replicas_for(memory, group) == 0

"""When the lag is read again (reading_interval.py), how fast a lag grows (lag.py), and
the scaler forgetting its decisions while autoscaling is off (scaler.py). Pure, no
cluster, no Kafka."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from orderpipeline_operator.consumer_groups import ConsumerGroup
from orderpipeline_operator.lag import GroupHistory, GroupLag, PartitionOffsets, track
from orderpipeline_operator.reading_interval import heading_for_more, next_interval
from orderpipeline_operator.scaler import PipelineMemory, forget_decisions, replicas_for, scale
from orderpipeline_operator.spec import Autoscaling

REGULAR, FAST = 15.0, 3.0
ON = Autoscaling(enabled=True, min_replicas=1, max_replicas=10, lag_per_replica=1000)


def lag(scaling: int, growth: float | None, partitions: int = 3) -> GroupLag:
    return GroupLag(scaling, scaling, partitions, partitions, None, (), 0.0, growth)


def interval(*groups: tuple[Autoscaling, int, GroupLag | None], suspended: bool = False) -> float:
    return next_interval(groups, regular=REGULAR, fast=FAST, suspended=suspended)


def test_a_lag_growing_towards_the_next_replica_is_read_sooner() -> None:
    # 1 replica, lag 600 growing by 40/s: 600 + 40 x 15 = 1200 calls for a second replica.
    assert interval((ON, 1, lag(600, 40.0))) == FAST


def test_a_lag_growing_too_slowly_to_need_a_replica_waits_the_regular_interval() -> None:
    # 600 + 20 x 15 = 900: one replica still does.
    assert interval((ON, 1, lag(600, 20.0))) == REGULAR


def test_a_steady_or_shrinking_lag_waits_the_regular_interval() -> None:
    assert interval((ON, 1, lag(900, 0.0))) == REGULAR
    assert interval((ON, 2, lag(1900, -500.0))) == REGULAR


def test_a_first_reading_has_no_growth_to_go_by() -> None:
    assert interval((ON, 1, lag(900, None))) == REGULAR


def test_a_group_at_its_upper_bound_is_not_read_sooner() -> None:
    # Scaled to the 3 partitions: a sooner reading could not add a replica.
    assert interval((ON, 3, lag(120_000, 8_000.0))) == REGULAR
    capped = Autoscaling(enabled=True, max_replicas=2)
    assert interval((capped, 2, lag(1500, 1000.0, partitions=12))) == REGULAR


def test_after_a_scale_up_below_the_bound_a_still_growing_lag_is_read_sooner() -> None:
    # A reading scaled to 2 for lag 1500, which grew 100/s: 3000 by the regular reading.
    assert interval((ON, 2, lag(1500, 100.0))) == FAST


def test_only_autoscaled_groups_count() -> None:
    off = Autoscaling(enabled=False)
    assert interval((off, 1, lag(600, 400.0))) == REGULAR
    assert interval((off, 1, lag(600, 400.0)), (ON, 1, lag(600, 40.0))) == FAST


def test_kafka_unreachable_never_reads_sooner() -> None:
    # No lag was read: nothing to project, whatever the last reading said.
    assert interval((ON, 1, None), (ON, 1, None)) == REGULAR


def test_a_suspended_pipeline_is_never_read_sooner() -> None:
    assert interval((ON, 1, lag(600, 400.0)), suspended=True) == REGULAR


def test_the_fast_interval_is_never_longer_than_the_regular_one() -> None:
    assert next_interval([(ON, 1, lag(600, 400.0))], regular=2.0, fast=3.0, suspended=False) == 2


def test_scale_to_zero_comes_back_sooner_when_lag_appears_and_grows() -> None:
    zero = Autoscaling(enabled=True, min_replicas=0, max_replicas=5, lag_per_replica=1000)
    # The reading already scaled 0 -> 1 for this lag; growing 200/s it needs a second.
    assert heading_for_more(zero, 1, lag(10, 200.0), REGULAR)
    assert not heading_for_more(zero, 1, lag(10, 1.0), REGULAR)


policies = st.builds(
    lambda lo, span, per: Autoscaling(
        enabled=True, min_replicas=lo, max_replicas=max(1, lo + span), lag_per_replica=per
    ),
    st.integers(0, 10),
    st.integers(0, 20),
    st.integers(1, 10_000),
)
maybe_lags = st.one_of(
    st.none(),
    st.builds(
        lag,
        st.integers(0, 10_000_000),
        st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False)),
        st.integers(0, 64),
    ),
)


@given(
    st.lists(st.tuples(policies, st.integers(0, 50), maybe_lags), max_size=3),
    st.floats(0.1, 600),
    st.floats(1, 600),
    st.booleans(),
)
def test_the_interval_is_always_the_regular_or_the_fast_one_and_never_under_it(
    groups: list[tuple[Autoscaling, int, GroupLag | None]],
    regular: float,
    fast: float,
    suspended: bool,
) -> None:
    got = next_interval(groups, regular=regular, fast=fast, suspended=suspended)
    assert got in (regular, min(fast, regular))
    assert got >= min(fast, regular)  # no lag reading makes a busy loop


def _read(
    previous: GroupHistory | None, committed: int, high: int, now: float
) -> tuple[GroupLag, GroupHistory]:
    offsets = [PartitionOffsets("orders", 0, 0, high, committed)]
    return track(previous, offsets, now=now, reset="earliest", consumer_alive=True, stuck_after=60)


def test_growth_is_the_scaling_lags_change_per_second_between_readings() -> None:
    first, history = _read(None, 0, 100, 0.0)
    assert first.growth is None
    second, history = _read(history, 0, 400, 10.0)
    assert second.growth == 30.0
    third, _ = _read(history, 300, 400, 15.0)
    assert third.growth == -60.0


def _group(enabled: bool) -> ConsumerGroup:
    policy = Autoscaling(enabled=enabled, min_replicas=1, max_replicas=3, lag_per_replica=1000)
    return ConsumerGroup("payment", "payments-group", ("orders",), policy, replicas=1)


def test_turning_autoscaling_on_again_starts_from_min_replicas_not_an_old_decision() -> None:
    memory = PipelineMemory()
    scale(memory, _group(True), lag(120_000, None), now=0)
    assert replicas_for(memory, _group(True)) == 3
    forget_decisions(memory, _group(True))  # on: the decision stays
    assert replicas_for(memory, _group(True)) == 3
    forget_decisions(memory, _group(False))  # off: the spec's replicas, and the decision goes
    assert replicas_for(memory, _group(False)) == 1
    assert replicas_for(memory, _group(True)) == 1
    assert memory.consumer("payment").recommendations == ()

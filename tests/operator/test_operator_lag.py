"""The lag rules (operator/src/orderpipeline_operator/lag.py), each on its own: pure
functions over offsets, no Kafka (test_operator_kafka_lag.py reads the real broker)."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st
from orderpipeline_operator.consumer_groups import consumer_groups
from orderpipeline_operator.lag import (
    GroupHistory,
    GroupLag,
    PartitionOffsets,
    partition_lag,
    track,
)
from orderpipeline_operator.spec import parse_spec


def offsets(committed: int | None, low: int = 0, high: int = 100, p: int = 0) -> PartitionOffsets:
    return PartitionOffsets("orders", p, low, high, committed)


def test_lag_is_log_end_minus_committed() -> None:
    assert partition_lag(offsets(60), "earliest") == 40
    assert partition_lag(offsets(100), "earliest") == 0


def test_uncommitted_partition_counts_what_earliest_would_read() -> None:
    assert partition_lag(offsets(None), "earliest") == 100


def test_uncommitted_partition_never_counts_messages_retention_deleted() -> None:
    assert partition_lag(offsets(None, low=70, high=100), "earliest") == 30


def test_uncommitted_partition_counts_nothing_under_latest() -> None:
    assert partition_lag(offsets(None, low=70, high=100), "latest") == 0


def test_committed_below_log_start_counts_from_log_start() -> None:
    assert partition_lag(offsets(10, low=70, high=100), "earliest") == 30


def test_negative_committed_offset_is_no_commit_not_lag() -> None:
    # librdkafka's logical offsets (-1 end, -2 beginning, -1001 invalid) are not positions.
    assert partition_lag(offsets(-1, low=70, high=100), "latest") == 0
    assert partition_lag(offsets(-2, low=70, high=100), "earliest") == 30


def test_committed_past_log_end_is_invalid_and_never_lag() -> None:
    assert partition_lag(offsets(500, high=100), "earliest") == 0


def test_invalid_watermarks_never_count() -> None:
    assert partition_lag(offsets(None, low=-1, high=-1), "earliest") == 0
    assert partition_lag(offsets(5, low=50, high=10), "earliest") == 0


def test_what_a_read_committed_reader_skips_before_its_next_record_is_not_lag() -> None:
    # Committed 99, the commit marker at 99, nothing after it: the reader is at the end.
    assert partition_lag(replace(offsets(99), next_record=100), "earliest") == 0
    # Markers and aborted records at 60..79, the next record at 80.
    assert partition_lag(replace(offsets(60), next_record=80), "earliest") == 20
    assert partition_lag(replace(offsets(None), next_record=80), "earliest") == 20
    # Records written after the log end was read do not make the lag negative.
    assert partition_lag(replace(offsets(99), next_record=130), "earliest") == 0
    # Not looked at: the range counts as it is.
    assert partition_lag(offsets(99), "earliest") == 1


def test_only_the_groups_own_topics_are_read() -> None:
    spec = parse_spec(
        {
            "kafka": {"bootstrapServers": "k:9092", "topics": {"orders": "o", "payments": "p"}},
            "couchbase": {
                "connectionString": "couchbase://c",
                "credentialsSecretRef": {"name": "s"},
            },
        }
    )
    topics = {g.name: g.topics for g in consumer_groups(spec)}
    assert topics == {"fraud": ("o",), "payment": ("o",), "analytics": ("o", "p")}


def _track(
    previous: GroupHistory | None, parts: list[PartitionOffsets], now: float, alive: bool = True
) -> tuple[GroupLag, GroupHistory]:
    return track(previous, parts, now=now, reset="earliest", consumer_alive=alive, stuck_after=60)


def test_rate_is_committed_messages_per_second_between_readings() -> None:
    first, history = _track(None, [offsets(0, p=0), offsets(10, p=1)], now=100)
    second, _ = _track(history, [offsets(30, p=0), offsets(20, p=1)], now=110)
    assert first.rate is None
    assert second.rate == 4.0


def test_partition_stuck_while_consumer_alive_is_reported_and_not_scaled_on() -> None:
    parts = [offsets(10, p=0), offsets(50, p=1)]
    _, history = _track(None, parts, now=0)
    moving = [offsets(10, p=0), offsets(60, p=1, high=120)]
    lag, history = _track(history, moving, now=30)
    assert lag.stuck == ()
    lag, _ = _track(history, [offsets(10, p=0), offsets(70, p=1, high=130)], now=61)
    assert lag.stuck == ("orders/0",)
    assert lag.lag == 90 + 60
    assert lag.scaling_lag == 60


def test_partition_without_a_running_consumer_is_not_stuck() -> None:
    _, history = _track(None, [offsets(10)], now=0, alive=False)
    lag, _ = _track(history, [offsets(10)], now=1000, alive=False)
    assert lag.stuck == ()
    assert lag.scaling_lag == 90


def test_lag_growing_is_timed_from_the_first_rise_and_reset_by_a_fall() -> None:
    _, history = _track(None, [offsets(0, high=10)], now=0)
    lag, history = _track(history, [offsets(0, high=20)], now=15)
    assert lag.growing_for == 15
    lag, history = _track(history, [offsets(0, high=30)], now=30)
    assert lag.growing_for == 30  # rising at every reading since the first rise
    lag, _ = _track(history, [offsets(25, high=30)], now=45)
    assert lag.growing_for == 0


def test_max_topic_partitions_is_the_widest_topic() -> None:
    parts = [offsets(0, p=n) for n in range(3)] + [
        PartitionOffsets("payments", n, 0, 0, None) for n in range(6)
    ]
    lag, _ = _track(None, parts, now=0)
    assert (lag.partitions, lag.max_topic_partitions) == (9, 6)


def test_lag_standing_still_is_not_growing() -> None:
    _, history = _track(None, [offsets(0, high=10)], now=0)
    lag, history = _track(history, [offsets(0, high=20)], now=15)
    assert lag.growing_for == 15
    lag, _ = _track(history, [offsets(0, high=20)], now=30)
    assert lag.growing_for == 0


@given(
    st.integers(-1001, 10**9),
    st.integers(-1, 10**9),
    st.integers(-1, 10**9),
    st.booleans(),
    st.one_of(st.none(), st.integers(0, 10**9)),
)
def test_lag_is_never_negative_nor_more_than_the_log_holds(
    committed: int, low: int, high: int, earliest: bool, next_record: int | None
) -> None:
    lag = partition_lag(
        replace(offsets(committed, low=low, high=high), next_record=next_record),
        "earliest" if earliest else "latest",
    )
    assert lag >= 0
    assert lag <= max(0, high - max(low, 0))

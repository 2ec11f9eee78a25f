"""The consumption liveness signal (core/stall.py): messages waiting on assigned partitions and
none consumed for long fails /healthz with the reason; an outage, an idle topic or a partition
the application paused does not."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from confluent_kafka import TopicPartition
from orderpipeline.core.health import HealthServer, HealthState
from orderpipeline.core.session import KafkaSession
from orderpipeline.core.stall import NO_OFFSET, ConsumeWatch, waiting_messages

from tests.kafka_stats import BEHIND, DOWN, UP, stats, unconnected_session

from .test_logging_health import get


def test_waiting_is_the_distance_from_each_fetcher_to_the_stable_end() -> None:
    caught_up = {"next_offset": 40, "ls_offset": 40}
    behind = {"next_offset": 10, "ls_offset": 25}
    never_started = {"next_offset": NO_OFFSET, "committed_offset": 5, "ls_offset": 12}
    assert waiting_messages(stats(UP, p0=caught_up)) == {("orders", 0): 0}
    assert waiting_messages(stats(UP, p0=caught_up, p1=behind, p2=never_started)) == {
        ("orders", 0): 0,
        ("orders", 1): 15,
        ("orders", 2): 7,
    }
    # Not assigned to us, or not known yet: nothing to say about it.
    assert waiting_messages(stats(UP, p0={**behind, "desired": False})) == {}
    assert waiting_messages(stats(UP, p0={"next_offset": 3, "ls_offset": NO_OFFSET})) == {}
    # No broker up: an outage, not a stall.
    assert waiting_messages(stats(DOWN, p0=behind)) is None


def test_a_stall_is_reported_only_after_the_delay_and_cleared_by_a_consumed_message() -> None:
    watch = ConsumeWatch(stall_after_s=0.2)
    watch.on_stats(stats(UP, p0={"next_offset": NO_OFFSET, "ls_offset": 30}))
    assert watch.stalled(time.monotonic()) is None
    later = time.monotonic() + 0.3
    assert watch.stalled(later) == (
        "30 messages waiting on the assigned partitions, none consumed for 0 s"
    )
    watch.consumed(1)
    assert watch.stalled(time.monotonic() + 0.1) is None
    # A new assignment starts its own delay; nothing waiting is never a stall.
    watch.restart()
    assert watch.stalled(time.monotonic() + 10) is None
    watch.on_stats(stats(UP, p0={"next_offset": 30, "ls_offset": 30}))
    assert watch.stalled(time.monotonic() + 10) is None


def test_a_reported_stall_fails_the_liveness_probe_with_its_reason() -> None:
    state = HealthState()
    with HealthServer(state, 0, host="127.0.0.1") as server:
        state.set_stalled("30 messages waiting, none consumed for 120 s")
        status, body = get(server.port, "/healthz")
        assert status == 503 and "30 messages waiting" in body
        state.set_stalled(None)
        assert get(server.port, "/healthz")[0] == 200


def test_a_paused_partition_is_no_stall_but_the_others_still_are() -> None:
    watch = ConsumeWatch(stall_after_s=0.2)
    watch.on_stats(stats(UP, p0=BEHIND, p1={"next_offset": 5, "ls_offset": 9}))
    watch.on_pause([("orders", 0)])
    later = time.monotonic() + 0.3
    reason = watch.stalled(later)
    assert reason is not None and reason.startswith("4 messages waiting")
    # Every waiting partition paused (analytics during a Couchbase outage): no stall at all.
    watch.on_pause([("orders", 1)])
    assert watch.stalled(later) is None
    assert watch.stalled(time.monotonic() + 3600) is None


def test_a_resumed_partition_gets_its_own_delay_from_its_resume() -> None:
    watch = ConsumeWatch(stall_after_s=0.2)
    watch.on_stats(stats(UP, p0=BEHIND))
    watch.on_pause([("orders", 0)])
    time.sleep(0.3)  # paused for longer than the delay, nothing consumed meanwhile
    watch.on_resume([("orders", 0)])
    resumed = time.monotonic()
    # Not a stall the moment it is resumed, before its first fetch could return anything...
    assert watch.stalled(resumed) is None
    assert watch.stalled(resumed + 0.1) is None
    # ...but one if it then gets nothing for the delay.
    reason = watch.stalled(resumed + 0.3)
    assert reason is not None and reason.startswith("15 messages waiting")


def test_a_pause_outlives_a_new_assignment_and_ends_only_with_a_resume() -> None:
    watch = ConsumeWatch(stall_after_s=0.2)
    watch.on_pause([("orders", 0)])
    # Revoked and assigned again (a rebalance): librdkafka keeps the partition paused.
    watch.restart()
    watch.on_stats(stats(UP, p0=BEHIND))
    assert watch.stalled(time.monotonic() + 0.3) is None
    watch.on_resume([("orders", 0)])
    assert watch.stalled(time.monotonic() + 0.3) is not None


@pytest.fixture
def session() -> Iterator[KafkaSession]:
    with unconnected_session() as session:
        yield session


def test_partitions_paused_through_the_session_fail_the_liveness_probe_only_once_resumed(
    session: KafkaSession, capsys: pytest.CaptureFixture[str]
) -> None:
    health = session.ctx.health
    partitions = [TopicPartition("orders", 0), TopicPartition("orders", 1)]
    session.consumer.assign(partitions)
    session.pause(partitions)
    session.consume_watch.on_stats(stats(UP, p0=BEHIND, p1=BEHIND))
    session.consumed(0)
    assert health.alive

    session.resume(partitions[1:])
    session.consumed(0)
    assert health.stall_reason is not None and health.stall_reason.startswith("15 messages")
    # Still stalled, with another reason: the probe gives the latest, the log says it once.
    session.consume_watch.on_stats(stats(UP, p0=BEHIND, p1={**BEHIND, "ls_offset": 26}))
    session.consumed(0)
    assert health.stall_reason is not None and health.stall_reason.startswith("16 messages")
    assert capsys.readouterr().out.count("consuming stalled") == 1

    session.pause(partitions[1:])  # paused again on purpose: the probe passes again
    session.consumed(0)
    assert health.alive
    assert "consuming again" in capsys.readouterr().out

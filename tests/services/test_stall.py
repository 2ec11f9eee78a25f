"""The consumption liveness signal (core/stall.py): messages waiting on assigned partitions and
none consumed for long fails /healthz with the reason; an outage or an idle topic does not."""

from __future__ import annotations

import time
from typing import Any

from orderpipeline.core.health import HealthServer, HealthState
from orderpipeline.core.stall import NO_OFFSET, ConsumeWatch, waiting_messages

from .test_logging_health import get

UP = {"127.0.0.1:9092/1": {"nodeid": 1, "state": "UP"}}
DOWN = {"127.0.0.1:9092/1": {"nodeid": 1, "state": "DOWN"}}


def stats(brokers: dict[str, Any], **partitions: dict[str, Any]) -> dict[str, Any]:
    """A librdkafka statistics object with the fields stall.py reads (STATISTICS.md)."""
    parts = {"-1": {"desired": False, "ls_offset": NO_OFFSET}}
    parts.update({p.lstrip("p"): {"desired": True, **fields} for p, fields in partitions.items()})
    return {"brokers": brokers, "topics": {"orders": {"partitions": parts}}}


def test_waiting_is_the_distance_from_each_fetcher_to_the_stable_end() -> None:
    caught_up = {"next_offset": 40, "ls_offset": 40}
    behind = {"next_offset": 10, "ls_offset": 25}
    never_started = {"next_offset": NO_OFFSET, "committed_offset": 5, "ls_offset": 12}
    assert waiting_messages(stats(UP, p0=caught_up)) == 0
    assert waiting_messages(stats(UP, p0=caught_up, p1=behind, p2=never_started)) == 15 + 7
    # Not assigned to us, or not known yet: nothing to say about it.
    assert waiting_messages(stats(UP, p0={**behind, "desired": False})) == 0
    assert waiting_messages(stats(UP, p0={"next_offset": 3, "ls_offset": NO_OFFSET})) == 0
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

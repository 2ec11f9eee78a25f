"""The back-off while Couchbase is away (analytics/outage.py): growing, bounded, reset."""

from __future__ import annotations

import pytest
from orderpipeline.analytics.outage import (
    BACKOFF_INITIAL_S,
    BACKOFF_JITTER_S,
    BACKOFF_MAX_S,
    Outage,
    delay_after,
)


def test_the_wait_doubles_from_a_quarter_second_and_never_exceeds_fifteen() -> None:
    for failures in range(1, 40):
        base = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** (failures - 1))
        delay = delay_after(failures)
        assert base <= delay <= min(BACKOFF_MAX_S, base + BACKOFF_JITTER_S)


def test_an_outage_waits_until_its_delay_passed_and_a_success_resets_it() -> None:
    now = [100.0]
    outage = Outage(clock=lambda: now[0])
    assert not outage.waiting
    first = outage.fail()
    second = outage.fail()
    assert outage.failures == 2 and second > first
    assert outage.waiting and outage.remaining() == pytest.approx(second)
    now[0] += second
    assert not outage.waiting
    outage.succeed()
    assert outage.failures == 0
    assert outage.fail() <= second

"""librdkafka statistics objects and a session that never reaches a broker, for unit tests of
the consume-stall watch (core/stall.py) and what reports to it (core/session.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from orderpipeline.core.config import WorkerSettings
from orderpipeline.core.health import HealthState
from orderpipeline.core.lifecycle import StopFlag
from orderpipeline.core.logging import configure_logging
from orderpipeline.core.metrics import ServiceMetrics
from orderpipeline.core.runner import ServiceContext
from orderpipeline.core.session import KafkaSession
from orderpipeline.core.stall import NO_OFFSET

UP = {"127.0.0.1:9092/1": {"nodeid": 1, "state": "UP"}}
DOWN = {"127.0.0.1:9092/1": {"nodeid": 1, "state": "DOWN"}}
BEHIND = {"next_offset": 10, "ls_offset": 25}  # 15 messages waiting


def stats(brokers: dict[str, Any], **partitions: dict[str, Any]) -> dict[str, Any]:
    """A librdkafka statistics object with the fields stall.py reads (STATISTICS.md), for
    partitions `p0=...` of the topic `orders`."""
    parts = {"-1": {"desired": False, "ls_offset": NO_OFFSET}}
    parts.update({p.lstrip("p"): {"desired": True, **fields} for p, fields in partitions.items()})
    return {"brokers": brokers, "topics": {"orders": {"partitions": parts}}}


@contextmanager
def unconnected_session() -> Iterator[KafkaSession]:
    """A real session whose clients never reach a broker (none listens on port 1): assign,
    pause and resume work without one; the statistics are fed by hand, and a stall is reported
    as soon as messages wait on a partition that is not paused (no delay)."""
    # Log to this test's stdout: an earlier test may have configured a stream closed since.
    configure_logging("INFO", service="test")
    settings = WorkerSettings(bootstrap_servers="127.0.0.1:1", transactions=False)
    ctx = ServiceContext("test", StopFlag(), HealthState(), ServiceMetrics("test"))
    session = KafkaSession(settings, ctx, "group")
    session.consume_watch.stall_after_s = 0.0
    try:
        yield session
    finally:
        session.producer.flush(0)
        session.consumer.close()

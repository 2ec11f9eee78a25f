"""Analytics' consume-stall liveness (core/stall.py through core/session.py): the partitions it
pauses on purpose (loading their aggregate, or every one during a Couchbase outage) are no
stall; once resumed, messages waiting on them and none consumed are one."""

from __future__ import annotations

from typing import cast

from confluent_kafka import TopicPartition
from orderpipeline.analytics.partitions import Partitions
from orderpipeline.analytics.writer import Owned
from orderpipeline.core.aggregate import PartitionAggregate
from orderpipeline.core.aggregate_store import AnalyticsStore, PartitionId

from tests.kafka_stats import BEHIND, UP, stats, unconnected_session


def test_partitions_paused_while_loading_or_during_an_outage_are_no_stall() -> None:
    with unconnected_session() as session:
        health = session.ctx.health
        # pause, resume and assign need no store; loading does, and is done by hand below.
        partitions = Partitions(session, cast(AnalyticsStore, None), ("orders",), lambda: None)
        partitions.on_assign([TopicPartition("orders", 0), TopicPartition("orders", 1)])
        # 15 messages wait on partition 0 and 4 on partition 1.
        session.consume_watch.on_stats(stats(UP, p0=BEHIND, p1={"next_offset": 5, "ls_offset": 9}))
        session.consumed(0)
        assert health.alive, "paused until their aggregates are loaded"

        # Partition 0's aggregate is loaded and the partition resumed (what load_pending
        # does); the other one still waits for its aggregate. Nothing consumed from the
        # resumed one is a stall of its 15 messages only.
        loaded = PartitionId("orders", 0)
        partitions.owned[loaded] = Owned(PartitionAggregate(), None)
        partitions.pending.discard(loaded)
        session.resume([TopicPartition("orders", 0)])
        session.consumed(0)
        reason = health.stall_reason
        assert reason is not None and reason.startswith("15 messages waiting"), reason

        # Couchbase goes away: every partition paused, no stall.
        partitions.pause_all()
        session.consumed(0)
        assert health.alive, "every partition paused for the outage"

        # Couchbase is back: the loaded partition resumes, and is watched again.
        partitions.resume_owned()
        session.consumed(0)
        reason = health.stall_reason
        assert reason is not None and reason.startswith("15 messages waiting"), reason

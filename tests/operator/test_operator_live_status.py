"""The live status (live_status.py and its place in status.py): what a reading writes, and
when it is worth writing. Pure, no cluster."""

from __future__ import annotations

from orderpipeline_operator.consumer_groups import ConsumerGroup
from orderpipeline_operator.lag import GroupLag
from orderpipeline_operator.live_status import (
    ConsumerView,
    consumer_entry,
    consumers_changed,
    lagging_condition,
    total_lag,
)
from orderpipeline_operator.spec import Autoscaling
from orderpipeline_operator.status import WebappState, WorkerState, build_status


def view(lag: GroupLag | None, *, name: str = "fraud", max_replicas: int = 10) -> ConsumerView:
    policy = Autoscaling(enabled=True, max_replicas=max_replicas)
    return ConsumerView(ConsumerGroup(name, f"{name}-group", ("orders",), policy, 1), lag, 1, 2)


def lag(total: int, *, growing_for: float = 0, stuck: tuple[str, ...] = ()) -> GroupLag:
    return GroupLag(total, total, 3, 3, 12.34, stuck, growing_for)


def test_entry_holds_lag_partitions_rate_and_replicas() -> None:
    assert consumer_entry(view(lag(120))) == {
        "group": "fraud-group",
        "topics": ["orders"],
        "lag": 120,
        "partitions": 3,
        "ratePerSecond": 12.3,
        "readyReplicas": 1,
        "replicas": 2,
        "autoscaling": True,
        "stuckPartitions": [],
    }


def test_kafka_unreachable_makes_lag_unknown_and_the_condition_say_why() -> None:
    entry = consumer_entry(view(None))
    assert entry["lag"] == "unknown"
    assert "partitions" not in entry
    assert total_lag({"fraud": entry, "payment": consumer_entry(view(lag(5)))}) == "unknown"
    cond = lagging_condition([view(None)], "kafka:9092: no broker answered", 60, 3)
    assert (cond["status"], cond["reason"]) == ("Unknown", "KafkaUnreachable")
    assert "kafka:9092: no broker answered" in cond["message"]


def test_lag_growing_beyond_the_threshold_sets_lagging() -> None:
    assert lagging_condition([view(lag(9, growing_for=59))], None, 60, 1)["status"] == "False"
    cond = lagging_condition([view(lag(9, growing_for=60))], None, 60, 1)
    assert (cond["status"], cond["reason"]) == ("True", "LagGrowing")
    assert "fraud" in cond["message"]


def test_stuck_partition_is_named_in_the_lagging_condition() -> None:
    cond = lagging_condition([view(lag(9, stuck=("orders/2",)))], None, 60, 1)
    assert (cond["status"], cond["reason"]) == ("True", "PartitionStuck")
    assert "orders/2" in cond["message"]


def test_max_replicas_above_the_partitions_is_said_in_the_condition() -> None:
    cond = lagging_condition([view(lag(0), max_replicas=10)], None, 60, 1)
    assert cond["status"] == "False"
    assert "maxReplicas 10 is above the 3 partitions" in cond["message"]
    assert "above" not in lagging_condition([view(lag(0), max_replicas=3)], None, 60, 1)["message"]


def test_small_lag_moves_are_not_a_status_change() -> None:
    before = {"fraud": consumer_entry(view(lag(1000)))}
    assert not consumers_changed(before, {"fraud": consumer_entry(view(lag(1050)))})
    assert consumers_changed(before, {"fraud": consumer_entry(view(lag(1200)))})


def test_lag_reaching_or_leaving_zero_is_a_status_change() -> None:
    zero = {"fraud": consumer_entry(view(lag(0)))}
    assert consumers_changed(zero, {"fraud": consumer_entry(view(lag(1)))})
    assert consumers_changed({"fraud": consumer_entry(view(lag(1)))}, zero)


def test_a_reconcile_keeps_the_live_status_and_the_lagging_condition() -> None:
    entries = {"fraud": consumer_entry(view(lag(42)))}
    cond = lagging_condition([view(lag(42))], None, 60, 1)
    worker = WorkerState("p-fraud", 1, 1, 1, 1, current=True)
    status = build_status(
        1, {"fraud": worker}, WebappState(False, "p"), None, False, {},
        consumers=entries, lagging=cond,
    )  # fmt: skip
    assert status["consumers"] == entries
    assert status["summary"]["lag"] == "42"
    assert [c["type"] for c in status["conditions"]] == [
        "Ready", "Progressing", "Degraded", "Lagging",
    ]  # fmt: skip

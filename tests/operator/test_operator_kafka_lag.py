"""The operator's lag reader (kafka_offsets.py + lag.py) on the real local Kafka broker:
offsets a real consumer of the group committed, a partition never committed, messages
retention deleted, topics of other groups, an unreachable broker, transaction markers and
aborted transactions (not lag), and a reading that never commits for the group."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from devinfra.kafka import KafkaBroker
from orderpipeline_operator.consumer_groups import ConsumerGroup, consumer_groups
from orderpipeline_operator.kafka_offsets import KafkaUnavailable, read_offsets
from orderpipeline_operator.lag import partition_lag
from orderpipeline_operator.spec import Autoscaling, parse_spec

pytestmark = pytest.mark.kafka

PARTITIONS = 3


def produce(broker: KafkaBroker, topic: str, count: int, partition: int | None = None) -> None:
    producer = Producer(broker.client_config())
    for i in range(count):
        if partition is None:
            producer.produce(topic, key=str(i), value=b"{}")
        else:
            producer.produce(topic, key=str(i), value=b"{}", partition=partition)
    assert producer.flush(30) == 0


def commit(broker: KafkaBroker, group: str, offsets: dict[tuple[str, int], int]) -> None:
    """Commit as a member of `group` would (a consumer of the group, synchronous commit)."""
    consumer = Consumer({**broker.client_config(), "group.id": group})
    try:
        consumer.commit(
            offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False
        )
    finally:
        consumer.close()


def topics(broker: KafkaBroker) -> tuple[str, str, list[ConsumerGroup]]:
    suffix = uuid.uuid4().hex[:8]
    orders, payments = f"orders-{suffix}", f"payments-{suffix}"
    broker.create_topics([orders, payments, f"other-{suffix}"], partitions=PARTITIONS)
    spec = parse_spec(
        {
            "kafka": {
                "bootstrapServers": broker.bootstrap_servers,
                "topics": {"orders": orders, "payments": payments},
            },
            "couchbase": {
                "connectionString": "couchbase://c",
                "credentialsSecretRef": {"name": "s"},
            },
        }
    )
    return orders, payments, consumer_groups(spec)


def read(broker: KafkaBroker, groups: list[ConsumerGroup]) -> dict[str, int]:
    found = read_offsets(broker.client_config(), groups, timeout=20)
    by_group = {g.name: g for g in groups}
    return {
        name: sum(partition_lag(p, by_group[name].reset) for p in parts)
        for name, parts in found.items()
    }


def test_lag_of_a_group_that_never_committed_is_every_message_in_its_topics(
    kafka: KafkaBroker,
) -> None:
    orders, payments, groups = topics(kafka)
    produce(kafka, orders, 120)
    produce(kafka, payments, 30)
    produce(kafka, orders.replace("orders", "other"), 500)  # nobody's topic: never counts
    assert read(kafka, groups) == {"fraud": 120, "payment": 120, "analytics": 150}


def test_lag_counts_from_the_groups_committed_offsets(kafka: KafkaBroker) -> None:
    orders, _, groups = topics(kafka)
    for p in range(PARTITIONS):
        produce(kafka, orders, 40, partition=p)
    commit(kafka, "fraud-group", {(orders, 0): 40, (orders, 1): 25})
    found = read_offsets(kafka.client_config(), groups, timeout=20)
    fraud = {p.partition: p for p in found["fraud"]}
    assert (fraud[0].committed, fraud[1].committed, fraud[2].committed) == (40, 25, None)
    assert read(kafka, groups)["fraud"] == 0 + 15 + 40


def test_messages_deleted_by_retention_are_not_lag(kafka: KafkaBroker) -> None:
    orders, _, groups = topics(kafka)
    produce(kafka, orders, 100, partition=0)
    admin = AdminClient(kafka.client_config())
    for future in admin.delete_records([TopicPartition(orders, 0, 70)]).values():
        future.result(30)
    commit(kafka, "payments-group", {(orders, 0): 10})
    lags = read(kafka, groups)
    # fraud never committed, payment committed below the log start: both read 70..100.
    assert lags["fraud"] == 30
    assert lags["payment"] == 30


def test_a_group_on_a_missing_topic_has_no_partitions_and_no_lag(kafka: KafkaBroker) -> None:
    group = ConsumerGroup(
        "fraud", "fraud-group", (f"absent-{uuid.uuid4().hex[:8]}",), Autoscaling(), 1
    )
    assert read_offsets(kafka.client_config(), [group], timeout=20) == {"fraud": []}


def test_unreachable_broker_is_an_error_naming_the_cause_within_the_timeout() -> None:
    group = ConsumerGroup("fraud", "fraud-group", ("orders",), Autoscaling(), 1)
    started = time.monotonic()
    with pytest.raises(KafkaUnavailable, match=r"_TRANSPORT|TIMED_OUT") as caught:
        read_offsets({"bootstrap.servers": "127.0.0.1:1", "log_level": 0}, [group], timeout=2)
    assert time.monotonic() - started < 10
    assert "Connection refused" in str(caught.value)  # the cause, not only "transport failure"


def produce_in_transactions(
    broker: KafkaBroker, topic: str, transactions: int, each: int, *, commit: bool = True
) -> None:
    """As the workers write their outputs: every transaction ends with a control record
    (commit or abort marker) in each partition it wrote to, an offset no reader ever gets."""
    producer = Producer(
        {**broker.client_config(), "transactional.id": f"test-{uuid.uuid4().hex[:8]}"}
    )
    producer.init_transactions(30)
    for _ in range(transactions):
        producer.begin_transaction()
        for p in range(PARTITIONS):
            for i in range(each):
                producer.produce(topic, key=str(i), value=b"{}", partition=p)
        # On the broker before the abort (an abort purges what is still queued here).
        assert producer.flush(30) == 0
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)


def read_all_and_commit(broker: KafkaBroker, group: str, topic: str) -> None:
    """A read_committed consumer of `group` reads every record and commits the offset after
    the last one it got, as the services do (send_offsets_to_transaction of offset + 1)."""
    consumer = Consumer(
        {
            **broker.client_config(),
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        last: dict[int, int] = {}
        at_end: set[int] = set()
        deadline = time.monotonic() + 30
        while len(at_end) < PARTITIONS and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or (partition := msg.partition()) is None:
                continue
            if msg.error():
                at_end.add(partition)
            elif (offset := msg.offset()) is not None:
                last[partition] = offset
        assert len(at_end) == PARTITIONS, "the consumer did not reach the end of every partition"
        consumer.commit(
            offsets=[TopicPartition(topic, p, o + 1) for p, o in last.items()], asynchronous=False
        )
    finally:
        consumer.close()


def test_idle_group_after_transactional_writes_has_no_lag(kafka: KafkaBroker) -> None:
    _, payments, groups = topics(kafka)
    produce_in_transactions(kafka, payments, transactions=4, each=5)
    read_all_and_commit(kafka, "analytics-group", payments)
    found = read_offsets(kafka.client_config(), groups, timeout=20)
    analytics = [p for p in found["analytics"] if p.topic == payments]
    # The commit marker stays between each committed offset and the log end ...
    assert all(p.high - (p.committed or 0) == 1 for p in analytics)
    # ... and is not lag: the group has read everything there is to read.
    assert read(kafka, groups)["analytics"] == 0


def test_looking_for_the_next_record_never_commits_for_the_group(kafka: KafkaBroker) -> None:
    orders, _, groups = topics(kafka)
    produce(kafka, orders, 40, partition=0)
    commit(kafka, "fraud-group", {(orders, 0): 25})
    # The broker's plain settings: librdkafka's default is to auto-commit.
    for _ in range(2):
        assert read(kafka, groups)["fraud"] == 15
    found = read_offsets(kafka.client_config(), groups, timeout=20)
    assert [p.committed for p in found["fraud"]] == [25, None, None]


def test_records_of_aborted_transactions_are_not_lag(kafka: KafkaBroker) -> None:
    _, payments, groups = topics(kafka)
    produce_in_transactions(kafka, payments, transactions=1, each=5)
    read_all_and_commit(kafka, "analytics-group", payments)
    produce_in_transactions(kafka, payments, transactions=2, each=20, commit=False)
    found = read_offsets(kafka.client_config(), groups, timeout=20)
    assert all(p.high - (p.committed or 0) > 40 for p in found["analytics"] if p.topic == payments)
    assert read(kafka, groups)["analytics"] == 0


def test_unread_records_after_transaction_markers_still_count(kafka: KafkaBroker) -> None:
    _, payments, groups = topics(kafka)
    produce_in_transactions(kafka, payments, transactions=2, each=5)
    read_all_and_commit(kafka, "analytics-group", payments)
    produce(kafka, payments, 10, partition=0)  # plain records: exactly 10 more to read
    produce_in_transactions(kafka, payments, transactions=1, each=7)
    # Partition 0: 10 + 7 records and the new transaction's marker behind them (a marker
    # after unread records is counted: telling it apart would mean reading them all);
    # partitions 1 and 2: 7 records and their marker.
    assert read(kafka, groups)["analytics"] == (10 + 7 + 1) + 2 * (7 + 1)

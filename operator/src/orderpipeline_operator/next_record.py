"""Where a group's consumer would really get its next record: past transaction markers and
records of aborted transactions, which a `read_committed` reader never receives.

The workers commit the offset after the last record they processed, inside their
transaction; the commit marker of the transaction that wrote that record sits right after
it. So "log end - committed offset" of an idle group reading transactional outputs is 1 per
partition, never 0 (the same is true of any consumer that commits `offset + 1`, not only
ours). The last stable offset (`isolation.level=read_committed` in ListOffsets) does not
help: the marker is below it.

Only reading tells a marker from a record, so for every partition with lag a consumer of
the reading is assigned there at the group's start offset and asked for one record: the first
it gets (or the end of the partition) is where the lag really starts. This is a plain fetch
on a consumer that never subscribes and is given explicit offsets: it asks the group
coordinator nothing (the librdkafka crash of list_consumer_group_offsets is a coordinator
path, kafka_offsets.py) and can commit nothing (FETCH_CONFIG). A partition that does not
answer within the time, or answers with an error, keeps its unverified lag: a phantom lag
of 1 is better than hiding a real one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Mapping

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from orderpipeline_operator.consumer_groups import ResetPolicy
from orderpipeline_operator.lag import PartitionOffsets, partition_lag, start_offset

# Added to the reading's consumers, over whatever the caller's settings say. They are the
# group's own consumers: one that committed (auto-commit is librdkafka's default) would move
# the group past records nobody processed. Seen in a test whose settings lacked
# enable.auto.commit=false: the look committed the group to the log end.
# The fetch is for one record, not a backlog: 64 KB per partition (the broker still sends
# a larger first batch whole), and `queued.min.messages` 1 stops librdkafka fetching
# further ahead. An offset retention deleted meanwhile must be an error, not a
# jump to the end (which would read as "nothing to read").
FETCH_CONFIG = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,
    "auto.offset.reset": "error",
    "fetch.wait.max.ms": 100,
    "max.partition.fetch.bytes": 65_536,
    "queued.min.messages": 1,
}

Position = tuple[str, int, int]  # topic, partition, start offset


def _first_records(
    consumer: Consumer, starts: Mapping[tuple[str, int], int], until: float
) -> dict[Position, int]:
    """The first offset each partition gives from its start."""
    found: dict[Position, int] = {}
    given_up: set[tuple[str, int]] = set()
    consumer.assign([TopicPartition(t, p, o) for (t, p), o in starts.items()])
    try:
        while len(found) + len(given_up) < len(starts):
            left = until - time.monotonic()
            if left <= 0:
                break
            # Batches: a partition's first batch can hold thousands of records to pass over.
            for msg in consumer.consume(1000, min(left, 0.2)):
                topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
                if topic is None or partition is None or offset is None:
                    continue  # a client-level error: the partitions may still answer
                key = (topic, partition)
                if key not in starts or key in given_up or (*key, starts[key]) in found:
                    continue  # not asked, or a later record of one that answered
                error = msg.error()
                if error is None or error.code() == KafkaError._PARTITION_EOF:
                    found[(topic, partition, starts[key])] = offset
                else:
                    given_up.add(key)
    finally:
        consumer.unassign()
    return found


def with_next_records(
    consumers: Mapping[str, Consumer],
    offsets: Mapping[str, list[PartitionOffsets]],
    resets: Mapping[str, ResetPolicy],
    timeout: float,
) -> dict[str, list[PartitionOffsets]]:
    """`offsets` (per group) with `next_record` set wherever the group has lag and the
    partition answered within `timeout` seconds. Each group's positions are looked at by
    its own consumer (`consumers`, by group): a consumer has one position per partition,
    and groups can be at different offsets of the same partition. A position another group
    shares is looked at once."""
    found: dict[Position, int] = {}
    until = time.monotonic() + timeout
    for group, parts in offsets.items():
        starts: dict[tuple[str, int], int] = {}
        for p in parts:
            start = start_offset(p, resets[group])
            if start is None or partition_lag(p, resets[group]) == 0:
                continue
            if (p.topic, p.partition, start) not in found:  # another group is there too
                starts[(p.topic, p.partition)] = start
        if not starts:
            continue
        # A failed look keeps the unverified lag of what it did not find.
        with contextlib.suppress(KafkaException):
            found.update(_first_records(consumers[group], starts, until))
    return {
        group: [
            dataclasses.replace(p, next_record=found.get((p.topic, p.partition, start)))
            if (start := start_offset(p, resets[group])) is not None
            else p
            for p in parts
        ]
        for group, parts in offsets.items()
    }

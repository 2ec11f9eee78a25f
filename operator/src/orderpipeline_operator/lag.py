"""Consumer lag from offsets: the rules a reader can trust, and what successive readings
tell (consumption rate, growing lag and how fast, stuck partitions). Pure functions;
kafka_offsets.py does the reading.

The rules, learned from what users of KEDA's Kafka scaler ran into:
- a partition the group never committed counts what its consumer would read under its
  reset policy: `earliest` the messages still in the log (end - start: never the ones
  retention already deleted), `latest` nothing;
- a committed offset below the log start counts from the log start (retention deleted the
  rest: nobody will read it);
- an invalid reading (a committed offset past the log end, e.g. a re-created topic, or
  negative watermarks) counts nothing: it must never scale anything;
- what a `read_committed` consumer skips is not lag: the log end is the last stable offset
  (records of open transactions are not readable yet), and transaction markers and records
  of aborted transactions between the group's position and the next record it would really
  get count nothing (`next_record`, found by next_record.py). Without this an idle group
  reading transactional outputs shows lag 1 per partition, the commit marker behind the
  last record, forever: a phantom lag that keeps an autoscaled group at 1 replica and
  turns into a stuck partition. Markers after unread records still count (one per
  transaction: telling them apart would mean reading every record);
- a partition whose committed offset stays put for `stuck_after` seconds while the group
  has a ready consumer is stuck (a message its consumer cannot get past): reported, and
  left out of the lag the scaler sees, so it does not keep adding replicas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from orderpipeline_operator.consumer_groups import ResetPolicy


@dataclass(frozen=True)
class PartitionOffsets:
    topic: str
    partition: int
    low: int  # log start offset: the first message retention kept
    high: int  # log end offset (high watermark): the next message's offset
    committed: int | None  # None: the group has no committed offset here
    # The first offset a read_committed consumer starting at `start_offset` gets (the log
    # end when there is none before it); None: not looked at, the range counts as is.
    next_record: int | None = None

    @property
    def key(self) -> str:
        return f"{self.topic}/{self.partition}"


def start_offset(p: PartitionOffsets, reset: ResetPolicy) -> int | None:
    """Where the group's consumer reads this partition from; None: it reads nothing."""
    if p.low < 0 or p.high < 0 or p.low > p.high:
        return None  # watermarks the broker could not give: no evidence of lag
    if p.committed is None or p.committed < 0:
        return p.low if reset == "earliest" else None
    if p.committed > p.high:
        return None  # beyond the log end: not a position the consumer can be at
    return max(p.committed, p.low)


def partition_lag(p: PartitionOffsets, reset: ResetPolicy) -> int:
    """Messages the group has still to read from this partition (never negative)."""
    start = start_offset(p, reset)
    if start is None:
        return 0
    if p.next_record is not None:
        start = max(start, min(p.next_record, p.high))
    return p.high - start


@dataclass(frozen=True)
class PartitionProgress:
    """Where a partition's committed offset was, and since when (monotonic seconds)."""

    committed: int | None
    since: float


@dataclass(frozen=True)
class GroupHistory:
    """What one reading leaves for the next."""

    at: float
    lag: int
    partitions: Mapping[str, PartitionProgress] = field(default_factory=dict)
    growing_since: float | None = None
    scaling_lag: int | None = None  # None: a history from before this was kept


@dataclass(frozen=True)
class GroupLag:
    """One group's lag as the status reports it and the scaler uses it."""

    lag: int  # every partition of the group's topics
    scaling_lag: int  # without the stuck partitions
    partitions: int  # of all the group's topics
    max_topic_partitions: int  # the most consumers that can all have a partition
    rate: float | None  # messages committed per second since the previous reading
    stuck: tuple[str, ...]  # "topic/partition"
    growing_for: float  # seconds the lag has been growing (0: not growing)
    # How fast scaling_lag changed since the previous reading, in messages per second
    # (negative: shrinking); None on a first reading. Where the lag is heading decides how
    # soon it is read again (reading_interval.py).
    growth: float | None = None


def _rate(
    previous: GroupHistory | None, now: float, offsets: Iterable[PartitionOffsets]
) -> float | None:
    if previous is None or now <= previous.at:
        return None
    moved = 0
    for p in offsets:
        before = previous.partitions.get(p.key)
        if before is None or before.committed is None or p.committed is None:
            continue
        moved += max(0, p.committed - before.committed)
    return moved / (now - previous.at)


def _growth(previous: GroupHistory | None, now: float, scaling_lag: int) -> float | None:
    if previous is None or previous.scaling_lag is None or now <= previous.at:
        return None
    return (scaling_lag - previous.scaling_lag) / (now - previous.at)


def _growing_since(previous: GroupHistory | None, lag: int) -> float | None:
    """When the lag started growing: it has risen at every reading since. A lag that
    stands still is not growing (a stalled consumer shows as a stuck partition)."""
    if previous is None or lag <= previous.lag:
        return None
    return previous.growing_since if previous.growing_since is not None else previous.at


def track(
    previous: GroupHistory | None,
    offsets: list[PartitionOffsets],
    *,
    now: float,
    reset: ResetPolicy,
    consumer_alive: bool,
    stuck_after: float,
) -> tuple[GroupLag, GroupHistory]:
    """A group's lag from one reading of its partitions, and the history for the next."""
    progress: dict[str, PartitionProgress] = {}
    stuck: list[str] = []
    total = scaling = 0
    for p in offsets:
        lag = partition_lag(p, reset)
        before = previous.partitions.get(p.key) if previous else None
        # A consumer that is not there cannot be stuck: the clock starts when one is.
        moved = before is None or before.committed != p.committed or not consumer_alive
        since = now if moved or before is None else before.since
        progress[p.key] = PartitionProgress(p.committed, since)
        total += lag
        if lag > 0 and consumer_alive and now - since >= stuck_after:
            stuck.append(p.key)
        else:
            scaling += lag
    per_topic: dict[str, int] = {}
    for p in offsets:
        per_topic[p.topic] = per_topic.get(p.topic, 0) + 1
    growing_since = _growing_since(previous, total)
    result = GroupLag(
        lag=total,
        scaling_lag=scaling,
        partitions=len(offsets),
        max_topic_partitions=max(per_topic.values(), default=0),
        rate=_rate(previous, now, offsets),
        stuck=tuple(sorted(stuck)),
        growing_for=0.0 if growing_since is None else now - growing_since,
        growth=_growth(previous, now, scaling),
    )
    return result, GroupHistory(now, total, progress, growing_since, scaling)

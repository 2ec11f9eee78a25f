"""Consumption liveness: assigned partitions have messages waiting, yet nothing is consumed.

The main loop's heartbeat (health.py) proves the loop turns, not that it gets anything: a
consumer whose partitions never start fetching (librdkafka leaves a partition unstarted when it
cannot fetch its committed offset, until the application assigns it again) turns happily on
empty consume() calls. librdkafka's statistics say, per assigned partition, where its fetcher
is (`next_offset`, -1001 when it never started) and where the partition ends for us
(`ls_offset`, the last stable offset: read_committed readers stop there, and transaction
markers are behind the fetcher, not ahead of it). Messages waiting while none has been
consumed for `stall_after_s`, with a broker up, is a stall: /healthz then answers 503 with the
reason, so Kubernetes restarts the pod, and the log says why. Nothing here restarts anything.
A broker outage is not a stall (no broker up), and neither is an idle topic (nothing waiting).

Nor is a partition the application paused (analytics, while Couchbase is away or a partition's
aggregate loads): its messages wait there by design. The statistics cannot tell (librdkafka
2.16, against the test broker): a paused partition stays `desired` with `fetch_state` "active",
and its `ls_offset` can move on while `next_offset` stays, just like a stalled one. So the
application tells the watch (`on_pause`, `on_resume`; core/session.py does it for every pause
and resume it makes), and a resumed partition gets its own `stall_after_s` from its resume,
not from the last message consumed before the pause. Only a resume ends a pause, here as in
librdkafka, where a partition paused, unassigned and assigned again (a rebalance) is still
paused.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

# librdkafka's "no offset" (RD_KAFKA_OFFSET_INVALID).
NO_OFFSET = -1001

# Messages waiting on assigned partitions and none consumed for this long: /healthz fails.
CONSUME_STALL_S = 120.0

# A partition as the statistics name it: (topic, partition).
Partition = tuple[str, int]


def waiting_messages(stats: dict[str, Any]) -> dict[Partition, int] | None:
    """Per assigned partition, the messages between its fetcher and its stable end, from one
    librdkafka statistics object; None when no broker is up (an outage, not a stall)."""
    brokers = stats.get("brokers", {}).values()
    if not any(b.get("state") == "UP" and b.get("nodeid", -1) >= 0 for b in brokers):
        return None
    waiting: dict[Partition, int] = {}
    for name, topic in stats.get("topics", {}).items():
        for partition, p in topic.get("partitions", {}).items():
            if partition == "-1" or not p.get("desired"):
                continue
            end = int(p.get("ls_offset", NO_OFFSET))
            if end < 0:
                continue
            position = int(p.get("next_offset", NO_OFFSET))
            if position < 0:  # the fetcher never started: from the committed offset, or 0
                position = max(int(p.get("committed_offset", NO_OFFSET)), 0)
            waiting[(name, int(partition))] = max(0, end - position)
    return waiting


class ConsumeWatch:
    """Fed with each consume() result, each statistics object and each pause and resume of the
    application; `stalled()` gives the reason once messages have been waiting on partitions
    that are not paused with nothing consumed for `stall_after_s`."""

    def __init__(self, stall_after_s: float = CONSUME_STALL_S) -> None:
        self.stall_after_s = stall_after_s
        self._last_consumed = time.monotonic()
        self._waiting: dict[Partition, int] | None = {}
        self._paused: set[Partition] = set()
        self._resumed_at: dict[Partition, float] = {}

    def consumed(self, count: int) -> None:
        if count:
            self._last_consumed = time.monotonic()

    def restart(self) -> None:
        """A new assignment: its partitions get their own `stall_after_s`."""
        self._last_consumed = time.monotonic()
        self._waiting = {}
        self._resumed_at.clear()

    def on_pause(self, partitions: Iterable[Partition]) -> None:
        self._paused.update(partitions)

    def on_resume(self, partitions: Iterable[Partition]) -> None:
        # A partition paused for long would be a stall the moment it is resumed, before its
        # first fetch could return anything: its delay starts now.
        now = time.monotonic()
        for partition in partitions:
            self._paused.discard(partition)
            self._resumed_at[partition] = now

    def on_stats(self, stats: dict[str, Any]) -> None:
        self._waiting = waiting_messages(stats)

    def stalled(self, now: float) -> str | None:
        if not self._waiting:
            return None
        waiting = 0
        for partition, count in self._waiting.items():
            if not count or partition in self._paused:
                continue
            since = max(self._last_consumed, self._resumed_at.get(partition, self._last_consumed))
            if now - since >= self.stall_after_s:
                waiting += count
        if not waiting:
            return None
        return (
            f"{waiting} messages waiting on the assigned partitions, "
            f"none consumed for {now - self._last_consumed:.0f} s"
        )

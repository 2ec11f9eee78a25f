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
"""

from __future__ import annotations

import time
from typing import Any

# librdkafka's "no offset" (RD_KAFKA_OFFSET_INVALID).
NO_OFFSET = -1001


def waiting_messages(stats: dict[str, Any]) -> int | None:
    """Messages between the fetchers of the assigned partitions and their stable ends, from one
    librdkafka statistics object; None when no broker is up (an outage, not a stall)."""
    brokers = stats.get("brokers", {}).values()
    if not any(b.get("state") == "UP" and b.get("nodeid", -1) >= 0 for b in brokers):
        return None
    waiting = 0
    for topic in stats.get("topics", {}).values():
        for partition, p in topic.get("partitions", {}).items():
            if partition == "-1" or not p.get("desired"):
                continue
            end = int(p.get("ls_offset", NO_OFFSET))
            if end < 0:
                continue
            position = int(p.get("next_offset", NO_OFFSET))
            if position < 0:  # the fetcher never started: from the committed offset, or 0
                position = max(int(p.get("committed_offset", NO_OFFSET)), 0)
            waiting += max(0, end - position)
    return waiting


class ConsumeWatch:
    """Fed with each consume() result and each statistics object; `stalled()` gives the reason
    once messages have been waiting with nothing consumed for `stall_after_s`."""

    def __init__(self, stall_after_s: float) -> None:
        self.stall_after_s = stall_after_s
        self._last_consumed = time.monotonic()
        self._waiting: int | None = 0

    def consumed(self, count: int) -> None:
        if count:
            self._last_consumed = time.monotonic()

    def restart(self) -> None:
        """A new assignment: its partitions get their own `stall_after_s`."""
        self._last_consumed = time.monotonic()
        self._waiting = 0

    def on_stats(self, stats: dict[str, Any]) -> None:
        self._waiting = waiting_messages(stats)

    def stalled(self, now: float) -> str | None:
        idle = now - self._last_consumed
        if not self._waiting or idle < self.stall_after_s:
            return None
        return (
            f"{self._waiting} messages waiting on the assigned partitions, "
            f"none consumed for {idle:.0f} s"
        )

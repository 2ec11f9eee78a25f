"""What the handlers share: settings, clients, a lock per pipeline, the status book and
the lag reader's memory. Created once at start-up (handlers/startup.py)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from orderpipeline_operator.consumer_groups import CONSUMERS
from orderpipeline_operator.helm import Helm
from orderpipeline_operator.kube import Kube
from orderpipeline_operator.metrics import PER_CONSUMER
from orderpipeline_operator.scaler import LiveStore, PipelineMemory
from orderpipeline_operator.settings import Settings
from orderpipeline_operator.status_book import StatusBook


@dataclass
class Operator:
    settings: Settings
    kube: Kube
    helm: Helm
    statuses: StatusBook = field(default_factory=StatusBook)
    # The lag reader's memory (readings, the scaler's replica counts, the live status).
    live: LiveStore = field(default_factory=LiveStore)
    # The threads that wait for Kafka (lag readings): few, and not kopf's handler threads.
    kafka_readers: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="kafka-lag")
    )
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _locks_guard: threading.Lock = field(default_factory=threading.Lock)

    def lock(self, uid: str) -> threading.Lock:
        """Serialises one pipeline's reconciles, status refreshes and lag readings."""
        with self._locks_guard:
            return self._locks.setdefault(uid, threading.Lock())

    def memory(self, body: Mapping[str, Any]) -> PipelineMemory:
        return self.live.memory(body["metadata"]["uid"], self.statuses.last(body))

    def forget(self, uid: str, namespace: str, name: str) -> None:
        """A deleted pipeline: its lock, status, memory and metric series go."""
        with self._locks_guard:
            self._locks.pop(uid, None)
        self.statuses.forget(uid)
        self.live.forget(uid)
        for gauge in PER_CONSUMER:
            for group in CONSUMERS:
                with contextlib.suppress(KeyError):  # never read: no series
                    gauge.remove(namespace, name, group)

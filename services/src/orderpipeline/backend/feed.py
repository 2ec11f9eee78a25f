"""The analytics as last read from Couchbase, refreshed in the background.

One task re-reads the partition aggregates every BACKEND_REFRESH_INTERVAL_SECONDS (two KV
round trips, in a worker thread so the event loop never blocks) and rebuilds the response only
when a document's CAS changed or the minute turned. Requests are then served from memory, and
Server-Sent Events subscribers are woken on every new version.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import anyio

from orderpipeline.backend.view import analytics_view
from orderpipeline.core.aggregate import PartitionAggregate, merge
from orderpipeline.core.aggregate_store import AnalyticsStore, PartitionId, StoreUnavailable
from orderpipeline.core.couchbase import CouchbaseHandle, CouchbaseSettings, connect
from orderpipeline.core.logging import get_logger


class AnalyticsSource(Protocol):
    """Where the partition aggregates come from; raises StoreUnavailable when unreachable."""

    def read_all(self) -> tuple[dict[PartitionId, PartitionAggregate], tuple[int, ...]]: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


class CouchbaseSource:
    """The process's one Couchbase connection, opened (and retried) in a background thread so
    the backend starts, and reports not-ready, while Couchbase is down."""

    def __init__(self, settings: CouchbaseSettings) -> None:
        self._settings = settings
        self._stop = threading.Event()
        self._handle: CouchbaseHandle | None = None
        self._store: AnalyticsStore | None = None
        self._error = "connecting to couchbase"
        self._log = get_logger("backend")
        self._thread = threading.Thread(target=self._connect, name="couchbase-connect", daemon=True)
        self._thread.start()

    def _connect(self) -> None:
        def waiting(exc: BaseException) -> None:
            self._error = f"couchbase unreachable: {type(exc).__name__}"
            self._log.warning("waiting for couchbase", error=type(exc).__name__)

        try:
            handle = connect(
                self._settings,
                on_retry=waiting,
                sleep=self._stop.wait,
                should_stop=self._stop.is_set,
            )
        except Exception as exc:
            self._error = f"cannot use couchbase: {type(exc).__name__} (check COUCHBASE_*)"
            self._log.error("cannot use couchbase", error=type(exc).__name__)
            return
        if self._stop.is_set():
            handle.close()
            return
        self._handle = handle
        self._store = AnalyticsStore(handle.collection)
        self._log.info("connected to couchbase", bucket=self._settings.bucket)

    def _require(self) -> AnalyticsStore:
        if self._store is None:
            raise StoreUnavailable(self._error)
        return self._store

    def read_all(self) -> tuple[dict[PartitionId, PartitionAggregate], tuple[int, ...]]:
        return self._require().read_all()

    def ping(self) -> None:
        self._require().ping()

    def close(self) -> None:
        self._stop.set()
        if self._handle is not None:
            self._handle.close()


class FeedUnavailable(Exception):
    """No sufficiently fresh analytics to serve."""


@dataclass(frozen=True)
class Snapshot:
    version: int
    view: dict[str, Any]
    body: bytes  # the /api/analytics JSON, encoded once per version
    # Up to 100 each, newest first, for /api/orders and /api/fraud-alerts.
    latest_orders: tuple[dict[str, Any], ...]
    latest_alerts: tuple[dict[str, Any], ...]


class AnalyticsFeed:
    def __init__(
        self,
        source: AnalyticsSource,
        refresh_interval: float = 0.25,
        max_staleness: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.source = source
        self._interval = refresh_interval
        self._max_staleness = max_staleness
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._key: tuple[Any, ...] | None = None
        self._last_ok = float("-inf")
        self._error = "not loaded yet"
        self._changed: asyncio.Condition | None = None
        self._log = get_logger("backend")

    # --- reading -------------------------------------------------------------------------------

    def current(self) -> Snapshot:
        """The latest snapshot, or FeedUnavailable when Couchbase has not answered lately."""
        snapshot = self._snapshot
        if snapshot is None:
            raise FeedUnavailable(f"analytics not available: {self._error}")
        if time.monotonic() - self._last_ok > self._max_staleness:
            age = time.monotonic() - self._last_ok
            raise FeedUnavailable(
                f"analytics out of date (last read {age:.0f} s ago): {self._error}"
            )
        return snapshot

    async def next_after(self, version: int, timeout: float) -> Snapshot | None:
        """Wait up to `timeout` s for a snapshot newer than `version` (None on timeout)."""
        changed = self._condition()

        def newer() -> bool:
            return self._snapshot is not None and self._snapshot.version > version

        async with changed:
            try:
                await asyncio.wait_for(changed.wait_for(newer), timeout)
            except TimeoutError:
                return None
        return self._snapshot

    # --- refreshing ----------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Read once (blocking); True when a new snapshot was built."""
        try:
            aggregates, cas_values = self.source.read_all()
        except StoreUnavailable as exc:
            if self._error != str(exc):
                self._log.warning("couchbase unavailable", error=str(exc))
            self._error = str(exc)
            return False
        self._last_ok = time.monotonic()
        self._error = ""
        now = self._clock()
        key = (cas_values, now.strftime("%Y%m%d%H%M"))
        if key == self._key and self._snapshot is not None:
            return False
        total = merge(aggregates.values())
        view = analytics_view(total, now)
        version = self._snapshot.version + 1 if self._snapshot else 1
        body = json.dumps(view, separators=(",", ":")).encode()
        self._snapshot = Snapshot(version, view, body, total.latest_orders, total.latest_alerts)
        self._key = key
        return True

    async def run(self) -> None:
        """Refresh forever (cancel to stop)."""
        while True:
            if await anyio.to_thread.run_sync(self.refresh):
                changed = self._condition()
                async with changed:
                    changed.notify_all()
            await asyncio.sleep(self._interval)

    def _condition(self) -> asyncio.Condition:
        # Created lazily inside the running loop.
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

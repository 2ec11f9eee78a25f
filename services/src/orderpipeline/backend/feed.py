"""The analytics as last read from Couchbase, refreshed in the background.

One task re-reads the partition aggregates every BACKEND_REFRESH_INTERVAL_SECONDS (two KV
round trips, in a worker thread so the event loop never blocks) and rebuilds the response only
when a document's CAS changed or the minute turned. Requests are then served from memory, and
Server-Sent Events subscribers are woken on every new version.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio
from pydantic import ValidationError

from orderpipeline.backend.schemas import Analytics, FraudAlert, Order
from orderpipeline.backend.source import AnalyticsSource
from orderpipeline.backend.view import analytics_view, latest_alerts, latest_orders
from orderpipeline.core.aggregate import (
    LATEST_ALERTS,
    LATEST_ORDERS,
    PartitionAggregate,
    merge,
)
from orderpipeline.core.aggregate_store import StoreUnavailable
from orderpipeline.core.logging import get_logger


class FeedUnavailable(Exception):
    """No sufficiently fresh analytics to serve, or the store does not answer: the API
    answers 503 with the message as its detail."""


@dataclass(frozen=True)
class Snapshot:
    version: int
    analytics: Analytics
    body: bytes  # `analytics` as JSON, encoded once per version: requests only copy it
    # `body` gzipped, for the clients that accept it (browsers do): several times smaller on
    # the wire and in the kernel's copies, for one compression per version.
    body_gzip: bytes
    # Up to 100 each, newest first, for /api/orders and /api/fraud-alerts.
    latest_orders: tuple[Order, ...]
    latest_alerts: tuple[FraudAlert, ...]


class AnalyticsFeed:
    def __init__(
        self,
        source: AnalyticsSource,
        refresh_interval: float = 0.25,
        max_staleness: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._source = source
        self._interval = refresh_interval
        self._max_staleness = max_staleness
        self._clock = clock
        self._snapshot: Snapshot | None = None
        self._key: tuple[Any, ...] | None = None
        self._last_ok = float("-inf")
        self._error = "not loaded yet"
        self._changed: asyncio.Condition | None = None
        self._log = get_logger("backend")

    # --- reading (the API) ---------------------------------------------------------------------

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

    def ping(self) -> None:
        """Blocking: one round trip to the store; FeedUnavailable when it does not answer."""
        try:
            self._source.ping()
        except StoreUnavailable as exc:
            raise FeedUnavailable(str(exc)) from None

    # --- refreshing (the lifespan) -------------------------------------------------------------

    def refresh(self) -> bool:
        """Read once (blocking); True when a new snapshot was built."""
        try:
            aggregates, cas_values = self._source.read_all()
        except StoreUnavailable as exc:
            self._failed("couchbase unavailable", str(exc))
            return False
        now = self._clock()
        key = (cas_values, now.strftime("%Y%m%d%H%M"))
        built = key != self._key or self._snapshot is None
        if built:
            try:
                self._snapshot = self._build(merge(aggregates.values()), now)
            except ValidationError as exc:
                # Documents that another version of analytics wrote, or damaged ones: the
                # API would break its contract with them, so they are not served, and the
                # 503 says why once the last good snapshot is too old.
                self._failed("stored analytics break the API contract", _first_error(exc))
                return False
            self._key = key
        self._last_ok = time.monotonic()
        self._error = ""
        return built

    def _build(self, total: PartitionAggregate, now: datetime) -> Snapshot:
        orders = latest_orders(total, LATEST_ORDERS)
        alerts = latest_alerts(total, LATEST_ALERTS)
        analytics = analytics_view(total, now, orders, alerts)
        body = analytics.model_dump_json().encode()
        return Snapshot(
            version=self._snapshot.version + 1 if self._snapshot else 1,
            analytics=analytics,
            body=body,
            body_gzip=gzip.compress(body, mtime=0),
            latest_orders=orders,
            latest_alerts=alerts,
        )

    def _failed(self, what: str, detail: str) -> None:
        error = f"{what}: {detail}"
        if self._error != error:
            self._log.warning(what, error=detail)
        self._error = error

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


def _first_error(exc: ValidationError) -> str:
    """`latest_orders[3].currency: string_pattern_mismatch (+1 more)`: what, not the data."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    more = exc.error_count() - 1
    return f"{where}: {first['type']}" + (f" (+{more} more)" if more else "")

"""Where the backend reads the partition aggregates: the process's one Couchbase connection."""

from __future__ import annotations

import threading
from typing import Protocol

from orderpipeline.core.aggregate import PartitionAggregate
from orderpipeline.core.aggregate_store import AnalyticsStore, PartitionId, StoreUnavailable
from orderpipeline.core.couchbase import CouchbaseHandle, CouchbaseSettings, connect
from orderpipeline.core.logging import get_logger


class AnalyticsSource(Protocol):
    """The partition aggregates; `read_all` and `ping` raise StoreUnavailable while the
    store cannot answer."""

    def start(self) -> None:
        """Begin connecting; returns at once (the app's lifespan calls it)."""

    def read_all(self) -> tuple[dict[PartitionId, PartitionAggregate], tuple[int, ...]]: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...


class CouchbaseSource:
    """The connection is opened, and retried, in a background thread, so the backend starts
    and reports not-ready while Couchbase is down."""

    def __init__(self, settings: CouchbaseSettings) -> None:
        self._settings = settings
        self._stop = threading.Event()
        self._handle: CouchbaseHandle | None = None
        self._store: AnalyticsStore | None = None
        self._error = "not connecting to couchbase yet"
        self._log = get_logger("backend")
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._error = "connecting to couchbase"
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

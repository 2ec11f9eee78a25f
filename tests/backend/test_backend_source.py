"""The Couchbase source at unit level: constructing it opens nothing."""

from __future__ import annotations

import threading

import pytest
from orderpipeline.backend.core.config import BackendSettings
from orderpipeline.backend.source import CouchbaseSource
from orderpipeline.core.aggregate_store import StoreUnavailable


def test_a_new_source_starts_no_thread_and_is_not_ready() -> None:
    source = CouchbaseSource(BackendSettings(password="x"))
    try:
        assert "couchbase-connect" not in {t.name for t in threading.enumerate()}
        with pytest.raises(StoreUnavailable, match="not connecting"):
            source.ping()
    finally:
        source.close()

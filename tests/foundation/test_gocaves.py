"""gocaves speaks the real Couchbase protocol to the real SDK."""

from __future__ import annotations

import pytest
from couchbase.exceptions import CasMismatchException, DocumentNotFoundException
from couchbase.options import ReplaceOptions
from devinfra.gocaves import CouchbaseCluster


def test_upsert_then_get_returns_the_document(couchbase: CouchbaseCluster) -> None:
    cluster = couchbase.connect()
    try:
        collection = cluster.bucket(couchbase.bucket).default_collection()
        collection.upsert("order::1", {"amount": 12.5, "country": "DE"})
        assert collection.get("order::1").content_as[dict] == {"amount": 12.5, "country": "DE"}
        with pytest.raises(DocumentNotFoundException):
            collection.get("order::missing")
    finally:
        cluster.close()


def test_replace_with_a_stale_cas_is_rejected(couchbase: CouchbaseCluster) -> None:
    cluster = couchbase.connect()
    try:
        collection = cluster.bucket(couchbase.bucket).default_collection()
        first = collection.upsert("counter", {"n": 1})
        collection.replace("counter", {"n": 2}, ReplaceOptions(cas=first.cas))
        with pytest.raises(CasMismatchException):
            collection.replace("counter", {"n": 3}, ReplaceOptions(cas=first.cas))
        assert collection.get("counter").content_as[dict] == {"n": 2}
    finally:
        cluster.close()


def test_each_test_gets_a_fresh_cluster(couchbase: CouchbaseCluster) -> None:
    cluster = couchbase.connect()
    try:
        collection = cluster.bucket(couchbase.bucket).default_collection()
        with pytest.raises(DocumentNotFoundException):
            collection.get("order::1")
    finally:
        cluster.close()

"""Faults while orders flow, on the real broker and gocaves with the real services as
processes: nothing acknowledged is lost, nothing is counted twice, alerts and payments are
complete. Small sizes here; bench/chaos.py runs the same scenarios at the issue's sizes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from devinfra.gocaves import Gocaves
from devinfra.kafka import KafkaBroker

from .harness import Report
from .scenarios import (
    Size,
    broker_kill,
    consumer_kills,
    couchbase_outage,
    killed_in_transaction,
    producer_sigkill,
    producer_sigterm,
    rebalance,
    zombie,
)

pytestmark = [pytest.mark.chaos, pytest.mark.kafka, pytest.mark.couchbase]

SMALL = Size(orders=1500, rate=150, kills=2, outage_s=10, broker_down_s=3, settle_s=120)


def assert_nothing_lost_or_doubled(report: Report) -> None:
    print(report.line())  # the figures, with -s or on failure
    assert report.produced > 0
    assert report.lost == 0, report.line()
    # Exactly once on every output topic (transactions, read back with read_committed).
    assert report.transactions
    assert report.alerts_duplicates == 0, report.line()
    assert report.payments_duplicates == 0, report.line()
    assert report.totals_records > 0 and report.totals_duplicates == 0, report.line()
    assert report.in_kafka_twice == 0, report.line()
    assert report.counted_twice == 0, report.line()
    assert report.aggregates_exact, report.line()
    assert report.stored == report.produced, report.line()
    assert (report.alerts_seen, report.alerts_unexpected) == (report.alerts_expected, 0)
    assert (report.payments_seen, report.payments_unexpected) == (report.payments_expected, 0)
    assert report.ok()


@pytest.fixture
def own_broker(tmp_path: Path, toolchain: Any) -> Iterator[KafkaBroker]:
    """A broker this test may kill without disturbing the session's."""
    with KafkaBroker(tmp_path / "kafka", toolchain=toolchain) as broker:
        yield broker


@pytest.fixture
def own_gocaves(tmp_path: Path, toolchain: Any) -> Iterator[Gocaves]:
    """A gocaves this test may pause without disturbing the session's."""
    with Gocaves(tmp_path / "gocaves", toolchain=toolchain) as server:
        yield server


def test_broker_sigkill_and_restart_loses_and_doubles_nothing(
    own_broker: KafkaBroker, couchbase: Any, tmp_path: Path
) -> None:
    report = broker_kill(own_broker, couchbase, tmp_path, Size(**{**SMALL.__dict__, "kills": 1}))
    assert_nothing_lost_or_doubled(report)


def test_consumers_sigkilled_at_random_moments_lose_and_double_nothing(
    kafka: Any, couchbase: Any, tmp_path: Path
) -> None:
    report = consumer_kills(kafka, couchbase, tmp_path, SMALL)
    assert_nothing_lost_or_doubled(report)


def test_couchbase_outage_backs_off_serves_503_then_recovers_exactly(
    kafka: Any, own_gocaves: Gocaves, tmp_path: Path
) -> None:
    couchbase = own_gocaves.create_cluster(bucket="order_analytics")
    report, seen, after = couchbase_outage(kafka, own_gocaves, couchbase, tmp_path, SMALL)
    print(seen, after)
    # Analytics: backed off (a few retries, not a tight loop), same process throughout, and
    # committed nothing while Couchbase was away.
    assert seen.errors_metric > 0
    assert 1 <= seen.backoff_lines <= 12, seen
    assert len(seen.analytics_pids) == 1 and -1 not in seen.analytics_pids
    assert after["analytics_starts"] == 1 and after["analytics_alive"]
    assert not seen.committed_moved
    # Backend: not ready and 503 with a reason meanwhile, then back by itself.
    assert 503 in seen.readyz
    assert 503 in seen.api and "couchbase" in seen.api_detail.lower(), seen
    assert "couchbase" in seen.readyz_detail.lower(), seen
    assert not seen.api - {200, 503} and not seen.readyz - {200, 503}
    assert after["backend_alive"]
    assert after["api_orders"] == report.stored
    assert_nothing_lost_or_doubled(report)


def test_analytics_scaled_1_3_1_while_orders_flow_counts_exactly(
    kafka: Any, couchbase: Any, tmp_path: Path
) -> None:
    report, exit_codes = rebalance(kafka, couchbase, tmp_path, SMALL)
    assert exit_codes == [0, 0]
    assert_nothing_lost_or_doubled(report)


def test_producer_sigterm_every_acknowledged_order_is_in_kafka_once(
    kafka: Any, couchbase: Any, tmp_path: Path
) -> None:
    report, code = producer_sigterm(kafka, couchbase, tmp_path, Size(orders=3000, rate=1000))
    print(report.line())
    assert code == 0
    assert report.produced >= 3000
    # What the producer says it delivered is exactly the set of ids on the topic.
    assert report.producer_reported == report.in_kafka == report.produced, report.line()
    assert report.in_kafka_twice == 0
    assert report.lost == 0


def test_producer_sigkilled_mid_burst_every_acknowledged_order_is_stored_once(
    kafka: Any, couchbase: Any, tmp_path: Path
) -> None:
    report = producer_sigkill(kafka, couchbase, tmp_path, Size(orders=1500, rate=300))
    assert_nothing_lost_or_doubled(report)


def test_a_consumer_killed_while_its_transaction_is_open_loses_and_doubles_nothing(
    kafka: Any, couchbase: Any, tmp_path: Path
) -> None:
    report = killed_in_transaction(kafka, couchbase, tmp_path, SMALL)
    assert_nothing_lost_or_doubled(report)


def test_a_zombie_consumer_resumed_after_its_replacement_took_over_is_fenced(
    kafka: Any, couchbase: Any, tmp_path: Path
) -> None:
    # The scenario itself fails unless the resumed zombie aborted its held transaction or
    # exited within 60 s; no duplicate on any output topic proves its late writes invisible.
    report = zombie(kafka, couchbase, tmp_path, SMALL)
    assert_nothing_lost_or_doubled(report)

"""The pure aggregate math: exact, independent of batching, and idempotent under redelivery."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st
from orderpipeline.core.aggregate import (
    LATEST_ORDERS,
    MINUTES_KEPT,
    Bucket,
    PartitionAggregate,
    Record,
    apply_batch,
    combine,
    from_document,
    merge,
    minute_key,
    money,
    to_document,
)
from orderpipeline.core.order import Order, format_timestamp

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
# Enough examples to find batching and ordering bugs, few enough to keep the suite fast.
FAST = settings(max_examples=60, deadline=None)


def _order(i: int, fields: tuple[int, int, str, str, int]) -> Order:
    cents, customer, country, status, ms = fields
    return Order(
        order_id=f"ord_{i:05d}",
        customer_id=customer,
        amount=cents / 100,
        currency="USD",
        country=country,
        status=status,
        created_at=T0 + timedelta(milliseconds=ms),
        source="test",
    )


_FIELDS = st.tuples(
    st.integers(0, 1_000_000),
    st.integers(0, 10_000),
    st.sampled_from(["US", "CA", "DE", "FR", "IN"]),
    st.sampled_from(["CREATED", "PAID", "SHIPPED"]),
    st.integers(0, 3 * 3600 * 1000),
)


def orders(max_size: int = 60) -> st.SearchStrategy[list[Order]]:
    """Orders over three hours (more than MINUTES_KEPT), unique ids."""
    return st.lists(_FIELDS, max_size=max_size).map(
        lambda rows: [_order(i, row) for i, row in enumerate(rows)]
    )


def records_of(batch: list[Order], first_offset: int = 0) -> list[Record]:
    return [
        Record(
            offset=first_offset + i,
            order=o,
            alert_reason="HIGH_AMOUNT_RISKY_COUNTRY" if o.amount > 300 else None,
            payment=i % 3 == 0,
        )
        for i, o in enumerate(batch)
    ]


def split(items: list[Record], cuts: list[int]) -> list[list[Record]]:
    bounds = sorted({0, len(items), *(c % (len(items) + 1) for c in cuts)})
    return [items[a:b] for a, b in itertools.pairwise(bounds)]


def apply_all(
    batches: list[list[Record]], start: PartitionAggregate | None = None
) -> PartitionAggregate:
    agg = start or PartitionAggregate()
    for batch in batches:
        agg = apply_batch(agg, batch)
    return agg


@FAST
@given(orders(), st.lists(st.integers(0, 200), max_size=6))
def test_result_does_not_depend_on_how_messages_are_batched(
    batch: list[Order], cuts: list[int]
) -> None:
    records = records_of(batch)
    assert apply_all(split(records, cuts)) == apply_batch(PartitionAggregate(), records)


@FAST
@given(orders(), st.integers(0, 200))
def test_a_batch_summed_apart_and_combined_equals_it_applied_to_its_base(
    batch: list[Order], cut: int
) -> None:
    records = records_of(batch)
    head, tail = records[: cut % (len(records) + 1)], records[cut % (len(records) + 1) :]
    base = apply_batch(PartitionAggregate(), head)
    delta = apply_batch(PartitionAggregate(next_offset=base.next_offset), tail)
    assert combine(base, delta) == apply_batch(base, tail)


@FAST
@given(orders(), st.lists(st.integers(0, 200), max_size=6), st.data())
def test_redelivered_messages_change_nothing(
    batch: list[Order], cuts: list[int], data: st.DataObject
) -> None:
    records = records_of(batch)
    once = apply_batch(PartitionAggregate(), records)
    # Replay from any earlier offset, in any batching: what a crash or offset reset causes.
    replay_from = data.draw(st.integers(0, len(records)))
    replayed = apply_all(split(records[replay_from:], cuts), start=once)
    assert replayed == once
    # A consumer that crashed after its first batches and starts over from offset 0.
    head = data.draw(st.integers(0, len(records)))
    restarted = apply_all(
        split(records, cuts), start=apply_batch(PartitionAggregate(), records[:head])
    )
    assert restarted == once


@FAST
@given(orders())
def test_totals_equal_an_independent_computation(batch: list[Order]) -> None:
    agg = apply_batch(PartitionAggregate(), records_of(batch))
    assert agg.orders == len(batch)
    assert agg.sales == sum((Decimal(str(o.amount)) for o in batch), Decimal(0))
    assert agg.fraud_alerts == sum(1 for o in batch if o.amount > 300)
    assert agg.payments == sum(1 for i in range(len(batch)) if i % 3 == 0)
    assert agg.next_offset == len(batch)
    assert agg.by_status == dict(Counter(o.status for o in batch))
    assert {c: b.orders for c, b in agg.by_country.items()} == dict(
        Counter(o.country for o in batch)
    )
    for country, bucket in agg.by_country.items():
        expected = sum((money(o.amount) for o in batch if o.country == country), Decimal(0))
        assert bucket.sales == expected


@FAST
@given(orders(max_size=LATEST_ORDERS + 40))
def test_latest_orders_are_the_newest_ones_newest_first(batch: list[Order]) -> None:
    agg = apply_batch(PartitionAggregate(), records_of(batch))
    expected = sorted(batch, key=lambda o: (o.created_at, o.order_id), reverse=True)[:LATEST_ORDERS]
    assert [o["order_id"] for o in agg.latest_orders] == [o.order_id for o in expected]
    assert all(len(a) == 5 for a in agg.latest_alerts)


@FAST
@given(orders())
def test_per_minute_keeps_exact_buckets_of_the_newest_minutes(batch: list[Order]) -> None:
    agg = apply_batch(PartitionAggregate(), records_of(batch))
    if not batch:
        assert agg.per_minute == {}
        return
    newest = max(o.created_at for o in batch).replace(second=0, microsecond=0)
    window = {minute_key(newest - timedelta(minutes=i)) for i in range(MINUTES_KEPT)}
    expected: dict[str, Bucket] = {}
    for o in batch:
        key = minute_key(o.created_at)
        if key in window:
            expected[key] = expected.get(key, Bucket()).add(money(o.amount))
    assert agg.per_minute == expected


@FAST
@given(orders(), st.lists(st.integers(0, 3), max_size=80))
def test_merging_partitions_equals_aggregating_everything(
    batch: list[Order], assignment: list[int]
) -> None:
    records = records_of(batch)
    partitions: dict[int, list[Record]] = {}
    for i, record in enumerate(records):
        partitions.setdefault(assignment[i] if i < len(assignment) else 0, []).append(record)
    merged = merge(apply_batch(PartitionAggregate(), rs) for rs in partitions.values())
    whole = apply_batch(PartitionAggregate(), records)
    assert merged.orders == whole.orders
    assert merged.sales == whole.sales
    assert merged.by_country == whole.by_country
    assert merged.by_status == whole.by_status
    assert merged.latest_orders == whole.latest_orders
    assert merged.fraud_alerts == whole.fraud_alerts
    assert merged.payments == whole.payments


@FAST
@given(orders())
def test_document_round_trip_is_lossless_and_json(batch: list[Order]) -> None:
    agg = apply_batch(PartitionAggregate(), records_of(batch))
    doc = json.loads(json.dumps(to_document(agg, "orders", 2)))
    assert from_document(doc) == agg


def test_records_without_an_order_only_move_the_offset() -> None:
    agg = apply_batch(PartitionAggregate(), [Record(offset=7), Record(offset=8)])
    assert agg == PartitionAggregate(next_offset=9)


def test_money_is_the_decimal_the_json_number_denotes() -> None:
    assert money(0.1) + money(0.2) == Decimal("0.3")
    assert money(312.5) == Decimal("312.5")


_ANY_TIME = st.builds(
    lambda dt, offset: dt.replace(tzinfo=timezone(timedelta(minutes=offset))),
    st.datetimes(min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(-14 * 60, 14 * 60),
)


@FAST
@given(st.lists(_ANY_TIME, min_size=1, max_size=30))
def test_minutes_and_recency_follow_the_timestamp_text_in_any_zone(times: list[datetime]) -> None:
    """apply_batch buckets and ranks by milliseconds since the epoch (for speed): the same
    as minute_key and the created_at text (UTC, truncated to milliseconds) would."""
    batch = [
        Order(
            order_id=f"ord_{i % 4}{i:03d}",
            customer_id=1,
            amount=1.0,
            currency="USD",
            country="DE",
            status="CREATED",
            created_at=t,
        )
        for i, t in enumerate(times)
    ]
    agg = apply_batch(PartitionAggregate(), records_of(batch))
    minutes = Counter(minute_key(o.created_at) for o in batch)
    newest = max(minutes)
    assert {k: b.orders for k, b in agg.per_minute.items()} == {
        k: n for k, n in minutes.items() if k in agg.per_minute
    }
    assert newest in agg.per_minute
    by_text = sorted(
        batch, key=lambda o: (format_timestamp(o.created_at), o.order_id), reverse=True
    )
    assert [o["order_id"] for o in agg.latest_orders] == [o.order_id for o in by_text]

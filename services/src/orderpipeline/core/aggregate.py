"""The aggregate math of one partition, pure: no I/O, no clock.

A `PartitionAggregate` summarises every message of one Kafka partition up to `next_offset`.
`apply_batch` skips messages below `next_offset`, so applying a redelivered message again
changes nothing: this, plus a CAS-guarded write of the aggregate with its offset, is what makes
the analytics effect exactly-once. The result of applying a set of messages does not depend on
how they were split into batches (property-tested).

Money is summed as `Decimal` of the amount's shortest repr and stored as a string, so totals are
exact and identical whatever order the orders arrive in.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from orderpipeline.core.order import Order, format_timestamp

# The API shows the newest 50 orders and lets a client ask for up to 100.
LATEST_ORDERS = 100
LATEST_ALERTS = 100
# Minute buckets kept per partition: the API shows the last 60; the rest absorbs clock skew
# between producers and readers.
MINUTES_KEPT = 120
DOC_TYPE = "orderpipeline.analytics.partition/v1"

JsonDict = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed message, already classified by the consumer.

    `order` is set for an order that counts (valid and not a duplicate of an order stored from
    another message); `alert_reason` when the fraud rule flags it; `payment` for a payment that
    counts. A record with none of them (dead-lettered, duplicate) only moves the offset.
    """

    offset: int
    order: Order | None = None
    alert_reason: str | None = None
    payment: bool = False


@dataclass(frozen=True, slots=True)
class Bucket:
    """Orders and their sales in some group (a country, a minute)."""

    orders: int = 0
    sales: Decimal = Decimal(0)

    def add(self, amount: Decimal) -> Bucket:
        return Bucket(self.orders + 1, self.sales + amount)

    def __add__(self, other: Bucket) -> Bucket:
        return Bucket(self.orders + other.orders, self.sales + other.sales)


@dataclass(frozen=True)
class PartitionAggregate:
    """Everything counted from one partition's messages below `next_offset`."""

    next_offset: int = 0
    orders: int = 0
    sales: Decimal = Decimal(0)
    fraud_alerts: int = 0
    payments: int = 0
    by_country: dict[str, Bucket] = field(default_factory=dict)
    by_status: dict[str, int] = field(default_factory=dict)
    per_minute: dict[str, Bucket] = field(default_factory=dict)
    # Newest first, as the JSON the API returns.
    latest_orders: tuple[JsonDict, ...] = ()
    latest_alerts: tuple[JsonDict, ...] = ()


def money(amount: float) -> Decimal:
    """The exact decimal a JSON amount denotes (`312.5` -> Decimal('312.5'))."""
    return Decimal(repr(amount))


def minute_key(created_at: datetime) -> str:
    """`2026-11-27T03:40:00Z`: the UTC minute an order belongs to (sorts chronologically)."""
    return created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:00Z")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_MS_PER_MINUTE = 60_000
# minute_key by minute since the epoch. An order's minute costs one datetime subtraction and
# a dict lookup instead of astimezone + strftime (0.4 against 2.5 us an order, a tenth of
# apply_batch). Bounded: cleared when full (orders span a few minutes at a time).
_MINUTE_KEYS: dict[int, str] = {}
_MINUTE_KEYS_MAX = 4096


def _epoch_ms(created_at: datetime) -> int:
    """Milliseconds since the epoch, floored: orders in the same millisecond of
    `format_timestamp` (which truncates) compare equal, so ordering by it is ordering by the
    timestamp text (fixed width for every year), at a fraction of the cost."""
    return (created_at - _EPOCH) // _MS


def _minute_key_of(epoch_ms: int) -> str:
    """minute_key of a time given as `_epoch_ms` (the same string, cached)."""
    minute = epoch_ms // _MS_PER_MINUTE
    key = _MINUTE_KEYS.get(minute)
    if key is None:
        if len(_MINUTE_KEYS) >= _MINUTE_KEYS_MAX:
            _MINUTE_KEYS.clear()
        key = _MINUTE_KEYS[minute] = minute_key(_EPOCH + timedelta(minutes=minute))
    return key


def _recency(item: JsonDict) -> tuple[str, str]:
    # created_at is always the fixed-width `...T03:40:00.123Z` form, so strings sort by time;
    # order_id breaks ties deterministically.
    return (str(item["created_at"]), str(item["order_id"]))


def newest(items: Iterable[JsonDict], limit: int) -> tuple[JsonDict, ...]:
    """The `limit` most recent items, newest first, deduplicated by order_id."""
    unique = {str(item["order_id"]): item for item in items}
    return tuple(heapq.nlargest(limit, unique.values(), key=_recency))


def _dump_newest(orders: list[tuple[int, str, Order]]) -> list[JsonDict]:
    """The JSON of the batch's newest orders only (given as (`_epoch_ms`, order_id, order)):
    dumping every order would cost more than the rest of the aggregation."""
    top = heapq.nlargest(LATEST_ORDERS, orders, key=_recency_key)
    return [order.model_dump(mode="json") for _, _, order in top]


def _recency_key(item: tuple[int, str, Order]) -> tuple[int, str]:
    return item[0], item[1]


def alert_of(order: Order, reason: str) -> JsonDict:
    """The fraud alert item the API shows for a flagged order."""
    return {
        "order_id": order.order_id,
        "reason": reason,
        "amount": order.amount,
        "country": order.country,
        # What the order's JSON says (its serializer), without dumping the whole order.
        "created_at": format_timestamp(order.created_at),
    }


def _prune_minutes(per_minute: dict[str, Bucket]) -> dict[str, Bucket]:
    """Keep the MINUTES_KEPT minutes up to the newest one seen (data time, not wall clock, so
    the result depends only on which orders were applied)."""
    if not per_minute:
        return per_minute
    newest_minute = datetime.strptime(max(per_minute), "%Y-%m-%dT%H:%M:00Z")
    cutoff = (newest_minute - timedelta(minutes=MINUTES_KEPT - 1)).strftime("%Y-%m-%dT%H:%M:00Z")
    return {k: v for k, v in per_minute.items() if k >= cutoff}


def apply_batch(agg: PartitionAggregate, records: Sequence[Record]) -> PartitionAggregate:
    """Return `agg` with `records` applied; records below `agg.next_offset` are skipped."""
    next_offset = agg.next_offset
    fresh = [r for r in records if r.offset >= next_offset]
    if not fresh:
        return agg
    orders, sales, alerts, payments = agg.orders, agg.sales, agg.fraud_alerts, agg.payments
    # Running [orders, sales] per country and minute, turned into Buckets once at the end:
    # a new frozen Bucket per order and group cost more than the sums themselves. Each sum
    # still adds the same amounts in the same order as before (Decimal sums stay exact).
    countries: dict[str, list[Any]] = {k: [b.orders, b.sales] for k, b in agg.by_country.items()}
    minutes: dict[str, list[Any]] = {k: [b.orders, b.sales] for k, b in agg.per_minute.items()}
    by_status = dict(agg.by_status)
    new_orders: list[tuple[int, str, Order]] = []
    new_alerts: list[JsonDict] = []
    for record in fresh:
        if record.payment:
            payments += 1
        order = record.order
        if order is None:
            continue
        amount = money(order.amount)
        orders += 1
        sales += amount
        group = countries.get(order.country)
        if group is None:
            group = countries[order.country] = [0, Decimal(0)]
        group[0] += 1
        group[1] += amount
        status = order.status
        by_status[status] = by_status.get(status, 0) + 1
        epoch_ms = _epoch_ms(order.created_at)
        minute = _minute_key_of(epoch_ms)
        group = minutes.get(minute)
        if group is None:
            group = minutes[minute] = [0, Decimal(0)]
        group[0] += 1
        group[1] += amount
        new_orders.append((epoch_ms, order.order_id, order))
        if record.alert_reason is not None:
            alerts += 1
            new_alerts.append(alert_of(order, record.alert_reason))
    return replace(
        agg,
        next_offset=max(next_offset, max(r.offset for r in fresh) + 1),
        orders=orders,
        sales=sales,
        fraud_alerts=alerts,
        payments=payments,
        by_country=_buckets(countries, agg.by_country),
        by_status=by_status,
        per_minute=_prune_minutes(_buckets(minutes, agg.per_minute)),
        latest_orders=newest([*agg.latest_orders, *_dump_newest(new_orders)], LATEST_ORDERS)
        if new_orders
        else agg.latest_orders,
        latest_alerts=newest([*agg.latest_alerts, *new_alerts], LATEST_ALERTS)
        if new_alerts
        else agg.latest_alerts,
    )


def _buckets(sums: dict[str, list[Any]], before: dict[str, Bucket]) -> dict[str, Bucket]:
    """`sums` as Buckets, reusing the ones that did not change."""
    out: dict[str, Bucket] = {}
    for key, (count, total) in sums.items():
        old = before.get(key)
        out[key] = old if old is not None and old.orders == count else Bucket(count, total)
    return out


def merge(aggs: Iterable[PartitionAggregate]) -> PartitionAggregate:
    """Sum the aggregates of several partitions (next_offset is meaningless in the result)."""
    total = PartitionAggregate()
    by_country: dict[str, Bucket] = {}
    by_status: dict[str, int] = {}
    per_minute: dict[str, Bucket] = {}
    latest_orders: list[JsonDict] = []
    latest_alerts: list[JsonDict] = []
    orders = alerts = payments = 0
    sales = Decimal(0)
    for agg in aggs:
        orders += agg.orders
        sales += agg.sales
        alerts += agg.fraud_alerts
        payments += agg.payments
        for country, bucket in agg.by_country.items():
            by_country[country] = by_country.get(country, Bucket()) + bucket
        for status, count in agg.by_status.items():
            by_status[status] = by_status.get(status, 0) + count
        for minute, bucket in agg.per_minute.items():
            per_minute[minute] = per_minute.get(minute, Bucket()) + bucket
        latest_orders.extend(agg.latest_orders)
        latest_alerts.extend(agg.latest_alerts)
    return replace(
        total,
        orders=orders,
        sales=sales,
        fraud_alerts=alerts,
        payments=payments,
        by_country=by_country,
        by_status=by_status,
        per_minute=per_minute,
        latest_orders=newest(latest_orders, LATEST_ORDERS),
        latest_alerts=newest(latest_alerts, LATEST_ALERTS),
    )


def combine(base: PartitionAggregate, delta: PartitionAggregate) -> PartitionAggregate:
    """`base` with `delta` added, where `delta` is `apply_batch` of some records onto an empty
    aggregate at `base.next_offset`: the same as applying those records to `base` itself
    (property-tested). So the records of a batch can be summed before their base is known
    (analytics sums a batch while the one before it is still being written)."""
    if delta.next_offset <= base.next_offset:
        return base
    summed = merge([base, delta])
    return replace(
        summed,
        next_offset=delta.next_offset,
        per_minute=_prune_minutes(summed.per_minute),
    )


# --- the Couchbase document form ---------------------------------------------------------------


def _bucket_to_doc(bucket: Bucket) -> JsonDict:
    return {"orders": bucket.orders, "sales": str(bucket.sales)}


def _bucket_from_doc(doc: JsonDict) -> Bucket:
    return Bucket(int(doc["orders"]), Decimal(str(doc["sales"])))


def to_document(agg: PartitionAggregate, topic: str, partition: int) -> JsonDict:
    """The JSON document stored for one partition."""
    return {
        "type": DOC_TYPE,
        "topic": topic,
        "partition": partition,
        "next_offset": agg.next_offset,
        "orders": agg.orders,
        "sales": str(agg.sales),
        "fraud_alerts": agg.fraud_alerts,
        "payments": agg.payments,
        "by_country": {k: _bucket_to_doc(v) for k, v in sorted(agg.by_country.items())},
        "by_status": dict(sorted(agg.by_status.items())),
        "per_minute": {k: _bucket_to_doc(v) for k, v in sorted(agg.per_minute.items())},
        "latest_orders": list(agg.latest_orders),
        "latest_alerts": list(agg.latest_alerts),
    }


def from_document(doc: JsonDict) -> PartitionAggregate:
    """Parse a stored partition document (raises KeyError/ValueError if it is not one)."""
    if doc.get("type") != DOC_TYPE:
        raise ValueError(f"not an analytics partition document: type={doc.get('type')!r}")
    return PartitionAggregate(
        next_offset=int(doc["next_offset"]),
        orders=int(doc["orders"]),
        sales=Decimal(str(doc["sales"])),
        fraud_alerts=int(doc["fraud_alerts"]),
        payments=int(doc["payments"]),
        by_country={k: _bucket_from_doc(v) for k, v in doc["by_country"].items()},
        by_status={k: int(v) for k, v in doc["by_status"].items()},
        per_minute={k: _bucket_from_doc(v) for k, v in doc["per_minute"].items()},
        latest_orders=tuple(doc["latest_orders"]),
        latest_alerts=tuple(doc["latest_alerts"]),
    )

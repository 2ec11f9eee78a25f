"""The API's bodies built from the merged aggregates: pure, the clock is a parameter."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from orderpipeline.backend.schemas import (
    Analytics,
    CountryRow,
    FraudAlert,
    MinuteRow,
    Order,
    StatusRow,
    Totals,
)
from orderpipeline.core.aggregate import Bucket, PartitionAggregate, minute_key

LATEST_IN_ANALYTICS = 50
MINUTES_SHOWN = 60


def _money(value: Decimal) -> float:
    # The nearest float to the exact decimal sum: a JSON number, as the contract says.
    return float(value)


def latest_orders(total: PartitionAggregate, limit: int) -> tuple[Order, ...]:
    """The `limit` latest orders the aggregates keep (up to 100), newest first, validated:
    stored documents are input like any other.

    Validated as the JSON they were stored as: Order is strict, and from JSON `created_at`
    is an ISO 8601 string (from Python it must be a datetime). Once per snapshot, not per
    request."""
    return tuple(
        Order.model_validate_json(json.dumps(order)) for order in total.latest_orders[:limit]
    )


def latest_alerts(total: PartitionAggregate, limit: int) -> tuple[FraudAlert, ...]:
    """The `limit` latest fraud alerts the aggregates keep (up to 100), newest first."""
    return tuple(FraudAlert.model_validate(alert) for alert in total.latest_alerts[:limit])


def per_minute(buckets: dict[str, Bucket], now: datetime) -> list[MinuteRow]:
    """The last MINUTES_SHOWN minutes up to `now`'s, oldest first, empty minutes included."""
    current = now.astimezone(UTC).replace(second=0, microsecond=0)
    rows = []
    for back in range(MINUTES_SHOWN - 1, -1, -1):
        key = minute_key(current - timedelta(minutes=back))
        bucket = buckets.get(key, Bucket())
        rows.append(MinuteRow(minute=key, orders=bucket.orders, sales=_money(bucket.sales)))
    return rows


def analytics_view(
    total: PartitionAggregate,
    now: datetime,
    orders: Sequence[Order],
    alerts: Sequence[FraudAlert],
) -> Analytics:
    """The `/api/analytics` body (docs/contracts.md).

    `orders` and `alerts` are the latest ones already validated (`latest_orders`,
    `latest_alerts`), newest first: the feed serves up to 100 of each on their own routes and
    validates them once per snapshot; this body shows the first LATEST_IN_ANALYTICS."""
    average = total.sales / total.orders if total.orders else Decimal(0)
    return Analytics(
        status="ok",
        orders=list(orders[:LATEST_IN_ANALYTICS]),
        totals=Totals(
            orders=total.orders,
            sales=_money(total.sales),
            average_order_value=round(_money(average), 2),
            fraud_alerts=total.fraud_alerts,
            payments=total.payments,
        ),
        by_country=[
            CountryRow(country=country, orders=b.orders, sales=_money(b.sales))
            for country, b in sorted(
                total.by_country.items(), key=lambda kv: (-kv[1].orders, kv[0])
            )
        ],
        by_status=[
            StatusRow(status=status, orders=n)
            for status, n in sorted(total.by_status.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        per_minute=per_minute(total.per_minute, now),
        latest_fraud_alerts=list(alerts[:LATEST_IN_ANALYTICS]),
        updated_at=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )

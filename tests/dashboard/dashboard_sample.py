"""A deterministic, realistic analytics document in the shape of docs/contracts.md."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from orderpipeline.core.order import format_timestamp

COUNTRIES = ["US", "CA", "DE", "IN", "GB", "FR", "CN", "BR"]


def sample_analytics(
    now: datetime | None = None, orders: int = 50, seed: int = 7
) -> dict[str, Any]:
    rng = random.Random(seed)
    now = now or datetime.now(UTC).replace(microsecond=0)
    latest: list[dict[str, Any]] = []
    for i in range(orders):
        created = now - timedelta(seconds=i * 3 + rng.random())
        latest.append(
            {
                "order_id": f"ord_01JD3{9999 - i:05d}{rng.randrange(16**6):06X}",
                "customer_id": rng.randint(1000, 9999),
                "amount": round(rng.uniform(5, 500), 2),
                "currency": "USD",
                "country": rng.choice(COUNTRIES),
                "status": "CREATED",
                "created_at": format_timestamp(created),
                "source": "order-service",
            }
        )
    counts = {country: rng.randint(150, 900) for country in COUNTRIES}
    sales = {country: round(n * rng.uniform(120, 280), 2) for country, n in counts.items()}
    by_country = [{"country": c, "orders": counts[c], "sales": sales[c]} for c in COUNTRIES]
    total_orders = sum(counts.values())
    total_sales = round(sum(sales.values()), 2)
    start = now.replace(second=0) - timedelta(minutes=59)
    per_minute = []
    for m in range(60):
        n = int(60 + 25 * rng.random() + (m * 0.8))
        per_minute.append(
            {
                "minute": (start + timedelta(minutes=m)).isoformat().replace("+00:00", "Z"),
                "orders": n,
                "sales": round(n * 140.0, 2),
            }
        )
    risky = [o for o in latest if float(o["amount"]) > 300 and o["country"] not in ("US", "CA")]
    alerts = [
        {
            "order_id": o["order_id"],
            "reason": "HIGH_AMOUNT_RISKY_COUNTRY",
            "amount": o["amount"],
            "country": o["country"],
            "created_at": o["created_at"],
        }
        for o in risky[:10]
    ]
    return {
        "status": "ok",
        "orders": latest,
        "totals": {
            "orders": total_orders,
            "sales": total_sales,
            "average_order_value": round(total_sales / total_orders, 2),
            "fraud_alerts": int(total_orders * 0.08),
            "payments": total_orders - 3,
        },
        "by_country": by_country,
        "by_status": [{"status": "CREATED", "orders": total_orders}],
        "per_minute": per_minute,
        "latest_fraud_alerts": alerts,
        "updated_at": now.isoformat().replace("+00:00", "Z"),
    }

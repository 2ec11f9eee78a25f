"""The API's bodies, the one source of the contract.

The backend builds its answers from these models (view.py), FastAPI's OpenAPI document is
generated from them, and the dashboard's TypeScript types are generated from that document
(`make api-types`; tests/dashboard fails when the committed types are stale). An order is
the topics' own `Order` (core/order.py): the API serves orders exactly as they were produced.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from orderpipeline.core.order import Order

__all__ = [
    "AlertsPage",
    "Analytics",
    "CountryRow",
    "ErrorBody",
    "FraudAlert",
    "MinuteRow",
    "Order",
    "OrdersPage",
    "Status",
    "StatusRow",
    "Totals",
]


class _Body(BaseModel):
    # Bodies are built once per snapshot and then only read.
    model_config = ConfigDict(frozen=True)


class Totals(_Body):
    orders: int
    sales: float
    average_order_value: float
    fraud_alerts: int
    payments: int


class CountryRow(_Body):
    country: str
    orders: int
    sales: float


class StatusRow(_Body):
    status: str
    orders: int


class MinuteRow(_Body):
    minute: str = Field(description="The UTC minute, `2026-11-27T03:40:00Z`")
    orders: int
    sales: float


class FraudAlert(_Body):
    order_id: str
    reason: str
    amount: float
    country: str
    created_at: str


class Analytics(_Body):
    """`GET /api/analytics`, and the data of each `analytics` event of `/api/stream`."""

    status: Literal["ok"]
    orders: list[Order] = Field(description="The latest 50 orders, newest first")
    totals: Totals
    by_country: list[CountryRow]
    by_status: list[StatusRow]
    per_minute: list[MinuteRow] = Field(description="The last 60 minutes, oldest first")
    latest_fraud_alerts: list[FraudAlert] = Field(
        description="The latest 50 fraud alerts, newest first"
    )
    updated_at: str = Field(description="When the backend built it, `2026-11-27T03:40:01Z`")


class OrdersPage(_Body):
    orders: list[Order]


class AlertsPage(_Body):
    alerts: list[FraudAlert]


class Status(_Body):
    status: str


class ErrorBody(_Body):
    detail: str

"""Response models: they document the API in OpenAPI (docs/contracts.md is the source).

Routes return pre-encoded JSON for speed, so these models describe, not validate, the bodies;
tests check real responses against them.
"""

from __future__ import annotations

from pydantic import BaseModel


class OrderOut(BaseModel):
    order_id: str
    customer_id: int
    amount: float
    currency: str
    country: str
    status: str
    created_at: str
    source: str


class Totals(BaseModel):
    orders: int
    sales: float
    average_order_value: float
    fraud_alerts: int
    payments: int


class CountryRow(BaseModel):
    country: str
    orders: int
    sales: float


class StatusRow(BaseModel):
    status: str
    orders: int


class MinuteRow(BaseModel):
    minute: str
    orders: int
    sales: float


class FraudAlert(BaseModel):
    order_id: str
    reason: str
    amount: float
    country: str
    created_at: str


class Analytics(BaseModel):
    status: str
    orders: list[OrderOut]
    totals: Totals
    by_country: list[CountryRow]
    by_status: list[StatusRow]
    per_minute: list[MinuteRow]
    latest_fraud_alerts: list[FraudAlert]
    updated_at: str


class OrdersPage(BaseModel):
    orders: list[OrderOut]


class AlertsPage(BaseModel):
    alerts: list[FraudAlert]


class Status(BaseModel):
    status: str


class ErrorBody(BaseModel):
    detail: str

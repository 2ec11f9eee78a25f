"""The dashboard's data: aggregates, latest orders, latest fraud alerts.

Served from the in-memory snapshot (feed.py): no Couchbase round trip per request.
`/api/analytics` is the plain route ANALYTICS (api/plain.py: the dashboard polls it); the
pages are FastAPI routes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import HTTPConnection
from starlette.types import Receive, Scope, Send

from orderpipeline.backend.api.deps import (
    API_KEY_HEADER,
    FeedDep,
    check_api_key,
    feed_of,
    settings_of,
)
from orderpipeline.backend.api.plain import PlainRoute
from orderpipeline.backend.api.ready import send_json
from orderpipeline.backend.schemas import AlertsPage, Analytics, ErrorBody, OrdersPage

ANALYTICS_PATH = "/api/analytics"
TAGS: list[str] = ["analytics"]
UNAVAILABLE: dict[int | str, dict[str, object]] = {503: {"model": ErrorBody}}

router = APIRouter(tags=list(TAGS), responses=UNAVAILABLE)

Limit = Annotated[int, Query(ge=1, le=100, description="how many, newest first")]


async def analytics(scope: Scope, _receive: Receive, send: Send) -> None:
    """Totals over all orders, by country, by status, per minute, and the latest orders."""
    connection = HTTPConnection(scope)
    api_key = settings_of(connection).api_key
    if api_key is not None:
        check_api_key(api_key, connection.headers.get(API_KEY_HEADER))
    snapshot = feed_of(connection).current()
    await send_json(scope, send, snapshot.body, snapshot.body_gzip)


ANALYTICS = PlainRoute(
    ANALYTICS_PATH, analytics, response_model=Analytics, responses=UNAVAILABLE, tags=TAGS
)


@router.get("/orders")
async def orders(feed: FeedDep, limit: Limit = 10) -> OrdersPage:
    """The latest orders, newest first."""
    return OrdersPage(orders=list(feed.current().latest_orders[:limit]))


@router.get("/fraud-alerts")
async def fraud_alerts(feed: FeedDep, limit: Limit = 10) -> AlertsPage:
    """The latest fraud alerts (orders the fraud rule flags), newest first."""
    return AlertsPage(alerts=list(feed.current().latest_alerts[:limit]))

"""The dashboard's data: aggregates, latest orders, latest fraud alerts.

Served from the in-memory snapshot (feed.py): no Couchbase round trip per request.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from orderpipeline.backend.api.deps import FeedDep
from orderpipeline.backend.schemas import AlertsPage, Analytics, ErrorBody, OrdersPage

router = APIRouter(tags=["analytics"], responses={503: {"model": ErrorBody}})

Limit = Annotated[int, Query(ge=1, le=100, description="how many, newest first")]


def _json(body: Any) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json")


@router.get("/analytics", response_model=Analytics)
async def analytics(feed: FeedDep) -> Response:
    """Totals over all orders, by country, by status, per minute, and the latest orders."""
    return Response(feed.current().body, media_type="application/json")


@router.get("/orders", response_model=OrdersPage)
async def orders(feed: FeedDep, limit: Limit = 10) -> Response:
    """The latest orders, newest first."""
    return _json({"orders": list(feed.current().latest_orders[:limit])})


@router.get("/fraud-alerts", response_model=AlertsPage)
async def fraud_alerts(feed: FeedDep, limit: Limit = 10) -> Response:
    """The latest fraud alerts (orders the fraud rule flags), newest first."""
    return _json({"alerts": list(feed.current().latest_alerts[:limit])})

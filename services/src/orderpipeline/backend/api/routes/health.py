"""Probes: `/healthz` (the process answers), `/readyz` (Couchbase answers)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from orderpipeline.backend.api.deps import FeedDep
from orderpipeline.backend.schemas import ErrorBody, Status
from orderpipeline.core.aggregate_store import StoreUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Status)
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=Status, responses={503: {"model": ErrorBody}})
def readyz(feed: FeedDep) -> dict[str, str]:
    # A plain `def`: the KV round trip runs in the thread pool, not on the event loop.
    try:
        feed.source.ping()
    except StoreUnavailable as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from None
    return {"status": "ready"}

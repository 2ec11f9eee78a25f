"""Probes: `/healthz` (the process answers), `/readyz` (Couchbase answers)."""

from __future__ import annotations

from fastapi import APIRouter

from orderpipeline.backend.api.deps import FeedDep
from orderpipeline.backend.schemas import ErrorBody, Status

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Status:
    return Status(status="ok")


@router.get("/readyz", responses={503: {"model": ErrorBody}})
def readyz(feed: FeedDep) -> Status:
    # A plain `def`: the KV round trip runs in the thread pool, not on the event loop.
    # FeedUnavailable, when Couchbase does not answer, is the app's 503.
    feed.ping()
    return Status(status="ready")

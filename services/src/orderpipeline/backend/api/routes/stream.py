"""`/api/stream`: Server-Sent Events, one `analytics` event per new snapshot.

The first event is sent at connect; later ones as soon as the feed sees a change (it re-reads
Couchbase every BACKEND_REFRESH_INTERVAL_SECONDS). A `: keepalive` comment keeps proxies from
closing an idle stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from orderpipeline.backend.api.deps import FeedDep, SettingsDep
from orderpipeline.backend.feed import AnalyticsFeed, Snapshot
from orderpipeline.backend.schemas import ErrorBody

router = APIRouter(tags=["analytics"])


def sse_event(snapshot: Snapshot) -> bytes:
    # The JSON body has no newlines, so one `data:` line carries it.
    return b"event: analytics\ndata: " + snapshot.body + b"\n\n"


async def events(
    feed: AnalyticsFeed, first: Snapshot, keepalive: float, request: Request
) -> AsyncIterator[bytes]:
    yield sse_event(first)
    version = first.version
    while not await request.is_disconnected():
        snapshot = await feed.next_after(version, keepalive)
        if snapshot is None:
            yield b": keepalive\n\n"
            continue
        version = snapshot.version
        yield sse_event(snapshot)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": (
                "Server-Sent Events. Each event is `event: analytics` with one `data:` line "
                "holding an `Analytics` body, the same JSON as `GET /api/analytics`: one at "
                "connect, then one per new snapshot; `: keepalive` comments in between."
            ),
            "content": {
                "text/event-stream": {
                    "schema": {"type": "string"},
                    # OpenAPI 3.1 cannot type the events of a stream (3.2's itemSchema can):
                    # name the data's schema for readers and generators that look.
                    "x-sse-data": {"$ref": "#/components/schemas/Analytics"},
                }
            },
        },
        503: {"model": ErrorBody},
    },
)
async def stream(feed: FeedDep, settings: SettingsDep, request: Request) -> StreamingResponse:
    first = feed.current()  # 503 before the stream starts if there is nothing to send
    return StreamingResponse(
        events(feed, first, settings.sse_keepalive_seconds, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

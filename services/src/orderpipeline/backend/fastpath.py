"""`GET /api/analytics` answered from the snapshot's bytes, ahead of FastAPI's router.

The dashboard polls this one read-only endpoint, and its answer is already serialised
(feed.py). A py-spy profile of the backend at 100 connections showed about half of each
request's CPU in the router, dependency solving and response classes around those bytes.
This pure ASGI middleware answers exactly that request - GET, no API key configured - with
the same status, headers and body as the route; anything else, including the 503 while
the snapshot is unavailable, goes on to the app, whose route stays the documented
(OpenAPI) one and the fallback. It sits inside the metrics, body-limit and CORS middleware.
"""

from __future__ import annotations

from types import SimpleNamespace

from starlette.types import ASGIApp, Receive, Scope, Send

from orderpipeline.backend.feed import AnalyticsFeed, FeedUnavailable

_HEADERS = [(b"content-type", b"application/json")]


class AnalyticsFastPath:
    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path
        # What the metrics middleware reads from scope["route"] for its label.
        self.route = SimpleNamespace(path=path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"] == self.path
            # A test or embedding app that overrides the feed dependency gets the route.
            and not scope["app"].dependency_overrides
        ):
            feed: AnalyticsFeed | None = getattr(scope["app"].state, "feed", None)
            try:
                body = feed.current().body if feed is not None else None
            except FeedUnavailable:
                body = None
            if body is not None:
                scope["route"] = self.route
                length = (b"content-length", str(len(body)).encode())
                await send(
                    {"type": "http.response.start", "status": 200, "headers": [length, *_HEADERS]}
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

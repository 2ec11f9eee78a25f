"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from orderpipeline.backend.api.main import build_api_router
from orderpipeline.backend.api.routes import health, metrics
from orderpipeline.backend.core.config import BackendSettings
from orderpipeline.backend.fastpath import AnalyticsFastPath
from orderpipeline.backend.feed import (
    AnalyticsFeed,
    AnalyticsSource,
    CouchbaseSource,
    FeedUnavailable,
)
from orderpipeline.backend.middleware import BodyLimitMiddleware, MetricsMiddleware
from orderpipeline.backend.static import mount_dashboard

ANALYTICS_PATH = "/api/analytics"


def create_app(settings: BackendSettings, source: AnalyticsSource | None = None) -> FastAPI:
    """The app; `source` defaults to the process's Couchbase connection (opened at startup)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        feed = AnalyticsFeed(
            source or CouchbaseSource(settings),
            settings.refresh_interval_seconds,
            settings.max_staleness_seconds,
        )
        app.state.feed = feed
        task = asyncio.create_task(feed.run(), name="analytics-feed")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            feed.source.close()

    app = FastAPI(
        title="OrderPipeline backend",
        version="1.0.0",
        description="Analytics of the order pipeline, read from Couchbase (docs/contracts.md).",
        lifespan=lifespan,
    )
    app.state.settings = settings

    @app.exception_handler(FeedUnavailable)
    async def unavailable(_request: Request, exc: FeedUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(build_api_router(require_key=settings.api_key is not None))
    if settings.dashboard_dist is not None:
        mount_dashboard(app, settings.dashboard_dist)
    if settings.api_key is None:
        # Added first, so innermost: CORS, body limit and metrics still apply to it.
        app.add_middleware(AnalyticsFastPath, path=ANALYTICS_PATH)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET"],
            allow_headers=["X-API-Key"],
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    return app

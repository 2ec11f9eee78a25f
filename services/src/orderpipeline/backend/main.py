"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.telemetry import TelemetryConfig

from orderpipeline.backend.api.main import api_dependencies, include_api
from orderpipeline.backend.api.routes import health, metrics
from orderpipeline.backend.core.config import BackendSettings
from orderpipeline.backend.feed import AnalyticsFeed, FeedUnavailable
from orderpipeline.backend.middleware import BodyLimitMiddleware, MetricsMiddleware
from orderpipeline.backend.openapi import openapi_document
from orderpipeline.backend.source import AnalyticsSource, CouchbaseSource
from orderpipeline.backend.static import mount_dashboard

# The backend exports Prometheus metrics (middleware.py), not OpenTelemetry; left on, FastAPI's
# native telemetry looks for configured providers on every request.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


def create_app(settings: BackendSettings, source: AnalyticsSource | None = None) -> FastAPI:
    """The app; `source` defaults to the process's Couchbase connection, which the lifespan
    starts (in the background) and closes."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        used = source if source is not None else CouchbaseSource(settings)
        used.start()
        feed = AnalyticsFeed(
            used, settings.refresh_interval_seconds, settings.max_staleness_seconds
        )
        app.state.feed = feed
        task = asyncio.create_task(feed.run(), name="analytics-feed")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            used.close()

    app = FastAPI(
        title="OrderPipeline backend",
        version="1.0.0",
        description="Analytics of the order pipeline, read from Couchbase (docs/contracts.md).",
        lifespan=lifespan,
        telemetry=NO_TELEMETRY,
    )
    app.state.settings = settings
    require_key = settings.api_key is not None

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            app.openapi_schema = openapi_document(app, api_dependencies(require_key))
        return app.openapi_schema

    # FastAPI's documented way to extend its document (plain routes, see openapi.py).
    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(FeedUnavailable)
    async def unavailable(_request: Request, exc: FeedUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    include_api(app, require_key)
    app.include_router(health.router)
    app.include_router(metrics.router)
    if settings.dashboard_dist is not None:
        mount_dashboard(app, settings.dashboard_dist)
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

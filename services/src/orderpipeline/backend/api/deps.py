"""Typed dependencies of the routes.

All `async def`: none of them blocks, and FastAPI runs a plain `def` dependency
in its thread pool - three thread hops per request, most of a request's cost.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from orderpipeline.backend.core.config import BackendSettings
from orderpipeline.backend.feed import AnalyticsFeed


async def get_settings(request: Request) -> BackendSettings:
    settings: BackendSettings = request.app.state.settings
    return settings


async def get_feed(request: Request) -> AnalyticsFeed:
    feed: AnalyticsFeed = request.app.state.feed
    return feed


SettingsDep = Annotated[BackendSettings, Depends(get_settings)]
FeedDep = Annotated[AnalyticsFeed, Depends(get_feed)]

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False)


async def require_api_key(
    settings: SettingsDep, key: Annotated[str | None, Security(_api_key_header)]
) -> None:
    """When BACKEND_API_KEY is set, every /api/* request must carry it in X-API-Key."""
    expected = settings.api_key
    if expected is None:
        return
    if key is None or not secrets.compare_digest(
        key.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(status_code=401, detail="missing or wrong X-API-Key header")

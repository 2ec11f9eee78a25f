"""Typed dependencies of the routes, and the checks they share with the plain route.

All `async def`: none of them blocks, and FastAPI runs a plain `def` dependency
in its thread pool - three thread hops per request, most of a request's cost.
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader
from pydantic import SecretStr
from starlette.requests import HTTPConnection

from orderpipeline.backend.core.config import BackendSettings
from orderpipeline.backend.feed import AnalyticsFeed

API_KEY_HEADER = "X-API-Key"


def settings_of(connection: HTTPConnection) -> BackendSettings:
    settings: BackendSettings = connection.app.state.settings
    return settings


def feed_of(connection: HTTPConnection) -> AnalyticsFeed:
    """The app's feed, created by its lifespan."""
    feed: AnalyticsFeed = connection.app.state.feed
    return feed


def check_api_key(expected: SecretStr | None, given: str | None) -> None:
    """When BACKEND_API_KEY is set, every /api/* request must carry it in X-API-Key."""
    if expected is None:
        return
    if given is None or not secrets.compare_digest(
        given.encode(), expected.get_secret_value().encode()
    ):
        raise HTTPException(status_code=401, detail=f"missing or wrong {API_KEY_HEADER} header")


async def get_settings(request: Request) -> BackendSettings:
    return settings_of(request)


async def get_feed(request: Request) -> AnalyticsFeed:
    return feed_of(request)


SettingsDep = Annotated[BackendSettings, Depends(get_settings)]
FeedDep = Annotated[AnalyticsFeed, Depends(get_feed)]

_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)


async def require_api_key(
    settings: SettingsDep, key: Annotated[str | None, Security(_api_key_header)]
) -> None:
    check_api_key(settings.api_key, key)

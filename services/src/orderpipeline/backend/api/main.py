"""The `/api` router: every route under it needs the API key when one is configured."""

from fastapi import APIRouter, Depends

from orderpipeline.backend.api.deps import require_api_key
from orderpipeline.backend.api.routes import analytics, stream


def build_api_router(require_key: bool) -> APIRouter:
    """The `/api` routes; the key check is attached only when a key is configured,
    since resolving a dependency is a large share of a cached response's cost."""
    router = APIRouter(
        prefix="/api", dependencies=[Depends(require_api_key)] if require_key else []
    )
    router.include_router(analytics.router)
    router.include_router(stream.router)
    return router

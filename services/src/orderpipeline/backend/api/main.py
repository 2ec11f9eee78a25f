"""The `/api` router: every route under it needs the API key when one is configured."""

from fastapi import APIRouter, Depends

from orderpipeline.backend.api.deps import require_api_key
from orderpipeline.backend.api.routes import analytics, stream

api_router = APIRouter(prefix="/api", dependencies=[Depends(require_api_key)])
api_router.include_router(analytics.router)
api_router.include_router(stream.router)

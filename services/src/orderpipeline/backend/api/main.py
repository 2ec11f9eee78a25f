"""The `/api` routes: every one of them needs the API key when one is configured."""

from fastapi import APIRouter, Depends, FastAPI, params

from orderpipeline.backend.api.deps import require_api_key
from orderpipeline.backend.api.routes import analytics, stream


def api_dependencies(require_key: bool) -> list[params.Depends]:
    """The key check, attached only when a key is configured, since resolving a dependency
    is a large share of a cached response's cost."""
    return [Depends(require_api_key)] if require_key else []


def include_api(app: FastAPI, require_key: bool) -> None:
    """Adds the `/api` routes. The app tries its routes in order: the plain route the
    dashboard polls goes first."""
    app.router.routes.insert(0, analytics.ANALYTICS)
    router = APIRouter(prefix="/api", dependencies=api_dependencies(require_key))
    router.include_router(analytics.router)
    router.include_router(stream.router)
    app.include_router(router)

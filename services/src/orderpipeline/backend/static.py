"""The built dashboard served at `/` when DASHBOARD_DIST is set.

Files that exist are served as they are; any other path that is not the API gets index.html,
so the single-page app's client-side routes work on reload. `/api/...`, `/healthz`, `/readyz`,
`/metrics` and `/docs` are registered first and never shadowed.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse

RESERVED = ("api", "healthz", "readyz", "metrics", "docs", "redoc", "openapi.json")


def resolve(dist: Path, path: str) -> Path:
    """The file for `path` inside `dist`, or index.html; never a file outside `dist`."""
    root = dist.resolve()
    candidate = (root / path).resolve()
    if path and candidate.is_relative_to(root) and candidate.is_file():
        return candidate
    return root / "index.html"


def mount_dashboard(app: FastAPI, dist: Path) -> None:
    @app.get("/{path:path}", include_in_schema=False)
    async def dashboard(path: str) -> FileResponse:
        if path.split("/", 1)[0] in RESERVED:
            raise HTTPException(status_code=404, detail="Not Found")
        file = resolve(dist, path)
        # Hashed assets may be cached for long; index.html must be re-read to pick up releases.
        cache = "no-cache" if file.name == "index.html" else "public, max-age=31536000, immutable"
        return FileResponse(file, headers={"Cache-Control": cache})

"""The OpenAPI document: FastAPI's, generated from the response models (schemas.py),
with the plain routes (api/plain.py) described to it like its own.

`python -m orderpipeline.backend.openapi` prints it; the dashboard's API types are generated
from that output (`make api-types`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, params
from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute

from orderpipeline.backend.api.plain import PlainRoute


def openapi_document(app: FastAPI, dependencies: Sequence[params.Depends]) -> dict[str, Any]:
    """The app's document; `dependencies` are those every plain route applies itself."""
    routes: list[BaseRoute] = [
        route.described(dependencies) if isinstance(route, PlainRoute) else route
        for route in app.routes
    ]
    return get_openapi(
        title=app.title, version=app.version, description=app.description, routes=routes
    )


def contract_document() -> dict[str, Any]:
    """The document of the default deployment (no API key), from which the dashboard's
    types are generated: the settings' defaults, not the environment (a BACKEND_API_KEY in
    the caller's shell must not change the contract), and no credentials."""
    # Imported here: main.py imports this module.
    from orderpipeline.backend.core.config import BackendSettings
    from orderpipeline.backend.main import create_app

    return create_app(BackendSettings.model_construct()).openapi()


def main() -> int:
    json.dump(contract_document(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

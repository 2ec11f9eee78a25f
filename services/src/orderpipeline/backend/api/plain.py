"""Plain ASGI routes, documented like FastAPI's, for answers that are ready bytes.

`GET /api/analytics`, which every dashboard polls, answers with bytes encoded once per
snapshot (feed.py). What FastAPI and Starlette build around an endpoint - dependency solving,
a Request, a Response, and the exception wrapper of each route - is most of the app's work on
such a request, and the endpoint needs none of it (CPU per request through the app, in-process:
45 us as a FastAPI route under /api, 12 us as a Starlette route taking a Request and returning
a Response, 9.7 us as an ASGI endpoint; `make bench ONLY=bench.backend` for the served figures).
So the route's app is the endpoint itself: it sends the two ASGI messages (ready.py), and
raises for an error, which the app's exception handlers answer as for any route (HTTPException,
FeedUnavailable). It stays a real route of the app: it records itself in scope["route"] as
FastAPI's routes do (the metrics middleware labels requests by it), the app's middleware
applies, and `described` hands FastAPI's OpenAPI generator, which documents only its own
routes, the same endpoint with its response model.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from fastapi import params
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Scope


class PlainRoute(Route):
    """A GET route whose endpoint is a plain ASGI callable, `async (scope, receive, send)`."""

    def __init__(
        self,
        path: str,
        endpoint: ASGIApp,
        *,
        response_model: type[BaseModel],
        responses: dict[int | str, dict[str, Any]],
        tags: list[str],
    ) -> None:
        super().__init__(path, endpoint, methods=["GET"])
        # Starlette wraps a function endpoint in its request -> response adapter; this one
        # speaks ASGI itself.
        self.app = endpoint
        self.response_model = response_model
        self.responses = responses
        self.tags = tags

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope

    def described(self, dependencies: Sequence[params.Depends]) -> APIRoute:
        """This route as FastAPI documents its own; `dependencies` are those the endpoint
        applies itself (the API key), so that the document shows them. FastAPI reads a
        route's parameters from its endpoint's signature: the document's endpoint takes none
        (the ASGI one would read as three), and keeps the real one's name and docstring."""
        return APIRoute(
            self.path,
            _no_parameters,
            methods=["GET"],
            name=self.name,
            description=inspect.cleandoc(self.endpoint.__doc__ or ""),
            response_model=self.response_model,
            responses=self.responses,
            tags=list(self.tags),
            dependencies=dependencies,
        )


async def _no_parameters() -> None:
    """Stands in for a plain route's endpoint in the OpenAPI document."""

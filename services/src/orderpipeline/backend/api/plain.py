"""Plain Starlette routes, documented like FastAPI's, for answers that are ready bytes.

`GET /api/analytics`, which every dashboard polls, answers with bytes encoded once per
snapshot (feed.py). FastAPI's work around such an endpoint - its nested router, dependency
solving, response handling - costs twice what everything else in the app does (CPU per
request through the app's whole middleware stack, in-process: 45 us as a FastAPI route under
/api, 15 us as a plain route), and the endpoint needs none of it. So it is a plain route:
the endpoint takes the Request and returns the Response. It stays a real route of the app:
it records itself in scope["route"] as FastAPI's routes do (the metrics middleware labels
requests by it), the app's middleware and exception handlers apply, and `described` hands
FastAPI's OpenAPI generator, which documents only its own routes, the same endpoint with its
response model.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import params
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Scope

Endpoint = Callable[[Request], Awaitable[Response]]


class PlainRoute(Route):
    """A GET route whose endpoint takes the Request and returns the Response itself."""

    def __init__(
        self,
        path: str,
        endpoint: Endpoint,
        *,
        response_model: type[BaseModel],
        responses: dict[int | str, dict[str, Any]],
        tags: list[str],
    ) -> None:
        super().__init__(path, endpoint, methods=["GET"])
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
        applies itself (the API key), so that the document shows them."""
        return APIRoute(
            self.path,
            self.endpoint,
            methods=["GET"],
            response_model=self.response_model,
            responses=self.responses,
            tags=list(self.tags),
            dependencies=dependencies,
        )

"""Pure ASGI middleware (no per-request task or body buffering, unlike BaseHTTPMiddleware):
request metrics and a bound on request bodies."""

from __future__ import annotations

import functools
import json
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "orderpipeline_backend_requests", "HTTP requests by route and status", ["route", "status"]
)
LATENCY = Histogram(
    "orderpipeline_backend_request_seconds",
    "HTTP request latency (to the start of the response body)",
    ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


def _route(scope: Scope) -> str:
    """The matched route's template (a bounded label set); unknown paths share one label.

    A route included under a prefix may report its path without the prefix: restore it from
    the request path when the template is a literal suffix of it.
    """
    route: Any = scope.get("route")
    template = getattr(route, "path", None)
    if not isinstance(template, str):
        return "unmatched"
    path = str(scope.get("path", ""))
    if template and path.endswith(template) and "{" not in template:
        return path
    return template


@functools.cache
def _series(route: str, status: int) -> tuple[Histogram, Counter]:
    """The latency and count series of one label set. `labels()` takes a lock and builds its
    key on every call, a fifth of a cached answer's time in a profile; routes and statuses
    are few, so each pair is looked up once."""
    return LATENCY.labels(route), REQUESTS.labels(route, str(status))


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                latency, requests = _series(_route(scope), message["status"])
                latency.observe(time.perf_counter() - started)
                requests.inc()
            await send(message)

        await self.app(scope, receive, send_wrapper)


class BodyLimitMiddleware:
    """413 for a declared body above `max_bytes`; 411 for a chunked body (no route reads one)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            length = headers.get(b"content-length")
            if b"transfer-encoding" in headers:
                await _reply(send, 411, "chunked request bodies are not accepted")
                return
            if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
                await _reply(send, 413, f"request body larger than {self.max_bytes} bytes")
                return
        await self.app(scope, receive, send)


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

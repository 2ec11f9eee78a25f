"""A small HTTP server thread for Kubernetes probes and Prometheus.

- `/healthz`: 200 while the main loop keeps beating (it calls `HealthState.beat()`) and does
  not report a stall of its own (`set_stalled`, e.g. stall.py), else 503 with the reason: a
  wedged loop gets the pod restarted.
- `/readyz`: 200 once the worker says it is ready (connected, assigned), else 503.
- `/metrics`: the Prometheus text format of the default registry.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest


class HealthState:
    """Liveness and readiness shared between the worker loop and the HTTP thread."""

    def __init__(self, stall_after: float = 60.0) -> None:
        self._stall_after = stall_after
        self._last_beat = time.monotonic()
        self._ready = False
        self._reason = "starting"
        self._stalled: str | None = None

    def beat(self) -> None:
        """Called by the main loop on every iteration."""
        self._last_beat = time.monotonic()

    def set_stalled(self, reason: str | None) -> None:
        """The loop turns but makes no progress (reason), or None once it does again."""
        self._stalled = reason

    def set_ready(self, ready: bool, reason: str = "") -> None:
        self._ready = ready
        self._reason = reason

    @property
    def alive(self) -> bool:
        return self.stall_reason is None

    @property
    def stall_reason(self) -> str | None:
        if time.monotonic() - self._last_beat >= self._stall_after:
            return "main loop stalled"
        return self._stalled

    @property
    def ready(self) -> bool:
        return self._ready and self.alive

    @property
    def reason(self) -> str:
        return self._reason


def _handler(state: HealthState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                stalled = state.stall_reason
                if stalled is None:
                    self._json(200, {"status": "ok"})
                else:
                    self._json(503, {"detail": stalled})
            elif path == "/readyz":
                if state.ready:
                    self._json(200, {"status": "ready"})
                else:
                    self._json(503, {"detail": state.reason or "not ready"})
            elif path == "/metrics":
                self._send(200, CONTENT_TYPE_LATEST, generate_latest())
            else:
                self._json(404, {"detail": "not found"})

        def _json(self, status: int, body: dict[str, Any]) -> None:
            self._send(status, "application/json", json.dumps(body).encode())

        def _send(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Probes every few seconds would drown the logs."""

    return Handler


class HealthServer:
    """Serves `state` on `host:port` from a daemon thread. Port 0 picks a free port."""

    def __init__(self, state: HealthState, port: int, host: str = "0.0.0.0") -> None:
        self.state = state
        self._server = ThreadingHTTPServer((host, port), _handler(state))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> HealthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

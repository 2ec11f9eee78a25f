"""A stand-in for the backend's dashboard API, for unit-level tests of the built page.

It serves the built dashboard and the two endpoints the page reads (`/api/analytics`,
`/api/stream`) from a document the test sets. It is not the backend: the end-to-end tests
(test_dashboard_e2e.py) run the real one.
"""

from __future__ import annotations

import json
import mimetypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class StubState:
    """The document served, and a condition the stream waits on for changes."""

    def __init__(self, document: dict[str, Any]) -> None:
        self._document = document
        self._version = 0
        self._changed = threading.Condition()
        self.closing = False

    def set(self, document: dict[str, Any]) -> None:
        with self._changed:
            self._document = document
            self._version += 1
            self._changed.notify_all()

    def get(self) -> tuple[int, dict[str, Any]]:
        with self._changed:
            return self._version, self._document

    def wait_newer(self, version: int, timeout: float) -> None:
        with self._changed:
            self._changed.wait_for(
                lambda: self._version != version or self.closing, timeout=timeout
            )

    def close(self) -> None:
        with self._changed:
            self.closing = True
            self._changed.notify_all()


def _handler(state: StubState, dist: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: pytest shows failures, not access logs."""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/api/analytics":
                self._json(state.get()[1])
            elif path == "/api/stream":
                self._stream()
            else:
                self._static(path)

        def _json(self, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            version = -1
            try:
                while not state.closing:
                    current, document = state.get()
                    if current != version:
                        version = current
                        payload = json.dumps(document)
                        self.wfile.write(f"event: analytics\ndata: {payload}\n\n".encode())
                        self.wfile.flush()
                    state.wait_newer(version, timeout=0.5)
            except (BrokenPipeError, ConnectionResetError):
                return

        def _static(self, path: str) -> None:
            target = (dist / path.lstrip("/")).resolve()
            if not target.is_file() or dist.resolve() not in target.parents:
                target = dist / "index.html"
            data = target.read_bytes()
            self.send_response(HTTPStatus.OK)
            kind = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextmanager
def serve_stub(dist: Path, document: dict[str, Any]) -> Iterator[tuple[str, StubState]]:
    """Serve `dist` and the document on a free loopback port; yields (base URL, state)."""
    state = StubState(document)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, dist))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        state.close()
        server.shutdown()
        server.server_close()

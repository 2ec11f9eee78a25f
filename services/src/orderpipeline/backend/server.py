"""`orderpipeline backend`: settings, logging, then uvicorn (which handles SIGTERM itself)."""

from __future__ import annotations

import signal

import uvicorn

from orderpipeline.backend.core.config import BackendSettings
from orderpipeline.backend.main import create_app
from orderpipeline.core.config import ConfigError, load_settings
from orderpipeline.core.exit_codes import EXIT_CONFIG, EXIT_OK
from orderpipeline.core.logging import configure_logging, get_logger


def serve() -> int:
    configure_logging("INFO", service="backend")
    log = get_logger("backend")
    try:
        settings = load_settings(BackendSettings)
    except ConfigError as exc:
        log.error("cannot start", error=str(exc))
        return EXIT_CONFIG
    configure_logging(settings.log_level, service="backend")
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep the JSON logging configured above
        access_log=False,  # /metrics counts requests; a line per request costs throughput
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=5,
        # X-Forwarded-* are trusted only from FORWARDED_ALLOW_IPS (127.0.0.1 by default) and
        # the ingress reaches the pod from its own address, so they were never applied; the
        # middleware still scanned every request's headers for them.
        proxy_headers=False,
        server_header=False,
    )
    server = uvicorn.Server(config)
    # After a graceful shutdown uvicorn restores the handlers it found and raises the signal
    # it caught again. With Python's default SIGTERM handling that killed the process (exit
    # -15) after a clean stop; a no-op handler lets a stop end with exit 0 like the workers'.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    server.run()
    return EXIT_OK if server.started else 1

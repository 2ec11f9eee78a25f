"""The frame every service's `run()` shares: settings, logging, health server, signals, and
turning the expected failures into one log line and an exit code.

Exit codes: core/exit_codes.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from orderpipeline.core.config import ConfigError, HealthSettings, load_settings
from orderpipeline.core.exit_codes import EXIT_CONFIG, EXIT_KAFKA_FATAL
from orderpipeline.core.health import HealthServer, HealthState
from orderpipeline.core.kafka import KafkaFatalError
from orderpipeline.core.lifecycle import StopFlag
from orderpipeline.core.logging import configure_logging, get_logger
from orderpipeline.core.metrics import ServiceMetrics

H = TypeVar("H", bound=HealthSettings)


@dataclass
class ServiceContext:
    """What a running service gets besides its settings."""

    name: str
    stop: StopFlag
    health: HealthState
    metrics: ServiceMetrics


def run_service(name: str, settings_cls: type[H], body: Callable[[H, ServiceContext], int]) -> int:
    """Load `settings_cls`, start the health port and signal handling, run `body`."""
    configure_logging("INFO", service=name)
    log = get_logger(name)
    try:
        settings = load_settings(settings_cls)
    except ConfigError as exc:
        log.error("cannot start", error=str(exc))
        return EXIT_CONFIG
    configure_logging(settings.log_level, service=name)
    log = get_logger(name)
    ctx = ServiceContext(name, StopFlag().install(), HealthState(), ServiceMetrics(name))
    try:
        server = HealthServer(ctx.health, settings.health_port, settings.health_host).start()
    except OSError as exc:
        log.error("cannot open the health port", port=settings.health_port, error=str(exc))
        return EXIT_CONFIG
    log.info("started", health_port=server.port)
    try:
        code = body(settings, ctx)
    except KafkaFatalError as exc:
        log.error("kafka error that retrying cannot fix, exiting", error=str(exc))
        return EXIT_KAFKA_FATAL
    finally:
        server.stop()
    log.info("stopped", exit_code=code, signal=ctx.stop.signal_name)
    return code

"""Structured JSON logs on stdout, one object per line.

Secrets never reach a log line: settings hold them as SecretStr, and a processor masks any
field whose name looks like a credential, whatever the caller passed.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_MARKERS = ("password", "secret", "api_key", "apikey", "token", "credential")


def _is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask credential-like fields, also inside nested dicts (configs)."""
    for key, value in list(event.items()):
        if _is_secret_key(key):
            event[key] = "***"
        elif isinstance(value, dict):
            event[key] = {k: ("***" if _is_secret_key(str(k)) else v) for k, v in value.items()}
    return event


def configure_logging(level: str = "INFO", service: str | None = None) -> None:
    """JSON logs to stdout at `level`; `service` is added to every line.

    Idempotent. Standard-library loggers (librdkafka via confluent-kafka, uvicorn, the couchbase
    SDK) go through the same JSON renderer.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    if service:
        shared.insert(0, _add_service(service))
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)


def _add_service(service: str) -> Any:
    def processor(
        _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event.setdefault("service", service)
        return event

    return processor


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; `name` is added as `logger`."""
    log = structlog.get_logger()
    return log.bind(logger=name) if name else log

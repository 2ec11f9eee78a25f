"""Settings of `orderpipeline backend` (BACKEND_*, COUCHBASE_*, DASHBOARD_DIST, LOG_LEVEL)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from orderpipeline.core.config import LogLevel
from orderpipeline.core.couchbase import CouchbaseSettings


class BackendSettings(CouchbaseSettings):
    host: str = Field("0.0.0.0", min_length=1, validation_alias="BACKEND_HOST")
    port: int = Field(8000, ge=0, le=65535, validation_alias="BACKEND_PORT")
    # Closed unless origins are listed: the dashboard is served from the same origin.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias="BACKEND_CORS_ORIGINS"
    )
    api_key: SecretStr | None = Field(None, validation_alias="BACKEND_API_KEY")
    dashboard_dist: Path | None = Field(None, validation_alias="DASHBOARD_DIST")
    log_level: LogLevel = Field("INFO", validation_alias="LOG_LEVEL")
    # How often the aggregates are re-read; SSE clients see a change within this plus a
    # round trip (the contract promises 1 s).
    refresh_interval_seconds: float = Field(
        0.25, gt=0, le=1.0, validation_alias="BACKEND_REFRESH_INTERVAL_SECONDS"
    )
    # Older data than this is not served: /api/* answers 503 instead.
    max_staleness_seconds: float = Field(
        5.0, gt=0, validation_alias="BACKEND_MAX_STALENESS_SECONDS"
    )
    sse_keepalive_seconds: float = Field(
        15.0, gt=0, validation_alias="BACKEND_SSE_KEEPALIVE_SECONDS"
    )
    max_body_bytes: int = Field(65536, ge=0, validation_alias="BACKEND_MAX_BODY_BYTES")
    max_connections: int = Field(2048, ge=1, validation_alias="BACKEND_MAX_CONNECTIONS")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(o.strip() for o in value.split(",") if o.strip())
        return value

    @field_validator("api_key")
    @classmethod
    def _no_empty_key(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty BACKEND_API_KEY (e.g. an unset Secret key) means "no key", not "key ''".
        return value if value is not None and value.get_secret_value() else None

    @field_validator("dashboard_dist")
    @classmethod
    def _dist_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not (value / "index.html").is_file():
            raise ValueError(f"{value} has no index.html (build the dashboard first)")
        return value

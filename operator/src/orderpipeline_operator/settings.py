"""Operator settings: one pydantic BaseSettings read from OPERATOR_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _default_chart() -> Path:
    """The repo's charts/webapp when running from a checkout, else the image's copy."""
    checkout = Path(__file__).resolve().parents[3] / "charts" / "webapp"
    return checkout if checkout.is_dir() else Path("/opt/charts/webapp")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPERATOR_", extra="ignore")

    # Empty means every namespace (cluster-wide); else a comma-separated list.
    namespaces: Annotated[list[str], NoDecode] = Field(default_factory=list)

    helm_binary: str = "helm"
    webapp_chart: Path = Field(default_factory=_default_chart)
    helm_timeout_seconds: int = Field(default=300, ge=10)
    # Each helm process costs ~50 MB and a CPU burst: bound them.
    helm_concurrency: int = Field(default=6, ge=1)
    # kopf runs the (blocking) handlers in this many threads.
    worker_threads: int = Field(default=32, ge=4)

    default_image_tag: str = "0.1.0"
    # How often every pipeline is compared with its children (drift, Secret changes).
    resync_seconds: float = Field(default=30.0, gt=0)

    # Consumer lag: how often each pipeline's groups are read from Kafka (status, scaling),
    # how long one reading may wait for Kafka, how long a lag must grow before the Lagging
    # condition says so, and how long a partition's committed offset must stand still
    # while its consumer runs before it counts as stuck.
    lag_interval_seconds: float = Field(default=15.0, gt=0)
    # The interval instead while an autoscaled group's lag heads for more replicas
    # (reading_interval.py); at least 1 s, so no lag makes a pipeline's readings a busy loop.
    lag_fast_interval_seconds: float = Field(default=3.0, ge=1.0)
    kafka_timeout_seconds: float = Field(default=5.0, gt=0)
    lagging_after_seconds: float = Field(default=60.0, ge=0)
    stuck_partition_seconds: float = Field(default=300.0, gt=0)
    # Lag readings at once (each holds three librdkafka clients while it waits for Kafka).
    kafka_readers: int = Field(default=4, ge=1)

    peering_name: str = "orderpipeline-operator"
    standalone: bool = False
    liveness_port: int = 8080
    metrics_port: int = 9090
    log_format: Literal["json", "full"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    field_manager: str = "orderpipeline-operator"
    # The finalizer gives up on an uninstall that keeps failing after this many tries,
    # so that a broken release never blocks the deletion of its pipeline forever.
    uninstall_attempts: int = Field(default=5, ge=1)

    @field_validator("namespaces", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

"""Settings shared by every worker, read with pydantic-settings.

Each service subclasses these classes (one settings class per service). Values come from the
environment; a secret may also come from a file named like its variable in
`ORDERPIPELINE_SECRETS_DIR` (default `/var/run/secrets/orderpipeline`), which is how Kubernetes
mounts a Secret. The original system's variable names are accepted as aliases so an existing
deployment can switch without renaming anything.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRETS_DIR = "/var/run/secrets/orderpipeline"

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


def _env(*names: str) -> AliasChoices:
    """Accept any of `names` as the environment variable (first one is the documented name)."""
    return AliasChoices(*names)


class _Base(BaseSettings):
    # populate_by_name lets tests and the benchmark build settings with field names;
    # extra="ignore" because the whole environment is the input.
    model_config = SettingsConfigDict(
        case_sensitive=False,
        populate_by_name=True,
        extra="ignore",
        frozen=True,
    )


class HealthSettings(_Base):
    """The worker's small HTTP port for Kubernetes probes and Prometheus, and its log level."""

    health_port: int = Field(8081, ge=0, le=65535, validation_alias=_env("HEALTH_PORT"))
    # Every interface by default, where a pod's probes reach it; a process on a laptop (the
    # local stack) sets 127.0.0.1 so the port is not open to the network it sits on.
    health_host: str = Field("0.0.0.0", min_length=1, validation_alias=_env("HEALTH_HOST"))
    log_level: LogLevel = Field("INFO", validation_alias=_env("LOG_LEVEL"))


class KafkaSettings(_Base):
    """How to reach the broker, and the topic names. Every worker inherits this."""

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", min_length=1, validation_alias=_env("KAFKA_BOOTSTRAP_SERVERS")
    )
    security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", validation_alias=_env("KAFKA_SECURITY_PROTOCOL")
    )
    sasl_mechanism: SaslMechanism = Field("PLAIN", validation_alias=_env("KAFKA_SASL_MECHANISM"))
    sasl_username: str | None = Field(
        None, validation_alias=_env("KAFKA_SASL_USERNAME", "CONFLUENT_API_KEY")
    )
    sasl_password: SecretStr | None = Field(
        None, validation_alias=_env("KAFKA_SASL_PASSWORD", "CONFLUENT_API_SECRET")
    )
    ssl_ca_location: str | None = Field(None, validation_alias=_env("KAFKA_SSL_CA_LOCATION"))

    orders_topic: str = Field(
        "orders", min_length=1, validation_alias=_env("ORDERS_TOPIC", "TOPIC_NAME")
    )
    fraud_alerts_topic: str = Field(
        "fraud-alerts", min_length=1, validation_alias=_env("FRAUD_ALERTS_TOPIC")
    )
    payments_topic: str = Field("payments", min_length=1, validation_alias=_env("PAYMENTS_TOPIC"))
    analytics_topic: str = Field(
        "order-analytics", min_length=1, validation_alias=_env("ANALYTICS_TOPIC")
    )
    dead_letter_topic: str = Field(
        "orders-dlq", min_length=1, validation_alias=_env("DEAD_LETTER_TOPIC")
    )
    # How long the group waits for a member that vanished without leaving (a SIGKILL, a lost
    # node) before its partitions move; a clean stop leaves the group at once.
    session_timeout_ms: int = Field(
        45000, ge=1000, le=3_600_000, validation_alias=_env("KAFKA_SESSION_TIMEOUT_MS")
    )
    # A message larger than this is not an order: it goes to the dead-letter topic unparsed.
    order_max_bytes: int = Field(65536, ge=256, validation_alias=_env("ORDER_MAX_BYTES"))

    # Consumers write their outputs and commit their input offsets in one Kafka transaction
    # (exactly once for read_committed readers); false = at least once, for brokers that do
    # not allow transactions (docs/services.md, "Guarantees").
    transactions: bool = Field(True, validation_alias=_env("KAFKA_TRANSACTIONS"))
    # A transaction commits after this long or this many input messages, whichever is first:
    # longer means fewer commits (throughput) but outputs visible later (latency).
    transaction_interval_ms: int = Field(
        100, ge=1, le=60_000, validation_alias=_env("KAFKA_TRANSACTION_INTERVAL_MS")
    )
    transaction_max_messages: int = Field(
        10_000, ge=1, le=1_000_000, validation_alias=_env("KAFKA_TRANSACTION_MAX_MESSAGES")
    )
    # How long the broker keeps a transaction of a vanished (killed) process open before it
    # aborts it; read_committed readers of its output partitions wait that long. Kafka
    # Streams uses 10 s for the same reason.
    transaction_timeout_ms: int = Field(
        10_000, ge=1000, le=900_000, validation_alias=_env("KAFKA_TRANSACTION_TIMEOUT_MS")
    )

    @model_validator(mode="after")
    def _interval_within_timeout(self) -> KafkaSettings:
        if self.transaction_interval_ms * 2 > self.transaction_timeout_ms:
            raise ValueError(
                "KAFKA_TRANSACTION_INTERVAL_MS must be at most half of KAFKA_TRANSACTION_TIMEOUT_MS"
            )
        return self

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")


class WorkerSettings(KafkaSettings, HealthSettings):
    """Everything a Kafka worker (producer or consumer) needs besides its own options."""


S = TypeVar("S", bound=BaseSettings)


class ConfigError(Exception):
    """The configuration is invalid; the message says which variable and why (no values)."""


def secrets_dir() -> Path | None:
    """The folder of mounted secret files, or None when it does not exist."""
    path = Path(os.environ.get("ORDERPIPELINE_SECRETS_DIR", DEFAULT_SECRETS_DIR))
    return path if path.is_dir() else None


def load_settings(cls: type[S]) -> S:
    """Read `cls` from the environment and the secrets folder.

    Raises ConfigError with a one-line message naming the offending variables; the values are
    left out because one of them may be a secret.
    """
    try:
        folder = secrets_dir()
        if folder is None:
            return cls()
        return cls(_secrets_dir=folder)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '?'}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None

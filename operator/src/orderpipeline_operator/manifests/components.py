"""Which settings and Secrets each worker uses.

A worker's pod template carries a checksum of exactly these, so changing the fraud
threshold rolls the fraud pods and nothing else, and changing the Couchbase Secret rolls
analytics only.
"""

from __future__ import annotations

from dataclasses import dataclass

from orderpipeline_operator.spec import PipelineSpec, Resources

KAFKA_KEYS = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "ORDERS_TOPIC",
    "LOG_LEVEL",
)
CA_KEY = "KAFKA_SSL_CA_LOCATION"


@dataclass(frozen=True)
class SecretKey:
    """One key of one Secret, exposed to the container as the env var `env`."""

    env: str
    secret: str
    key: str


@dataclass(frozen=True)
class Component:
    name: str  # also the `orderpipeline <name>` subcommand
    replicas: int
    resources: Resources
    config_keys: tuple[str, ...]
    secret_keys: tuple[SecretKey, ...]
    ca_secret: SecretKey | None


def _kafka_secrets(spec: PipelineSpec) -> tuple[SecretKey, ...]:
    ref = spec.kafka.credentials_secret_ref
    if ref is None or not spec.kafka.security_protocol.startswith("SASL"):
        return ()
    return (
        SecretKey("KAFKA_SASL_USERNAME", ref.name, ref.username_key),
        SecretKey("KAFKA_SASL_PASSWORD", ref.name, ref.password_key),
    )


def _couchbase_secrets(spec: PipelineSpec) -> tuple[SecretKey, ...]:
    ref = spec.couchbase.credentials_secret_ref
    return (
        SecretKey("COUCHBASE_USERNAME", ref.name, ref.username_key),
        SecretKey("COUCHBASE_PASSWORD", ref.name, ref.password_key),
    )


def _ca_secret(spec: PipelineSpec) -> SecretKey | None:
    ref = spec.kafka.ca_secret_ref
    if ref is None or spec.kafka.security_protocol not in ("SSL", "SASL_SSL"):
        return None
    return SecretKey(CA_KEY, ref.name, ref.key)


def components(spec: PipelineSpec) -> list[Component]:
    """The worker Deployments this spec wants, in a stable order."""
    kafka_secrets = _kafka_secrets(spec)
    ca = _ca_secret(spec)
    kafka_keys = KAFKA_KEYS + ((CA_KEY,) if ca else ())
    wanted: list[Component] = []
    if spec.producer.enabled:
        wanted.append(
            Component(
                "producer",
                spec.producer.replicas,
                spec.producer.resources,
                (*kafka_keys, "PRODUCER_RATE"),
                kafka_secrets,
                ca,
            )
        )
    wanted += [
        Component(
            "fraud",
            spec.fraud.replicas,
            spec.fraud.resources,
            (
                *kafka_keys,
                "FRAUD_ALERTS_TOPIC",
                "DEAD_LETTER_TOPIC",
                "FRAUD_AMOUNT_THRESHOLD",
                "FRAUD_TRUSTED_COUNTRIES",
            ),
            kafka_secrets,
            ca,
        ),
        Component(
            "payment",
            spec.payment.replicas,
            spec.payment.resources,
            (
                *kafka_keys,
                "PAYMENTS_TOPIC",
                "DEAD_LETTER_TOPIC",
                "PAYMENT_PROCESSING_DELAY_MS",
                "PAYMENT_MAX_IN_FLIGHT",
            ),
            kafka_secrets,
            ca,
        ),
        Component(
            "analytics",
            spec.analytics.replicas,
            spec.analytics.resources,
            (
                *kafka_keys,
                "FRAUD_ALERTS_TOPIC",
                "PAYMENTS_TOPIC",
                "ANALYTICS_TOPIC",
                "DEAD_LETTER_TOPIC",
                "COUCHBASE_CONNECTION_STRING",
                "COUCHBASE_BUCKET",
            ),
            kafka_secrets + _couchbase_secrets(spec),
            ca,
        ),
    ]
    return wanted


ALL_COMPONENTS = ("producer", "fraud", "payment", "analytics")

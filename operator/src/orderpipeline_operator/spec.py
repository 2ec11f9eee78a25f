"""The OrderPipeline spec as pydantic models.

The API server already validated and defaulted the object against crds/orderpipelines.yaml;
these models repeat the defaults so pure functions (and their tests) can start from a
partial spec, and give the rest of the operator typed, immutable access.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
PullPolicy = Literal["Always", "IfNotPresent", "Never"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Model(BaseModel):
    """camelCase on the wire (as in the CRD), snake_case in Python; unknown keys rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, frozen=True, extra="forbid"
    )


class Resources(Model):
    requests: dict[str, int | str] = Field(default_factory=dict)
    limits: dict[str, int | str] = Field(default_factory=dict)


class CredentialsSecretRef(Model):
    name: str
    username_key: str = "username"
    password_key: str = "password"


class CaSecretRef(Model):
    name: str
    key: str = "ca.crt"


class Topics(Model):
    orders: str = "orders"
    fraud_alerts: str = "fraud-alerts"
    payments: str = "payments"
    analytics: str = "order-analytics"
    dead_letter: str = "orders-dlq"


class Kafka(Model):
    bootstrap_servers: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "PLAIN"
    credentials_secret_ref: CredentialsSecretRef | None = None
    ca_secret_ref: CaSecretRef | None = None
    topics: Topics = Topics()


class Couchbase(Model):
    connection_string: str
    bucket: str = "order_analytics"
    credentials_secret_ref: CredentialsSecretRef


class Image(Model):
    repository: str = "orderpipeline/services"
    tag: str | None = None
    pull_policy: PullPolicy = "IfNotPresent"
    pull_secrets: tuple[str, ...] = ()


class Producer(Model):
    enabled: bool = True
    replicas: int = 1
    rate_per_second: float = 10
    resources: Resources = Resources()


class Autoscaling(Model):
    """Lag-based replica count of one consumer (see autoscaling.py for the formula)."""

    enabled: bool = False
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=10, ge=1)
    lag_per_replica: int = Field(default=1000, gt=0)
    scale_down_stabilization_seconds: int = Field(default=300, ge=0)


class Fraud(Model):
    replicas: int = 1
    autoscaling: Autoscaling = Autoscaling()
    amount_threshold: float = 300
    trusted_countries: tuple[str, ...] = ("US", "CA")
    resources: Resources = Resources()


class Payment(Model):
    replicas: int = 1
    autoscaling: Autoscaling = Autoscaling()
    processing_delay_ms: int = 100
    max_in_flight: int = 1000
    resources: Resources = Resources()


class Analytics(Model):
    replicas: int = 1
    autoscaling: Autoscaling = Autoscaling()
    resources: Resources = Resources()


class Tls(Model):
    secret_name: str


class Backend(Model):
    replicas: int = 1
    resources: Resources = Resources()


class DashboardImage(Model):
    repository: str = "orderpipeline/dashboard"
    tag: str | None = None


class Dashboard(Model):
    enabled: bool = True
    replicas: int = 1
    image: DashboardImage = DashboardImage()
    resources: Resources = Resources()


class Webapp(Model):
    enabled: bool = True
    host: str = "orders.local"
    ingress_class_name: str | None = None
    ingress_annotations: dict[str, str] = Field(default_factory=dict)
    tls: Tls | None = None
    backend: Backend = Backend()
    dashboard: Dashboard = Dashboard()
    values: dict[str, Any] = Field(default_factory=dict)


class PipelineSpec(Model):
    kafka: Kafka
    couchbase: Couchbase
    suspend: bool = False
    log_level: LogLevel = "INFO"
    image: Image = Image()
    producer: Producer = Producer()
    fraud: Fraud = Fraud()
    payment: Payment = Payment()
    analytics: Analytics = Analytics()
    webapp: Webapp = Webapp()


class InvalidSpec(ValueError):
    """The API server admitted a spec these models reject (a CRD older or looser than the
    operator). Retrying cannot help: only a changed spec (or CRD) can."""


def parse_spec(raw: Any) -> PipelineSpec:
    """Validate the `spec` of an OrderPipeline object (a kopf Spec or a plain mapping)."""
    try:
        return PipelineSpec.model_validate(dict(raw))
    except ValidationError as exc:
        problems = "; ".join(
            f"spec.{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
            for error in exc.errors()
        )
        raise InvalidSpec(
            f"The spec is not valid for this operator: {problems}. Fix the spec (see "
            "docs/operator.md), or install the CRD of this operator's version"
        ) from exc

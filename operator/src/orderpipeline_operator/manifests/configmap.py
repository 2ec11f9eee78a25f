"""The ConfigMap of non-secret settings shared by the workers (docs/contracts.md names)."""

from __future__ import annotations

from typing import Any

from orderpipeline_operator.manifests.components import CA_KEY
from orderpipeline_operator.manifests.labels import common_labels, configmap_name
from orderpipeline_operator.spec import PipelineSpec

CA_DIR = "/etc/orderpipeline/kafka-ca"
CA_FILE = "ca.crt"


def _number(value: float) -> str:
    """300.0 -> "300", 0.5 -> "0.5": stable text so checksums do not change spuriously."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def config_data(spec: PipelineSpec) -> dict[str, str]:
    kafka = spec.kafka
    data = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "KAFKA_SECURITY_PROTOCOL": kafka.security_protocol,
        "KAFKA_SASL_MECHANISM": kafka.sasl_mechanism,
        "ORDERS_TOPIC": kafka.topics.orders,
        "FRAUD_ALERTS_TOPIC": kafka.topics.fraud_alerts,
        "PAYMENTS_TOPIC": kafka.topics.payments,
        "ANALYTICS_TOPIC": kafka.topics.analytics,
        "DEAD_LETTER_TOPIC": kafka.topics.dead_letter,
        "COUCHBASE_CONNECTION_STRING": spec.couchbase.connection_string,
        "COUCHBASE_BUCKET": spec.couchbase.bucket,
        "LOG_LEVEL": spec.log_level,
        "PRODUCER_RATE": _number(spec.producer.rate_per_second),
        "FRAUD_AMOUNT_THRESHOLD": _number(spec.fraud.amount_threshold),
        "FRAUD_TRUSTED_COUNTRIES": ",".join(spec.fraud.trusted_countries),
        "PAYMENT_PROCESSING_DELAY_MS": str(spec.payment.processing_delay_ms),
        "PAYMENT_MAX_IN_FLIGHT": str(spec.payment.max_in_flight),
    }
    if kafka.ca_secret_ref is not None and kafka.security_protocol in ("SSL", "SASL_SSL"):
        data[CA_KEY] = f"{CA_DIR}/{CA_FILE}"
    return data


def configmap(pipeline: str, spec: PipelineSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": configmap_name(pipeline), "labels": common_labels(pipeline, "config")},
        "data": config_data(spec),
    }

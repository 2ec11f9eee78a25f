"""Settings: defaults, the original variable names, secrets from files, no secret in errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from orderpipeline.core.config import ConfigError, KafkaSettings, load_settings
from orderpipeline.core.kafka import client_config, consumer_config, producer_config
from orderpipeline.fraud import FraudSettings
from orderpipeline.payment import PaymentSettings
from orderpipeline.producer import ProducerSettings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("KAFKA_", "CONFLUENT_", "PRODUCER_", "FRAUD_", "PAYMENT_")) or name in (
            "TOPIC_NAME",
            "ORDERS_TOPIC",
            "SLEEP_SECONDS",
            "HEALTH_PORT",
            "LOG_LEVEL",
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("ORDERPIPELINE_SECRETS_DIR", str(tmp_path / "no-secrets"))


def test_defaults_match_the_original_system() -> None:
    s = load_settings(FraudSettings)
    assert s.bootstrap_servers == "127.0.0.1:9092"
    assert s.orders_topic == "orders"
    assert s.fraud_alerts_topic == "fraud-alerts"
    assert s.dead_letter_topic == "orders-dlq"
    assert s.group_id == "fraud-group"
    assert s.amount_threshold == 300
    assert s.trusted_countries == {"US", "CA"}
    assert load_settings(PaymentSettings).group_id == "payments-group"
    assert load_settings(PaymentSettings).processing_delay_ms == 100
    assert load_settings(ProducerSettings).effective_rate == 10


def test_the_original_variable_names_still_work(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFLUENT_API_KEY", "key")
    monkeypatch.setenv("CONFLUENT_API_SECRET", "s3cret")
    monkeypatch.setenv("TOPIC_NAME", "legacy-orders")
    monkeypatch.setenv("SLEEP_SECONDS", "2")
    s = load_settings(ProducerSettings)
    assert s.sasl_username == "key"
    assert s.sasl_password is not None and s.sasl_password.get_secret_value() == "s3cret"
    assert s.orders_topic == "legacy-orders"
    assert s.effective_rate == 0.5


def test_the_new_names_win_over_sleep_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLEEP_SECONDS", "2")
    monkeypatch.setenv("PRODUCER_RATE", "0")
    assert load_settings(ProducerSettings).effective_rate == 0


def test_a_secret_can_come_from_a_mounted_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "KAFKA_SASL_PASSWORD").write_text("from-file\n")
    monkeypatch.setenv("ORDERPIPELINE_SECRETS_DIR", str(tmp_path))
    s = load_settings(KafkaSettings)
    assert s.sasl_password is not None
    assert s.sasl_password.get_secret_value().strip() == "from-file"


def test_the_password_never_appears_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "hunter2-secret")
    s = load_settings(KafkaSettings)
    assert "hunter2-secret" not in repr(s)
    assert "hunter2-secret" not in str(s.model_dump())


def test_an_invalid_value_names_the_variable_without_echoing_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_TLS_hunter2")
    with pytest.raises(ConfigError) as caught:
        load_settings(KafkaSettings)
    assert "KAFKA_SECURITY_PROTOCOL" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert "\n" not in str(caught.value)


def test_trusted_countries_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_TRUSTED_COUNTRIES", "us, ca,GB")
    assert load_settings(FraudSettings).trusted_countries == {"US", "CA", "GB"}


def test_sasl_ssl_settings_become_librdkafka_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "orders")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pw")
    monkeypatch.setenv("KAFKA_SSL_CA_LOCATION", "/ca.pem")
    conf = client_config(load_settings(KafkaSettings), "t")
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.username"] == "orders"
    assert conf["sasl.password"] == "pw"
    assert conf["ssl.ca.location"] == "/ca.pem"


def test_plaintext_sends_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "pw")
    conf = client_config(load_settings(KafkaSettings), "t")
    assert "sasl.password" not in conf and "ssl.ca.location" not in conf


def test_producers_are_idempotent_and_consumers_store_offsets_themselves() -> None:
    s = load_settings(KafkaSettings)
    producer = producer_config(s, "p")
    assert producer["enable.idempotence"] is True and producer["acks"] == "all"
    consumer = consumer_config(s, "g", "c")
    assert consumer["enable.auto.offset.store"] is False
    assert consumer["group.id"] == "g"


def test_transactions_are_on_by_default_and_read_committed_either_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = load_settings(FraudSettings)
    assert s.transactions and s.transaction_interval_ms == 100
    assert s.transaction_max_messages == 10_000
    conf = consumer_config(s, "g", "c")
    assert conf["isolation.level"] == "read_committed"
    assert conf["enable.auto.commit"] is False  # offsets are committed only in transactions

    monkeypatch.setenv("KAFKA_TRANSACTIONS", "false")
    s = load_settings(FraudSettings)
    assert not s.transactions
    conf = consumer_config(s, "g", "c")
    assert conf["isolation.level"] == "read_committed"
    assert conf["enable.auto.commit"] is True  # at least once: stored offsets auto-committed


def test_a_transaction_interval_above_half_the_transaction_timeout_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_TRANSACTION_INTERVAL_MS", "6000")
    monkeypatch.setenv("KAFKA_TRANSACTION_TIMEOUT_MS", "10000")
    with pytest.raises(ConfigError, match="KAFKA_TRANSACTION_INTERVAL_MS"):
        load_settings(FraudSettings)

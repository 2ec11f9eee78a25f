"""SASL_SSL (what Confluent Cloud speaks) end to end, and what wrong credentials do."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from orderpipeline.core.order import parse_order

from .helpers import Service, Topics, broker_env, read_topic, values

pytestmark = pytest.mark.kafka


def test_producer_fraud_and_payment_work_over_sasl_ssl(
    kafka_sasl: Any, services: list[Service], tmp_path: Path
) -> None:
    topics = Topics.unique()
    topics.create(kafka_sasl)
    env = {**broker_env(kafka_sasl), **topics.env()}
    producer = Service("producer", {**env, "PRODUCER_RATE": "0", "PRODUCER_COUNT": "300"}, tmp_path)
    services.append(producer)
    assert producer.wait(120) == 0, producer.output()
    orders = [
        parse_order(m.value())
        for m in read_topic(kafka_sasl, topics.orders, lambda m: len(m) >= 300)
    ]
    # The documented rule (docs/services.md), restated rather than imported from the code.
    suspicious = sorted(
        o.order_id for o in orders if o.amount > 300 and o.country not in ("US", "CA")
    )

    fraud = Service("fraud", env, tmp_path)
    payment = Service("payment", env, tmp_path)
    services += [fraud, payment]
    alerts = values(read_topic(kafka_sasl, topics.alerts, lambda m: len(m) >= len(suspicious)))
    paid = values(read_topic(kafka_sasl, topics.payments, lambda m: len(m) >= 300))
    assert fraud.stop() == 0 and payment.stop() == 0
    assert sorted(a["order_id"] for a in alerts) == suspicious
    assert sorted(p["order_id"] for p in paid) == sorted(o.order_id for o in orders)
    # The password is never logged.
    assert kafka_sasl.sasl_password not in fraud.output() + payment.output() + producer.output()


@pytest.mark.parametrize("name", ["producer", "fraud", "payment", "analytics"])
def test_wrong_credentials_give_one_clear_error_line_and_a_nonzero_exit(
    kafka_sasl: Any, services: list[Service], tmp_path: Path, name: str, request: Any
) -> None:
    env = {
        **broker_env(kafka_sasl),
        **Topics.unique().env(),
        "KAFKA_SASL_PASSWORD": "not-the-password",
    }
    if name == "analytics":
        # Analytics reaches Kafka after Couchbase: the real one (gocaves), with good credentials.
        env |= request.getfixturevalue("couchbase").service_env()
    service = Service(name, env, tmp_path)
    services.append(service)
    started = time.monotonic()
    code = service.wait(90)
    elapsed = time.monotonic() - started
    output = service.output()
    assert code == 3, output
    assert elapsed < 60, f"took {elapsed:.0f}s to give up"
    assert "Traceback" not in output
    lines = [json.loads(line) for line in output.splitlines()]  # every line is JSON
    errors = [line for line in lines if line["level"] in ("error", "critical")]
    assert len(errors) == 1, output
    assert "KAFKA_SASL_USERNAME" in errors[0]["error"]
    assert "not-the-password" not in output

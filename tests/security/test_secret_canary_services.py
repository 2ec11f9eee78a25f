"""Every service at DEBUG: the Kafka password (random per SASL_SSL broker, so a canary) and a
canary Couchbase password never appear in a log line, a /metrics sample, a probe or API
answer, or a record of any topic (the dead-letter topic included)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from devinfra.gocaves import CouchbaseCluster
from devinfra.procs import free_port

from tests.analytics.helpers import (
    ServiceProcess,
    Topics,
    make_orders,
    produce,
    produce_orders,
    read_committed,
    wait_until,
)

from .canary import http_text, leaks, new_canary

pytestmark = [pytest.mark.kafka, pytest.mark.couchbase]

EXIT_KAFKA_FATAL = 3


def sasl_env(broker: Any, password: str | None = None) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "KAFKA_SECURITY_PROTOCOL": broker.security_protocol,
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": broker.sasl_username,
        "KAFKA_SASL_PASSWORD": password or broker.sasl_password,
        "KAFKA_SSL_CA_LOCATION": str(broker.ca_file),
        "LOG_LEVEL": "DEBUG",
    }


def topic_env(tag: str) -> dict[str, str]:
    return {
        "ORDERS_TOPIC": f"orders-{tag}",
        "FRAUD_ALERTS_TOPIC": f"fraud-alerts-{tag}",
        "PAYMENTS_TOPIC": f"payments-{tag}",
        "ANALYTICS_TOPIC": f"analytics-{tag}",
        "DEAD_LETTER_TOPIC": f"dlq-{tag}",
        "FRAUD_GROUP_ID": f"fraud-{tag}",
        "PAYMENT_GROUP_ID": f"payment-{tag}",
        "ANALYTICS_GROUP_ID": f"analytics-{tag}",
    }


@pytest.fixture
def processes() -> Iterator[list[ServiceProcess]]:
    started: list[ServiceProcess] = []
    yield started
    for process in started:
        process.close()


def consumed(process: ServiceProcess) -> float:
    assert process.alive(), process.output()
    try:
        return process.metric("orderpipeline_messages_consumed_total")
    except OSError:  # the health server is not listening yet
        return -1


def test_kafka_password_never_leaves_the_services(
    kafka_sasl: Any,
    couchbase: CouchbaseCluster,
    tmp_path: Path,
    processes: list[ServiceProcess],
) -> None:
    tag = uuid.uuid4().hex[:8]
    topics = topic_env(tag)
    kafka_sasl.create_topics(
        [topics[k] for k in ("ORDERS_TOPIC", "FRAUD_ALERTS_TOPIC", "PAYMENTS_TOPIC",
                             "ANALYTICS_TOPIC", "DEAD_LETTER_TOPIC")]
    )  # fmt: skip
    env = {**sasl_env(kafka_sasl), **topics}
    # One worker reads the password from the secrets folder (a mounted Secret) instead.
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "KAFKA_SASL_PASSWORD").write_text(kafka_sasl.sasl_password)
    from_file = {k: v for k, v in env.items() if k != "KAFKA_SASL_PASSWORD"}
    from_file["ORDERPIPELINE_SECRETS_DIR"] = str(secrets_dir)

    services = {
        "producer": ServiceProcess("producer", {**env, "PRODUCER_RATE": "100"}, tmp_path),
        "fraud": ServiceProcess("fraud", env, tmp_path),
        "payment": ServiceProcess("payment", from_file, tmp_path),
        "analytics": ServiceProcess("analytics", {**env, **couchbase.service_env()}, tmp_path),
    }
    processes.extend(p.start() for p in services.values())
    for name in ("fraud", "payment", "analytics"):
        wait_until(lambda n=name: consumed(services[n]) >= 50, 90, f"{name} to consume orders")  # type: ignore[misc]

    places: dict[str, str] = {}
    for name, process in services.items():
        assert process.alive(), process.output()
        for path in ("/metrics", "/healthz", "/readyz"):
            places[f"{name} {path}"] = http_text(f"http://127.0.0.1:{process.health_port}{path}")[1]
    for name, process in services.items():
        assert process.stop(60) == 0, process.output()
        places[f"{name} log"] = process.output()
    assert all(places[f"{n} log"].strip() for n in services)
    assert leaks(places, [kafka_sasl.sasl_password]) == []


@pytest.mark.parametrize("service", ["producer", "fraud"])
def test_a_wrong_kafka_password_fails_fast_without_showing_it(
    kafka_sasl: Any, tmp_path: Path, processes: list[ServiceProcess], service: str
) -> None:
    canary = new_canary("kafka-password")
    env = {**sasl_env(kafka_sasl, password=canary), **topic_env(uuid.uuid4().hex[:8])}
    process = ServiceProcess(service, env, tmp_path).start()
    processes.append(process)
    assert process.process is not None
    assert process.process.wait(60) == EXIT_KAFKA_FATAL, process.output()
    log = process.output()
    assert "auth" in log.lower()
    assert leaks({f"{service} log": log}, [canary]) == []


def test_couchbase_password_never_leaves_analytics_the_backend_or_the_topics(
    kafka: Any, couchbase: CouchbaseCluster, tmp_path: Path, processes: list[ServiceProcess]
) -> None:
    canary = new_canary("couchbase-password")
    user = couchbase.with_user("orders-app", canary)
    topics = Topics.unique()
    topics.create(kafka)
    orders = make_orders(60)
    produce_orders(kafka, topics.orders, orders)
    produce(kafka, topics.orders, [(b"broken", b"{not an order")])  # for the dead-letter topic
    kafka_env = {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers, "LOG_LEVEL": "DEBUG"}
    analytics = ServiceProcess(
        "analytics", {**kafka_env, **topics.env(), **user.service_env()}, tmp_path
    )
    port = free_port()
    backend_env = {**user.service_env(), "BACKEND_PORT": str(port), "LOG_LEVEL": "DEBUG"}
    backend = ServiceProcess("backend", backend_env, tmp_path)
    processes.extend([analytics.start(), backend.start()])
    api = f"http://127.0.0.1:{port}"

    def all_counted() -> bool:
        assert analytics.alive(), analytics.output()
        assert backend.alive(), backend.output()
        try:
            status, body = http_text(f"{api}/api/analytics")
        except OSError:
            return False
        return status == 200 and f'"orders":{len(orders)},' in body

    wait_until(all_counted, 90, f"{len(orders)} orders counted with the canary user")
    dead_letters = read_committed(kafka, topics.dlq)
    assert len(dead_letters) == 1, "the broken record is dead-lettered (and scanned below)"

    places: dict[str, str] = {}
    for path in ("/api/analytics", "/api/orders", "/api/fraud-alerts", "/metrics", "/readyz",
                 "/healthz", "/openapi.json"):  # fmt: skip
        places[f"backend {path}"] = http_text(f"{api}{path}")[1]
    for path in ("/metrics", "/healthz", "/readyz"):
        places[f"analytics {path}"] = http_text(f"http://127.0.0.1:{analytics.health_port}{path}")[
            1
        ]
    for topic in (topics.orders, topics.analytics, topics.dlq):
        for i, message in enumerate(read_committed(kafka, topic)):
            headers = repr(message.headers() or [])
            places[f"{topic}[{i}]"] = f"{message.key()!r} {message.value()!r} {headers}"
    assert analytics.stop(60) == 0, analytics.output()
    assert backend.stop(60) == 0, backend.output()
    for process in (analytics, backend):
        places[f"{process.name} log"] = process.output()
    assert "connected to couchbase" in places["backend log"]
    assert leaks(places, [canary]) == []


def test_a_wrong_couchbase_password_stops_analytics_without_showing_it(
    kafka: Any, couchbase: CouchbaseCluster, tmp_path: Path, processes: list[ServiceProcess]
) -> None:
    canary = new_canary("couchbase-password")
    topics = Topics.unique()
    topics.create(kafka)
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "LOG_LEVEL": "DEBUG",
        **topics.env(),
        **couchbase.service_env(),
        "COUCHBASE_PASSWORD": canary,
    }
    analytics = ServiceProcess("analytics", env, tmp_path).start()
    processes.append(analytics)
    assert analytics.process is not None
    code = analytics.process.wait(90)
    log = analytics.output()
    assert code != 0, log
    assert "authentication" in log.lower(), log
    assert leaks({"analytics log": log}, [canary]) == []

"""The lag reader's Kafka settings come from the pipeline's spec and Secrets, like the
workers' (kafka_offsets.client_config, pure)."""

from __future__ import annotations

from orderpipeline_operator.kafka_offsets import client_config, in_namespace
from orderpipeline_operator.spec import parse_spec


def test_client_config_takes_the_sasl_credentials_and_ca_from_the_secrets() -> None:
    spec = parse_spec(
        {
            "kafka": {
                "bootstrapServers": "pkc-1.confluent.cloud:9092",
                "securityProtocol": "SASL_SSL",
                "saslMechanism": "SCRAM-SHA-512",
                "credentialsSecretRef": {"name": "kc", "usernameKey": "key", "passwordKey": "sec"},
                "caSecretRef": {"name": "ca"},
            },
            "couchbase": {
                "connectionString": "couchbase://c",
                "credentialsSecretRef": {"name": "s"},
            },
        }
    )
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    conf = client_config(spec.kafka, {"key": b"API-KEY", "sec": b"s3cret"}, pem, "shop")
    assert conf["bootstrap.servers"] == "pkc-1.confluent.cloud:9092"  # a full name: as is
    assert (conf["security.protocol"], conf["sasl.mechanism"]) == ("SASL_SSL", "SCRAM-SHA-512")
    assert (conf["sasl.username"], conf["sasl.password"]) == ("API-KEY", "s3cret")
    assert conf["ssl.ca.pem"] == pem.decode()
    assert conf["enable.auto.commit"] is False  # the reader never commits for the group


def test_client_config_of_plaintext_has_no_credentials() -> None:
    spec = parse_spec(
        {
            "kafka": {"bootstrapServers": "kafka:9092"},
            "couchbase": {
                "connectionString": "couchbase://c",
                "credentialsSecretRef": {"name": "s"},
            },
        }
    )
    conf = client_config(spec.kafka, None, None, "shop")
    assert not {"sasl.username", "sasl.password", "ssl.ca.pem"} & set(conf)


def test_a_bare_service_name_is_the_one_in_the_pipelines_namespace() -> None:
    # The operator's pod searches its own namespace: `kafka` there is not the pipeline's.
    assert in_namespace("kafka:9092", "shop") == "kafka.shop.svc:9092"
    assert in_namespace("kafka-0:9092, kafka-1:9092", "shop") == (
        "kafka-0.shop.svc:9092,kafka-1.shop.svc:9092"
    )


def test_names_with_a_dot_and_addresses_are_kept() -> None:
    for servers in (
        "kafka.infra:9092",
        "kafka.infra.svc.cluster.local:9092",
        "10.0.0.7:9092",
        "[::1]:9092",
        "localhost:9092",
    ):
        assert in_namespace(servers, "shop") == servers

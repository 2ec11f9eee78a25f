"""The lag reader's Kafka settings come from the pipeline's spec and Secrets, like the
workers' (kafka_offsets.client_config, pure)."""

from __future__ import annotations

from orderpipeline_operator.kafka_offsets import client_config
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
    conf = client_config(spec.kafka, {"key": b"API-KEY", "sec": b"s3cret"}, pem)
    assert conf["bootstrap.servers"] == "pkc-1.confluent.cloud:9092"
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
    conf = client_config(spec.kafka, None, None)
    assert not {"sasl.username", "sasl.password", "ssl.ca.pem"} & set(conf)

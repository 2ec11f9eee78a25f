"""Read the consumer groups' offsets from Kafka, with the pipeline's own connection settings.

Committed offsets are asked through a Consumer of the group that never subscribes (so it
never joins the group or disturbs its members), not through AdminClient's
list_consumer_group_offsets: in librdkafka 2.16 that call crashes the whole process
(SIGSEGV in rd_kafka_cgrp_op) when the coordinator answers COORDINATOR_LOAD_IN_PROGRESS,
as a freshly started broker does (docs/reliability.md). Every call has a timeout: an
unreachable broker costs one KafkaUnavailable after `timeout` seconds, never a hang.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from orderpipeline_operator.consumer_groups import ConsumerGroup
from orderpipeline_operator.lag import PartitionOffsets
from orderpipeline_operator.next_record import FETCH_CONFIG, with_next_records
from orderpipeline_operator.spec import Kafka

_NO_OFFSET = -1001  # librdkafka's OFFSET_INVALID: nothing committed
# What a broker answers while it moves leaders or loads __consumer_offsets (a fresh or
# restarted broker): worth asking again within the same reading.
_TRANSIENT = frozenset(
    {
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
    }
)
T = TypeVar("T")


class KafkaUnavailable(Exception):
    """The offsets could not be read; the message says why (for the status)."""


def in_namespace(servers: str, namespace: str) -> str:
    """Bootstrap servers as the pipeline's workers resolve them. A bare name (`kafka:9092`,
    as in samples/minimal.yaml) is a Service of the pipeline's namespace to its pods, and
    nothing to the operator, whose pod searches its own namespace: it becomes
    `kafka.<namespace>.svc`. Names with a dot and addresses resolve the same everywhere."""
    qualified = []
    for server in servers.split(","):
        host, colon, port = server.strip().rpartition(":")
        if not colon:
            host, port = port, ""
        if host and "." not in host and not host.startswith("[") and host != "localhost":
            host = f"{host}.{namespace}.svc"
        qualified.append(f"{host}{colon}{port}")
    return ",".join(qualified)


def client_config(
    kafka: Kafka, secret: Mapping[str, bytes] | None, ca: bytes | None, namespace: str
) -> dict[str, Any]:
    """librdkafka settings equal to the workers' (docs/contracts.md), from the spec and the
    values of its Secrets, reaching the brokers the workers of `namespace` reach. The CA
    goes in as PEM text: no file to write or clean up."""
    conf: dict[str, Any] = {
        "bootstrap.servers": in_namespace(kafka.bootstrap_servers, namespace),
        "security.protocol": kafka.security_protocol,
        "client.id": "orderpipeline-operator-lag",
        # Errors reach the caller as exceptions of the calls below; librdkafka's own log
        # lines would repeat them every few seconds while a broker is away.
        "log_level": 0,
        "enable.auto.commit": False,
        # As the workers read: the log end is then the last stable offset (records of an
        # open transaction are not lag yet), and aborted records are skipped (next_record.py).
        "isolation.level": "read_committed",
        "socket.timeout.ms": 10_000,
    }
    ref = kafka.credentials_secret_ref
    if kafka.security_protocol.startswith("SASL") and ref is not None:
        values = secret or {}
        conf["sasl.mechanism"] = kafka.sasl_mechanism
        conf["sasl.username"] = values.get(ref.username_key, b"").decode()
        conf["sasl.password"] = values.get(ref.password_key, b"").decode()
    if ca is not None and kafka.security_protocol in ("SSL", "SASL_SSL"):
        conf["ssl.ca.pem"] = ca.decode()
    return conf


_TIMING = re.compile(r"\s*\(after \d+ms in state \w+\)")


def _specific(cause: str) -> tuple[bool, str]:
    """librdkafka's summary ("1/1 brokers are down") after the causes themselves."""
    return ("brokers are down" in cause, cause)


class _Errors:
    """error_cb: what librdkafka met on its connections. A failed call says only "Broker
    transport failure" or "timed out"; the cause (bad credentials, an untrusted
    certificate, a name that does not resolve) arrives here."""

    def __init__(self) -> None:
        self.seen: list[KafkaError] = []

    def __call__(self, error: KafkaError) -> None:
        self.seen.append(error)

    def why(self, exc: KafkaException) -> str:
        arg = exc.args[0] if exc.args else exc
        said = f"{arg.name()}: {arg.str()}" if isinstance(arg, KafkaError) else str(arg)
        # Sorted and without timings: the message goes into a status condition, and must
        # read the same at every reading while the cause is the same (no status churn).
        causes = sorted({_TIMING.sub("", e.str()) for e in self.seen} - {said}, key=_specific)
        return f"{said} ({'; '.join(causes[:2])})" if causes else said


def _retrying(call: Callable[[], T], deadline: float) -> T:
    while True:
        try:
            return call()
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            transient = isinstance(error, KafkaError) and error.code() in _TRANSIENT
            if not transient or time.monotonic() + 0.25 > deadline:
                raise
            time.sleep(0.25)


def read_offsets(
    config: Mapping[str, Any], groups: list[ConsumerGroup], timeout: float
) -> dict[str, list[PartitionOffsets]]:
    """Every partition of each group's topics: log start, log end, and the group's committed
    offset, and where its consumer would get its next record wherever it has lag
    (next_record.py). A missing topic has no partitions (its group's lag is 0 until it
    exists). Transient broker answers are retried until `timeout` seconds have passed in all."""
    deadline = time.monotonic() + timeout
    consumers: dict[str, Consumer] = {}
    errors = _Errors()

    def client(group: ConsumerGroup) -> Consumer:
        return Consumer({**config, **FETCH_CONFIG, "group.id": group.group_id, "error_cb": errors})

    try:
        reader = consumers[groups[0].name] = client(groups[0])
        topics = sorted({t for g in groups for t in g.topics})
        metadata = reader.list_topics(timeout=timeout)
        if not metadata.brokers:
            raise KafkaUnavailable("no broker answered")
        # The other groups' clients only once the broker has answered: a reading of an
        # unreachable broker, which waits its whole timeout, holds one client, not three.
        for group in groups[1:]:
            consumers[group.name] = client(group)
        partitions = {
            t: sorted(meta.partitions)
            if (meta := metadata.topics.get(t)) and not meta.error
            else []
            for t in topics
        }
        marks: dict[tuple[str, int], tuple[int, int]] = {}
        for topic, numbers in partitions.items():
            for number in numbers:
                part = TopicPartition(topic, number)
                marks[(topic, number)] = _retrying(
                    functools.partial(
                        reader.get_watermark_offsets, part, timeout=timeout, cached=False
                    ),
                    deadline,
                )
        out: dict[str, list[PartitionOffsets]] = {}
        for group in groups:
            wanted = [TopicPartition(t, n) for t in group.topics for n in partitions[t]]
            consumer = consumers[group.name]
            found = _retrying(
                functools.partial(consumer.committed, wanted, timeout=timeout), deadline
            )
            out[group.name] = [
                PartitionOffsets(
                    tp.topic,
                    tp.partition,
                    *marks[(tp.topic, tp.partition)],
                    committed=None if tp.error or tp.offset == _NO_OFFSET else tp.offset,
                )
                for tp in found
            ]
        return with_next_records(consumers, out, {g.name: g.reset for g in groups}, timeout)
    except KafkaException as exc:
        for consumer in consumers.values():
            consumer.poll(0)  # serves error_cb: the causes queued while the call waited
        raise KafkaUnavailable(errors.why(exc)) from exc
    finally:
        for consumer in consumers.values():
            consumer.close()

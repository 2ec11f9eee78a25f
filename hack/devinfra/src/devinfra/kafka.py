"""A real Apache Kafka broker (KRaft, combined broker+controller) on loopback.

PLAINTEXT for most tests, or SASL_SSL with PLAIN - what Confluent Cloud speaks -
with a certificate generated at start. The broker keeps its ports and data
directory across stop()/kill()/start(), so a restart looks like the same broker
coming back to its clients.
"""

from __future__ import annotations

import base64
import secrets
import subprocess
import uuid
from pathlib import Path
from typing import Any, Self

from devinfra.procs import ManagedProcess, StartStop, free_port, wait_for
from devinfra.tls import make_server_tls
from devinfra.toolchain import Toolchain

_LOG4J2 = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""


def _cluster_id() -> str:
    """Kafka's Uuid.toString(): URL-safe base64 of 16 random bytes, unpadded.

    Like Kafka's own generator, never one that starts with "-": StorageTool's
    argument parser would read it as an option.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class KafkaBroker(StartStop):
    """Start with `with KafkaBroker(workdir) as broker:` or start()/stop()."""

    def __init__(
        self,
        workdir: Path,
        *,
        sasl: bool = False,
        port: int | None = None,
        heap: str = "512m",
        toolchain: Toolchain | None = None,
    ) -> None:
        self.toolchain = toolchain or Toolchain.load()
        self.toolchain.require("kafka", "java")
        self.workdir = workdir
        self.sasl = sasl
        self.heap = heap
        self.port = port or free_port()
        self.controller_port = free_port()
        self.internal_port = free_port()
        self.security_protocol = "SASL_SSL" if sasl else "PLAINTEXT"
        self.sasl_mechanism: str | None = "PLAIN" if sasl else None
        self.sasl_username: str | None = "orders" if sasl else None
        self.sasl_password: str | None = secrets.token_urlsafe(16) if sasl else None
        self.ca_file: Path | None = None
        self._formatted = False
        self.process: ManagedProcess | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client_config(self) -> dict[str, Any]:
        """confluent-kafka settings that reach this broker."""
        config: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl:
            config |= {
                "sasl.mechanisms": self.sasl_mechanism,
                "sasl.username": self.sasl_username,
                "sasl.password": self.sasl_password,
                "ssl.ca.location": str(self.ca_file),
            }
        return config

    def service_env(self) -> dict[str, str]:
        """The services' environment variables (docs/contracts.md) for this broker."""
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers,
            "KAFKA_SECURITY_PROTOCOL": self.security_protocol,
        }
        if self.sasl:
            env |= {
                "KAFKA_SASL_MECHANISM": str(self.sasl_mechanism),
                "KAFKA_SASL_USERNAME": str(self.sasl_username),
                "KAFKA_SASL_PASSWORD": str(self.sasl_password),
                "KAFKA_SSL_CA_LOCATION": str(self.ca_file),
            }
        return env

    # -- configuration -------------------------------------------------------

    def _server_properties(self) -> str:
        data = self.workdir / "data"
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            "controller.listener.names=CONTROLLER",
            f"log.dirs={data}",
            "num.partitions=3",
            "auto.create.topics.enable=true",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=10",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "default.replication.factor=1",
            "min.insync.replicas=1",
            "group.initial.rebalance.delay.ms=0",
            "num.network.threads=2",
            "num.io.threads=2",
            "log.cleaner.dedupe.buffer.size=8388608",
            "message.max.bytes=2097152",
        ]
        if not self.sasl:
            lines += [
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},"
                f"CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
            ]
            return "\n".join(lines) + "\n"
        tls = make_server_tls(self.workdir / "tls")
        self.ca_file = tls.ca_pem
        jaas = (
            "org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'user_{self.sasl_username}="{self.sasl_password}";'
        )
        lines += [
            # Clients use SASL_SSL; the broker talks to itself on a loopback
            # PLAINTEXT listener that no client is given.
            f"listeners=SASL_SSL://127.0.0.1:{self.port},"
            f"INTERNAL://127.0.0.1:{self.internal_port},"
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=SASL_SSL://127.0.0.1:{self.port},"
            f"INTERNAL://127.0.0.1:{self.internal_port}",
            "listener.security.protocol.map=SASL_SSL:SASL_SSL,INTERNAL:PLAINTEXT,"
            "CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name=INTERNAL",
            "sasl.enabled.mechanisms=PLAIN",
            f"listener.name.sasl_ssl.plain.sasl.jaas.config={jaas}",
            "ssl.keystore.type=PEM",
            f"ssl.keystore.location={tls.keystore_pem}",
        ]
        return "\n".join(lines) + "\n"

    def _java(self, main_class: str, *args: str, heap: str) -> list[str]:
        return [
            str(self.toolchain.java),
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            "-cp",
            f"{self.toolchain.kafka_libs}/*",
            main_class,
            *args,
        ]

    def _format(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "log4j2.properties").write_text(_LOG4J2)
        props = self.workdir / "server.properties"
        props.write_text(self._server_properties())
        props.chmod(0o600)
        subprocess.run(
            self._java(
                "kafka.tools.StorageTool",
                "format",
                "-t",
                _cluster_id(),
                "-c",
                str(props),
                heap="128m",
            ),
            check=True,
            capture_output=True,
            text=True,
        )
        self._formatted = True

    # -- lifecycle -----------------------------------------------------------

    def start(self, timeout: float = 90.0) -> Self:
        if not self._formatted:
            self._format()
        self.process = ManagedProcess(
            "kafka",
            self._java("kafka.Kafka", str(self.workdir / "server.properties"), heap=self.heap),
            log_path=self.workdir / "kafka.log",
        ).start()
        wait_for(
            self._metadata_ok,
            timeout=timeout,
            what=f"Kafka broker at {self.bootstrap_servers}",
            interval=0.5,
            alive=self.process.ensure_running,
        )
        return self

    def _metadata_ok(self) -> bool:
        from confluent_kafka.admin import AdminClient

        # log_level 0: "connection refused" until the broker listens is expected.
        admin = AdminClient(self.client_config() | {"log_level": 0})
        metadata = admin.list_topics(timeout=2)
        return bool(metadata.brokers)

    def stop(self) -> None:
        if self.process:
            self.process.stop(timeout=30)

    def kill(self) -> None:
        if self.process:
            self.process.kill()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running

    def create_topics(self, names: list[str], partitions: int = 3) -> None:
        """Create the topics that do not exist yet and wait until they do."""
        from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

        admin = AdminClient(self.client_config())
        existing = set(admin.list_topics(timeout=10).topics)
        new = [NewTopic(n, num_partitions=partitions) for n in names if n not in existing]
        if not new:
            return
        for future in admin.create_topics(new, operation_timeout=30).values():
            try:
                future.result()
            except Exception as exc:  # TOPIC_ALREADY_EXISTS from a racing creator
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise

        def all_present() -> bool:
            return set(names) <= set(admin.list_topics(timeout=5).topics)

        wait_for(all_present, timeout=30, what=f"topics {names}")

"""A single-node Apache Kafka 4 broker in KRaft mode (broker + controller in one JVM)."""

from __future__ import annotations

import base64
import logging
import subprocess
import uuid

from hospital.errors import StackError
from hospital.settings import port_in_use
from hospital.stack import jvm
from hospital.stack.service import JvmService

_quiet = logging.getLogger("hospital.stack.kafka.client")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def broker_answers(bootstrap: str, timeout: float = 5.0) -> bool:
    """True when the broker returns cluster metadata."""
    from confluent_kafka.admin import AdminClient

    conf: dict[str, object] = {"bootstrap.servers": bootstrap, "logger": _quiet}
    admin = AdminClient(conf)  # type: ignore[arg-type]
    try:
        metadata = admin.list_topics(timeout=timeout)
    except Exception:  # any client error means "not healthy"
        return False
    return bool(metadata.brokers)


class Kafka(JvmService):
    name = "kafka"
    main_class = "kafka.Kafka"
    config_name = "server.properties"

    @property
    def heap_mb(self) -> int:
        return self.settings.kafka_heap_mb

    @property
    def external(self) -> bool:
        return not self.settings.local_kafka

    @property
    def port(self) -> int | None:
        return None if self.external else self.settings.kafka_port

    @property
    def address(self) -> str:
        return self.settings.bootstrap_servers

    def healthy(self) -> bool:
        if not self.external and (
            self.pid() is None
            or not port_in_use(self.settings.client_host, self.settings.kafka_port)
        ):
            return False
        return broker_answers(self.settings.bootstrap_servers)

    def properties(self) -> str:
        s = self.settings
        return "\n".join(
            [
                "# Written by `hospital stack up` on every start; edit settings, not this file.",
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@{s.client_host}:{s.kafka_controller_port}",
                f"listeners=PLAINTEXT://{s.host}:{s.kafka_port},"
                f"CONTROLLER://{s.host}:{s.kafka_controller_port}",
                f"advertised.listeners=PLAINTEXT://{s.client_host}:{s.kafka_port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                f"log.dirs={self.home / 'data'}",
                "num.partitions=1",
                "auto.create.topics.enable=true",
                # Single node: every internal topic has one replica.
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=10",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "log.retention.hours=168",
                "num.io.threads=4",
                "num.network.threads=2",
                "",
            ]
        )

    def prepare(self) -> None:
        """Format the KRaft storage once (the cluster id is kept beside it)."""
        if (self.home / "data" / "meta.properties").exists():
            return
        cluster_file = self.home / "cluster.id"
        if not cluster_file.exists():
            raw = uuid.uuid4().bytes
            cluster_file.write_text(base64.urlsafe_b64encode(raw).decode().rstrip("=") + "\n")
        cluster_id = cluster_file.read_text().strip()
        argv = jvm.java_command(
            self.settings,
            256,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(self.config_path),
            "--ignore-formatted",
        )
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"formatting Kafka storage failed: {result.stdout}{result.stderr}")

    def start(self) -> None:
        if self.external:
            if not self.healthy():
                raise StackError(f"the external Kafka at {self.address} does not answer")
            return
        self.ensure_ports_free(
            {
                "KAFKA_PORT": self.settings.kafka_port,
                "KAFKA_CONTROLLER_PORT": self.settings.kafka_controller_port,
            }
        )
        self.launch()

"""Stack configuration that needs no running service: ports in use, generated configs."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from hospital.errors import StackError
from hospital.settings import load_settings
from hospital.stack.connect import Connect
from hospital.stack.kafka import Kafka
from hospital.stack.postgres import Postgres


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("service", "field", "variable"),
    [
        (Kafka, "kafka_port", "KAFKA_PORT"),
        (Connect, "connect_port", "CONNECT_PORT"),
        (Postgres, "pg_port", "PG_PORT"),
    ],
)
def test_a_port_in_use_fails_fast_naming_the_variable(
    busy_port: int, tmp_path: Path, service: type, field: str, variable: str
) -> None:
    settings = load_settings(stack_dir=tmp_path / "stack", **{field: busy_port})
    with pytest.raises(StackError, match=variable):
        service(settings).start()
    assert not (tmp_path / "stack" / "postgres" / "data").exists()


def test_generated_configs_bind_to_loopback_only(tmp_path: Path) -> None:
    settings = load_settings(stack_dir=tmp_path, kafka_port=19999, kafka_controller_port=19998)
    kafka = Kafka(settings).properties()
    assert "listeners=PLAINTEXT://127.0.0.1:19999,CONTROLLER://127.0.0.1:19998" in kafka
    assert "process.roles=broker,controller" in kafka
    assert "zookeeper" not in kafka
    connect = Connect(settings).properties()
    assert f"listeners=http://127.0.0.1:{settings.connect_port}" in connect
    assert f"plugin.path={tmp_path / 'jvm' / 'plugins'}" in connect


def test_missing_prerequisites_say_what_to_install(tmp_path: Path) -> None:
    from hospital.errors import PrerequisiteError
    from hospital.stack import prerequisites

    settings = load_settings(
        java_bin="no-such-java", maven_bin="no-such-mvn", pg_bindir=tmp_path / "nothing"
    )
    with pytest.raises(PrerequisiteError, match="Java 17"):
        prerequisites.java(settings)
    with pytest.raises(PrerequisiteError, match="apt-get install maven"):
        prerequisites.maven(settings)
    found = prerequisites.pg_bindir(settings)  # falls back to pg_config / /usr/lib/postgresql
    assert (found / "initdb").exists()

"""Stack configuration that needs no running service: ports in use, generated configs."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from hospital.errors import StackError
from hospital.settings import Settings, load_settings
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


def _rules(text: str) -> list[list[str]]:
    return [line.split() for line in text.splitlines() if line and not line.startswith("#")]


def test_pg_hba_allows_no_physical_replication_and_cdc_reader_only_on_ehr(tmp_path: Path) -> None:
    from hospital.stack.postgres import hba

    rules = _rules(hba(load_settings(stack_dir=tmp_path)))
    # `replication` is the only keyword that matches physical replication (pg_basebackup):
    # without it nobody can copy the cluster. Logical replication matches by database name.
    assert not any("replication" in rule[1] for rule in rules)
    assert all(rule[-1] in ("scram-sha-256", "reject") for rule in rules)
    hosts = [rule for rule in rules if rule[0] == "host"]
    assert {rule[3] for rule in hosts} == {"127.0.0.1/32"}
    cdc = [rule for rule in hosts if rule[2] in ("cdc_reader", "all")]
    # First match wins: cdc_reader reaches ehr, is rejected elsewhere, everyone else uses scram.
    assert cdc[0][1:3] == ["ehr", "cdc_reader"] and cdc[0][-1] == "scram-sha-256"
    assert cdc[1][1:3] == ["all", "cdc_reader"] and cdc[1][-1] == "reject"

    own = {name: "not-the-default" for name in Settings.model_fields if "password" in name}
    remote = hba(load_settings(host="0.0.0.0", allow_remote=True, **own))
    assert {rule[3] for rule in _rules(remote) if rule[0] == "host"} == {
        "127.0.0.1/32",
        "0.0.0.0/0",
        "::/0",
    }


def test_stack_folder_is_no_wider_than_the_server_user_needs(tmp_path: Path) -> None:
    import os
    import tempfile

    from hospital.stack import Stack

    private = Stack(load_settings(stack_dir=tmp_path / "private" / ".stack"))
    private.prepare_folder()
    mode = private.settings.stack_path.stat().st_mode & 0o777
    reachable = Path(tempfile.mkdtemp(dir="/var/tmp"))
    try:
        reachable.chmod(0o755)
        shared = Stack(load_settings(stack_dir=reachable / ".stack"))
        shared.prepare_folder()
        shared_mode = shared.settings.stack_path.stat().st_mode & 0o777
        if os.geteuid() == 0 and shared.postgres.base.is_relative_to(shared.settings.stack_path):
            # As root the cluster runs as `postgres`, which must traverse into its data dir.
            assert shared_mode == 0o711
        else:
            assert shared_mode == 0o700
    finally:
        import shutil

        shutil.rmtree(reachable)
    if os.geteuid() == 0:
        # tmp_path is private to root: the cluster goes to /var/tmp, the folder stays 0700.
        assert not private.postgres.base.is_relative_to(private.settings.stack_path)
    assert mode == 0o700

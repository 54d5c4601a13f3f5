"""A stack started from nothing in its own directory and ports: idempotent `up`, repair of a
killed broker, and `down` leaving no process behind."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import psycopg
import pytest

from hospital.settings import Settings
from hospital.stack import Stack
from hospital.stack.process import alive
from tests.support import stack_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("fresh-stack")
    settings: Settings = stack_settings(
        stack_dir=root / "stack",
        lake_dir=root / "lake",
        pg_port=56532,
        kafka_port=19192,
        kafka_controller_port=19193,
        connect_port=18183,
        kafka_heap_mb=384,
        connect_heap_mb=512,
    )
    stack = Stack(settings)
    try:
        yield stack
    finally:
        stack.down()
        base = stack.postgres.base
        stack.postgres.destroy()
        assert not base.exists()


def test_up_from_nothing_then_up_again_is_a_no_op(fresh: Stack) -> None:
    assert not fresh.settings.stack_path.exists()

    first = fresh.up()

    assert [(r.service, r.action) for r in first] == [
        ("postgres", "started"),
        ("kafka", "started"),
        ("connect", "started"),
    ]
    assert all(s.healthy and s.pid for s in fresh.status())
    pids = {s.name: s.pid for s in fresh.status()}

    second = fresh.up()

    assert [r.action for r in second] == ["already running"] * 3
    # The stack folder is private: at most traversable for the server's user (as root).
    assert fresh.settings.stack_path.stat().st_mode & 0o777 == fresh.folder_mode()
    assert fresh.folder_mode() in (0o700, 0o711)
    assert {s.name: s.pid for s in fresh.status()} == pids
    with psycopg.connect(fresh.settings.dsn("ehr", "ehr_writer")) as conn:
        row = conn.execute("SHOW wal_level").fetchone()
    assert row == ("logical",)


def test_a_killed_broker_is_detected_and_only_it_restarts(fresh: Stack) -> None:
    before = {s.name: s.pid for s in fresh.status()}
    broker_pid = before["kafka"]
    assert broker_pid is not None
    os.kill(broker_pid, signal.SIGKILL)
    for _ in range(50):
        if not alive(broker_pid, str(fresh.kafka.config_path)):
            break
        time.sleep(0.1)

    status = {s.name: s for s in fresh.status()}
    assert not status["kafka"].running and not status["kafka"].healthy

    results = {r.service: r.action for r in fresh.up()}

    assert results == {
        "postgres": "already running",
        "kafka": "started",
        "connect": "already running",
    }
    after = {s.name: s.pid for s in fresh.status()}
    assert after["postgres"] == before["postgres"]
    assert after["connect"] == before["connect"]
    assert after["kafka"] not in (None, broker_pid)


def test_down_leaves_no_process_behind(fresh: Stack) -> None:
    assert fresh.leftover_processes()

    results = {r.service: r.action for r in fresh.down()}

    assert results == {"connect": "stopped", "kafka": "stopped", "postgres": "stopped"}
    assert fresh.leftover_processes() == []
    assert not any(s.running for s in fresh.status())

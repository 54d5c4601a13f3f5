"""Background process registry: real child processes, reused pids, stop with SIGTERM/SIGKILL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from hospital.errors import StackError
from hospital.settings import Settings, load_settings
from hospital.stack import Stack, background

SLEEPER = "import time; time.sleep(60)"
# Ignores SIGTERM: only SIGKILL ends it.
STUBBORN = (
    "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(stack_dir=tmp_path / "stack", lake_dir=tmp_path / "lake")


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _start(children: list[subprocess.Popen[bytes]], code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    children.append(proc)
    return proc


def _exists(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_register_lists_and_unregister_forgets(
    settings: Settings, children: list[subprocess.Popen[bytes]]
) -> None:
    child = _start(children, SLEEPER)
    background.register(settings, "dashboard", child.pid, port=8050, url="http://127.0.0.1:8050")

    live = background.running(settings)

    assert [(p.name, p.pid, p.port, p.url) for p in live] == [
        ("dashboard", child.pid, 8050, "http://127.0.0.1:8050")
    ]
    assert live[0].create_time == psutil.Process(child.pid).create_time()
    record = json.loads((settings.stack_path / "run" / "dashboard.json").read_text())
    assert record["pid"] == child.pid
    background.unregister(settings, "dashboard")
    assert background.running(settings) == []


def test_a_dead_process_record_is_dropped(
    settings: Settings, children: list[subprocess.Popen[bytes]]
) -> None:
    child = _start(children, SLEEPER)
    background.register(settings, "worker-cdc", child.pid)
    child.kill()
    child.wait()

    assert background.running(settings) == []
    assert not (settings.stack_path / "run" / "worker-cdc.json").exists()


def test_a_reused_pid_is_not_taken_for_ours(
    settings: Settings, children: list[subprocess.Popen[bytes]]
) -> None:
    # A live pid whose creation time differs from the record: what a recycled pid looks like.
    child = _start(children, SLEEPER)
    record = background.register(settings, "pgadmin", child.pid)
    path = settings.stack_path / "run" / "pgadmin.json"
    path.write_text(json.dumps({**record.as_dict(), "create_time": record.create_time - 100}))

    assert background.running(settings) == []
    assert background.stop_all(settings) == []
    assert child.poll() is None  # not signalled: it is not ours


def test_a_second_live_registration_under_one_name_is_refused(
    settings: Settings, children: list[subprocess.Popen[bytes]]
) -> None:
    first = _start(children, SLEEPER)
    second = _start(children, SLEEPER)
    background.register(settings, "dashboard", first.pid)
    with pytest.raises(StackError, match="already runs"):
        background.register(settings, "dashboard", second.pid)
    first.kill()
    first.wait()
    background.register(settings, "dashboard", second.pid)  # the stale one may be replaced
    assert [p.pid for p in background.running(settings)] == [second.pid]


def test_bad_names_and_dead_pids_are_refused(
    settings: Settings, children: list[subprocess.Popen[bytes]]
) -> None:
    child = _start(children, SLEEPER)
    with pytest.raises(StackError, match="invalid"):
        background.register(settings, "../escape", child.pid)
    child.kill()
    child.wait()
    with pytest.raises(StackError, match="does not run"):
        background.register(settings, "x", child.pid)


def test_stop_all_terminates_then_kills(
    settings: Settings, children: list[subprocess.Popen[bytes]]
) -> None:
    polite = _start(children, SLEEPER)
    stubborn = _start(children, STUBBORN)
    assert stubborn.stdout is not None
    assert stubborn.stdout.readline() == b"ready\n"  # SIGTERM handler installed
    background.register(settings, "polite", polite.pid)
    background.register(settings, "stubborn", stubborn.pid)

    stopped = background.stop_all(settings, timeout=1.0)

    assert sorted(p.name for p in stopped) == ["polite", "stubborn"]
    # Both are gone, the one that ignores SIGTERM included (stop_all reaped them, so Popen
    # can no longer see their exit status).
    assert not _exists(polite.pid)
    assert not _exists(stubborn.pid)
    assert background.running(settings) == []
    assert list((settings.stack_path / "run").glob("*.json")) == []


def test_stack_status_and_down_include_background_processes(
    settings: Settings, children: list[subprocess.Popen[bytes]]
) -> None:
    child = _start(children, SLEEPER)
    background.register(settings, "scheduler", child.pid, url="run")
    stack = Stack(settings)

    status = {s.name: s for s in stack.status()}
    assert status["scheduler"].kind == "background"
    assert status["scheduler"].pid == child.pid
    assert status["scheduler"].as_dict()["kind"] == "background"
    assert status["postgres"].kind == "service"

    results = stack.down()

    assert results[0].service == "scheduler" and results[0].action == "stopped"
    assert not _exists(child.pid)
    assert "scheduler" not in {s.name for s in stack.status()}


def test_stack_status_json_lists_background_processes(
    settings: Settings, children: list[subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    child = _start(children, SLEEPER)
    background.register(settings, "dashboard", child.pid, port=8050, url="http://127.0.0.1:8050")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("HOSPITAL_", "PG_", "KAFKA_", "CONNECT_"))
    }
    env["HOSPITAL_STACK_DIR"] = str(settings.stack_path)
    result = subprocess.run(
        [sys.executable, "-c", "from hospital.cli import app; app()", "stack", "status", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["dashboard"] == {
        "name": "dashboard",
        "kind": "background",
        "pid": child.pid,
        "port": 8050,
        "running": True,
        "healthy": True,
        "external": False,
        "address": "http://127.0.0.1:8050",
    }
    assert rows["postgres"]["kind"] == "service"

"""Supervised workers: real child processes, killed with SIGKILL, restarted, stopped cleanly."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from hospital.scheduler.supervisor import Supervisor, WorkerSpec, available_workers, settings_env
from hospital.settings import load_settings
from hospital.stack import background

LOOP = "import time, os\nprint('worker', os.getpid(), flush=True)\nwhile True: time.sleep(0.1)"


def wait_for(check, timeout: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_killed_worker_is_restarted_logged_and_registered(tmp_path: Path) -> None:
    settings = load_settings(hospital_stack_dir=str(tmp_path / "stack"))
    spec = WorkerSpec("looper", (sys.executable, "-c", LOOP))
    events: list[str] = []
    sup = Supervisor(settings, [spec], env={}, max_backoff=1.0, on_event=events.append)
    sup.start()
    try:
        first = sup.worker("looper").pid
        assert first is not None
        assert [r.pid for r in background.running(settings)] == [first]
        log = tmp_path / "stack" / "logs" / "worker-looper.log"
        assert wait_for(lambda: f"worker {first}" in log.read_text())
        os.kill(first, signal.SIGKILL)
        assert wait_for(lambda: sup.worker("looper").restarts == 1 and sup.worker("looper").running)
        second = sup.worker("looper").pid
        assert second != first
        assert [r.pid for r in background.running(settings)] == [second]
        assert any("exited with -9" in e for e in events)
        log = (tmp_path / "stack" / "logs" / "worker-looper.log").read_text()
        assert f"worker {first}" in log
        assert wait_for(
            lambda: (
                f"worker {second}"
                in (tmp_path / "stack" / "logs" / "worker-looper.log").read_text()
            )
        )
    finally:
        sup.stop(timeout=5)
    assert not sup.worker("looper").running
    assert background.running(settings) == []


def test_a_crash_looping_worker_backs_off(tmp_path: Path) -> None:
    settings = load_settings(hospital_stack_dir=str(tmp_path / "stack"))
    spec = WorkerSpec("crasher", (sys.executable, "-c", "raise SystemExit(3)"))
    sup = Supervisor(settings, [spec], env={}, max_backoff=2.0, register=False)
    sup.start()
    try:
        time.sleep(4.5)
        worker = sup.worker("crasher")
        # Backoff 1 s, 2 s, 2 s ...: a handful of restarts, not hundreds.
        assert 1 <= worker.restarts <= 4
        assert worker.last_exit == 3
    finally:
        sup.stop(timeout=5)


def test_sigterm_first_then_sigkill(tmp_path: Path) -> None:
    settings = load_settings(hospital_stack_dir=str(tmp_path / "stack"))
    stubborn = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('RE' + 'ADY', flush=True)\n"
        "while True: time.sleep(0.1)"
    )
    sup = Supervisor(
        settings, [WorkerSpec("stubborn", (sys.executable, "-c", stubborn))], env={}, register=False
    )
    sup.start()
    log = tmp_path / "stack" / "logs" / "worker-stubborn.log"
    assert wait_for(lambda: "READY" in log.read_text())
    t0 = time.monotonic()
    sup.stop(timeout=1.0)
    assert time.monotonic() - t0 < 10
    assert sup.worker("stubborn").last_exit == -signal.SIGKILL


def test_settings_env_round_trips(tmp_path: Path) -> None:
    settings = load_settings(hospital_stack_dir=str(tmp_path / "s"), pg_port=57071, num_people=1234)
    env = settings_env(settings)
    again = load_settings(**{k.lower(): v for k, v in env.items()})
    assert again.stack_path == settings.stack_path
    assert again.pg_port == 57071 and again.num_people == 1234
    assert again.password("analyst") == settings.password("analyst")


def test_every_stage_has_its_worker_and_only_filters() -> None:
    specs, missing = available_workers()
    assert {s.name: s.argv[3:] for s in specs} == {
        "cdc": ("cdc", "apply"),
        "stream": ("stream", "consume"),
        "batch": ("batch", "ingest", "--watch"),
        "fhir": ("fhir", "watch"),
    }
    assert missing == {}
    specs, missing = available_workers({"cdc"})
    assert [s.name for s in specs] == ["cdc"]
    assert missing == dict.fromkeys(("stream", "batch", "fhir"), "not selected")

"""A whole `hospital run` with its supervised workers; each worker is killed with SIGKILL once.

The killed workers are restarted (new pid in the stack's background registry, restarts counted
in the report), and the final reconciliation report is still clean (exit code 0).
Small world (20,000 people, 3 days paced at a few seconds each), own seed, dates, lake folder,
topic, consumer group and CDC connector; the CDC connector is removed at the end.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta

import psutil
import pytest

from hospital.batch import tables as batch_tables
from hospital.cdc import connector
from hospital.settings import Settings
from hospital.stack import background
from tests.integration.test_scheduler import drop_topic, forget_world, job_days, run_env

pytestmark = pytest.mark.integration

SEED = 7108
START = date(2032, 5, 1)
DAYS = [START + timedelta(days=i) for i in range(3)]
CDC = {
    "CDC_CONNECTOR_NAME": "scheduler-test-cdc",
    "CDC_TOPIC_PREFIX": "schedtest",
    "CDC_SLOT_NAME": "scheduler_test_slot",
    "CDC_GROUP": "scheduler-test-applier",
    "CDC_DLQ_TOPIC": "scheduler-test.cdc.dlq",
}


# The hospital database holds one world's batch data (the ingest ledger is keyed by the file's
# path under lake/batch): emptied before this run, as the batch tests do.


def empty_hospital_side(stack: Settings) -> None:
    batch_tables.empty(stack)


def worker_pids(stack: Settings) -> dict[str, int]:
    return {
        r.name.removeprefix("worker-"): r.pid
        for r in background.running(stack)
        if r.name.startswith("worker-")
    }


def wait_for(check, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


def test_run_with_workers_killed_restarts_them_and_reconciles(stack: Settings) -> None:
    lake = stack.lake_path / "scheduler-run-test"
    forget_world(stack, SEED, lake)
    empty_hospital_side(stack)
    env = {**run_env(stack, lake, SEED, START), **CDC}
    cdc_settings = stack.model_copy(update={k.lower(): v for k, v in CDC.items()})
    # Mirror tables emptied, so the new connector's snapshot is the whole truth.
    connector.reset(cdc_settings, mirrors=True)
    log = stack.stack_path / "logs" / "test-run.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    args = ["run", "--until", DAYS[-1].isoformat(), "--day-seconds", "12", "--no-stack"]
    args += ["--plain", "--drain-timeout", "150"]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hospital.cli", *args],
            env=env,
            cwd=stack.root,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert wait_for(lambda: len(worker_pids(stack)) >= 1, 60), log.read_text()[-3000:]
        time.sleep(2)
        before = worker_pids(stack)
        assert "fhir" in before  # the FHIR inbox watcher always exists
        rng = random.Random(SEED)
        killed: dict[str, int] = {}
        for name, pid in sorted(before.items()):
            time.sleep(rng.uniform(0.5, 4.0))  # at different points of the simulated day
            subprocess.run(["kill", "-9", str(pid)], check=True)
            killed[name] = pid
        # Each one comes back under a new pid (the supervisor's backoff starts at 1 s).
        assert wait_for(
            lambda: (
                all(worker_pids(stack).get(n, p) != p for n, p in killed.items())
                and set(worker_pids(stack)) >= set(killed)
            ),
            30,
        ), (worker_pids(stack), killed, log.read_text()[-3000:])
        rc = proc.wait(timeout=240)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        connector.reset(cdc_settings)
        drop_topic(stack, env["STREAM_TOPIC"])
    output = log.read_text()
    report = json.loads((lake / "reports" / "latest.json").read_text())
    assert rc == 0, output[-4000:]
    assert report["clean"] and report["verdict"] == "clean"
    restarts = {w["name"]: w["restarts"] for w in report["workers"]}
    for name in killed:
        assert restarts[name] >= 1, (name, restarts)
        assert f"{name} exited with -9" in output  # visible in the progress lines
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["ehr"]["clean"] and checks["ehr"]["in_ehr"] == len(DAYS)
    assert checks["fhir"]["clean"] and checks["fhir"]["files_waiting"] == 0
    for job, days in job_days(stack, SEED).items():
        assert days == DAYS, job
    # The workers are gone with the run, and unregistered.
    assert worker_pids(stack) == {}
    shutil.rmtree(lake, ignore_errors=True)


def test_sigterm_stops_the_run_and_its_workers_then_it_resumes(stack: Settings) -> None:
    seed, start = 7109, date(2033, 1, 1)
    days = [start + timedelta(days=i) for i in range(3)]
    lake = stack.lake_path / "scheduler-sigterm-test"
    forget_world(stack, seed, lake)
    empty_hospital_side(stack)
    env = {**run_env(stack, lake, seed, start), **CDC}
    cdc_settings = stack.model_copy(update={k.lower(): v for k, v in CDC.items()})
    connector.reset(cdc_settings, mirrors=True)
    args = ["run", "--until", days[-1].isoformat(), "--no-stack", "--plain"]
    log = stack.stack_path / "logs" / "test-run-sigterm.log"
    try:
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "hospital.cli", *args, "--day-seconds", "20"],
                env=env,
                cwd=stack.root,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        assert wait_for(lambda: "fhir" in worker_pids(stack), 60), log.read_text()[-3000:]
        workers = worker_pids(stack)
        time.sleep(random.Random(seed).uniform(3, 12))  # somewhere inside the first day
        proc.terminate()  # SIGTERM, as `hospital stack down` sends it
        rc = proc.wait(timeout=60)
        output = log.read_text()
        assert rc == 1, output[-3000:]  # stopped before its last day: not a clean report
        assert "SIGTERM" in output
        # Every worker is gone and unregistered.
        assert worker_pids(stack) == {}
        assert all(
            not psutil.pid_exists(p) or psutil.Process(p).status() == "zombie"
            for p in workers.values()
        )
        report = json.loads((lake / "reports" / "latest.json").read_text())
        assert report["engine"]["stopped_early"]
        stopped_at = job_days(stack, seed)
        assert all(d < days[-1] for ds in stopped_at.values() for d in ds)
        # Resumed at max speed: each job ends with each day exactly once.
        resumed = subprocess.run(
            [sys.executable, "-m", "hospital.cli", *args, "--speed", "max"],
            env=env,
            cwd=stack.root,
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert resumed.returncode == 0, resumed.stdout[-4000:]
        for job, job_days_ in job_days(stack, seed).items():
            assert job_days_ == days, job
    finally:
        if proc.poll() is None:
            proc.kill()
        connector.reset(cdc_settings)
        drop_topic(stack, env["STREAM_TOPIC"])
    shutil.rmtree(lake, ignore_errors=True)

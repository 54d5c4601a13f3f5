"""`hospital run` killed (SIGKILL) at named crash points, then resumed: every job ran once per day.

Runs the real command in a subprocess against the test stack, without workers (the exactly-once
bookkeeping of the day loop is what is checked here; test_run.py runs the whole pipeline).
Own world (seed, start date in 2031) and own lake folder, so nothing collides with other tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from hospital.scheduler.crash import CRASH_AT_ENV
from hospital.scheduler.supervisor import settings_env
from hospital.settings import Settings
from hospital.simulator.ehr_writer import truncate_ehr

pytestmark = pytest.mark.integration

SEED = 7107
START = date(2031, 3, 1)
DAYS = [START + timedelta(days=i) for i in range(3)]


def run_env(stack: Settings, lake: Path, seed: int, start: date) -> dict[str, str]:
    nonce = uuid.uuid4().hex[:8]
    env = {k: v for k, v in os.environ.items() if k != CRASH_AT_ENV}
    env.update(settings_env(stack))
    env.update(
        {
            "SEED": str(seed),
            "START_DATE": start.isoformat(),
            "NUM_PEOPLE": "20000",
            "HOSPITAL_LAKE_DIR": str(lake),
            # Fresh names per run: a consumer group's offsets outlive a dropped topic.
            "STREAM_TOPIC": f"scheduler-test-{seed}-{nonce}",
            "STREAM_GROUP": f"scheduler-test-{seed}-{nonce}",
            "STREAM_INSTANCE_ID": f"scheduler-test-{seed}-{nonce}",
            "CI": "1",
        }
    )
    return env


def hospital(
    args: list[str], env: dict[str, str], root: Path, timeout: float = 150
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hospital.cli", *args],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def forget_world(stack: Settings, seed: int, lake: Path) -> None:
    """An empty EHR, no scheduler records or snapshots of this world, an empty lake folder."""
    truncate_ehr(stack.dsn("ehr", "ehr_writer"))
    with psycopg.connect(stack.dsn("hospital", "hospital_app"), autocommit=True) as conn:
        for table in ("scheduler_job_days", "scheduler_progress"):
            conn.execute(f"DELETE FROM {table} WHERE world LIKE %s", (f"seed={seed};%",))
    shutil.rmtree(lake, ignore_errors=True)
    shutil.rmtree(stack.stack_path / "scheduler" / "snapshots", ignore_errors=True)


def drop_topic(stack: Settings, topic: str) -> None:
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    for future in admin.delete_topics([topic], operation_timeout=30).values():
        # The topic may not exist (the stream stage absent): nothing to drop then.
        with contextlib.suppress(Exception):
            future.result(timeout=30)


def job_days(stack: Settings, seed: int) -> dict[str, list[date]]:
    with psycopg.connect(stack.dsn("hospital", "hospital_app")) as conn:
        rows = conn.execute(
            "SELECT job, sim_day FROM scheduler_job_days WHERE world LIKE %s ORDER BY 1, 2",
            (f"seed={seed};%",),
        ).fetchall()
    out: dict[str, list[date]] = {}
    for job, day in rows:
        out.setdefault(job, []).append(day)
    return out


def test_crash_points_then_resume_run_each_job_once_per_day(stack: Settings) -> None:
    lake = stack.lake_path / "scheduler-crash-test"
    forget_world(stack, SEED, lake)
    env = run_env(stack, lake, SEED, START)
    args = ["run", "--until", DAYS[-1].isoformat(), "--speed", "max", "--no-workers"]
    args += ["--no-stack", "--plain", "--drain-timeout", "0"]
    day2 = DAYS[1].isoformat()
    # Each run is killed with SIGKILL at its crash point: after the simulator wrote day 2 to the
    # EHR but before it was recorded, then after the batch writer wrote day 2 (unrecorded),
    # then in the middle of day 3's stream windows.
    for point in (
        f"simulator:after_run:{day2}",
        f"batch:after_run:{day2}",
        f"stream:mid_day:{DAYS[2].isoformat()}",
    ):
        crashed = hospital(args, {**env, CRASH_AT_ENV: point}, stack.root)
        assert crashed.returncode == -9, (point, crashed.stdout[-2000:], crashed.stderr[-2000:])
    final = hospital(args, env, stack.root)
    # Without workers nothing ingests the batch/FHIR files: the report may list differences
    # (exit 1), but the run itself must finish (not crash, not error out with 2).
    assert final.returncode in (0, 1), final.stdout[-3000:] + final.stderr[-3000:]
    done = job_days(stack, SEED)
    assert set(done) >= {"simulator", "batch", "fhir"}
    for job, days in done.items():
        assert days == DAYS, job  # every day, once (the primary key forbids a second record)
    # The effects, checked at their destinations.
    with psycopg.connect(stack.dsn("ehr", "hospital_app")) as conn:
        ehr_days = [r[0] for r in conn.execute("SELECT sim_day FROM sim_days ORDER BY 1")]
    assert ehr_days == DAYS
    for day in DAYS:
        drop = lake / "batch" / f"date={day.isoformat()}"
        assert (drop / "manifest.json").exists(), drop
        bundles = list((lake / "fhir" / "inbox").glob(f"day-{day.isoformat()}-*.json"))
        assert bundles, day
    # The resumed world equals an uninterrupted one: day 3's admissions are the ones a plain
    # simulation of the same seed produces.
    from hospital.simulator.activity import HospitalSim
    from hospital.simulator.api import build_population
    from hospital.simulator.config import SimConfig

    config = SimConfig.from_settings(stack, seed=SEED, num_people=20_000, origin=START)
    sim = HospitalSim(config, build_population(config))
    results = [sim.step() for _ in DAYS]
    with psycopg.connect(stack.dsn("ehr", "hospital_app")) as conn:
        visits = conn.execute(
            "SELECT count(*) FROM visits WHERE started_at >= %s AND started_at < %s",
            (DAYS[2], DAYS[2] + timedelta(days=1)),
        ).fetchone()
    expected = results[2].visits.filter(results[2].visits["started_at"].dt.date() == DAYS[2]).height
    assert visits is not None and visits[0] == expected
    report = json.loads((lake / "reports" / "latest.json").read_text())
    assert report["engine"]["last_completed_day"] == DAYS[-1].isoformat()
    drop_topic(stack, env["STREAM_TOPIC"])

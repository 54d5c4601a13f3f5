"""End-to-end benchmark: `hospital run --speed max` through every available path.

Run: ``uv run python bench/end_to_end.py [--days N] [--people N] [--runs N]`` with the stack's
variables in the environment (``set -a; . my.env; set +a``). Writes
``bench/results/end_to_end.json``.

Each run starts from an empty world on the stack it is pointed at (**it empties the EHR and the
hospital side's batch/stream tables of that stack**): its own seed, lake folder, stream topic and
consumer group. It measures simulated days per real minute (the day loop, and the whole run
including the workers catching up), rows per second per path (what the scheduler pushed and what
the sinks report in ``pipeline_metrics``), the peak memory (RSS) of every process (scheduler,
each worker, PostgreSQL, Kafka, Connect), and the reconciliation verdict.

Baseline: the same days of the same world written by the simulator alone (``--jobs simulator
--no-workers``: the EHR transactions and nothing else), so the ratio is what carrying every path
costs. Both sides commit every day. Runs alternate; medians are reported with
``os.getloadavg()`` at start and end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import psycopg

from hospital.batch import tables as batch_tables
from hospital.cdc import connector
from hospital.clock import utcnow
from hospital.scheduler.supervisor import settings_env
from hospital.settings import Settings, get_settings
from hospital.simulator.ehr_writer import truncate_ehr

RESULTS = Path(__file__).parent / "results" / "end_to_end.json"
SINK_METRICS = ("rows_applied", "events_applied", "rows_loaded")


def fresh_world(settings: Settings, lake: Path) -> None:
    truncate_ehr(settings.dsn("ehr", "ehr_writer"))
    batch_tables.empty(settings)
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        conn.execute("DELETE FROM scheduler_job_days WHERE world LIKE 'seed=9090;%'")
        conn.execute("DELETE FROM scheduler_progress WHERE world LIKE 'seed=9090;%'")
    connector.reset(settings, mirrors=True)
    shutil.rmtree(lake, ignore_errors=True)
    shutil.rmtree(settings.stack_path / "scheduler" / "snapshots", ignore_errors=True)


class MemoryWatch:
    """Peak RSS per process label, sampled every 0.5 s over a process tree plus the services."""

    def __init__(self, root: int, services: dict[str, int]) -> None:
        self.root = root
        self.services = services
        self.peak_mb: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _label(self, proc: psutil.Process) -> str:
        if proc.pid == self.root:
            return "scheduler"
        cmd = " ".join(proc.cmdline())
        for worker in ("cdc apply", "stream consume", "batch ingest", "fhir watch", "fhir ingest"):
            if worker in cmd:
                return "worker " + worker.split()[0]
        return proc.name()

    def _sample(self) -> None:
        totals: dict[str, float] = {}
        try:
            tree = [psutil.Process(self.root), *psutil.Process(self.root).children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        for proc in tree:
            try:
                label = self._label(proc)
                totals[label] = totals.get(label, 0.0) + proc.memory_info().rss / 2**20
            except psutil.NoSuchProcess:
                continue
        for label, pid in self.services.items():
            try:
                main = psutil.Process(pid)
                procs = [main, *main.children(recursive=True)]
                totals[label] = sum(p.memory_info().rss for p in procs) / 2**20
            except psutil.NoSuchProcess:
                continue
        for label, mb in totals.items():
            if mb >= 1:  # a process caught while exiting reads 0
                self.peak_mb[label] = max(self.peak_mb.get(label, 0.0), round(mb, 1))

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def service_pids(settings: Settings) -> dict[str, int]:
    from hospital.stack import Stack

    return {s.name: s.pid for s in Stack(settings).status() if s.pid}


def sink_rows(settings: Settings, since: Any) -> dict[str, float]:
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        rows = conn.execute(
            "SELECT path, sum(value) FROM pipeline_metrics WHERE ts >= %s AND metric = ANY(%s) "
            "GROUP BY path",
            (since, list(SINK_METRICS)),
        ).fetchall()
    return {str(p): float(v) for p, v in rows}


def one_run(settings: Settings, days: int, people: int, full: bool) -> dict[str, Any]:
    lake = settings.lake_path / "bench-end-to-end"
    fresh_world(settings, lake)
    nonce = uuid.uuid4().hex[:8]
    env = {**os.environ, **settings_env(settings)}
    env.update(
        {
            "SEED": "9090",
            "NUM_PEOPLE": str(people),
            "HOSPITAL_LAKE_DIR": str(lake),
            "STREAM_TOPIC": f"bench-e2e-{nonce}",
            "STREAM_GROUP": f"bench-e2e-{nonce}",
            "STREAM_INSTANCE_ID": f"bench-e2e-{nonce}",
            "CI": "1",
        }
    )
    args = ["run", "--speed", "max", "--days", str(days), "--no-stack", "--plain"]
    args += ["--drain-timeout", "900"]
    if not full:
        args += ["--jobs", "simulator", "--no-workers"]
    since = utcnow()
    t0 = time.perf_counter()
    log = settings.stack_path / "logs" / f"bench-end-to-end-{'full' if full else 'sim'}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hospital.cli", *args],
            env=env,
            cwd=settings.root,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        with MemoryWatch(proc.pid, service_pids(settings) if full else {}) as watch:
            rc = proc.wait()
    wall = time.perf_counter() - t0
    latest = lake / "reports" / "latest.json"
    report = json.loads(latest.read_text())
    # The next run empties the lake: keep this run's report beside its log.
    shutil.copyfile(latest, log.with_suffix(".report.json"))
    loop_s = float(report["engine"]["seconds"])
    done = int(report["engine"]["days_completed"])
    out_run: dict[str, Any] = {
        "exit_code": rc,
        "verdict": report["verdict"],
        "days": done,
        "wall_s": round(wall, 2),
        "day_loop_s": round(loop_s, 2),
        "sim_days_per_real_minute_day_loop": round(done / loop_s * 60, 2),
        "sim_days_per_real_minute_whole_run": round(done / wall * 60, 2),
        "pushed_rows_per_s": {k: round(v / loop_s, 1) for k, v in report["totals"].items()},
        "peak_rss_mb": watch.peak_mb,
        "checks": {c["name"]: c["clean"] for c in report["checks"]},
    }
    out_run["job_seconds_per_day"] = job_seconds(settings)
    if full:
        out_run["sink_rows_per_s_whole_run"] = {
            k: round(v / wall, 1) for k, v in sink_rows(settings, since).items()
        }
    return out_run


def job_seconds(settings: Settings) -> dict[str, float]:
    """Mean seconds per simulated day of each job (what the day loop spends where)."""
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        rows = conn.execute(
            "SELECT job, avg(seconds) FROM scheduler_job_days WHERE world LIKE 'seed=9090;%' "
            "GROUP BY job"
        ).fetchall()
    return {str(j): round(float(v), 3) for j, v in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--people", type=int, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    settings = get_settings()
    people = args.people or settings.num_people
    load_start = os.getloadavg()
    full: list[dict[str, Any]] = []
    sim_only: list[dict[str, Any]] = []
    for i in range(args.runs):
        print(f"run {i + 1}/{args.runs}: full pipeline, {args.days} days, {people:,} people")
        full.append(one_run(settings, args.days, people, full=True))
        print(json.dumps(full[-1]))
        print(f"run {i + 1}/{args.runs}: simulator only")
        sim_only.append(one_run(settings, args.days, people, full=False))
        print(json.dumps(sim_only[-1]))
    load_end = os.getloadavg()

    def med(runs: list[dict[str, Any]], key: str) -> float:
        return round(statistics.median(float(r[key]) for r in runs), 2)

    full_rate = med(full, "sim_days_per_real_minute_whole_run")
    sim_rate = med(sim_only, "sim_days_per_real_minute_day_loop")
    peaks: dict[str, float] = {}
    for run in full:
        for label, mb in run["peak_rss_mb"].items():
            peaks[label] = max(peaks.get(label, 0.0), mb)
    result = {
        "benchmark": "end_to_end",
        "metrics": {
            "people": people,
            "sim_days_per_run": args.days,
            "runs": args.runs,
            "sim_days_per_real_minute_whole_run": full_rate,
            "sim_days_per_real_minute_day_loop": med(full, "sim_days_per_real_minute_day_loop"),
            "wall_s_median": med(full, "wall_s"),
            "minutes_for_1455_days_at_this_rate": round(1455 / full_rate, 1) if full_rate else None,
            "reconciliation_clean_runs": sum(1 for r in full if r["verdict"] == "clean"),
            "peak_rss_mb": peaks,
            "full_runs": full,
        },
        "baseline": {
            "what": "the same days of the same world, simulator + EHR writes only",
            "sim_days_per_real_minute": sim_rate,
            "runs": sim_only,
        },
        "ratios": {
            "full_pipeline_vs_simulator_only_speed": round(full_rate / sim_rate, 3)
            if sim_rate
            else None,
        },
        "loadavg_start": load_start,
        "loadavg_end": load_end,
        "notes": (
            "loadavg_start/loadavg_end record how busy the 2-core machine was; "
            "short runs (few days) are dominated by start-up (population, workers, CDC snapshot) "
            "and the drain wait, so whole-run days/minute understates a long run's rate."
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["metrics"], indent=2, default=str))


if __name__ == "__main__":
    main()

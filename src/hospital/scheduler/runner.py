"""``hospital run``: stack up, CDC registered, workers supervised, the day loop, drain, report.

The library entry point is :func:`run`; the CLI only parses options and prints. Ctrl-C or
SIGTERM asks the day loop to stop at the next safe point (between stream windows or days): the
unfinished day stays unrecorded, workers get SIGTERM, and the next run resumes there.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from types import FrameType
from typing import Any

from rich.console import Console

from hospital.errors import HospitalError
from hospital.scheduler import report as reports
from hospital.scheduler.engine import Engine, EngineReport, resume_day
from hospital.scheduler.jobs import Counters, default_jobs
from hospital.scheduler.profiles import RunPlan, plan_run
from hospital.scheduler.progress import Progress
from hospital.scheduler.snapshot import snapshot_dir
from hospital.scheduler.state import PgState, SchedulerError
from hospital.scheduler.supervisor import Supervisor, available_workers
from hospital.settings import Settings
from hospital.simulator.config import SimConfig
from hospital.stack import background


@dataclass
class RunOptions:
    profile: str | None = None
    seconds_per_day: float | None = None
    days: int | None = None
    until: date | None = None
    workers: bool = True
    start_stack: bool = True
    jobs: set[str] | None = None  # None: every available job
    drain_timeout: float | None = None  # None: RUN_DRAIN_TIMEOUT_SECONDS
    plain: bool | None = None  # None: plain lines unless on a terminal


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event, console: Console) -> Iterator[None]:
    """First Ctrl-C / SIGTERM: stop at the next safe point. A second Ctrl-C: stop now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()
        console.print(
            f"[yellow]{signal.Signals(signum).name}: finishing the current step, then stopping "
            "(Ctrl-C again to abandon it)[/]"
        )

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _people(settings: Settings, config: SimConfig) -> Any:
    """The population, from the parquet cache (written on first use: 5M people take ~10 s)."""
    from hospital.simulator import api

    seeds = api.seeds_dir(settings)
    meta = seeds / "people.meta.json"
    wanted = {
        "seed": config.seed,
        "num_people": config.num_people,
        "origin": config.origin.isoformat(),
    }
    if not meta.exists() or json.loads(meta.read_text()) != wanted:
        api.population_files(config, seeds)
    return api.build_population(config, seeds)


def claim_ehr(settings: Settings, config: SimConfig) -> None:
    """Refuse an EHR holding another world, before the population is built (5M take a while)."""
    from hospital.simulator.ehr_writer import EhrWriter

    with EhrWriter(settings.dsn("ehr", "ehr_writer")) as writer:
        writer.claim_world(config)


def start_dashboard(settings: Settings) -> str | None:
    """Start the dashboard in the background and return its URL."""
    from hospital.dashboard.server import start_background

    return start_background(settings)


def start_pgadmin(settings: Settings) -> str | None:
    """Start pgAdmin 4 in the background unless PGADMIN_ENABLED=false; its URL, if started."""
    if not settings.pgadmin_enabled:
        return None
    from hospital.dashboard.pgadmin import ensure_pgadmin

    return ensure_pgadmin(settings)


def claim_lake(settings: Settings, config: SimConfig) -> None:
    """Refuse a lake that holds another simulated world's files (``lake/.world``).

    The batch ledger and the stream lake are keyed by file path and date: a second world in the
    same lake would collide with the first one's files and look like lost or extra rows.
    """
    marker = settings.lake_path / ".world"
    key = config.key()
    if marker.exists():
        held = marker.read_text().strip()
        if held != key:
            raise SchedulerError(
                f"the lake {settings.lake_path} holds another simulated world ({held}); this "
                f"run is {key}. Use the same SEED/NUM_PEOPLE/START_DATE, or empty the lake and "
                "the hospital database first."
            )
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(".world.tmp")
    tmp.write_text(key + "\n")
    tmp.replace(marker)


def _unregister_self(settings: Settings) -> None:
    with contextlib.suppress(Exception):
        background.unregister(settings, "scheduler", os.getpid())


def prepare(
    settings: Settings, options: RunOptions
) -> tuple[SimConfig, RunPlan, PgState, list[Any], dict[str, str]]:
    """The world, the plan (resuming at the first unfinished day), the state and the jobs."""
    probe = plan_run(settings, settings.start_date, options.profile, options.seconds_per_day)
    config = SimConfig.from_settings(settings, num_people=probe.num_people)
    claim_ehr(settings, config)
    claim_lake(settings, config)
    jobs, missing = default_jobs(options.jobs)
    state = PgState(settings.dsn("hospital", "hospital_app"), config.key())
    # Days the EHR already holds (say from `hospital simulate range`) are skipped by the
    # simulator job (idempotent) and still streamed, batched and exported by the others.
    first = resume_day(state, jobs, config.origin)
    plan = plan_run(
        settings, first, options.profile, options.seconds_per_day, options.days, options.until
    )
    return config, plan, state, jobs, missing


def run(
    settings: Settings,
    options: RunOptions,
    console: Console | None = None,
    stop: threading.Event | None = None,
) -> reports.RunReport:
    console = console or Console()
    stop = stop or threading.Event()
    started_at = reports.now()
    t0 = time.perf_counter()
    if options.start_stack:
        from hospital.stack import Stack

        with console.status("starting the stack"):
            Stack(settings).up()
    background.register(settings, "scheduler", os.getpid())
    try:
        return _run(settings, options, console, stop, started_at, t0)
    finally:
        _unregister_self(settings)


def _run(
    settings: Settings,
    options: RunOptions,
    console: Console,
    stop: threading.Event,
    started_at: Any,
    t0: float,
) -> reports.RunReport:
    config, plan, state, jobs, missing = prepare(settings, options)
    specs, missing_workers = available_workers() if options.workers else ([], {})
    unavailable = {f"job {k}": v for k, v in missing.items()}
    unavailable.update({f"worker {k}": v for k, v in missing_workers.items()})
    run_id = state.start_run(plan.profile)
    counters = Counters()
    workers_on = {s.name for s in specs}
    events: list[str] = []
    progress: Progress | None = None

    def event(message: str) -> None:
        events.append(message)
        if progress is not None:
            progress.event(message)
        else:
            console.print(f"[yellow]{message}[/]")

    if "cdc" in workers_on:
        try:
            from hospital.cdc.connector import register

            register(settings, sink="applier")
        except HospitalError as exc:
            event(f"CDC connector not registered: {exc}")
    supervisor = Supervisor(settings, specs, on_event=event)
    engine_report = EngineReport(first=plan.first)
    error: str | None = None
    with console.status(f"loading {config.num_people:,} people"):
        people = _people(settings, config)
    progress = Progress(
        settings, counters, supervisor.status, plan.as_dict(), started_at, console, options.plain
    )
    console.print(
        f"run {run_id}: {plan.profile}, days {plan.first} .. {plan.last}, "
        f"speed {plan.as_dict()['speed']}; jobs {', '.join(j.name for j in jobs)}; "
        f"workers {', '.join(sorted(workers_on)) or 'none'}"
    )
    try:
        with stop_on_signals(stop, console):
            supervisor.start()
            progress.start()

            def on_day(day: date, rep: EngineReport) -> None:
                progress.day_done(day)
                state.metric("scheduler", "days_per_minute", progress.days_per_minute(), day)
                # Cumulative restarts per worker, under the worker's path (the dashboard charts it).
                for w in supervisor.status():
                    restarts = float(str(w["restarts"]))
                    state.metric(str(w["name"]), "worker_restarts", restarts, day)

            engine = Engine(
                settings,
                config,
                people,
                plan,
                jobs,
                state,
                stop,
                snapshot_dir(settings.stack_path) if settings.scheduler_snapshots else None,
                on_day,
                counters,
            )
            try:
                engine_report = engine.run()
            except HospitalError as exc:
                error = str(exc)
                engine_report = engine.report
            last = engine_report.last_completed or (plan.first - timedelta(days=1))
            checks = _drain(settings, options, config, plan.first, last, workers_on, stop, error)
    finally:
        progress.stop()
        supervisor.stop()
    result = reports.RunReport(
        plan=plan.as_dict(),
        engine=engine_report.as_dict(),
        workers=supervisor.status(),
        checks=checks,
        unavailable=unavailable,
        totals=dict(counters.rows),
        started_at=started_at,
        finished_at=reports.now(),
        wall_seconds=time.perf_counter() - t0,
        error=error,
    )
    if engine_report.stopped_early and error is None:
        result.error = "stopped before the last day (resume with `hospital run`)"
    reports.write(settings, result, [c.table for c in checks if c.table is not None])
    state.finish_run(run_id, "clean" if result.clean else "differences", result.as_dict())
    state.close()
    return result


def _drain(
    settings: Settings,
    options: RunOptions,
    config: SimConfig,
    first: date,
    last: date,
    workers: set[str],
    stop: threading.Event,
    error: str | None,
) -> list[reports.Check]:
    """Checks, repeated while the workers catch up (until clean, stopped or timed out)."""
    timeout = (
        settings.run_drain_timeout_seconds
        if options.drain_timeout is None
        else options.drain_timeout
    )
    deadline = time.monotonic() + (timeout if workers and error is None else 0)
    while True:
        # A stopped run (Ctrl-C, `stack down`) reports quickly: no waiting for the pipelines.
        quick = stop.is_set()
        checks = reports.run_checks(settings, config.key(), first, last, workers, quick)
        if quick or all(c.clean is not False for c in checks) or time.monotonic() >= deadline:
            return checks
        stop.wait(3.0)

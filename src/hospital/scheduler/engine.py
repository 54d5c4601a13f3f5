"""The clock-driven day loop: one :class:`SimClock`, every job once per simulated day.

Per day, in order: the simulator's step (in memory), then each job that has not recorded the
day: simulator (EHR), stream (paced windows across the day), batch and FHIR (the day's end).
A job's completion is recorded after its idempotent work, so a crash between the two re-runs
work that changes nothing, and a recorded day is never run again. The simulator is restored
from a snapshot (or replayed) to the first unfinished day, and snapshotted again as days finish.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from hospital.clock import SimClock, day_start
from hospital.scheduler import crash, snapshot
from hospital.scheduler.jobs import Counters, DayContext, Interrupted, Job, Pacer
from hospital.scheduler.profiles import RunPlan
from hospital.scheduler.state import SchedulerError, StateStore
from hospital.settings import Settings
from hospital.simulator.config import SimConfig
from hospital.simulator.population import People

RETRIES = 3  # attempts per job and day before the run stops (a broker restarting, say)


def resume_day(state: StateStore, jobs: Sequence[Job], origin: date) -> date:
    """The first simulated day some job has not finished.

    A job without any record (a first run, a run stopped inside its first day, or a stage that
    landed later) starts at the world's origin: every job sees every day of the world.
    """
    nexts = []
    for job in jobs:
        done = state.done_days(job.name)
        nexts.append(max(done) + timedelta(days=1) if done else origin)
    return min(nexts) if nexts else origin


@dataclass
class EngineReport:
    first: date | None = None
    last_completed: date | None = None
    days_completed: int = 0
    job_days: dict[str, int] = field(default_factory=dict)  # days run by this run, per job
    skipped: dict[str, int] = field(default_factory=dict)  # days already recorded
    replayed_days: int = 0
    snapshot_restored: bool = False
    stopped_early: bool = False
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "first_day": self.first.isoformat() if self.first else None,
            "last_completed_day": self.last_completed.isoformat() if self.last_completed else None,
            "days_completed": self.days_completed,
            "job_days": self.job_days,
            "skipped_job_days": self.skipped,
            "replayed_days": self.replayed_days,
            "snapshot_restored": self.snapshot_restored,
            "stopped_early": self.stopped_early,
            "seconds": round(self.seconds, 3),
        }


class Engine:
    def __init__(
        self,
        settings: Settings,
        config: SimConfig,
        people: People,
        plan: RunPlan,
        jobs: Sequence[Job],
        state: StateStore,
        stop: threading.Event | None = None,
        snapshot_folder: Path | None = None,
        on_day: Callable[[date, EngineReport], None] | None = None,
        counters: Counters | None = None,
    ) -> None:
        self.settings = settings
        self.config = config
        self.people = people
        self.plan = plan
        self.jobs = list(jobs)
        self.state = state
        self.stop = stop or threading.Event()
        self.snapshot_folder = snapshot_folder
        self.on_day = on_day
        self.counters = counters or Counters()
        self.clock = SimClock(plan.first, seconds_per_day=plan.seconds_per_day)
        self.report = EngineReport(first=plan.first)
        # Paced runs snapshot every day; max-speed runs every week (replaying <= 6 days is
        # cheaper than writing the snapshot daily) and at the end.
        self.snapshot_every = 1 if plan.seconds_per_day > 0 else 7

    def run(self) -> EngineReport:
        t0 = time.perf_counter()
        if self.plan.last < self.plan.first:
            self.report.seconds = time.perf_counter() - t0
            return self.report
        done = {job.name: self.state.done_days(job.name) for job in self.jobs}
        # A job with no record yet starts at the world's origin (see resume_day).
        start = {
            name: (max(days) + timedelta(days=1)) if days else self.config.origin
            for name, days in done.items()
        }
        sim, replayed, restored = snapshot.restore(
            self.snapshot_folder, self.config, self.people, self.plan.first
        )
        self.report.replayed_days = replayed
        self.report.snapshot_restored = restored
        pacer = Pacer(self.plan.seconds_per_day, self.stop.is_set)
        opened: list[Job] = []
        try:
            for job in self.jobs:
                job.open(self.settings, self.config)
                opened.append(job)
            while self.clock.today <= self.plan.last and not self.stop.is_set():
                day = self.clock.today
                pacer.begin_day()
                result = sim.step()
                if result.day != day:
                    raise SchedulerError(f"the simulator produced {result.day}, expected {day}")
                ctx = DayContext(
                    self.settings,
                    self.config,
                    self.plan,
                    day,
                    result,
                    pacer,
                    self.state,
                    self.counters,
                    self.stop.is_set,
                    sim=sim,
                    people=self.people,
                )
                if not self._run_jobs(ctx, done, start):
                    self.report.stopped_early = True
                    break
                if not pacer.wait_fraction(1.0):
                    self.report.stopped_early = True
                    # The day's jobs are recorded; the snapshot can still be taken.
                self.report.days_completed += 1
                self.report.last_completed = day
                self.clock.set(day_start(day + timedelta(days=1)))
                self.state.metric("scheduler", "sim_day_completed", float(day.toordinal()), day)
                if self.snapshot_folder is not None and (
                    self.report.days_completed % self.snapshot_every == 0 or day == self.plan.last
                ):
                    snapshot.save(self.snapshot_folder, sim)
                if self.on_day is not None:
                    self.on_day(day, self.report)
                if self.report.stopped_early:
                    break
            if self.stop.is_set():
                self.report.stopped_early = True
            # Only a simulator whose every stepped day is recorded may be snapshotted: one
            # stopped inside a day is ahead of the records (that day is simulated again).
            if (
                self.snapshot_folder is not None
                and self.report.days_completed
                and sim.today == self.clock.today
            ):
                snapshot.save(self.snapshot_folder, sim)
        finally:
            for job in reversed(opened):
                job.close()
            self.report.seconds = time.perf_counter() - t0
        return self.report

    def _run_jobs(
        self, ctx: DayContext, done: dict[str, set[date]], start: dict[str, date]
    ) -> bool:
        """Run the day's unfinished jobs; False when stopped inside the day."""
        for job in self.jobs:
            if ctx.day < start[job.name] or ctx.day in done[job.name]:
                self.report.skipped[job.name] = self.report.skipped.get(job.name, 0) + 1
                continue
            crash.point(job.name, "before", ctx.day)
            t0 = time.perf_counter()
            detail = self._attempt(job, ctx)
            if detail is None:
                return False
            crash.point(job.name, "after_run", ctx.day)
            self.state.record_done(job.name, ctx.day, time.perf_counter() - t0, detail)
            done[job.name].add(ctx.day)
            self.report.job_days[job.name] = self.report.job_days.get(job.name, 0) + 1
            crash.point(job.name, "after_record", ctx.day)
        return True

    def _attempt(self, job: Job, ctx: DayContext) -> dict[str, Any] | None:
        delay = 1.0
        for attempt in range(1, RETRIES + 1):
            try:
                return job.run_day(ctx)
            except Interrupted:
                return None
            except Exception as exc:
                if attempt == RETRIES or self.stop.is_set():
                    raise SchedulerError(
                        f"job {job.name} failed on {ctx.day} after {attempt} attempt(s): "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                self.state.metric(job.path, "job_retries", 1.0, ctx.day)
                if self.stop.wait(delay):
                    return None
                delay *= 2
        return None

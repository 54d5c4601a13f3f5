"""The scheduler's jobs: one small adapter per stage (stages are imported inside the job, so
``hospital --help`` does not pay for polars, Kafka and FHIR at start-up).

Every job's day is idempotent: the EHR
skips a day it holds (``sim_days``), stream events carry deterministic ids (the consumer
upserts), the batch writer replaces a day's folder atomically, the FHIR export rewrites the same
file names (the loader skips unchanged resources by hash). So a day run again after a crash
between "done" and "recorded" changes nothing; the (job, day) record then says it is done.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from hospital.scheduler import crash
from hospital.settings import Settings

if TYPE_CHECKING:
    from hospital.scheduler.profiles import RunPlan
    from hospital.scheduler.state import StateStore
    from hospital.simulator.activity import DayResult
    from hospital.simulator.config import SimConfig
    from hospital.simulator.events import DayEvents


class Pacer:
    """Real-time pacing of one simulated day (``seconds_per_day`` 0: never waits)."""

    def __init__(
        self,
        seconds_per_day: float,
        stop: Callable[[], bool],
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds_per_day = seconds_per_day
        self._stop = stop
        self._sleep = sleep
        self._now = now
        self.day_began = now()

    def begin_day(self) -> None:
        self.day_began = self._now()

    def wait_fraction(self, fraction: float) -> bool:
        """Sleep until ``fraction`` of the day's real duration has passed; False if stopped."""
        if self.seconds_per_day <= 0:
            return not self._stop()
        target = self.day_began + fraction * self.seconds_per_day
        while not self._stop():
            left = target - self._now()
            if left <= 0:
                return True
            self._sleep(min(left, 0.5))
        return False


@dataclass
class Counters:
    """What the scheduler pushed into each path (the display computes rates from it)."""

    rows: dict[str, int] = field(default_factory=dict)
    days: dict[str, int] = field(default_factory=dict)

    def add(self, path: str, rows: int) -> None:
        self.rows[path] = self.rows.get(path, 0) + rows


@dataclass
class DayContext:
    settings: Settings
    config: SimConfig
    plan: RunPlan
    day: date
    result: DayResult
    pacer: Pacer
    state: StateStore
    counters: Counters
    stopping: Callable[[], bool]
    sim: Any = None  # the HospitalSim after this day's step (staff as of the day)
    people: Any = None
    _events: DayEvents | None = None

    @property
    def events(self) -> DayEvents:
        if self._events is None:
            from hospital.simulator.events import day_events

            self._events = day_events(self.result)
        return self._events


class Interrupted(Exception):
    """A job stopped inside its day (Ctrl-C); the day stays unrecorded and resumes later."""


class Job(ABC):
    name: str
    path: str  # the pipeline_metrics path it reports under

    def open(self, settings: Settings, config: SimConfig) -> None:  # noqa: B027 - optional hook
        """Acquire connections once per run."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release them."""

    @abstractmethod
    def run_day(self, ctx: DayContext) -> dict[str, Any]:
        """Do the day's work (idempotently); return figures recorded with the day."""


class SimulatorJob(Job):
    """One EHR transaction per simulated day (``EhrWriter.apply``)."""

    name = "simulator"
    path = "scheduler"

    def __init__(self) -> None:
        self._writer: Any = None

    def open(self, settings: Settings, config: SimConfig) -> None:
        from hospital.simulator.ehr_writer import EhrWriter

        self._writer = EhrWriter(settings.dsn("ehr", "ehr_writer"))
        self._writer.claim_world(config)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def run_day(self, ctx: DayContext) -> dict[str, Any]:
        write = self._writer.apply(ctx.result, ctx.config.origin)
        rows = write.inserted + write.updated + write.deleted
        ctx.counters.add("ehr", rows)
        return {"applied": write.applied, "rows": rows}


class StreamJob(Job):
    """The day's real-time events, one window every ``cadence`` simulated minutes."""

    name = "stream"
    path = "stream"

    def __init__(self) -> None:
        self._producer: Any = None

    def open(self, settings: Settings, config: SimConfig) -> None:
        from hospital.stream.producer import StreamProducer

        self._producer = StreamProducer(settings)

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None

    def run_day(self, ctx: DayContext) -> dict[str, Any]:
        from hospital.simulator.events import ticks

        windows = list(ticks(ctx.events, ctx.plan.cadence_minutes))
        done_upto = ctx.state.progress(self.name, ctx.day)  # windows already published
        paced = not ctx.plan.max_speed
        published = 0
        for i, (_, events) in enumerate(windows):
            if i <= done_upto:
                continue
            # A window is published when its simulated minutes have passed in real time.
            if not ctx.pacer.wait_fraction(i / len(windows)):
                self._producer.flush()
                raise Interrupted
            if events:
                published += self._producer.publish(events)
            if paced:
                self._producer.flush()
                ctx.state.set_progress(self.name, ctx.day, i)
            if i == len(windows) // 2:
                crash.point(self.name, "mid_day", ctx.day)
            ctx.counters.add("stream", len(events))
        self._producer.flush()
        return {"events": len(ctx.events.realtime), "published": published}


class BatchJob(Job):
    """The day's batch files (``lake/batch/date=…``), written once at the end of the day."""

    name = "batch"
    path = "batch"

    def run_day(self, ctx: DayContext) -> dict[str, Any]:
        from hospital.batch import writer

        extra: dict[str, Any] = {}
        if ctx.sim is not None:
            extra["staff_changes"] = writer.staff_changes(ctx.sim, ctx.result)
        if ctx.day == ctx.config.origin:
            # The world's first day also carries the initial load (people, staff, census).
            from hospital.simulator.api import initial_patients

            writer.write_initial_load(
                ctx.settings,
                people=ctx.people.frame,
                staff=ctx.sim.staff.frame(ctx.day),
                assignments=ctx.result.staff_assignments,
                census=initial_patients(ctx.result),
                config=ctx.config,
            )
        folder = writer.write_day(ctx.settings, ctx.events, **extra)
        b = ctx.events.batch
        rows = sum(
            f.height
            for f in (
                b.admissions,
                b.discharges,
                b.staff_assignments,
                b.pharmacy_orders,
                b.transfers,
                b.transports,
            )
        )
        ctx.counters.add("batch", rows)
        return {"folder": str(folder), "rows": rows}


def touched_patients(result: DayResult) -> list[str]:
    """Patients whose EHR record the day created or extended (the day's FHIR export)."""
    ids: set[str] = set()
    for frame in (result.patients, result.visits, result.allergies, result.medications):
        if frame.height and "patient_id" in frame.columns:
            ids.update(str(v) for v in frame["patient_id"].to_list())
    return sorted(ids)


BUNDLE_PATIENTS = 100  # patients per FHIR bundle file


class FhirJob(Job):
    """The day's touched patients as FHIR bundles dropped into ``lake/fhir/inbox``."""

    name = "fhir"
    path = "fhir"

    def __init__(self) -> None:
        self._conn: Any = None

    def open(self, settings: Settings, config: SimConfig) -> None:
        import psycopg

        self._conn = psycopg.connect(settings.dsn("ehr", "hospital_app"))
        self._conn.read_only = True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def run_day(self, ctx: DayContext) -> dict[str, Any]:
        import json

        from hospital.fhir.export import bundle_for, read_records

        ids = touched_patients(ctx.result)
        records = read_records(self._conn, patient_ids=ids)
        self._conn.rollback()
        inbox = ctx.settings.lake_path / "fhir" / "inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        resources = files = 0
        for n, start in enumerate(range(0, len(records), BUNDLE_PATIENTS)):
            bundle = bundle_for(records[start : start + BUNDLE_PATIENTS])
            # Same day, same names: a re-run overwrites its own files. Written as a dot-file
            # and renamed, so the inbox watcher never reads half a file; compact JSON (a third
            # of the indented form's encoding time: this job is the day loop's longest).
            path = inbox / f"day-{ctx.day.isoformat()}-{n:05d}.json"
            tmp = path.with_name("." + path.name)
            tmp.write_text(json.dumps(bundle, ensure_ascii=False, separators=(",", ":")))
            tmp.replace(path)
            resources += len(bundle["entry"])
            files += 1
        ctx.counters.add("fhir", resources)
        return {"patients": len(records), "resources": resources, "files": files}


JOB_ORDER: tuple[type[Job], ...] = (SimulatorJob, StreamJob, BatchJob, FhirJob)


def default_jobs(only: set[str] | None = None) -> tuple[list[Job], dict[str, str]]:
    """(the jobs to run in day order, {job left out: why}); ``only`` filters by name."""
    jobs: list[Job] = []
    missing: dict[str, str] = {}
    for cls in JOB_ORDER:
        job = cls()
        if only is not None and job.name not in only:
            missing[job.name] = "not selected"
        else:
            jobs.append(job)
    return jobs, missing

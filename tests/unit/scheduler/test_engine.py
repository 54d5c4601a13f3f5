"""The day loop on simulated time: exactly once per (job, day), crash points, resume, snapshots."""

from __future__ import annotations

import hashlib
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from hospital.scheduler import crash, snapshot
from hospital.scheduler.engine import Engine, resume_day
from hospital.scheduler.jobs import DayContext, Job
from hospital.scheduler.profiles import RunPlan
from hospital.scheduler.state import MemoryState
from hospital.settings import Settings
from hospital.simulator.activity import DayResult, HospitalSim
from hospital.simulator.api import build_population
from hospital.simulator.config import SimConfig
from hospital.simulator.population import People

CONFIG = SimConfig(seed=11, num_people=3_000, origin=date(2022, 3, 1))


@pytest.fixture(scope="module")
def people() -> People:
    return build_population(CONFIG)


def fingerprint(result: DayResult) -> str:
    """A digest of the day's content (visits, roster, movements, occupancy)."""
    digest = hashlib.sha256()
    for frame in (
        result.visits,
        result.staff_assignments,
        result.transfers,
        result.discharges,
        result.occupancy,
    ):
        digest.update(frame.write_csv().encode())
    return digest.hexdigest()


class Recording(Job):
    """Records every effect it performs (duplicates too) and a digest of the day it saw."""

    def __init__(self, name: str, effects: list[tuple[str, date, str]]) -> None:
        self.name = name
        self.path = name
        self.effects = effects

    def run_day(self, ctx: DayContext) -> dict[str, Any]:
        self.effects.append((self.name, ctx.day, fingerprint(ctx.result)))
        return {"visits": ctx.result.visits.height}


def plan(first: date, days: int) -> RunPlan:
    return RunPlan("test", first, first + timedelta(days=days - 1), 0.0, 60, 3_000, 11)


def until(first: date, last_index: int) -> RunPlan:
    return RunPlan("test", first, CONFIG.origin + timedelta(days=last_index), 0.0, 60, 3_000, 11)


def run(
    people: People,
    state: MemoryState,
    effects: list[tuple[str, date, str]],
    days: int,
    folder: Path | None,
    last_index: int | None = None,
) -> Engine:
    jobs = [Recording(n, effects) for n in ("simulator", "stream", "batch", "fhir")]
    first = resume_day(state, jobs, CONFIG.origin)
    p = plan(first, days) if last_index is None else until(first, last_index)
    engine = Engine(Settings(), CONFIG, people, p, jobs, state, None, folder)
    engine.run()
    return engine


def reference(people: People, days: int) -> dict[date, str]:
    sim = HospitalSim(CONFIG, people)
    out = {}
    for _ in range(days):
        r = sim.step()
        out[r.day] = fingerprint(r)
    return out


def test_each_job_runs_once_per_day(people: People, tmp_path: Path) -> None:
    state, effects = MemoryState(), []
    engine = run(people, state, effects, 4, tmp_path)
    assert engine.report.days_completed == 4
    assert len(effects) == 16 == len(set(effects))
    assert sorted(state.records) == sorted({(j, d) for j, d, _ in effects})
    # The day loop hands every job the same world a plain simulation produces.
    ref = reference(people, 4)
    assert all(first == ref[d] for _, d, first in effects)


@pytest.mark.parametrize(
    ("job", "phase", "day_index"),
    [
        ("simulator", "before", 0),
        ("stream", "after_run", 1),
        ("batch", "after_record", 2),
        ("fhir", "after_run", 3),
        ("simulator", "after_run", 2),
    ],
)
def test_crash_then_resume_runs_every_day_once(
    people: People,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    job: str,
    phase: str,
    day_index: int,
) -> None:
    day = CONFIG.origin + timedelta(days=day_index)
    monkeypatch.setenv(crash.CRASH_AT_ENV, f"{job}:{phase}:{day.isoformat()}")
    monkeypatch.setenv(crash.CRASH_MODE_ENV, "raise")
    state, effects = MemoryState(), []
    with pytest.raises(crash.SimulatedCrash):
        run(people, state, effects, 5, tmp_path)
    monkeypatch.delenv(crash.CRASH_AT_ENV)
    run(people, state, effects, 0, tmp_path, last_index=4)
    recorded = state.records
    # Recorded exactly once per job and day, for every one of the five days.
    assert len(recorded) == len(set(recorded))
    five = {CONFIG.origin + timedelta(days=i) for i in range(5)}
    for name in ("simulator", "stream", "batch", "fhir"):
        assert {d for j, d in recorded if j == name} == five
    # An effect is repeated only when the crash fell between the effect and its record.
    repeats = len(effects) - len(set(effects))
    assert repeats == (1 if phase == "after_run" else 0)
    # Resumed days see the same world as an uninterrupted simulation.
    ref = reference(people, 5)
    assert all(first == ref[d] for _, d, first in effects)


def test_snapshot_resume_does_not_replay(people: People, tmp_path: Path) -> None:
    state, effects = MemoryState(), []
    run(people, state, effects, 3, tmp_path)
    second = run(people, state, effects, 2, tmp_path)
    assert second.report.snapshot_restored
    assert second.report.replayed_days == 0
    assert second.report.first == CONFIG.origin + timedelta(days=3)
    ref = reference(people, 5)
    assert all(first == ref[d] for _, d, first in effects)
    assert len(effects) == 20 == len(set(effects))


def test_without_snapshot_the_world_is_replayed(people: People, tmp_path: Path) -> None:
    state, effects = MemoryState(), []
    run(people, state, effects, 2, None)
    second = run(people, state, effects, 2, tmp_path / "empty")
    assert not second.report.snapshot_restored
    assert second.report.replayed_days == 2
    ref = reference(people, 4)
    assert all(first == ref[d] for _, d, first in effects)


def test_snapshot_roundtrip_keeps_people_out(people: People, tmp_path: Path) -> None:
    sim = HospitalSim(CONFIG, people)
    sim.step()
    path = snapshot.save(tmp_path, sim)
    # The population is stored as a reference: no person's national id is in the file.
    assert str(people.frame["national_id"][0]).encode() not in path.read_bytes()
    loaded = snapshot.load(tmp_path, CONFIG, people, sim.today)
    assert loaded is not None and loaded.people is people and loaded.today == sim.today
    assert fingerprint(loaded.step()) == fingerprint(sim.step())
    # A damaged snapshot is skipped, not trusted.
    path.write_bytes(b"garbage")
    assert snapshot.load(tmp_path, CONFIG, people, sim.today) is None


def test_a_job_without_records_starts_at_the_origin(people: People, tmp_path: Path) -> None:
    # The simulator finished two days alone (a run stopped inside its first day after the EHR
    # write, or a stage that landed later): the batch job still gets every day of the world.
    state, effects = MemoryState(), []
    jobs: list[Job] = [Recording("simulator", effects)]
    Engine(Settings(), CONFIG, people, plan(CONFIG.origin, 2), jobs, state, None, tmp_path).run()
    jobs = [Recording("simulator", effects), Recording("batch", effects)]
    first = resume_day(state, jobs, CONFIG.origin)
    assert first == CONFIG.origin
    Engine(Settings(), CONFIG, people, until(first, 3), jobs, state, None, tmp_path).run()
    four = [CONFIG.origin + timedelta(days=i) for i in range(4)]
    assert sorted(d for j, d in state.records if j == "batch") == four
    assert sorted(d for j, d in state.records if j == "simulator") == four
    assert len(effects) == len(set(effects)) == 8  # the simulator's two days were not redone
    ref = reference(people, 4)
    assert all(seen == ref[d] for _, d, seen in effects)


def test_stop_inside_a_day_leaves_it_unrecorded(people: People, tmp_path: Path) -> None:
    stop = threading.Event()
    state, effects = MemoryState(), []

    class Stopper(Recording):
        def run_day(self, ctx: DayContext) -> dict[str, Any]:
            out = super().run_day(ctx)
            if ctx.day == CONFIG.origin + timedelta(days=1):
                stop.set()
            return out

    jobs: list[Job] = [Stopper("simulator", effects), Recording("batch", effects)]
    engine = Engine(Settings(), CONFIG, people, plan(CONFIG.origin, 5), jobs, state, stop, tmp_path)
    report = engine.run()
    assert report.stopped_early
    # The day in progress finished its jobs (they are not interrupted half-way), then stopped.
    assert report.days_completed == 2
    assert len(state.records) == 4

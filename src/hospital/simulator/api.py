"""The simulator's library API: what the CLI, the pipelines and the tests call.

- :func:`build_population` / :func:`population_files`: the people (``people.csv``/``.parquet``).
- :func:`simulate`: iterate :class:`DayResult`s (pure, no database).
- :func:`events_for_day`: the real-time events and batch records of one day.
- :func:`apply_range`: write days to the EHR, resumably.
- :func:`write_seed_files`: ``doctors.csv``, ``staff.csv``, ``staff_assignments.csv``,
  ``departments.csv``, ``hospital_patients.csv``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from hospital.clock import day_start
from hospital.errors import SimulationError
from hospital.settings import Settings
from hospital.simulator import capacity, catalog
from hospital.simulator.activity import DayResult, HospitalSim
from hospital.simulator.config import SimConfig
from hospital.simulator.ehr_writer import DayWrite, EhrWriter
from hospital.simulator.events import DayEvents, day_events
from hospital.simulator.population import (
    People,
    PopulationFiles,
    generate_population,
    write_population,
)

__all__ = [
    "DayEvents",
    "DayResult",
    "RangeReport",
    "SimConfig",
    "apply_range",
    "build_population",
    "departments_frame",
    "events_for_day",
    "population_files",
    "simulate",
    "write_seed_files",
]


def seeds_dir(settings: Settings) -> Path:
    return settings.lake_path / "seeds"


def _meta(config: SimConfig) -> dict[str, object]:
    return {
        "seed": config.seed,
        "num_people": config.num_people,
        "origin": config.origin.isoformat(),
    }


def population_files(config: SimConfig, out_dir: Path) -> PopulationFiles:
    """Generate the population and write ``people.csv`` and ``people.parquet`` into ``out_dir``."""
    frame = generate_population(config.num_people, config.seed, config.origin)
    files = write_population(frame, out_dir)
    (out_dir / "people.meta.json").write_text(json.dumps(_meta(config), sort_keys=True) + "\n")
    return files


def build_population(config: SimConfig, cache_dir: Path | None = None) -> People:
    """The population of ``config``; read from ``cache_dir/people.parquet`` when it matches."""
    if cache_dir is not None:
        meta = cache_dir / "people.meta.json"
        parquet = cache_dir / "people.parquet"
        if meta.exists() and parquet.exists() and json.loads(meta.read_text()) == _meta(config):
            return People.from_frame(pl.read_parquet(parquet))
    return People.from_frame(generate_population(config.num_people, config.seed, config.origin))


def simulate(
    config: SimConfig,
    people: People,
    start: date | None = None,
    days: int = 1,
    sim: HospitalSim | None = None,
) -> Iterator[DayResult]:
    """Results of ``days`` days from ``start`` (default: the origin).

    The world is stateful (beds, pending updates), so days before ``start`` are simulated too,
    just not yielded: any day's result is the same whichever run produced it.
    """
    start = start or config.origin
    if start < config.origin:
        raise SimulationError(f"{start} is before the world's first day {config.origin}")
    sim = sim or HospitalSim(config, people)
    end = start + timedelta(days=days)
    while sim.today < end:
        result = sim.step()
        if result.day >= start:
            yield result


def events_for_day(config: SimConfig, people: People, day: date) -> DayEvents:
    """Real-time events (time-ordered) and batch records of ``day``."""
    return day_events(next(simulate(config, people, day, 1)))


@dataclass
class RangeReport:
    writes: list[DayWrite] = field(default_factory=list)
    assignments: list[pl.DataFrame] = field(default_factory=list)
    staff: pl.DataFrame | None = None  # every staff row as of the end of the range
    census: pl.DataFrame | None = None  # patients in beds when the world started

    @property
    def applied(self) -> int:
        return sum(1 for w in self.writes if w.applied)


def apply_range(
    settings: Settings,
    config: SimConfig,
    people: People,
    start: date | None,
    days: int,
    on_day: Callable[[DayResult, DayWrite], None] | None = None,
) -> RangeReport:
    """Write ``days`` simulated days into the EHR; days already there are skipped.

    ``start`` defaults to the day after the last applied one. Days must be contiguous from the
    origin, so a ``start`` beyond the next missing day is refused.
    """
    report = RangeReport()
    with EhrWriter(settings.dsn("ehr", "ehr_writer")) as writer:
        writer.claim_world(config)
        last = writer.last_day()
        next_day = last + timedelta(days=1) if last else config.origin
        first = start or next_day
        if first > next_day:
            raise SimulationError(
                f"cannot start at {first}: the EHR has days up to {last or 'none'}; "
                f"apply from {next_day} first"
            )
        sim = HospitalSim(config, people)
        for result in simulate(config, people, first, days, sim):
            if result.day == config.origin:
                report.census = initial_patients(result)
            write = writer.apply(result, config.origin)
            report.writes.append(write)
            report.assignments.append(result.staff_assignments)
            if on_day:
                on_day(result, write)
        report.staff = sim.staff.frame(sim.today)
    return report


def initial_patients(first_day: DayResult) -> pl.DataFrame:
    """Patients already in a bed when the world starts (``hospital_patients.csv``)."""
    origin = day_start(first_day.day)
    return first_day.patients.filter(pl.col("created_at") < origin)


def departments_frame(config: SimConfig | None = None) -> pl.DataFrame:
    """``departments.csv``: with ``config``, the beds planned for that world (what the simulator
    fills); without, the reference hospital of ``catalog.DEPARTMENTS``."""
    depts = capacity.departments(config) if config is not None else list(catalog.DEPARTMENTS)
    return pl.DataFrame(
        {
            "department_code": [d.code for d in depts],
            "name": [d.name for d in depts],
            "kind": [d.kind for d in depts],
            "bed_capacity": [d.bed_capacity for d in depts],
        }
    )


def write_seed_files(
    staff: pl.DataFrame,
    assignments: list[pl.DataFrame],
    census: pl.DataFrame | None,
    out_dir: Path,
    config: SimConfig | None = None,
) -> list[Path]:
    """Staff, doctors, rosters, departments and the initial census as CSV files."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, pl.DataFrame] = {
        "staff.csv": staff,
        "doctors.csv": staff.filter(pl.col("role").is_in(["doctor", "surgeon"])),
        "departments.csv": departments_frame(config),
    }
    if assignments:
        files["staff_assignments.csv"] = pl.concat(assignments)
    if census is not None:
        files["hospital_patients.csv"] = census
    written = []
    for name, frame in files.items():
        path = out_dir / name
        frame.write_csv(path)
        written.append(path)
    return written

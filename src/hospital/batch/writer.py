"""Write batch drops: the initial load and one folder per simulated day, each atomically.

Files are written into a hidden temporary folder next to the target (same file system), fsynced,
described in ``manifest.json`` and then renamed into place in one step, so a reader never sees a
half-written drop. A drop that already exists is left as it is (the simulator is deterministic:
writing the same day again would produce the same bytes).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path

import polars as pl

from hospital.batch import files as bf
from hospital.errors import IngestError
from hospital.settings import Settings
from hospital.simulator import api as sim_api
from hospital.simulator.activity import DayResult, HospitalSim
from hospital.simulator.api import initial_patients, simulate
from hospital.simulator.config import SimConfig
from hospital.simulator.events import DayEvents, day_events
from hospital.simulator.population import People


def _frame_for(spec: bf.FileSpec, frame: pl.DataFrame, where: str) -> pl.DataFrame:
    missing = [c.name for c in spec.columns if c.name not in frame.columns]
    if missing:
        raise IngestError(f"{where}: the simulator's frame lacks column(s) {', '.join(missing)}")
    return frame.select([c.name for c in spec.columns])


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale(target: Path) -> None:
    """Remove temporary folders of writers that died (killed mid-write) for this drop."""
    for stale in target.parent.glob(f".tmp-{target.name}-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_drop(target: Path, frames: dict[str, pl.DataFrame]) -> Path:
    """Write ``frames`` (file name -> frame) as CSV + manifest into ``target``, atomically."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(target)
    tmp = target.parent / f".tmp-{target.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        manifest = bf.Manifest(drop=target.name)
        for name, frame in frames.items():
            spec = bf.SPECS[name]
            path = tmp / name
            _frame_for(spec, frame, f"{target.name}/{name}").write_csv(path)
            _fsync(path)
            manifest.files[name] = bf.ManifestEntry(name, frame.height, bf.sha256_file(path))
        (tmp / bf.MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        _fsync(tmp / bf.MANIFEST)
        _fsync(tmp)
        try:
            tmp.rename(target)
        except OSError:
            if target.exists():  # another writer won the race with the same content
                shutil.rmtree(tmp)
                return target
            raise
        _fsync(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def write_day(
    settings: Settings, day_events: DayEvents, staff_changes: pl.DataFrame | None = None
) -> Path:
    """``lake/batch/date=YYYY-MM-DD/``: the day's records (and staff hired/retired that day)."""
    batch = day_events.batch
    frames: dict[str, pl.DataFrame] = {}
    if batch.births.height:
        # Newborns join the people the day's admissions and orders may name.
        frames[bf.PEOPLE.name] = batch.births.select(c.name for c in bf.PEOPLE.columns)
    if staff_changes is not None and staff_changes.height:
        frames[bf.STAFF.name] = staff_changes
    frames.update(
        {
            bf.STAFF_ASSIGNMENTS.name: batch.staff_assignments,
            bf.ADMISSIONS.name: batch.admissions,
            bf.DISCHARGES.name: batch.discharges,
            bf.TRANSFERS.name: batch.transfers,
            bf.TRANSPORTS.name: batch.transports,
            bf.PHARMACY_ORDERS.name: batch.pharmacy_orders,
        }
    )
    return write_drop(bf.day_folder(settings.lake_path, day_events.day), frames)


def departments_frame(config: SimConfig | None = None) -> pl.DataFrame:
    """The departments with the beds the simulator plans for ``config``'s world (what it fills),
    so occupancy against capacity is true; without a config, the reference hospital."""
    return sim_api.departments_frame(config)


def write_initial_load(
    settings: Settings,
    people: pl.DataFrame,
    staff: pl.DataFrame,
    assignments: pl.DataFrame,
    census: pl.DataFrame,
    config: SimConfig | None = None,
) -> Path:
    """``lake/batch/initial/``: departments, staff, doctors, people, census, first roster."""
    frames = {
        bf.DEPARTMENTS.name: departments_frame(config),
        bf.STAFF.name: staff,
        bf.DOCTORS.name: staff.filter(pl.col("role").is_in(list(bf.DOCTOR_ROLES))),
        bf.PEOPLE.name: people,
        bf.CENSUS.name: census,
        bf.STAFF_ASSIGNMENTS.name: assignments,
    }
    return write_drop(bf.batch_root(settings.lake_path) / bf.INITIAL, frames)


def staff_changes(sim: HospitalSim, result: DayResult) -> pl.DataFrame:
    """Staff rows hired or retired on ``result.day`` (as of that day)."""
    rows = sorted(set(result.staff_changes.hired) | set(result.staff_changes.retired))
    if not rows:
        return pl.DataFrame()
    return sim.staff.frame(result.day)[rows]


def write_initial(settings: Settings, config: SimConfig, people: People) -> Path:
    """Simulate the world's first day and write the initial load from it."""
    sim = HospitalSim(config, people)
    first = sim.step()
    return write_initial_load(
        settings,
        people=people.frame,
        staff=sim.staff.frame(first.day),
        assignments=first.staff_assignments,
        census=initial_patients(first),
        config=config,
    )


def write_days(
    settings: Settings,
    config: SimConfig,
    people: People,
    start: date | None,
    days: int,
    on_day: Callable[[Path], None] | None = None,
) -> list[Path]:
    """Write ``days`` daily drops from ``start`` (the days before it are simulated, not written)."""
    sim = HospitalSim(config, people)
    written = []
    for result in simulate(config, people, start, days, sim):
        path = write_day(settings, day_events(result), staff_changes(sim, result))
        written.append(path)
        if on_day:
            on_day(path)
    return written

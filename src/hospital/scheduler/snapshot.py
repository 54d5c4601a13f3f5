"""Snapshots of the in-memory :class:`HospitalSim`, so a resumed run does not replay history.

A snapshot is the simulator's state after its last completed day (``sim.today`` is the next day
to simulate), pickled *without* the population: the population is fixed by (seed, num_people,
origin) and large (5,000,000 people), so the pickler stores a reference to it and loading
re-attaches the population the run already built. Files are written aside and renamed (atomic),
named by a hash of the world's config key and the day, and only the newest few are kept.
When no snapshot matches, the caller replays from the origin (``HospitalSim.step`` is
deterministic per day, so replay gives the same world).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from datetime import date
from pathlib import Path
from typing import Any

from hospital.simulator.activity import HospitalSim
from hospital.simulator.config import SimConfig
from hospital.simulator.population import People

_PEOPLE_REF = "people"
KEEP = 2


def snapshot_dir(stack_path: Path) -> Path:
    return stack_path / "scheduler" / "snapshots"


def _world_hash(config: SimConfig) -> str:
    return hashlib.sha256(config.key().encode()).hexdigest()[:16]


def snapshot_path(folder: Path, config: SimConfig, today: date) -> Path:
    return folder / f"sim-{_world_hash(config)}-{today.isoformat()}.pkl"


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BufferedWriter, people: People) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._people = people

    def persistent_id(self, obj: Any) -> str | None:
        return _PEOPLE_REF if obj is self._people else None


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedReader, people: People) -> None:
        super().__init__(file)
        self._people = people

    def persistent_load(self, pid: Any) -> Any:
        if pid != _PEOPLE_REF:
            raise pickle.UnpicklingError(f"unknown persistent reference {pid!r}")
        return self._people


def save(folder: Path, sim: HospitalSim, keep: int = KEEP) -> Path:
    """Write the snapshot of ``sim`` (state before ``sim.today``); keep the newest ``keep``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = snapshot_path(folder, sim.config, sim.today)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as fh:
        _Pickler(fh, sim.people).dump(sim)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
    prefix = f"sim-{_world_hash(sim.config)}-"
    older = sorted(p for p in folder.glob(f"{prefix}*.pkl") if p.name < path.name)
    for stale in older[: max(0, len(older) - (keep - 1))]:
        stale.unlink(missing_ok=True)
    return path


def load(folder: Path, config: SimConfig, people: People, today: date) -> HospitalSim | None:
    """The snapshot whose next day is ``today``, or the newest one before it; None if none."""
    prefix = f"sim-{_world_hash(config)}-"
    candidates = sorted(
        (p for p in folder.glob(f"{prefix}*.pkl") if p.stem[len(prefix) :] <= today.isoformat()),
        reverse=True,
    )
    for path in candidates:
        try:
            with path.open("rb") as fh:
                sim = _Unpickler(fh, people).load()
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
            continue  # a damaged snapshot is skipped: an older one or replay still works
        if isinstance(sim, HospitalSim) and sim.config == config and sim.today <= today:
            return sim
    return None


def restore(
    folder: Path | None, config: SimConfig, people: People, today: date
) -> tuple[HospitalSim, int, bool]:
    """A simulator whose next day is ``today``: from a snapshot, replaying the days after it.

    Returns the simulator, how many days had to be replayed, and whether a snapshot was used.
    """
    sim = load(folder, config, people, today) if folder is not None else None
    restored = sim is not None
    if sim is None:
        sim = HospitalSim(config, people)
    replayed = 0
    while sim.today < today:
        sim.step()
        replayed += 1
    return sim, replayed, restored

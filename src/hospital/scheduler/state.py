"""Which (job, simulated day) is finished: the scheduler's resume point.

:class:`PgState` keeps it in the hospital database (``scheduler_job_days``,
``scheduler_progress``, ``scheduler_runs`` of migration hospital_0006); :class:`MemoryState` is
the same contract in memory, for unit tests on simulated time. ``record_done`` inserts with the
(world, job, day) primary key, so a day can never be recorded twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

import psycopg

from hospital.errors import HospitalError


class SchedulerError(HospitalError):
    """The scheduler cannot go on (state unreadable, a job failed)."""


class StateStore(Protocol):
    def done_days(self, job: str) -> set[date]: ...

    def record_done(
        self, job: str, day: date, seconds: float, detail: dict[str, Any] | None = None
    ) -> bool: ...

    def progress(self, job: str, day: date) -> int: ...

    def set_progress(self, job: str, day: date, position: int) -> None: ...

    def metric(self, path: str, metric: str, value: float, day: date | None) -> None: ...


@dataclass
class MemoryState:
    """In-memory state (unit tests); ``records`` keeps every record_done call, duplicates too."""

    world: str = "test"
    records: list[tuple[str, date]] = field(default_factory=list)
    positions: dict[str, tuple[date, int]] = field(default_factory=dict)
    metrics: list[tuple[str, str, float, date | None]] = field(default_factory=list)

    def done_days(self, job: str) -> set[date]:
        return {d for j, d in self.records if j == job}

    def record_done(
        self, job: str, day: date, seconds: float, detail: dict[str, Any] | None = None
    ) -> bool:
        fresh = (job, day) not in self.records
        self.records.append((job, day))
        return fresh

    def progress(self, job: str, day: date) -> int:
        held = self.positions.get(job)
        return held[1] if held and held[0] == day else -1

    def set_progress(self, job: str, day: date, position: int) -> None:
        self.positions[job] = (day, position)

    def metric(self, path: str, metric: str, value: float, day: date | None) -> None:
        self.metrics.append((path, metric, value, day))


class PgState:
    """The state in the hospital database, as ``hospital_app``; autocommit, one row per call."""

    def __init__(self, dsn: str, world: str) -> None:
        try:
            self.conn = psycopg.connect(dsn, autocommit=True)
        except psycopg.Error as exc:
            raise SchedulerError(f"cannot reach the hospital database: {exc}") from exc
        self.world = world

    def close(self) -> None:
        self.conn.close()

    def done_days(self, job: str) -> set[date]:
        rows = self.conn.execute(
            "SELECT sim_day FROM scheduler_job_days WHERE world = %s AND job = %s",
            (self.world, job),
        ).fetchall()
        return {r[0] for r in rows}

    def record_done(
        self, job: str, day: date, seconds: float, detail: dict[str, Any] | None = None
    ) -> bool:
        cur = self.conn.execute(
            "INSERT INTO scheduler_job_days (world, job, sim_day, seconds, detail) "
            "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (self.world, job, day, seconds, json.dumps(detail or {}, default=str)),
        )
        return cur.rowcount == 1

    def progress(self, job: str, day: date) -> int:
        row = self.conn.execute(
            "SELECT position FROM scheduler_progress "
            "WHERE world = %s AND job = %s AND sim_day = %s",
            (self.world, job, day),
        ).fetchone()
        return int(row[0]) if row else -1

    def set_progress(self, job: str, day: date, position: int) -> None:
        self.conn.execute(
            "INSERT INTO scheduler_progress (world, job, sim_day, position) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT (world, job) DO UPDATE "
            "SET sim_day = EXCLUDED.sim_day, position = EXCLUDED.position, updated_at = now()",
            (self.world, job, day, position),
        )

    def metric(self, path: str, metric: str, value: float, day: date | None) -> None:
        self.conn.execute(
            "INSERT INTO pipeline_metrics (path, metric, value, sim_day) VALUES (%s, %s, %s, %s)",
            (path, metric, value, day),
        )

    # --- runs ----------------------------------------------------------------------------------
    def start_run(self, profile: str) -> int:
        row = self.conn.execute(
            "INSERT INTO scheduler_runs (world, profile) VALUES (%s, %s) RETURNING run_id",
            (self.world, profile),
        ).fetchone()
        assert row is not None
        return int(row[0])

    def finish_run(self, run_id: int, status: str, report: dict[str, Any]) -> None:
        self.conn.execute(
            "UPDATE scheduler_runs SET finished_at = now(), status = %s, report = %s "
            "WHERE run_id = %s",
            (status, json.dumps(report, default=str), run_id),
        )

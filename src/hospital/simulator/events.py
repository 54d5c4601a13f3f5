"""Real-time events and batch records of a simulated day, for the stream and batch paths.

Pure: :func:`day_events` turns a :class:`DayResult` into plain dataclasses (time-ordered) and
polars frames; :func:`ticks` groups events into windows of the stream cadence.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta

import polars as pl

from hospital.clock import day_start
from hospital.errors import SimulationError
from hospital.simulator.result import DayResult

# Fixed namespace: event ids are uuid5(kind:source id), so the stream and the batch file name the
# same fact with the same id, and an admission and its discharge (same admission_id) differ.
EVENT_NAMESPACE = uuid.UUID("6f1c2a2e-8a4b-5c1d-9e0f-2b3c4d5e6f70")


def event_id(kind: str, source_id: str) -> str:
    """The deterministic, globally unique id of the ``kind`` event about ``source_id``."""
    return str(uuid.uuid5(EVENT_NAMESPACE, f"{kind}:{source_id}"))


@dataclass(frozen=True)
class Event:
    """One real-time event. ``kind``: admission, discharge, transfer or transport.

    ``event_id`` is :func:`event_id` of ``kind`` and ``source_id`` (the admission, transfer or
    transport id the event is about).
    """

    kind: str
    event_id: str
    source_id: str
    occurred_at: datetime
    patient_id: str
    department_code: str | None
    detail: dict[str, str | int | None]

    def as_record(self) -> dict[str, object]:
        record = asdict(self)
        record["occurred_at"] = self.occurred_at.isoformat()
        return record


@dataclass(frozen=True)
class BatchRecords:
    """The day's batch files (hospital-side tables)."""

    admissions: pl.DataFrame
    discharges: pl.DataFrame
    staff_assignments: pl.DataFrame
    pharmacy_orders: pl.DataFrame
    transfers: pl.DataFrame
    transports: pl.DataFrame
    # People born that day (registered in the population): the batch's people.csv of the day.
    births: pl.DataFrame = field(default_factory=pl.DataFrame)


@dataclass(frozen=True)
class DayEvents:
    day: date
    realtime: list[Event]
    batch: BatchRecords


def _events(
    frame: pl.DataFrame, kind: str, id_col: str, time_col: str, dept_col: str | None
) -> list[Event]:
    out = []
    for row in frame.iter_rows(named=True):
        detail = {
            k: (v.isoformat() if isinstance(v, datetime | date) else v)
            for k, v in row.items()
            if k not in (id_col, time_col, "patient_id")
        }
        out.append(
            Event(
                kind=kind,
                event_id=event_id(kind, str(row[id_col])),
                source_id=str(row[id_col]),
                occurred_at=row[time_col],
                patient_id=str(row["patient_id"]),
                department_code=row[dept_col] if dept_col else None,
                detail=detail,
            )
        )
    return out


def day_events(result: DayResult) -> DayEvents:
    """Events of ``result.day`` in time order (ties broken by kind and id, so it is stable)."""
    start = day_start(result.day)
    admissions = result.admissions.filter(pl.col("admitted_at") >= start)
    events = (
        _events(admissions, "admission", "admission_id", "admitted_at", "department_code")
        + _events(
            result.discharges, "discharge", "admission_id", "discharged_at", "department_code"
        )
        + _events(result.transfers, "transfer", "transfer_id", "transferred_at", "to_department")
        + _events(result.transports, "transport", "transport_id", "arrived_at", None)
    )
    events.sort(key=lambda e: (e.occurred_at, e.kind, e.event_id))
    batch = BatchRecords(
        admissions=result.admissions,
        discharges=result.discharges,
        staff_assignments=result.staff_assignments,
        pharmacy_orders=result.pharmacy_orders,
        transfers=result.transfers,
        transports=result.transports,
        births=result.births,
    )
    return DayEvents(result.day, events, batch)


def ticks(events: DayEvents, cadence_minutes: int) -> Iterator[tuple[datetime, list[Event]]]:
    """(window start, events in [start, start + cadence)) for every window of the day.

    Nothing is dropped: every event of ``events.realtime`` is in exactly one window. The simulator
    stamps a day's events within the day; should one fall outside anyway, it goes to the first
    (before the day) or last (after it) window rather than being lost.
    """
    if cadence_minutes < 1:
        raise SimulationError(f"cadence_minutes must be at least 1, got {cadence_minutes}")
    step = timedelta(minutes=cadence_minutes)
    start = day_start(events.day)
    count = -(-1440 // cadence_minutes)
    windows: list[list[Event]] = [[] for _ in range(count)]
    for e in events.realtime:
        k = (e.occurred_at - start) // step
        windows[min(max(k, 0), count - 1)].append(e)
    for k, window in enumerate(windows):
        yield start + k * step, window

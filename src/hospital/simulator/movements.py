"""Hospital-side records of patient flow: admissions, discharges, transfers and ambulance trips.

The bed board (:mod:`hospital.simulator.beds`) decides; this module turns its rows into frames
and draws the ambulance trips, which agree with the visits and diversions they belong to.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from hospital.simulator import catalog
from hospital.simulator.beds import Row
from hospital.simulator.population import People
from hospital.simulator.records import DayVisits, patient_ids
from hospital.simulator.result import ADMISSION_SCHEMA, DISCHARGE_SCHEMA, TRANSFER_SCHEMA
from hospital.simulator.timeline import DAY_S, TS, US, day_end, id_series, inside, ts_series


def admissions_frame(rows: list[Row], people: People) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=ADMISSION_SCHEMA)
    frame = pl.DataFrame(rows)
    return frame.select(
        "admission_id",
        patient_ids(people, frame["patient_idx"].to_numpy()).alias("patient_id"),
        "visit_id",
        "department_code",
        pl.col("bed_number").cast(pl.Int32),
        (pl.col("admitted_at") * US).cast(TS),
        pl.col("expected_discharge_date").cast(pl.Int32).cast(pl.Date),
        pl.lit("admitted").alias("status"),
    ).with_columns(pl.col("admitted_at").alias("updated_at"))


def discharges_frame(rows: list[Row], people: People) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=DISCHARGE_SCHEMA)
    frame = pl.DataFrame(rows)
    return frame.select(
        "admission_id",
        patient_ids(people, frame["patient_idx"].to_numpy()).alias("patient_id"),
        "visit_id",
        "department_code",
        (pl.col("discharged_at") * US).cast(TS),
        pl.col("disposition").alias("discharge_disposition"),
        pl.lit("discharged").alias("status"),
    ).with_columns(pl.col("discharged_at").alias("updated_at"))


def transfers_frame(rng: np.random.Generator, rows: list[Row], people: People) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=TRANSFER_SCHEMA)
    frame = pl.DataFrame(
        rows,
        schema_overrides={
            "transfer_id": pl.String,
            "admission_id": pl.String,
            "to_department": pl.String,
        },
    )
    fresh = id_series(rng, frame.height, "fresh")
    return (
        frame.with_columns(
            pl.col("transfer_id").fill_null(fresh),
            patient_ids(people, frame["patient_idx"].to_numpy()).alias("patient_id"),
            (pl.col("transferred_at") * US).cast(TS),
        )
        .with_columns(pl.col("transferred_at").alias("updated_at"))
        .select(list(TRANSFER_SCHEMA))
    )


def transports(
    rng: np.random.Generator, v: DayVisits, people: People, diverted_to: dict[int, str]
) -> pl.DataFrame:
    """Ambulance trips: emergency arrivals by acuity, and every diverted patient.

    An emergency trip arrives shortly before the visit starts (never before midnight); a diverted
    patient leaves after the diversion decision, for the facility the diversion names, and the
    trip ends within the day.
    """
    d = v.day_num
    draw = v.draw
    today = draw.visit_day == d
    n = draw.n
    p = np.select([draw.triage <= 2, draw.triage == 3], [0.7, 0.25], 0.0)
    emerg = np.flatnonzero(today & draw.emergency & (rng.random(n) < p))
    divert = np.array(sorted(diverted_to), dtype=np.int64)
    idx = np.r_[emerg, divert].astype(np.int64)
    k = idx.shape[0]
    ke = emerg.shape[0]
    is_emerg = np.arange(k) < ke
    start = draw.start_abs[idx]
    midnight = d * DAY_S
    # Emergency: arrive 0-10 min before the visit starts, dispatched 20-60 min before that.
    e_arrive = np.maximum(start - rng.integers(0, 600, size=k), midnight)
    e_dispatch = np.maximum(e_arrive - rng.integers(1200, 3600, size=k), midnight)
    # Diversion: dispatched 10-60 min after the decision, a 20-60 min drive, within the day.
    decided = v.limit_abs[idx]  # a diverted visit ends at the diversion decision
    leave = rng.integers(600, 3600, size=k)
    drive = rng.integers(1200, 3600, size=k)
    d_dispatch = inside(decided, leave, 3600 + 3600, day_end(d))
    d_arrive = inside(d_dispatch, drive, 3600, day_end(d))
    dispatch = np.where(is_emerg, e_dispatch, d_dispatch)
    arrive = np.where(is_emerg, e_arrive, d_arrive)
    suburb = people.frame["suburb"].gather(pl.Series(draw.person[idx])).to_list()
    from_loc = [
        s if e else catalog.FACILITY_CODE for s, e in zip(suburb, is_emerg.tolist(), strict=True)
    ]
    to_loc = [catalog.FACILITY_CODE] * ke + [diverted_to[i] for i in divert.tolist()]
    tri = draw.triage[idx]
    priority = np.where(tri <= 1, "P1", np.where(tri == 2, "P2", "P3"))
    return pl.DataFrame(
        {
            "transport_id": id_series(rng, k, "transport_id"),
            "patient_id": v.patient_ids.gather(pl.Series(idx)),
            "visit_id": v.visit_ids.gather(pl.Series(idx)),
            "transport_type": pl.Series(
                np.where(is_emerg, "emergency", "inter_facility").tolist(), dtype=pl.String
            ),
            "priority": pl.Series(priority.tolist(), dtype=pl.String),
            "unit": pl.Series(
                [f"GP-EMS-{u:03d}" for u in rng.integers(1, 400, size=k).tolist()],
                dtype=pl.String,
            ),
            "from_location": pl.Series(from_loc, dtype=pl.String),
            "to_location": pl.Series(to_loc, dtype=pl.String),
            "dispatched_at": ts_series("dispatched_at", dispatch),
            "arrived_at": ts_series("arrived_at", arrive),
        }
    ).sort("dispatched_at", "transport_id")

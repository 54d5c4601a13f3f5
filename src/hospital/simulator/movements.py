"""Hospital-side records of patient flow: admissions, discharges, transfers and ambulance trips.

The bed board (:mod:`hospital.simulator.beds`) decides; this module turns its rows into frames
and draws the ambulance trips, which agree with the visits and diversions they belong to.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from hospital.simulator import catalog
from hospital.simulator.beds import Row
from hospital.simulator.records import DayVisits
from hospital.simulator.registry import Registry
from hospital.simulator.result import ADMISSION_SCHEMA, DISCHARGE_SCHEMA, TRANSFER_SCHEMA
from hospital.simulator.timeline import DAY_S, TS, US, day_end, id_series, inside, ts_series


def admissions_frame(rows: list[Row], people: Registry) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=ADMISSION_SCHEMA)
    frame = pl.DataFrame(rows)
    return frame.select(
        "admission_id",
        people.person_ids(frame["patient_idx"].to_numpy()).alias("patient_id"),
        "visit_id",
        "department_code",
        pl.col("bed_number").cast(pl.Int32),
        (pl.col("admitted_at") * US).cast(TS),
        pl.col("expected_discharge_date").cast(pl.Int32).cast(pl.Date),
        pl.lit("admitted").alias("status"),
    ).with_columns(pl.col("admitted_at").alias("updated_at"))


def discharges_frame(rows: list[Row], people: Registry) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=DISCHARGE_SCHEMA)
    frame = pl.DataFrame(rows)
    return frame.select(
        "admission_id",
        people.person_ids(frame["patient_idx"].to_numpy()).alias("patient_id"),
        "visit_id",
        "department_code",
        (pl.col("discharged_at") * US).cast(TS),
        pl.col("disposition").alias("discharge_disposition"),
        pl.lit("discharged").alias("status"),
    ).with_columns(pl.col("discharged_at").alias("updated_at"))


def transfers_frame(rng: np.random.Generator, rows: list[Row], people: Registry) -> pl.DataFrame:
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
            people.person_ids(frame["patient_idx"].to_numpy()).alias("patient_id"),
            (pl.col("transferred_at") * US).cast(TS),
        )
        .with_columns(pl.col("transferred_at").alias("updated_at"))
        .select(list(TRANSFER_SCHEMA))
    )


def transports(
    rng: np.random.Generator,
    v: DayVisits,
    people: Registry,
    diverted_to: dict[int, str],
    referrals: list[tuple[int, str, int, str]],
) -> pl.DataFrame:
    """Ambulance trips: emergency arrivals by acuity, every diverted patient, every referral.

    An emergency trip arrives shortly before the visit starts (never before midnight); a
    diverted or referred patient leaves after the decision, for the facility it names, and the
    trip ends within the day. ``referrals``: (person, visit id, departure second, facility).
    """
    d = v.day_num
    draw = v.draw
    today = draw.visit_day == d
    n = draw.n
    p = np.select([draw.triage <= 2, draw.triage == 3], [0.7, 0.25], 0.0)
    emerg = np.flatnonzero(today & draw.emergency & (rng.random(n) < p))
    divert = np.array(sorted(diverted_to), dtype=np.int64)
    ke, kd, kr = emerg.shape[0], divert.shape[0], len(referrals)
    k = ke + kd + kr
    person = np.r_[draw.person[emerg], draw.person[divert], [r[0] for r in referrals]].astype(
        np.int64
    )
    visit_ids = pl.concat(
        [
            v.visit_ids.gather(pl.Series(np.r_[emerg, divert].astype(np.int64))),
            pl.Series("visit_id", [r[1] for r in referrals], dtype=pl.String),
        ]
    )
    is_emerg = np.arange(k) < ke
    midnight = d * DAY_S
    start = np.r_[draw.start_abs[emerg], np.zeros(kd + kr, dtype=np.int64)]
    # Emergency: arrive 0-10 min before the visit starts, dispatched 20-60 min before that.
    e_arrive = np.maximum(start - rng.integers(0, 600, size=k), midnight)
    e_dispatch = np.maximum(e_arrive - rng.integers(1200, 3600, size=k), midnight)
    # Diversion / referral: dispatched 10-60 min after the decision, a 20-60 min drive.
    decided = np.r_[np.zeros(ke, dtype=np.int64), v.limit_abs[divert], [r[2] for r in referrals]]
    decided = decided.astype(np.int64)
    d_dispatch = inside(decided, rng.integers(600, 3600, size=k), 3600, day_end(d))
    d_arrive = inside(d_dispatch, rng.integers(1200, 3600, size=k), 3600, day_end(d))
    dispatch = np.where(is_emerg, e_dispatch, d_dispatch)
    arrive = np.where(is_emerg, e_arrive, d_arrive)
    suburb = people.rows(person[:ke])["suburb"].to_list() if ke else []
    from_loc = suburb + [catalog.FACILITY_CODE] * (kd + kr)
    to_loc = (
        [catalog.FACILITY_CODE] * ke
        + [diverted_to[i] for i in divert.tolist()]
        + [r[3] for r in referrals]
    )
    tri = np.r_[draw.triage[emerg], draw.triage[divert], np.full(kr, 3)]
    priority = np.where(tri <= 1, "P1", np.where(tri == 2, "P2", "P3"))
    return pl.DataFrame(
        {
            "transport_id": id_series(rng, k, "transport_id"),
            "patient_id": people.person_ids(person).alias("patient_id"),
            "visit_id": visit_ids.alias("visit_id"),
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

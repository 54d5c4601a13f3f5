"""Occupancy day by day and the ICU (issue 8), on the reference hospital over two simulated years.

A daily whole-hospital figure needs a hospital of the reference size (~1,050 beds, ~600 visits a
day): the ~100 beds of test_realism.py's 400,000-person catchment move by +-10 % from one day to
the next (held there to weekly means). The hospital here is sized for 5,000,000 people and
sampled by 500,000 (each visits ten times as often), so population-level rates are not checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl
import pytest

from hospital.simulator.activity import HospitalSim
from hospital.simulator.api import build_population
from hospital.simulator.capacity import plan_beds
from hospital.simulator.config import SimConfig

BUSY = SimConfig(
    seed=3, num_people=500_000, origin=date(2020, 1, 1), visits_per_1000=1.2, min_catchment=0
)
YEARS = 2
FLU_SEASON = (4, 5, 6, 7, 8, 9)  # April-September: the flu season and its tail

pytestmark = pytest.mark.slow


@dataclass
class Run:
    occupancy: pl.DataFrame  # department, beds, occupancy at midnight, day
    transfers: pl.DataFrame
    admissions: pl.DataFrame
    discharges: pl.DataFrame


@pytest.fixture(scope="module")
def run() -> Run:
    sim = HospitalSim(BUSY, build_population(BUSY))
    occ, transfers, admissions, discharges = [], [], [], []
    for _ in range(365 * YEARS):
        r = sim.step()
        occ.append(r.occupancy.with_columns(pl.lit(r.day).alias("day")))
        transfers.append(r.transfers.select("reason", "from_department", "to_department"))
        admissions.append(r.admissions.select("department_code", "admitted_at"))
        discharges.append(r.discharges.select("department_code", "discharge_disposition"))
    # The census (admitted before the origin) asked for no bed today.
    new = pl.concat(admissions).filter(pl.col("admitted_at").dt.date() >= BUSY.origin)
    return Run(pl.concat(occ), pl.concat(transfers), new, pl.concat(discharges))


def test_occupancy_is_80_to_95_percent_on_most_days(run: Run) -> None:
    assert plan_beds(BUSY).sum() > 900  # the reference hospital
    daily = run.occupancy.group_by("day").agg(
        (pl.col("end_occupancy").sum() / pl.col("bed_capacity").sum()).alias("occ")
    )
    in_band = daily["occ"].is_between(0.8, 0.95).mean()
    assert in_band > 0.5, in_band  # type: ignore[operator]
    # The days above 95 % are the flu season's peaks; no day is far below the band.
    peaks = daily.filter(pl.col("occ") > 0.95)["day"].dt.month()
    assert peaks.len() > 0 and peaks.is_in(FLU_SEASON).all()
    assert daily["occ"].min() > 0.65  # type: ignore[operator]


def test_icu_is_busy_but_rarely_diverts(run: Run) -> None:
    icu = run.occupancy.filter(pl.col("department_code") == "ICU")
    occupancy = icu["end_occupancy"].sum() / icu["bed_capacity"].sum()
    full_days = (icu["end_occupancy"] == icu["bed_capacity"]).mean()
    assert 0.75 < occupancy < 0.95, occupancy
    assert full_days < 0.3, full_days  # type: ignore[operator]
    diverted = run.transfers.filter(pl.col("reason") == "no bed available")
    asked = run.admissions.height + diverted.height
    assert diverted.height / asked < 0.05
    admitted = run.admissions.filter(pl.col("department_code") == "ICU").height
    icu_diverted = diverted.filter(pl.col("from_department") == "ICU").height
    assert icu_diverted / (icu_diverted + admitted) < 0.02
    # Early step downs make the room; step ups come from the wards; nearly nobody goes home
    # straight from ICU (they step down to a ward first).
    early = run.transfers.filter(pl.col("reason").str.starts_with("stepped down early")).height
    step_ups = run.transfers.filter(
        (pl.col("to_department") == "ICU") & (pl.col("reason") == "change in acuity")
    ).height
    assert 0 < early < 0.1 * admitted and 0.1 * admitted < step_ups < 0.5 * admitted
    home = run.discharges.filter(pl.col("discharge_disposition") == "home")
    assert home.filter(pl.col("department_code") == "ICU").height < 0.01 * home.height

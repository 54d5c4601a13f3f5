# ruff: noqa: E501 -- the report reads best as one metric per line
"""Realism report of a simulated run: what a clinician and a demographer would look at.

    uv run python bench/realism.py --people 1000000 --years 2

Prints the tables (occupancy and diversion by ward and month, births, deaths by ward, age
pyramid drift, top diagnoses by age band, staff per bed, dispositions) next to the figures the
review of the old simulator found (issue 8), and writes bench/results/realism.json with the keys
"metrics" (this run), "baseline" (the issue's figures for the old simulator) and "ratios".
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
from rich.console import Console
from rich.table import Table

from hospital.simulator import catalog
from hospital.simulator.activity import DayResult, HospitalSim
from hospital.simulator.api import build_population
from hospital.simulator.config import SimConfig
from hospital.simulator.registry import NEVER

RESULTS = Path(__file__).parent / "results" / "realism.json"
# What the review found in the old simulator (issue 8; 2020-2025, 5,000,000 people).
BASELINE = {
    "diverted_share": 0.32,
    "diverted_share_icu": 0.946,
    "icu_full_day_share": 0.993,
    "resp_admissions_jun_over_jan": 145 / 136,
    "newborns_per_delivery": 0.0,
    "discharged_home_share": 1.0,
    "deliveries_not_admitted_share": 0.29,
    "under5_visit_share_first_year": 0.157,
    "under5_visit_share_last_year": 0.0,
    "staff_per_bed": 1029 / 1150,
    "nights_without_night_cover_share": 0.072,
    "female_share_over_65": 0.51,
    "visits_per_day_any_population": 600.0,
}
BANDS = ((0, 5), (5, 15), (15, 50), (50, 65), (65, 200))


def band_of(age: pl.Expr) -> pl.Expr:
    expr = pl.lit("65+")
    for lo, hi in reversed(BANDS[:-1]):
        expr = pl.when(age < hi).then(pl.lit(f"{lo}-{hi - 1}")).otherwise(expr)
    return expr


def run(config: SimConfig, days: int) -> tuple[HospitalSim, list[DayResult], float]:
    people = build_population(config)
    sim = HospitalSim(config, people)
    start = time.perf_counter()
    results = [sim.step() for _ in range(days)]
    return sim, results, time.perf_counter() - start


def cat(results: list[DayResult], name: str) -> pl.DataFrame:
    return pl.concat([getattr(r, name) for r in results if getattr(r, name).height])


def pyramid(sim: HospitalSim, day: date) -> dict[str, float]:
    reg = sim.registry
    n = reg.n
    d = (day - date(1970, 1, 1)).days
    alive = (reg.died[:n] == NEVER) | (reg.died[:n] > d)
    born = reg.birth[:n] <= d
    age = (d - reg.birth[:n][alive & born]) / 365.25
    return {
        f"{lo}-{hi - 1}" if hi < 200 else "65+": round(float(((age >= lo) & (age < hi)).mean()), 4)
        for lo, hi in BANDS
    }


def report(sim: HospitalSim, results: list[DayResult]) -> dict[str, object]:
    occ = pl.concat([r.occupancy.with_columns(pl.lit(r.day).alias("day")) for r in results])
    occ = occ.with_columns((pl.col("end_occupancy") / pl.col("bed_capacity")).alias("occ"))
    by_month = occ.group_by(pl.col("day").dt.month().alias("month")).agg(
        (pl.col("end_occupancy").sum() / pl.col("bed_capacity").sum()).alias("occupancy")
    )
    by_ward = occ.group_by("department_code").agg(
        pl.col("bed_capacity").last().alias("beds"),
        pl.col("occ").mean().alias("occupancy"),
        (pl.col("end_occupancy") == pl.col("bed_capacity")).mean().alias("full_days"),
    )
    census = set(
        results[0].visits.filter(pl.col("started_at").dt.date() < results[0].day)["visit_id"]
    )
    admissions = cat(results, "admissions").filter(~pl.col("visit_id").is_in(list(census)))
    transfers = cat(results, "transfers")
    diverted = transfers.filter(pl.col("reason") == "no bed available")
    asked = (
        admissions.group_by("department_code").len().rename({"len": "admitted"})
        .join(diverted.group_by(pl.col("from_department").alias("department_code")).len(),
              on="department_code", how="full", coalesce=True)
        .fill_null(0)
        .with_columns((pl.col("len") / (pl.col("len") + pl.col("admitted"))).alias("diverted"))
    )  # fmt: skip
    div_month = (
        admissions.group_by(pl.col("admitted_at").dt.month().alias("month")).len()
        .join(diverted.group_by(pl.col("transferred_at").dt.month().alias("month")).len(),
              on="month", how="left", suffix="_div")
        .fill_null(0)
        .with_columns((pl.col("len_div") / (pl.col("len") + pl.col("len_div"))).alias("diverted"))
        .select("month", "diverted")
    )  # fmt: skip
    months = by_month.join(div_month, on="month", how="left").sort("month")
    wards = by_ward.join(asked.select("department_code", "diverted"), on="department_code")
    visits = cat(results, "visits")
    resp = {c.description for c in catalog.CONDITIONS if c.respiratory}
    adm_reason = admissions.join(visits.select("visit_id", "reason"), on="visit_id")
    resp_adm = adm_reason.filter(pl.col("reason").is_in(list(resp)))
    jun = resp_adm.filter(pl.col("admitted_at").dt.month() == 6).height
    jan = resp_adm.filter(pl.col("admitted_at").dt.month() == 1).height
    births = cat(results, "births")
    deaths = cat(results, "deaths")
    discharges = cat(results, "discharges")
    deliveries = visits.filter(
        pl.col("reason").is_in(
            ["Spontaneous vertex delivery", "Delivery by emergency caesarean section"]
        )
    )
    patients = cat(results, "patients").select("patient_id", "birth_date", "sex")
    pv = visits.join(patients, on="patient_id").with_columns(
        ((pl.col("started_at").dt.date() - pl.col("birth_date")).dt.total_days() / 365.25).alias(
            "age"
        )
    )
    u5 = (
        pv.group_by(pl.col("started_at").dt.year().alias("year"))
        .agg((pl.col("age") < 5).mean().alias("u5"))
        .filter(pl.col("year") >= results[0].day.year)
        .sort("year")
    )
    dx = cat(results, "diagnoses").filter(pl.col("is_primary"))
    top = (
        dx.join(pv.select("visit_id", "age"), on="visit_id")
        .with_columns(band_of(pl.col("age")).alias("band"))
        .group_by("band", "icd10_code").len()
        .sort(["band", "len"], descending=[False, True])
        .group_by("band", maintain_order=True).head(3)
    )  # fmt: skip
    days = len(results)
    years = days / 365.25
    people = sim.config.num_people
    active_staff = int(sim.staff.active_mask().sum())
    beds = int(sim.beds.capacity.sum())
    nights = [
        r.staff_assignments.filter(pl.col("shift") == "night")["department_code"].n_unique()
        for r in results
    ]
    frame = sim.people.frame
    age0 = (results[0].day - frame["birth_date"]).dt.total_days() / 365.25  # type: ignore[operator]
    return {
        "config": {"num_people": people, "days": days, "seed": sim.config.seed,
                   "catchment": sim.config.catchment, "origin": results[0].day.isoformat()},
        "beds": beds,
        "visits_per_day": round(visits.height / days, 1),
        "admissions_per_day": round(admissions.height / days, 1),
        "occupancy_mean": round(float(occ["end_occupancy"].sum() / occ["bed_capacity"].sum()), 3),
        "diverted_share": round(diverted.height / max(1, diverted.height + admissions.height), 4),
        "diverted_share_icu": round(float(asked.filter(pl.col("department_code") == "ICU")["diverted"].sum()), 4),
        "icu_full_day_share": round(float(by_ward.filter(pl.col("department_code") == "ICU")["full_days"].sum()), 4),
        "resp_admissions_jun_over_jan": round(jun / max(1, jan), 3),
        "occupancy_by_month": [dict(r) for r in months.iter_rows(named=True)],
        "wards": [dict(r) for r in wards.sort("department_code").iter_rows(named=True)],
        "births_per_1000_year": round(births.height / years / people * 1000, 2),
        "newborns_per_delivery": round(births.filter(pl.col("born_in_hospital")).height
                                       / max(1, deliveries.filter(pl.col("visit_type") == "inpatient").height), 3),
        "deliveries_not_admitted_share": round(deliveries.filter(pl.col("visit_type") != "inpatient").height
                                               / max(1, deliveries.height), 4),
        "deaths_per_1000_year": round(deaths.height / years / people * 1000, 2),
        "deaths_in_hospital_by_ward": dict(deaths.filter(pl.col("place") == "hospital")["department_code"].value_counts().iter_rows()),
        "dispositions": {k: round(v, 4) for k, v in discharges["discharge_disposition"].value_counts(normalize=True).iter_rows()},
        "discharged_home_share": round(discharges.filter(pl.col("discharge_disposition") == "home").height / max(1, discharges.height), 4),
        "age_pyramid_start": pyramid(sim, results[0].day),
        "age_pyramid_end": pyramid(sim, results[-1].day),
        "under5_visit_share_by_year": {str(y): round(v, 4) for y, v in u5.iter_rows()},
        "under5_visit_share_first_year": round(float(u5["u5"][0]), 4),
        "under5_visit_share_last_year": round(float(u5["u5"][-1]), 4),
        "top_diagnoses_by_age_band": {b: list(g["icd10_code"]) for (b,), g in top.group_by("band", maintain_order=True)},
        "staff_per_bed": round(active_staff / beds, 3),
        "nights_without_night_cover_share": round(float(np.mean([n < len(catalog.DEPARTMENTS) for n in nights])), 4),
        "female_share_over_65": round(float((frame.filter(age0 >= 65)["sex"] == "F").mean()), 4),  # type: ignore[operator]
    }  # fmt: skip


def render(metrics: dict[str, object], console: Console) -> None:
    side = Table(title="Issue 8 figures: old simulator vs this run")
    for col in ("figure", "old (issue 8)", "now"):
        side.add_column(col)
    for key, old in BASELINE.items():
        now = metrics.get(key, metrics.get("visits_per_day") if key.startswith("visits") else "-")
        side.add_row(key, f"{old:.3g}", f"{now}")
    console.print(side)
    wards = Table(title="Wards: beds, mean occupancy, days full, diverted share")
    for col in ("ward", "beds", "occupancy", "full days", "diverted"):
        wards.add_column(col)
    for w in metrics["wards"]:  # type: ignore[attr-defined]
        wards.add_row(w["department_code"], str(w["beds"]), f"{w['occupancy']:.2f}",
                      f"{w['full_days']:.2f}", f"{w['diverted']:.3f}")  # fmt: skip
    console.print(wards)
    months = Table(title="By month: occupancy and diverted share")
    for col in ("month", "occupancy", "diverted"):
        months.add_column(col)
    for m in metrics["occupancy_by_month"]:  # type: ignore[attr-defined]
        months.add_row(str(m["month"]), f"{m['occupancy']:.3f}", f"{m['diverted'] or 0:.3f}")
    console.print(months)
    for key in ("births_per_1000_year", "deaths_per_1000_year", "deaths_in_hospital_by_ward",
                "dispositions", "age_pyramid_start", "age_pyramid_end",
                "under5_visit_share_by_year", "top_diagnoses_by_age_band", "staff_per_bed"):  # fmt: skip
        console.print(f"[bold]{key}[/]: {metrics[key]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--years", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_start = os.getloadavg()
    config = SimConfig(seed=args.seed, num_people=args.people, origin=date(2020, 1, 1))
    sim, results, seconds = run(config, round(args.years * 365))
    metrics = report(sim, results)
    metrics["seconds"] = round(seconds, 1)
    metrics["ms_per_day"] = round(seconds / len(results) * 1000, 1)
    ratios = {
        f"{k}_now_over_old": round(float(metrics[k]) / v, 4)  # type: ignore[arg-type]
        for k, v in BASELINE.items()
        if v and isinstance(metrics.get(k), int | float)
    }
    out = {
        "metrics": metrics,
        "baseline": BASELINE,
        "ratios": ratios,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "note": "one run (a realism report, not a timing benchmark); shared 2-core machine",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
    render(metrics, Console())
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

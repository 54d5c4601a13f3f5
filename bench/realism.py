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
import resource
import time
from datetime import date
from pathlib import Path
from types import SimpleNamespace

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


# The columns the report reads: a six-year run at 5,000,000 people keeps only these (the notes,
# prescriptions and names of ~4 million visits would not fit in memory).
KEEP = {
    "occupancy": ("department_code", "bed_capacity", "end_occupancy"),
    "visits": ("visit_id", "patient_id", "visit_type", "reason", "started_at"),
    "admissions": ("visit_id", "department_code", "admitted_at"),
    "transfers": ("reason", "from_department", "to_department", "transferred_at"),
    "births": ("born_in_hospital",),
    "deaths": ("place", "department_code"),
    "discharges": ("department_code", "discharge_disposition"),
    "patients": ("patient_id", "birth_date", "sex"),
}


def slim(r: DayResult) -> SimpleNamespace:
    """What the report needs of a day's result."""
    kept = {name: getattr(r, name).select(cols) for name, cols in KEEP.items()}
    # Trips to theatre, radiology... (most of the rows) are not reported.
    kept["transfers"] = kept["transfers"].filter(pl.col("reason").str.starts_with("to ").not_())
    primary = r.diagnoses.filter(pl.col("is_primary")).select("visit_id", "icd10_code")
    night = r.staff_assignments.filter(pl.col("shift") == "night")["department_code"].n_unique()
    return SimpleNamespace(day=r.day, diagnoses=primary, night_wards=night, **kept)


def run(config: SimConfig, days: int) -> tuple[HospitalSim, list[SimpleNamespace], float, float]:
    start = time.perf_counter()
    people = build_population(config)
    built = time.perf_counter() - start
    sim = HospitalSim(config, people)
    start = time.perf_counter()
    results = [slim(sim.step()) for _ in range(days)]
    return sim, results, time.perf_counter() - start, built


def cat(results: list[SimpleNamespace], name: str) -> pl.DataFrame:
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


def report(sim: HospitalSim, results: list[SimpleNamespace]) -> dict[str, object]:
    occ = pl.concat([r.occupancy.with_columns(pl.lit(r.day).alias("day")) for r in results])
    occ = occ.with_columns((pl.col("end_occupancy") / pl.col("bed_capacity")).alias("occ"))
    # Whole-hospital occupancy at midnight, day by day.
    daily = occ.group_by("day").agg(
        (pl.col("end_occupancy").sum() / pl.col("bed_capacity").sum()).alias("occ")
    )
    in_band = daily.group_by(pl.col("day").dt.year().alias("year")).agg(
        pl.col("occ").is_between(0.8, 0.95).mean().alias("share")
    )
    by_month = occ.group_by(pl.col("day").dt.month().alias("month")).agg(
        (pl.col("end_occupancy").sum() / pl.col("bed_capacity").sum()).alias("occupancy")
    )
    by_ward = occ.group_by("department_code").agg(
        pl.col("bed_capacity").last().alias("beds"),
        pl.col("occ").mean().alias("occupancy"),
        (pl.col("end_occupancy") == pl.col("bed_capacity")).mean().alias("full_days"),
        pl.col("occ").is_between(0.8, 0.95).mean().alias("days_in_80_95"),
    )
    census = set(
        results[0].visits.filter(pl.col("started_at").dt.date() < results[0].day)["visit_id"]
    )
    admissions = cat(results, "admissions").filter(~pl.col("visit_id").is_in(list(census)))
    transfers = cat(results, "transfers")
    diverted = transfers.filter(pl.col("reason") == "no bed available")
    step_ups = transfers.filter(
        (pl.col("to_department") == "ICU") & (pl.col("reason") == "change in acuity")
    ).height
    early = transfers.filter(pl.col("reason").str.starts_with("stepped down early")).height
    icu_admitted = admissions.filter(pl.col("department_code") == "ICU").height
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
    dx = cat(results, "diagnoses")  # primary diagnoses (slim)
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
    nights = [r.night_wards for r in results]
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
        "occupancy_days_in_80_95_share": round(float(daily["occ"].is_between(0.8, 0.95).mean()), 4),  # type: ignore[arg-type]
        "occupancy_days_in_80_95_by_year": {str(y): round(v, 4) for y, v in in_band.sort("year").iter_rows()},
        "occupancy_days_below_80_share": round(float((daily["occ"] < 0.8).mean()), 4),  # type: ignore[arg-type]
        "occupancy_days_above_95_share": round(float((daily["occ"] > 0.95).mean()), 4),  # type: ignore[arg-type]
        "icu_occupancy": round(float(by_ward.filter(pl.col("department_code") == "ICU")["occupancy"].sum()), 4),
        "icu_step_ups_per_admission": round(step_ups / max(1, icu_admitted), 4),
        "icu_early_step_downs_per_admission": round(early / max(1, icu_admitted), 4),
        "icu_discharged_home_share": round(discharges.filter((pl.col("department_code") == "ICU") & (pl.col("discharge_disposition") == "home")).height
                                           / max(1, discharges.filter(pl.col("discharge_disposition") == "home").height), 4),
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
    wards = Table(title="Wards: beds, mean occupancy, days full, days at 80-95 %, diverted share")
    for col in ("ward", "beds", "occupancy", "full days", "days 80-95", "diverted"):
        wards.add_column(col)
    for w in metrics["wards"]:  # type: ignore[attr-defined]
        wards.add_row(w["department_code"], str(w["beds"]), f"{w['occupancy']:.2f}", f"{w['full_days']:.2f}",
                      f"{w['days_in_80_95']:.2f}", f"{w['diverted']:.3f}")  # fmt: skip
    console.print(wards)
    months = Table(title="By month: occupancy and diverted share")
    for col in ("month", "occupancy", "diverted"):
        months.add_column(col)
    for m in metrics["occupancy_by_month"]:  # type: ignore[attr-defined]
        months.add_row(str(m["month"]), f"{m['occupancy']:.3f}", f"{m['diverted'] or 0:.3f}")
    console.print(months)
    for key in ("occupancy_mean", "occupancy_days_in_80_95_share", "occupancy_days_in_80_95_by_year",
                "occupancy_days_below_80_share", "occupancy_days_above_95_share", "icu_occupancy",
                "icu_step_ups_per_admission", "icu_early_step_downs_per_admission",
                "icu_discharged_home_share", "births_per_1000_year", "deaths_per_1000_year", "deaths_in_hospital_by_ward",
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
    # Whole calendar years when --years is whole (six years: 2020-01-01..2025-12-31).
    whole = float(args.years).is_integer()
    end = date(config.origin.year + int(args.years), config.origin.month, config.origin.day)
    days = (end - config.origin).days if whole else round(args.years * 365)
    sim, results, seconds, built = run(config, days)
    metrics = report(sim, results)
    metrics["population_build_seconds"] = round(built, 1)
    metrics["seconds"] = round(seconds, 1)
    metrics["ms_per_day"] = round(seconds / len(results) * 1000, 1)
    # ru_maxrss is in KiB on Linux: the whole run's peak (simulator and the kept columns).
    metrics["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
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

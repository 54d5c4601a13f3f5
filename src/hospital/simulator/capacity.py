"""Beds and posts sized for the catchment: capacity that behaves like a planned hospital.

Beds per ward are planned the way bed managers do: from the ward's mean daily bed demand (visits
per day x share admitted to the ward x mean length of stay, over a year of weekdays and seasons),
enough beds that mean occupancy is at most the target (85-90 %, the planning norm; Bagust et
al., BMJ 1999) and that an admission finds the ward full at most ``max_blocking`` of the time
(the Erlang loss model; small wards need proportionally more spare beds than big ones). The
demand is measured with the simulator's own draws on a reference population pyramid, so beds
follow any change to the case mix. Wards of the same kind lend beds before anyone is diverted
(medical outliers), as real hospitals do.

Staff: posts per ward from its beds (ratios below), with at least seven doctors and seven nurses
per ward so that every ward has a doctor and a nurse on the day and the night shift every day.
"""

from __future__ import annotations

import functools
import math
from datetime import date, timedelta
from typing import Final

import numpy as np

from hospital.simulator import catalog
from hospital.simulator.config import SimConfig
from hospital.simulator.population import AGE_BAND_SHARES, MAX_AGE_DAYS, People
from hospital.simulator.timeline import I64

# Visits drawn to measure demand, 30,000 a month: a small ward's demand comes out within ~2 %
# (30,000 in all over-planned psychiatry by ~15 %).
PLAN_DRAWS = 360_000
PLAN_SEED = 20_240_601
DEPT = catalog.DEPT_INDEX
# A full ward borrows a bed from these wards, in order, before the patient is diverted.
# Children, mothers, ICU and psychiatry are never placed on another ward (a full ICU steps a
# patient down instead, beds.py); adults on medical and surgical wards are, as outliers.
OVERFLOW: Final[dict[int, tuple[int, ...]]] = {
    DEPT["MED"]: (DEPT["RESP"], DEPT["ONC"], DEPT["EMERG"], DEPT["SURG"], DEPT["ORTH"]),
    DEPT["RESP"]: (DEPT["MED"], DEPT["ONC"], DEPT["EMERG"], DEPT["SURG"], DEPT["ORTH"]),
    DEPT["ONC"]: (DEPT["MED"], DEPT["RESP"], DEPT["SURG"]),
    DEPT["EMERG"]: (DEPT["MED"], DEPT["RESP"], DEPT["SURG"], DEPT["ORTH"]),
    DEPT["SURG"]: (DEPT["ORTH"], DEPT["MED"], DEPT["RESP"]),
    DEPT["ORTH"]: (DEPT["SURG"], DEPT["MED"], DEPT["RESP"]),
}
# Posts per bed (South African public-hospital norms, rounded: ~1 nurse per 6 patients a shift on
# general wards, 1:1 in ICU, around the clock with leave) and the minimum per ward.
DOCTORS_PER_BED = 1 / 5
SURGEONS_PER_BED = 1 / 10
NURSES_PER_BED = 0.9
ICU_NURSES_PER_BED = 4.0
MIN_DOCTORS = MIN_NURSES = 7
# Share of ICU emergencies that may find every ICU bed taken. Only a small ICU (a catchment under
# ~1,000,000) needs beds for it: a big one planned for the target occupancy is full less often.
ICU_BLOCKING = 0.15
ALLIED = ("physiotherapy", "pharmacy", "radiography", "dietetics", "social_work", "occ_therapy")


def reference_people(n: int, seed: int, origin: date) -> People:
    """A synthetic pyramid (no names) used only to measure demand per visit."""
    import polars as pl

    rng = np.random.default_rng([seed, n])
    shares = np.array(AGE_BAND_SHARES) / sum(AGE_BAND_SHARES)
    band = rng.choice(shares.shape[0], size=n, p=shares)
    age_days = (band * MAX_AGE_DAYS // 20 + rng.integers(0, MAX_AGE_DAYS // 20, size=n)).astype(
        np.int64
    )
    birth = (origin - date(1970, 1, 1)).days - age_days
    male = rng.random(n) < 0.49
    return People(frame=pl.DataFrame({"x": np.zeros(n)}), birth=birth, male=male)


@functools.cache
def bed_demand_per_visit(origin: date) -> tuple[np.ndarray, np.ndarray]:
    """Mean bed-days each visit brings to each ward (a year of seasons, reference pyramid), and
    those of them with two or more days left (when a ward patient may still step up to ICU)."""
    from hospital.simulator.clinical import ABSCONDS, DIES, TRANSFERS_OUT
    from hospital.simulator.draws import ICU, age_weight_cdf, draw_visits

    people = reference_people(PLAN_DRAWS, PLAN_SEED, origin)
    cdf = age_weight_cdf(people.birth, origin)
    total = np.zeros(len(catalog.DEPARTMENTS))
    later = np.zeros(len(catalog.DEPARTMENTS))
    months = 12
    for m in range(months):
        day = date(origin.year, m + 1, 15)
        rng = np.random.default_rng([PLAN_SEED, m])
        v = draw_visits(rng, PLAN_DRAWS // months, day, people.birth, people.male, cdf)
        # Deaths, referrals and abscondments end a stay early (on average half-way).
        die = DIES[v.cond]
        short = die + TRANSFERS_OUT[v.cond] + ABSCONDS[v.cond]
        stay = np.where(v.admit, v.los * (1 - short / 2), 0)
        # ICU patients spend their ICU days there, the rest on the step-down ward; the dying stay.
        icu = np.asarray(v.admit & (v.dept == ICU), dtype=np.float64)
        half = v.los / 2
        in_icu = (
            (1 - short) * v.icu_days + die * half + (short - die) * np.minimum(v.icu_days, half)
        )
        on_ward = icu * (stay - in_icu)
        here = stay - on_ward
        n = total.shape[0]
        total += np.bincount(v.dept, weights=here, minlength=n)
        total += np.bincount(v.step_down, weights=on_ward, minlength=n)
        later += np.bincount(v.dept, weights=np.maximum(here - 1, 0) * (1 - icu), minlength=n)
    return total / PLAN_DRAWS, later / PLAN_DRAWS


def erlang_b(beds: int, load: float) -> float:
    """Probability an arrival finds every bed taken (Erlang loss formula, Poisson arrivals)."""
    b = 1.0
    for c in range(1, beds + 1):
        b = load * b / (c + load * b)
    return b


def beds_for(load: float, target: float, blocking: float) -> int:
    """Fewest beds that keep mean occupancy at most ``target`` and a full ward at most
    ``blocking`` of the time an admission arrives (de Bruin et al., Health Care Manag Sci 2010)."""
    beds = max(1, math.ceil(load / target))
    while erlang_b(beds, load) > blocking:
        beds += 1
    return beds


@functools.cache
def _plan(
    num_people: int,
    visits_per_1000: float,
    target: float,
    blocking: float,
    moves: float,
    origin: date,
) -> tuple[int, ...]:
    from hospital.simulator.draws import (
        ICU,
        ICU_MOVE_SHARE,
        STEP_UP_DAYS,
        STEP_UP_FROM,
        expected_visits,
    )

    config = SimConfig(
        num_people=num_people, visits_per_1000=visits_per_1000, origin=origin, min_catchment=0
    )
    days = [origin + timedelta(days=i) for i in range(365)]
    mean_visits = sum(expected_visits(config, d) for d in days) / len(days)
    demand, later = bed_demand_per_visit(origin)
    load = mean_visits * demand
    # Step ups: a share of the movements of ward patients with two or more days left, each a
    # few days in ICU (their ward bed is freed meanwhile, a small saving not counted).
    eligible = mean_visits * sum(later[k] for k in STEP_UP_FROM)
    load[ICU] += moves * ICU_MOVE_SHARE * eligible * sum(STEP_UP_DAYS) / 2
    # Wards that lend each other beds are dimensioned together by occupancy; children,
    # maternity and psychiatry must also keep their own blocking low; ICU less so, since an
    # emergency that finds it full is usually relieved by an early step down.
    return tuple(
        beds_for(x, target, 1.0 if k in OVERFLOW else ICU_BLOCKING if k == ICU else blocking)
        for k, x in enumerate(load.tolist())
    )


def plan_beds(config: SimConfig) -> I64:
    """Beds per ward (``catalog.DEPARTMENTS`` order) for this world's catchment and demand."""
    origin = date(config.origin.year, 1, 1)
    return np.array(
        _plan(
            config.catchment,
            config.visits_per_1000,
            config.target_occupancy,
            config.max_blocking,
            config.moves_per_inpatient,
            origin,
        ),
        dtype=np.int64,
    )


def departments(config: SimConfig) -> list[catalog.Department]:
    """The departments with this world's planned bed numbers (``departments.csv``)."""
    from dataclasses import replace

    beds = plan_beds(config).tolist()
    return [replace(d, bed_capacity=b) for d, b in zip(catalog.DEPARTMENTS, beds, strict=True)]


def staffing_plan(beds: list[int]) -> list[tuple[str, str, str]]:
    """(role, specialty, department) of every post, from each ward's beds."""
    posts: list[tuple[str, str, str]] = []
    for dept, b in zip(catalog.DEPARTMENTS, beds, strict=True):
        doctors = max(MIN_DOCTORS, math.ceil(b * DOCTORS_PER_BED))
        posts += [("doctor", dept.doctor_specialty, dept.code)] * doctors
        if dept.surgeon_specialty:
            surgeons = max(3, math.ceil(b * SURGEONS_PER_BED))
            posts += [("surgeon", dept.surgeon_specialty, dept.code)] * surgeons
        per_bed = ICU_NURSES_PER_BED if dept.code == "ICU" else NURSES_PER_BED
        nurses = max(MIN_NURSES, math.ceil(b * per_bed))
        posts += [("nurse", "midwifery" if dept.code == "MAT" else "nursing", dept.code)] * nurses
        posts += [
            ("allied_health", ALLIED[i % len(ALLIED)], dept.code)
            for i in range(max(1, -(-b // 15)))
        ]
        posts += [("admin", "ward_clerk", dept.code)] * max(2, -(-b // 12))
        posts += [
            ("support", ("porter", "cleaner")[i % 2], dept.code) for i in range(max(2, -(-b // 6)))
        ]
    return posts

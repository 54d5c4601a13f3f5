"""The day's random draws for visits, as one typed, vectorised record (:class:`VisitDraw`).

Demand (how many visits a day) and case mix (who comes, with what) live here; what happens to a
visit (a bed, a diversion, records) is decided elsewhere from these draws.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date

import numpy as np
import numpy.typing as npt

from hospital.simulator import catalog
from hospital.simulator.config import SimConfig
from hospital.simulator.timeline import DAY_S, HOUR_S, I64, day_number, inside

B = npt.NDArray[np.bool_]
F64 = npt.NDArray[np.float64]

# Monday..Sunday demand relative to the weekly mean.
WEEKDAY_FACTOR = np.array([1.12, 1.06, 1.0, 1.0, 1.04, 0.92, 0.86])
# Arrivals by hour of day (relative): quiet nights, busy late mornings and evenings.
HOURLY = np.array(
    [2, 1.5, 1.2, 1, 1, 1.2, 2, 3.5, 5, 6, 6.5, 6.5, 6, 5.5, 5.5, 5.5, 5.5, 6, 6, 5.5, 5, 4, 3, 2.5]
)
# Flu-season intensity by month (southern hemisphere: April-August, peaking June-July).
FLU_SEASON = np.array([0, 0, 0, 0.5, 0.8, 1.0, 1.0, 0.6, 0, 0, 0, 0], dtype=np.float64)

CONDS = catalog.CONDITIONS
C_WEIGHT = np.array([c.weight for c in CONDS])
C_FLU = np.array([c.flu for c in CONDS])
C_MIN = np.array([c.min_age for c in CONDS])
C_MAX = np.array([c.max_age for c in CONDS])
C_SEX = np.array([{"F": 0, "M": 1, None: -1}[c.sex] for c in CONDS])
C_ADMIT = np.array([c.admit_prob for c in CONDS])
C_LOS = np.array([c.mean_los_days for c in CONDS])
C_TRIAGE = np.array([c.triage for c in CONDS])
C_DEPT = np.array([catalog.DEPT_INDEX[c.department] for c in CONDS])
FALLBACK = next(i for i, c in enumerate(CONDS) if c.icd10 == "T14.1")
DEPT_CODES = [d.code for d in catalog.DEPARTMENTS]
DEPT_NAMES = [d.name for d in catalog.DEPARTMENTS]
EMERG = catalog.DEPT_INDEX["EMERG"]
ICU = catalog.DEPT_INDEX["ICU"]
C_RESP = np.array([c.respiratory for c in CONDS], dtype=np.bool_)
# ICU: a patient who will not die there spends the first ~60 % of the stay in ICU and the rest on
# a ward (ICU stays are a third to two thirds of the hospital stay; SA public ICUs' median
# ~3-4 days), so an ICU stay is at least two days: one in ICU, one on the ward.
ICU_STAY_SHARE = 0.6
PAED_MAX_AGE = max(c.max_age for c in CONDS if c.department == "PAED")
# Changes of ward: this share of the day's movements (ICU_MOVE_SHARE) is a step up to ICU from
# one of these wards (a deteriorating patient, 1-3 days in ICU, then back) or a step down from
# the emergency department's short-stay beds to general medicine.
ICU_MOVE_SHARE = 0.03
STEP_UP_FROM = frozenset(
    catalog.DEPT_INDEX[c] for c in ("MED", "SURG", "RESP", "ORTH", "ONC", "MAT", "PAED")
)
STEP_UP_DAYS = (1, 3)
MUST_ADMIT = np.array([c.admit_prob >= 0.9 for c in CONDS], dtype=np.bool_)
ADMIT_DELAY_MAX = 6 * HOUR_S


def season_factor(day: date) -> F64:
    """Per-condition weight multiplier on ``day`` (1 outside flu season)."""
    return np.asarray(1 + (C_FLU - 1) * FLU_SEASON[day.month - 1], dtype=np.float64)


def expected_visits(config: SimConfig, day: date) -> float:
    """Mean number of visits on ``day``: the configured rate, weekday shape and flu season."""
    seasonal = float((C_WEIGHT * season_factor(day)).sum() / C_WEIGHT.sum())
    return config.visits_per_day * float(WEEKDAY_FACTOR[day.weekday()]) * seasonal


def age_weights(age_years: F64) -> F64:
    """Children and the elderly use hospitals more: relative chance of being the next patient."""
    a = age_years
    weight = np.where(a < 5, 2.5, np.where(a < 15, 1.0, np.where(a < 50, 1.0, 2.0)))
    return np.asarray(weight * np.where(a >= 70, 1.5, 1.0), dtype=np.float64)


_WEIGHT_BY_YEAR = age_weights(np.arange(0, 130, dtype=np.float64))


def age_weight_cdf(birth: npt.NDArray[np.integer], day: date, alive: B | None = None) -> F64:
    """The CDF patients are sampled from on ``day`` (the dead have no weight).

    Whole years by integer arithmetic and a lookup table: this runs over the whole population
    (every four weeks), so it avoids float temporaries of millions of rows.
    """
    years = (day_number(day) - birth.astype(np.int32)) * 4 // 1461
    weight = _WEIGHT_BY_YEAR[np.clip(years, 0, 129)]
    if alive is not None:
        weight = weight * alive
    cdf = np.cumsum(weight)
    return np.asarray(cdf / cdf[-1], dtype=np.float64)


@dataclass(frozen=True)
class VisitDraw:
    """One row per visit: who, with what, when, and what the visit would need.

    Times are seconds: ``start_s`` into ``visit_day`` (a day number; earlier than today only for
    the origin day's census), delays relative to the start.
    """

    person: I64
    age: I64
    cond: I64
    triage: I64
    start_s: I64
    admit: B  # needs a bed
    los: I64  # planned length of stay in days (>= 1)
    emergency: B  # comes through the emergency department
    admit_delay: I64  # arrival to bed
    end_delay: I64  # arrival to the end of a visit that is not admitted
    discharge_s: I64  # second of the discharge day the patient leaves
    visit_day: I64

    @property
    def n(self) -> int:
        return int(self.person.shape[0])

    @property
    def dept(self) -> I64:
        """The ward the condition belongs to (where an admission goes)."""
        return np.asarray(C_DEPT[self.cond], dtype=np.int64)

    @property
    def start_abs(self) -> I64:
        return np.asarray(self.visit_day * DAY_S + self.start_s, dtype=np.int64)

    @property
    def admit_abs(self) -> I64:
        """When the patient gets a bed (or is diverted): a while after arrival, the same day.

        Late arrivals are squeezed into the time left before 23:00 (at once after 23:00), so a
        diverted patient's ambulance still leaves that day.
        """
        last = (self.visit_day + 1) * DAY_S - HOUR_S
        return inside(self.start_abs, self.admit_delay, ADMIT_DELAY_MAX, last)

    @property
    def icu_days(self) -> I64:
        """Days in ICU before the step down to a ward (0 outside ICU)."""
        days = np.clip(np.rint(ICU_STAY_SHARE * self.los), 1, np.maximum(self.los - 1, 1))
        return np.asarray(np.where(self.dept == ICU, days, 0), dtype=np.int64)

    @property
    def step_down(self) -> I64:
        """The ward an ICU patient steps down to: paediatrics for children, respiratory medicine
        after respiratory failure, general medicine otherwise."""
        med, resp, paed = (catalog.DEPT_INDEX[c] for c in ("MED", "RESP", "PAED"))
        ward = np.where(self.age <= PAED_MAX_AGE, paed, np.where(C_RESP[self.cond], resp, med))
        return np.asarray(ward, dtype=np.int64)

    def take(self, idx: I64) -> VisitDraw:
        return VisitDraw(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})

    @staticmethod
    def concat(first: VisitDraw, second: VisitDraw) -> VisitDraw:
        return VisitDraw(
            **{
                f.name: np.r_[getattr(first, f.name), getattr(second, f.name)]
                for f in fields(first)
            }
        )


def draw_visits(
    rng: np.random.Generator,
    n: int,
    day: date,
    birth: npt.NDArray[np.integer],
    male_of: B,
    cdf: F64,
) -> VisitDraw:
    """Patients, conditions, triage, arrival time and length of stay for ``n`` visits on ``day``.

    Conditions that always need a bed (deliveries, surgical emergencies, ICU cases) ask for one;
    the others do with their condition's probability, or when triaged red.
    """
    d = day_number(day)
    person = np.searchsorted(cdf, rng.random(n), side="right").astype(np.int64)
    person = np.minimum(person, cdf.shape[0] - 1)
    age = ((d - birth[person]) / 365.25).astype(np.int64)
    male = male_of[person].astype(np.int64)
    eligible = (
        (age[:, None] >= C_MIN[None, :])
        & (age[:, None] <= C_MAX[None, :])
        & ((C_SEX[None, :] < 0) | (C_SEX[None, :] == male[:, None]))
    )
    w = eligible * (C_WEIGHT * season_factor(day))[None, :]
    cum = np.cumsum(w, axis=1)
    total = cum[:, -1]
    u = rng.random(n) * total
    cond = (cum < u[:, None]).sum(axis=1)
    cond = np.where(total > 0, np.minimum(cond, len(CONDS) - 1), FALLBACK).astype(np.int64)
    triage = np.clip(C_TRIAGE[cond] + rng.choice([-1, 0, 0, 0, 1], size=n), 1, 5)
    hour = rng.choice(24, size=n, p=HOURLY / HOURLY.sum())
    start_s = (hour * HOUR_S + rng.integers(0, HOUR_S, size=n)).astype(np.int64)
    admit = (rng.random(n) < 0.7 * C_ADMIT[cond]) | (triage == 1) | MUST_ADMIT[cond]
    los = np.maximum(1, np.rint(rng.gamma(2.0, C_LOS[cond] / 2.0))).astype(np.int64)
    los = np.where(C_DEPT[cond] == ICU, np.maximum(los, 2), los)  # a ward day after ICU
    emergency = (triage <= 3) | (C_DEPT[cond] == EMERG)
    return VisitDraw(
        person=person,
        age=age,
        cond=cond,
        triage=triage.astype(np.int64),
        start_s=start_s,
        admit=np.asarray(admit, dtype=np.bool_),
        los=los,
        emergency=np.asarray(emergency, dtype=np.bool_),
        admit_delay=rng.integers(1800, ADMIT_DELAY_MAX, size=n).astype(np.int64),
        end_delay=rng.integers(1800, 6 * HOUR_S, size=n).astype(np.int64),
        discharge_s=rng.integers(8 * HOUR_S, 16 * HOUR_S, size=n).astype(np.int64),
        visit_day=np.full(n, d, dtype=np.int64),
    )


@dataclass(frozen=True)
class MoveDraw:
    """The day's patient movements (ward movements and changes of ward), time-ordered."""

    time_s: I64
    pick: F64  # which inpatient (a fraction of the current list)
    kind: F64  # < ICU_MOVE_SHARE: change of ward; otherwise a trip to a service area
    area: I64
    icu_days: I64  # days in ICU of a step up

    @property
    def n(self) -> int:
        return int(self.time_s.shape[0])


def draw_moves(rng: np.random.Generator, inpatients: int, per_inpatient: float) -> MoveDraw:
    """The day's movements: on average ``per_inpatient`` per patient in a bed."""
    n = int(rng.poisson(max(inpatients, 0) * per_inpatient))
    return MoveDraw(
        time_s=np.sort(rng.integers(0, DAY_S, size=n)).astype(np.int64),
        pick=rng.random(n),
        kind=rng.random(n),
        area=rng.integers(0, len(catalog.SERVICE_AREAS), size=n).astype(np.int64),
        icu_days=rng.integers(STEP_UP_DAYS[0], STEP_UP_DAYS[1] + 1, size=n).astype(np.int64),
    )

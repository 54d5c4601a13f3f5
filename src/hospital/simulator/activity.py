"""One simulated day of hospital activity, drawn vectorized from a per-day random stream.

:class:`HospitalSim` carries the state between days (who is in which bed, what is due to be
updated or deleted later, which people are already EHR patients) and :meth:`HospitalSim.step`
returns a :class:`DayResult` of polars frames. No I/O happens here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt
import polars as pl

from hospital.errors import SimulationError
from hospital.simulator import catalog
from hospital.simulator.config import SimConfig
from hospital.simulator.population import People
from hospital.simulator.staff import Staff, StaffChanges, day_number
from hospital.simulator.vectors import ascii_matrix_to_series, child_rng, pick, random_uuids

STREAM_ACTIVITY = 3
STREAM_CENSUS = 4
DAY_S = 86_400
US = 1_000_000
TS = pl.Datetime("us", "UTC")
Schema = dict[str, pl.DataType | type[pl.DataType]]

# Monday..Sunday demand relative to the weekly mean.
WEEKDAY_FACTOR = np.array([1.12, 1.06, 1.0, 1.0, 1.04, 0.92, 0.86])
# Arrivals by hour of day (relative): quiet nights, busy late mornings and evenings.
HOURLY = np.array(
    [2, 1.5, 1.2, 1, 1, 1.2, 2, 3.5, 5, 6, 6.5, 6.5, 6, 5.5, 5.5, 5.5, 5.5, 6, 6, 5.5, 5, 4, 3, 2.5]
)
# Flu-season intensity by month (southern hemisphere: April-August, peaking June-July).
FLU_SEASON = np.array([0, 0, 0, 0.5, 0.8, 1.0, 1.0, 0.6, 0, 0, 0, 0], dtype=np.float64)

_CONDS = catalog.CONDITIONS
_C_WEIGHT = np.array([c.weight for c in _CONDS])
_C_FLU = np.array([c.flu for c in _CONDS])
_C_MIN = np.array([c.min_age for c in _CONDS])
_C_MAX = np.array([c.max_age for c in _CONDS])
_C_SEX = np.array([{"F": 0, "M": 1, None: -1}[c.sex] for c in _CONDS])
_C_ADMIT = np.array([c.admit_prob for c in _CONDS])
_C_LOS = np.array([c.mean_los_days for c in _CONDS])
_C_TRIAGE = np.array([c.triage for c in _CONDS])
_C_DEPT = np.array([catalog.DEPT_INDEX[c.department] for c in _CONDS])
_FALLBACK = next(i for i, c in enumerate(_CONDS) if c.icd10 == "T14.1")
_DEPT_CODES = [d.code for d in catalog.DEPARTMENTS]
_CAPACITY = np.array([d.bed_capacity for d in catalog.DEPARTMENTS])
_EMERG = catalog.DEPT_INDEX["EMERG"]


def season_factor(day: date) -> npt.NDArray[np.float64]:
    """Per-condition weight multiplier on ``day`` (1 outside flu season)."""
    return np.asarray(1 + (_C_FLU - 1) * FLU_SEASON[day.month - 1], dtype=np.float64)


def expected_visits(config: SimConfig, day: date) -> float:
    """Mean number of visits on ``day``: the configured rate, weekday shape and flu season."""
    seasonal = float((_C_WEIGHT * season_factor(day)).sum() / _C_WEIGHT.sum())
    return config.visits_per_day * float(WEEKDAY_FACTOR[day.weekday()]) * seasonal


def _ids(rng: np.random.Generator, n: int, name: str) -> pl.Series:
    return ascii_matrix_to_series(name, random_uuids(rng, n))


def _ts(day_num: int, seconds: npt.NDArray[np.int64], name: str) -> pl.Series:
    return pl.Series(name, (day_num * DAY_S + seconds) * US).cast(TS)


@dataclass
class Inpatient:
    admission_id: str
    visit_id: str
    person: int
    dept: int
    bed: int
    admitted_s: int  # absolute seconds since 1970
    discharge_day: int
    discharge_s: int  # seconds into the discharge day
    attending: str | None


@dataclass
class DayResult:
    """Everything one simulated day produced (EHR changes and the day's batch records)."""

    day: date
    # EHR inserts
    patients: pl.DataFrame
    visits: pl.DataFrame
    diagnoses: pl.DataFrame
    allergies: pl.DataFrame
    medications: pl.DataFrame
    doctor_notes: pl.DataFrame
    treatments: pl.DataFrame
    # EHR updates
    visit_updates: pl.DataFrame
    medication_updates: pl.DataFrame
    allergy_updates: pl.DataFrame
    # EHR deletes (entered in error)
    deleted_diagnoses: pl.DataFrame
    deleted_notes: pl.DataFrame
    # batch / stream records
    admissions: pl.DataFrame
    discharges: pl.DataFrame
    transfers: pl.DataFrame
    transports: pl.DataFrame
    pharmacy_orders: pl.DataFrame
    staff_assignments: pl.DataFrame
    staff_changes: StaffChanges
    occupancy: pl.DataFrame  # per department: capacity, peak and end-of-day occupancy
    expected_visits: float = 0.0

    def ehr_row_count(self) -> int:
        frames = (
            self.patients, self.visits, self.diagnoses, self.allergies, self.medications,
            self.doctor_notes, self.treatments, self.visit_updates, self.medication_updates,
            self.allergy_updates, self.deleted_diagnoses, self.deleted_notes,
        )  # fmt: skip
        return sum(f.height for f in frames)


@dataclass
class _Pending:
    """Changes decided on one day that happen on a later day."""

    visit_updates: list[pl.DataFrame] = field(default_factory=list)
    medication_updates: list[pl.DataFrame] = field(default_factory=list)
    allergy_updates: list[pl.DataFrame] = field(default_factory=list)
    deleted_diagnoses: list[pl.DataFrame] = field(default_factory=list)
    deleted_notes: list[pl.DataFrame] = field(default_factory=list)


VISIT_UPDATE_SCHEMA: Schema = {
    "visit_id": pl.String,
    "ended_at": TS,
    "status": pl.String,
    "updated_at": TS,
}
MED_UPDATE_SCHEMA: Schema = {
    "medication_id": pl.String,
    "end_date": pl.Date,
    "status": pl.String,
    "updated_at": TS,
}
ALLERGY_UPDATE_SCHEMA: Schema = {
    "allergy_id": pl.String,
    "severity": pl.String,
    "status": pl.String,
    "updated_at": TS,
}
DELETE_DX_SCHEMA: Schema = {"diagnosis_id": pl.String}
DELETE_NOTE_SCHEMA: Schema = {"note_id": pl.String}


def _concat(
    frames: list[pl.DataFrame], schema: dict[str, pl.DataType | type[pl.DataType]]
) -> pl.DataFrame:
    return pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=schema)


class HospitalSim:
    """The hospital world, advanced one simulated day at a time from ``config.origin``."""

    def __init__(self, config: SimConfig, people: People) -> None:
        if people.size != config.num_people:
            raise SimulationError(
                f"population has {people.size} people but the config says {config.num_people}"
            )
        self.config = config
        self.people = people
        self.staff = Staff(config, people)
        self.today = config.origin
        self.seen = np.zeros(people.size, dtype=np.bool_)
        self.inpatients: dict[str, Inpatient] = {}
        self.admitted_people: set[int] = set()
        self.free_beds: list[list[int]] = [list(range(c, 0, -1)) for c in _CAPACITY.tolist()]
        self.pending: dict[int, _Pending] = {}
        # Children and the elderly use hospitals more: sample patients by an age weight.
        age = (day_number(config.origin) - people.birth) / 365.25
        weight = np.where(age < 5, 2.5, np.where(age < 15, 1.0, np.where(age < 50, 1.0, 2.0)))
        weight = weight * np.where(age >= 70, 1.5, 1.0)
        self._cdf = np.cumsum(weight)
        self._cdf /= self._cdf[-1]

    # --- helpers -------------------------------------------------------------------------------
    def _due(self, day_num: int) -> _Pending:
        return self.pending.setdefault(day_num, _Pending())

    def _draw_visits(
        self, rng: np.random.Generator, n: int, day: date
    ) -> dict[str, npt.NDArray[np.int64]]:
        """Patients, conditions, triage, arrival time and length of stay for ``n`` visits."""
        d = day_number(day)
        person = np.searchsorted(self._cdf, rng.random(n), side="right").astype(np.int64)
        person = np.minimum(person, self.people.size - 1)
        age = ((d - self.people.birth[person]) / 365.25).astype(np.int64)
        male = self.people.male[person].astype(np.int64)
        eligible = (
            (age[:, None] >= _C_MIN[None, :])
            & (age[:, None] <= _C_MAX[None, :])
            & ((_C_SEX[None, :] < 0) | (_C_SEX[None, :] == male[:, None]))
        )
        w = eligible * (_C_WEIGHT * season_factor(day))[None, :]
        cum = np.cumsum(w, axis=1)
        total = cum[:, -1]
        u = rng.random(n) * total
        cond = (cum < u[:, None]).sum(axis=1)
        cond = np.where(total > 0, np.minimum(cond, len(_CONDS) - 1), _FALLBACK).astype(np.int64)
        triage = np.clip(_C_TRIAGE[cond] + rng.choice([-1, 0, 0, 0, 1], size=n), 1, 5)
        hour = rng.choice(24, size=n, p=HOURLY / HOURLY.sum())
        start_s = (hour * 3600 + rng.integers(0, 3600, size=n)).astype(np.int64)
        admit = (rng.random(n) < 0.7 * _C_ADMIT[cond]) | (triage == 1)
        los = np.maximum(1, np.rint(rng.gamma(2.0, _C_LOS[cond] / 2.0))).astype(np.int64)
        emergency = (triage <= 3) | (_C_DEPT[cond] == _EMERG)
        return {
            "person": person,
            "age": age,
            "cond": cond,
            "triage": triage.astype(np.int64),
            "start_s": start_s,
            "admit": admit.astype(np.int64),
            "los": los,
            "emergency": emergency.astype(np.int64),
            "admit_delay": rng.integers(1800, 6 * 3600, size=n).astype(np.int64),
            "end_delay": rng.integers(1800, 6 * 3600, size=n).astype(np.int64),
            "discharge_s": rng.integers(8 * 3600, 16 * 3600, size=n).astype(np.int64),
        }

    # --- the day ---------------------------------------------------------------------------------
    def step(self) -> DayResult:
        """Simulate ``self.today`` and move the clock to the next day."""
        day = self.today
        d = day_number(day)
        rng = child_rng(self.config.seed, STREAM_ACTIVITY, d)
        staff_changes = self.staff.advance(day)
        roster = self.staff.roster(day)

        expected = expected_visits(self.config, day)
        n = int(rng.poisson(expected))
        v = self._draw_visits(rng, n, day)
        visit_day = np.full(n, d, dtype=np.int64)
        if d == day_number(self.config.origin):
            v, visit_day = self._with_census(v, visit_day, n)
        total = v["person"].shape[0]
        visit_ids = _ids(rng, total, "visit_id")
        admission_ids = _ids(rng, total, "admission_id")
        census = visit_day < d

        # Attending: a doctor of the visit's department rostered today (any doctor if none).
        doctors = roster.filter(pl.col("role").is_in(["doctor", "surgeon"]))
        visit_dept = np.where(v["emergency"].astype(bool) & ~census, _EMERG, _C_DEPT[v["cond"]])
        attending = np.empty(total, dtype=object)
        all_docs = doctors["staff_id"].to_numpy()
        for k, code in enumerate(_DEPT_CODES):
            mask = visit_dept == k
            pool = doctors.filter(pl.col("department_code") == code)["staff_id"].to_numpy()
            pool = pool if pool.shape[0] else all_docs
            if mask.any() and pool.shape[0]:
                attending[mask] = pool[rng.integers(0, pool.shape[0], size=int(mask.sum()))]

        # --- beds: discharges, admissions and transfers in time order ---------------------------
        adm_time = np.minimum(v["start_s"] + v["admit_delay"], DAY_S - 1)
        moves_n = int(rng.poisson(DAY_S / 60 / self.config.transfer_interval_minutes))
        move_time = np.sort(rng.integers(0, DAY_S, size=moves_n))
        move_pick = rng.random(moves_n)
        move_kind = rng.random(moves_n)
        move_area = rng.integers(0, len(catalog.SERVICE_AREAS), size=moves_n)
        move_ids = _ids(rng, moves_n, "transfer_id").to_list()
        divert_to: npt.NDArray[np.int64] = np.asarray(
            rng.integers(0, len(catalog.OTHER_FACILITIES), size=total), dtype=np.int64
        )
        events: list[tuple[int, int, int]] = []  # (second, order, index): discharges first
        todays = [a for a in self.inpatients.values() if a.discharge_day == d]
        events += [(a.discharge_s, 0, i) for i, a in enumerate(todays)]
        events += [
            (int(adm_time[i]), 1, i)
            for i in np.flatnonzero(v["admit"].astype(bool) & ~census).tolist()
        ]
        events += [(int(t), 2, i) for i, t in enumerate(move_time.tolist())]
        events.sort()

        occupancy = np.array(
            [c - len(f) for c, f in zip(_CAPACITY.tolist(), self.free_beds, strict=True)]
        )
        peak = occupancy.copy()
        admissions: list[dict[str, object]] = []
        discharges: list[dict[str, object]] = []
        transfers: list[dict[str, object]] = []
        visit_updates: list[dict[str, object]] = []
        status = np.full(total, "", dtype=object)
        bed_of = np.zeros(total, dtype=np.int64)
        base = d * DAY_S
        for idx in np.flatnonzero(census).tolist():
            self._admit_census(v, idx, visit_ids, admission_ids, attending, visit_day, admissions)
            status[idx] = "admitted"
        occupancy = np.array(
            [c - len(f) for c, f in zip(_CAPACITY.tolist(), self.free_beds, strict=True)]
        )
        peak = np.maximum(peak, occupancy)
        for sec, kind, i in events:
            if kind == 0:
                a = todays[i]
                if a.admission_id not in self.inpatients:
                    continue
                del self.inpatients[a.admission_id]
                self.admitted_people.discard(a.person)
                self.free_beds[a.dept].append(a.bed)
                occupancy[a.dept] -= 1
                ts = base + sec
                discharges.append(
                    {
                        "admission_id": a.admission_id,
                        "visit_id": a.visit_id,
                        "patient_idx": a.person,
                        "department_code": _DEPT_CODES[a.dept],
                        "discharged_at": ts,
                        "disposition": "home",
                        "attending": a.attending,
                    }
                )
                visit_updates.append(
                    {"visit_id": a.visit_id, "ended_at": ts, "status": "completed"}
                )
            elif kind == 1:
                person = int(v["person"][i])
                dept = int(_C_DEPT[v["cond"][i]])
                if person in self.admitted_people:
                    status[i] = "seen"  # already in a bed: treated as an outpatient review
                    continue
                if not self.free_beds[dept]:
                    status[i] = "diverted"
                    fac = catalog.OTHER_FACILITIES[int(divert_to[i])][0]
                    transfers.append(
                        {
                            "transfer_id": None,
                            "patient_idx": person,
                            "admission_id": None,
                            "transfer_type": "inter_facility",
                            "from_department": _DEPT_CODES[dept],
                            "to_department": None,
                            "from_facility": catalog.FACILITY_CODE,
                            "to_facility": fac,
                            "reason": "no bed available",
                            "transferred_at": base + sec,
                        }
                    )
                    continue
                bed = self.free_beds[dept].pop()
                occupancy[dept] += 1
                peak[dept] = max(peak[dept], occupancy[dept])
                status[i] = "admitted"
                bed_of[i] = bed
                los = int(v["los"][i])
                a = Inpatient(
                    admission_ids[i],
                    visit_ids[i],
                    person,
                    dept,
                    bed,
                    base + sec,
                    d + los,
                    int(v["discharge_s"][i]),
                    attending[i],
                )
                self.inpatients[a.admission_id] = a
                self.admitted_people.add(person)
                admissions.append(self._admission_row(a))
            else:
                if not self.inpatients:
                    continue
                current = list(self.inpatients.values())
                a = current[int(move_pick[i] * len(current))]
                ts = base + sec
                if move_kind[i] < 0.03:
                    # Step up to ICU from a ward, or step down from ICU/EMERG to a medical ward.
                    icu = catalog.DEPT_INDEX["ICU"]
                    target = catalog.DEPT_INDEX["MED"] if a.dept in (icu, _EMERG) else icu
                    if not self.free_beds[target]:
                        continue
                    self.free_beds[a.dept].append(a.bed)
                    occupancy[a.dept] -= 1
                    old = a.dept
                    a.dept, a.bed = target, self.free_beds[target].pop()
                    occupancy[target] += 1
                    peak[target] = max(peak[target], occupancy[target])
                    transfers.append(
                        {
                            "transfer_id": move_ids[i],
                            "patient_idx": a.person,
                            "admission_id": a.admission_id,
                            "transfer_type": "inter_department",
                            "from_department": _DEPT_CODES[old],
                            "to_department": _DEPT_CODES[target],
                            "from_facility": catalog.FACILITY_CODE,
                            "to_facility": catalog.FACILITY_CODE,
                            "reason": "change in acuity",
                            "transferred_at": ts,
                        }
                    )
                else:
                    area = catalog.SERVICE_AREAS[int(move_area[i])]
                    transfers.append(
                        {
                            "transfer_id": move_ids[i],
                            "patient_idx": a.person,
                            "admission_id": a.admission_id,
                            "transfer_type": "ward_movement",
                            "from_department": _DEPT_CODES[a.dept],
                            "to_department": area,
                            "from_facility": catalog.FACILITY_CODE,
                            "to_facility": catalog.FACILITY_CODE,
                            "reason": f"to {area.lower().replace('_', ' ')}",
                            "transferred_at": ts,
                        }
                    )
        if (peak > _CAPACITY).any():
            raise SimulationError(f"bed occupancy above capacity on {day}")  # a bug, never data

        # Visits that were not admitted end a few hours after arrival (maybe after midnight).
        for i in np.flatnonzero(~census).tolist():
            if status[i] == "":
                status[i] = "seen"
        outcome = status
        not_admitted = (outcome == "seen") | (outcome == "diverted")
        div_time = adm_time
        end_abs = np.where(
            outcome == "diverted", base + div_time, base + v["start_s"] + v["end_delay"]
        )
        for i in np.flatnonzero(not_admitted).tolist():
            end = int(end_abs[i])
            row = {
                "visit_id": visit_ids[i],
                "ended_at": end,
                "status": "transferred" if outcome[i] == "diverted" else "completed",
            }
            if end // DAY_S == d:
                visit_updates.append(row)
            else:
                self._due(end // DAY_S).visit_updates.append(_visit_update_frame([row]))

        result = self._records(
            rng,
            day,
            v,
            visit_day,
            visit_ids,
            admission_ids,
            attending,
            visit_dept,
            outcome,
            bed_of,
            roster,
            staff_changes,
            admissions,
            discharges,
            transfers,
            visit_updates,
            occupancy,
            peak,
            expected,
        )
        self.pending.pop(d, None)
        self.today = day + timedelta(days=1)
        return result

    # --- initial state -----------------------------------------------------------------------
    def _with_census(
        self, v: dict[str, npt.NDArray[np.int64]], visit_day: npt.NDArray[np.int64], n: int
    ) -> tuple[dict[str, npt.NDArray[np.int64]], npt.NDArray[np.int64]]:
        """Add the patients already in beds when the world starts (admitted on earlier days)."""
        day = self.config.origin
        d = day_number(day)
        rng = child_rng(self.config.seed, STREAM_CENSUS, d)
        target = np.floor(_CAPACITY * self.config.initial_occupancy).astype(np.int64)
        c = self._draw_visits(rng, int(target.sum() * 6) + 100, day)
        keep = c["admit"].astype(bool)
        _, first = np.unique(c["person"], return_index=True)
        unique = np.zeros(keep.shape[0], dtype=bool)
        unique[first] = True
        keep &= unique
        dept = _C_DEPT[c["cond"]]
        chosen: list[int] = []
        for k in range(len(_DEPT_CODES)):
            chosen += np.flatnonzero(keep & (dept == k))[: int(target[k])].tolist()
        sel = np.array(sorted(chosen), dtype=np.int64)
        back = np.minimum(
            c["los"][sel], 1 + (rng.random(sel.shape[0]) * c["los"][sel]).astype(np.int64)
        )
        merged = {key: np.r_[c[key][sel], v[key]] for key in v}
        return merged, np.r_[d - back, visit_day]

    def _admit_census(
        self,
        v: dict[str, npt.NDArray[np.int64]],
        i: int,
        visit_ids: pl.Series,
        admission_ids: pl.Series,
        attending: npt.NDArray[np.object_],
        visit_day: npt.NDArray[np.int64],
        admissions: list[dict[str, object]],
    ) -> None:
        dept = int(_C_DEPT[v["cond"][i]])
        bed = self.free_beds[dept].pop()
        admitted = int(visit_day[i]) * DAY_S + min(
            int(v["start_s"][i] + v["admit_delay"][i]), DAY_S - 1
        )
        a = Inpatient(
            admission_ids[i],
            visit_ids[i],
            int(v["person"][i]),
            dept,
            bed,
            admitted,
            int(visit_day[i] + v["los"][i]),
            int(v["discharge_s"][i]),
            attending[i],
        )
        self.inpatients[a.admission_id] = a
        self.admitted_people.add(a.person)
        admissions.append(self._admission_row(a))

    @staticmethod
    def _admission_row(a: Inpatient) -> dict[str, object]:
        return {
            "admission_id": a.admission_id,
            "visit_id": a.visit_id,
            "patient_idx": a.person,
            "department_code": _DEPT_CODES[a.dept],
            "bed_number": a.bed,
            "admitted_at": a.admitted_s,
            "expected_discharge_date": a.discharge_day,
        }

    # --- records ------------------------------------------------------------------------------
    def _pid(self, idx: npt.NDArray[np.int64] | list[int], name: str = "patient_id") -> pl.Series:
        return (
            self.people.frame["person_id"]
            .gather(pl.Series(np.asarray(idx, dtype=np.int64)))
            .alias(name)
        )

    def _records(
        self,
        rng: np.random.Generator,
        day: date,
        v: dict[str, npt.NDArray[np.int64]],
        visit_day: npt.NDArray[np.int64],
        visit_ids: pl.Series,
        admission_ids: pl.Series,
        attending: npt.NDArray[np.object_],
        visit_dept: npt.NDArray[np.int64],
        outcome: npt.NDArray[np.object_],
        bed_of: npt.NDArray[np.int64],
        roster: pl.DataFrame,
        staff_changes: StaffChanges,
        admissions: list[dict[str, object]],
        discharges: list[dict[str, object]],
        transfers: list[dict[str, object]],
        visit_updates: list[dict[str, object]],
        occupancy: npt.NDArray[np.int64],
        peak: npt.NDArray[np.int64],
        expected: float,
    ) -> DayResult:
        d = day_number(day)
        due = self.pending.get(d, _Pending())
        n = v["person"].shape[0]
        cond = v["cond"]
        start_abs = visit_day * DAY_S + v["start_s"]
        start_ts = pl.Series("started_at", start_abs * US).cast(TS)
        pid = self._pid(v["person"])
        attending_s = pl.Series("attending_staff_id", attending.tolist(), dtype=pl.String)
        admitted = outcome == "admitted"
        emergency = v["emergency"].astype(bool)
        visit_type = np.where(admitted, "inpatient", np.where(emergency, "emergency", "outpatient"))
        reason = pick([c.description for c in _CONDS], cond, "reason")
        visits = pl.DataFrame(
            {
                "visit_id": visit_ids,
                "patient_id": pid,
                "facility_code": pl.Series([catalog.FACILITY_CODE] * n, dtype=pl.String),
                "department_code": pick(_DEPT_CODES, visit_dept, "department_code"),
                "visit_type": pl.Series(visit_type.tolist(), dtype=pl.String),
                "triage_level": pl.Series(np.where(emergency, v["triage"], -1)).cast(pl.Int16),
                "reason": reason,
                "attending_staff_id": attending_s,
                "started_at": start_ts,
            }
        ).with_columns(
            pl.when(pl.col("triage_level") > 0).then(pl.col("triage_level")).alias("triage_level"),
            pl.lit(None, dtype=TS).alias("ended_at"),
            pl.lit("in_progress").alias("status"),
            pl.col("started_at").alias("created_at"),
            pl.col("started_at").alias("updated_at"),
        )

        # New EHR patients: people seen for the first time, inserted at their first visit.
        order = np.argsort(start_abs, kind="stable")
        persons_sorted = v["person"][order]
        uniq, first = np.unique(persons_sorted, return_index=True)
        new_mask = ~self.seen[uniq]
        new_people = uniq[new_mask]
        new_created = start_abs[order][first[new_mask]]
        self.seen[new_people] = True
        pframe = self.people.frame[new_people.tolist()]
        created = pl.Series("created_at", new_created * US).cast(TS)
        patients = pframe.rename({"person_id": "patient_id"}).with_columns(
            created, created.alias("updated_at")
        )

        # Diagnoses: the primary condition plus age-related comorbidities.
        dx_visit = [np.arange(n)]
        dx_code = [np.array([c.icd10 for c in _CONDS], dtype=object)[cond]]
        dx_desc = [np.array([c.description for c in _CONDS], dtype=object)[cond]]
        dx_primary = [np.ones(n, dtype=bool)]
        for code, desc, min_age, p in catalog.COMORBIDITIES:
            hit = np.flatnonzero((v["age"] >= min_age) & (rng.random(n) < p) & (dx_code[0] != code))
            dx_visit.append(hit)
            dx_code.append(np.full(hit.shape[0], code, dtype=object))
            dx_desc.append(np.full(hit.shape[0], desc, dtype=object))
            dx_primary.append(np.zeros(hit.shape[0], dtype=bool))
        dxv = np.concatenate(dx_visit)
        m = dxv.shape[0]
        dx_time = start_abs[dxv] + rng.integers(900, 5400, size=m)
        diagnoses = pl.DataFrame(
            {
                "diagnosis_id": _ids(rng, m, "diagnosis_id"),
                "visit_id": visit_ids.gather(pl.Series(dxv)),
                "patient_id": pid.gather(pl.Series(dxv)),
                "icd10_code": pl.Series(np.concatenate(dx_code).tolist(), dtype=pl.String),
                "description": pl.Series(np.concatenate(dx_desc).tolist(), dtype=pl.String),
                "is_primary": pl.Series(np.concatenate(dx_primary)),
                "diagnosed_at": pl.Series(dx_time * US).cast(TS),
                "status": pl.Series(["active"] * m, dtype=pl.String),
            }
        ).with_columns(
            pl.col("diagnosed_at").alias("created_at"), pl.col("diagnosed_at").alias("updated_at")
        )
        wrong = np.asarray(
            rng.random(m) < 0.015, dtype=np.bool_
        )  # entered in error: removed the next day
        self._due(d + 1).deleted_diagnoses.append(
            diagnoses.filter(pl.Series(wrong)).select("diagnosis_id")
        )

        # Allergies for some new patients; a fifth of them are corrected a few days later.
        k = new_people.shape[0]
        has = np.flatnonzero(rng.random(k) < 0.08)
        alg = rng.integers(0, len(catalog.ALLERGENS), size=has.shape[0])
        sev = rng.integers(0, len(catalog.SEVERITIES), size=has.shape[0])
        a_time = pl.Series((new_created[has] + 600) * US).cast(TS)
        allergies = pl.DataFrame(
            {
                "allergy_id": _ids(rng, has.shape[0], "allergy_id"),
                "patient_id": patients["patient_id"].gather(pl.Series(has)),
                "substance": pick([a[0] for a in catalog.ALLERGENS], alg, "substance"),
                "reaction": pick([a[1] for a in catalog.ALLERGENS], alg, "reaction"),
                "severity": pick(catalog.SEVERITIES, sev, "severity"),
                "status": pl.Series(["active"] * has.shape[0], dtype=pl.String),
                "recorded_at": a_time,
            }
        ).with_columns(
            pl.col("recorded_at").alias("created_at"), pl.col("recorded_at").alias("updated_at")
        )
        fix = np.flatnonzero(rng.random(has.shape[0]) < 0.2)
        fix_day = d + rng.integers(1, 6, size=fix.shape[0])
        refuted = rng.random(fix.shape[0]) < 0.4
        new_sev = (sev[fix] + 1 + rng.integers(0, 2, size=fix.shape[0])) % len(catalog.SEVERITIES)
        for j, f in enumerate(fix.tolist()):
            self._due(int(fix_day[j])).allergy_updates.append(
                pl.DataFrame(
                    {
                        "allergy_id": [allergies["allergy_id"][f]],
                        "severity": [catalog.SEVERITIES[int(new_sev[j])]],
                        "status": ["refuted" if refuted[j] else "active"],
                        "updated_at": [(int(fix_day[j]) * DAY_S + 10 * 3600) * US],
                    },
                    schema_overrides={"updated_at": pl.Int64},
                ).with_columns(pl.col("updated_at").cast(TS))
            )

        # Medications: the condition's first drug, sometimes its second; short courses end later.
        drug1 = np.array([c.drugs[0] for c in _CONDS], dtype=object)[cond]
        drug2 = np.array([c.drugs[1] if len(c.drugs) > 1 else "" for c in _CONDS], dtype=object)[
            cond
        ]
        second = (drug2 != "") & (rng.random(n) < 0.5)
        med_visit = np.r_[np.arange(n), np.flatnonzero(second)]
        med_code = np.r_[drug1, drug2[second]]
        q = med_visit.shape[0]
        info = [catalog.DRUGS[str(c)] for c in med_code.tolist()]
        course = np.array([i[4] for i in info], dtype=np.int64)
        med_start_day = visit_day[med_visit]
        ordered = start_abs[med_visit] + rng.integers(1800, 7200, size=q)
        medication_ids = _ids(rng, q, "medication_id")
        prescriber = attending_s.gather(pl.Series(med_visit)).alias("prescriber_id")
        medications = pl.DataFrame(
            {
                "medication_id": medication_ids,
                "patient_id": pid.gather(pl.Series(med_visit)),
                "visit_id": visit_ids.gather(pl.Series(med_visit)),
                "drug_code": pl.Series(med_code.tolist(), dtype=pl.String),
                "drug_name": pl.Series([i[0] for i in info], dtype=pl.String),
                "dose": pl.Series([i[1] for i in info], dtype=pl.String),
                "route": pl.Series([i[2] for i in info], dtype=pl.String),
                "frequency": pl.Series([i[3] for i in info], dtype=pl.String),
                "prescriber_id": prescriber,
                "start_date": pl.Series(med_start_day.astype(np.int32)).cast(pl.Date),
                "end_date": pl.Series([None] * q, dtype=pl.Date),
                "status": pl.Series(["active"] * q, dtype=pl.String),
                "created_at": pl.Series(ordered * US).cast(TS),
            }
        ).with_columns(pl.col("created_at").alias("updated_at"))
        ends = np.flatnonzero(course > 0)
        end_day = np.maximum(med_start_day[ends] + course[ends], d)
        med_end = pl.DataFrame(
            {
                "medication_id": medication_ids.gather(pl.Series(ends)),
                "end_date": pl.Series(end_day.astype(np.int32)).cast(pl.Date),
                "status": pl.Series(["completed"] * ends.shape[0], dtype=pl.String),
                "updated_at": pl.Series((end_day * DAY_S + 6 * 3600) * US).cast(TS),
                "_due": pl.Series(end_day),
            }
        )
        today_med = med_end.filter(pl.col("_due") == d).drop("_due")
        for due_day, part in (
            med_end.filter(pl.col("_due") > d).partition_by("_due", as_dict=True).items()
        ):
            self._due(int(due_day[0])).medication_updates.append(part.drop("_due"))

        qty = np.where(course > 0, course, 30) * 2
        pharmacy_orders = pl.DataFrame(
            {
                "order_id": _ids(rng, q, "order_id"),
                "patient_id": medications["patient_id"],
                "medication_id": medication_ids,
                "drug_code": medications["drug_code"],
                "quantity": pl.Series(qty.astype(np.int32)),
                "ordered_by": prescriber.alias("ordered_by"),
                "ordered_at": pl.Series(ordered * US).cast(TS),
                "dispensed_at": pl.Series((ordered + rng.integers(900, 5400, size=q)) * US).cast(
                    TS
                ),
                "status": pl.Series(["dispensed"] * q, dtype=pl.String),
            }
        ).with_columns(pl.col("dispensed_at").alias("updated_at"))

        # Treatments: the condition's procedures, most of the time.
        t1 = np.array([c.treatments[0] if c.treatments else "" for c in _CONDS], dtype=object)[cond]
        t2 = np.array(
            [c.treatments[1] if len(c.treatments) > 1 else "" for c in _CONDS], dtype=object
        )[cond]
        do1 = (t1 != "") & (rng.random(n) < 0.8)
        do2 = (t2 != "") & (rng.random(n) < 0.4)
        tv = np.r_[np.flatnonzero(do1), np.flatnonzero(do2)]
        tcode = np.r_[t1[do1], t2[do2]]
        r = tv.shape[0]
        t_time = start_abs[tv] + rng.integers(1800, 4 * 3600, size=r)
        treatments = pl.DataFrame(
            {
                "treatment_id": _ids(rng, r, "treatment_id"),
                "visit_id": visit_ids.gather(pl.Series(tv)),
                "patient_id": pid.gather(pl.Series(tv)),
                "treatment_code": pl.Series(tcode.tolist(), dtype=pl.String),
                "description": pl.Series(
                    [catalog.TREATMENTS[str(c)] for c in tcode.tolist()], dtype=pl.String
                ),
                "performed_by": attending_s.gather(pl.Series(tv)).alias("performed_by"),
                "performed_at": pl.Series(t_time * US).cast(TS),
                "status": pl.Series(["completed"] * r, dtype=pl.String),
            }
        ).with_columns(
            pl.col("performed_at").alias("created_at"), pl.col("performed_at").alias("updated_at")
        )

        doctor_notes = self._notes(
            rng, v, n, start_abs, visit_ids, pid, attending_s, outcome, visit_dept
        )
        if discharges:
            dis = pl.DataFrame(discharges)
            dn = dis.height
            summary = pl.DataFrame(
                {
                    "note_id": _ids(rng, dn, "note_id"),
                    "visit_id": dis["visit_id"],
                    "patient_id": self._pid(dis["patient_idx"].to_numpy()),
                    "author_staff_id": dis["attending"].cast(pl.String).alias("author_staff_id"),
                    "written_at": pl.Series((dis["discharged_at"].to_numpy() - 1800) * US).cast(TS),
                    "note_text": (
                        "Discharge summary: patient discharged home from "
                        + dis["department_code"]
                        + " in a stable condition. Follow-up at the local clinic in two weeks."
                    ),
                }
            ).with_columns(
                pl.col("written_at").alias("created_at"), pl.col("written_at").alias("updated_at")
            )
            doctor_notes = pl.concat([doctor_notes, summary], how="vertical")
        note_wrong = rng.random(doctor_notes.height) < 0.01
        self._due(d + 1).deleted_notes.append(
            doctor_notes.filter(pl.Series(note_wrong)).select("note_id")
        )

        transports = self._transports(rng, d, v, n, start_abs, visit_ids, pid, outcome, visit_day)
        transfers_df = self._transfers(rng, transfers)
        admissions_df = self._admissions(admissions)
        discharges_df = (
            pl.DataFrame(discharges)
            .select(
                "admission_id",
                self._pid(pl.DataFrame(discharges)["patient_idx"].to_numpy()),
                "visit_id",
                "department_code",
                (pl.col("discharged_at") * US).cast(TS),
                pl.col("disposition").alias("discharge_disposition"),
                pl.lit("discharged").alias("status"),
            )
            .with_columns(pl.col("discharged_at").alias("updated_at"))
            if discharges
            else pl.DataFrame(schema=DISCHARGE_SCHEMA)
        )
        vu = _concat([*due.visit_updates, _visit_update_frame(visit_updates)], VISIT_UPDATE_SCHEMA)
        return DayResult(
            day=day,
            patients=patients,
            visits=visits,
            diagnoses=diagnoses,
            allergies=allergies,
            medications=medications,
            doctor_notes=doctor_notes,
            treatments=treatments,
            visit_updates=vu,
            medication_updates=_concat([*due.medication_updates, today_med], MED_UPDATE_SCHEMA),
            allergy_updates=_concat(due.allergy_updates, ALLERGY_UPDATE_SCHEMA),
            deleted_diagnoses=_concat(due.deleted_diagnoses, DELETE_DX_SCHEMA),
            deleted_notes=_concat(due.deleted_notes, DELETE_NOTE_SCHEMA),
            admissions=admissions_df,
            discharges=discharges_df,
            transfers=transfers_df,
            transports=transports,
            pharmacy_orders=pharmacy_orders,
            staff_assignments=roster.drop("role"),
            staff_changes=staff_changes,
            occupancy=pl.DataFrame(
                {
                    "department_code": _DEPT_CODES,
                    "bed_capacity": _CAPACITY.tolist(),
                    "peak_occupancy": peak.tolist(),
                    "end_occupancy": occupancy.tolist(),
                }
            ),
            expected_visits=expected,
        )

    def _notes(
        self,
        rng: np.random.Generator,
        v: dict[str, npt.NDArray[np.int64]],
        n: int,
        start_abs: npt.NDArray[np.int64],
        visit_ids: pl.Series,
        pid: pl.Series,
        attending_s: pl.Series,
        outcome: npt.NDArray[np.object_],
        visit_dept: npt.NDArray[np.int64],
    ) -> pl.DataFrame:
        """One clerking note per visit, written from templates with the visit's facts."""
        cond = v["cond"]
        male = self.people.male[v["person"]]
        plan = np.where(
            outcome == "admitted",
            "Admit to "
            + np.array([d.name for d in catalog.DEPARTMENTS], dtype=object)[_C_DEPT[cond]]
            + ".",
            np.where(
                outcome == "diverted",
                "No bed available: transfer to a referral hospital.",
                "Discharge home with follow-up at the local clinic.",
            ),
        )
        sbp = rng.normal(128, 18, size=n).astype(np.int64)
        frame = pl.DataFrame(
            {
                "age": pl.Series(v["age"]),
                "sex": pl.Series(np.where(male, "male", "female").tolist(), dtype=pl.String),
                "colour": pick(catalog.TRIAGE_COLOURS, v["triage"] - 1, "colour"),
                "dept": pick([d.name for d in catalog.DEPARTMENTS], visit_dept, "dept"),
                "desc": pick([c.description for c in _CONDS], cond, "desc"),
                "icd": pick([c.icd10 for c in _CONDS], cond, "icd"),
                "sbp": pl.Series(sbp),
                "dbp": pl.Series((sbp * 0.62 + rng.normal(0, 6, size=n)).astype(np.int64)),
                "hr": pl.Series(rng.normal(88, 14, size=n).astype(np.int64)),
                "temp": pl.Series(np.round(rng.normal(37.1, 0.6, size=n), 1)),
                "plan": pl.Series(plan.tolist(), dtype=pl.String),
            }
        )
        text = frame.select(
            pl.format(
                "{}-year-old {} seen in {} (triage {}). Obs: BP {}/{} mmHg, HR {} bpm, T {} °C. "
                "Assessment: {} ({}). Plan: {}",
                "age",
                "sex",
                "dept",
                "colour",
                "sbp",
                "dbp",
                "hr",
                "temp",
                "desc",
                "icd",
                "plan",
            ).alias("note_text")
        )["note_text"]
        written = start_abs + rng.integers(900, 5400, size=n)
        return pl.DataFrame(
            {
                "note_id": _ids(rng, n, "note_id"),
                "visit_id": visit_ids,
                "patient_id": pid,
                "author_staff_id": attending_s.alias("author_staff_id"),
                "written_at": pl.Series(written * US).cast(TS),
                "note_text": text,
            }
        ).with_columns(
            pl.col("written_at").alias("created_at"), pl.col("written_at").alias("updated_at")
        )

    def _transports(
        self,
        rng: np.random.Generator,
        d: int,
        v: dict[str, npt.NDArray[np.int64]],
        n: int,
        start_abs: npt.NDArray[np.int64],
        visit_ids: pl.Series,
        pid: pl.Series,
        outcome: npt.NDArray[np.object_],
        visit_day: npt.NDArray[np.int64],
    ) -> pl.DataFrame:
        """Ambulance trips: emergency arrivals by acuity, and every diverted patient."""
        today = visit_day == d
        p = np.select([v["triage"] <= 2, v["triage"] == 3], [0.7, 0.25], 0.0)
        emerg = np.flatnonzero(today & v["emergency"].astype(bool) & (rng.random(n) < p))
        divert = np.flatnonzero(outcome == "diverted")
        idx = np.r_[emerg, divert]
        k = idx.shape[0]
        kind = np.r_[
            np.full(emerg.shape[0], "emergency"), np.full(divert.shape[0], "inter_facility")
        ]
        suburb = self.people.frame["suburb"].gather(pl.Series(v["person"][idx]))
        dest = rng.integers(0, len(catalog.OTHER_FACILITIES), size=k)
        arrive = np.where(
            kind == "emergency",
            start_abs[idx] - rng.integers(0, 600, size=k),
            start_abs[idx] + 3 * 3600 + rng.integers(0, 3600, size=k),
        )
        dispatch = arrive - rng.integers(1200, 3600, size=k)
        from_loc = np.where(
            kind == "emergency", np.asarray(suburb.to_list(), dtype=object), catalog.FACILITY_CODE
        )
        to_loc = np.where(
            kind == "emergency",
            catalog.FACILITY_CODE,
            np.array([f[0] for f in catalog.OTHER_FACILITIES], dtype=object)[dest],
        )
        priority = np.where(
            v["triage"][idx] <= 1, "P1", np.where(v["triage"][idx] == 2, "P2", "P3")
        )
        return pl.DataFrame(
            {
                "transport_id": _ids(rng, k, "transport_id"),
                "patient_id": pid.gather(pl.Series(idx)),
                "visit_id": visit_ids.gather(pl.Series(idx)),
                "transport_type": pl.Series(kind.tolist(), dtype=pl.String),
                "priority": pl.Series(priority.tolist(), dtype=pl.String),
                "unit": pl.Series(
                    [f"GP-EMS-{u:03d}" for u in rng.integers(1, 400, size=k).tolist()],
                    dtype=pl.String,
                ),
                "from_location": pl.Series(from_loc.tolist(), dtype=pl.String),
                "to_location": pl.Series(to_loc.tolist(), dtype=pl.String),
                "dispatched_at": pl.Series(dispatch * US).cast(TS),
                "arrived_at": pl.Series(arrive * US).cast(TS),
            }
        ).sort("dispatched_at", "transport_id")

    def _transfers(self, rng: np.random.Generator, rows: list[dict[str, object]]) -> pl.DataFrame:
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
        fresh = _ids(rng, frame.height, "fresh")
        return (
            frame.with_columns(
                pl.col("transfer_id").fill_null(fresh),
                self._pid(frame["patient_idx"].to_numpy()),
                (pl.col("transferred_at") * US).cast(TS),
            )
            .with_columns(pl.col("transferred_at").alias("updated_at"))
            .select(list(TRANSFER_SCHEMA))
        )

    def _admissions(self, rows: list[dict[str, object]]) -> pl.DataFrame:
        if not rows:
            return pl.DataFrame(schema=ADMISSION_SCHEMA)
        frame = pl.DataFrame(rows)
        return frame.select(
            "admission_id",
            self._pid(frame["patient_idx"].to_numpy()),
            "visit_id",
            "department_code",
            pl.col("bed_number").cast(pl.Int32),
            (pl.col("admitted_at") * US).cast(TS),
            pl.col("expected_discharge_date").cast(pl.Int32).cast(pl.Date),
            pl.lit("admitted").alias("status"),
        ).with_columns(pl.col("admitted_at").alias("updated_at"))


ADMISSION_SCHEMA: Schema = {
    "admission_id": pl.String,
    "patient_id": pl.String,
    "visit_id": pl.String,
    "department_code": pl.String,
    "bed_number": pl.Int32,
    "admitted_at": TS,
    "expected_discharge_date": pl.Date,
    "status": pl.String,
    "updated_at": TS,
}
DISCHARGE_SCHEMA: Schema = {
    "admission_id": pl.String,
    "patient_id": pl.String,
    "visit_id": pl.String,
    "department_code": pl.String,
    "discharged_at": TS,
    "discharge_disposition": pl.String,
    "status": pl.String,
    "updated_at": TS,
}
TRANSFER_SCHEMA: Schema = {
    "transfer_id": pl.String,
    "patient_id": pl.String,
    "admission_id": pl.String,
    "transfer_type": pl.String,
    "from_department": pl.String,
    "to_department": pl.String,
    "from_facility": pl.String,
    "to_facility": pl.String,
    "reason": pl.String,
    "transferred_at": TS,
    "updated_at": TS,
}


def _visit_update_frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    if not rows:
        return pl.DataFrame(schema=VISIT_UPDATE_SCHEMA)
    frame = pl.DataFrame(rows)
    return frame.select(
        "visit_id",
        (pl.col("ended_at") * US).cast(TS),
        "status",
        (pl.col("ended_at") * US).cast(TS).alias("updated_at"),
    )

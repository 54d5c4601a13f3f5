"""Clinical EHR records of the day's visits: patients, visits, diagnoses, allergies, medications,
pharmacy orders, treatments and notes.

Every builder stamps its rows inside the visit they belong to (``DayVisits.limit_abs`` is the last
second allowed: the visit's end, or the end of the day while the visit is still open); see
:mod:`hospital.simulator.timeline` for the rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from hospital.simulator import catalog, clinical, icd10
from hospital.simulator.draws import CONDS, DEPT_CODES, VisitDraw
from hospital.simulator.registry import Registry
from hospital.simulator.result import Agenda
from hospital.simulator.timeline import DAY_S, HOUR_S, I64, TS, US, id_series, inside, ts_series
from hospital.simulator.vectors import pick

Obj = npt.NDArray[np.object_]


@dataclass(frozen=True)
class DayVisits:
    """The day's visits with everything the record builders share."""

    day_num: int
    draw: VisitDraw
    visit_ids: pl.Series
    patient_ids: pl.Series
    attending: pl.Series  # attending_staff_id: the ward's doctor once admitted (handover)
    clerk: pl.Series  # the doctor who saw the patient first (emergency or clinic)
    dept: I64  # the department the visit is in (emergency for emergency arrivals)
    outcome: Obj  # admitted | diverted | seen
    limit_abs: I64  # last second a clinical event of the visit may carry
    ward: I64  # the ward of the bed for admitted visits, -1 otherwise
    diverted_to: Obj  # facility code for diverted visits, "" otherwise

    @property
    def n(self) -> int:
        return self.draw.n

    @property
    def start_abs(self) -> I64:
        return self.draw.start_abs


def visits_frame(v: DayVisits) -> pl.DataFrame:
    n = v.n
    admitted = v.outcome == "admitted"
    emergency = v.draw.emergency
    visit_type = np.where(admitted, "inpatient", np.where(emergency, "emergency", "outpatient"))
    return pl.DataFrame(
        {
            "visit_id": v.visit_ids,
            "patient_id": v.patient_ids,
            "facility_code": pl.Series([catalog.FACILITY_CODE] * n, dtype=pl.String),
            "department_code": pick(DEPT_CODES, v.dept, "department_code"),
            "visit_type": pl.Series(visit_type.tolist(), dtype=pl.String),
            "triage_level": pl.Series(np.where(emergency, v.draw.triage, -1)).cast(pl.Int16),
            "reason": pick([c.description for c in CONDS], v.draw.cond, "reason"),
            "attending_staff_id": v.attending,
            "started_at": ts_series("started_at", v.start_abs),
        }
    ).with_columns(
        pl.when(pl.col("triage_level") > 0).then(pl.col("triage_level")).alias("triage_level"),
        pl.lit(None, dtype=TS).alias("ended_at"),
        pl.lit("in_progress").alias("status"),
        pl.col("started_at").alias("created_at"),
        pl.col("started_at").alias("updated_at"),
    )


@dataclass(frozen=True)
class NewPatients:
    frame: pl.DataFrame
    people: I64  # person index of each new patient
    first_visit: I64  # row of their first visit today


def new_patients(rng: np.random.Generator, v: DayVisits, registry: Registry) -> NewPatients:
    """People seen for the first time, inserted at their first visit.

    They are marked ``seen`` and get their chronic conditions (by age and sex prevalence, plus
    the one their first visit is about), which from then on are coded at every visit.
    """
    start = v.start_abs
    order = np.argsort(start, kind="stable")
    uniq, first = np.unique(v.draw.person[order], return_index=True)
    new_mask = ~registry.seen[uniq]
    new_people = uniq[new_mask]
    first_visit = order[first[new_mask]]
    registry.seen[new_people] = True
    prevalence = clinical.chronic_prevalence(v.draw.age[first_visit], registry.male[new_people])
    flags = np.zeros(new_people.shape[0], dtype=np.uint8)
    for flag, p in prevalence.items():
        flags |= np.where(rng.random(new_people.shape[0]) < p, flag, 0).astype(np.uint8)
    registry.chronic[new_people] |= flags
    created = ts_series("created_at", start[first_visit])
    frame = (
        registry.rows(new_people)
        .rename({"person_id": "patient_id"})
        .with_columns(created, created.alias("updated_at"))
    )
    return NewPatients(frame, new_people, first_visit)


def diagnoses(
    rng: np.random.Generator, v: DayVisits, registry: Registry, agenda: Agenda
) -> pl.DataFrame:
    """The primary condition plus the patient's chronic conditions, coded at every visit (the
    condition the visit is about is not repeated); 1.5 % are entered in error."""
    n = v.n
    cond = v.draw.cond
    person = v.draw.person
    registry.chronic[person] |= clinical.SETS_FLAG[cond]
    dx_visit = [np.arange(n)]
    dx_code = [np.array([c.icd10 for c in CONDS], dtype=object)[cond]]
    dx_primary = [np.ones(n, dtype=bool)]
    flags = registry.chronic[person]
    for flag in clinical.CHRONIC:
        hit = np.flatnonzero(((flags & flag) > 0) & (clinical.SETS_FLAG[cond] != flag))
        dx_visit.append(hit)
        dx_code.append(clinical.chronic_code(flag, v.draw.age[hit]))
        dx_primary.append(np.zeros(hit.shape[0], dtype=bool))
    dxv = np.concatenate(dx_visit)
    codes = np.concatenate(dx_code)
    m = dxv.shape[0]
    dx_time = inside(v.start_abs[dxv], rng.integers(900, 5400, size=m), 5400, v.limit_abs[dxv])
    frame = pl.DataFrame(
        {
            "diagnosis_id": id_series(rng, m, "diagnosis_id"),
            "visit_id": v.visit_ids.gather(pl.Series(dxv)),
            "patient_id": v.patient_ids.gather(pl.Series(dxv)),
            "icd10_code": pl.Series(codes.tolist(), dtype=pl.String),
            "description": pl.Series([icd10.CODES[c] for c in codes.tolist()], dtype=pl.String),
            "is_primary": pl.Series(np.concatenate(dx_primary)),
            "diagnosed_at": ts_series("diagnosed_at", dx_time),
            "status": pl.Series(["active"] * m, dtype=pl.String),
        }
    ).with_columns(
        pl.col("diagnosed_at").alias("created_at"), pl.col("diagnosed_at").alias("updated_at")
    )
    wrong = np.asarray(rng.random(m) < 0.015, dtype=np.bool_)  # removed the next day
    agenda.at(v.day_num + 1).deleted_diagnoses.append(
        frame.filter(pl.Series(wrong)).select("diagnosis_id")
    )
    return frame


def allergies(
    rng: np.random.Generator, v: DayVisits, new: NewPatients, registry: Registry, agenda: Agenda
) -> pl.DataFrame:
    """Allergies for some new patients; a fifth of them are corrected a few days later."""
    k = new.people.shape[0]
    has = np.flatnonzero(rng.random(k) < 0.08)
    alg = rng.integers(0, len(catalog.ALLERGENS), size=has.shape[0])
    sev = rng.integers(0, len(catalog.SEVERITIES), size=has.shape[0])
    visit = new.first_visit[has]
    registry.allergy[new.people[has]] |= (1 << alg).astype(np.uint16)
    # Asked at triage, before anything is prescribed.
    recorded = inside(v.start_abs[visit], np.full(has.shape[0], 300), 1200, v.limit_abs[visit])
    frame = pl.DataFrame(
        {
            "allergy_id": id_series(rng, has.shape[0], "allergy_id"),
            "patient_id": new.frame["patient_id"].gather(pl.Series(has)),
            "substance": pick([a[0] for a in catalog.ALLERGENS], alg, "substance"),
            "reaction": pick([a[1] for a in catalog.ALLERGENS], alg, "reaction"),
            "severity": pick(catalog.SEVERITIES, sev, "severity"),
            "status": pl.Series(["active"] * has.shape[0], dtype=pl.String),
            "recorded_at": ts_series("recorded_at", recorded),
        }
    ).with_columns(
        pl.col("recorded_at").alias("created_at"), pl.col("recorded_at").alias("updated_at")
    )
    fix = np.flatnonzero(rng.random(has.shape[0]) < 0.2)
    fix_day = v.day_num + rng.integers(1, 6, size=fix.shape[0])
    refuted = rng.random(fix.shape[0]) < 0.4
    new_sev = (sev[fix] + 1 + rng.integers(0, 2, size=fix.shape[0])) % len(catalog.SEVERITIES)
    for j, f in enumerate(fix.tolist()):
        agenda.at(int(fix_day[j])).allergy_updates.append(
            pl.DataFrame(
                {
                    "allergy_id": [frame["allergy_id"][f]],
                    "severity": [catalog.SEVERITIES[int(new_sev[j])]],
                    "status": ["refuted" if refuted[j] else "active"],
                    "updated_at": [(int(fix_day[j]) * DAY_S + 10 * HOUR_S) * US],
                },
                schema_overrides={"updated_at": pl.Int64},
            ).with_columns(pl.col("updated_at").cast(TS))
        )
    return frame


def notes_frame(
    rng: np.random.Generator,
    visit_ids: pl.Series,
    pids: pl.Series,
    authors: pl.Series,
    written: I64,
    text: pl.Series,
) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "note_id": id_series(rng, visit_ids.len(), "note_id"),
            "visit_id": visit_ids.alias("visit_id"),
            "patient_id": pids.alias("patient_id"),
            "author_staff_id": authors.alias("author_staff_id"),
            "written_at": ts_series("written_at", written),
            "note_text": text.alias("note_text"),
        }
    ).with_columns(
        pl.col("written_at").alias("created_at"), pl.col("written_at").alias("updated_at")
    )

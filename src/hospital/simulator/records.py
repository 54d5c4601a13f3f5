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

from hospital.simulator import catalog
from hospital.simulator.draws import C_DEPT, CONDS, DEPT_CODES, DEPT_NAMES, VisitDraw
from hospital.simulator.population import People
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
    attending: pl.Series  # attending_staff_id
    dept: I64  # the department the visit is in (emergency for emergency arrivals)
    outcome: Obj  # admitted | diverted | seen
    limit_abs: I64  # last second a clinical event of the visit may carry

    @property
    def n(self) -> int:
        return self.draw.n

    @property
    def start_abs(self) -> I64:
        return self.draw.start_abs


def patient_ids(people: People, idx: npt.NDArray[np.int64] | list[int]) -> pl.Series:
    return people.frame["person_id"].gather(pl.Series(np.asarray(idx, dtype=np.int64)))


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


def new_patients(v: DayVisits, people: People, seen: npt.NDArray[np.bool_]) -> NewPatients:
    """People seen for the first time, inserted at their first visit (marks them ``seen``)."""
    start = v.start_abs
    order = np.argsort(start, kind="stable")
    uniq, first = np.unique(v.draw.person[order], return_index=True)
    new_mask = ~seen[uniq]
    new_people = uniq[new_mask]
    first_visit = order[first[new_mask]]
    seen[new_people] = True
    created = ts_series("created_at", start[first_visit])
    frame = (
        people.frame[new_people.tolist()]
        .rename({"person_id": "patient_id"})
        .with_columns(created, created.alias("updated_at"))
    )
    return NewPatients(frame, new_people, first_visit)


def diagnoses(rng: np.random.Generator, v: DayVisits, agenda: Agenda) -> pl.DataFrame:
    """The primary condition plus age-related comorbidities; 1.5 % entered in error."""
    n = v.n
    cond = v.draw.cond
    dx_visit = [np.arange(n)]
    dx_code = [np.array([c.icd10 for c in CONDS], dtype=object)[cond]]
    dx_desc = [np.array([c.description for c in CONDS], dtype=object)[cond]]
    dx_primary = [np.ones(n, dtype=bool)]
    for code, desc, min_age, p in catalog.COMORBIDITIES:
        hit = np.flatnonzero((v.draw.age >= min_age) & (rng.random(n) < p) & (dx_code[0] != code))
        dx_visit.append(hit)
        dx_code.append(np.full(hit.shape[0], code, dtype=object))
        dx_desc.append(np.full(hit.shape[0], desc, dtype=object))
        dx_primary.append(np.zeros(hit.shape[0], dtype=bool))
    dxv = np.concatenate(dx_visit)
    m = dxv.shape[0]
    dx_time = inside(v.start_abs[dxv], rng.integers(900, 5400, size=m), 5400, v.limit_abs[dxv])
    frame = pl.DataFrame(
        {
            "diagnosis_id": id_series(rng, m, "diagnosis_id"),
            "visit_id": v.visit_ids.gather(pl.Series(dxv)),
            "patient_id": v.patient_ids.gather(pl.Series(dxv)),
            "icd10_code": pl.Series(np.concatenate(dx_code).tolist(), dtype=pl.String),
            "description": pl.Series(np.concatenate(dx_desc).tolist(), dtype=pl.String),
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
    rng: np.random.Generator, v: DayVisits, new: NewPatients, agenda: Agenda
) -> pl.DataFrame:
    """Allergies for some new patients; a fifth of them are corrected a few days later."""
    k = new.people.shape[0]
    has = np.flatnonzero(rng.random(k) < 0.08)
    alg = rng.integers(0, len(catalog.ALLERGENS), size=has.shape[0])
    sev = rng.integers(0, len(catalog.SEVERITIES), size=has.shape[0])
    visit = new.first_visit[has]
    recorded = inside(v.start_abs[visit], np.full(has.shape[0], 600), 1200, v.limit_abs[visit])
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


@dataclass(frozen=True)
class Prescriptions:
    medications: pl.DataFrame
    ended_today: pl.DataFrame  # medication updates due on the day itself
    pharmacy_orders: pl.DataFrame


def prescriptions(rng: np.random.Generator, v: DayVisits, agenda: Agenda) -> Prescriptions:
    """The condition's first drug, sometimes its second; short courses end on a later day."""
    n = v.n
    d = v.day_num
    cond = v.draw.cond
    drug1 = np.array([c.drugs[0] for c in CONDS], dtype=object)[cond]
    drug2 = np.array([c.drugs[1] if len(c.drugs) > 1 else "" for c in CONDS], dtype=object)[cond]
    second = (drug2 != "") & (rng.random(n) < 0.5)
    med_visit = np.r_[np.arange(n), np.flatnonzero(second)]
    med_code = np.r_[drug1, drug2[second]]
    q = med_visit.shape[0]
    info = [catalog.DRUGS[str(c)] for c in med_code.tolist()]
    course = np.array([i[4] for i in info], dtype=np.int64)
    med_start_day = v.draw.visit_day[med_visit]
    limit = v.limit_abs[med_visit]
    ordered = inside(v.start_abs[med_visit], rng.integers(1800, 7200, size=q), 7200, limit)
    medication_ids = id_series(rng, q, "medication_id")
    prescriber = v.attending.gather(pl.Series(med_visit))
    medications = pl.DataFrame(
        {
            "medication_id": medication_ids,
            "patient_id": v.patient_ids.gather(pl.Series(med_visit)),
            "visit_id": v.visit_ids.gather(pl.Series(med_visit)),
            "drug_code": pl.Series(med_code.tolist(), dtype=pl.String),
            "drug_name": pl.Series([i[0] for i in info], dtype=pl.String),
            "dose": pl.Series([i[1] for i in info], dtype=pl.String),
            "route": pl.Series([i[2] for i in info], dtype=pl.String),
            "frequency": pl.Series([i[3] for i in info], dtype=pl.String),
            "prescriber_id": prescriber.alias("prescriber_id"),
            "start_date": pl.Series(med_start_day.astype(np.int32)).cast(pl.Date),
            "end_date": pl.Series([None] * q, dtype=pl.Date),
            "status": pl.Series(["active"] * q, dtype=pl.String),
            "created_at": ts_series("created_at", ordered),
        }
    ).with_columns(pl.col("created_at").alias("updated_at"))
    ends = np.flatnonzero(course > 0)
    end_day = np.maximum(med_start_day[ends] + course[ends], d)
    med_end = pl.DataFrame(
        {
            "medication_id": medication_ids.gather(pl.Series(ends)),
            "end_date": pl.Series(end_day.astype(np.int32)).cast(pl.Date),
            "status": pl.Series(["completed"] * ends.shape[0], dtype=pl.String),
            "updated_at": ts_series("updated_at", end_day * DAY_S + 6 * HOUR_S),
            "_due": pl.Series(end_day),
        }
    )
    for due_day, part in (
        med_end.filter(pl.col("_due") > d).partition_by("_due", as_dict=True).items()
    ):
        agenda.at(int(due_day[0])).medication_updates.append(part.drop("_due"))

    qty = np.where(course > 0, course, 30) * 2
    dispensed = inside(ordered, rng.integers(900, 5400, size=q), 5400, limit)
    pharmacy = pl.DataFrame(
        {
            "order_id": id_series(rng, q, "order_id"),
            "patient_id": medications["patient_id"],
            "medication_id": medication_ids,
            "drug_code": medications["drug_code"],
            "quantity": pl.Series(qty.astype(np.int32)),
            "ordered_by": prescriber.alias("ordered_by"),
            "ordered_at": ts_series("ordered_at", ordered),
            "dispensed_at": ts_series("dispensed_at", dispensed),
            "status": pl.Series(["dispensed"] * q, dtype=pl.String),
        }
    ).with_columns(pl.col("dispensed_at").alias("updated_at"))
    return Prescriptions(medications, med_end.filter(pl.col("_due") == d).drop("_due"), pharmacy)


def treatments(rng: np.random.Generator, v: DayVisits) -> pl.DataFrame:
    """The condition's procedures, most of the time, inside the visit."""
    n = v.n
    cond = v.draw.cond
    t1 = np.array([c.treatments[0] if c.treatments else "" for c in CONDS], dtype=object)[cond]
    t2 = np.array([c.treatments[1] if len(c.treatments) > 1 else "" for c in CONDS], dtype=object)[
        cond
    ]
    do1 = (t1 != "") & (rng.random(n) < 0.8)
    do2 = (t2 != "") & (rng.random(n) < 0.4)
    tv = np.r_[np.flatnonzero(do1), np.flatnonzero(do2)]
    tcode = np.r_[t1[do1], t2[do2]]
    r = tv.shape[0]
    t_time = inside(
        v.start_abs[tv], rng.integers(1800, 4 * HOUR_S, size=r), 4 * HOUR_S, v.limit_abs[tv]
    )
    return pl.DataFrame(
        {
            "treatment_id": id_series(rng, r, "treatment_id"),
            "visit_id": v.visit_ids.gather(pl.Series(tv)),
            "patient_id": v.patient_ids.gather(pl.Series(tv)),
            "treatment_code": pl.Series(tcode.tolist(), dtype=pl.String),
            "description": pl.Series(
                [catalog.TREATMENTS[str(c)] for c in tcode.tolist()], dtype=pl.String
            ),
            "performed_by": v.attending.gather(pl.Series(tv)).alias("performed_by"),
            "performed_at": ts_series("performed_at", t_time),
            "status": pl.Series(["completed"] * r, dtype=pl.String),
        }
    ).with_columns(
        pl.col("performed_at").alias("created_at"), pl.col("performed_at").alias("updated_at")
    )


def clerking_notes(rng: np.random.Generator, v: DayVisits, people: People) -> pl.DataFrame:
    """One clerking note per visit, written from templates with the visit's facts."""
    n = v.n
    cond = v.draw.cond
    male = people.male[v.draw.person]
    plan = np.where(
        v.outcome == "admitted",
        "Admit to " + np.array(DEPT_NAMES, dtype=object)[C_DEPT[cond]] + ".",
        np.where(
            v.outcome == "diverted",
            "No bed available: transfer to a referral hospital.",
            "Discharge home with follow-up at the local clinic.",
        ),
    )
    sbp = rng.normal(128, 18, size=n).astype(np.int64)
    frame = pl.DataFrame(
        {
            "age": pl.Series(v.draw.age),
            "sex": pl.Series(np.where(male, "male", "female").tolist(), dtype=pl.String),
            "colour": pick(catalog.TRIAGE_COLOURS, v.draw.triage - 1, "colour"),
            "dept": pick(DEPT_NAMES, v.dept, "dept"),
            "desc": pick([c.description for c in CONDS], cond, "desc"),
            "icd": pick([c.icd10 for c in CONDS], cond, "icd"),
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
            "age", "sex", "dept", "colour", "sbp", "dbp", "hr", "temp", "desc", "icd", "plan",
        ).alias("note_text")
    )["note_text"]  # fmt: skip
    written = inside(v.start_abs, rng.integers(900, 5400, size=n), 5400, v.limit_abs)
    return _notes_frame(rng, v.visit_ids, v.patient_ids, v.attending, written, text)


def discharge_summaries(
    rng: np.random.Generator, discharges: list[dict[str, object]], people: People
) -> pl.DataFrame:
    """A summary half an hour before each discharge, by the attending doctor."""
    dis = pl.DataFrame(discharges)
    text = (
        "Discharge summary: patient discharged home from "
        + pick(
            DEPT_NAMES, np.array([DEPT_CODES.index(str(c)) for c in dis["department_code"]]), "w"
        )
        + " in a stable condition. Follow-up at the local clinic in two weeks."
    )
    return _notes_frame(
        rng,
        dis["visit_id"],
        patient_ids(people, dis["patient_idx"].to_numpy()),
        dis["attending"].cast(pl.String),
        dis["discharged_at"].to_numpy().astype(np.int64) - 1800,
        text,
    )


def _notes_frame(
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

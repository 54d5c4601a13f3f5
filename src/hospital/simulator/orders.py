"""Orders of the day's visits: prescriptions with their pharmacy orders, and procedures.

Prescribing rules (one place): the condition's first drug, its second half of the time, and the
long-term drug of every chronic condition the patient is not yet on; a drug of a class the
patient is allergic to is replaced by its alternative or left out; a long-term drug the patient
already holds is never prescribed again; children get weight-based doses; the pharmacy dispenses
dose x doses a day x days (a month for long-term drugs) in whole units.

Procedures: those that need a bed (deliveries, theatre, ventilation...) are done only for
admitted patients, after admission, by the matching specialty on duty (``clinical.PERFORMER``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from hospital.simulator import catalog, clinical, formulary
from hospital.simulator.draws import CONDS
from hospital.simulator.records import DayVisits
from hospital.simulator.registry import Registry
from hospital.simulator.result import Agenda
from hospital.simulator.rota import Rota
from hospital.simulator.timeline import DAY_S, HOUR_S, id_series, inside, ts_series

ALLERGEN_BIT = {name: 1 << i for i, (name, _) in enumerate(catalog.ALLERGENS)}


@dataclass(frozen=True)
class Prescriptions:
    medications: pl.DataFrame
    ended_today: pl.DataFrame  # medication updates due on the day itself
    pharmacy_orders: pl.DataFrame


def _choose(
    rng: np.random.Generator, v: DayVisits, registry: Registry
) -> tuple[list[int], list[str]]:
    """(visit row, drug code) of every prescription, after allergy and duplicate checks."""
    person = v.draw.person
    second = rng.random(v.n) < 0.5
    rows: list[int] = []
    codes: list[str] = []
    for i, c in enumerate(v.draw.cond.tolist()):
        p = int(person[i])
        drugs = list(CONDS[c].drugs[:1]) + (list(CONDS[c].drugs[1:2]) if second[i] else [])
        flags = int(registry.chronic[p])
        drugs += [clinical.CHRONIC_DRUG[f] for f in clinical.CHRONIC if flags & f]
        allergy = int(registry.allergy[p])
        held = int(registry.long_term[p])
        chosen: list[str] = []
        for code in drugs:
            drug = formulary.FORMULARY[code]
            if drug.allergy_class and allergy & ALLERGEN_BIT[drug.allergy_class]:
                code = formulary.ALTERNATIVE.get(code, "")
                if not code:
                    continue
            bit = formulary.LONG_TERM_BIT.get(code, 0)
            if (bit and held & bit) or code in chosen:
                continue
            held |= bit
            chosen.append(code)
        registry.long_term[p] = held
        rows += [i] * len(chosen)
        codes += chosen
    return rows, codes


def prescriptions(
    rng: np.random.Generator, v: DayVisits, registry: Registry, agenda: Agenda
) -> Prescriptions:
    d = v.day_num
    rows, codes = _choose(rng, v, registry)
    med_visit = np.array(rows, dtype=np.int64)
    q = med_visit.shape[0]
    person = v.draw.person[med_visit]
    # Weight on the day of the visit (earlier than today for the origin's census).
    weight = formulary.weight_kg(
        (v.draw.visit_day[med_visit] - registry.birth[person]).astype(np.int64),
        registry.male[person],
    )
    drugs = [formulary.FORMULARY[c] for c in codes]
    amounts = [formulary.dose(dr, float(w)) for dr, w in zip(drugs, weight.tolist(), strict=True)]
    course = np.array([dr.course_days for dr in drugs], dtype=np.int64)
    med_start_day = v.draw.visit_day[med_visit]
    limit = v.limit_abs[med_visit]
    ordered = inside(v.start_abs[med_visit], rng.integers(2400, 7200, size=q), 7200, limit)
    medication_ids = id_series(rng, q, "medication_id")
    prescriber = v.attending.gather(pl.Series(med_visit))
    medications = pl.DataFrame(
        {
            "medication_id": medication_ids,
            "patient_id": v.patient_ids.gather(pl.Series(med_visit)),
            "visit_id": v.visit_ids.gather(pl.Series(med_visit)),
            "drug_code": pl.Series(codes, dtype=pl.String),
            "drug_name": pl.Series([dr.name for dr in drugs], dtype=pl.String),
            "dose": pl.Series(
                [formulary.dose_text(dr, a) for dr, a in zip(drugs, amounts, strict=True)],
                dtype=pl.String,
            ),
            "route": pl.Series([dr.route for dr in drugs], dtype=pl.String),
            "frequency": pl.Series([dr.frequency for dr in drugs], dtype=pl.String),
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
    qty = [formulary.quantity(dr, a) for dr, a in zip(drugs, amounts, strict=True)]
    dispensed = inside(ordered, rng.integers(900, 5400, size=q), 5400, limit)
    pharmacy = pl.DataFrame(
        {
            "order_id": id_series(rng, q, "order_id"),
            "patient_id": medications["patient_id"],
            "medication_id": medication_ids,
            "drug_code": medications["drug_code"],
            "quantity": pl.Series(qty, dtype=pl.Int32),
            "ordered_by": prescriber.alias("ordered_by"),
            "ordered_at": ts_series("ordered_at", ordered),
            "dispensed_at": ts_series("dispensed_at", dispensed),
            "status": pl.Series(["dispensed"] * q, dtype=pl.String),
        }
    ).with_columns(pl.col("dispensed_at").alias("updated_at"))
    return Prescriptions(medications, med_end.filter(pl.col("_due") == d).drop("_due"), pharmacy)


def treatments(
    rng: np.random.Generator, v: DayVisits, rota: Rota, admit_abs: np.ndarray
) -> pl.DataFrame:
    """The condition's procedures, most of the time, inside the visit, by the right people."""
    n = v.n
    cond = v.draw.cond
    t1 = np.array([c.treatments[0] if c.treatments else "" for c in CONDS], dtype=object)[cond]
    t2 = np.array([c.treatments[1] if len(c.treatments) > 1 else "" for c in CONDS], dtype=object)[
        cond
    ]
    admitted = v.outcome == "admitted"
    needs_bed = np.vectorize(lambda c: c in clinical.NEEDS_ADMISSION, otypes=[bool])
    do1 = (t1 != "") & ((rng.random(n) < 0.8) | (needs_bed(t1) & admitted))
    do2 = (t2 != "") & (rng.random(n) < 0.4)
    do1 &= ~needs_bed(t1) | admitted
    do2 &= ~needs_bed(t2) | admitted
    tv = np.r_[np.flatnonzero(do1), np.flatnonzero(do2)].astype(np.int64)
    tcode = np.r_[t1[do1], t2[do2]]
    r = tv.shape[0]
    in_bed = needs_bed(tcode) if r else np.zeros(0, dtype=bool)
    begin = np.where(in_bed, admit_abs[tv], v.start_abs[tv])
    t_time = inside(begin, rng.integers(1800, 4 * HOUR_S, size=r), 4 * HOUR_S, v.limit_abs[tv])
    performer = np.asarray(v.attending.gather(pl.Series(tv)).to_list(), dtype=object)
    for code, (dept, role) in clinical.PERFORMER.items():
        mask = tcode == code
        if mask.any():
            wards = np.full(int(mask.sum()), catalog.DEPT_INDEX[dept], dtype=np.int64)
            performer[mask] = rota.pick(rng, wards, role, t_time[mask])
    return pl.DataFrame(
        {
            "treatment_id": id_series(rng, r, "treatment_id"),
            "visit_id": v.visit_ids.gather(pl.Series(tv)),
            "patient_id": v.patient_ids.gather(pl.Series(tv)),
            "treatment_code": pl.Series(tcode.tolist(), dtype=pl.String),
            "description": pl.Series(
                [catalog.TREATMENTS[str(c)] for c in tcode.tolist()], dtype=pl.String
            ),
            "performed_by": pl.Series("performed_by", performer.tolist(), dtype=pl.String),
            "performed_at": ts_series("performed_at", t_time),
            "status": pl.Series(["completed"] * r, dtype=pl.String),
        }
    ).with_columns(
        pl.col("performed_at").alias("created_at"), pl.col("performed_at").alias("updated_at")
    )

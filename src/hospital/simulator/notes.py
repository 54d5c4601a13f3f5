"""Doctors' notes: a clerking note per visit (vital signs by age and condition, the ward by name,
a plan that matches what happened) and a departure note per discharge, death, referral or
abscondment, written by a doctor of the ward on duty at that time."""

from __future__ import annotations

import numpy as np
import polars as pl

from hospital.simulator import catalog, clinical
from hospital.simulator.beds import Inpatient
from hospital.simulator.draws import CONDS, DEPT_NAMES
from hospital.simulator.records import DayVisits, notes_frame
from hospital.simulator.registry import Registry
from hospital.simulator.rota import Rota
from hospital.simulator.timeline import inside

FACILITY_NAME = dict(catalog.OTHER_FACILITIES)
OPENINGS = (
    "{age} {sex} presenting to {dept} (triage {colour}) with {desc}.",
    "Seen in {dept}: {age} {sex}, triage {colour}. Working diagnosis {desc}.",
    "{age} {sex} brought to {dept}, triaged {colour}; history and examination suggest {desc}.",
)
OBS = (
    " Obs: T {temp} °C, HR {hr}/min, RR {rr}/min, BP {sbp}/{dbp} mmHg, SpO2 {spo2} % on room air.",
    " Vitals: BP {sbp}/{dbp}, pulse {hr}, resp rate {rr}, temp {temp}, sats {spo2} %.",
)
CHRONIC_TEXT = " Known {chronic}."


def _age_text(age: int) -> str:
    return "infant" if age < 1 else f"{age}-year-old"


def clerking_notes(rng: np.random.Generator, v: DayVisits, registry: Registry) -> pl.DataFrame:
    n = v.n
    cond = v.draw.cond
    male = registry.male[v.draw.person]
    vit = clinical.vitals(rng, v.draw.age, cond, v.outcome == "admitted")
    flags = registry.chronic[v.draw.person]
    opening = rng.integers(0, len(OPENINGS), size=n)
    obs = rng.integers(0, len(OBS), size=n)
    texts: list[str] = []
    for i in range(n):
        ward = int(v.ward[i])
        if v.outcome[i] == "admitted":
            plan = f" Plan: admit to {DEPT_NAMES[ward]}; ward team informed."
        elif v.outcome[i] == "diverted":
            fac = FACILITY_NAME.get(str(v.diverted_to[i]), "a referral hospital")
            plan = f" Plan: no bed available; transfer to {fac} arranged."
        else:
            plan = " Plan: treated and discharged home; follow-up at the local clinic."
        chronic = [name for f, name in clinical.CHRONIC_NAME.items() if int(flags[i]) & f]
        texts.append(
            OPENINGS[int(opening[i])].format(
                age=_age_text(int(v.draw.age[i])),
                sex="male" if male[i] else "female",
                dept=DEPT_NAMES[int(v.dept[i])],
                colour=catalog.TRIAGE_COLOURS[int(v.draw.triage[i]) - 1],
                desc=CONDS[int(cond[i])].description.lower(),
            )
            + OBS[int(obs[i])].format(**{k: vit[k][i] for k in vit})
            + (CHRONIC_TEXT.format(chronic=", ".join(chronic)) if chronic else "")
            + plan
        )
    written = inside(v.start_abs, rng.integers(900, 5400, size=n), 5400, v.limit_abs)
    return notes_frame(
        rng, v.visit_ids, v.patient_ids, v.clerk, written, pl.Series(texts, dtype=pl.String)
    )


def departure_notes(
    rng: np.random.Generator,
    departed: list[Inpatient],
    times: list[int],
    registry: Registry,
    rota: Rota,
) -> pl.DataFrame:
    """A discharge summary (or death, referral, abscondment note) for each departure."""
    k = len(departed)
    texts = []
    for a in departed:
        ward = DEPT_NAMES[a.dept]
        if a.disposition == "died":
            texts.append(
                f"Death notification: patient died in {ward} despite treatment. Family informed."
            )
        elif a.disposition == "transfer":
            fac = FACILITY_NAME.get(a.referral, "a tertiary hospital")
            texts.append(f"Referral summary: transferred from {ward} to {fac} for specialist care.")
        elif a.disposition == "absconded":
            texts.append(
                f"Patient left {ward} against medical advice; risks explained where possible."
            )
        else:
            texts.append(
                f"Discharge summary: discharged home from {ward} in a stable condition. "
                "Follow-up at the local clinic in two weeks."
            )
    at = np.array(times, dtype=np.int64)
    wards = np.array([a.dept for a in departed], dtype=np.int64)
    # Written up to half an hour before the patient leaves (the stay began on an earlier day).
    written = np.maximum(at - rng.integers(300, 1800, size=k), (at // 86_400) * 86_400)
    authors = rota.pick(rng, wards, "doctor", written)
    return notes_frame(
        rng,
        pl.Series([a.visit_id for a in departed], dtype=pl.String),
        registry.person_ids(np.array([a.person for a in departed], dtype=np.int64)),
        pl.Series(authors.tolist(), dtype=pl.String),
        written,
        pl.Series(texts, dtype=pl.String),
    )

"""Clinical rules by condition: fever, in-hospital outcome, chronic conditions, procedures,
and vital signs by age and condition.

Rates are rounded from South African sources (documented in docs/simulator.md): HIV prevalence
from the HSRC SABSSM VI (2022) and Thembisa; hypertension and diabetes from the SADHS 2016;
in-hospital case fatality from published Gauteng/Western Cape public-hospital series.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from hospital.simulator import catalog
from hospital.simulator.timeline import I64

F64 = npt.NDArray[np.float64]
_CODES = [c.icd10 for c in catalog.CONDITIONS]


def _by_code(values: dict[str, float], default: float) -> F64:
    return np.array([values.get(code, default) for code in _CODES], dtype=np.float64)


# Probability of a fever (>= 38 °C) at presentation.
FEVER = _by_code(
    {"J11.1": 0.85, "J18.9": 0.8, "J18.0": 0.8, "J21.9": 0.5, "J06.9": 0.6, "A09.9": 0.4,
     "A09.0": 0.3, "A41.9": 0.9, "A15.0": 0.6, "N39.0": 0.4, "K35.8": 0.5, "B20.8": 0.5,
     "E43": 0.3, "J96.0": 0.5},
    0.02,
)  # fmt: skip
# In-hospital case fatality for an admission with this condition.
DIES = _by_code(
    {"A41.9": 0.22, "J96.0": 0.28, "I21.9": 0.09, "I63.9": 0.14, "J18.9": 0.08, "J18.0": 0.03,
     "B20.8": 0.11, "A15.0": 0.07, "I50.9": 0.08, "E43": 0.08, "S72.0": 0.05, "S36.9": 0.06,
     "J44.1": 0.05, "C50.9": 0.04, "C53.9": 0.06, "C61": 0.04, "J21.9": 0.01, "J11.1": 0.02,
     "O80.0": 0.0003, "O82.1": 0.001, "O14.1": 0.01},
    0.005,
)  # fmt: skip
# Left against medical advice / absconded, and transferred out to a tertiary hospital.
ABSCONDS = _by_code({"F20.9": 0.06, "F10.2": 0.08, "T51.0": 0.06, "F32.9": 0.03}, 0.015)
TRANSFERS_OUT = _by_code(
    {"I21.9": 0.15, "S36.9": 0.05, "J96.0": 0.05, "A41.9": 0.04, "C50.9": 0.05, "C53.9": 0.05},
    0.01,
)  # fmt: skip
# Conditions that always need a bed (never sent home from the emergency department).
MUST_ADMIT = np.array([c.admit_prob >= 0.9 for c in catalog.CONDITIONS], dtype=np.bool_)
DELIVERY = np.array([c in ("O80.0", "O82.1") for c in _CODES], dtype=np.bool_)
PREGNANCY = np.array([c.startswith("O") for c in _CODES], dtype=np.bool_)
MIN_BIRTH_INTERVAL_DAYS = 300  # no second delivery within ~10 months of the previous one

# --- chronic conditions (bit flags per person) ---------------------------------------------------
HIV, HTN, DM, RESP, EPI = 1, 2, 4, 8, 16
CHRONIC: Final[tuple[int, ...]] = (HIV, HTN, DM, RESP, EPI)
CHRONIC_NAME: Final[dict[int, str]] = {
    HIV: "HIV",
    HTN: "hypertension",
    DM: "diabetes",
    RESP: "asthma/COPD",
    EPI: "epilepsy",
}
CHRONIC_DRUG: Final[dict[int, str]] = {
    HIV: "TLD",
    HTN: "AMLO",
    DM: "METF",
    RESP: "BUDE",
    EPI: "VALP",
}
# The flag a primary condition establishes (it is then coded on every later visit).
SETS_FLAG = np.array(
    [{"B20.8": HIV, "I10": HTN, "E11.9": DM, "J45.9": RESP, "J44.1": RESP, "G40.9": EPI}.get(c, 0)
     for c in _CODES],
    dtype=np.uint8,
)  # fmt: skip


def chronic_prevalence(age: I64, male: npt.NDArray[np.bool_]) -> dict[int, F64]:
    """Probability that a person of this age and sex has each chronic condition."""
    a = age.astype(np.float64)
    hiv = np.select(
        [a < 15, a < 25, a < 50, a < 65], [0.02, 0.06, np.where(male, 0.16, 0.26), 0.12], 0.05
    )
    htn = np.select([a < 30, a < 45, a < 65], [0.03, 0.15, 0.38], 0.58)
    dm = np.select([a < 40, a < 65], [0.02, 0.1], 0.17)
    resp = np.select([a < 5, a < 40], [0.03, 0.05], 0.08)
    epi = np.full(a.shape, 0.01)
    return {HIV: hiv, HTN: htn, DM: dm, RESP: resp, EPI: epi}


def chronic_code(flag: int, age: I64) -> npt.NDArray[np.object_]:
    """The ICD-10 code a chronic condition is recorded with as a secondary diagnosis."""
    codes = {HIV: "Z21", HTN: "I10", DM: "E11.9", EPI: "G40.9"}
    if flag == RESP:
        return np.where(age < 40, "J45.9", "J44.9").astype(object)
    return np.full(age.shape, codes[flag], dtype=object)


# --- procedures: who performs them, and which need an admission --------------------------------
# treatment code -> (department, role) of the performer; unlisted: the visit's attending doctor.
PERFORMER: Final[dict[str, tuple[str, str]]] = {
    "APPX": ("SURG", "surgeon"),
    "CHOLE": ("SURG", "surgeon"),
    "HERN": ("SURG", "surgeon"),
    "LAP": ("SURG", "surgeon"),
    "ORIF": ("ORTH", "surgeon"),
    "CS": ("MAT", "surgeon"),
    "NVD": ("MAT", "nurse"),  # midwives
    "CTG": ("MAT", "nurse"),
    "VENT": ("ICU", "doctor"),
    "CVL": ("ICU", "doctor"),
    "CATH": ("MED", "doctor"),
    "CHEMO": ("ONC", "doctor"),
    "RADIO": ("ONC", "doctor"),
    "PSYA": ("PSY", "doctor"),
}
NEEDS_ADMISSION: Final[frozenset[str]] = frozenset(
    {"APPX", "CHOLE", "HERN", "LAP", "ORIF", "CS", "NVD", "VENT", "CVL", "CATH"}
)


# --- vital signs -------------------------------------------------------------------------------
def vitals(
    rng: np.random.Generator, age: I64, cond: I64, admitted: npt.NDArray[np.bool_]
) -> dict[str, npt.NDArray[np.float64] | I64]:
    """Temperature, heart rate, respiratory rate, blood pressure and SpO2 by age and condition.

    Normal ranges by age (APLS); fever where the condition brings it; shock (low systolic
    pressure) only in patients who are admitted: nobody in shock is sent home.
    """
    n = age.shape[0]
    code = np.array(_CODES, dtype=object)[cond]
    band = np.select([age < 1, age < 5, age < 12, age < 18], [0, 1, 2, 3], 4)
    hr0 = np.array([140, 115, 95, 80, 78])[band]
    rr0 = np.array([40, 28, 22, 18, 16])[band]
    sbp0 = np.array([85, 95, 105, 115, 0])[band] + np.where(band == 4, 118 + 0.4 * (age - 18), 0)
    fever = rng.random(n) < FEVER[cond]
    temp = np.where(fever, rng.normal(38.7, 0.5, n), rng.normal(36.8, 0.3, n))
    temp = np.clip(temp, 35.5, 41.0)
    septic = np.isin(code, ["A41.9"])
    hypertensive = np.isin(code, ["I10", "O14.1"])
    respiratory = np.array([c.respiratory for c in catalog.CONDITIONS])[cond]
    hr = hr0 + rng.normal(0, 10, n) + fever * 15 + septic * 30
    rr = rr0 + rng.normal(0, 2.5, n) + respiratory * 8 + np.isin(code, ["J96.0"]) * 10
    sbp = sbp0 * np.where(septic, 0.72, 1.0) + hypertensive * 45 + rng.normal(0, 10, n)
    floor = np.where(band == 4, 90, 70)
    sbp = np.where(admitted, np.maximum(sbp, 55), np.maximum(sbp, floor))
    spo2 = np.where(respiratory, rng.normal(92, 2.5, n), rng.normal(97.5, 1.0, n))
    spo2 = np.clip(spo2 - np.isin(code, ["J96.0"]) * 8, 70, 100)
    return {
        "temp": np.round(temp, 1),
        "hr": np.rint(hr).astype(np.int64),
        "rr": np.rint(np.maximum(rr, 8)).astype(np.int64),
        "sbp": np.rint(sbp).astype(np.int64),
        "dbp": np.rint(sbp * 0.62 + rng.normal(0, 5, n)).astype(np.int64),
        "spo2": np.rint(spo2).astype(np.int64),
    }

# ruff: noqa: E501 -- the formulary reads best as one drug per line
"""The hospital formulary: doses (weight-based for children), frequencies, courses, dispensing
units, allergy classes and long-term (chronic) drugs.

Sources: South African Standard Treatment Guidelines and Essential Medicines List (Hospital
level, Adults 2019 and Paediatrics 2017 editions) for doses; paediatric doses are mg/kg, capped at
the adult dose. Values are rounded and simplified for simulation; they are not clinical advice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Drug:
    code: str
    name: str
    unit: str  # unit of a dose: mg, ml, IU, mcg, puffs, tablets, ml/h...
    adult_dose: float
    per_kg: float  # dose per kg for children (0: fixed dose at any age)
    route: str
    frequency: str
    doses_per_day: float
    course_days: int  # 0: long-term (dispensed a month at a time, never ended by the course)
    pack: float  # amount of ``unit`` in one dispensed item (tablet, vial, ml, puff...)
    item: str  # what is dispensed
    allergy_class: str = ""  # an ALLERGENS substance this drug must not be given with


D = Drug
FORMULARY: Final[dict[str, Drug]] = {d.code: d for d in (
    D("OSELT", "Oseltamivir", "mg", 75, 3, "oral", "twice daily", 2, 5, 75, "capsule"),
    D("PARA", "Paracetamol", "mg", 1000, 15, "oral", "six-hourly", 4, 5, 500, "tablet"),
    D("AMOX", "Amoxicillin", "mg", 500, 30, "oral", "eight-hourly", 3, 7, 250, "capsule", "Penicillin"),
    D("AZITH", "Azithromycin", "mg", 500, 10, "oral", "daily", 1, 3, 250, "tablet"),
    D("CEFTR", "Ceftriaxone", "mg", 1000, 50, "IV", "daily", 1, 7, 1000, "vial"),
    D("SALB", "Salbutamol", "puffs", 2, 0, "inhaled", "as needed", 4, 14, 1, "puff"),
    D("PRED", "Prednisone", "mg", 40, 1, "oral", "daily", 1, 5, 5, "tablet"),
    D("BUDE", "Budesonide", "mcg", 200, 0, "inhaled", "twice daily", 2, 0, 200, "puff"),
    D("RHZE", "Rifampicin/Isoniazid/Pyrazinamide/Ethambutol", "tablets", 4, 0, "oral", "daily", 1, 60, 1, "tablet"),
    D("ORS", "Oral rehydration solution", "ml", 200, 10, "oral", "after each loose stool", 4, 3, 200, "sachet"),
    D("F75", "F-75 therapeutic milk", "ml", 0, 16.25, "oral", "three-hourly", 8, 7, 1, "ml"),
    D("AMLO", "Amlodipine", "mg", 5, 0, "oral", "daily", 1, 0, 5, "tablet"),
    D("HCTZ", "Hydrochlorothiazide", "mg", 12.5, 0, "oral", "daily", 1, 0, 12.5, "tablet"),
    D("METF", "Metformin", "mg", 500, 0, "oral", "twice daily", 2, 0, 500, "tablet"),
    D("TLD", "Tenofovir/Lamivudine/Dolutegravir", "tablets", 1, 0, "oral", "daily", 1, 0, 1, "tablet"),
    D("CTX", "Cotrimoxazole", "mg", 960, 0, "oral", "daily", 1, 30, 480, "tablet", "Sulfonamides"),
    D("DAPS", "Dapsone", "mg", 100, 0, "oral", "daily", 1, 30, 100, "tablet"),
    D("FURO", "Furosemide", "mg", 40, 0, "oral", "daily", 1, 14, 40, "tablet"),
    D("ENAL", "Enalapril", "mg", 10, 0, "oral", "twice daily", 2, 0, 10, "tablet"),
    D("NITRO", "Nitrofurantoin", "mg", 100, 0, "oral", "twice daily", 2, 5, 100, "capsule"),
    D("ASA", "Aspirin", "mg", 150, 0, "oral", "daily", 1, 30, 150, "tablet", "Aspirin"),
    D("ATOR", "Atorvastatin", "mg", 40, 0, "oral", "daily", 1, 0, 20, "tablet"),
    D("TETA", "Tetanus toxoid", "ml", 0.5, 0, "IM", "once", 1, 1, 0.5, "ampoule"),
    D("CLOX", "Flucloxacillin", "mg", 500, 25, "oral", "six-hourly", 4, 5, 250, "capsule", "Penicillin"),
    D("CLIND", "Clindamycin", "mg", 300, 10, "oral", "eight-hourly", 3, 5, 150, "capsule"),
    D("THIA", "Thiamine", "mg", 100, 0, "oral", "daily", 1, 7, 100, "tablet"),
    D("CLOP", "Clopidogrel", "mg", 75, 0, "oral", "daily", 1, 30, 75, "tablet"),
    D("HEP", "Heparin", "IU", 5000, 0, "SC", "twelve-hourly", 2, 5, 5000, "ampoule"),
    D("MERO", "Meropenem", "mg", 1000, 20, "IV", "eight-hourly", 3, 7, 1000, "vial"),
    D("MIDA", "Midazolam", "mg/h", 2, 0.05, "IV", "continuous infusion", 24, 3, 15, "ampoule"),
    D("MORPH", "Morphine", "mg", 5, 0.1, "IV", "four-hourly", 6, 3, 10, "ampoule"),
    D("METRO", "Metronidazole", "mg", 500, 7.5, "IV", "eight-hourly", 3, 5, 500, "bag"),
    D("ENOX", "Enoxaparin", "mg", 40, 0, "SC", "daily", 1, 14, 40, "syringe"),
    D("IBU", "Ibuprofen", "mg", 400, 10, "oral", "eight-hourly", 3, 7, 200, "tablet", "Ibuprofen"),
    D("OXYT", "Oxytocin", "IU", 10, 0, "IM", "once", 1, 1, 10, "ampoule"),
    D("FEFO", "Ferrous fumarate", "mg", 200, 0, "oral", "daily", 1, 30, 200, "tablet"),
    D("CEFAZ", "Cefazolin", "mg", 2000, 30, "IV", "once", 1, 1, 1000, "vial"),
    D("MGSO4", "Magnesium sulfate", "g", 4, 0, "IV", "loading dose", 1, 1, 1, "ampoule"),
    D("LABET", "Labetalol", "mg", 200, 0, "oral", "twelve-hourly", 2, 14, 200, "tablet"),
    D("TAMOX", "Tamoxifen", "mg", 20, 0, "oral", "daily", 1, 0, 20, "tablet"),
    D("CISP", "Cisplatin", "mg", 70, 0, "IV", "weekly", 1 / 7, 35, 50, "vial"),
    D("BICA", "Bicalutamide", "mg", 50, 0, "oral", "daily", 1, 0, 50, "tablet"),
    D("HALO", "Haloperidol", "mg", 5, 0, "IM", "as needed", 2, 3, 5, "ampoule"),
    D("RISP", "Risperidone", "mg", 2, 0, "oral", "daily", 1, 0, 1, "tablet"),
    D("FLUO", "Fluoxetine", "mg", 20, 0, "oral", "daily", 1, 0, 20, "capsule"),
    D("DIAZ", "Diazepam", "mg", 10, 0, "oral", "six-hourly", 4, 5, 5, "tablet"),
    D("VALP", "Sodium valproate", "mg", 500, 10, "oral", "twice daily", 2, 0, 200, "tablet"),
)}  # fmt: skip
del D

# A drug of an allergy class is replaced by an alternative ("" = left out) when the patient has a
# recorded allergy to that class.
ALTERNATIVE: Final[dict[str, str]] = {
    "AMOX": "AZITH",
    "CLOX": "CLIND",
    "CTX": "DAPS",
    "ASA": "",
    "IBU": "PARA",
}
LONG_TERM: Final[tuple[str, ...]] = tuple(c for c, d in FORMULARY.items() if d.course_days == 0)
LONG_TERM_BIT: Final[dict[str, int]] = {c: 1 << i for i, c in enumerate(LONG_TERM)}
SUPPLY_DAYS = 30  # long-term drugs are dispensed a month at a time
CHILD_WEIGHT_KG = 40.0  # weight-based dosing below this weight


def weight_kg(
    age_days: npt.NDArray[np.int64], male: npt.NDArray[np.bool_]
) -> npt.NDArray[np.float64]:
    """Median weight for age (WHO growth standards, simplified); adults a typical 60-75 kg."""
    years = age_days / 365.25
    infant = 3.3 + 0.6 * np.minimum(age_days / 30.4, 12)  # ~10 kg at one year
    child = 2.0 * years + 8.0  # APLS: (age + 4) * 2
    teen = 3.3 * years
    adult = np.where(male, 72.0, 66.0)
    w = np.where(years < 1, infant, np.where(years < 10, child, np.where(years < 18, teen, adult)))
    return np.asarray(np.minimum(w, adult), dtype=np.float64)


def dose(drug: Drug, weight: float) -> float:
    """The dose for a patient of ``weight`` kg: mg/kg for children, capped at the adult dose."""
    if drug.per_kg and weight < CHILD_WEIGHT_KG:
        raw = drug.per_kg * weight
        capped = min(raw, drug.adult_dose) if drug.adult_dose else raw
        step = 0.5 if capped < 10 else 5.0  # measurable amounts
        return max(step, math.floor(capped / step) * step)
    return drug.adult_dose


def dose_text(drug: Drug, amount: float) -> str:
    return f"{amount:g} {drug.unit}"


def quantity(drug: Drug, amount: float) -> int:
    """Items to dispense: dose x doses a day x days, in whole dispensing units."""
    days = drug.course_days or SUPPLY_DAYS
    total = amount * drug.doses_per_day * days
    if drug.frequency in ("once", "loading dose"):
        total = amount
    return max(1, math.ceil(round(total / drug.pack, 6)))

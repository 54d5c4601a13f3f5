# ruff: noqa: E501 -- the condition table reads best as one row per line
"""The hospital's fixed reference data: departments, facilities, conditions, drugs, treatments.

A fictional Johannesburg state hospital (about 1,100 beds), with the referral hospitals around it.
Conditions are age/sex-banded with ICD-10 codes; ``flu`` is how much more common the condition
is at the peak of the southern-hemisphere flu season (April-August).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

FACILITY_CODE: Final = "JGSH"
FACILITY_NAME: Final = "Johannesburg General State Hospital"

# Facilities patients are diverted or referred to (inter-facility transfers).
OTHER_FACILITIES: Final[tuple[tuple[str, str], ...]] = (
    ("CHBAH", "Chris Hani Baragwanath Academic Hospital"),
    ("CMJAH", "Charlotte Maxeke Johannesburg Academic Hospital"),
    ("HJH", "Helen Joseph Hospital"),
    ("RMMCH", "Rahima Moosa Mother and Child Hospital"),
    ("TPTH", "Tembisa Provincial Tertiary Hospital"),
    ("SBAH", "Steve Biko Academic Hospital"),
)


@dataclass(frozen=True)
class Department:
    code: str
    name: str
    kind: str
    bed_capacity: int
    doctor_specialty: str
    surgeon_specialty: str | None = None


DEPARTMENTS: Final[tuple[Department, ...]] = (
    Department("EMERG", "Emergency Department", "emergency", 40, "emergency_medicine"),
    Department("ICU", "Intensive Care Unit", "critical_care", 60, "critical_care"),
    Department("MED", "General Medicine", "medical", 260, "internal_medicine"),
    Department("SURG", "General Surgery", "surgical", 200, "general_surgery", "general_surgery"),
    Department("PAED", "Paediatrics", "medical", 120, "paediatrics"),
    Department(
        "MAT", "Maternity", "obstetric", 90, "obstetrics_gynaecology", "obstetrics_gynaecology"
    ),
    Department("ORTH", "Orthopaedics", "surgical", 80, "orthopaedics", "orthopaedic_surgery"),
    Department("ONC", "Oncology", "medical", 40, "oncology"),
    Department("PSY", "Psychiatry", "mental_health", 100, "psychiatry"),
    Department("RESP", "Respiratory Medicine", "medical", 160, "pulmonology"),
)
DEPT_INDEX: Final[dict[str, int]] = {d.code: i for i, d in enumerate(DEPARTMENTS)}
RESPIRATORY_DEPT: Final = "RESP"

# Places patients go for a while without giving up their bed (ward movements).
SERVICE_AREAS: Final[tuple[str, ...]] = (
    "THEATRE",
    "RADIOLOGY",
    "DIALYSIS",
    "CATH_LAB",
    "ENDOSCOPY",
)


@dataclass(frozen=True)
class Condition:
    icd10: str
    description: str
    department: str
    min_age: int
    max_age: int
    sex: str | None
    weight: float
    admit_prob: float
    mean_los_days: float
    triage: int  # typical South African Triage Scale level, 1 (red) ... 5 (blue)
    drugs: tuple[str, ...]
    treatments: tuple[str, ...]
    flu: float = 1.0
    respiratory: bool = False


C = Condition
CONDITIONS: Final[tuple[Condition, ...]] = (
    C("J11.1", "Influenza with other respiratory manifestations", "RESP", 13, 120, None, 3.0, 0.25, 4, 3, ("OSELT", "PARA"), ("OXY",), 3.0, True),
    C("J18.9", "Pneumonia, unspecified organism", "RESP", 13, 120, None, 3.0, 0.7, 6, 2, ("AMOX", "CEFTR"), ("OXY", "CXR"), 2.2, True),
    C("J44.1", "COPD with acute exacerbation", "RESP", 40, 120, None, 1.5, 0.6, 5, 2, ("SALB", "PRED"), ("NEB", "OXY"), 1.6, True),
    C("J45.9", "Asthma, unspecified", "RESP", 5, 120, None, 2.0, 0.3, 3, 3, ("SALB", "BUDE"), ("NEB",), 1.3, True),
    C("A15.0", "Tuberculosis of lung, confirmed by sputum microscopy", "RESP", 15, 120, None, 2.5, 0.5, 10, 3, ("RHZE",), ("CXR", "SPUT"), 1.0, True),
    C("J21.9", "Acute bronchiolitis, unspecified", "PAED", 0, 2, None, 2.5, 0.5, 3, 2, ("PARA",), ("OXY", "NEB"), 2.5, True),
    C("J06.9", "Acute upper respiratory infection, unspecified", "PAED", 0, 12, None, 4.0, 0.05, 1, 4, ("PARA",), (), 2.0, True),
    C("J18.0", "Bronchopneumonia, unspecified", "PAED", 0, 12, None, 1.5, 0.6, 5, 2, ("AMOX",), ("OXY", "CXR"), 2.0, True),
    C("A09.9", "Gastroenteritis and colitis of unspecified origin", "PAED", 0, 12, None, 3.0, 0.3, 2, 3, ("ORS",), ("IVF",)),
    C("E43", "Unspecified severe protein-energy malnutrition", "PAED", 0, 5, None, 0.6, 0.9, 10, 2, ("F75",), ("IVF",)),
    C("I10", "Essential (primary) hypertension", "MED", 30, 120, None, 4.0, 0.08, 2, 4, ("AMLO", "HCTZ"), ("ECG",)),
    C("G40.9", "Epilepsy, unspecified", "MED", 5, 120, None, 1.0, 0.3, 3, 2, ("VALP",), ("CTB",)),
    C("E11.9", "Type 2 diabetes mellitus without complications", "MED", 30, 120, None, 3.0, 0.15, 4, 4, ("METF",), ("GLUC",)),
    C("B20.8", "HIV disease resulting in other infectious and parasitic diseases", "MED", 15, 120, None, 3.0, 0.4, 7, 3, ("TLD", "CTX"), ("CD4",)),
    C("I50.9", "Heart failure, unspecified", "MED", 50, 120, None, 1.5, 0.7, 7, 2, ("FURO", "ENAL"), ("ECG", "ECHO")),
    C("N39.0", "Urinary tract infection, site not specified", "MED", 15, 120, None, 2.0, 0.15, 3, 4, ("NITRO",), ("UDIP",)),
    C("A09.0", "Gastroenteritis of infectious origin (adult)", "MED", 13, 120, None, 1.5, 0.2, 2, 4, ("ORS",), ("IVF",)),
    C("I63.9", "Cerebral infarction, unspecified", "MED", 45, 120, None, 0.8, 0.9, 9, 2, ("ASA", "ATOR"), ("CTB",)),
    C("S06.0", "Concussion", "EMERG", 0, 120, None, 2.0, 0.2, 1, 3, ("PARA",), ("CTB",)),
    C("T14.1", "Open wound of unspecified body region", "EMERG", 0, 120, None, 4.0, 0.05, 1, 4, ("TETA", "CLOX"), ("SUT",)),
    C("R07.4", "Chest pain, unspecified", "EMERG", 25, 120, None, 3.0, 0.25, 1, 2, ("ASA",), ("ECG",)),
    C("T51.0", "Toxic effect of ethanol", "EMERG", 15, 120, None, 1.0, 0.1, 1, 3, ("THIA",), ("IVF",)),
    C("I21.9", "Acute myocardial infarction, unspecified", "ICU", 40, 120, None, 0.5, 0.95, 4, 1, ("ASA", "CLOP", "HEP"), ("ECG", "CATH")),
    C("A41.9", "Sepsis, unspecified organism", "ICU", 0, 120, None, 0.5, 0.95, 5, 1, ("CEFTR", "MERO"), ("IVF", "CVL")),
    C("J96.0", "Acute respiratory failure", "ICU", 0, 120, None, 0.3, 0.95, 6, 1, ("MIDA",), ("VENT",), 1.8, True),
    C("S36.9", "Injury of unspecified intra-abdominal organ", "SURG", 12, 120, None, 0.8, 0.9, 6, 1, ("MORPH", "CEFTR"), ("LAP",)),
    C("K35.8", "Acute appendicitis, other and unspecified", "SURG", 5, 120, None, 2.0, 0.95, 3, 2, ("CEFTR", "METRO"), ("APPX",)),
    C("K80.2", "Calculus of gallbladder without cholecystitis", "SURG", 25, 120, None, 1.5, 0.8, 3, 3, ("PARA",), ("CHOLE",)),
    C("K40.9", "Inguinal hernia without obstruction or gangrene", "SURG", 18, 120, None, 1.0, 0.7, 2, 4, ("PARA",), ("HERN",)),
    C("S72.0", "Fracture of neck of femur", "ORTH", 60, 120, None, 1.5, 0.95, 10, 2, ("MORPH", "ENOX"), ("ORIF", "XRAY")),
    C("S52.5", "Fracture of lower end of radius", "ORTH", 5, 120, None, 2.0, 0.3, 2, 3, ("PARA",), ("CAST", "XRAY")),
    C("M17.9", "Gonarthrosis, unspecified", "ORTH", 50, 120, None, 1.0, 0.5, 4, 4, ("IBU",), ("TKR",)),
    C("O80.0", "Spontaneous vertex delivery", "MAT", 15, 49, "F", 5.0, 1.0, 2, 3, ("OXYT", "FEFO"), ("NVD",)),
    C("O82.1", "Delivery by emergency caesarean section", "MAT", 15, 49, "F", 2.0, 1.0, 3, 2, ("OXYT", "CEFAZ"), ("CS",)),
    C("O14.1", "Severe pre-eclampsia", "MAT", 15, 49, "F", 0.6, 1.0, 5, 1, ("MGSO4", "LABET"), ("CTG",)),
    C("C50.9", "Malignant neoplasm of breast, unspecified", "ONC", 30, 120, "F", 1.0, 0.4, 5, 4, ("TAMOX",), ("CHEMO",)),
    C("C53.9", "Malignant neoplasm of cervix uteri, unspecified", "ONC", 25, 120, "F", 1.0, 0.4, 6, 4, ("CISP",), ("CHEMO", "RADIO")),
    C("C61", "Malignant neoplasm of prostate", "ONC", 50, 120, "M", 0.8, 0.3, 5, 4, ("BICA",), ("RADIO",)),
    C("F20.9", "Schizophrenia, unspecified", "PSY", 16, 120, None, 1.2, 0.6, 14, 3, ("HALO", "RISP"), ("PSYA",)),
    C("F32.9", "Depressive episode, unspecified", "PSY", 13, 120, None, 1.5, 0.3, 10, 4, ("FLUO",), ("PSYA",)),
    C("F10.2", "Mental and behavioural disorders due to alcohol: dependence", "PSY", 16, 120, None, 1.0, 0.3, 7, 3, ("THIA", "DIAZ"), ("PSYA",)),
)  # fmt: skip
del C

# drug code -> (name, dose, route, frequency, course days; 0 means long-term, never ended).
DRUGS: Final[dict[str, tuple[str, str, str, str, int]]] = {
    "OSELT": ("Oseltamivir", "75 mg", "oral", "twice daily", 5),
    "PARA": ("Paracetamol", "1 g", "oral", "six-hourly", 5),
    "AMOX": ("Amoxicillin", "500 mg", "oral", "eight-hourly", 7),
    "CEFTR": ("Ceftriaxone", "1 g", "IV", "daily", 7),
    "SALB": ("Salbutamol", "2 puffs", "inhaled", "as needed", 14),
    "PRED": ("Prednisone", "40 mg", "oral", "daily", 5),
    "BUDE": ("Budesonide", "200 mcg", "inhaled", "twice daily", 0),
    "RHZE": ("Rifampicin/Isoniazid/Pyrazinamide/Ethambutol", "4 tablets", "oral", "daily", 60),
    "ORS": ("Oral rehydration solution", "200 ml", "oral", "after each stool", 3),
    "F75": ("F-75 therapeutic milk", "130 ml/kg", "oral", "three-hourly", 7),
    "AMLO": ("Amlodipine", "5 mg", "oral", "daily", 0),
    "HCTZ": ("Hydrochlorothiazide", "12.5 mg", "oral", "daily", 0),
    "METF": ("Metformin", "500 mg", "oral", "twice daily", 0),
    "TLD": ("Tenofovir/Lamivudine/Dolutegravir", "1 tablet", "oral", "daily", 0),
    "CTX": ("Cotrimoxazole", "960 mg", "oral", "daily", 30),
    "FURO": ("Furosemide", "40 mg", "oral", "daily", 14),
    "ENAL": ("Enalapril", "10 mg", "oral", "twice daily", 0),
    "NITRO": ("Nitrofurantoin", "100 mg", "oral", "twice daily", 5),
    "ASA": ("Aspirin", "150 mg", "oral", "daily", 30),
    "ATOR": ("Atorvastatin", "40 mg", "oral", "daily", 0),
    "TETA": ("Tetanus toxoid", "0.5 ml", "IM", "once", 1),
    "CLOX": ("Flucloxacillin", "500 mg", "oral", "six-hourly", 5),
    "THIA": ("Thiamine", "100 mg", "oral", "daily", 7),
    "CLOP": ("Clopidogrel", "75 mg", "oral", "daily", 30),
    "HEP": ("Heparin", "5000 IU", "SC", "twelve-hourly", 5),
    "MERO": ("Meropenem", "1 g", "IV", "eight-hourly", 7),
    "MIDA": ("Midazolam", "2 mg/h", "IV", "infusion", 3),
    "MORPH": ("Morphine", "5 mg", "IV", "four-hourly", 3),
    "METRO": ("Metronidazole", "500 mg", "IV", "eight-hourly", 5),
    "ENOX": ("Enoxaparin", "40 mg", "SC", "daily", 14),
    "IBU": ("Ibuprofen", "400 mg", "oral", "eight-hourly", 7),
    "OXYT": ("Oxytocin", "10 IU", "IM", "once", 1),
    "FEFO": ("Ferrous fumarate", "200 mg", "oral", "daily", 30),
    "CEFAZ": ("Cefazolin", "2 g", "IV", "once", 1),
    "MGSO4": ("Magnesium sulfate", "4 g", "IV", "loading dose", 2),
    "LABET": ("Labetalol", "200 mg", "oral", "twelve-hourly", 14),
    "TAMOX": ("Tamoxifen", "20 mg", "oral", "daily", 0),
    "CISP": ("Cisplatin", "40 mg/m2", "IV", "weekly", 35),
    "BICA": ("Bicalutamide", "50 mg", "oral", "daily", 0),
    "HALO": ("Haloperidol", "5 mg", "IM", "as needed", 3),
    "RISP": ("Risperidone", "2 mg", "oral", "daily", 0),
    "FLUO": ("Fluoxetine", "20 mg", "oral", "daily", 0),
    "DIAZ": ("Diazepam", "10 mg", "oral", "six-hourly", 5),
}

TREATMENTS: Final[dict[str, str]] = {
    "OXY": "Oxygen therapy",
    "CXR": "Chest X-ray",
    "NEB": "Nebulisation",
    "SPUT": "Sputum GeneXpert MTB/RIF",
    "IVF": "Intravenous fluid resuscitation",
    "ECG": "12-lead electrocardiogram",
    "GLUC": "Capillary blood glucose monitoring",
    "CD4": "CD4 count and viral load",
    "ECHO": "Echocardiogram",
    "UDIP": "Urine dipstick and culture",
    "CTB": "CT scan of the brain",
    "SUT": "Wound suturing",
    "CATH": "Coronary angiography",
    "CVL": "Central venous line insertion",
    "VENT": "Mechanical ventilation",
    "LAP": "Exploratory laparotomy",
    "APPX": "Appendicectomy",
    "CHOLE": "Laparoscopic cholecystectomy",
    "HERN": "Inguinal hernia repair",
    "ORIF": "Open reduction and internal fixation",
    "XRAY": "Plain radiograph",
    "CAST": "Plaster of Paris cast application",
    "TKR": "Total knee replacement assessment",
    "NVD": "Normal vaginal delivery",
    "CS": "Caesarean section",
    "CTG": "Cardiotocography",
    "CHEMO": "Chemotherapy session",
    "RADIO": "Radiotherapy session",
    "PSYA": "Psychiatric assessment",
}

ALLERGENS: Final[tuple[tuple[str, str], ...]] = (
    ("Penicillin", "Urticarial rash"),
    ("Sulfonamides", "Stevens-Johnson syndrome"),
    ("Aspirin", "Bronchospasm"),
    ("Codeine", "Nausea and vomiting"),
    ("Ibuprofen", "Angioedema"),
    ("Latex", "Contact dermatitis"),
    ("Peanuts", "Anaphylaxis"),
    ("Shellfish", "Urticaria"),
    ("Iodinated contrast", "Hypotension"),
)
SEVERITIES: Final[tuple[str, ...]] = ("mild", "moderate", "severe")
TRIAGE_COLOURS: Final[tuple[str, ...]] = ("red", "orange", "yellow", "green", "blue")

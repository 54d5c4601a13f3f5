"""The ICD-10 codes the simulator may write, with the level each must be coded at.

South African public-sector coding follows the WHO ICD-10 (SA ICD-10 Master Industry Table) and
the national coding standards: a code must be used at the most specific level that exists, so a
category with subdivisions needs its fourth character (``A09.9``, not ``A09``), and a three-
character code is valid only where the category has no subdivisions (``I10``, ``E43``, ``C61``).
HIV: ``B20``-``B23`` (with the fourth character) when HIV disease causes the condition, ``Z21``
for asymptomatic HIV infection recorded as a comorbidity.
"""

from __future__ import annotations

from typing import Final

# code -> description. Three-character entries are categories without subdivisions.
CODES: Final[dict[str, str]] = {
    "A09.0": "Other and unspecified gastroenteritis and colitis of infectious origin",
    "A09.9": "Gastroenteritis and colitis of unspecified origin",
    "A15.0": "Tuberculosis of lung, confirmed by sputum microscopy",
    "A41.9": "Sepsis, unspecified",
    "B20.8": "HIV disease resulting in other infectious and parasitic diseases",
    "C50.9": "Malignant neoplasm of breast, unspecified",
    "C53.9": "Malignant neoplasm of cervix uteri, unspecified",
    "C61": "Malignant neoplasm of prostate",
    "E11.9": "Type 2 diabetes mellitus without complications",
    "E43": "Unspecified severe protein-energy malnutrition",
    "F10.2": "Mental and behavioural disorders due to use of alcohol: dependence syndrome",
    "F20.9": "Schizophrenia, unspecified",
    "F32.9": "Depressive episode, unspecified",
    "G40.9": "Epilepsy, unspecified",
    "I10": "Essential (primary) hypertension",
    "I21.9": "Acute myocardial infarction, unspecified",
    "I50.9": "Heart failure, unspecified",
    "I63.9": "Cerebral infarction, unspecified",
    "J06.9": "Acute upper respiratory infection, unspecified",
    "J11.1": "Influenza with other respiratory manifestations, virus not identified",
    "J18.0": "Bronchopneumonia, unspecified",
    "J18.9": "Pneumonia, unspecified",
    "J21.9": "Acute bronchiolitis, unspecified",
    "J44.1": "Chronic obstructive pulmonary disease with acute exacerbation, unspecified",
    "J44.9": "Chronic obstructive pulmonary disease, unspecified",
    "J45.9": "Asthma, unspecified",
    "J96.0": "Acute respiratory failure",
    "K35.8": "Acute appendicitis, other and unspecified",
    "K40.9": "Unilateral or unspecified inguinal hernia, without obstruction or gangrene",
    "K80.2": "Calculus of gallbladder without cholecystitis",
    "M17.9": "Gonarthrosis, unspecified",
    "N39.0": "Urinary tract infection, site not specified",
    "O14.1": "Severe pre-eclampsia",
    "O80.0": "Spontaneous vertex delivery",
    "O82.1": "Delivery by emergency caesarean section",
    "R07.4": "Chest pain, unspecified",
    "S06.0": "Concussion",
    "S36.9": "Injury of unspecified intra-abdominal organ",
    "S52.5": "Fracture of lower end of radius",
    "S72.0": "Fracture of neck of femur",
    "T14.1": "Open wound of unspecified body region",
    "T51.0": "Toxic effect of ethanol",
    "Z21": "Asymptomatic human immunodeficiency virus [HIV] infection status",
    "Z38.0": "Singleton, born in hospital",
}
# Three-character categories that have subdivisions: never valid without the fourth character.
NEEDS_FOURTH: Final[frozenset[str]] = frozenset(
    {"A09", "A15", "A41", "B20", "B21", "B22", "B23", "C50", "C53", "E11", "F10", "F20", "F32",
     "G40", "I21", "I50", "I63", "J06", "J11", "J18", "J21", "J44", "J45", "J96", "K35", "K40",
     "K80", "M17", "N39", "O14", "O80", "O82", "R07", "S06", "S36", "S52", "S72", "T14", "T51",
     "Z38"}
)  # fmt: skip


def valid(code: str) -> bool:
    """True when ``code`` is in the table at the level it must be coded at."""
    return code in CODES and (len(code) > 3 or code not in NEEDS_FOURTH)

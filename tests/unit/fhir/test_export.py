"""EHR rows -> FHIR bundle mapping (pure): what export writes, ingest reads back."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import uuid4

from hospital.fhir.bundles import parse_bundle
from hospital.fhir.export import PatientRecord, bundle_for
from hospital.fhir.flatten import flatten, shipped_views

T = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)


def _record() -> PatientRecord:
    pid, vid = uuid4(), uuid4()
    return PatientRecord(
        patient={
            "patient_id": pid,
            "national_id": "8001015009087",
            "first_name": "Thandi",
            "last_name": "Nkosi",
            "sex": "F",
            "birth_date": date(1980, 1, 1),
            "address_line": "1 Long St",
            "suburb": "Gardens",
            "city": "Cape Town",
            "province": "Western Cape",
            "postal_code": "8001",
            "phone": "0821234567",
            "updated_at": T,
        },
        visits=[
            {
                "visit_id": vid,
                "patient_id": pid,
                "facility_code": "F1",
                "department_code": "ED",
                "visit_type": "emergency",
                "reason": "chest pain",
                "attending_staff_id": None,
                "started_at": T,
                "ended_at": None,
                "status": "open",
            }
        ],
        diagnoses=[
            {
                "diagnosis_id": uuid4(),
                "visit_id": vid,
                "patient_id": pid,
                "icd10_code": "I20.9",
                "description": "Angina",
                "diagnosed_at": T,
                "status": "active",
            }
        ],
        medications=[
            {
                "medication_id": uuid4(),
                "patient_id": pid,
                "visit_id": vid,
                "drug_code": "ASA",
                "drug_name": "Aspirin",
                "dose": "100 mg",
                "route": "oral",
                "frequency": "daily",
                "prescriber_id": None,
                "start_date": date(2024, 5, 1),
                "end_date": None,
                "status": "active",
            }
        ],
        allergies=[
            {
                "allergy_id": uuid4(),
                "patient_id": pid,
                "substance": "Penicillin",
                "reaction": "rash",
                "severity": "moderate",
                "status": "active",
                "recorded_at": T,
            }
        ],
    )


def test_exported_bundle_ingests_cleanly_and_flattens_to_the_ehr_values() -> None:
    record = _record()
    parsed = parse_bundle(bundle_for([record]), "export.json")
    assert parsed.quarantined == []
    assert len(parsed.resources) == 5
    rows = flatten((r.resource for r in parsed.resources), shipped_views())
    pid = str(record.patient["patient_id"])
    vid = str(record.visits[0]["visit_id"])
    assert rows["patient"][0][0] == pid
    names = rows["patient_name"]
    assert [(n[0], n[3], n[4]) for n in names] == [(pid, "Nkosi", "Thandi")]
    cond = dict(
        zip(
            next(t for t in shipped_views() if t.table == "condition").columns,
            rows["condition"][0],
            strict=True,
        )
    )
    assert (cond["patient_id"], cond["encounter_id"], cond["code_code"]) == (pid, vid, "I20.9")
    assert len(rows["encounter"]) == len(rows["medication_request"]) == 1
    assert len(rows["allergy_intolerance"]) == 1

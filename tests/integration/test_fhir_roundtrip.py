"""EHR rows -> `hospital fhir export` -> ingest -> fhir tables that match the EHR."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from hospital.fhir.export import export_ehr
from hospital.fhir.load import ingest_paths
from hospital.settings import Settings

pytestmark = pytest.mark.integration

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def _national_id(n: int) -> str:
    return f"9{n:012d}"[-13:]


@pytest.fixture
def ehr_patients(stack: Settings) -> Iterator[dict[str, dict[str, object]]]:
    """Three EHR patients with visits, diagnoses, medications, allergies (removed after)."""
    created: dict[str, dict[str, object]] = {}
    with psycopg.connect(stack.dsn("ehr", "ehr_writer")) as conn:
        for n in range(3):
            pid, vid = uuid.uuid4(), uuid.uuid4()
            conn.execute(
                "INSERT INTO patients (patient_id, national_id, first_name, last_name, sex, "
                "birth_date, address_line, suburb, city, province, postal_code, phone, "
                "created_at, updated_at) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
                (
                    pid,
                    _national_id(uuid.uuid4().int % 10**12),
                    f"Naledi{n}",
                    f"Dlamini{n}",
                    "F" if n % 2 else "M",
                    date(1980 + n, 1, 2),
                    f"{n} Main Rd",
                    "Soweto",
                    "Johannesburg",
                    "Gauteng",
                    "1804",
                    "0110000000",
                    T0,
                    T0,
                ),
            )
            conn.execute(
                "INSERT INTO visits (visit_id, patient_id, facility_code, department_code, "
                "visit_type, reason, started_at, ended_at, status, created_at, updated_at) "
                "VALUES (%s,%s,'FAC1','ED','emergency','fever',%s,%s,'closed',%s,%s)",
                (vid, pid, T0, T0, T0, T0),
            )
            diag = [uuid.uuid4() for _ in range(n + 1)]
            for i, did in enumerate(diag):
                conn.execute(
                    "INSERT INTO diagnoses (diagnosis_id, visit_id, patient_id, icd10_code, "
                    "description, is_primary, diagnosed_at, status, created_at, updated_at) "
                    "VALUES (%s,%s,%s,%s,'Fever',%s,%s,'active',%s,%s)",
                    (did, vid, pid, f"R50.{i}", i == 0, T0, T0, T0),
                )
            mid, aid = uuid.uuid4(), uuid.uuid4()
            conn.execute(
                "INSERT INTO medications (medication_id, patient_id, visit_id, drug_code, "
                "drug_name, dose, route, frequency, start_date, status, created_at, updated_at) "
                "VALUES (%s,%s,%s,'PCM','Paracetamol','500 mg','oral','tds',%s,'active',%s,%s)",
                (mid, pid, vid, date(2024, 3, 1), T0, T0),
            )
            conn.execute(
                "INSERT INTO allergies (allergy_id, patient_id, substance, reaction, severity, "
                "status, recorded_at, created_at, updated_at) "
                "VALUES (%s,%s,'Penicillin','rash','mild','active',%s,%s,%s)",
                (aid, pid, T0, T0, T0),
            )
            created[str(pid)] = {"visit": str(vid), "diagnoses": len(diag), "n": n}
    try:
        yield created
    finally:
        ids = list(created)
        with psycopg.connect(stack.dsn("ehr", "ehr_writer")) as conn:
            for table in ("diagnoses", "medications", "allergies", "visits", "patients"):
                conn.execute(f"DELETE FROM {table} WHERE patient_id = ANY(%s::uuid[])", (ids,))
        with psycopg.connect(stack.dsn("hospital", "hospital_app")) as conn:
            conn.execute(
                "DELETE FROM fhir.resource WHERE resource_type = 'Patient' AND id = ANY(%s)", (ids,)
            )
            for table in ("patient",):
                conn.execute(f"DELETE FROM fhir.{table} WHERE id = ANY(%s)", (ids,))
            for table in ("patient_name", "patient_address", "patient_identifier"):
                conn.execute(f"DELETE FROM fhir.{table} WHERE patient_id = ANY(%s)", (ids,))
            for table in ("encounter", "condition", "medication_request", "allergy_intolerance"):
                rows = conn.execute(
                    f"DELETE FROM fhir.{table} WHERE patient_id = ANY(%s) RETURNING id", (ids,)
                ).fetchall()
                conn.execute(
                    "DELETE FROM fhir.resource WHERE id = ANY(%s)", ([r[0] for r in rows],)
                )


def test_ehr_export_ingests_into_matching_tables(
    stack: Settings, ehr_patients: dict[str, dict[str, object]], tmp_path: Path
) -> None:
    ids = list(ehr_patients)
    result = export_ehr(stack, out_dir=tmp_path, patient_ids=ids, per_bundle=2)
    assert result.patients == 3
    assert len(result.files) == 2
    report = ingest_paths(stack, [tmp_path])
    assert report.quarantined == 0

    with (
        psycopg.connect(stack.dsn("ehr", "hospital_app")) as ehr,
        psycopg.connect(stack.dsn("hospital", "analyst")) as hosp,
    ):
        ehr_pat = ehr.execute(
            "SELECT patient_id::text, last_name, first_name, birth_date, "
            "CASE sex WHEN 'F' THEN 'female' ELSE 'male' END, city "
            "FROM patients WHERE patient_id = ANY(%s::uuid[]) ORDER BY 1",
            (ids,),
        ).fetchall()
        fhir_pat = hosp.execute(
            "SELECT p.id, p.family_name, p.given_name, p.birth_date, p.gender, a.city "
            "FROM fhir.patient p JOIN fhir.patient_address a ON a.patient_id = p.id "
            "WHERE p.id = ANY(%s) ORDER BY 1",
            (ids,),
        ).fetchall()
        assert fhir_pat == ehr_pat

        checks = {
            "visits": (
                "SELECT visit_id::text, patient_id::text FROM visits",
                "SELECT id, patient_id FROM fhir.encounter",
            ),
            "diagnoses": (
                "SELECT diagnosis_id::text, visit_id::text, icd10_code FROM diagnoses",
                "SELECT id, encounter_id, code_code FROM fhir.condition",
            ),
            "medications": (
                "SELECT medication_id::text, drug_code, visit_id::text FROM medications",
                "SELECT id, medication_code, encounter_id FROM fhir.medication_request",
            ),
            "allergies": (
                "SELECT allergy_id::text, substance, severity FROM allergies",
                "SELECT id, code_text, reaction_severity FROM fhir.allergy_intolerance",
            ),
        }
        for name, (ehr_sql, fhir_sql) in checks.items():
            expected = ehr.execute(
                f"{ehr_sql} WHERE patient_id = ANY(%s::uuid[]) ORDER BY 1", (ids,)
            ).fetchall()
            actual = hosp.execute(
                f"{fhir_sql} WHERE patient_id = ANY(%s) ORDER BY 1", (ids,)
            ).fetchall()
            assert actual == expected, name
        assert len(expected) == 3
        total_diag = sum(int(str(v["diagnoses"])) for v in ehr_patients.values())
        assert hosp.execute(
            "SELECT count(*) FROM fhir.condition WHERE patient_id = ANY(%s)", (ids,)
        ).fetchone() == (total_diag,)


def test_ehr_deletes_reach_the_fhir_tables(
    stack: Settings, ehr_patients: dict[str, dict[str, object]], tmp_path: Path
) -> None:
    """A diagnosis deleted in the EHR leaves fhir.condition at the next export + ingest."""
    ids = list(ehr_patients)
    export_ehr(stack, out_dir=tmp_path / "day1", patient_ids=ids)
    ingest_paths(stack, [tmp_path / "day1"])
    victim_patient = next(p for p, v in ehr_patients.items() if int(str(v["diagnoses"])) > 1)
    with psycopg.connect(stack.dsn("ehr", "ehr_writer")) as conn:
        (victim,) = conn.execute(
            "DELETE FROM diagnoses WHERE diagnosis_id = (SELECT diagnosis_id FROM diagnoses "
            "WHERE patient_id = %s ORDER BY diagnosis_id LIMIT 1) RETURNING diagnosis_id::text",
            (victim_patient,),
        ).fetchone()  # type: ignore[misc]
    export_ehr(stack, out_dir=tmp_path / "day2", patient_ids=ids)
    report = ingest_paths(stack, [tmp_path / "day2"])
    assert report.retired == 1
    assert report.inserted == report.updated == 0
    with (
        psycopg.connect(stack.dsn("ehr", "hospital_app")) as ehr,
        psycopg.connect(stack.dsn("hospital", "analyst")) as hosp,
    ):
        expected = ehr.execute(
            "SELECT diagnosis_id::text FROM diagnoses WHERE patient_id = ANY(%s::uuid[]) "
            "ORDER BY 1",
            (ids,),
        ).fetchall()
        actual = hosp.execute(
            "SELECT id FROM fhir.condition WHERE patient_id = ANY(%s) ORDER BY 1", (ids,)
        ).fetchall()
        assert actual == expected
        assert (victim,) not in actual
        assert hosp.execute(
            "SELECT count(*) FROM fhir.resource WHERE resource_type = 'Condition' AND id = %s",
            (victim,),
        ).fetchone() == (0,)

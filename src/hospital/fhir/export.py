"""Export simulated EHR patients as FHIR R4 transaction bundles (``hospital fhir export``).

Reads the ``ehr`` database read-only as ``hospital_app``; pure mapping functions turn rows
into resources, one transaction bundle per batch of patients, entries addressed by
``urn:uuid:`` fullUrls (what suppliers send, so the ingest path resolves them) with ``PUT``
requests (re-sending a bundle is idempotent).

Every bundle holds *all* current rows of each patient in it and says so with the tag
:data:`hospital.fhir.bundles.COMPLETE_TAG`: the ingest retires stored resources of those
patients that are no longer exported, so rows deleted in the EHR (a withdrawn diagnosis)
leave the FHIR tables too. A patient deleted from the EHR altogether is not in any bundle and
is therefore not retired (the EHR does not delete patients).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg.rows import dict_row

from hospital.errors import FhirError
from hospital.fhir.bundles import COMPLETE_TAG
from hospital.settings import Settings

Row = Mapping[str, Any]

NATIONAL_ID_SYSTEM: Final = "urn:hospital:sa-national-id"
PATIENT_ID_SYSTEM: Final = "urn:hospital:patient-id"
DRUG_SYSTEM: Final = "urn:hospital:drug-code"
FACILITY_SYSTEM: Final = "urn:hospital:facility"
ICD10: Final = "http://hl7.org/fhir/sid/icd-10"
V2_0203: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ALLERGY_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

_GENDER: Final = {"F": "female", "M": "male"}
_ENCOUNTER_STATUS: Final = {
    "scheduled": "planned",
    "planned": "planned",
    "open": "in-progress",
    "active": "in-progress",
    "in_progress": "in-progress",
    "in-progress": "in-progress",
    "admitted": "in-progress",
    "closed": "finished",
    "completed": "finished",
    "discharged": "finished",
    "finished": "finished",
    "cancelled": "cancelled",
}
_ENCOUNTER_CLASS: Final = {
    "emergency": ("EMER", "emergency"),
    "inpatient": ("IMP", "inpatient encounter"),
    "admission": ("IMP", "inpatient encounter"),
    "outpatient": ("AMB", "ambulatory"),
    "clinic": ("AMB", "ambulatory"),
    "home": ("HH", "home health"),
    "virtual": ("VR", "virtual"),
}
_MED_STATUS: Final = {
    "active": "active",
    "completed": "completed",
    "stopped": "stopped",
    "discontinued": "stopped",
    "cancelled": "cancelled",
    "on-hold": "on-hold",
}
_CONDITION_STATUS: Final = {
    "active": "active",
    "resolved": "resolved",
    "inactive": "inactive",
    "remission": "remission",
    "chronic": "active",
}
_ALLERGY_STATUS: Final = {"active": "active", "inactive": "inactive", "resolved": "resolved"}
_SEVERITY: Final = {"mild": "mild", "moderate": "moderate", "severe": "severe"}


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _ref(kind: str, key: Any) -> dict[str, str]:
    return {"reference": f"urn:uuid:{key}"} if kind == "urn" else {"reference": f"{kind}/{key}"}


def _drop_empty(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v not in (None, "", [], {})}


def patient_resource(row: Row) -> dict[str, Any]:
    pid = str(row["patient_id"])
    address = _drop_empty(
        {
            "use": "home",
            "line": [row["address_line"]] if row.get("address_line") else None,
            "district": row.get("suburb"),
            "city": row.get("city"),
            "state": row.get("province"),
            "postalCode": row.get("postal_code"),
            "country": "ZA",
        }
    )
    return _drop_empty(
        {
            "resourceType": "Patient",
            "id": pid,
            "meta": {"lastUpdated": _iso(row.get("updated_at"))} if row.get("updated_at") else None,
            "identifier": [
                {
                    "use": "official",
                    "type": {"coding": [{"system": V2_0203, "code": "NI"}]},
                    "system": NATIONAL_ID_SYSTEM,
                    "value": str(row["national_id"]).strip(),
                },
                {
                    "use": "usual",
                    "type": {"coding": [{"system": V2_0203, "code": "MR"}]},
                    "system": PATIENT_ID_SYSTEM,
                    "value": pid,
                },
            ],
            "name": [{"use": "official", "family": row["last_name"], "given": [row["first_name"]]}],
            "gender": _GENDER.get(str(row["sex"]).strip(), "unknown"),
            "birthDate": _iso(row["birth_date"]),
            "address": [address] if len(address) > 2 else None,
            "telecom": [{"system": "phone", "value": row["phone"], "use": "mobile"}]
            if row.get("phone")
            else None,
        }
    )


def encounter_resource(row: Row) -> dict[str, Any]:
    status = _ENCOUNTER_STATUS.get(str(row.get("status", "")).lower())
    if status is None:
        status = "finished" if row.get("ended_at") else "in-progress"
    code, display = _ENCOUNTER_CLASS.get(
        str(row.get("visit_type", "")).lower(), ("AMB", "ambulatory")
    )
    return _drop_empty(
        {
            "resourceType": "Encounter",
            "id": str(row["visit_id"]),
            "status": status,
            "class": {"system": ACT_CODE, "code": code, "display": display},
            "type": [{"text": row.get("visit_type")}],
            "subject": _ref("urn", row["patient_id"]),
            "participant": [{"individual": _ref("Practitioner", row["attending_staff_id"])}]
            if row.get("attending_staff_id")
            else None,
            "period": _drop_empty(
                {"start": _iso(row["started_at"]), "end": _iso(row.get("ended_at"))}
            ),
            "reasonCode": [{"text": row["reason"]}] if row.get("reason") else None,
            "serviceProvider": {
                "identifier": {"system": FACILITY_SYSTEM, "value": row["facility_code"]},
                "display": row["facility_code"],
            },
        }
    )


def condition_resource(row: Row) -> dict[str, Any]:
    status = _CONDITION_STATUS.get(str(row.get("status", "")).lower(), "active")
    return _drop_empty(
        {
            "resourceType": "Condition",
            "id": str(row["diagnosis_id"]),
            "clinicalStatus": {"coding": [{"system": CLINICAL, "code": status}]},
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                            "code": "encounter-diagnosis",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [
                    {"system": ICD10, "code": row["icd10_code"], "display": row["description"]}
                ],
                "text": row["description"],
            },
            "subject": _ref("urn", row["patient_id"]),
            "encounter": _ref("urn", row["visit_id"]),
            "onsetDateTime": _iso(row["diagnosed_at"]),
            "recordedDate": _iso(row["diagnosed_at"]),
        }
    )


def medication_request_resource(row: Row, visit_ids: set[str]) -> dict[str, Any]:
    dosage = " ".join(str(row[k]) for k in ("dose", "route", "frequency") if row.get(k))
    visit = str(row["visit_id"]) if row.get("visit_id") else None
    return _drop_empty(
        {
            "resourceType": "MedicationRequest",
            "id": str(row["medication_id"]),
            "status": _MED_STATUS.get(str(row.get("status", "")).lower(), "unknown"),
            "intent": "order",
            "medicationCodeableConcept": {
                "coding": [
                    {"system": DRUG_SYSTEM, "code": row["drug_code"], "display": row["drug_name"]}
                ],
                "text": row["drug_name"],
            },
            "subject": _ref("urn", row["patient_id"]),
            # A visit outside this export is still a valid (relative) reference.
            "encounter": (_ref("urn", visit) if visit in visit_ids else _ref("Encounter", visit))
            if visit
            else None,
            "authoredOn": _iso(row["start_date"]),
            "requester": _ref("Practitioner", row["prescriber_id"])
            if row.get("prescriber_id")
            else None,
            "dosageInstruction": [{"text": dosage}] if dosage else None,
            "dispenseRequest": {
                "validityPeriod": _drop_empty(
                    {"start": _iso(row["start_date"]), "end": _iso(row.get("end_date"))}
                )
            },
        }
    )


def allergy_resource(row: Row) -> dict[str, Any]:
    status = _ALLERGY_STATUS.get(str(row.get("status", "")).lower(), "active")
    severity = _SEVERITY.get(str(row.get("severity") or "").lower())
    reaction = _drop_empty(
        {
            "manifestation": [{"text": row["reaction"]}] if row.get("reaction") else None,
            "severity": severity,
        }
    )
    return _drop_empty(
        {
            "resourceType": "AllergyIntolerance",
            "id": str(row["allergy_id"]),
            "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": status}]},
            "code": {"text": row["substance"]},
            "patient": _ref("urn", row["patient_id"]),
            "recordedDate": _iso(row["recorded_at"]),
            "reaction": [reaction] if reaction.get("manifestation") else None,
        }
    )


@dataclass
class PatientRecord:
    """One EHR patient and their clinical rows."""

    patient: Row
    visits: list[Row] = field(default_factory=list)
    diagnoses: list[Row] = field(default_factory=list)
    medications: list[Row] = field(default_factory=list)
    allergies: list[Row] = field(default_factory=list)


def _entry(resource: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{resource['id']}",
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"},
    }


def bundle_for(records: Sequence[PatientRecord]) -> dict[str, Any]:
    """A transaction bundle holding ``records`` (pure)."""
    entries: list[dict[str, Any]] = []
    for rec in records:
        visit_ids = {str(v["visit_id"]) for v in rec.visits}
        entries.append(_entry(patient_resource(rec.patient)))
        entries.extend(_entry(encounter_resource(v)) for v in rec.visits)
        entries.extend(
            _entry(condition_resource(d)) for d in rec.diagnoses if str(d["visit_id"]) in visit_ids
        )
        entries.extend(_entry(medication_request_resource(m, visit_ids)) for m in rec.medications)
        entries.extend(_entry(allergy_resource(a)) for a in rec.allergies)
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "meta": {"tag": [dict(COMPLETE_TAG)]},
        "entry": entries,
    }


# --- I/O --------------------------------------------------------------------------------------


@dataclass
class ExportResult:
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    patients: int = 0
    resources: int = 0


def _group(rows: Iterable[Row], key: str) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for row in rows:
        out.setdefault(str(row[key]), []).append(row)
    return out


def read_records(
    conn: psycopg.Connection[Any],
    patient_ids: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[PatientRecord]:
    """EHR patients (all, the given ids, or the first ``limit`` by id) with their rows."""
    with conn.cursor(row_factory=dict_row) as cur:
        if patient_ids is not None:
            cur.execute(
                "SELECT * FROM patients WHERE patient_id = ANY(%s::uuid[]) ORDER BY patient_id",
                (list(patient_ids),),
            )
        elif limit is not None:
            cur.execute("SELECT * FROM patients ORDER BY patient_id LIMIT %s", (limit,))
        else:
            cur.execute("SELECT * FROM patients ORDER BY patient_id")
        patients = cur.fetchall()
        ids = [p["patient_id"] for p in patients]
        related: dict[str, dict[str, list[Row]]] = {}
        for table, order in (
            ("visits", "started_at"),
            ("diagnoses", "diagnosed_at"),
            ("medications", "start_date"),
            ("allergies", "recorded_at"),
        ):
            cur.execute(
                f"SELECT * FROM {table} WHERE patient_id = ANY(%s) ORDER BY {order}",
                (ids,),
            )
            related[table] = _group(cur.fetchall(), "patient_id")
    return [
        PatientRecord(
            patient=p,
            visits=related["visits"].get(str(p["patient_id"]), []),
            diagnoses=related["diagnoses"].get(str(p["patient_id"]), []),
            medications=related["medications"].get(str(p["patient_id"]), []),
            allergies=related["allergies"].get(str(p["patient_id"]), []),
        )
        for p in patients
    ]


def write_bundles(
    records: Sequence[PatientRecord], out_dir: Path, per_bundle: int = 100, prefix: str = "ehr"
) -> ExportResult:
    if per_bundle < 1:
        raise FhirError("per_bundle must be at least 1")
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ExportResult(out_dir=out_dir)
    for n, start in enumerate(range(0, len(records), per_bundle)):
        batch = records[start : start + per_bundle]
        bundle = bundle_for(batch)
        path = out_dir / f"{prefix}-{n:05d}.json"
        tmp = path.with_name("." + path.name)
        # Written aside then renamed: a watcher on the folder never sees half a file.
        tmp.write_text(json.dumps(bundle, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(path)
        result.files.append(path)
        result.patients += len(batch)
        result.resources += len(bundle["entry"])
    return result


def export_ehr(
    settings: Settings,
    out_dir: Path | None = None,
    limit: int | None = None,
    per_bundle: int = 100,
    patient_ids: Sequence[str] | None = None,
) -> ExportResult:
    """Read EHR patients and write them as transaction bundles (default ``lake/fhir/export``)."""
    target = out_dir or settings.lake_path / "fhir" / "export"
    try:
        with psycopg.connect(settings.dsn("ehr", "hospital_app")) as conn:
            conn.read_only = True
            records = read_records(conn, patient_ids=patient_ids, limit=limit)
    except psycopg.Error as exc:
        raise FhirError(f"cannot read the EHR database: {exc}") from exc
    return write_bundles(records, target, per_bundle=per_bundle)

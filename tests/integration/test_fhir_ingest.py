"""Ingest the Synthea samples into the real hospital database and check every table.

Expected counts are computed from the sample files themselves.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hospital.fhir.flatten import shipped_views
from hospital.fhir.load import ingest_paths
from hospital.fhir.shared import samples_dir
from hospital.fhir.watch import watch
from hospital.settings import Settings
from tests.unit.fhir.guard import require_shared

pytestmark = pytest.mark.integration

TABLE_OF_TYPE = {
    "Patient": "patient",
    "Encounter": "encounter",
    "Condition": "condition",
    "Observation": "observation",
    "MedicationRequest": "medication_request",
    "AllergyIntolerance": "allergy_intolerance",
    "Procedure": "procedure",
    "Immunization": "immunization",
    "DiagnosticReport": "diagnostic_report",
    "Claim": "claim",
}


def _samples(settings: Settings) -> Path:
    return require_shared(samples_dir(settings.root), "Synthea sample bundles")


def _tables() -> list[str]:
    return ["resource", "quarantine", "unresolved_reference", *(t.table for t in shipped_views())]


def _truncate(settings: Settings) -> None:
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        conn.execute("TRUNCATE " + ", ".join(f"fhir.{t}" for t in _tables()))


@pytest.fixture
def db(stack: Settings) -> Iterator[Settings]:
    _truncate(stack)
    yield stack
    _truncate(stack)


def _counts(settings: Settings) -> dict[str, int]:
    with psycopg.connect(settings.dsn("hospital", "analyst")) as conn:
        return {
            t: conn.execute(f"SELECT count(*) FROM fhir.{t}").fetchone()[0]  # type: ignore[index]
            for t in _tables()
        }


def _snapshot(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        out = {}
        for t in _tables():
            if t == "quarantine":
                q = "SELECT source_file, entry_index, reason FROM fhir.quarantine ORDER BY 1, 2, 3"
            elif t == "resource":
                q = (
                    "SELECT resource_type, id, content_hash, updated_at, xmin::text "
                    "FROM fhir.resource ORDER BY 1, 2"
                )
            else:
                q = f"SELECT *, xmin::text FROM fhir.{t} ORDER BY 1, 2"
            out[t] = conn.execute(q).fetchall()
        return out


def _expected(folder: Path) -> dict[str, int]:
    types: Counter[str] = Counter()
    names = addresses = identifiers = 0
    for path in folder.glob("*.json"):
        for entry in json.loads(path.read_text("utf-8"))["entry"]:
            resource = entry["resource"]
            types[resource["resourceType"]] += 1
            if resource["resourceType"] == "Patient":
                names += len(resource.get("name", []))
                addresses += len(resource.get("address", []))
                identifiers += len(resource.get("identifier", []))
    expected = {table: types[rtype] for rtype, table in TABLE_OF_TYPE.items()}
    expected.update(
        resource=sum(types.values()),
        quarantine=0,
        unresolved_reference=0,
        patient_name=names,
        patient_address=addresses,
        patient_identifier=identifiers,
    )
    return expected


def test_samples_load_with_exact_counts(db: Settings) -> None:
    folder = _samples(db)
    report = ingest_paths(db, [folder])
    expected = _expected(folder)
    assert report.inserted == expected["resource"]
    assert report.quarantined == 0
    assert _counts(db) == expected
    with psycopg.connect(db.dsn("hospital", "analyst")) as conn:
        # Non-ASCII names survive; references were resolved to row keys.
        family = conn.execute(
            "SELECT family FROM fhir.patient_name WHERE family LIKE 'Pati%'"
        ).fetchall()
        assert ("Patiño436",) in family
        orphans = conn.execute(
            "SELECT count(*) FROM fhir.encounter e LEFT JOIN fhir.patient p ON p.id = e.patient_id "
            "WHERE p.id IS NULL"
        ).fetchone()
        assert orphans == (0,)
        unresolved = conn.execute(
            "SELECT count(*) FROM fhir.resource WHERE resource::text LIKE %s",
            ('%"reference": "urn:uuid:%',),
        ).fetchone()
        assert unresolved == (0,)
        practitioners = conn.execute(
            "SELECT count(*) FROM fhir.encounter WHERE practitioner_id IS NULL"
        ).fetchone()
        assert practitioners == (0,)


def test_reingesting_identical_input_changes_nothing(db: Settings) -> None:
    folder = _samples(db)
    ingest_paths(db, [folder])
    before = _snapshot(db)
    report = ingest_paths(db, [folder])
    assert (report.inserted, report.updated) == (0, 0)
    assert report.unchanged == _expected(folder)["resource"]
    assert _snapshot(db) == before


def test_a_changed_resource_replaces_its_rows(db: Settings, tmp_path: Path) -> None:
    folder = _samples(db)
    source = sorted(folder.glob("*.json"))[0]
    bundle = json.loads(source.read_text("utf-8"))
    copy = tmp_path / source.name
    copy.write_text(json.dumps(bundle), "utf-8")
    ingest_paths(db, [copy])
    patient = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient"
    )
    pid = patient["id"]
    before = _counts(db)

    # The supplier re-sends the patient with one name only, a new family name and no address.
    patient["name"] = [{"use": "official", "family": "Changed", "given": ["New"]}]
    patient.pop("address", None)
    copy.write_text(json.dumps(bundle), "utf-8")
    report = ingest_paths(db, [copy])
    assert (report.updated, report.inserted) == (1, 0)
    after = _counts(db)
    assert after["patient_name"] == 1
    assert after["patient_address"] == 0
    assert after["resource"] == before["resource"]
    with psycopg.connect(db.dsn("hospital", "analyst")) as conn:
        assert conn.execute(
            "SELECT family_name, given_name FROM fhir.patient WHERE id = %s", (pid,)
        ).fetchall() == [("Changed", "New")]
        assert conn.execute(
            "SELECT name_index, family, given FROM fhir.patient_name WHERE patient_id = %s", (pid,)
        ).fetchall() == [(0, "Changed", "New")]
        stored = conn.execute(
            "SELECT resource -> 'name' -> 0 ->> 'family' FROM fhir.resource WHERE id = %s", (pid,)
        ).fetchone()
        assert stored == ("Changed",)


def test_broken_input_is_quarantined_and_the_rest_loads(db: Settings, tmp_path: Path) -> None:
    (tmp_path / "garbage.json").write_text("{this is not json", "utf-8")
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "qp1"}},
            {"resource": {"resourceType": "Patient", "name": [{"family": "NoId"}]}},
            {"resource": {"id": "no-type"}},
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": "qc1",
                    "subject": {"reference": "urn:uuid:missing"},
                }
            },
            {
                "resource": {
                    "resourceType": "Condition",
                    "id": "qc2",
                    "subject": {"reference": "urn:uuid:p"},
                }
            },
        ],
    }
    (tmp_path / "mixed.json").write_text(json.dumps(bundle), "utf-8")
    (tmp_path / "lines.ndjson").write_text(
        json.dumps({"resourceType": "Patient", "id": "qp2"}) + "\n{broken\n", "utf-8"
    )
    report = ingest_paths(db, [tmp_path])
    # qc1's reference names no entry: it loads with the reference flagged, not quarantined.
    assert report.inserted == 4
    assert report.quarantined == 4
    assert report.unresolved == 1
    assert report.entries == report.accounted == 8
    with psycopg.connect(db.dsn("hospital", "analyst")) as conn:
        rows = conn.execute(
            "SELECT source_file, entry_index, reason FROM fhir.quarantine ORDER BY 1, 2"
        ).fetchall()
        assert [(Path(f).name, i) for f, i, _ in rows] == [
            ("garbage.json", None),
            ("lines.ndjson", 1),
            ("mixed.json", 1),
            ("mixed.json", 2),
        ]
        assert conn.execute("SELECT id, patient_id FROM fhir.condition ORDER BY id").fetchall() == [
            ("qc1", None),
            ("qc2", "qp1"),
        ]
        assert conn.execute(
            "SELECT resource_type, resource_id, reference FROM fhir.unresolved_reference"
        ).fetchall() == [("Condition", "qc1", "urn:uuid:missing")]
    # Quarantine is idempotent too.
    ingest_paths(db, [tmp_path])
    assert _counts(db)["quarantine"] == 4


def test_watch_ingests_dropped_files(db: Settings, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "one.ndjson").write_text(
        json.dumps({"resourceType": "Patient", "id": "w1", "gender": "female"}) + "\n", "utf-8"
    )
    report = watch(db, inbox=inbox, poll_seconds=0.01, max_polls=2)
    assert report.ingest.inserted == 1
    assert not list(inbox.glob("*.ndjson"))
    assert (tmp_path / "processed" / "one.ndjson").exists()
    assert _counts(db)["patient"] == 1

"""Bad FHIR input costs only the resource that holds it (issue 7, section 6).

Each test mutates a real Synthea sample bundle and checks, in the real database, that the bad
resource is quarantined with a reason naming what was wrong and that everything else loaded.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hospital.fhir.flatten import VIEWS_DIR, shipped_views
from hospital.fhir.load import connect, ingest_files, ingest_paths, load, read_files
from hospital.fhir.shared import samples_dir
from hospital.settings import Settings
from tests.support import TEST_ENV, read_env_file
from tests.unit.fhir.guard import require_shared

pytestmark = pytest.mark.integration

SAMPLE = "Chase54_Crooks415_e5b7d947-da2b-9cf4-12a0-9eb2cf735330.json"  # 274 entries


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


def sample_bundle(settings: Settings) -> dict[str, Any]:
    path = samples_dir(settings.root) / SAMPLE
    require_shared(path, "Synthea sample bundle")
    bundle: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return bundle


def _first(bundle: dict[str, Any], rtype: str) -> dict[str, Any]:
    resource: dict[str, Any] = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype
    )
    return resource


def _query(settings: Settings, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.dsn("hospital", "analyst")) as conn:
        return conn.execute(sql, params).fetchall()


def _count(settings: Settings, table: str) -> int:
    return int(_query(settings, f"SELECT count(*) FROM fhir.{table}")[0][0])


def test_impossible_birth_date_quarantines_only_that_patient(db: Settings, tmp_path: Path) -> None:
    bundle = sample_bundle(db)
    patient = _first(bundle, "Patient")
    patient["birthDate"] = "1990-02-30"
    types = Counter(e["resource"]["resourceType"] for e in bundle["entry"])
    path = tmp_path / "bad-birth.json"
    path.write_text(json.dumps(bundle), "utf-8")

    report = ingest_paths(db, [path])

    total = len(bundle["entry"])
    assert (report.inserted, report.quarantined) == (total - 1, 1)
    assert _count(db, "resource") == total - 1
    assert _count(db, "encounter") == types["Encounter"]
    assert _count(db, "observation") == types["Observation"]
    assert _count(db, "patient") == 0
    ((entry, rid, reason, stage),) = _query(
        db, "SELECT entry_index, resource_id, reason, stage FROM fhir.quarantine"
    )
    assert (entry, rid, stage) == (0, patient["id"], "load")
    assert "fhir.patient.birth_date" in reason and "1990-02-30" in reason


def test_values_that_fit_no_column_each_quarantine_their_own_resource(
    db: Settings, tmp_path: Path
) -> None:
    bundle = sample_bundle(db)
    encounter = _first(bundle, "Encounter")
    encounter["period"]["start"] = "2020-13-45T10:00:00Z"
    observation = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "Observation" and "valueQuantity" in e["resource"]
    )
    observation["valueQuantity"]["value"] = "twelve"
    path = tmp_path / "bad-values.json"
    path.write_text(json.dumps(bundle), "utf-8")

    report = ingest_paths(db, [path])

    assert report.quarantined == 2
    assert report.inserted == len(bundle["entry"]) - 2
    reasons = dict(_query(db, "SELECT resource_id, reason FROM fhir.quarantine"))
    assert "fhir.encounter.period_start" in reasons[encounter["id"]]
    assert "2020-13-45" in reasons[encounter["id"]]
    assert "twelve" in reasons[observation["id"]]
    assert _query(db, "SELECT count(*) FROM fhir.encounter WHERE id = %s", encounter["id"]) == [
        (0,)
    ]


def test_a_flattening_error_quarantines_that_resource_not_the_batch(
    db: Settings, tmp_path: Path
) -> None:
    bundle = sample_bundle(db)
    patient = _first(bundle, "Patient")
    patient["name"][0]["given"] = [1, 2]  # join() in the patient_name view needs strings
    (tmp_path / "a-bad-flatten.json").write_text(json.dumps(bundle), "utf-8")
    good = {"resourceType": "Patient", "id": "other-file", "gender": "female"}
    (tmp_path / "b-good.ndjson").write_text(json.dumps(good) + "\n", "utf-8")

    with connect(db) as conn:
        report = ingest_files(conn, sorted(tmp_path.iterdir()))  # one batch, one transaction

    assert report.files == 2
    assert report.quarantined == 1
    assert report.inserted == len(bundle["entry"])  # all but the patient, plus the other file
    ((reason, stage),) = _query(db, "SELECT reason, stage FROM fhir.quarantine")
    assert stage == "flatten" and "fhir.patient_name" in reason
    assert _query(db, "SELECT id FROM fhir.patient") == [("other-file",)]


def _pathological(folder: Path) -> dict[str, str]:
    """File name -> a word its quarantine reason must contain."""
    deep = '{"resourceType":"Patient","id":"deep","x":' + "[" * 5000 + "]" * 5000 + "}"
    (folder / "deep.json").write_text(deep, "utf-8")
    (folder / "utf16.json").write_text(
        json.dumps({"resourceType": "Patient", "id": "u16"}), encoding="utf-16"
    )
    (folder / "latin1.ndjson").write_bytes(
        json.dumps(
            {"resourceType": "Patient", "id": "l1", "city": "Sé"}, ensure_ascii=False
        ).encode("latin-1")
    )
    (folder / "nul-byte.json").write_bytes(b'{"resourceType": "Patient", "id": \x00}')
    return {
        "deep.json": "nesting",
        "utf16.json": "encoding",
        "latin1.ndjson": "encoding",
        "nul-byte.json": "invalid JSON",
    }


def test_pathological_input_is_quarantined_with_a_reason(db: Settings, tmp_path: Path) -> None:
    expected = _pathological(tmp_path)
    lines = [
        json.dumps({"resourceType": "Patient", "id": "fine"}),
        # Deep, but within what the parser accepts: stopped at the resource, not the file.
        '{"resourceType":"Patient","id":"deep-ish","x":' + "[" * 1000 + "]" * 1000 + "}",
        json.dumps({"resourceType": "Patient", "id": "nul", "gender": "a\u0000b"}),
        '{"resourceType":"Patient","id":"s","n":"\\ud800"}',
    ]
    mixed = "\n".join(lines) + "\n"
    (tmp_path / "mixed.ndjson").write_text(mixed, "utf-8")
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"resourceType": "Patient", "id": "big", "pad": "x" * 30_000}))
    expected["big.json"] = "too large"

    with connect(db) as conn:
        report = ingest_files(conn, sorted(tmp_path.iterdir()), max_bytes=20_000)

    assert report.inserted == 1
    rows = _query(db, "SELECT source_file, entry_index, reason FROM fhir.quarantine ORDER BY 1, 2")
    whole = {Path(f).name: reason for f, i, reason in rows if i is None}
    assert set(whole) == set(expected)
    for name, word in expected.items():
        assert word in whole[name], (name, whole[name])
    per_entry = {i: reason for f, i, reason in rows if Path(f).name == "mixed.ndjson"}
    assert set(per_entry) == {1, 2, 3}
    assert "nesting" in per_entry[1] and "NUL" in per_entry[2] and "surrogate" in per_entry[3]
    assert report.entries == report.accounted


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update({k.upper(): v for k, v in read_env_file(TEST_ENV).items()})
    exe = shutil.which("hospital", path=str(Path(sys.executable).parent)) or "hospital"
    return subprocess.run(
        [exe, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_cli_never_prints_a_traceback(db: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    _pathological(bad)
    only_bad = _cli(db, "fhir", "ingest", str(bad))
    assert only_bad.returncode == 1
    assert "Traceback" not in only_bad.stdout + only_bad.stderr
    assert "nothing could be loaded" in only_bad.stdout

    (bad / "good.ndjson").write_text(json.dumps({"resourceType": "Patient", "id": "g"}) + "\n")
    with_good = _cli(db, "fhir", "ingest", str(bad))
    assert with_good.returncode == 0, with_good.stdout + with_good.stderr
    assert "Traceback" not in with_good.stdout + with_good.stderr
    assert _query(db, "SELECT id FROM fhir.patient") == [("g",)]


def test_dependents_of_an_unusable_patient_load_and_resolve_when_it_arrives(
    db: Settings, tmp_path: Path
) -> None:
    bundle = sample_bundle(db)
    patient = _first(bundle, "Patient")
    pid = patient["id"]
    patient["id"] = "not a valid id!"
    dependents = sum(1 for e in bundle["entry"] if json.dumps(e).count(f"urn:uuid:{pid}") > 0) - 1
    (tmp_path / "day1.json").write_text(json.dumps(bundle), "utf-8")

    first = ingest_paths(db, [tmp_path / "day1.json"])
    assert first.quarantined == 1
    assert first.inserted == len(bundle["entry"]) - 1
    assert first.unresolved >= dependents > 100
    assert _query(db, "SELECT count(*) FROM fhir.encounter WHERE patient_id IS NULL") == [
        (_count(db, "encounter"),)
    ]

    # The supplier re-sends the patient alone, valid, under the same fullUrl.
    patient["id"] = pid
    fixed = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [{"fullUrl": f"urn:uuid:{pid}", "resource": patient}],
    }
    (tmp_path / "day2.json").write_text(json.dumps(fixed), "utf-8")
    second = ingest_paths(db, [tmp_path / "day2.json"])
    assert second.inserted == 1
    assert second.resolved >= dependents
    assert _count(db, "unresolved_reference") == 0
    assert _query(db, "SELECT DISTINCT patient_id FROM fhir.encounter") == [(pid,)]
    assert _query(
        db,
        "SELECT count(*) FROM fhir.resource WHERE resource::text LIKE %s",
        '%"reference": "urn:uuid:%',
    ) == [(0,)]
    # Replaying the parent changes nothing.
    assert ingest_paths(db, [tmp_path / "day2.json"]).unchanged == 1


def test_a_changed_view_reflattens_existing_data(db: Settings, tmp_path: Path) -> None:
    bundle = sample_bundle(db)
    path = tmp_path / "b.json"
    path.write_text(json.dumps(bundle), "utf-8")
    ingest_paths(db, [path])
    views_dir = tmp_path / "views"
    shutil.copytree(VIEWS_DIR, views_dir)
    view = json.loads((views_dir / "patient.json").read_text("utf-8"))
    for column in view["select"][0]["column"]:
        if column["name"] == "gender":
            column["path"] = "gender.upper()"
    (views_dir / "patient.json").write_text(json.dumps(view), "utf-8")
    changed = shipped_views(views_dir)

    with connect(db) as conn:
        report = load(conn, read_files([path]), tables=changed)
    # Only the resource type whose views changed is re-flattened.
    assert report.reflattened == 1
    assert report.unchanged == len(bundle["entry"]) - 1
    assert _query(db, "SELECT gender FROM fhir.patient") == [
        (_first(bundle, "Patient")["gender"].upper(),)
    ]

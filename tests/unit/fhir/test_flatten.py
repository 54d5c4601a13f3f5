"""Shipped ViewDefinitions: they compile, match the migration, and the fast path agrees
with fhirpathpy on every sample resource."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from hospital.fhir import fhirpath
from hospital.fhir.bundles import parse_text
from hospital.fhir.flatten import db_value, flatten, shipped_views
from hospital.fhir.viewdef import load_view

MIGRATION = Path(__file__).parents[3] / "src/hospital/warehouse/migrations/hospital/0002_fhir.py"
REQUIRED = {
    "patient",
    "patient_name",
    "patient_address",
    "patient_identifier",
    "encounter",
    "condition",
    "observation",
    "medication_request",
    "allergy_intolerance",
    "procedure",
    "immunization",
    "diagnostic_report",
    "claim",
}


def _ddl_columns() -> dict[str, list[str]]:
    text = MIGRATION.read_text("utf-8")
    tables: dict[str, list[str]] = {}
    for name, body in re.findall(r"CREATE TABLE fhir\.(\w+) \((.*?)\n\);", text, re.S):
        cols = [line.split()[0] for line in body.strip().splitlines()]
        tables[name] = [c for c in cols if c not in ("PRIMARY",)]
    return tables


def test_every_required_table_has_a_view_matching_the_migration() -> None:
    views = {t.table: t for t in shipped_views()}
    assert set(views) >= REQUIRED
    ddl = _ddl_columns()
    for name, table in views.items():
        assert ddl[name] == list(table.columns), name


def test_fast_path_agrees_with_fhirpathpy(
    sample_files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    resources: list[dict[str, Any]] = []
    for path in sample_files:
        resources.extend(
            r.resource for r in parse_text(path.read_text("utf-8"), str(path)).resources
        )
    paths = sorted((Path(fhirpath.__file__).parent / "views").glob("*.json"))
    fast = {p.stem: load_view(p).run(resources) for p in paths}
    monkeypatch.setattr(fhirpath, "_compile_fast", lambda node, focus_type: None)
    slow = {p.stem: load_view(p).run(resources) for p in paths}
    assert fast == slow


def test_flatten_counts_follow_the_input(sample_resources: list[dict[str, Any]]) -> None:
    rows = flatten(sample_resources, shipped_views())
    patients = [r for r in sample_resources if r["resourceType"] == "Patient"]
    assert len(rows["patient"]) == len(patients)
    assert len(rows["patient_name"]) == sum(len(p.get("name", [])) for p in patients)
    assert len(rows["patient_address"]) == sum(len(p.get("address", [])) for p in patients)


def test_partial_dates_fit_date_columns() -> None:
    assert db_value("1970-06", "date") == "1970-06-01"
    assert db_value("1970", "dateTime") == "1970-01-01"
    assert db_value("2020-01-02T03:04:05Z", "dateTime") == "2020-01-02T03:04:05Z"
    assert db_value({"a": 1}, None) == '{"a": 1}'

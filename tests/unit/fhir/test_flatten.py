"""Shipped ViewDefinitions: they compile, match the migration, and the fast path agrees
with fhirpathpy on every sample resource."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from hospital.fhir import fhirpath
from hospital.fhir.bundles import parse_text
from hospital.fhir.flatten import ViewTable, db_value, flatten, shipped_views
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


def _rows_via_view(
    resources: list[dict[str, Any]], tables: tuple[ViewTable, ...]
) -> dict[str, list[tuple[Any, ...]]]:
    """The generic evaluation: row dicts from ``View.rows``, then ``db_value``."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for resource in resources:
        for t in tables:
            if t.resource_type == resource["resourceType"]:
                out.setdefault(t.table, []).extend(
                    tuple(db_value(row[c], t.types[c]) for c in t.columns)
                    for row in t.view.rows(resource)
                )
    return out


def _typed(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {k: [tuple((type(v), v) for v in row) for row in v] for k, v in rows.items()}


def _edge_cases(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Variants that leave the single-value fast path: several values where first() picks
    one, several values where none is picked, primitive extensions, empty and odd data."""
    first = {r["resourceType"]: r for r in reversed(resources)}
    out = []
    for rtype in ("Observation", "Encounter", "Claim", "Condition", "Patient"):
        base = first[rtype]
        variants = [
            {"category": [{"coding": [{"code": "a"}, {"code": "b"}]}, {"coding": []}]},
            {"code": {"coding": [{"system": "s1", "code": "c1"}, {"system": "s2"}]}},
            {"code": {"coding": []}, "category": []},
            {"_status": {"extension": [{"url": "u", "valueString": "x"}]}},
            {"subject": {"reference": "Group/g1"}, "encounter": {"display": "no reference"}},
            {"meta": None, "status": None},
            {"type": [{"coding": [{"code": "t1"}]}, {"coding": [{"code": "t2"}]}]},
            {"valueQuantity": {"value": 1.50, "unit": "mg"}, "valueString": None},
            {"participant": [{"individual": {"reference": "Practitioner/a"}}, {}, {"x": 1}]},
            {"location": [{"location": [{"reference": "Location/l1"}]}, {"location": {}}]},
        ]
        for i, change in enumerate(variants):
            variant = copy.deepcopy(base)
            variant.update(change)
            variant["id"] = f"{base['id']}-edge{i}"
            out.append(variant)
    return out


def test_compiled_rows_equal_the_generic_view_rows(sample_files: list[Path]) -> None:
    resources: list[dict[str, Any]] = []
    for path in sample_files:
        resources.extend(
            r.resource for r in parse_text(path.read_text("utf-8"), str(path)).resources
        )
    resources += _edge_cases(resources)
    tables = shipped_views()
    assert any(t.view.flat_columns() is not None for t in tables)
    assert _typed(flatten(resources, tables)) == _typed(_rows_via_view(resources, tables))


def test_fused_navigation_agrees_with_the_step_by_step_plan(
    sample_files: list[Path],
) -> None:
    resources: list[dict[str, Any]] = []
    for path in sample_files:
        resources.extend(
            r.resource for r in parse_text(path.read_text("utf-8"), str(path)).resources
        )
    resources += _edge_cases(resources)
    # Several values and no first(): the column would fail, but navigation must still agree.
    one_per_type = {r["resourceType"]: r for r in resources}.values()
    resources += [
        {**r, "class": [{"code": "A"}, {"code": "B"}], "meta": [{"versionId": "1"}, {}]}
        for r in one_per_type
    ]
    for table in shipped_views():
        for col in table.view.flat_columns() or ():
            navigate = col.expression.navigator(table.resource_type)
            for resource in resources:
                if navigate is None or resource["resourceType"] != table.resource_type:
                    continue
                fast = navigate(resource)
                if fast is not None:
                    assert fast == col.expression.values(resource, {}), (col.name, resource["id"])

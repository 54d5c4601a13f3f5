"""The official SQL-on-FHIR v2 conformance suite, every case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hospital.errors import FhirError
from hospital.fhir import fhirpath
from hospital.fhir.conformance import report, rows_match, run_suite, suite_dir, suite_files
from tests.support import report_line


def test_every_conformance_case_passes(conformance_dir: Path) -> None:
    results = run_suite(conformance_dir)
    passed = sum(r.passed for r in results)
    report_line(f"SQL-on-FHIR v2 conformance: {passed}/{len(results)} passed")
    failures = [f"{r.file} :: {r.name}: {r.reason}" for r in results if not r.passed]
    assert not failures, "\n".join(failures)
    assert len(results) == 134


def test_suite_passes_on_fhirpathpy_alone(
    conformance_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path is an optimisation only: with it off, fhirpathpy passes everything."""
    monkeypatch.setattr(fhirpath, "_compile_fast", lambda node, focus_type: None)
    results = run_suite(conformance_dir)
    assert [r for r in results if not r.passed] == []


def test_report_has_the_standard_shape(conformance_dir: Path) -> None:
    data = report(run_suite(conformance_dir))
    assert set(data) == {p.name for p in suite_files(conformance_dir)}
    first = data["basic.json"]["tests"][0]
    assert set(first) == {"name", "result"}
    assert first["result"]["passed"] is True
    json.dumps(data)


def test_suite_dir_honours_the_environment_variable(tmp_path: Path) -> None:
    assert suite_dir(tmp_path, {"SOF_CONFORMANCE_DIR": "/x/y"}) == Path("/x/y")
    assert suite_dir(tmp_path / "main", {}) == tmp_path / "shared/conformance/sql-on-fhir-v2"


def test_missing_suite_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FhirError, match="not found"):
        suite_files(tmp_path / "absent")


def test_rows_compare_order_insensitively_and_by_keys() -> None:
    assert rows_match([{"a": 1}, {"a": 2}], [{"a": 2}, {"a": 1.0}])
    assert not rows_match([{"a": 1}], [{"a": 1, "b": None}])
    assert not rows_match([{"a": 1}, {"a": 1}], [{"a": 1}])

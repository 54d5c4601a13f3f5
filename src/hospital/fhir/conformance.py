"""Run the official SQL-on-FHIR v2 conformance suite against our ViewDefinition engine.

The suite is shared material outside the project (``../shared/conformance/sql-on-fhir-v2``);
it is never copied in. Results use the suite's ``test_report.json`` format.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hospital.errors import FhirError
from hospital.fhir.shared import shared_dir
from hospital.fhir.viewdef import compile_view

ENV_VAR = "SOF_CONFORMANCE_DIR"
SUITE_RELATIVE = Path("conformance") / "sql-on-fhir-v2"


@dataclass(frozen=True)
class CaseResult:
    file: str
    name: str
    passed: bool
    reason: str | None = None


def suite_dir(root: Path, env: Mapping[str, str] | None = None) -> Path:
    """Where the suite lives: ``$SOF_CONFORMANCE_DIR`` or ``<root>/../shared/conformance/...``."""
    environ = os.environ if env is None else env
    override = environ.get(ENV_VAR)
    if override:
        return Path(override)
    return shared_dir(root) / SUITE_RELATIVE


def suite_files(directory: Path) -> list[Path]:
    """The suite's test files (every ``*.json`` except the schema), sorted."""
    if not directory.is_dir():
        raise FhirError(
            f"SQL-on-FHIR conformance suite not found at {directory} (set {ENV_VAR} to its folder)"
        )
    return sorted(p for p in directory.glob("*.json") if p.name != "tests.schema.json")


def _canonical(value: Any) -> Any:
    """A hashable form of a cell where 5 == 5.0 and floats compare with a little tolerance."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return ("num", round(float(value), 9)) if math.isfinite(float(value)) else value
    if isinstance(value, list):
        return ("list", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("obj", tuple(sorted((k, _canonical(v)) for k, v in value.items())))
    return repr(value)


def _row_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((k, _canonical(v)) for k, v in row.items()))


def rows_match(actual: Sequence[Mapping[str, Any]], expected: Sequence[Mapping[str, Any]]) -> bool:
    """Order-insensitive multiset comparison; a row whose set of keys differs fails."""
    return Counter(_row_key(r) for r in actual) == Counter(_row_key(r) for r in expected)


def run_case(resources: Sequence[Mapping[str, Any]], case: Mapping[str, Any]) -> tuple[bool, str]:
    """Run one test case; returns (passed, reason)."""
    view_def = case.get("view")
    if case.get("expectError"):
        try:
            compile_view(view_def).run(resources)
        except FhirError as exc:
            return True, f"raised as expected: {exc}"
        return False, "expected an error, got rows"
    try:
        view = compile_view(view_def)
        rows = view.run(resources)
    except FhirError as exc:
        return False, f"unexpected error: {exc}"
    if "expectColumns" in case and list(view.columns) != list(case["expectColumns"]):
        return False, f"columns {list(view.columns)} != {case['expectColumns']}"
    if "expectCount" in case:
        ok = len(rows) == case["expectCount"]
        return ok, "" if ok else f"{len(rows)} rows, expected {case['expectCount']}"
    expected = case.get("expect", [])
    if rows_match(rows, expected):
        return True, ""
    return False, f"rows differ: got {rows!r}, expected {expected!r}"


def run_file(path: Path) -> list[CaseResult]:
    suite = json.loads(path.read_text(encoding="utf-8"))
    resources = suite.get("resources", [])
    results = []
    for case in suite.get("tests", []):
        passed, reason = run_case(resources, case)
        results.append(CaseResult(path.name, str(case.get("title")), passed, reason or None))
    return results


def run_suite(directory: Path) -> list[CaseResult]:
    """Every case of every file in the suite."""
    results: list[CaseResult] = []
    for path in suite_files(directory):
        results.extend(run_file(path))
    return results


def report(results: Sequence[CaseResult]) -> dict[str, Any]:
    """The suite's standard ``test_report.json`` structure."""
    out: dict[str, Any] = {}
    for r in results:
        result: dict[str, Any] = {"passed": r.passed}
        if not r.passed and r.reason:
            result["reason"] = r.reason
        out.setdefault(r.file, {"tests": []})["tests"].append({"name": r.name, "result": result})
    return out


def write_report(results: Sequence[CaseResult], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report(results), indent=2) + "\n", encoding="utf-8")
    return path

"""The committed benchmark results follow bench/README.md (issue 7, section 5).

Same work on both sides, median of at least 3 runs (and the median really is the median of the
recorded runs), machine load recorded, a row-by-row baseline that is not the fast code.
"""

from __future__ import annotations

import ast
import json
import random
import statistics
from pathlib import Path
from typing import Any

import pytest

from hospital.simulator.sa_id import luhn_valid

BENCH = Path(__file__).resolve().parents[3] / "bench"


def _result(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((BENCH / "results" / f"{name}.json").read_text())
    return data


@pytest.mark.parametrize("name", ["simulator", "fhir"])
def test_result_shape_runs_and_load(name: str) -> None:
    data = _result(name)
    assert {"metrics", "baseline", "ratios"} <= set(data)
    metrics, baseline = data["metrics"], data["baseline"]
    assert metrics["runs"] >= 3
    for key in ("loadavg_1m_5m_15m_start", "loadavg_1m_5m_15m_end"):
        assert len(metrics[key]) == 3 and all(x >= 0 for x in metrics[key])
    for side in (metrics, baseline):
        runs = {k: v for k, v in side.items() if k.endswith("_all_runs")}
        assert runs, f"{name}: every run's figure is recorded"
        for key, values in runs.items():
            assert len(values) == metrics["runs"]
            median = side[key.replace("_all_runs", "_median")]
            assert median == pytest.approx(statistics.median(values), abs=1e-3)
    assert all(isinstance(v, int | float) and v > 0 for v in data["ratios"].values())


def test_fhir_sides_did_the_same_work() -> None:
    data = _result("fhir")
    metrics, baseline = data["metrics"], data["baseline"]
    assert baseline["orm_resources"] == metrics["resources"]
    assert baseline["orm_table_rows"] == metrics["table_rows"]
    ratio = baseline["orm_seconds_median"] / metrics["ingest_seconds_median"]
    assert data["ratios"]["ratio_vs_orm"] == pytest.approx(ratio, rel=0.01)


def _functions(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def test_faker_baseline_uses_a_plain_python_luhn() -> None:
    functions = _functions(BENCH / "simulator.py")
    names = {n.id for n in ast.walk(functions["faker_people"]) if isinstance(n, ast.Name)}
    assert "luhn_digit" in names
    assert not names & {"np", "numpy", "luhn_check_digits"}
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module([functions["luhn_digit"]], []), "luhn", "exec"), namespace)
    rng = random.Random(1)
    for _ in range(500):
        body = "".join(rng.choice("0123456789") for _ in range(12))
        assert luhn_valid(body + str(namespace["luhn_digit"](body)))

"""Missing ``../shared`` material fails in CI and skips loudly elsewhere (issue 7, section 7)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hospital.fhir.shared import samples_dir
from tests.support import SUMMARY_LINES
from tests.unit.fhir.guard import in_ci, require_shared

ROOT = Path(__file__).resolve().parents[3]


def test_missing_material_fails_in_ci(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        require_shared(tmp_path / "absent", "conformance suite", env={"CI": "true"})


def test_missing_material_skips_loudly_locally(tmp_path: Path) -> None:
    before = len(SUMMARY_LINES)
    with pytest.raises(pytest.skip.Exception):
        require_shared(tmp_path / "absent", "conformance suite", env={})
    assert len(SUMMARY_LINES) == before + 1
    line = SUMMARY_LINES.pop()  # not a real skip of this run: keep the summary honest
    assert "SKIPPED, NOT TESTED" in line and str(tmp_path / "absent") in line


def test_an_empty_folder_counts_as_missing(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception):
        require_shared(tmp_path, "samples", env={"CI": "1"})
    (tmp_path / "x.json").write_text("{}")
    assert require_shared(tmp_path, "samples", env={"CI": "1"}) == tmp_path


def test_ci_detection() -> None:
    assert in_ci({"CI": "true"}) and in_ci({"CI": "1"})
    assert not in_ci({}) and not in_ci({"CI": "false"})


def test_samples_dir_honours_the_environment_variable(tmp_path: Path) -> None:
    assert samples_dir(tmp_path, {"FHIR_SAMPLES_DIR": "/x/y"}) == Path("/x/y")
    assert samples_dir(tmp_path / "main", {}) == tmp_path / "shared/samples/fhir-synthea"


def _pytest(tests: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "CI"}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


TESTS = [
    "tests/unit/fhir/test_conformance.py::test_every_conformance_case_passes",
    "tests/unit/fhir/test_bundles.py::test_samples_parse_without_quarantine",
]


def test_a_real_run_without_shared_material(tmp_path: Path) -> None:
    """The real suites, pointed at missing folders: red in CI, loud skips locally."""
    missing = {
        "SOF_CONFORMANCE_DIR": str(tmp_path / "no-suite"),
        "FHIR_SAMPLES_DIR": str(tmp_path / "no-samples"),
    }
    ci = _pytest(TESTS, CI="true", **missing)
    assert ci.returncode == 1, ci.stdout
    assert "2 errors" in ci.stdout  # failed in fixture set-up: red, not skipped

    local = _pytest(TESTS, **missing)
    assert local.returncode == 0, local.stdout
    assert "2 skipped" in local.stdout
    assert local.stdout.count("SKIPPED, NOT TESTED") == 2

"""Locations of the shared FHIR material (outside the project; tests skip when absent)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hospital.fhir.conformance import suite_dir
from hospital.fhir.shared import samples_dir
from hospital.settings import load_settings

ROOT = load_settings().root
SAMPLES = samples_dir(ROOT)


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    directory = suite_dir(ROOT)
    if not directory.is_dir():
        pytest.skip(f"SQL-on-FHIR conformance suite not found at {directory}")
    return directory


@pytest.fixture(scope="session")
def sample_files() -> list[Path]:
    files = sorted(SAMPLES.glob("*.json"))
    if not files:
        pytest.skip(f"Synthea samples not found at {SAMPLES}")
    return files


@pytest.fixture(scope="session")
def sample_resources(sample_files: list[Path]) -> list[dict[str, Any]]:
    out = []
    for path in sample_files:
        out.extend(e["resource"] for e in json.loads(path.read_text("utf-8"))["entry"])
    return out

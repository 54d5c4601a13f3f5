"""Locations of the shared FHIR material (outside the project). When absent, tests fail in CI
and skip loudly elsewhere (see :mod:`tests.unit.fhir.guard`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hospital.fhir.conformance import suite_dir
from hospital.fhir.shared import samples_dir
from hospital.settings import load_settings
from tests.unit.fhir.guard import require_shared

ROOT = load_settings().root
SAMPLES = samples_dir(ROOT)


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    return require_shared(suite_dir(ROOT), "SQL-on-FHIR conformance suite")


@pytest.fixture(scope="session")
def sample_files() -> list[Path]:
    require_shared(SAMPLES, "Synthea sample bundles")
    return sorted(SAMPLES.glob("*.json"))


@pytest.fixture(scope="session")
def sample_resources(sample_files: list[Path]) -> list[dict[str, Any]]:
    out = []
    for path in sample_files:
        out.extend(e["resource"] for e in json.loads(path.read_text("utf-8"))["entry"])
    return out

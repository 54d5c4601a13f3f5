"""Helpers shared by tests (not fixtures): the test stack's settings."""

from __future__ import annotations

import os
from pathlib import Path

from hospital.settings import Settings, load_settings

# HOSPITAL_TEST_ENV points at another stack file (own folder and ports), so that several
# developers or helpers can each run the integration tests against a stack of their own.
TEST_ENV = Path(os.environ.get("HOSPITAL_TEST_ENV") or Path(__file__).parent / "test.env")


def read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip().lower()] = value.strip()
    return values


def stack_settings(**overrides: object) -> Settings:
    """Settings for the test stack; explicit values win over the environment and .env."""
    values: dict[str, object] = dict(read_env_file(TEST_ENV))
    values.update(overrides)
    return load_settings(**values)


SUMMARY_LINES: list[str] = []


def report_line(line: str) -> None:
    """A figure the test run prints in its final summary (e.g. a conformance score)."""
    SUMMARY_LINES.append(line)

"""Helpers shared by tests (not fixtures): the test stack's settings."""

from __future__ import annotations

from pathlib import Path

from hospital.settings import Settings, load_settings

TEST_ENV = Path(__file__).parent / "test.env"


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

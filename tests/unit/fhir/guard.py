"""Shared material (``../shared``) that is missing must not let tests hide.

In CI (``CI`` set to true) a missing conformance suite or sample folder *fails* the test; on a
developer machine the test is skipped, and the skip is repeated loudly in the final summary so
a green run can't pass for a complete one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.support import report_line

TRUE = frozenset({"1", "true", "yes", "on"})


def in_ci(env: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if env is None else env
    return environ.get("CI", "").strip().lower() in TRUE


def require_shared(path: Path, what: str, env: Mapping[str, str] | None = None) -> Path:
    """``path`` when it exists; otherwise fail (CI) or skip loudly (local)."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        return path
    message = f"{what} not found at {path}"
    if in_ci(env):
        pytest.fail(f"{message} (CI=true: shared material must be present)", pytrace=False)
    report_line(f"!!! SKIPPED, NOT TESTED: {message} (CI=true turns this into a failure)")
    pytest.skip(message)

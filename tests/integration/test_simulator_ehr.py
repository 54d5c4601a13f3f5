"""The simulator against the real EHR: c/u/d per day, idempotent re-runs, reproducible checksums.

Uses the session fixture ``stack`` (tests/conftest.py): a running stack with migrations applied,
returned as ``hospital.settings.Settings``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import psycopg
import pytest

from hospital.errors import SimulationError
from hospital.settings import Settings
from hospital.simulator.api import apply_range, build_population
from hospital.simulator.config import SimConfig
from hospital.simulator.ehr_writer import table_checksums, truncate_ehr

pytestmark = pytest.mark.integration
DAYS = 6


def _config(stack: Settings) -> SimConfig:
    return SimConfig.from_settings(stack, num_people=20_000, seed=5)


def test_days_insert_update_delete_and_reapply_is_a_no_op(stack: Settings) -> None:
    dsn = stack.dsn("ehr", "ehr_writer")
    truncate_ehr(dsn)
    config = _config(stack)
    people = build_population(config)
    report = apply_range(stack, config, people, None, DAYS)
    assert report.applied == DAYS
    assert sum(w.inserted for w in report.writes) > 1000
    assert sum(w.updated for w in report.writes) > 100
    assert sum(w.deleted for w in report.writes) > 0
    with psycopg.connect(dsn) as conn:
        completed = conn.execute(
            "SELECT count(*) FROM visits WHERE status <> 'in_progress'"
        ).fetchone()
        ended = conn.execute(
            "SELECT count(*) FROM medications WHERE end_date IS NOT NULL"
        ).fetchone()
        days = conn.execute("SELECT count(*) FROM sim_days").fetchone()
        # Deaths reach the EHR (patients.deceased_at, ehr_0004), and nobody visits after death.
        dead = conn.execute(
            "SELECT count(*) FROM patients WHERE deceased_at IS NOT NULL"
        ).fetchone()
        after = conn.execute(
            "SELECT count(*) FROM visits v JOIN patients p USING (patient_id) "
            "WHERE v.started_at > p.deceased_at"
        ).fetchone()
        died = conn.execute("SELECT count(*) FROM visits WHERE status = 'died'").fetchone()
    assert dead and died and dead[0] >= died[0] > 0
    assert after == (0,)
    with psycopg.connect(stack.dsn("hospital", "hospital_app")) as conn:
        mirror = conn.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = 'patients' "
            "AND column_name = 'deceased_at'"
        ).fetchone()
    assert mirror == (1,), "hospital_0007 mirrors patients.deceased_at for the CDC applier"
    assert completed and completed[0] > 0
    assert ended and ended[0] > 0
    assert days == (DAYS,)

    before = table_checksums(dsn)
    again = apply_range(stack, config, people, config.origin, DAYS)
    assert again.applied == 0
    assert table_checksums(dsn) == before

    # A different world is refused, and so is a gap in the days.
    with pytest.raises(SimulationError):
        apply_range(stack, replace(config, seed=6), people, None, 1)
    with pytest.raises(SimulationError):
        apply_range(stack, config, people, config.origin + timedelta(days=DAYS + 2), 1)


def test_two_runs_with_the_same_seed_give_identical_checksums(stack: Settings) -> None:
    dsn = stack.dsn("ehr", "ehr_writer")
    config = _config(stack)
    people = build_population(config)
    truncate_ehr(dsn)
    apply_range(stack, config, people, None, DAYS)
    first = table_checksums(dsn)
    truncate_ehr(dsn)
    apply_range(stack, config, people, None, DAYS)
    assert table_checksums(dsn) == first
    assert first["visits"][0] > 0
    truncate_ehr(dsn)

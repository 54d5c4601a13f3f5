"""`reconcile paths` after a week of simulated days through both paths (the real batch API).

Days 1-3 of batch files are ingested before the stream is consumed and days 4-7 after, so both
merge orders on ``bed_events`` are exercised. One transfer is withheld from the stream: the batch
fills it in and the report counts it as such, still clean. Then a stream event loses its batch
confirmation: a difference the batch did not fill in, so the check (and the CLI) fail.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from hospital.batch import tables as batch_tables
from hospital.batch import writer
from hospital.batch.ingest import ingest_pending
from hospital.settings import Settings
from hospital.simulator.activity import HospitalSim
from hospital.simulator.api import build_population, simulate
from hospital.simulator.config import SimConfig
from hospital.simulator.events import DayEvents, day_events
from hospital.stream.consumer import run
from hospital.stream.reconcile import reconcile_paths
from tests.integration.test_stream_support import isolated, publish, worker_env

pytestmark = pytest.mark.integration

DAYS = 7
# The tables the batch path writes (emptied first: other tests may have loaded other worlds).


@pytest.fixture
def paths_env(stack: Settings) -> Iterator[Settings]:
    lake_dir = stack.lake_path / "paths-tests" / uuid.uuid4().hex[:10]
    batch_tables.empty(stack)
    base = stack.model_copy(update={"lake_dir": lake_dir})
    try:
        with isolated(base, "paths") as s:
            yield s
    finally:
        shutil.rmtree(lake_dir, ignore_errors=True)


def _ingest(settings: Settings) -> None:
    report = ingest_pending(settings)
    bad = [f for f in report.files if f.status in ("rejected", "refused") or f.rows_rejected]
    assert not bad, bad


def test_week_through_both_paths_is_clean_and_a_withheld_event_is_filled_in(
    paths_env: Settings,
) -> None:
    settings = paths_env
    config = SimConfig.from_settings(settings, num_people=20_000, seed=707)
    people = build_population(config)
    writer.write_initial(settings, config, people)
    sim = HospitalSim(config, people)
    days: list[DayEvents] = []
    for result in simulate(config, people, config.origin, DAYS, sim):
        days.append(day_events(result))
        writer.write_day(settings, days[-1], writer.staff_changes(sim, result))
        if len(days) == 3:
            _ingest(settings)  # days 1-3: the batch lands before the stream
    withheld = next(e for e in days[1].realtime if e.kind == "transfer")
    events = [e for d in days for e in d.realtime if e.event_id != withheld.event_id]
    publish(settings, events, forget=False)  # the batch rows of days 1-3 stay
    run(settings, until_idle=True)
    _ingest(settings)  # days 4-7: the batch lands after the stream

    dates = [d.day for d in days]
    result = reconcile_paths(settings, dates)
    assert result.clean, [
        (r.day, r.kind, r.stream_only[:3], r.batch_only[:3], r.lake_vs_db[:3], r.lake_duplicates)
        for r in result.rows
        if not r.clean
    ]
    assert result.filled_in_by_batch == 1
    row = next(
        r for r in result.rows if r.day == withheld.occurred_at.date() and r.kind == "transfer"
    )
    assert row.batch_only == [withheld.event_id] and row.filled_in == {withheld.event_id}
    # The day files under lake/batch hold exactly what the database confirmed.
    assert all(r.batch_file == r.batch and not r.file_not_loaded for r in result.rows)
    assert sum(len(r.lake) for r in result.rows) == len(events)
    assert sum(len(r.batch) for r in result.rows) == len(events) + 1
    assert {r.kind for r in result.rows if r.batch} == {
        "admission",
        "discharge",
        "transfer",
        "transport",
    }

    # A stream event the batch does not confirm is a difference nobody filled in.
    missing = days[4].realtime[0]
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        conn.execute(
            "UPDATE bed_events SET confirmed_by_batch_at = NULL, batch_file = NULL"
            " WHERE event_id = %s",
            (missing.event_id,),
        )
    broken = reconcile_paths(settings, dates)
    assert not broken.clean
    bad = [r for r in broken.rows if not r.clean]
    assert [(r.day, r.kind, r.stream_only) for r in bad] == [
        (missing.occurred_at.date(), missing.kind, [missing.event_id])
    ]

    def cli(day: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "hospital.cli", "reconcile", "paths", "--date", day],
            env=worker_env(settings, COLUMNS="200"),
            capture_output=True,
            text=True,
            timeout=120,
        )

    ok = cli(withheld.occurred_at.date().isoformat())
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "filled in by batch: 1" in ok.stdout
    failed = cli(missing.occurred_at.date().isoformat())
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "DIFFERS" in failed.stdout

"""Batch path on the real database: good and bad rows, replays, changed and corrupt files,
a week of days confirming bed events, export."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest

from hospital.batch import files as bf
from hospital.batch import tables as batch_tables
from hospital.batch import writer
from hospital.batch.export import ExportError, export_table
from hospital.batch.ingest import ingest_pending
from hospital.settings import Settings
from hospital.simulator.activity import HospitalSim
from hospital.simulator.api import build_population, simulate
from hospital.simulator.config import SimConfig
from hospital.simulator.events import DayEvents, day_events
from hospital.simulator.population import People

pytestmark = pytest.mark.integration

SEED = 606


def truncate(settings: Settings) -> None:
    batch_tables.empty(settings)


def scalar(settings: Settings, query: str, params: Any = None) -> Any:
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        row = conn.execute(query, params).fetchone()
        assert row is not None
        return row[0]


def rows(settings: Settings, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        return conn.execute(query, params).fetchall()


def snapshot(settings: Settings) -> dict[str, Any]:
    """Row counts and row versions (xmin) of every batch table: any write changes it."""
    out: dict[str, Any] = {}
    for t in batch_tables.OWNED_TABLES:
        out[t] = rows(settings, f"SELECT count(*), sum(xmin::text::bigint) FROM {t}")[0]
    return out


@pytest.fixture(scope="module")
def world(stack: Settings) -> tuple[SimConfig, People]:
    config = SimConfig.from_settings(stack, num_people=20_000, seed=SEED)
    return config, build_population(config)


@pytest.fixture
def env(stack: Settings) -> Iterator[Settings]:
    """Settings with a lake folder of this test's own; batch tables emptied."""
    lake = stack.lake_path / "batch-tests" / uuid.uuid4().hex[:10]
    truncate(stack)
    yield stack.model_copy(update={"lake_dir": lake})
    truncate(stack)


def write_world(settings: Settings, world: tuple[SimConfig, People], days: int) -> list[DayEvents]:
    config, people = world
    writer.write_initial(settings, config, people)
    sim = HospitalSim(config, people)
    out = []
    for result in simulate(config, people, config.origin, days, sim):
        events = day_events(result)
        writer.write_day(settings, events, writer.staff_changes(sim, result))
        out.append(events)
    return out


def rewrite_manifest(folder: Path, name: str) -> None:
    """Make the manifest agree with a file the test tampered with (so other checks fire)."""
    manifest = bf.Manifest.read(folder)
    path = folder / name
    data = path.read_bytes()
    lines = max(data.count(b"\n") - 1, 0)
    manifest.files[name] = bf.ManifestEntry(name, lines, hashlib.sha256(data).hexdigest())
    (folder / bf.MANIFEST).write_text(manifest.to_json())


def edit_csv(path: Path, edits: dict[int, dict[str, str]]) -> None:
    """Change values of data rows (index 0 = line 2)."""
    text = path.read_text()
    reader = list(csv.DictReader(io.StringIO(text)))
    for i, change in edits.items():
        reader[i].update(change)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(reader[0].keys()), lineterminator="\n")
    w.writeheader()
    w.writerows(reader)
    path.write_text(buf.getvalue())


def test_good_rows_load_bad_rows_quarantined_and_replay_changes_nothing(
    env: Settings, world: tuple[SimConfig, People]
) -> None:
    days = write_world(env, world, 1)
    day = bf.day_folder(env.lake_path, world[0].origin)
    name = "staff_assignments.csv"
    rel = f"{day.name}/{name}"
    total = len((day / name).read_text().splitlines()) - 1
    assert total > 30
    edit_csv(
        day / name,
        {
            3: {"staff_id": "not-a-uuid"},
            10: {"department_code": "NOWHERE", "work_date": "2020-02-30"},
            20: {"shift": ""},
            21: {"staff_id": str(uuid.uuid4())},  # nobody on the staff
            25: {"shift": "lunch"},
        },
    )
    rewrite_manifest(day, name)
    # Only well-formed but wrong values here: the fast checks find them, no cast fails.
    orders = day / "pharmacy_orders.csv"
    n_orders = len(orders.read_text().splitlines()) - 1
    assert n_orders >= 5
    edit_csv(orders, {2: {"status": "lost"}, 4: {"ordered_by": str(uuid.uuid4())}})
    rewrite_manifest(day, "pharmacy_orders.csv")

    report = ingest_pending(env)
    assert report.errors == []
    by_file = {f.path: f for f in report.files}
    assert (by_file[rel].rows_loaded, by_file[rel].rows_rejected) == (total - 5, 5)
    rel_orders = f"{day.name}/pharmacy_orders.csv"
    assert (by_file[rel_orders].rows_loaded, by_file[rel_orders].rows_rejected) == (n_orders - 2, 2)
    assert scalar(env, "SELECT count(*) FROM pharmacy_orders") == n_orders - 2
    assert rows(
        env,
        "SELECT line, column_name, reason FROM batch_quarantine WHERE file = %s ORDER BY line",
        (rel_orders,),
    ) == [
        (4, "status", "not one of ordered, dispensed, cancelled"),
        (6, "ordered_by", "unknown in staff"),
    ]
    # The bad values never reached the table (the initial load holds the same roster).
    assert (
        scalar(
            env, "SELECT count(*) FROM staff_assignments WHERE shift <> ALL(%s)", (list(bf.SHIFTS),)
        )
        == 0
    )
    assert (
        scalar(
            env, "SELECT count(*) FROM staff_assignments WHERE work_date <> %s", (world[0].origin,)
        )
        == 0
    )
    quarantined = rows(
        env,
        "SELECT line, column_name, reason FROM batch_quarantine "
        "WHERE file = %s ORDER BY line, column_name",
        (rel,),
    )
    assert quarantined == [
        (5, "staff_id", "not a UUID"),
        (12, "department_code", "unknown in departments"),
        (12, "work_date", "not a valid date (YYYY-MM-DD)"),
        (22, "shift", "required value missing"),
        (23, "staff_id", "unknown in staff"),
        (27, "shift", "not one of day, night"),
    ]
    # Every other file of the drop and the initial load loaded whole.
    assert all(f.status == "loaded" for f in report.files)
    assert scalar(env, "SELECT count(*) FROM departments") == 10
    # The population and the first day's newborns.
    assert scalar(env, "SELECT count(*) FROM people") == 20_000 + days[0].batch.births.height
    ledger = rows(
        env,
        "SELECT rows_loaded, rows_rejected, status FROM batch_ledger WHERE path = %s",
        (rel,),
    )
    assert ledger == [(total - 5, 5, "loaded")]
    metrics = scalar(
        env,
        "SELECT sum(value) FROM pipeline_metrics WHERE path = 'batch' "
        "AND metric = 'rows_quarantined' AND sim_day = %s",
        (world[0].origin,),
    )
    assert metrics >= 5

    before = snapshot(env)
    again = ingest_pending(env)
    assert again.loaded == 0 and again.rejected == 0
    assert again.skipped == len(report.files)
    assert snapshot(env) == before


def test_changed_file_is_refused_naming_both_checksums(
    env: Settings, world: tuple[SimConfig, People]
) -> None:
    write_world(env, world, 1)
    ingest_pending(env)
    day = bf.day_folder(env.lake_path, world[0].origin)
    path = day / "staff_assignments.csv"
    old_sha = bf.sha256_file(path)
    first = path.read_text().splitlines()[1].split(",")[2]
    edit_csv(path, {0: {"shift": "night" if first == "day" else "day"}})
    rewrite_manifest(day, "staff_assignments.csv")
    new_sha = bf.sha256_file(path)
    before = snapshot(env)

    report = ingest_pending(env)
    refused = [f for f in report.files if f.status == "refused"]
    assert len(refused) == 1
    assert old_sha in (refused[0].error or "") and new_sha in (refused[0].error or "")
    assert "staff_assignments.csv" in (refused[0].error or "")
    assert snapshot(env) == before

    # The CLI says it in one sentence and fails, without a traceback.
    cli = run_cli(env, "batch", "ingest")
    assert cli.returncode == 1
    assert "changed after it was loaded" in cli.stdout.replace("\n", "")
    assert "Traceback" not in cli.stdout + cli.stderr


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PG_PORT": str(settings.pg_port),
        "HOSPITAL_LAKE_DIR": str(settings.lake_path),
        "HOSPITAL_STACK_DIR": str(settings.stack_path),
        "COLUMNS": "300",
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        [sys.executable, "-m", "hospital.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_corrupt_files_are_rejected_and_the_rest_of_the_drop_loads(
    env: Settings, world: tuple[SimConfig, People]
) -> None:
    days = write_world(env, world, 3)
    day1, day2, day3 = (bf.day_folder(env.lake_path, d.day) for d in days)
    # 1. checksum mismatch: the file changed, the manifest did not
    data = (day1 / "admissions.csv").read_bytes()
    (day1 / "admissions.csv").write_bytes(data.replace(b",admitted,", b",admitteD,", 1))
    # 2. truncated in the middle of a line (manifest rewritten so only the CSV check sees it)
    t = (day1 / "pharmacy_orders.csv").read_bytes()
    (day1 / "pharmacy_orders.csv").write_bytes(t[: len(t) - 25])
    rewrite_manifest(day1, "pharmacy_orders.csv")
    # 3. wrong header
    tp = (day1 / "transports.csv").read_text().split("\n", 1)
    (day1 / "transports.csv").write_text(tp[0].replace("priority", "prio") + "\n" + tp[1])
    rewrite_manifest(day1, "transports.csv")
    # 4. empty file
    (day1 / "discharges.csv").write_bytes(b"")
    rewrite_manifest(day1, "discharges.csv")
    # 5. a drop without manifest
    (day2 / bf.MANIFEST).unlink()
    # 6. not UTF-8 in the middle of a file
    sa = (day3 / "staff_assignments.csv").read_bytes().split(b"\n")
    sa[7] = sa[7].replace(b",", b",\xe9", 1)
    (day3 / "staff_assignments.csv").write_bytes(b"\n".join(sa))
    rewrite_manifest(day3, "staff_assignments.csv")
    # 7. a CSV with a quote that never closes
    roster = pl.read_csv(day2 / "staff_assignments.csv", infer_schema=False)
    bad_quote = writer.write_drop(
        bf.day_folder(env.lake_path, date(2030, 1, 1)), {"staff_assignments.csv": roster}
    )
    text = (bad_quote / "staff_assignments.csv").read_text()
    (bad_quote / "staff_assignments.csv").write_text(text.replace("\n2020", '\n"2020', 1))
    rewrite_manifest(bad_quote, "staff_assignments.csv")

    report = ingest_pending(env)
    status = {f.path: (f.status, f.error or "") for f in report.files}
    expected = {
        f"{day1.name}/admissions.csv": "manifest checksum mismatch",
        f"{day1.name}/pharmacy_orders.csv": "truncated",
        f"{day1.name}/transports.csv": "wrong or missing header",
        f"{day1.name}/discharges.csv": "empty file",
        f"{day2.name}/manifest.json": "manifest missing",
        f"{day3.name}/staff_assignments.csv": "invalid byte sequence",
        f"{bad_quote.name}/staff_assignments.csv": "unterminated CSV quoted field",
    }
    for rel, fragment in expected.items():
        state, error = status[rel]
        assert state == "rejected", (rel, state, error)
        assert fragment in error, (rel, error)
        assert rel.split("/")[1] in error  # the message names the file
    # The rest of each drop loads.
    assert status[f"{day1.name}/staff_assignments.csv"][0] == "loaded"
    assert status[f"{day3.name}/pharmacy_orders.csv"][0] == "loaded"
    assert (
        scalar(env, "SELECT count(*) FROM staff_assignments WHERE work_date = %s", (days[0].day,))
        == days[0].batch.staff_assignments.height
    )
    assert (
        scalar(env, "SELECT count(*) FROM pharmacy_orders") == days[2].batch.pharmacy_orders.height
    )
    # Rejections are recorded once, in the ledger and the quarantine.
    rejected = scalar(env, "SELECT count(*) FROM batch_ledger WHERE status = 'rejected'")
    assert rejected == len(expected)
    assert scalar(env, "SELECT count(*) FROM batch_quarantine WHERE line IS NULL") == len(expected)
    again = ingest_pending(env)
    assert again.rejected == 0 and again.loaded == 0
    assert scalar(env, "SELECT count(*) FROM batch_quarantine WHERE line IS NULL") == len(expected)

    # A fixed file (new checksum) is ingested on the next run.
    (bad_quote / "staff_assignments.csv").write_text(text)
    rewrite_manifest(bad_quote, "staff_assignments.csv")
    assert ingest_pending(env).loaded == 1
    assert (
        scalar(env, "SELECT count(*) FROM staff_assignments WHERE work_date = %s", (days[1].day,))
        == roster.height
    )
    assert rows(
        env,
        "SELECT status FROM batch_ledger WHERE path = %s",
        (f"{bad_quote.name}/staff_assignments.csv",),
    ) == [("loaded",)]


def test_a_week_confirms_every_bed_event_and_keeps_stream_columns(
    env: Settings, world: tuple[SimConfig, People]
) -> None:
    days = write_world(env, world, 7)
    events = [e for d in days for e in d.realtime]
    seen = events[5]
    with psycopg.connect(env.dsn("hospital", "hospital_app")) as conn:
        # The stream saw one event first: the batch must confirm it without touching its lineage.
        conn.execute(
            "INSERT INTO bed_events (event_id, kind, source_id, patient_id, occurred_at, "
            "event_date, seen_by_stream_at, stream_topic, stream_partition, stream_offset) "
            "VALUES (%s, %s, %s, %s, %s, %s, '2031-01-01T00:00:00Z', 'bed-events', 2, 77)",
            (
                seen.event_id,
                seen.kind,
                seen.source_id,
                seen.patient_id,
                seen.occurred_at,
                seen.occurred_at.date(),
            ),
        )
    report = ingest_pending(env)
    assert report.errors == [] and report.rows_rejected == 0
    got = rows(
        env,
        "SELECT event_id::text, kind, event_date, detail, seen_by_stream_at IS NOT NULL, "
        "batch_file FROM bed_events WHERE confirmed_by_batch_at IS NOT NULL",
    )
    assert len(got) == len(events) == len({e.event_id for e in events})
    by_id = {g[0]: g for g in got}
    assert set(by_id) == {e.event_id for e in events}
    for e in events:
        _, kind, event_date, detail, _, batch_file = by_id[e.event_id]
        assert kind == e.kind and event_date == e.occurred_at.date()
        assert detail == json.loads(json.dumps(e.detail)), e.event_id
        assert batch_file.endswith(f"/{e.kind}s.csv")
    per_kind: dict[str, int] = {}
    for e in events:
        per_kind[e.kind] = per_kind.get(e.kind, 0) + 1
    assert dict(rows(env, "SELECT kind, count(*) FROM bed_events GROUP BY kind")) == per_kind
    assert rows(
        env,
        "SELECT stream_topic, stream_partition, stream_offset FROM bed_events WHERE event_id = %s",
        (seen.event_id,),
    ) == [("bed-events", 2, 77)]
    assert scalar(env, "SELECT count(*) FROM bed_events WHERE seen_by_stream_at IS NULL") == (
        len(events) - 1
    )
    # Records of the week: every file row is in its table.
    n_transfers = sum(d.batch.transfers.height for d in days)
    assert scalar(env, "SELECT count(*) FROM transfers") == n_transfers
    n_orders = sum(d.batch.pharmacy_orders.height for d in days)
    assert scalar(env, "SELECT count(*) FROM pharmacy_orders") == n_orders
    discharged = {r for d in days for r in d.batch.discharges["admission_id"].to_list()}
    assert scalar(env, "SELECT count(*) FROM admissions WHERE discharged_at IS NOT NULL") == len(
        discharged
    )
    # The week's newborns joined the people that later files may name.
    born = sum(d.batch.births.height for d in days)
    assert born > 0
    assert scalar(env, "SELECT count(*) FROM people") == world[1].frame.height + born


def test_a_newborn_admitted_on_its_birthday_is_not_quarantined(
    env: Settings, world: tuple[SimConfig, People]
) -> None:
    """A baby born today may be admitted today: the drop's people.csv loads before admissions."""
    config, people = world
    writer.write_initial(env, config, people)
    events = day_events(next(simulate(config, people, config.origin, 1)))
    baby = str(events.batch.births["person_id"][0])
    admitted = events.batch.admissions.head(1).with_columns(
        pl.lit(str(uuid.uuid4())).alias("admission_id"), pl.lit(baby).alias("patient_id")
    )
    batch = replace(events.batch, admissions=pl.concat([events.batch.admissions, admitted]))
    writer.write_day(env, replace(events, batch=batch))
    report = ingest_pending(env)
    assert report.errors == [] and report.rows_rejected == 0
    assert scalar(env, "SELECT count(*) FROM admissions WHERE patient_id = %s", (baby,)) == 1


def test_export_csv_and_parquet_stream_and_refuse_injection(
    env: Settings, world: tuple[SimConfig, People], tmp_path: Path
) -> None:
    write_world(env, world, 1)
    ingest_pending(env)
    want = scalar(env, "SELECT count(*) FROM staff_assignments WHERE shift = 'night'")
    assert want > 0
    where = "shift = 'night'"
    csv_out = export_table(env, "staff_assignments", "csv", tmp_path / "a.csv", where)
    assert csv_out.rows == want
    assert pl.read_csv(tmp_path / "a.csv").height == want
    pq_out = export_table(env, "staff", "parquet", tmp_path / "p.parquet")
    frame = pl.read_parquet(tmp_path / "p.parquet")
    assert pq_out.rows == frame.height == scalar(env, "SELECT count(*) FROM staff")
    assert frame.schema["hire_date"] == pl.Date
    assert frame["staff_id"].n_unique() == frame.height
    for bad in (
        "true); DELETE FROM admissions; --",
        "nextval('batch_quarantine_quarantine_id_seq') > 0",
    ):
        with pytest.raises(ExportError):
            export_table(env, "admissions", "csv", tmp_path / "x.csv", bad)
    with pytest.raises(ExportError, match="no table"):
        export_table(env, "no_such_table", "csv", tmp_path / "x.csv")
    assert scalar(env, "SELECT count(*) FROM staff_assignments WHERE shift = 'night'") == want
    assert not (tmp_path / "x.csv").exists()
    cli = run_cli(
        env,
        "export",
        "people",
        "--format",
        "parquet",
        "--out",
        str(tmp_path / "t.parquet"),
        "--where",
        "sex = 'F' AND birth_date < '1980-01-01'",
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    n = scalar(env, "SELECT count(*) FROM people WHERE sex = 'F' AND birth_date < '1980-01-01'")
    assert n > 0
    assert f"{n:,} rows of people" in cli.stdout
    assert pl.read_parquet(tmp_path / "t.parquet").height == n
    bad = run_cli(env, "export", "people", "--out", str(tmp_path / "y.csv"), "--where", "1=1; --")
    assert bad.returncode == 2 and "Traceback" not in bad.stdout + bad.stderr


def test_watch_worker_loads_new_drops_and_stops_on_sigterm(
    env: Settings, world: tuple[SimConfig, People]
) -> None:
    import signal
    import time

    config, people = world
    writer.write_initial(env, config, people)
    child_env = {
        "PG_PORT": str(env.pg_port),
        "HOSPITAL_LAKE_DIR": str(env.lake_path),
        "HOSPITAL_STACK_DIR": str(env.stack_path),
        "BATCH_WATCH_SECONDS": "0.5",
        "COLUMNS": "300",
        "PATH": "/usr/bin:/bin",
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "hospital.cli", "batch", "ingest", "--watch"],
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        days = []
        for result in simulate(config, people, config.origin, 2):
            days.append(day_events(result))
        folder = writer.write_day(env, days[0])
        deadline = time.monotonic() + 60
        want = len(bf.INITIAL_FILES) + len(bf.Manifest.read(folder).files)
        while time.monotonic() < deadline:
            if scalar(env, "SELECT count(*) FROM batch_ledger WHERE status = 'loaded'") == want:
                break
            time.sleep(0.5)
        assert scalar(env, "SELECT count(*) FROM batch_ledger WHERE status = 'loaded'") == want
        # A drop that appears while the worker runs.
        want += len(bf.Manifest.read(writer.write_day(env, days[1])).files)
        while time.monotonic() < deadline:
            if scalar(env, "SELECT count(*) FROM batch_ledger") == want:
                break
            time.sleep(0.5)
        assert scalar(env, "SELECT count(*) FROM batch_ledger WHERE status = 'loaded'") == want
    finally:
        child.send_signal(signal.SIGTERM)
        out, err = child.communicate(timeout=60)
    assert child.returncode == 0, out + err
    assert "Traceback" not in out + err
    assert "loaded   date=" in out

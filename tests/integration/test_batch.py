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
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest

from hospital.batch import files as bf
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
TABLES = (
    "batch_ledger",
    "batch_quarantine",
    "bed_events",
    "staff_assignments",
    "staff",
    "departments",
    "people",
    "initial_census",
    "admissions",
    "transfers",
    "transports",
    "pharmacy_orders",
)


def truncate(settings: Settings) -> None:
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        conn.execute("TRUNCATE " + ", ".join(TABLES) + " CASCADE")


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
    for t in TABLES:
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
    write_world(env, world, 1)
    day = bf.day_folder(env.lake_path, world[0].origin)
    transfers = day / "transfers.csv"
    total = len(transfers.read_text().splitlines()) - 1
    edit_csv(
        transfers,
        {
            3: {"transfer_id": "not-a-uuid"},
            10: {"from_department": "NOWHERE", "transferred_at": "2020-02-30T10:00:00+00:00"},
            20: {"transfer_type": ""},
            21: {"patient_id": str(uuid.uuid4())},  # a person nobody knows
        },
    )
    rewrite_manifest(day, "transfers.csv")

    report = ingest_pending(env)
    assert report.errors == []
    by_file = {f.path: f for f in report.files}
    result = by_file[f"{day.name}/transfers.csv"]
    assert (result.rows_loaded, result.rows_rejected) == (total - 4, 4)
    assert scalar(env, "SELECT count(*) FROM transfers") == total - 4
    quarantined = rows(
        env,
        "SELECT line, column_name, reason FROM batch_quarantine "
        "WHERE file = %s ORDER BY line, column_name",
        (f"{day.name}/transfers.csv",),
    )
    assert quarantined == [
        (5, "transfer_id", "not a UUID"),
        (12, "from_department", "unknown in departments"),
        (12, "transferred_at", "not a valid timestamp with UTC offset"),
        (22, "transfer_type", "required value missing"),
        (23, "patient_id", "unknown in people"),
    ]
    # Every other file of the drop and the initial load loaded whole.
    assert all(f.status == "loaded" for f in report.files)
    assert scalar(env, "SELECT count(*) FROM departments") == 10
    assert scalar(env, "SELECT count(*) FROM people") == 20_000
    ledger = rows(
        env,
        "SELECT rows_loaded, rows_rejected, status FROM batch_ledger WHERE path = %s",
        (f"{day.name}/transfers.csv",),
    )
    assert ledger == [(total - 4, 4, "loaded")]
    metrics = scalar(
        env,
        "SELECT sum(value) FROM pipeline_metrics WHERE path = 'batch' "
        "AND metric = 'rows_quarantined' AND sim_day = %s",
        (world[0].origin,),
    )
    assert metrics >= 4

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
    path = day / "transports.csv"
    old_sha = bf.sha256_file(path)
    edit_csv(path, {0: {"priority": "P3" if "P1" in path.read_text() else "P1"}})
    rewrite_manifest(day, "transports.csv")
    new_sha = bf.sha256_file(path)
    before = snapshot(env)

    report = ingest_pending(env)
    refused = [f for f in report.files if f.status == "refused"]
    assert len(refused) == 1
    assert old_sha in (refused[0].error or "") and new_sha in (refused[0].error or "")
    assert "transports.csv" in (refused[0].error or "")
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
    write_world(env, world, 2)
    day1 = bf.day_folder(env.lake_path, world[0].origin)
    day2 = bf.day_folder(env.lake_path, date.fromordinal(world[0].origin.toordinal() + 1))
    # 1. checksum mismatch: the file changed, the manifest did not
    data = (day1 / "admissions.csv").read_bytes()
    (day1 / "admissions.csv").write_bytes(data.replace(b",admitted,", b",admitteD,", 1))
    # 2. truncated in the middle of a line (manifest rewritten so only the CSV check sees it)
    t = (day1 / "transfers.csv").read_bytes()
    (day1 / "transfers.csv").write_bytes(t[: len(t) - 25])
    rewrite_manifest(day1, "transfers.csv")
    # 3. wrong header
    tp = (day1 / "transports.csv").read_text().split("\n", 1)
    (day1 / "transports.csv").write_text(tp[0].replace("priority", "prio") + "\n" + tp[1])
    rewrite_manifest(day1, "transports.csv")
    # 4. not UTF-8 in the middle of the file
    po = (day1 / "pharmacy_orders.csv").read_bytes().split(b"\n")
    po[7] = po[7].replace(b"dispensed", b"dispens\xe9d")
    (day1 / "pharmacy_orders.csv").write_bytes(b"\n".join(po))
    rewrite_manifest(day1, "pharmacy_orders.csv")
    # 5. empty file
    (day1 / "discharges.csv").write_bytes(b"")
    rewrite_manifest(day1, "discharges.csv")
    # 6. a drop without manifest; 7. a CSV with a broken quote
    (day2 / bf.MANIFEST).unlink()
    day3 = writer.write_drop(
        bf.day_folder(env.lake_path, date(2030, 1, 1)),
        {"transports.csv": pl.read_csv(day2 / "transports.csv", infer_schema=False)},
    )
    (day3 / "transports.csv").write_text(
        (day3 / "transports.csv").read_text().replace(",P", ',"P', 1)
    )
    rewrite_manifest(day3, "transports.csv")

    report = ingest_pending(env)
    status = {f.path: (f.status, f.error or "") for f in report.files}
    expected = {
        f"{day1.name}/admissions.csv": "manifest checksum mismatch",
        f"{day1.name}/transfers.csv": "truncated",
        f"{day1.name}/transports.csv": "wrong or missing header",
        f"{day1.name}/pharmacy_orders.csv": "invalid byte sequence",
        f"{day1.name}/discharges.csv": "empty file",
        f"{day2.name}/manifest.json": "manifest missing",
        f"{day3.name}/transports.csv": "rejected",
    }
    for rel, fragment in expected.items():
        state, error = status[rel]
        assert state == "rejected", (rel, state, error)
        assert fragment in error, (rel, error)
        assert rel.split("/")[1] in error  # the message names the file
    assert status[f"{day1.name}/staff_assignments.csv"][0] == "loaded"
    assert (
        scalar(
            env, "SELECT count(*) FROM staff_assignments WHERE work_date = %s", (world[0].origin,)
        )
        > 0
    )
    assert scalar(env, "SELECT count(*) FROM transports") == 0
    assert scalar(env, "SELECT count(*) FROM pharmacy_orders") == 0
    # Rejections are recorded once, in the ledger and the quarantine.
    assert scalar(env, "SELECT count(*) FROM batch_ledger WHERE status = 'rejected'") == len(
        expected
    )
    assert scalar(env, "SELECT count(*) FROM batch_quarantine WHERE line IS NULL") == len(expected)
    again = ingest_pending(env)
    assert again.rejected == 0 and again.loaded == 0
    assert scalar(env, "SELECT count(*) FROM batch_quarantine WHERE line IS NULL") == len(expected)

    # A fixed file (new checksum) is ingested on the next run.
    rebuilt = pl.read_csv(day2 / "transports.csv", infer_schema=False)
    fixed = writer.write_drop(day2.with_name("date=2030-01-02"), {"transports.csv": rebuilt})
    assert ingest_pending(env).loaded == 1
    assert scalar(env, "SELECT count(*) FROM transports") == rebuilt.height
    assert fixed.exists()


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


def test_export_csv_and_parquet_stream_and_refuse_injection(
    env: Settings, world: tuple[SimConfig, People], tmp_path: Path
) -> None:
    write_world(env, world, 1)
    ingest_pending(env)
    want = scalar(env, "SELECT count(*) FROM admissions WHERE department_code = 'ICU'")
    assert want > 0
    where = "department_code = 'ICU'"
    csv_out = export_table(env, "admissions", "csv", tmp_path / "a.csv", where)
    assert csv_out.rows == want
    assert pl.read_csv(tmp_path / "a.csv").height == want
    pq_out = export_table(env, "pharmacy_orders", "parquet", tmp_path / "p.parquet")
    frame = pl.read_parquet(tmp_path / "p.parquet")
    assert pq_out.rows == frame.height == scalar(env, "SELECT count(*) FROM pharmacy_orders")
    assert frame.schema["quantity"] == pl.Int32
    assert frame["order_id"].n_unique() == frame.height
    for bad in (
        "true); DELETE FROM admissions; --",
        "nextval('batch_quarantine_quarantine_id_seq') > 0",
    ):
        with pytest.raises(ExportError):
            export_table(env, "admissions", "csv", tmp_path / "x.csv", bad)
    with pytest.raises(ExportError, match="no table"):
        export_table(env, "no_such_table", "csv", tmp_path / "x.csv")
    assert scalar(env, "SELECT count(*) FROM admissions WHERE department_code = 'ICU'") == want
    assert not (tmp_path / "x.csv").exists()
    cli = run_cli(
        env,
        "export",
        "transfers",
        "--format",
        "parquet",
        "--out",
        str(tmp_path / "t.parquet"),
        "--where",
        "transfer_type = 'ward_movement'",
    )
    assert cli.returncode == 0, cli.stdout + cli.stderr
    n = scalar(env, "SELECT count(*) FROM transfers WHERE transfer_type = 'ward_movement'")
    assert f"{n:,} rows of transfers" in cli.stdout

"""Batch ingest benchmark: full ingest of a 1,000,000-row CSV vs ``psql \\copy`` vs ORM inserts.

Run (against a running stack): ``uv run python bench/batch.py [--rows N] [--orm-rows N]
[--runs N]``. Writes ``bench/results/batch.json``.

- **ours**: ``hospital.batch.ingest.ingest_pending`` on a drop holding one ``pharmacy_orders.csv``
  (manifest checksum + header check, then, ``pharmacy_orders`` being emptied before each run,
  the direct fast path: table locked, primary key dropped, COPY straight into
  ``pharmacy_orders`` with the file hashed and its timestamps' first bytes checked in flight,
  validation in SQL of the new rows including the references to people and staff as
  anti-joins, primary key rebuilt, ledger + metrics), committed (``synchronous_commit`` on).
  A clean file of new records takes a fast path (direct when the table holds no more rows
  than the file, typed otherwise); the strict path (text staging, quarantine) is what a file
  with bad rows takes, not measured here.
- **\\copy** (the physical limit): ``psql -c "\\copy ..."`` of the same file into a bare table
  with the same columns (no key, no checks), committed.
- **ORM**: SQLAlchemy ORM, one mapped object per row of the first ``--orm-rows`` rows of the
  same file (values parsed in Python), ``session.add`` each, one commit, into ``pharmacy_orders``.
  SQLAlchemy 2 flushes these as batched multi-row INSERTs ("insertmanyvalues"), the same as
  ``session.add_all``: what a competent ORM user writes; no per-row round trips.

Each run empties the target tables first; row counts are checked after every run. Sides
alternate within each run; medians of ``--runs`` runs are reported with the load average.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import DateTime, Integer, String, Uuid, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from hospital.batch import files as bf
from hospital.batch import writer
from hospital.batch.ingest import ingest_pending
from hospital.settings import Settings, get_settings
from hospital.simulator.api import build_population
from hospital.simulator.config import SimConfig

RESULTS = Path(__file__).parent / "results" / "batch.json"
BARE = "bench_batch_bare"


class Base(DeclarativeBase):
    pass


class PharmacyOrder(Base):
    __tablename__ = "pharmacy_orders"
    order_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    medication_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    drug_code: Mapped[str] = mapped_column(String)
    quantity: Mapped[int] = mapped_column(Integer)
    ordered_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    ordered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dispensed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def orders_frame(n: int, patients: list[str], staff: list[str], seed: int) -> pl.DataFrame:
    """``n`` pharmacy orders referring to real people and staff (what a busy year looks like)."""
    rng = random.Random(seed)
    base = datetime(2020, 1, 1, tzinfo=UTC)
    drugs = ["PARA", "IBU", "AMOX", "CEFTR", "METF", "ENAL", "FURO", "ATOR", "MORPH", "TLD"]
    ordered = [base + timedelta(seconds=rng.randrange(365 * 86_400)) for _ in range(n)]
    dispensed = [t + timedelta(minutes=rng.randrange(5, 120)) for t in ordered]
    return pl.DataFrame(
        {
            "order_id": [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)],
            "patient_id": [rng.choice(patients) for _ in range(n)],
            "medication_id": [
                str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)
            ],
            "drug_code": [rng.choice(drugs) for _ in range(n)],
            "quantity": [rng.randrange(1, 60) for _ in range(n)],
            "ordered_by": [rng.choice(staff) for _ in range(n)],
            "ordered_at": ordered,
            "dispensed_at": dispensed,
            "status": ["dispensed"] * n,
            "updated_at": dispensed,
        }
    )


def _count(settings: Settings, table: str) -> int:
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0


def _exec(settings: Settings, statement: str) -> None:
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        conn.execute(statement)


def run_ours(settings: Settings, source: Path, entry: bf.ManifestEntry, run: int) -> float:
    """One full ingest of ``source`` as a new drop (a new ledger path each run)."""
    _exec(settings, "TRUNCATE pharmacy_orders")
    folder = bf.day_folder(settings.lake_path, datetime(2099, 1, 1 + run, tzinfo=UTC).date())
    folder.mkdir(parents=True)
    os.link(source, folder / "pharmacy_orders.csv")
    manifest = bf.Manifest(drop=folder.name, files={entry.file: entry})
    (folder / bf.MANIFEST).write_text(manifest.to_json())
    t = time.perf_counter()
    report = ingest_pending(settings)
    seconds = time.perf_counter() - t
    if report.errors or report.rows_loaded != entry.rows or report.rows_rejected:
        raise SystemExit(f"ours did different work: {report.as_dict()}")
    return seconds


def run_copy(settings: Settings, source: Path, rows: int) -> float:
    _exec(settings, f"DROP TABLE IF EXISTS {BARE}")
    _exec(settings, f"CREATE TABLE {BARE} (LIKE pharmacy_orders)")
    env = dict(os.environ, PGPASSWORD=settings.password("hospital_app"))
    cmd = [
        "psql", "-X", "-q", "-h", settings.host, "-p", str(settings.pg_port),
        "-U", "hospital_app", "-d", "hospital", "-v", "ON_ERROR_STOP=1",
        "-c", f"\\copy {BARE} FROM '{source}' WITH (FORMAT csv, HEADER true)",
    ]  # fmt: skip
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True)
    seconds = time.perf_counter() - t
    if _count(settings, BARE) != rows:
        raise SystemExit("\\copy did different work")
    return seconds


def _ts(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def run_orm(settings: Settings, source: Path, rows: int) -> float:
    _exec(settings, "TRUNCATE pharmacy_orders")
    engine = create_engine(settings.sqlalchemy_url("hospital", "hospital_app"))
    t = time.perf_counter()
    with source.open(newline="") as fh, Session(engine) as session:
        for i, rec in enumerate(csv.DictReader(fh)):
            if i == rows:
                break
            session.add(
                PharmacyOrder(
                    order_id=uuid.UUID(rec["order_id"]),
                    patient_id=uuid.UUID(rec["patient_id"]),
                    medication_id=uuid.UUID(rec["medication_id"]) if rec["medication_id"] else None,
                    drug_code=rec["drug_code"],
                    quantity=int(rec["quantity"]),
                    ordered_by=uuid.UUID(rec["ordered_by"]) if rec["ordered_by"] else None,
                    ordered_at=_ts(rec["ordered_at"]),
                    dispensed_at=_ts(rec["dispensed_at"]),
                    status=rec["status"],
                    updated_at=_ts(rec["updated_at"]),
                )
            )
        session.commit()
    seconds = time.perf_counter() - t
    engine.dispose()
    if _count(settings, "pharmacy_orders") != rows:
        raise SystemExit("ORM did different work")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--orm-rows", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    base = get_settings()
    lake = base.lake_path / "bench-batch"
    shutil.rmtree(lake, ignore_errors=True)
    settings = base.model_copy(update={"lake_dir": lake})
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        conn.execute(
            "TRUNCATE batch_ledger, batch_quarantine, staff_assignments, staff, departments, "
            "people, initial_census, pharmacy_orders CASCADE"
        )
    # Reference data (departments, staff, people) through the batch path itself.
    config = SimConfig.from_settings(settings, num_people=20_000, seed=1)
    people = build_population(config)
    writer.write_initial(settings, config, people)
    ingest_pending(settings)
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        staff = [str(r[0]) for r in conn.execute("SELECT staff_id FROM staff").fetchall()]
    frame = orders_frame(args.rows, people.frame["person_id"].to_list(), staff, seed=2)
    source = lake / "orders.csv"
    frame.write_csv(source)
    entry = bf.ManifestEntry("pharmacy_orders.csv", frame.height, bf.sha256_file(source))
    size_mb = source.stat().st_size / 1e6
    del frame

    load_start = os.getloadavg()
    ours: list[float] = []
    copy: list[float] = []
    orm: list[float] = []
    for run in range(args.runs):  # alternating, so every side sees the same machine load
        ours.append(run_ours(settings, source, entry, run))
        copy.append(run_copy(settings, source, args.rows))
        orm.append(run_orm(settings, source, args.orm_rows))
    load_end = os.getloadavg()
    _exec(settings, f"DROP TABLE IF EXISTS {BARE}")
    _exec(settings, "TRUNCATE pharmacy_orders")
    shutil.rmtree(lake, ignore_errors=True)

    ours_rate = args.rows / statistics.median(ours)
    copy_rate = args.rows / statistics.median(copy)
    orm_rate = args.orm_rows / statistics.median(orm)
    metrics = {
        "rows": args.rows,
        "csv_mb": round(size_mb, 1),
        "runs": args.runs,
        "ingest_seconds_median": round(statistics.median(ours), 3),
        "ingest_seconds_all_runs": [round(x, 3) for x in ours],
        "ingest_rows_per_s": round(ours_rate),
        "loadavg_1m_5m_15m_start": [round(x, 2) for x in load_start],
        "loadavg_1m_5m_15m_end": [round(x, 2) for x in load_end],
        "cpu_count": os.cpu_count(),
        "machine_shared": True,
    }
    baseline = {
        "psql_copy_seconds_median": round(statistics.median(copy), 3),
        "psql_copy_seconds_all_runs": [round(x, 3) for x in copy],
        "psql_copy_rows_per_s": round(copy_rate),
        "orm_rows": args.orm_rows,
        "orm_seconds_median": round(statistics.median(orm), 3),
        "orm_seconds_all_runs": [round(x, 3) for x in orm],
        "orm_rows_per_s": round(orm_rate),
    }
    # Paired ratios: each run's sides ran back to back, so they saw the same machine load; on a
    # shared machine their median is steadier than the ratio of the per-side medians.
    paired_copy = [c / o for o, c in zip(ours, copy, strict=True)]
    paired_orm = [(args.rows / o) / (args.orm_rows / m) for o, m in zip(ours, orm, strict=True)]
    ratios = {
        "ratio_vs_copy": round(ours_rate / copy_rate, 3),
        "ratio_vs_orm": round(ours_rate / orm_rate, 1),
        "ratio_vs_copy_paired_median": round(statistics.median(paired_copy), 3),
        "ratio_vs_copy_paired_all_runs": [round(x, 3) for x in paired_copy],
        "ratio_vs_orm_paired_median": round(statistics.median(paired_orm), 1),
        "ratio_vs_orm_paired_all_runs": [round(x, 1) for x in paired_orm],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "batch",
                "rule": "same CSV, both commit, same run alternating, median of runs",
                "metrics": metrics,
                "baseline": baseline,
                "ratios": ratios,
            },
            indent=2,
        )
        + "\n"
    )
    table = Table(title="batch ingest")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in {**metrics, **baseline, **ratios}.items():
        table.add_row(key, f"{value:,}" if isinstance(value, int | float) else str(value))
    Console().print(table)


if __name__ == "__main__":
    main()

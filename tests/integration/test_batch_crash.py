"""kill -9 of a real ingest process (and of a writer) at random points: nothing half-loaded."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from hospital.batch import files as bf
from hospital.batch import writer
from hospital.batch.ingest import ingest_pending
from hospital.settings import Settings
from hospital.simulator.config import SimConfig
from hospital.simulator.population import People
from tests.integration.test_batch import env, rows, scalar, world, write_world

pytestmark = pytest.mark.integration
__all__ = ["env", "world"]  # fixtures shared with test_batch

CHECKED = {
    "transfers.csv": "transfers",
    "transports.csv": "transports",
    "pharmacy_orders.csv": "pharmacy_orders",
}


def _child_env(settings: Settings) -> dict[str, str]:
    return {
        "PG_PORT": str(settings.pg_port),
        "HOSPITAL_LAKE_DIR": str(settings.lake_path),
        "HOSPITAL_STACK_DIR": str(settings.stack_path),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }


INGEST = (
    "from hospital.settings import load_settings\n"
    "from hospital.batch.ingest import ingest_pending\n"
    "ingest_pending(load_settings())\n"
)


def _keys(lake: Path) -> dict[str, list[str]]:
    """Ids of every checked file, by ledger path."""
    out = {}
    for drop in bf.list_drops(lake):
        for name in CHECKED:
            path = drop / name
            if path.exists():
                out[f"{drop.name}/{name}"] = pl.read_csv(path, infer_schema=False)[:, 0].to_list()
    return out


def _check_all_or_nothing(settings: Settings, keys: dict[str, list[str]]) -> int:
    """Each checked file is either loaded whole and in the ledger, or absent from both."""
    loaded = {r[0] for r in rows(settings, "SELECT path FROM batch_ledger WHERE status = 'loaded'")}
    for rel, ids in keys.items():
        table = CHECKED[rel.split("/")[1]]
        key = {
            "transfers": "transfer_id",
            "transports": "transport_id",
            "pharmacy_orders": "order_id",
        }[table]
        present = scalar(
            settings, f"SELECT count(*) FROM {table} WHERE {key}::text = ANY(%s)", (ids,)
        )
        events = scalar(settings, "SELECT count(*) FROM bed_events WHERE batch_file = %s", (rel,))
        if rel in loaded:
            assert present == len(ids), rel
            assert events == (0 if table == "pharmacy_orders" else len(ids)), rel
        else:
            assert present == 0, (rel, present)
            assert events == 0, rel
    quarantined = rows(settings, "SELECT file, line, column_name, reason FROM batch_quarantine")
    assert quarantined == []
    return len(loaded)


def test_kill_9_mid_ingest_leaves_nothing_half_loaded(
    env: Settings, world: tuple[SimConfig, People]
) -> None:
    days = write_world(env, world, 3)
    orders = days[-1].batch.pharmacy_orders
    copies = 40_000 // max(orders.height, 1) + 1
    rng = random.Random(6)
    progress = []
    big_rows = 0
    for i in range(6):
        # A fresh big file before every kill, so each kill lands inside some file's
        # COPY / validation / merge / commit rather than after the work is done.
        big = pl.concat([orders] * copies).with_columns(
            pl.Series("order_id", [str(uuid.uuid4()) for _ in range(orders.height * copies)])
        )
        big_day = days[-1].day + timedelta(days=1 + i)
        writer.write_drop(bf.day_folder(env.lake_path, big_day), {"pharmacy_orders.csv": big})
        big_rows += big.height
        keys = _keys(env.lake_path)
        child = subprocess.Popen(
            [sys.executable, "-c", INGEST],
            env=_child_env(env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.8, 4.0))
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        progress.append(_check_all_or_nothing(env, keys))
    files_total = sum(len(bf.Manifest.read(d).files) for d in bf.list_drops(env.lake_path))
    print(f"files loaded after each kill: {progress} of {files_total}")
    report = ingest_pending(env)
    assert report.errors == []
    assert _check_all_or_nothing(env, keys) == files_total
    assert scalar(env, "SELECT count(*) FROM pharmacy_orders") == big_rows + sum(
        d.batch.pharmacy_orders.height for d in days
    )
    assert scalar(env, "SELECT count(*) FROM bed_events") == sum(len(d.realtime) for d in days)
    # Every file is recorded once, loaded once.
    assert scalar(env, "SELECT count(*) FROM batch_ledger") == files_total
    assert progress != [files_total] * len(progress)  # at least one kill came before the end


def test_kill_9_of_a_writer_never_exposes_a_partial_drop(
    env: Settings, world: tuple[SimConfig, People]
) -> None:
    config = world[0]
    code = (
        "from hospital.settings import load_settings\n"
        "from hospital.batch import writer\n"
        "from hospital.simulator.api import build_population\n"
        "from hospital.simulator.config import SimConfig\n"
        "s = load_settings()\n"
        f"c = SimConfig.from_settings(s, num_people={config.num_people}, seed={config.seed})\n"
        "writer.write_days(s, c, build_population(c), None, 4)\n"
    )
    rng = random.Random(7)
    for _ in range(3):
        child = subprocess.Popen(
            [sys.executable, "-c", code],
            env=_child_env(env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(1.0, 3.5))
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        for drop in bf.list_drops(env.lake_path):
            manifest = bf.Manifest.read(drop)  # every visible drop is complete
            for entry in manifest.files.values():
                assert bf.sha256_file(drop / entry.file) == entry.sha256
    report = ingest_pending(env)
    assert report.errors == []
    assert all(f.status == "loaded" for f in report.files)

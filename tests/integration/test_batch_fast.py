"""The fast path (typed COPY, one check pass, sorted insert) against the strict path.

Whatever path a file takes, the tables end the same: a clean file loads identically both ways,
and every case the fast path must not decide (a rule that fires, a timestamp word, a key
already loaded, a key twice in the file) falls back to the strict path and its quarantine.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from hospital.batch import fast as fastpath
from hospital.batch import ingest
from hospital.settings import Settings
from hospital.simulator.api import build_population
from hospital.simulator.config import SimConfig
from tests.integration.test_batch import edit_csv, rewrite_manifest, rows, truncate, write_world

pytestmark = pytest.mark.integration

SEED = 909
ORDERS = "SELECT * FROM pharmacy_orders ORDER BY order_id"


@pytest.fixture
def env(stack: Settings) -> Iterator[Settings]:
    lake = stack.lake_path / "batch-fast-tests" / uuid.uuid4().hex[:10]
    truncate(stack)
    yield stack.model_copy(update={"lake_dir": lake})
    truncate(stack)


@pytest.fixture
def fast_results(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """(file, whether the fast path loaded it) for every file that tried it."""
    seen: list[tuple[str, bool]] = []
    real = ingest._fast_load

    def spy(conn: Any, path: Any, rel: str, *args: Any) -> ingest.FileResult | None:
        out = real(conn, path, rel, *args)
        seen.append((rel, out is not None))
        return out

    monkeypatch.setattr(ingest, "_fast_load", spy)
    return seen


def test_clean_file_loads_the_same_by_both_paths(
    env: Settings, fast_results: list[tuple[str, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SimConfig.from_settings(env, num_people=20_000, seed=SEED)
    write_world(env, (config, build_population(config)), 2)
    report = ingest.ingest_pending(env)
    assert report.errors == [] and report.rows_rejected == 0
    fast_files = {rel for rel, ok in fast_results if ok}
    orders = [f for f in fast_files if f.endswith("pharmacy_orders.csv")]
    assert len(orders) == 2 and any(f.endswith("people.csv") for f in fast_files)
    by_fast = rows(env, ORDERS)
    assert len(by_fast) > 10
    ledger_fast = rows(
        env,
        "SELECT path, rows_staged, rows_loaded, rows_rejected, sha256 "
        "FROM batch_ledger ORDER BY path",
    )

    # Same files again, strict path only: the same rows, the same ledger figures.
    with psycopg.connect(env.dsn("hospital", "hospital_app")) as conn:
        conn.execute("TRUNCATE pharmacy_orders")
        conn.execute("DELETE FROM batch_ledger WHERE path LIKE '%%pharmacy_orders.csv'")
    monkeypatch.setattr(fastpath, "build", lambda spec, people_known: None)
    again = ingest.ingest_pending(env)
    assert again.loaded == 2 and again.errors == []
    assert rows(env, ORDERS) == by_fast
    assert (
        rows(
            env,
            "SELECT path, rows_staged, rows_loaded, rows_rejected, sha256 "
            "FROM batch_ledger ORDER BY path",
        )
        == ledger_fast
    )


def test_what_the_fast_path_cannot_decide_goes_the_strict_way(
    env: Settings, fast_results: list[tuple[str, bool]]
) -> None:
    config = SimConfig.from_settings(env, num_people=20_000, seed=SEED)
    write_world(env, (config, build_population(config)), 2)
    first, second = sorted(p for p in env.lake_path.glob("batch/date=*") if p.is_dir())
    name = "pharmacy_orders.csv"
    text = (first / name).read_text().splitlines()
    n = len(text) - 1
    assert n >= 6
    # Day 1: a timestamp word the cast would take, an unknown patient, a key twice.
    dup_key = text[1].split(",", 1)[0]
    edit_csv(
        first / name,
        {
            1: {"ordered_at": "now"},
            2: {"patient_id": str(uuid.uuid4())},
            4: {"order_id": dup_key},
        },
    )
    rewrite_manifest(first, name)
    # Day 2: resends the first valid order of day 1 with a new quantity (a key already loaded).
    resent = (first / name).read_text().splitlines()[1].split(",")
    resent[4] = "999"
    lines = (second / name).read_text().splitlines()
    (second / name).write_text("\n".join([*lines, ",".join(resent)]) + "\n")
    rewrite_manifest(second, name)

    report = ingest.ingest_pending(env)
    assert report.errors == []
    rel1, rel2 = f"{first.name}/{name}", f"{second.name}/{name}"
    assert (rel1, False) in fast_results and (rel2, False) in fast_results
    by_file = {f.path: f for f in report.files}
    assert (by_file[rel1].rows_loaded, by_file[rel1].rows_rejected) == (n - 3, 3)
    assert rows(
        env,
        "SELECT line, column_name, reason FROM batch_quarantine WHERE file = %s "
        "ORDER BY line, column_name",
        (rel1,),
    ) == [
        (3, "ordered_at", "not a valid timestamp (ISO 8601)"),
        (4, "patient_id", "unknown in people"),
        (6, "order_id", "duplicate key, first at line 2"),
    ]
    # The resend updated the order loaded the day before; the refused rows never loaded.
    assert rows(env, "SELECT quantity FROM pharmacy_orders WHERE order_id = %s", (dup_key,)) == [
        (999,)
    ]
    refused = [text[2].split(",", 1)[0], text[3].split(",", 1)[0]]
    assert rows(
        env, "SELECT count(*) FROM pharmacy_orders WHERE order_id = ANY(%s::uuid[])", (refused,)
    ) == [(0,)]
    assert (by_file[rel2].rows_loaded, by_file[rel2].rows_rejected) == (len(lines), 0)

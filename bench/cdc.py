"""CDC benchmark: our applier vs Debezium's tuned JDBC sink on the same topics; latency; capture.

Run against a running stack: ``uv run python bench/cdc.py [--changes N] [--runs N]``.
Writes ``bench/results/cdc.json``.

1. Debezium capture rate: the source is paused while the simulator writes >= N changes into
   the EHR, then resumed; changes / seconds until the slot confirmed the EHR's LSN.
2. Apply throughput on the SAME pre-filled topics, each run from offset 0 into emptied tables:
   our applier (public schema) and the JDBC sink (cdc_jdbc schema), both committing to the
   same PostgreSQL with the same durability (synchronous_commit on). Median of ``--runs``.
3. End-to-end latency at a fixed offered load (default 1,000 changes/s: 10 transactions of 100
   inserts a second) from EHR commit to visible in the mirror, with the applier as a worker.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from hospital.cdc import applier, connector
from hospital.cdc.catalog import JDBC_SCHEMA, load_specs
from hospital.cdc.reconcile import reconcile_cdc, wait_for_capture
from hospital.scheduler.supervisor import settings_env
from hospital.settings import Settings, load_settings
from hospital.simulator.api import apply_range, build_population
from hospital.simulator.config import SimConfig
from hospital.simulator.ehr_writer import truncate_ehr

RESULTS = Path(__file__).parent / "results" / "cdc.json"
ROOT = Path(__file__).resolve().parents[1]


def bench_settings(**extra: object) -> Settings:
    return load_settings(
        cdc_connector_name="bench-cdc",
        cdc_jdbc_connector_name="bench-cdc-jdbc",
        cdc_topic_prefix="benchcdc",
        cdc_slot_name="bench_cdc",
        cdc_group="bench-cdc-applier",
        cdc_dlq_topic="benchcdc.dlq",
        cdc_idle_seconds=0.5,
        **extra,
    )


def _put(s: Settings, path: str) -> None:
    import httpx

    httpx.put(f"{s.connect_url}/connectors/{s.cdc_connector_name}/{path}", timeout=30)


def fill(s: Settings, changes: int, seed: int) -> tuple[int, float]:
    """Write >= ``changes`` simulator changes with the source paused; (changes, capture s)."""
    config = SimConfig.from_settings(s, seed=seed, num_people=500_000)
    people = build_population(config)
    _put(s, "pause")
    time.sleep(2)
    report = apply_range(s, config, people, None, 3)
    written = sum(w.inserted + w.updated + w.deleted for w in report.writes)
    print(f"  simulator changes written: {written:,}", flush=True)
    # Top up to >= N with inserts, then one update each, then deletes of a tenth, in 5,000-row
    # transactions: the simulator scales visits with the population (~60 a day for 500,000
    # people), so its days alone would take far too long to reach N on this machine.
    rest = max(changes - written, 0)
    # n inserts + n updates + n // 10 deletes >= rest (rounded up, so the total is never short).
    n = max(-(-rest * 10 // 21) + 10, 1)
    with psycopg.connect(s.dsn("ehr", "ehr_writer"), autocommit=True) as ehr:
        for lo in range(0, n, 5000):
            hi = min(lo + 5000, n)
            ehr.execute(
                "INSERT INTO patients (patient_id, national_id, first_name, last_name, sex,"
                " birth_date, city, created_at, updated_at) SELECT gen_random_uuid(),"
                " 'T' || lpad(g::text, 12, '0'), 'Bench', 'Throughput', 'M', '1985-06-01',"
                " 'Soweto', now(), now() FROM generate_series(%s::int, %s::int) g",
                (lo, hi - 1),
            )
            written += hi - lo
        for lo in range(0, n, 5000):
            cur = ehr.execute(
                "UPDATE patients SET city = 'Alexandra', updated_at = now()"
                " WHERE national_id >= %s AND national_id < %s",
                (f"T{lo:012d}", f"T{lo + 5000:012d}"),
            )
            written += max(cur.rowcount, 0)
        cur = ehr.execute(
            "DELETE FROM patients WHERE national_id >= 'T' AND national_id < %s",
            (f"T{n // 10:012d}",),
        )
        written += max(cur.rowcount, 0)
    print(f"  with synthetic inserts/updates/deletes: {written:,}", flush=True)
    started = time.perf_counter()
    _put(s, "resume")
    _, ok = wait_for_capture(s, 1800)
    assert ok, "capture did not finish"
    return written, time.perf_counter() - started


def _empty_public(s: Settings) -> None:
    with psycopg.connect(s.dsn("hospital", "hospital_app")) as conn:
        tables = list(load_specs(s, ensure_lineage=False))
        conn.execute("TRUNCATE " + ", ".join(tables) + ", cdc_deleted_keys, cdc_truncations")
        conn.execute("DELETE FROM cdc_offsets WHERE consumer_group = %s", (s.cdc_group,))


def table_messages(s: Settings) -> dict[tuple[str, int], int]:
    """High watermarks of the table topics (the heartbeat topic changes no table)."""
    topics = {t: p for t, p in connector.cdc_topics(s).items() if not t.endswith(".cdc_heartbeat")}
    return connector.high_watermarks(s, topics)


def run_applier(s: Settings) -> float:
    _empty_public(s)
    n = sum(table_messages(s).values())
    report = applier.run(s, until_idle=True)
    busy = report.seconds - s.cdc_idle_seconds
    return n / busy


def run_jdbc(s: Settings, n: int) -> float:
    with psycopg.connect(s.dsn("hospital", "hospital_app")) as conn:
        for (table,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (JDBC_SCHEMA,)
        ).fetchall():
            conn.execute(f'DROP TABLE {JDBC_SCHEMA}."{table}"')
    run = load_settings(**{**_explicit(s), "cdc_jdbc_connector_name": f"bench-cdc-jdbc-{n}"})
    highs = table_messages(run)
    from hospital.stack.connect import ConnectClient

    client = ConnectClient(run.connect_url)
    started = time.perf_counter()
    client.put_connector(run.cdc_jdbc_connector_name, connector.jdbc_config(run))
    group = connector.jdbc_group(run)
    while True:
        done = connector.group_offsets(run, group)
        if all(done.get(tp, 0) >= h for tp, h in highs.items()):
            break
        time.sleep(0.25)
    seconds = time.perf_counter() - started
    connector.remove(run, run.cdc_jdbc_connector_name)
    return sum(highs.values()) / seconds


def _explicit(s: Settings) -> dict[str, object]:
    return {k: getattr(s, k) for k in s.model_fields_set}


def latency(s: Settings, rate: int, seconds: float) -> dict[str, float]:
    """p50/p99 ms from EHR commit to visible in the mirror at ``rate`` changes/s."""
    per_tx = 100
    env = {**os.environ, **settings_env(s)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "hospital.cli", "cdc", "apply"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    hosp = psycopg.connect(s.dsn("hospital", "hospital_app"), autocommit=True)
    hosp.execute("CREATE INDEX IF NOT EXISTS bench_cdc_national_id ON patients (national_id)")
    committed: dict[int, float] = {}
    visible: dict[int, float] = {}
    stop = threading.Event()

    def poll() -> None:
        with psycopg.connect(s.dsn("hospital", "hospital_app"), autocommit=True) as conn:
            seen = -1
            while not stop.is_set():
                row = conn.execute(
                    "SELECT max(national_id) FROM patients"
                    " WHERE national_id >= 'L' AND national_id < 'M'"
                ).fetchone()
                now = time.perf_counter()
                top = int(row[0][1:9]) if row and row[0] else -1
                for seq in range(seen + 1, top + 1):
                    visible[seq] = now
                seen = max(seen, top)
                time.sleep(0.01)

    time.sleep(5)  # worker up and assigned
    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    txs = int(rate * seconds / per_tx)
    interval = per_tx / rate
    with psycopg.connect(s.dsn("ehr", "ehr_writer"), autocommit=True) as ehr:
        t0 = time.perf_counter()
        for seq in range(txs):
            target = t0 + seq * interval
            time.sleep(max(target - time.perf_counter(), 0))
            ehr.execute(
                "INSERT INTO patients (patient_id, national_id, first_name, last_name, sex,"
                " birth_date, created_at, updated_at) SELECT gen_random_uuid(),"
                " 'L' || lpad(%s::text, 8, '0') || lpad(g::text, 4, '0'), 'Bench', 'Latency',"
                " 'F', '1990-01-01', now(), now() FROM generate_series(1, %s) g",
                (seq, per_tx),
            )
            committed[seq] = time.perf_counter()
    deadline = time.perf_counter() + 60
    while len(visible) < txs and time.perf_counter() < deadline:
        time.sleep(0.1)
    stop.set()
    poller.join()
    worker.send_signal(signal.SIGTERM)
    worker.wait(60)
    hosp.execute("DROP INDEX IF EXISTS bench_cdc_national_id")
    hosp.close()
    lat = sorted((visible[k] - committed[k]) * 1000 for k in committed if k in visible)
    q = statistics.quantiles(lat, n=100)
    return {
        "offered_changes_per_s": float(rate),
        "transactions": float(txs),
        "seen": float(len(lat)),
        "latency_ms_p50": round(q[49], 1),
        "latency_ms_p99": round(q[98], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=9001)
    args = parser.parse_args()
    s = bench_settings()
    load_start = os.getloadavg()
    print("reset + register", flush=True)
    connector.reset(s, mirrors=True)
    truncate_ehr(s.dsn("ehr", "ehr_writer"))
    connector.register(s)
    changes, capture_s = fill(s, args.changes, args.seed)
    print(f"captured {changes:,} changes in {capture_s:.1f}s", flush=True)
    messages = sum(table_messages(s).values())
    ours: list[float] = []
    jdbc: list[float] = []
    for n in range(args.runs):
        ours.append(run_applier(s))
        print(f"  run {n}: applier {ours[-1]:,.0f}/s", flush=True)
        jdbc.append(run_jdbc(s, n))
        print(f"  run {n}: jdbc sink {jdbc[-1]:,.0f}/s", flush=True)
    clean_public = reconcile_cdc(s).clean
    lat = latency(s, args.rate, args.latency_seconds)
    print(f"latency {lat}", flush=True)
    load_end = os.getloadavg()
    connector.reset(s, mirrors=True)
    truncate_ehr(s.dsn("ehr", "ehr_writer"))
    applier_rate, jdbc_rate = statistics.median(ours), statistics.median(jdbc)
    result = {
        "metrics": {
            "ehr_changes": changes,
            "kafka_messages": messages,
            "applier_changes_per_s": round(applier_rate),
            "debezium_capture_changes_per_s": round(changes / capture_s),
            **lat,
            "applier_reconcile_clean": 1 if clean_public else 0,
        },
        "baseline": {"jdbc_sink_changes_per_s": round(jdbc_rate)},
        "ratios": {"ratio_vs_jdbc_sink": round(applier_rate / jdbc_rate, 2)},
        "runs": {
            "applier_changes_per_s": [round(x) for x in ours],
            "jdbc_sink_changes_per_s": [round(x) for x in jdbc],
        },
        "loadavg_start": [round(x, 2) for x in load_start],
        "loadavg_end": [round(x, 2) for x in load_end],
        "notes": (
            "EHR changes: 3 simulated days of a 500,000-people world plus synthetic patient "
            "inserts, one update each and deletes of a tenth (5,000-row transactions). "
            "2 shared cores: 8 helpers ran builds and tests on this machine at the same time "
            "(see loadavg); figures are lower bounds. Both sinks read the same pre-filled "
            "topics from offset 0 into emptied tables and commit to the same PostgreSQL; "
            "changes counted as Kafka messages (incl. delete tombstones)."
        ),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

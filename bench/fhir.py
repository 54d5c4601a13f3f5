"""FHIR ingest benchmark: ``uv run python bench/fhir.py`` -> ``bench/results/fhir.json``.

Both sides do the same work, in the same run (see bench/README.md):

- **input**: the Synthea sample bundles (``../shared/samples/fhir-synthea``), every resource;
- **output**: the same tables, ``fhir.resource`` (raw JSONB) and the 13 view tables, starting
  empty each run; the row counts of both sides are compared and must be equal;
- **durability**: both commit;
- **runs**: each side ``--runs`` times (default 3), alternating; the median is reported, and
  ``os.getloadavg()`` is recorded at the start and the end.

Measured: ``hospital.fhir.load.ingest_files`` (parse + reference resolution + compiled views +
COPY, one transaction per 64 files). Baseline: the classic per-row SQLAlchemy loader a competent
developer writes: the same parsed resources (references resolved by the same parser), rows
from the generic ViewDefinition evaluator (``View.rows``), one idempotent
``INSERT ... ON CONFLICT DO UPDATE`` per row (the same replay semantics as ours) into the
tables reflected from the database, one commit at the end.

Needs the stack's PostgreSQL (``uv run hospital stack up``); settings come from the usual
environment / ``.env``. The tables of the ``fhir`` schema are emptied (it is a benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import MetaData, Table, create_engine
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from hospital.fhir.flatten import db_value, shipped_views
from hospital.fhir.load import discover, ingest_files, latest_only, read_files
from hospital.fhir.shared import samples_dir
from hospital.settings import Settings, get_settings

RESULTS = Path(__file__).parent / "results" / "fhir.json"


def _tables() -> list[str]:
    return ["resource", "quarantine", "unresolved_reference", *(t.table for t in shipped_views())]


def _truncate(settings: Settings) -> None:
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        conn.execute("TRUNCATE " + ", ".join(f"fhir.{t}" for t in _tables()))


def _row_counts(settings: Settings) -> dict[str, int]:
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        return {
            t: int(conn.execute(f"SELECT count(*) FROM fhir.{t}").fetchone()[0])  # type: ignore[index]
            for t in ["resource", *(v.table for v in shipped_views())]
        }


def bench_fast(settings: Settings, files: list[Path]) -> tuple[float, int, dict[str, int]]:
    """Seconds, resources and row counts for one committed ingest into empty tables."""
    _truncate(settings)
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        started = time.perf_counter()
        report = ingest_files(conn, files)  # one committed transaction per batch of files
        seconds = time.perf_counter() - started
    if report.quarantined or report.inserted != report.resources:
        raise SystemExit(f"unexpected ingest result: {report.as_dict()}")
    return seconds, report.resources, _row_counts(settings)


def _upsert(table: Table, values: dict[str, Any]) -> Any:
    keys = [c.name for c in table.primary_key.columns]
    statement = insert(table).values(values)
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={k: statement.excluded[k] for k in values if k not in keys},
    )


def bench_orm(settings: Settings, files: list[Path]) -> tuple[float, int, dict[str, int]]:
    """The same resources into the same tables, one upsert per row, committed."""
    _truncate(settings)
    views = shipped_views()
    engine = create_engine(settings.sqlalchemy_url("hospital", "hospital_app"))
    try:
        meta = MetaData(schema="fhir")
        tables = {
            name: Table(name, meta, autoload_with=engine)
            for name in ["resource", *(v.table for v in views)]
        }
        started = time.perf_counter()
        parsed = read_files(files)
        resources = latest_only(parsed.resources)
        with Session(engine) as session:
            for r in resources:
                raw = {
                    "resource_type": r.resource_type,
                    "id": r.id,
                    "version_id": r.version_id,
                    "content_hash": r.content_hash,
                    "resource": r.resource,
                    "source_file": r.source,
                    "entry_index": r.entry_index,
                }
                session.execute(_upsert(tables["resource"], raw))
                for view in views:
                    for row in view.view.rows(r.resource):
                        values = {c: db_value(row[c], view.types[c]) for c in view.columns}
                        session.execute(_upsert(tables[view.table], values))
            session.commit()
        seconds = time.perf_counter() - started
    finally:
        engine.dispose()
    return seconds, len(resources), _row_counts(settings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = get_settings()
    folder = samples_dir(settings.root)
    files = discover([folder]) if folder.is_dir() else []
    if not files:
        print(f"samples not found at {folder}", file=sys.stderr)
        return 1
    shipped_views()  # compile the views outside the timed region, as a long-running loader does

    load_start = os.getloadavg()
    fast: list[tuple[float, int, dict[str, int]]] = []
    orm: list[tuple[float, int, dict[str, int]]] = []
    for _ in range(args.runs):  # alternating, so both sides see the same machine load
        fast.append(bench_fast(settings, files))
        orm.append(bench_orm(settings, files))
    load_end = os.getloadavg()
    _truncate(settings)

    if {f[1] for f in fast} != {o[1] for o in orm} or fast[0][2] != orm[0][2]:
        raise SystemExit(f"the two sides did different work: {fast[0][2]} vs {orm[0][2]}")
    fast_s = statistics.median(s for s, _, _ in fast)
    orm_s = statistics.median(s for s, _, _ in orm)
    resources = fast[0][1]
    metrics = {
        "files": len(files),
        "resources": resources,
        "table_rows": sum(fast[0][2].values()),
        "runs": args.runs,
        "ingest_seconds_median": round(fast_s, 4),
        "ingest_seconds_all_runs": [round(s, 4) for s, _, _ in fast],
        "resources_per_s": round(resources / fast_s, 1),
        "loadavg_1m_5m_15m_start": [round(x, 2) for x in load_start],
        "loadavg_1m_5m_15m_end": [round(x, 2) for x in load_end],
        "cpu_count": os.cpu_count(),
    }
    baseline = {
        "orm_resources": orm[0][1],
        "orm_table_rows": sum(orm[0][2].values()),
        "orm_seconds_median": round(orm_s, 4),
        "orm_seconds_all_runs": [round(s, 4) for s, _, _ in orm],
        "orm_resources_per_s": round(resources / orm_s, 1),
    }
    ratios = {"ratio_vs_orm": round(orm_s / fast_s, 2)}
    result = {
        "benchmark": "fhir",
        "rule": "same input, same output tables, both commit, same run, median of runs",
        "metrics": metrics,
        "baseline": baseline,
        "ratios": ratios,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")

    print(f"{'measure':<36}{'value':>40}")
    print("-" * 76)
    for key, value in {**metrics, **baseline, **ratios}.items():
        print(f"{key:<36}{value!s:>40}")
    print(f"\nwritten to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

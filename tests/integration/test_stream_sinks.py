"""The stream's two sinks against the real stack: poison messages, lake read-back, compaction.

- A poison message (not JSON, unknown schema_version, missing field, impossible value, forged id)
  is dead-lettered with its topic/partition/offset and quarantined; the events after it land.
- The Delta table read back with polars (and its files with DuckDB) equals what was produced,
  before and after compaction + vacuum; a replay from offset 0 after compaction adds nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import orjson
import psycopg
import pytest
from confluent_kafka import Consumer, Producer
from deltalake import DeltaTable

from hospital.clock import utcnow
from hospital.settings import Settings
from hospital.simulator.events import Event
from hospital.stream import lake
from hospital.stream.consumer import run
from hospital.stream.lake import app_id, table_path
from tests.integration.test_stream_support import (
    isolated,
    publish,
    simulated_days,
    worker_env,
)

pytestmark = pytest.mark.integration

POISON: list[tuple[bytes, str]] = [
    (b"\x00\xffnot json at all", "not JSON"),
    (b'{"schema_version": 99, "event_id": "x"}', "unknown schema_version 99"),
    (b'{"schema_version": 1, "kind": "transfer"}', "missing field(s)"),
    (
        orjson.dumps(
            {
                "schema_version": 1,
                "event_id": "a1e5b1b8-5d0c-5d62-9b7e-1f0f1c7d2c11",
                "kind": "transfer",
                "source_id": "00000000-0000-4000-8000-000000000001",
                "occurred_at": "1850-01-01T00:00:00+00:00",
                "patient_id": "00000000-0000-4000-8000-000000000002",
                "department_code": "ICU",
                "detail": {},
            }
        ),
        "event_id does not match",
    ),
]


def _stream_rows(settings: Settings) -> set[str]:
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        return {
            str(r[0])
            for r in conn.execute(
                "SELECT event_id FROM bed_events WHERE stream_topic = %s", (settings.stream_topic,)
            )
        }


def test_poison_messages_are_dead_lettered_with_offsets_and_the_stream_goes_on(
    stack: Settings,
) -> None:
    # Small batches, and the worker compacts every third one (its own compaction schedule).
    with isolated(
        stack, "poison", stream_batch_max_events=100, stream_compact_every_batches=3
    ) as settings:
        events = simulated_days(stack, seed=32, days=1)[0].realtime
        half = len(events) // 2
        publish(settings, events[:half])
        delivered: list[tuple[int, int, bytes]] = []

        def on_delivery(err: Any, msg: Any) -> None:
            assert err is None
            delivered.append((msg.partition(), msg.offset(), msg.value()))

        producer = Producer({"bootstrap.servers": settings.bootstrap_servers, "acks": "all"})
        for value, _ in POISON:
            producer.produce(
                settings.stream_topic, value=value, key=b"poison", on_delivery=on_delivery
            )
        assert producer.flush(30) == 0
        publish(settings, events[half:])

        started = utcnow()
        report = run(settings, until_idle=True)
        assert report.quarantined == len(POISON)
        assert _stream_rows(settings) == {e.event_id for e in events}
        assert lake.read(settings).height == len(events)

        with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
            quarantined = conn.execute(
                "SELECT kafka_partition, kafka_offset, payload, reason FROM stream_quarantine"
                " WHERE topic = %s ORDER BY kafka_offset",
                (settings.stream_topic,),
            ).fetchall()
            # The worker's figures for the dashboard (no other stream worker runs meanwhile).
            figures = dict(
                conn.execute(
                    "SELECT metric, sum(value) FROM pipeline_metrics WHERE path = 'stream'"
                    " AND ts >= %s GROUP BY metric",
                    (started,),
                ).fetchall()
            )
        assert [(p, o, bytes(v)) for p, o, v, _ in quarantined] == sorted(
            delivered, key=lambda d: d[1]
        )
        assert figures["quarantined"] == len(POISON)
        assert figures["events_applied"] == len(events)
        assert {"lag", "latency_ms_p99"} <= set(figures)
        reasons = {bytes(v): r for _, _, v, r in quarantined}
        for value, expected in POISON:
            assert expected in reasons[value]
        history = DeltaTable(str(table_path(settings))).history()
        assert any(h.get("operation") == "OPTIMIZE" for h in history)
        # A restarted worker resumes at the end of every partition, sees no lag and stops.
        again = run(settings, until_idle=True)
        assert (again.messages, again.quarantined) == (0, 0)

        # The dead-letter topic holds the same messages, with their source coordinates.
        dlq = Consumer(
            {
                "bootstrap.servers": settings.bootstrap_servers,
                "group.id": settings.stream_group + "-dlq-reader",
                "auto.offset.reset": "earliest",
            }
        )
        dlq.subscribe([settings.stream_dlq_topic])
        seen: dict[bytes, dict[str, str]] = {}
        for _ in range(60):
            for msg in dlq.consume(10, timeout=1):
                if msg.error() is None:
                    seen[msg.value()] = {k: v.decode() for k, v in msg.headers() or []}
            if len(seen) == len(POISON):
                break
        dlq.close()
        assert set(seen) == {v for v, _ in POISON}
        for partition, offset, value in delivered:
            assert seen[value]["source_topic"] == settings.stream_topic
            assert (seen[value]["source_partition"], seen[value]["source_offset"]) == (
                str(partition),
                str(offset),
            )


def _as_produced(events: list[Event]) -> list[tuple[object, ...]]:
    return sorted(
        (e.event_id, e.kind, e.source_id, e.patient_id, e.department_code, e.occurred_at,
         orjson.dumps(e.detail, option=orjson.OPT_SORT_KEYS))
        for e in events
    )  # fmt: skip


def _as_read(settings: Settings) -> list[tuple[object, ...]]:
    rows = lake.read(settings)
    assert rows.height == rows["event_id"].n_unique()
    return sorted(
        (r["event_id"], r["kind"], r["source_id"], r["patient_id"], r["department_code"],
         r["occurred_at"], orjson.dumps(orjson.loads(r["detail"]), option=orjson.OPT_SORT_KEYS))
        for r in rows.iter_rows(named=True)
    )  # fmt: skip


def _data_files(path: Path) -> list[Path]:
    return [f for f in path.rglob("*.parquet") if "_delta_log" not in f.parts]


def test_lake_reads_back_as_produced_before_and_after_compaction(stack: Settings) -> None:
    with isolated(stack, "lake", stream_batch_max_events=40) as settings:
        events = [e for day in simulated_days(stack, seed=34, days=2) for e in day.realtime]
        publish(settings, events)
        run(settings, until_idle=True)
        expected = _as_produced(events)
        assert _as_read(settings) == expected
        # The database holds the same events, field by field.
        with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
            db_rows = conn.execute(
                "SELECT event_id::text, kind, source_id::text, patient_id::text, department_code,"
                " occurred_at, detail FROM bed_events WHERE stream_topic = %s",
                (settings.stream_topic,),
            ).fetchall()
        assert (
            sorted((*r[:6], orjson.dumps(r[6], option=orjson.OPT_SORT_KEYS)) for r in db_rows)
            == expected
        )

        path = table_path(settings)
        table = DeltaTable(str(path))
        before = table.file_uris()
        versions = {
            p: table.transaction_version(app_id(settings.stream_topic, p))
            for p in range(settings.stream_partitions)
        }
        on_disk = len(_data_files(path))
        assert len(before) > 3 * settings.stream_partitions  # many small micro-batch files
        result = lake.compact(settings, retention_hours=0)
        table = DeltaTable(str(path))
        after = table.file_uris()
        assert result.files_removed == len(before) > len(after) == result.files_added
        assert len(_data_files(path)) == len(after) < on_disk  # vacuumed
        assert _as_read(settings) == expected
        # DuckDB reads the table's current files: the same ids, once each.
        with duckdb.connect() as db:
            ids = db.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM read_parquet(?)", [after]
            ).fetchone()
        assert ids == (len(events), len(events))
        # Compaction keeps the offsets recorded as application transactions ...
        for p, v in versions.items():
            assert table.transaction_version(app_id(settings.stream_topic, p)) == v
        # ... so a full replay (the database forgot its position) adds nothing anywhere.
        with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
            conn.execute("DELETE FROM stream_offsets WHERE topic = %s", (settings.stream_topic,))
        version = table.version()
        replay = run(settings, until_idle=True)
        assert replay.messages == len(events)
        assert (replay.lake_rows, replay.db_rows) == (0, 0)
        assert DeltaTable(str(path)).version() == version
        assert _as_read(settings) == expected
        assert _stream_rows(settings) == {e.event_id for e in events}


def test_cli_produce_consume_compact_and_reconcile(stack: Settings) -> None:
    """The thin CLI: `hospital stream produce|consume|compact` and `hospital reconcile paths`."""
    with isolated(stack, "cli") as settings:
        events = simulated_days(stack, seed=61, days=1)[0].realtime
        env = worker_env(
            settings,
            SEED="61",
            NUM_PEOPLE="20000",
            START_DATE="2020-01-01",
            SIM_VISITS_PER_1000="0.6",  # the world simulated_days() builds
        )
        env["STREAM_BATCH_MAX_EVENTS"] = "100"  # many small files for `compact` to merge

        def hospital(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "hospital.cli", *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )

        with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
            conn.execute(
                "DELETE FROM bed_events WHERE event_id = ANY(%s::uuid[])",
                ([e.event_id for e in events],),
            )
        produced = hospital("stream", "produce", "--date", "2020-01-01")
        assert produced.returncode == 0, produced.stderr
        assert f"published {len(events)} events" in produced.stdout
        consumed = hospital("stream", "consume", "--until-idle")
        assert consumed.returncode == 0, consumed.stderr
        assert f"{len(events)} DB rows" in consumed.stdout
        compacted = hospital("stream", "compact", "--retention-hours", "0")
        assert compacted.returncode == 0, compacted.stderr
        result = json.loads(compacted.stdout)
        assert result["files_removed"] > result["files_added"] >= 1
        assert _as_read(settings) == _as_produced(events)
        # No batch for the day yet: every stream event is a difference nobody filled in.
        checked = hospital("reconcile", "paths", "--date", "2020-01-01", "--json")
        assert checked.returncode == 1, checked.stderr
        report = json.loads(checked.stdout)
        assert report["clean"] is False
        assert sum(r["lake"] for r in report["rows"]) == len(events)
        stream_only = {i for r in report["rows"] for i in r["stream_only"]}
        assert {e.event_id for e in events} <= stream_only

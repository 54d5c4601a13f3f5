"""CDC against the real stack: snapshot + streaming, the JDBC sink as a second opinion, replay,
poison messages, a schema change, kill -9 of the applier, restarts of Connect and the broker,
and the heartbeat keeping the slot's WAL bounded.

One connector registration (own names: connector, slot, topic prefix, consumer group) serves the
whole module; it is reset at the end so later tests pay for no running connector.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, Producer

from hospital.cdc import applier, connector
from hospital.cdc.catalog import JDBC_SCHEMA
from hospital.cdc.reconcile import CdcReconciliation, compare, reconcile_cdc, wait_for_capture
from hospital.scheduler.supervisor import settings_env
from hospital.settings import Settings, port_in_use
from hospital.simulator.api import apply_range, build_population
from hospital.simulator.config import SimConfig
from hospital.simulator.ehr_writer import truncate_ehr
from hospital.stack import Stack
from tests.support import stack_settings

pytestmark = pytest.mark.integration

SEED = 4409
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class World:
    settings: Settings
    config: SimConfig
    people: object

    def write_days(self, days: int, pause: float = 0.0) -> int:
        """Append ``days`` simulated days to the EHR (optionally pausing after each)."""

        def on_day(*_: object) -> None:
            if pause:
                time.sleep(pause)

        report = apply_range(self.settings, self.config, self.people, None, days, on_day)  # type: ignore[arg-type]
        return report.applied


@pytest.fixture(scope="module")
def world(stack: Settings) -> Iterator[World]:
    suffix = uuid.uuid4().hex[:6]
    settings = stack_settings(
        cdc_connector_name=f"test-cdc-{suffix}",
        cdc_jdbc_connector_name=f"test-cdc-jdbc-{suffix}",
        cdc_topic_prefix=f"tcdc{suffix}",
        cdc_slot_name=f"tcdc_{suffix}",
        cdc_group=f"test-cdc-{suffix}",
        cdc_dlq_topic=f"tcdc{suffix}.dlq",
        cdc_heartbeat_interval_ms=500,
        cdc_idle_seconds=1.5,
        cdc_reconcile_wait_seconds=120,
        cdc_metrics_seconds=1,
    )
    connector.reset(settings, mirrors=True)
    truncate_ehr(settings.dsn("ehr", "ehr_writer"))
    config = SimConfig.from_settings(settings, num_people=20_000, seed=SEED)
    w = World(settings, config, build_population(config))
    w.write_days(2)  # rows that exist before the connector: they must arrive as a snapshot
    try:
        connector.register(settings)
        yield w
    finally:
        connector.reset(settings)


def catch_up(settings: Settings) -> applier.ApplyReport:
    """Wait until Debezium confirmed the EHR's current LSN, then apply until idle."""
    _, captured = wait_for_capture(settings, 120)
    assert captured, "the connector did not capture the EHR's changes in time"
    return applier.run(settings, until_idle=True)


def assert_clean(result: CdcReconciliation) -> None:
    bad = [t for t in result.tables if not t.clean]
    assert result.clean, (result.problems, bad)
    assert {t.table for t in result.tables} >= {"patients", "visits", "diagnoses"}
    assert sum(t.ehr_rows for t in result.tables) > 1000


def mirror_scalar(settings: Settings, query: str, *args: object) -> object:
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        row = conn.execute(query, args).fetchone()
    assert row is not None
    return row[0]


def test_snapshot_and_streaming_reach_the_mirror_and_the_jdbc_sink(world: World) -> None:
    s = world.settings
    connector.register(s, sink="jdbc")
    assert world.write_days(2) == 2  # inserts, updates and deletes while streaming
    patient = uuid.uuid4()
    with psycopg.connect(s.dsn("ehr", "ehr_writer")) as conn:
        # insert + update in one transaction, then a delete of a row the snapshot delivered
        conn.execute(
            "INSERT INTO patients (patient_id, national_id, first_name, last_name, sex,"
            " birth_date, city, created_at, updated_at) VALUES (%s, '8001015009087', 'Lerato',"
            " 'Dlamini', 'F', %s, 'Soweto', now(), now())",
            (patient, date(1980, 1, 1)),
        )
        conn.execute("UPDATE patients SET city = 'Alexandra' WHERE patient_id = %s", (patient,))
        conn.commit()
        gone = conn.execute("SELECT note_id FROM doctor_notes ORDER BY note_id LIMIT 1").fetchone()
        assert gone is not None
        conn.execute("DELETE FROM doctor_notes WHERE note_id = %s", (gone[0],))

    report = catch_up(s)

    # (a delete may meet its insert in the same batch: then no row is written at all)
    assert report.upserted > 1000 and report.quarantined == 0
    assert_clean(reconcile_cdc(s))
    assert mirror_scalar(s, "SELECT city FROM patients WHERE patient_id = %s", patient) == (
        "Alexandra"
    )
    assert mirror_scalar(s, "SELECT count(*) FROM doctor_notes WHERE note_id = %s", gone[0]) == 0
    assert mirror_scalar(s, "SELECT count(*) FROM cdc_deleted_keys WHERE key = %s", str(gone[0]))
    # Lineage on every row: source LSN and commit time.
    assert mirror_scalar(
        s, "SELECT count(*) FROM visits WHERE _cdc_lsn IS NULL OR _cdc_committed_at IS NULL"
    ) == 0  # fmt: skip
    assert mirror_scalar(s, "SELECT count(*) FROM pipeline_metrics WHERE path = 'cdc'")
    # Debezium's own JDBC sink, on the same topics into its own schema, agrees.
    jdbc = reconcile_cdc(s, schema=JDBC_SCHEMA)
    connector.remove(s, s.cdc_jdbc_connector_name)
    assert_clean(jdbc)


def test_replaying_every_topic_from_offset_zero_changes_nothing(world: World) -> None:
    s = world.settings
    catch_up(s)
    before = compare(s)
    lineage = mirror_scalar(s, "SELECT sum(_cdc_lsn)::text FROM visits")
    with psycopg.connect(s.dsn("hospital", "hospital_app")) as conn:
        conn.execute("DELETE FROM cdc_offsets WHERE consumer_group = %s", (s.cdc_group,))

    replay = applier.run(s, until_idle=True)

    assert replay.messages > 1000
    assert replay.upserted == 0 and replay.deleted == 0  # every event was older than the row
    assert compare(s) == before
    assert mirror_scalar(s, "SELECT sum(_cdc_lsn)::text FROM visits") == lineage


def test_a_poison_message_is_quarantined_with_its_offset_and_the_rest_applied(
    world: World,
) -> None:
    s = world.settings
    topic = f"{s.cdc_topic_prefix}.public.visits"
    delivered: list[tuple[int | None, int | None]] = []
    producer = Producer({"bootstrap.servers": s.bootstrap_servers, "acks": "all"})
    producer.produce(
        topic,
        key=b"poison-key",
        value=b'{"schema": {"type": "struct"}, "payload": {not json',
        partition=0,
        on_delivery=lambda err, msg: delivered.append((msg.partition(), msg.offset())),
    )
    assert producer.flush(30) == 0 and delivered
    del producer  # no idle client left logging through the broker restart test
    world.write_days(1)

    report = catch_up(s)

    assert report.quarantined == 1 and report.upserted > 100
    with psycopg.connect(s.dsn("hospital", "hospital_app")) as conn:
        rows = conn.execute(
            'SELECT partition, "offset", key, reason FROM cdc_quarantine WHERE topic = %s',
            (topic,),
        ).fetchall()
    assert rows == [(delivered[0][0], delivered[0][1], "poison-key", rows[0][3])]
    assert "undecodable JSON" in rows[0][3]
    assert_clean(reconcile_cdc(s))
    consumer = Consumer(
        {
            "bootstrap.servers": s.bootstrap_servers,
            "group.id": f"dlq-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([s.cdc_dlq_topic])
    try:
        msg = None
        deadline = time.monotonic() + 30
        while msg is None and time.monotonic() < deadline:
            got = consumer.poll(1.0)
            msg = got if got is not None and got.error() is None else None
        assert msg is not None and msg.key() == b"poison-key"
        headers = dict(msg.headers() or [])
        assert headers["source_offset"] == str(delivered[0][1]).encode()
    finally:
        consumer.close()


def test_an_ehr_column_without_mirror_column_is_quarantined_until_the_mirror_has_it(
    world: World,
) -> None:
    """Policy (docs/cdc.md): a new EHR column needs a hospital migration adding it to the
    mirror; until then changes of that table carrying it are quarantined with the reason."""
    s = world.settings
    ehr = s.dsn("ehr", "ehr_writer")
    hosp = s.dsn("hospital", "hospital_app")
    with psycopg.connect(ehr) as conn:
        conn.execute("ALTER TABLE allergies ADD COLUMN cdc_test_code text")
    try:
        with psycopg.connect(ehr) as conn:
            row = conn.execute(
                "UPDATE allergies SET cdc_test_code = 'X1' WHERE allergy_id = "
                "(SELECT min(allergy_id::text)::uuid FROM allergies) RETURNING allergy_id"
            ).fetchone()
        assert row is not None
        report = catch_up(s)
        assert report.quarantined == 1
        reason = mirror_scalar(
            s,
            "SELECT reason FROM cdc_quarantine WHERE topic = %s ORDER BY quarantined_at DESC",
            f"{s.cdc_topic_prefix}.public.allergies",
        )
        assert "cdc_test_code" in str(reason) and "no mirror column" in str(reason)

        with psycopg.connect(hosp) as conn:  # the hospital migration's part
            conn.execute("ALTER TABLE allergies ADD COLUMN cdc_test_code text")
        with psycopg.connect(ehr) as conn:
            conn.execute(
                "UPDATE allergies SET cdc_test_code = 'X2', updated_at = now() "
                "WHERE allergy_id = %s",
                (row[0],),
            )
        report = catch_up(s)
        assert report.quarantined == 0 and report.upserted >= 1
        assert (
            mirror_scalar(s, "SELECT cdc_test_code FROM allergies WHERE allergy_id = %s", row[0])
            == "X2"
        )
        result = reconcile_cdc(s)
        assert_clean(result)
        assert next(t for t in result.tables if t.table == "allergies").columns == 10
    finally:
        with psycopg.connect(ehr) as conn:
            conn.execute("ALTER TABLE allergies DROP COLUMN IF EXISTS cdc_test_code")
        with psycopg.connect(hosp) as conn:
            conn.execute("ALTER TABLE allergies DROP COLUMN IF EXISTS cdc_test_code")


def test_reconcile_names_a_differing_key_and_the_cli_exits_non_zero(world: World) -> None:
    s = world.settings
    catch_up(s)
    with psycopg.connect(s.dsn("hospital", "hospital_app")) as conn:
        row = conn.execute(
            "DELETE FROM visits WHERE visit_id = (SELECT min(visit_id::text)::uuid FROM visits)"
            " RETURNING visit_id"
        ).fetchone()
    assert row is not None
    result = reconcile_cdc(s, wait=False)
    visits = next(t for t in result.tables if t.table == "visits")
    assert not result.clean and visits.mirror_rows == visits.ehr_rows - 1
    assert visits.sample_keys == [str(row[0])]
    env = {**os.environ, **settings_env(s)}
    cli = subprocess.run(
        [sys.executable, "-m", "hospital.cli", "reconcile", "cdc", "--no-wait", "--json"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert cli.returncode == 1, cli.stderr
    assert str(row[0]) in cli.stdout
    with psycopg.connect(s.dsn("ehr", "ehr_writer")) as conn:  # the next change repairs it
        conn.execute("UPDATE visits SET updated_at = now() WHERE visit_id = %s", (row[0],))
    catch_up(s)
    assert_clean(reconcile_cdc(s))


# --- crash safety ------------------------------------------------------------------------
def _start_applier(
    settings: Settings, tmp: Path, pause_at: str | None = None
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOSPITAL_CDC_PAUSE")}
    env.update(settings_env(settings))
    if pause_at:
        env[applier.PAUSE_ENV] = pause_at
        env[applier.PAUSE_FILE_ENV] = str(tmp / "paused")
    (tmp / "paused").unlink(missing_ok=True)
    log = (tmp / "applier.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "hospital.cli", "cdc", "apply"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _writer(world: World, days: int, pause: float) -> tuple[threading.Thread, list[int]]:
    done: list[int] = []
    thread = threading.Thread(
        target=lambda: done.append(world.write_days(days, pause=pause)), daemon=True
    )
    thread.start()
    return thread, done


def test_kill_9_of_the_applier_at_random_moments_loses_and_duplicates_nothing(
    world: World, tmp_path: Path
) -> None:
    s = world.settings
    rng = random.Random(SEED)
    writer, written = _writer(world, days=5, pause=0.7)
    # Named points first (between row write and commit, and right after commit), then random.
    plan: list[str | None] = ["after_rows@2", "before_commit@3", "after_commit@2", None, None, None]
    kills = 0
    for pause_at in plan:
        child = _start_applier(s, tmp_path, pause_at)
        try:
            if pause_at:
                deadline = time.monotonic() + 60
                while not (tmp_path / "paused").exists() and time.monotonic() < deadline:
                    assert child.poll() is None, (tmp_path / "applier.log").read_text()[-2000:]
                    time.sleep(0.05)
                assert (tmp_path / "paused").exists(), f"applier never reached {pause_at}"
            else:
                time.sleep(rng.uniform(1.0, 3.0))
            assert child.poll() is None, (tmp_path / "applier.log").read_text()[-2000:]
            os.kill(child.pid, signal.SIGKILL)
            kills += 1
        finally:
            if child.poll() is None:
                child.kill()
            child.wait(timeout=30)
    writer.join(timeout=180)
    assert written and written[0] == 5
    assert kills == len(plan)

    catch_up(s)

    assert_clean(reconcile_cdc(s))


def _restart_mid_stream(world: World, tmp: Path, service: str) -> None:
    s = world.settings
    stack = Stack(s)
    child = _start_applier(s, tmp)
    try:
        writer, written = _writer(world, days=3, pause=1.0)
        time.sleep(1.5)  # mid-stream: the first day is on its way
        pid = stack.service(service).pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        port = s.connect_port if service == "connect" else s.kafka_port
        deadline = time.monotonic() + 30
        while port_in_use(s.client_host, port) and time.monotonic() < deadline:
            time.sleep(0.2)  # the kernel frees the port once the process is really gone
        stack.up(migrate=False)
        connector.ensure_running(s)  # restarts the source task if it failed meanwhile
        writer.join(timeout=240)
        assert written and written[0] == 3
        assert child.poll() is None, (tmp / "applier.log").read_text()[-2000:]
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=60)
    catch_up(s)
    result = reconcile_cdc(s)
    if service == "kafka" and not result.clean:
        # Known upstream loss (docs/cdc.md): Connect's orphaned source task can drop in-flight
        # events when the broker dies. Reconciliation catches it; a re-snapshot repairs it.
        lost = [(t.table, t.ehr_rows, t.mirror_rows) for t in result.tables if not t.clean]
        print(f"broker restart lost events upstream (table, EHR rows, mirror rows): {lost}")
        connector.resnapshot(s)
        catch_up(s)
        result = reconcile_cdc(s)
    assert_clean(result)


def test_restarting_kafka_connect_mid_stream_loses_and_duplicates_nothing(
    world: World, tmp_path: Path
) -> None:
    _restart_mid_stream(world, tmp_path, "connect")


def test_restarting_the_kafka_broker_mid_stream_loses_and_duplicates_nothing(
    world: World, tmp_path: Path
) -> None:
    _restart_mid_stream(world, tmp_path, "kafka")


def test_heartbeat_keeps_the_slot_wal_bounded_while_the_ehr_is_idle(world: World) -> None:
    """Other databases of the cluster write WAL while the EHR is idle; the heartbeat lets the
    slot confirm past it, so the slot does not hold that WAL."""
    s = world.settings
    with psycopg.connect(s.dsn("hospital", "hospital_app"), autocommit=True) as conn:
        conn.execute("CREATE TABLE cdc_wal_filler AS SELECT g, repeat('x', 200) AS pad "
                     "FROM generate_series(1, 40000) g")  # fmt: skip
        conn.execute("DROP TABLE cdc_wal_filler")
    with psycopg.connect(s.dsn("ehr", "hospital_app"), autocommit=True) as conn:
        row = conn.execute("SELECT pg_current_wal_lsn()").fetchone()
        assert row is not None
        after_filler = row[0]
        deadline = time.monotonic() + 40
        passed = False
        while time.monotonic() < deadline and not passed:
            got = conn.execute(
                "SELECT confirmed_flush_lsn >= %s, restart_lsn >= %s "
                "FROM pg_replication_slots WHERE slot_name = %s",
                (after_filler, after_filler, s.cdc_slot_name),
            ).fetchone()
            assert got is not None
            passed = bool(got[0] and got[1])
            time.sleep(0.5)
        assert passed, "the slot still holds WAL written while the EHR was idle"

"""The real services of the test stack: broker round trip, Debezium capture, roles, migrations."""

from __future__ import annotations

import json
import time
import uuid
from datetime import date
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from hospital.settings import Settings
from hospital.stack.connect import DEBEZIUM_JDBC_SINK, DEBEZIUM_POSTGRES, ConnectClient
from hospital.warehouse import migrate

pytestmark = pytest.mark.integration


def _consume(settings: Settings, topic: str, want: int, timeout: float = 60.0) -> list[dict]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": f"test-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < want and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            got.append(
                {
                    "key": msg.key().decode() if msg.key() else None,
                    "value": json.loads(msg.value()) if msg.value() else None,
                    "offset": msg.offset(),
                }
            )
    finally:
        consumer.close()
    return got


def test_message_round_trip_through_the_broker(stack: Settings) -> None:
    topic = f"test-roundtrip-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": stack.bootstrap_servers})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": stack.bootstrap_servers, "acks": "all"})
    sent = [{"n": i, "ward": f"W{i % 3}"} for i in range(25)]
    for item in sent:
        producer.produce(topic, key=str(item["n"]), value=json.dumps(item))
    assert producer.flush(30) == 0

    got = _consume(stack, topic, want=len(sent))

    assert [m["value"] for m in got] == sent
    assert [m["key"] for m in got] == [str(i) for i in range(25)]
    assert [m["offset"] for m in got] == list(range(25))


def test_connect_lists_both_debezium_plugins(stack: Settings) -> None:
    plugins = ConnectClient(stack.connect_url).plugins()
    assert DEBEZIUM_POSTGRES in plugins
    assert DEBEZIUM_JDBC_SINK in plugins


def _insert_patient(settings: Settings) -> uuid.UUID:
    patient_id = uuid.uuid4()
    national_id = f"{uuid.uuid4().int % 10**13:013d}"
    with psycopg.connect(settings.dsn("ehr", "ehr_writer")) as conn:
        conn.execute(
            "INSERT INTO patients (patient_id, national_id, first_name, last_name, sex,"
            " birth_date, city, created_at, updated_at)"
            " VALUES (%s, %s, 'Thandiwe', 'Mokoena', 'F', %s, 'Soweto', now(), now())",
            (patient_id, national_id, date(1987, 3, 14)),
        )
    return patient_id


def test_debezium_captures_an_ehr_insert(stack: Settings) -> None:
    suffix = uuid.uuid4().hex[:8]
    name, prefix, slot = f"test-cdc-{suffix}", f"testcdc{suffix}", f"test_slot_{suffix}"
    client = ConnectClient(stack.connect_url)
    client.put_connector(
        name,
        {
            "connector.class": DEBEZIUM_POSTGRES,
            "plugin.name": "pgoutput",
            "database.hostname": stack.host,
            "database.port": str(stack.pg_port),
            "database.user": "cdc_reader",
            "database.password": stack.password("cdc_reader"),
            "database.dbname": "ehr",
            "topic.prefix": prefix,
            "slot.name": slot,
            "publication.name": "hospital_cdc",
            "publication.autocreate.mode": "disabled",
            "table.include.list": "public.patients",
            "snapshot.mode": "no_data",
        },
    )
    try:
        client.wait_running(name, timeout=120)
        # The slot exists once the task streams; an insert before that would be missed.
        with psycopg.connect(stack.dsn("postgres", "superuser")) as conn:
            for _ in range(120):
                row = conn.execute(
                    "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
                ).fetchone()
                if row and row[0]:
                    break
                time.sleep(0.5)
            else:
                pytest.fail(f"replication slot {slot} never became active")
        patient_id = _insert_patient(stack)

        messages = _consume(stack, f"{prefix}.public.patients", want=1, timeout=90)

        assert len(messages) == 1
        envelope = messages[0]["value"]
        assert envelope["op"] == "c"
        assert envelope["before"] is None
        assert envelope["after"]["patient_id"] == str(patient_id)
        assert envelope["after"]["first_name"] == "Thandiwe"
        assert envelope["source"]["table"] == "patients"
    finally:
        client.delete(name)
        with psycopg.connect(stack.dsn("postgres", "superuser"), autocommit=True) as conn:
            for _ in range(60):
                row = conn.execute(
                    "SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,)
                ).fetchone()
                if row is None:
                    break
                if not row[0]:
                    conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
                    break
                time.sleep(0.5)


def test_hospital_app_can_read_but_not_write_the_ehr(stack: Settings) -> None:
    patient_id = _insert_patient(stack)
    with psycopg.connect(stack.dsn("ehr", "hospital_app")) as conn:
        row = conn.execute(
            "SELECT first_name FROM patients WHERE patient_id = %s", (patient_id,)
        ).fetchone()
        assert row == ("Thandiwe",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO patients (patient_id, national_id, first_name, last_name, sex,"
                " birth_date, created_at, updated_at)"
                " VALUES (gen_random_uuid(), '0000000000000', 'X', 'Y', 'M', '2000-01-01',"
                " now(), now())"
            )
    with (
        psycopg.connect(stack.dsn("ehr", "hospital_app")) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("DELETE FROM patients WHERE patient_id = %s", (patient_id,))


def test_analyst_reads_hospital_but_cannot_write(stack: Settings) -> None:
    with psycopg.connect(stack.dsn("hospital", "analyst")) as conn:
        assert conn.execute("SELECT count(*) FROM departments").fetchone() is not None
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "INSERT INTO departments (department_code, name, kind, bed_capacity)"
                " VALUES ('X', 'x', 'ward', 1)"
            )
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(stack.dsn("ehr", "analyst"), connect_timeout=5).close()


def _tables(settings: Settings, database: str) -> set[str]:
    with psycopg.connect(settings.dsn(database, "superuser")) as conn:  # type: ignore[arg-type]
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_migrations_go_down_and_up_again(stack: Settings) -> None:
    before_ehr, before_hospital = _tables(stack, "ehr"), _tables(stack, "hospital")
    assert {"patients", "visits", "diagnoses", "allergies", "medications", "doctor_notes"} <= (
        before_ehr
    )
    assert {"departments", "staff", "admissions", "transfers", "pharmacy_orders"} <= before_hospital

    migrate.downgrade(stack)

    assert _tables(stack, "ehr") == {"alembic_version"}
    assert _tables(stack, "hospital") == {"alembic_version"}
    assert migrate.current(stack, "ehr") == set()

    migrate.upgrade(stack)

    assert _tables(stack, "ehr") == before_ehr
    assert _tables(stack, "hospital") == before_hospital
    assert migrate.current(stack, "ehr") == migrate.heads("ehr")
    assert migrate.current(stack, "hospital") == migrate.heads("hospital")


def test_external_services_are_used_not_started(stack: Settings, tmp_path: Path) -> None:
    """Pointing KAFKA_BOOTSTRAP_SERVERS / EHR_DSN / HOSPITAL_DSN elsewhere: nothing local runs."""
    from hospital.settings import load_settings
    from hospital.stack import Stack

    external = load_settings(
        stack_dir=tmp_path / "stack",
        kafka_bootstrap_servers=stack.bootstrap_servers,
        ehr_dsn=stack.dsn("ehr", "hospital_app"),
        hospital_dsn=stack.dsn("hospital", "hospital_app"),
    )
    services = Stack(external)

    status = {s.name: s for s in services.status()}

    assert status["postgres"].external and status["postgres"].healthy
    assert status["postgres"].pid is None
    assert status["kafka"].external and status["kafka"].healthy
    assert status["kafka"].address == stack.bootstrap_servers
    services.postgres.start()  # only checks the external database
    services.kafka.start()  # only checks the external broker
    assert not (tmp_path / "stack" / "postgres").exists()
    assert not (tmp_path / "stack" / "kafka").exists()
    assert services.leftover_processes() == []
    # Migrations run as each database's owner through its own DSN, never as a superuser.
    owners = load_settings(
        stack_dir=tmp_path / "stack",
        ehr_writer_dsn=stack.dsn("ehr", "ehr_writer"),
        hospital_dsn=stack.dsn("hospital", "hospital_app"),
    )
    assert migrate.managed_trees(owners) == ("ehr", "hospital")
    Stack(owners).migrate()  # at heads already: a no-op, but through the owner DSNs
    assert Stack(owners).schema_current()

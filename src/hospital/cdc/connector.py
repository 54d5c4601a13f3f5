"""The Debezium connectors: register (idempotently), inspect, reset.

- The **source** reads the ``hospital_cdc`` publication through its own slot with pgoutput and
  writes one topic per table (``<prefix>.public.<table>``), JSON with schemas, keyed by the
  primary key (so one row's changes stay in one partition, in commit order).
- The **JDBC sink** (``register --sink jdbc``) is Debezium's own consumer of the same topics into
  the ``cdc_jdbc`` schema: the benchmark's baseline and a second opinion in the tests.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Literal

import httpx
import psycopg
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from hospital.cdc.catalog import JDBC_SCHEMA, PUBLICATION, load_specs, published_tables
from hospital.cdc.envelope import HEARTBEAT_TABLE
from hospital.errors import CdcError, StackError
from hospital.settings import Settings
from hospital.stack.connect import DEBEZIUM_JDBC_SINK, DEBEZIUM_POSTGRES, ConnectClient

Sink = Literal["applier", "jdbc"]
JSON = "org.apache.kafka.connect.json.JsonConverter"
HEARTBEAT_QUERY = (
    f"INSERT INTO public.{HEARTBEAT_TABLE} (id, beat_at) VALUES (1, now()) "
    "ON CONFLICT (id) DO UPDATE SET beat_at = EXCLUDED.beat_at"
)


def _converters() -> dict[str, str]:
    return {
        "key.converter": JSON,
        "key.converter.schemas.enable": "true",
        "value.converter": JSON,
        "value.converter.schemas.enable": "true",
    }


def source_config(settings: Settings, tables: list[str]) -> dict[str, str]:
    """The source's config; ``tables``: the publication's tables (the snapshot reads only them,
    not every table of the schema). Re-run ``register`` after a migration publishes a table."""
    s = settings
    include = ",".join(f"public.{t}" for t in (*tables, HEARTBEAT_TABLE))
    return {
        "connector.class": DEBEZIUM_POSTGRES,
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "database.hostname": s.client_host,
        "database.port": str(s.pg_port),
        "database.user": "cdc_reader",
        "database.password": s.password("cdc_reader"),
        "database.dbname": "ehr",
        "topic.prefix": s.cdc_topic_prefix,
        "slot.name": s.cdc_slot_name,
        "publication.name": PUBLICATION,
        "publication.autocreate.mode": "disabled",
        "table.include.list": include,
        "snapshot.mode": "initial",
        # Exact encodings the applier decodes (envelope.py): dates as epoch days, times and
        # timestamps in microseconds, timestamptz as ISO-8601 text, numerics as decimal text.
        "time.precision.mode": "adaptive_time_microseconds",
        "decimal.handling.mode": "string",
        "tombstones.on.delete": "true",
        # Truncates are events too (the default skips them): the mirror must follow.
        "skipped.operations": "none",
        "heartbeat.interval.ms": str(s.cdc_heartbeat_interval_ms),
        "heartbeat.action.query": HEARTBEAT_QUERY,
        "topic.creation.default.replication.factor": "1",
        "topic.creation.default.partitions": str(s.cdc_topic_partitions),
        # Latency: poll the queue often; throughput: let the producer batch.
        "poll.interval.ms": "50",
        "max.batch.size": "4096",
        "max.queue.size": "32768",
        "producer.override.linger.ms": "5",
        "producer.override.batch.size": "262144",
        "producer.override.compression.type": "lz4",
        **_converters(),
    }


def jdbc_topic_regex(settings: Settings) -> str:
    prefix = settings.cdc_topic_prefix.replace(".", r"\.")
    return f"{prefix}\\.public\\.(?!{HEARTBEAT_TABLE}$).+"


def jdbc_config(settings: Settings) -> dict[str, str]:
    s = settings
    batch = str(s.cdc_jdbc_batch_size)
    return {
        "connector.class": DEBEZIUM_JDBC_SINK,
        "tasks.max": "1",
        "topics.regex": jdbc_topic_regex(s),
        "connection.url": (
            f"jdbc:postgresql://{s.client_host}:{s.pg_port}/hospital?reWriteBatchedInserts=true"
        ),
        "connection.username": "hospital_app",
        "connection.password": s.password("hospital_app"),
        "insert.mode": "upsert",
        "primary.key.mode": "record_key",
        "delete.enabled": "true",
        "truncate.enabled": "true",
        "schema.evolution": "basic",
        "collection.name.format": f"{JDBC_SCHEMA}.${{source.table}}",
        # Throughput as the connector's documentation advises: large batches, the reduction
        # buffer (one row per key per batch) and the consumer fetching as much per poll.
        "batch.size": batch,
        "use.reduction.buffer": "true",
        "consumer.override.max.poll.records": batch,
        "consumer.override.auto.offset.reset": "earliest",
        "consumer.override.fetch.min.bytes": "65536",
        # Table topics appear when the source snapshots: notice them in seconds, not minutes.
        "consumer.override.metadata.max.age.ms": "2000",
        **_converters(),
    }


def _client(settings: Settings) -> ConnectClient:
    return ConnectClient(settings.connect_url)


def _restart_failed(settings: Settings, name: str) -> None:
    """Restart a connector's failed tasks (e.g. after the broker was away too long)."""
    state = _client(settings).status(name)
    failed = [t for t in state.get("tasks", []) if t.get("state") == "FAILED"]
    if failed or state.get("connector", {}).get("state") == "FAILED":
        httpx.post(
            f"{settings.connect_url}/connectors/{name}/restart",
            params={"includeTasks": "true", "onlyFailed": "true"},
            timeout=30,
        )


def ensure_running(settings: Settings, timeout: float = 180.0) -> None:
    """Wait until the source runs again (e.g. after a broker or Connect restart), restarting
    its task if it failed meanwhile; never re-PUTs the config (that restarts a healthy task)."""
    client = _client(settings)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _restart_failed(settings, settings.cdc_connector_name)
            state = client.status(settings.cdc_connector_name)
        except (StackError, httpx.HTTPError):
            state = {}
        tasks = [t.get("state") for t in state.get("tasks", [])]
        if state.get("connector", {}).get("state") == "RUNNING" and tasks == ["RUNNING"]:
            wait_slot_active(settings, timeout=max(deadline - time.monotonic(), 1.0))
            return
        time.sleep(1.0)
    raise CdcError(f"connector {settings.cdc_connector_name} is not running after {timeout:.0f}s")


def register(settings: Settings, sink: Sink = "applier", wait: bool = True) -> dict[str, Any]:
    """Create or update the source connector (and, for ``sink="jdbc"``, the JDBC sink)."""
    client = _client(settings)
    tables = published_tables(settings)
    client.put_connector(settings.cdc_connector_name, source_config(settings, tables))
    _restart_failed(settings, settings.cdc_connector_name)
    names = [settings.cdc_connector_name]
    if sink == "jdbc":
        client.put_connector(settings.cdc_jdbc_connector_name, jdbc_config(settings))
        _restart_failed(settings, settings.cdc_jdbc_connector_name)
        names.append(settings.cdc_jdbc_connector_name)
    states: dict[str, Any] = {}
    for name in names:
        states[name] = client.wait_running(name, timeout=180) if wait else client.status(name)
    if wait:
        wait_slot_active(settings)
    return states


def wait_slot_active(settings: Settings, timeout: float = 120.0) -> None:
    """Block until the connector streams from its slot (changes from now on are captured)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(settings.dsn("ehr", "hospital_app"), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                (settings.cdc_slot_name,),
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.3)
    raise CdcError(f"replication slot {settings.cdc_slot_name} is not active after {timeout:.0f}s")


# --- status ------------------------------------------------------------------------------------
def _admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.bootstrap_servers})


def cdc_topics(settings: Settings, admin: AdminClient | None = None) -> dict[str, list[int]]:
    """Table topics of the source connector -> partition ids."""
    admin = admin or _admin(settings)
    prefix = f"{settings.cdc_topic_prefix}.public."
    topics = admin.list_topics(timeout=15).topics
    return {n: sorted(t.partitions) for n, t in topics.items() if n.startswith(prefix)}


def high_watermarks(settings: Settings, topics: dict[str, list[int]]) -> dict[tuple[str, int], int]:
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": settings.bootstrap_servers, "group.id": "_hwm"})
    try:
        out: dict[tuple[str, int], int] = {}
        for topic, parts in topics.items():
            for p in parts:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
                out[(topic, p)] = int(high)
        return out
    finally:
        consumer.close()


def group_offsets(settings: Settings, group: str) -> dict[tuple[str, int], int]:
    """Committed Kafka offsets of a consumer group (the JDBC sink's is connect-<name>)."""
    admin = _admin(settings)
    futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    try:
        result = futures[group].result(timeout=15)
    except Exception:
        return {}
    return {
        (tp.topic, tp.partition): int(tp.offset)
        for tp in result.topic_partitions or []
        if tp.offset >= 0
    }


def applier_offsets(settings: Settings) -> dict[tuple[str, int], int]:
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        rows = conn.execute(
            "SELECT topic, partition, next_offset FROM cdc_offsets WHERE consumer_group = %s",
            (settings.cdc_group,),
        ).fetchall()
    return {(str(t), int(p)): int(o) for t, p, o in rows}


def jdbc_group(settings: Settings) -> str:
    return f"connect-{settings.cdc_jdbc_connector_name}"


# --- reset -------------------------------------------------------------------------------------
def remove(settings: Settings, name: str) -> None:
    """Stop a connector, delete its stored offsets (Connect >= 3.6), then delete it."""
    client = _client(settings)
    if not client.status(name):
        return
    httpx.put(f"{settings.connect_url}/connectors/{name}/stop", timeout=30)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if client.status(name).get("connector", {}).get("state") == "STOPPED":
            break
        time.sleep(0.3)
    response = httpx.delete(f"{settings.connect_url}/connectors/{name}/offsets", timeout=60)
    if response.status_code >= 400 and response.status_code != 404:
        raise CdcError(f"could not reset the offsets of {name}: {response.text}")
    client.delete(name)


def resnapshot(settings: Settings) -> None:
    """Repair: make the source snapshot every table again (keeping its slot and topics).

    Stop, forget the connector's offsets, resume: Debezium then snapshots (``op: r``) and
    streams on from its slot. The applier's end-of-snapshot sweep removes mirror rows the
    snapshot no longer has, so after upstream loss (see docs/cdc.md) the mirror is exact again.
    """
    name = settings.cdc_connector_name
    client = _client(settings)
    httpx.put(f"{settings.connect_url}/connectors/{name}/stop", timeout=30)
    deadline = time.monotonic() + 60
    while client.status(name).get("connector", {}).get("state") != "STOPPED":
        if time.monotonic() > deadline:
            raise CdcError(f"connector {name} did not stop")
        time.sleep(0.3)
    response = httpx.delete(f"{settings.connect_url}/connectors/{name}/offsets", timeout=60)
    if response.status_code >= 400:
        raise CdcError(f"could not reset the offsets of {name}: {response.text}")
    httpx.put(f"{settings.connect_url}/connectors/{name}/resume", timeout=30)
    client.wait_running(name, timeout=180)
    wait_slot_active(settings)


def _drop_slot(settings: Settings) -> None:
    with psycopg.connect(settings.dsn("ehr", "cdc_reader"), autocommit=True) as conn:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                (settings.cdc_slot_name,),
            ).fetchone()
            if row is None:
                return
            if not row[0]:
                conn.execute("SELECT pg_drop_replication_slot(%s)", (settings.cdc_slot_name,))
                return
            time.sleep(0.3)
    raise CdcError(f"replication slot {settings.cdc_slot_name} stayed active")


def reset(settings: Settings, mirrors: bool = False) -> None:
    """Remove connectors, their offsets, the slot, the topics and the applier's bookkeeping.

    With ``mirrors`` the mirror tables and the JDBC sink's tables are emptied too, so a new
    registration snapshots into empty tables.
    """
    for name in (settings.cdc_jdbc_connector_name, settings.cdc_connector_name):
        remove(settings, name)
    _drop_slot(settings)
    admin = _admin(settings)
    prefix = settings.cdc_topic_prefix
    topics = [
        n
        for n in admin.list_topics(timeout=15).topics
        if n.startswith(f"{prefix}.")
        or n in (settings.cdc_dlq_topic, f"__debezium-heartbeat.{prefix}")
    ]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            with contextlib.suppress(Exception):
                future.result(timeout=60)
        _wait_topics_gone(admin, set(topics))
    groups = [settings.cdc_group, jdbc_group(settings)]
    for future in admin.delete_consumer_groups(groups, request_timeout=15).values():
        with contextlib.suppress(Exception):
            future.result(timeout=30)
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        conn.execute("DELETE FROM cdc_offsets WHERE consumer_group = %s", (settings.cdc_group,))
        conn.execute("DELETE FROM cdc_quarantine WHERE topic LIKE %s", (f"{prefix}.%",))
        conn.execute("TRUNCATE cdc_deleted_keys, cdc_truncations")
        if mirrors:
            for table in load_specs(settings, ensure_lineage=False):
                conn.execute(f'TRUNCATE public."{table}"')
            jdbc = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (JDBC_SCHEMA,)
            ).fetchall()
            for (table,) in jdbc:
                conn.execute(f'DROP TABLE {JDBC_SCHEMA}."{table}"')


def _wait_topics_gone(admin: AdminClient, topics: set[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not topics & set(admin.list_topics(timeout=15).topics):
            return
        time.sleep(0.5)
    raise CdcError(f"topics {sorted(topics)} were not deleted in {timeout:.0f}s")

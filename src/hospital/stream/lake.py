"""The lake sink: one Delta table ``lake/stream/bed_events``, partitioned by event date.

Exactly once: every commit carries, per Kafka partition it covers, a Delta application
transaction ``(app_id = "hospital.stream:<topic>:<partition>", version = next offset)``. Before
writing, the sink reads those versions and drops what the table already holds, so a replayed
micro-batch (after a crash between this commit and the Kafka offset commit) changes nothing; a
Delta commit is atomic, so readers never see half a batch. One table (not one per kind) because
a commit is atomic per table: a micro-batch mixing kinds lands in one commit.

Within a date partition the sink also skips event ids the table already holds (a producer that
re-sends a day republishes the same deterministic ids at new offsets).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from hospital.settings import Settings

if TYPE_CHECKING:
    import polars as pl
    from deltalake import DeltaTable

    from hospital.stream.schema import StreamEvent

TABLE = "bed_events"
SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("kind", pa.string()),
        ("source_id", pa.string()),
        ("patient_id", pa.string()),
        ("department_code", pa.string()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("detail", pa.string()),
        ("kafka_topic", pa.string()),
        ("kafka_partition", pa.int32()),
        ("kafka_offset", pa.int64()),
        ("ingested_at", pa.timestamp("us", tz="UTC")),
        ("event_date", pa.date32()),
    ]
)
# Event-id sets kept for this many recent date partitions (older ones are re-read on demand).
ID_CACHE_DATES = 8


@dataclass(frozen=True, slots=True)
class Landed:
    """A valid event with the Kafka coordinates it came from."""

    event: StreamEvent
    topic: str
    partition: int
    offset: int
    timestamp_ms: int


def table_path(settings: Settings) -> Path:
    return settings.lake_path / settings.stream_lake_subdir / TABLE


def app_id(topic: str, partition: int) -> str:
    return f"hospital.stream:{topic}:{partition}"


class LakeSink:
    """Appends micro-batches to the Delta table, once per Kafka offset and once per event id."""

    def __init__(self, path: Path, worker: str = "") -> None:
        self.path = path
        self.worker = worker  # recorded in each commit's metadata (lineage in the Delta history)
        self._table: DeltaTable | None = None
        self._ids: OrderedDict[date, set[str]] = OrderedDict()

    def table(self) -> DeltaTable | None:
        """The table at its latest version (another process may have compacted it)."""
        from deltalake import DeltaTable

        if self._table is None:
            if not DeltaTable.is_deltatable(str(self.path)):
                return None
            self._table = DeltaTable(str(self.path))
        else:
            self._table.update_incremental()
        return self._table

    def positions(self, topic: str, partitions: list[int]) -> dict[int, int | None]:
        """Next offset the lake expects per partition (None: it holds nothing of it)."""
        table = self.table()
        return {
            p: (table.transaction_version(app_id(topic, p)) if table is not None else None)
            for p in partitions
        }

    def forget(self) -> None:
        """Drop cached event ids (after a rebalance another worker may have written)."""
        self._ids.clear()

    def _known_ids(self, table: DeltaTable | None, day: date) -> set[str]:
        if day in self._ids:
            self._ids.move_to_end(day)
            return self._ids[day]
        ids: set[str] = set()
        if table is not None:
            got = table.to_pyarrow_table(filters=[("event_date", "=", day)], columns=["event_id"])
            ids = set(got.column("event_id").to_pylist())
        self._ids[day] = ids
        while len(self._ids) > ID_CACHE_DATES:
            self._ids.popitem(last=False)
        return ids

    def write(self, items: list[Landed], ends: dict[tuple[str, int], int], now: datetime) -> int:
        """Append what the table lacks of ``items`` and record ``ends`` (next offsets).

        Returns the rows written; 0 with no commit when every partition's stored version is
        already at or past ``ends`` (a replayed batch).
        """
        from deltalake import CommitProperties, Transaction, write_deltalake

        table = self.table()
        stored = {
            tp: (table.transaction_version(app_id(*tp)) if table is not None else None)
            for tp in ends
        }
        advance = {tp: end for tp, end in ends.items() if end > (stored[tp] or -1)}
        if not advance:
            return 0
        fresh: list[Landed] = []
        batch_ids: set[str] = set()
        for item in items:
            seen = stored[(item.topic, item.partition)]
            if seen is not None and item.offset < seen:
                continue
            eid = item.event.event_id
            if eid in batch_ids or eid in self._known_ids(table, item.event.event_date):
                continue
            batch_ids.add(eid)
            fresh.append(item)
        data = _arrow(fresh, now)
        commit = CommitProperties(
            custom_metadata={"hospital.stream.worker": self.worker},
            app_transactions=[Transaction(app_id(t, p), end) for (t, p), end in advance.items()],
        )
        try:
            write_deltalake(
                table if table is not None else str(self.path),
                data,
                mode="append",
                partition_by=["event_date"],
                commit_properties=commit,
            )
        except Exception:
            self._ids.clear()  # the commit may or may not have happened: re-read next time
            self._table = None
            raise
        for item in fresh:
            day = item.event.event_date
            if day in self._ids:
                self._ids[day].add(item.event.event_id)
        return len(fresh)


def _arrow(items: list[Landed], now: datetime) -> pa.Table:
    events = [it.event for it in items]
    columns: dict[str, list[Any]] = {
        "event_id": [e.event_id for e in events],
        "kind": [e.kind for e in events],
        "source_id": [e.source_id for e in events],
        "patient_id": [e.patient_id for e in events],
        "department_code": [e.department_code for e in events],
        "occurred_at": [e.occurred_at for e in events],
        "detail": [e.detail_json for e in events],
        "kafka_topic": [it.topic for it in items],
        "kafka_partition": [it.partition for it in items],
        "kafka_offset": [it.offset for it in items],
        "ingested_at": [now] * len(items),
        "event_date": [e.event_date for e in events],
    }
    return pa.table(columns, schema=SCHEMA)


def read(settings: Settings, days: list[date] | None = None) -> pl.DataFrame:
    """The stream's lake table (optionally only ``days``) as a polars frame; empty if absent."""
    import polars as pl
    from deltalake import DeltaTable

    path = table_path(settings)
    if not DeltaTable.is_deltatable(str(path)):
        return pl.from_arrow(SCHEMA.empty_table())  # type: ignore[return-value]
    table = DeltaTable(str(path))
    filters = [("event_date", "in", list(days))] if days else None
    return pl.from_arrow(table.to_pyarrow_table(filters=filters))  # type: ignore[return-value]


@dataclass
class CompactReport:
    version: int
    files_added: int
    files_removed: int
    files_vacuumed: int

    def as_dict(self) -> dict[str, int]:
        return {
            "version": self.version,
            "files_added": self.files_added,
            "files_removed": self.files_removed,
            "files_vacuumed": self.files_vacuumed,
        }


def compact(settings: Settings, retention_hours: int | None = None) -> CompactReport:
    """Bin-pack small files per date partition, checkpoint, and vacuum unreferenced files.

    Compaction rewrites data without changing it (application transactions survive), so it may
    run while the consumer appends; vacuum removes only files older than the retention.
    """
    from deltalake import DeltaTable

    path = table_path(settings)
    if not DeltaTable.is_deltatable(str(path)):
        return CompactReport(-1, 0, 0, 0)
    table = DeltaTable(str(path))
    metrics = table.optimize.compact()
    table.create_checkpoint()
    hours = settings.stream_vacuum_retention_hours if retention_hours is None else retention_hours
    removed = table.vacuum(retention_hours=hours, enforce_retention_duration=False, dry_run=False)
    table.cleanup_metadata()
    return CompactReport(
        version=table.version(),
        files_added=int(metrics.get("numFilesAdded", 0)),
        files_removed=int(metrics.get("numFilesRemoved", 0)),
        files_vacuumed=len(removed),
    )

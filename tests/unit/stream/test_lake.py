"""The Delta sink alone (a temporary folder, no Kafka): replays and re-sent ids change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
from deltalake import DeltaTable

from hospital.simulator.events import Event, event_id
from hospital.stream.lake import LakeSink, Landed
from hospital.stream.schema import decode, encode

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _landed(i: int, offset: int, partition: int = 0) -> Landed:
    source = f"00000000-0000-4000-8000-{i:012d}"
    e = Event(
        kind="transport",
        event_id=event_id("transport", source),
        source_id=source,
        occurred_at=datetime(2020, 1, 1, tzinfo=UTC) + timedelta(hours=7 * i),
        patient_id=f"10000000-0000-4000-8000-{i:012d}",
        department_code=None,
        detail={"unit": f"U{i}"},
    )
    return Landed(decode(encode(e)), "t", partition, offset, 0)


def _rows(path: Path) -> pl.DataFrame:
    return pl.from_arrow(DeltaTable(str(path)).to_pyarrow_table())  # type: ignore[return-value]


def test_replayed_batch_is_skipped_and_resent_ids_are_not_duplicated(tmp_path: Path) -> None:
    path = tmp_path / "bed_events"
    sink = LakeSink(path)
    first = [_landed(i, i) for i in range(10)]
    assert sink.write(first, {("t", 0): 10}, NOW) == 10
    assert sink.positions("t", [0, 1]) == {0: 10, 1: None}
    # The same offsets again (a crash before the Kafka commit): no rows, no commit.
    version = DeltaTable(str(path)).version()
    assert LakeSink(path).write(first, {("t", 0): 10}, NOW) == 0
    assert DeltaTable(str(path)).version() == version
    # Half old, half new offsets; then the same events re-sent at new offsets (producer re-run).
    mixed = [_landed(i, i) for i in range(5, 15)]
    assert LakeSink(path).write(mixed, {("t", 0): 15}, NOW) == 5
    resent = [_landed(i, 15 + i) for i in range(15)]
    assert LakeSink(path).write(resent, {("t", 0): 30}, NOW) == 0
    assert LakeSink(path).positions("t", [0]) == {0: 30}
    rows = _rows(path)
    assert rows.height == rows["event_id"].n_unique() == 15
    assert sorted(rows["kafka_offset"].to_list()) == list(range(15))
    # Partitioned by event date.
    assert rows["event_date"].n_unique() == len({x.event.event_date for x in resent})

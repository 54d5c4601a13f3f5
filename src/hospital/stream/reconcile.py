"""``hospital reconcile paths``: do the stream and the batch agree, per day and event kind?

For every day (the UTC date of ``occurred_at``) and kind it compares three sets of event ids:

- **lake**: the stream's Delta table (``lake/stream/bed_events``);
- **stream DB**: ``bed_events`` rows the stream has seen (``seen_by_stream_at`` set);
- **batch**: ``bed_events`` rows the day's batch file confirmed (``confirmed_by_batch_at`` set),
  the batch being the day's record of truth.

The day files under ``lake/batch/date=D/`` are read too (with the batch path's own file specs):
ids in a file but not confirmed in the database are listed as *file not loaded* (an ingestion
still pending, or rows the batch quarantined); that is the batch path's to explain, not a
stream difference.

Events the batch has and the stream missed were *filled in by the batch* (counted, not an error).
A difference the batch did not fill in is an error: a stream event the batch does not confirm
(stream-only), lake and DB disagreeing, or duplicate rows in the lake.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from rich.table import Table

from hospital.clock import day_start
from hospital.settings import Settings
from hospital.stream import lake
from hospital.stream.schema import KINDS, fast_event_id

ONE_DAY = timedelta(days=1)
SHOW_IDS = 5  # ids printed per list in the table (as_dict carries them all)


@dataclass
class KindDay:
    day: date
    kind: str
    lake_rows: int = 0
    lake: set[str] = field(default_factory=set)
    stream_db: set[str] = field(default_factory=set)
    batch: set[str] = field(default_factory=set)
    filled_in: set[str] = field(default_factory=set)  # batch rows the stream never saw
    batch_file: set[str] = field(default_factory=set)  # ids in lake/batch/date=D/ files

    @property
    def file_not_loaded(self) -> list[str]:
        """In the day's batch file but not confirmed in the database (pending or rejected)."""
        return sorted(self.batch_file - self.batch)

    @property
    def stream(self) -> set[str]:
        return self.lake | self.stream_db

    @property
    def stream_only(self) -> list[str]:
        return sorted(self.stream - self.batch)

    @property
    def batch_only(self) -> list[str]:
        return sorted(self.batch - self.stream)

    @property
    def lake_vs_db(self) -> list[str]:
        return sorted(self.lake ^ self.stream_db)

    @property
    def lake_duplicates(self) -> int:
        return self.lake_rows - len(self.lake)

    @property
    def clean(self) -> bool:
        return not self.stream_only and not self.lake_vs_db and self.lake_duplicates == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "day": self.day.isoformat(),
            "kind": self.kind,
            "lake": len(self.lake),
            "lake_rows": self.lake_rows,
            "stream_db": len(self.stream_db),
            "batch": len(self.batch),
            "stream_only": self.stream_only,
            "batch_only": self.batch_only,
            "filled_in_by_batch": len(self.filled_in),
            "filled_in_ids": sorted(self.filled_in),
            "lake_vs_db": self.lake_vs_db,
            "batch_file": len(self.batch_file),
            "batch_file_not_loaded": self.file_not_loaded,
            "clean": self.clean,
        }


@dataclass
class PathsReconciliation:
    rows: list[KindDay]

    @property
    def clean(self) -> bool:
        return all(r.clean for r in self.rows)

    @property
    def filled_in_by_batch(self) -> int:
        return sum(len(r.filled_in) for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "days": sorted({r.day.isoformat() for r in self.rows}),
            "filled_in_by_batch": self.filled_in_by_batch,
            "rows": [r.as_dict() for r in self.rows],
        }

    def render(self) -> Table:
        table = Table(title="stream vs batch (per day and kind)")
        for col in ("day", "kind", "lake", "stream db", "batch", "stream-only", "batch-only",
                    "filled in", "lake≠db", "file not loaded", "status"):  # fmt: skip
            table.add_column(col)
        for r in self.rows:
            table.add_row(
                r.day.isoformat(),
                r.kind,
                str(len(r.lake)) + (f" (+{r.lake_duplicates} dup)" if r.lake_duplicates else ""),
                str(len(r.stream_db)),
                str(len(r.batch)),
                _ids(r.stream_only),
                _ids(r.batch_only),
                str(len(r.filled_in)),
                _ids(r.lake_vs_db),
                _ids(r.file_not_loaded),
                "[green]ok[/]" if r.clean else "[red]DIFFERS[/]",
            )
        return table


def _ids(ids: list[str]) -> str:
    if not ids:
        return "0"
    shown = ", ".join(i[:8] for i in ids[:SHOW_IDS])
    return f"{len(ids)}: {shown}" + (" …" if len(ids) > SHOW_IDS else "")


DB_QUERY = """
SELECT event_id::text, kind, (occurred_at AT TIME ZONE 'UTC')::date AS day,
       seen_by_stream_at IS NOT NULL, confirmed_by_batch_at IS NOT NULL
FROM bed_events
WHERE %(all)s OR (occurred_at AT TIME ZONE 'UTC')::date = ANY(%(days)s)
"""


def reconcile_paths(settings: Settings, dates: list[date] | None = None) -> PathsReconciliation:
    """Compare lake, stream DB rows and batch rows for ``dates`` (None: every day seen)."""
    import polars as pl

    rows: dict[tuple[date, str], KindDay] = {}

    def row(day: date, kind: str) -> KindDay:
        key = (day, kind)
        if key not in rows:
            rows[key] = KindDay(day, kind)
        return rows[key]

    frame = lake.read(settings, dates).select("event_id", "kind", "event_date")
    counts = frame.group_by("event_date", "kind").agg(pl.len().alias("n"))
    for day, kind, n in counts.iter_rows():
        row(day, kind).lake_rows = int(n)
    grouped: dict[tuple[date, str], set[str]] = defaultdict(set)
    for eid, kind, day in frame.iter_rows():
        grouped[(day, kind)].add(eid)
    for (day, kind), ids in grouped.items():
        row(day, kind).lake = ids
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        cur = conn.execute(DB_QUERY, {"all": dates is None, "days": dates or []})
        for eid, kind, day, seen, confirmed in cur:
            r = row(day, kind)
            if seen:
                r.stream_db.add(eid)
            if confirmed:
                r.batch.add(eid)
                if not seen:
                    r.filled_in.add(eid)
    for (day, kind), ids in batch_file_ids(settings, dates).items():
        row(day, kind).batch_file = ids
    # Every requested day shows every kind, even when no path delivered any of it.
    for day in dates or sorted({d for d, _ in rows}):
        for kind in KINDS:
            row(day, kind)
    return PathsReconciliation(sorted(rows.values(), key=lambda r: (r.day, KINDS.index(r.kind))))


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        try:
            return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")
        except ValueError:
            return None  # a bad row: the batch ingestor quarantines it


def batch_file_ids(
    settings: Settings, dates: list[date] | None = None
) -> dict[tuple[date, str], set[str]]:
    """Event ids of the day files under ``lake/batch/date=D/`` (the batch path's files).

    Read with the batch path's own file specs (``hospital.batch.files``): which file carries
    which kind, its source id and time columns; admissions count only from the day's start, as
    the batch ingestor's merge does.
    """
    import polars as pl

    from hospital.batch import files as bf

    out: dict[tuple[date, str], set[str]] = defaultdict(set)
    wanted = set(dates) if dates else None
    # A file of day D may hold an event stamped just past midnight, so read the neighbours too.
    for folder in bf.list_drops(settings.lake_path):
        drop = bf.drop_day(folder.name)
        if drop is None or (wanted and not wanted & {drop, drop + ONE_DAY, drop - ONE_DAY}):
            continue
        for spec in bf.DAY_FILES:
            path = folder / spec.name
            if spec.event is None or not path.exists():
                continue
            kind, source, time_col, _ = spec.event
            frame = pl.read_csv(path, columns=[source, time_col], infer_schema=False)
            for source_id, at in frame.iter_rows():
                when = _parse_time(at) if source_id and at else None
                if when is None or when.tzinfo is None:
                    continue
                if kind == "admission" and when < day_start(drop):
                    continue
                day = when.astimezone(UTC).date()
                if wanted is None or day in wanted:
                    out[(day, kind)].add(fast_event_id(kind, source_id.lower()))
    return out

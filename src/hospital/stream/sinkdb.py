"""The database sink: upsert events into ``bed_events`` with the offsets in the same transaction.

Per micro-batch, one transaction: read (and lock) this sink's stored positions
(``stream_offsets``), drop what is below them (a replay), COPY the rest into a temporary stage,
upsert by ``event_id`` setting only the stream lineage columns (``seen_by_stream_at``,
``stream_topic/partition/offset``; the batch's ``confirmed_by_batch_at``/``batch_file`` are never
touched), quarantine invalid messages, advance the positions, commit. A crash anywhere before the
commit leaves nothing; after it, the batch is complete and its offsets are recorded with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from hospital.stream.lake import Landed


@dataclass(frozen=True, slots=True)
class Rejected:
    """An invalid message with its Kafka coordinates and the reason."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str


@dataclass
class DbResult:
    applied: int = 0
    quarantined: int = 0
    rejected: list[Rejected] | None = None


STAGE = """
CREATE TEMP TABLE IF NOT EXISTS stream_stage (
    event_id uuid, kind text, source_id uuid, patient_id uuid, department_code text,
    occurred_at timestamptz, event_date date, detail jsonb,
    stream_topic text, stream_partition integer, stream_offset bigint
) ON COMMIT DELETE ROWS
"""
COPY = (
    "COPY stream_stage (event_id, kind, source_id, patient_id, department_code, occurred_at,"
    " event_date, detail, stream_topic, stream_partition, stream_offset) FROM STDIN"
)
# DISTINCT ON: a producer that re-sent a day may put one event id twice in one batch.
UPSERT = """
INSERT INTO bed_events (event_id, kind, source_id, patient_id, department_code, occurred_at,
                        event_date, detail, seen_by_stream_at, stream_topic, stream_partition,
                        stream_offset)
SELECT DISTINCT ON (event_id) event_id, kind, source_id, patient_id, department_code,
       occurred_at, event_date, detail, %(now)s, stream_topic, stream_partition, stream_offset
FROM stream_stage
ORDER BY event_id, stream_offset
ON CONFLICT (event_id) DO UPDATE SET
    seen_by_stream_at = EXCLUDED.seen_by_stream_at,
    stream_topic = EXCLUDED.stream_topic,
    stream_partition = EXCLUDED.stream_partition,
    stream_offset = EXCLUDED.stream_offset
WHERE bed_events.seen_by_stream_at IS NULL
"""
QUARANTINE = """
INSERT INTO stream_quarantine (topic, kafka_partition, kafka_offset, message_key, payload, reason)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING
"""
ADVANCE = """
INSERT INTO stream_offsets (topic, kafka_partition, next_offset, consumer_group, updated_at)
VALUES (%s, %s, %s, %s, now())
ON CONFLICT (topic, kafka_partition) DO UPDATE SET
    next_offset = GREATEST(stream_offsets.next_offset, EXCLUDED.next_offset),
    consumer_group = EXCLUDED.consumer_group,
    updated_at = now()
"""


def _text(value: str | None) -> str:
    """A value in COPY text format (NULL, and the characters COPY treats specially)."""
    if value is None:
        return "\\N"
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value


def copy_text(items: list[Landed]) -> bytes:
    """The stage rows as one COPY text buffer (much faster than a write_row call per row).

    Ids, kinds and timestamps come validated from :func:`hospital.stream.schema.decode`, so only
    the free-text fields need escaping.
    """
    lines = []
    for it in items:
        e = it.event
        lines.append(
            f"{e.event_id}\t{e.kind}\t{e.source_id}\t{e.patient_id}\t{_text(e.department_code)}\t"
            f"{e.occurred_at.isoformat()}\t{e.event_date.isoformat()}\t{_text(e.detail_json)}\t"
            f"{_text(it.topic)}\t{it.partition}\t{it.offset}\n"
        )
    return "".join(lines).encode()


class DbSink:
    """One connection to the hospital database, used for one micro-batch at a time."""

    def __init__(self, dsn: str, group: str) -> None:
        self.dsn = dsn
        self.group = group
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def conn(self) -> psycopg.Connection[tuple[object, ...]]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn)
            self._conn.execute(STAGE)
            self._conn.commit()
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def positions(self, topic: str, partitions: list[int]) -> dict[int, int | None]:
        conn = self.conn()
        with conn.transaction():
            rows = conn.execute(
                "SELECT kafka_partition, next_offset FROM stream_offsets"
                " WHERE topic = %s AND kafka_partition = ANY(%s)",
                (topic, partitions),
            ).fetchall()
        stored = {int(p): int(o) for p, o in rows}  # type: ignore[call-overload]
        return {p: stored.get(p) for p in partitions}

    def write(
        self,
        items: list[Landed],
        rejected: list[Rejected],
        ends: dict[tuple[str, int], int],
        now: datetime,
        before_commit: Callable[[list[Rejected]], None] | None = None,
    ) -> DbResult:
        """Apply one micro-batch in one transaction; returns rows upserted and quarantined.

        ``before_commit`` gets the rejected messages that are new to this sink (to dead-letter
        them) and runs inside the transaction, so they are dead-lettered before being recorded.
        """
        conn = self.conn()
        result = DbResult(rejected=[])
        try:
            with conn.transaction():
                cur = conn.cursor()
                stored: dict[tuple[str, int], int] = {}
                for topic in {t for t, _ in ends}:
                    rows = cur.execute(
                        "SELECT kafka_partition, next_offset FROM stream_offsets"
                        " WHERE topic = %s AND kafka_partition = ANY(%s) FOR UPDATE",
                        (topic, [p for t, p in ends if t == topic]),
                    ).fetchall()
                    for p, o in rows:
                        stored[(topic, int(p))] = int(o)  # type: ignore[call-overload]
                advance = {tp: e for tp, e in ends.items() if e > stored.get(tp, -1)}
                if not advance:
                    return result

                def fresh(topic: str, partition: int, offset: int) -> bool:
                    return offset >= stored.get((topic, partition), -1)

                todo = [i for i in items if fresh(i.topic, i.partition, i.offset)]
                if todo:
                    with cur.copy(COPY) as copy:
                        copy.write(copy_text(todo))
                    cur.execute(UPSERT, {"now": now})
                    result.applied = max(cur.rowcount, 0)
                bad = [r for r in rejected if fresh(r.topic, r.partition, r.offset)]
                if bad:
                    cur.executemany(
                        QUARANTINE,
                        [
                            (
                                r.topic,
                                r.partition,
                                r.offset,
                                r.key.decode("utf-8", "replace") if r.key is not None else None,
                                r.value,
                                r.reason,
                            )
                            for r in bad
                        ],
                    )
                    result.quarantined = len(bad)
                    result.rejected = bad
                cur.executemany(
                    ADVANCE, [(t, p, end, self.group) for (t, p), end in advance.items()]
                )
                if before_commit is not None:
                    before_commit(bad)
        except psycopg.OperationalError:
            self.close()  # a broken connection is reopened for the next batch
            raise
        return result

"""The applier: Debezium topics -> hospital mirrors, exactly once in effect.

Loop: consume up to ``CDC_BATCH_MAX_EVENTS`` messages (or what arrives within
``CDC_BATCH_MAX_WAIT_MS``), decode them (:mod:`hospital.cdc.envelope`), and in ONE transaction
apply the rows (:mod:`hospital.cdc.batch`), record poison messages in ``cdc_quarantine`` and
store the next offset per partition in ``cdc_offsets``. The consumer never trusts Kafka's
committed offsets: on every assignment it seeks to the offsets stored in the hospital database,
so a crash at any instant resumes exactly after the last committed batch (Kafka offsets are
committed too, after the database, only so that lag tools see progress).

Test hook: ``HOSPITAL_CDC_PAUSE_AT=<point>[@n]`` (points: after_rows, before_commit,
after_commit) makes the n-th batch (default 1st) stop at that point, touch the file named by
``HOSPITAL_CDC_PAUSE_FILE`` and sleep until killed, so a test can ``kill -9`` it exactly there.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

from hospital.cdc import catalog
from hospital.cdc.batch import Counts, Quarantined, Stager, write_offsets, write_quarantine
from hospital.cdc.envelope import HEARTBEAT_TABLE, Change, Decoder, PoisonError
from hospital.clock import utcnow
from hospital.errors import CdcError
from hospital.settings import Settings

PAUSE_ENV = "HOSPITAL_CDC_PAUSE_AT"
PAUSE_FILE_ENV = "HOSPITAL_CDC_PAUSE_FILE"
CATALOG_REFRESH_SECONDS = 10.0


def topic_regex(settings: Settings) -> str:
    """Every table topic of the source connector (``<prefix>.public.<table>``)."""
    return "^" + re.escape(settings.cdc_topic_prefix) + r"\.public\..+"


@dataclass
class ApplyReport:
    messages: int = 0
    batches: int = 0
    upserted: int = 0
    stale: int = 0
    deleted: int = 0
    truncated: int = 0
    quarantined: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Pause:
    """The crash-test hook (inactive unless HOSPITAL_CDC_PAUSE_AT is set)."""

    def __init__(self) -> None:
        spec = os.environ.get(PAUSE_ENV, "")
        point, _, nth = spec.partition("@")
        self.point = point or None
        self.remaining = int(nth) if nth else 1
        self.file = os.environ.get(PAUSE_FILE_ENV)

    def __call__(self, point: str) -> None:
        if point != self.point:
            return
        self.remaining -= 1
        if self.remaining > 0:
            return
        if self.file:
            Path(self.file).write_text(point)
        while True:  # wait here to be killed
            time.sleep(3600)


class Applier:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.group = settings.cdc_group
        self.conn = psycopg.connect(settings.dsn("hospital", "hospital_app"))
        self.conn.execute("SET synchronous_commit = on")
        self.conn.commit()
        self.specs = catalog.load_specs(settings)
        self.decoder = Decoder(self.specs)
        self.stager = Stager(self.conn)
        self.stager.prepare(self.specs)
        self.pause = _Pause()
        self.positions: dict[tuple[str, int], int] = {}
        self.assigned: set[tuple[str, int]] = set()
        self.report = ApplyReport()
        self._last_refresh = 0.0
        self._producer: Producer | None = None
        self._metrics_at = time.monotonic()
        self._metrics_base = ApplyReport()
        self.last_committed_at: str | None = None
        self._poisoned = False
        self._gaps: dict[tuple[str, int], tuple[int, int]] = {}
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.bootstrap_servers,
                "group.id": self.group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                # New table topics appear when the connector snapshots: find them quickly.
                "topic.metadata.refresh.interval.ms": 2000,
                "fetch.wait.max.ms": 50,
                "queued.max.messages.kbytes": 262_144,
                "session.timeout.ms": 10_000,
            }
        )

    # --- offsets ---------------------------------------------------------------------------------
    def stored_offsets(self) -> dict[tuple[str, int], int]:
        rows = self.conn.execute(
            "SELECT topic, partition, next_offset FROM cdc_offsets WHERE consumer_group = %s",
            (self.group,),
        ).fetchall()
        self.conn.rollback()
        return {(str(t), int(p)): int(o) for t, p, o in rows}

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        stored = self.stored_offsets()
        for tp in partitions:
            offset = stored.get((tp.topic, tp.partition))
            tp.offset = offset if offset is not None else OFFSET_BEGINNING
            self.positions[(tp.topic, tp.partition)] = offset if offset is not None else 0
            self.assigned.add((tp.topic, tp.partition))
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.assigned.discard((tp.topic, tp.partition))
        consumer.unassign()

    # --- the loop --------------------------------------------------------------------------------
    def run(self, until_idle: bool = False, stop: threading.Event | None = None) -> ApplyReport:
        started = time.perf_counter()
        self.consumer.subscribe(
            [topic_regex(self.settings)], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        idle_since = time.monotonic()
        wait = self.settings.cdc_batch_max_wait_ms / 1000
        try:
            while stop is None or not stop.is_set():
                messages = self.consumer.consume(self.settings.cdc_batch_max_events, timeout=wait)
                messages = [m for m in messages if self._keep(m)]
                if messages:
                    counts = self.apply_messages(messages)
                    if counts.changes or self._poisoned:
                        idle_since = time.monotonic()
                # Heartbeats keep arriving while the EHR is quiet: idle means no data changes.
                if until_idle and time.monotonic() - idle_since >= self.settings.cdc_idle_seconds:
                    if self.caught_up():
                        break
                    idle_since = time.monotonic() - self.settings.cdc_idle_seconds / 2
                self._maybe_metrics()
        finally:
            self.report.seconds = time.perf_counter() - started
            self._maybe_metrics(force=True)
            self.close()
        return self.report

    def _keep(self, msg: Message) -> bool:
        err = msg.error()
        if err is None:
            return True
        if err.code() != KafkaError._PARTITION_EOF and not err.retriable() and err.fatal():
            raise CdcError(f"Kafka consumer failed: {err.str()}")
        return False

    def caught_up(self) -> bool:
        """Every CDC topic partition is assigned and consumed up to its high watermark."""
        metadata = self.consumer.list_topics(timeout=10)
        pattern = re.compile(topic_regex(self.settings))
        wanted = {
            (name, p)
            for name, t in metadata.topics.items()
            if pattern.match(name) and not name.endswith(f".{HEARTBEAT_TABLE}")
            for p in t.partitions
        }
        if not wanted or not wanted <= self.assigned:
            return False
        for topic, partition in wanted:
            _, high = self.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10, cached=False
            )
            if self.positions.get((topic, partition), 0) < high:
                return False
        return True

    # --- one batch -------------------------------------------------------------------------------
    def _decode(self, msg: Message) -> Change | Quarantined | None:
        value = msg.value()
        if value is None:
            return None  # the tombstone after a delete: the delete event did the work
        try:
            return self.decoder.decode(value)
        except PoisonError as exc:
            reason = str(exc)
            if "no mirror" in reason and self._refresh_catalog():
                try:
                    return self.decoder.decode(value)
                except PoisonError as again:
                    reason = str(again)
            return self._quarantined(msg, reason)

    def _quarantined(self, msg: Message, reason: str) -> Quarantined:
        key = msg.key()
        value = msg.value()
        return Quarantined(
            str(msg.topic()),
            int(msg.partition() or 0),
            int(msg.offset() or 0),
            key.decode("utf-8", "replace")[:2000] if key else None,
            reason[:2000],
            value.decode("utf-8", "replace")[:20_000] if value else None,
        )

    def _refresh_catalog(self) -> bool:
        """Re-read the catalog (a migration may have added a column); at most every 10 s."""
        now = time.monotonic()
        if now - self._last_refresh < CATALOG_REFRESH_SECONDS:
            return False
        self._last_refresh = now
        specs = catalog.load_specs(self.settings)
        if specs == self.specs:
            return False
        self.specs = specs
        self.decoder = Decoder(specs)
        self.stager.prepare(specs)
        return True

    def contiguous(self, messages: list[Message]) -> list[Message]:
        """Per partition, only messages continuing from the applied position.

        Messages fetched before a rebalance can arrive in one batch with messages from after the
        seek to the stored offsets; applying both and storing the highest offset would skip the
        range between. Behind the position: already applied, dropped. Ahead of it (a gap): seek
        back and re-read, unless the same gap was seen before (compaction, control records).
        """
        kept: list[Message] = []
        expected: dict[tuple[str, int], int] = {}
        blocked: set[tuple[str, int]] = set()
        for msg in messages:
            tp = (str(msg.topic()), int(msg.partition() or 0))
            if tp in blocked:
                continue
            offset = int(msg.offset() or 0)
            nxt = expected.get(tp, self.positions.get(tp))
            if nxt is None or offset == nxt or self._gaps.get(tp) == (nxt, offset):
                kept.append(msg)
                expected[tp] = offset + 1
            elif offset < nxt:
                continue
            else:
                blocked.add(tp)
                self._gaps[tp] = (nxt, offset)
                gap = f"{tp[0]}[{tp[1]}] ({nxt} -> {offset})"
                print(f"cdc applier: offset gap on {gap}: re-reading", file=sys.stderr, flush=True)
                self.consumer.seek(TopicPartition(tp[0], tp[1], nxt))
        return kept

    def apply_messages(self, messages: list[Message]) -> Counts:
        messages = self.contiguous(messages)
        changes: list[Change] = []
        origins: list[Message] = []
        poison: list[Quarantined] = []
        offsets: dict[tuple[str, int], int] = {}
        for msg in messages:
            tp = (str(msg.topic()), int(msg.partition() or 0))
            offsets[tp] = int(msg.offset() or 0) + 1
            decoded = self._decode(msg)
            if isinstance(decoded, Change):
                changes.append(decoded)
                origins.append(msg)
            elif isinstance(decoded, Quarantined):
                poison.append(decoded)
        counts = self._commit(changes, origins, poison, offsets)
        counts.changes = sum(1 for c in changes if c.op != "h")
        self._poisoned = bool(poison)
        for tp, offset in offsets.items():
            self.positions[tp] = offset
        self._commit_kafka(offsets)
        if changes:
            self.last_committed_at = max(c.committed_at for c in changes)
        r = self.report
        r.messages += len(messages)
        r.batches += 1
        r.upserted += counts.upserted
        r.stale += counts.stale
        r.deleted += counts.deleted
        r.truncated += counts.truncated
        r.quarantined += len(poison)
        return counts

    def _commit(
        self,
        changes: list[Change],
        origins: list[Message],
        poison: list[Quarantined],
        offsets: dict[tuple[str, int], int],
    ) -> Counts:
        try:
            with self.conn.transaction(), self.conn.cursor() as cur:
                counts = self.stager.apply(cur, changes)
                self.pause("after_rows")
                self._dead_letter(poison)
                write_quarantine(cur, poison)
                write_offsets(cur, self.group, offsets)
                self.pause("before_commit")
        except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
            # One bad row spoils the set-based statements: redo the batch row by row and
            # quarantine exactly the rows PostgreSQL refuses.
            counts = self._commit_one_by_one(changes, origins, poison, offsets, exc)
        self.pause("after_commit")
        return counts

    def _commit_one_by_one(
        self,
        changes: list[Change],
        origins: list[Message],
        poison: list[Quarantined],
        offsets: dict[tuple[str, int], int],
        first: Exception,
    ) -> Counts:
        counts = Counts()
        with self.conn.transaction(), self.conn.cursor() as cur:
            for change, msg in zip(changes, origins, strict=True):
                try:
                    with self.conn.transaction():
                        counts.add(self.stager.apply(cur, [change]))
                except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
                    reason = f"rejected by PostgreSQL: {str(exc).splitlines()[0]}"
                    poison.append(self._quarantined(msg, reason))
            self._dead_letter(poison)
            write_quarantine(cur, poison)
            write_offsets(cur, self.group, offsets)
            self.pause("before_commit")
        return counts

    def _dead_letter(self, poison: list[Quarantined]) -> None:
        """Copy poison messages to the dead-letter topic (at least once; the table is exact)."""
        if not poison:
            return
        if self._producer is None:
            self._producer = Producer(
                {"bootstrap.servers": self.settings.bootstrap_servers, "acks": "all"}
            )
        for q in poison:
            self._producer.produce(
                self.settings.cdc_dlq_topic,
                key=q.key,
                value=q.value,
                headers={
                    "source_topic": q.topic,
                    "source_partition": str(q.partition),
                    "source_offset": str(q.offset),
                    "reason": q.reason[:1000],
                },
            )
        if self._producer.flush(30) != 0:
            raise CdcError("the dead-letter topic did not acknowledge poison messages")

    def _commit_kafka(self, offsets: dict[tuple[str, int], int]) -> None:
        tps = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        if tps:
            with contextlib.suppress(Exception):
                self.consumer.commit(offsets=tps, asynchronous=True)

    # --- metrics ---------------------------------------------------------------------------------
    def lag_messages(self) -> int:
        lag = 0
        for topic, partition in list(self.assigned):
            try:
                _, high = self.consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=1, cached=True
                )
            except Exception:
                continue
            if high >= 0:
                lag += max(high - self.positions.get((topic, partition), 0), 0)
        return lag

    def _maybe_metrics(self, force: bool = False) -> None:
        now = time.monotonic()
        elapsed = now - self._metrics_at
        if not force and elapsed < self.settings.cdc_metrics_seconds:
            return
        base, r = self._metrics_base, self.report
        applied = r.upserted + r.deleted - base.upserted - base.deleted
        if force and r.messages == base.messages:
            return
        figures = {
            "rows_applied": float(applied),
            "changes_per_s": (r.messages - base.messages) / elapsed if elapsed > 0 else 0.0,
            "lag": float(self.lag_messages()),
            "quarantined": float(r.quarantined - base.quarantined),
            "stale_skipped": float(r.stale - base.stale),
        }
        if self.last_committed_at:
            from datetime import datetime

            behind = utcnow() - datetime.fromisoformat(self.last_committed_at)
            figures["lag_seconds"] = max(behind.total_seconds(), 0.0)
        try:
            with self.conn.transaction():
                self.conn.cursor().executemany(
                    "INSERT INTO pipeline_metrics (path, metric, value) VALUES ('cdc', %s, %s)",
                    list(figures.items()),
                )
        except psycopg.Error:
            return  # metrics are best effort; the data path must not stop for them
        self._metrics_at = now
        self._metrics_base = ApplyReport(**asdict(r))

    def close(self) -> None:
        try:
            self.consumer.close()
        finally:
            if self._producer is not None:
                self._producer.flush(10)
            self.conn.close()


def run(
    settings: Settings, until_idle: bool = False, stop: threading.Event | None = None
) -> ApplyReport:
    """Apply CDC topics to the mirrors until stopped (or, with ``until_idle``, caught up)."""
    return Applier(settings).run(until_idle=until_idle, stop=stop)

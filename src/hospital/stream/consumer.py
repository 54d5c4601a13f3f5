"""The stream processor: Kafka -> lake (Delta) and hospital DB, exactly once in effect.

Per micro-batch (up to ``STREAM_BATCH_MAX_EVENTS`` messages or ``STREAM_BATCH_MAX_WAIT_MS``):

1. decode + validate every message (invalid ones become :class:`Rejected`);
2. lake commit (in a thread, while 3 is built): rows the table lacks + per-partition next
   offsets as Delta app transactions;
3. database transaction: upsert rows, quarantine + dead-letter the invalid messages, advance
   ``stream_offsets``; committed after the lake commit has succeeded;
4. commit the Kafka offsets (only now are both sinks durable).

A crash between any two steps is harmless: on (re)assignment the consumer seeks each partition
to the lower of the two sinks' own stored positions, and each sink drops what it already holds.
Kafka's committed offsets are bookkeeping for lag tools, never the source of truth.

For crash tests, ``HOSPITAL_STREAM_PAUSE_AT=<point>:<n>`` makes the process print
``PAUSED <point> <n>`` on stderr and sleep at the n-th time it reaches ``point`` (one of
:data:`PAUSE_POINTS`), so a test can ``kill -9`` it exactly there.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from hospital.clock import utcnow
from hospital.errors import HospitalError, StreamError
from hospital.settings import Settings
from hospital.stream.lake import LakeSink, Landed, compact, table_path
from hospital.stream.producer import ensure_topic
from hospital.stream.schema import InvalidEvent, decode
from hospital.stream.sinkdb import DbSink, Rejected

PAUSE_ENV = "HOSPITAL_STREAM_PAUSE_AT"
PAUSE_POINTS = ("before_lake", "after_lake", "in_db", "after_db")


@dataclass
class ConsumeReport:
    batches: int = 0
    messages: int = 0
    lake_rows: int = 0
    db_rows: int = 0
    quarantined: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class _Pause:
    """The hidden crash-test hook (no effect unless ``HOSPITAL_STREAM_PAUSE_AT`` is set)."""

    def __init__(self, spec: str | None) -> None:
        self.point, self.n = "", 0
        if spec:
            point, _, n = spec.partition(":")
            if point not in PAUSE_POINTS:
                raise StreamError(f"{PAUSE_ENV}: {point!r} is not one of {', '.join(PAUSE_POINTS)}")
            self.point, self.n = point, int(n or 1)
        self.hits: dict[str, int] = {}

    def __call__(self, point: str) -> None:
        if point != self.point:
            return
        self.hits[point] = self.hits.get(point, 0) + 1
        if self.hits[point] == self.n:
            print(f"PAUSED {point} {self.n}", file=sys.stderr, flush=True)
            time.sleep(3600)


@dataclass
class _Metrics:
    """Figures for ``pipeline_metrics``, appended at most every ``STREAM_METRICS_SECONDS``."""

    applied: int = 0
    quarantined: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    last_day: date | None = None
    last_flush: float = field(default_factory=time.monotonic)


class Processor:
    """One consumer-group member and its two sinks (``run`` drives it)."""

    def __init__(self, settings: Settings) -> None:
        from confluent_kafka import Consumer, Producer

        self.settings = settings
        self.topic = settings.stream_topic
        ensure_topic(settings, self.topic)
        ensure_topic(settings, settings.stream_dlq_topic, 1)
        self.lake = LakeSink(table_path(settings), settings.stream_instance_id)
        self.db = DbSink(settings.dsn("hospital", "hospital_app"), settings.stream_group)
        self.pause = _Pause(os.environ.get(PAUSE_ENV))
        self.owned: set[tuple[str, int]] = set()
        self.next_offsets: dict[tuple[str, int], int | None] = {}
        self.metrics = _Metrics()
        self.report = ConsumeReport()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake-sink")
        self.consumer = Consumer(
            {
                "bootstrap.servers": settings.bootstrap_servers,
                "group.id": settings.stream_group,
                "group.instance.id": settings.stream_instance_id,
                "session.timeout.ms": settings.stream_session_timeout_ms,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "fetch.max.bytes": 64 * 1024 * 1024,
            }
        )
        self.dlq = Producer(
            {
                "bootstrap.servers": settings.bootstrap_servers,
                "enable.idempotence": True,
                "acks": "all",
            }
        )

    # --- group membership -------------------------------------------------------------------
    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        from confluent_kafka import OFFSET_BEGINNING

        self.lake.forget()
        numbers = [tp.partition for tp in partitions]
        in_lake = self.lake.positions(self.topic, numbers)
        in_db = self.db.positions(self.topic, numbers)
        for tp in partitions:
            a, b = in_lake.get(tp.partition), in_db.get(tp.partition)
            # Each sink resumes from its own position: start at the lower one (the sink that is
            # ahead skips the replayed part); a sink with nothing needs the partition from 0.
            tp.offset = OFFSET_BEGINNING if a is None or b is None else min(a, b)
        self.owned = {(tp.topic, tp.partition) for tp in partitions}
        # Our own record of where each partition stands (librdkafka reports no position for a
        # partition we sought to its end and never fetched from, which would look like lag).
        self.next_offsets = {
            (tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None) for tp in partitions
        }
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        self.owned -= {(tp.topic, tp.partition) for tp in partitions}
        consumer.unassign()

    # --- one micro-batch --------------------------------------------------------------------
    def _gather(self) -> list[Any]:
        s = self.settings
        deadline = time.monotonic() + s.stream_batch_max_wait_ms / 1000
        msgs: list[Any] = []
        while len(msgs) < s.stream_batch_max_events:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            got = self.consumer.consume(
                num_messages=s.stream_batch_max_events - len(msgs), timeout=left
            )
            for m in got:
                err = m.error()
                if err is None:
                    msgs.append(m)
                elif err.fatal():
                    raise StreamError(f"Kafka consumer failed: {err}")
            if not got and not msgs:
                break
        # A rebalance inside consume() may have taken partitions away: never write for those.
        return [m for m in msgs if (m.topic(), m.partition()) in self.owned]

    def _dead_letter(self, bad: list[Rejected]) -> None:
        for r in bad:
            self.dlq.produce(
                self.settings.stream_dlq_topic,
                key=r.key,
                value=r.value,
                headers=[
                    ("source_topic", r.topic.encode()),
                    ("source_partition", str(r.partition).encode()),
                    ("source_offset", str(r.offset).encode()),
                    ("reason", r.reason.encode()),
                ],
            )
        if bad and self.dlq.flush(15):
            raise StreamError("the dead-letter topic did not acknowledge in 15 s")
        self.pause("in_db")

    def process(self, msgs: list[Any]) -> None:
        from confluent_kafka import TopicPartition

        items: list[Landed] = []
        rejected: list[Rejected] = []
        ends: dict[tuple[str, int], int] = {}
        for m in msgs:
            topic, partition, offset = m.topic(), m.partition(), m.offset()
            ends[(topic, partition)] = max(ends.get((topic, partition), 0), offset + 1)
            try:
                event = decode(m.value())
            except InvalidEvent as exc:
                rejected.append(Rejected(topic, partition, offset, m.key(), m.value(), str(exc)))
                continue
            items.append(Landed(event, topic, partition, offset, m.timestamp()[1]))
        now = utcnow()
        self.pause("before_lake")
        # The sinks are independent (each keeps its own position), so the lake commit runs in a
        # thread while the DB transaction is built; the DB still commits only after the lake.
        lake_job = self._pool.submit(self.lake.write, items, ends, now)
        reached = False

        def before_commit(bad: list[Rejected]) -> None:
            nonlocal reached
            self._dead_letter(bad)
            lake_job.result()  # a failed lake commit rolls the DB transaction back
            reached = True
            self.pause("after_lake")  # lake committed, DB transaction open

        try:
            result = self.db.write(items, rejected, ends, now, before_commit=before_commit)
        except BaseException:
            wait([lake_job])  # never leave a lake commit running behind a failed batch
            raise
        lake_rows = lake_job.result()
        if not reached:  # the DB had the whole batch already (a replay)
            self.pause("after_lake")
        self.pause("after_db")
        visible_ms = utcnow().timestamp() * 1000
        try:
            self.consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in ends.items()],
                asynchronous=False,
            )
        except Exception as exc:  # the sinks hold the truth; a lost commit only shows as lag
            print(f"stream: Kafka offset commit failed ({exc}); sinks are durable", file=sys.stderr)
        self.next_offsets.update(ends)
        r = self.report
        r.batches += 1
        r.messages += len(msgs)
        r.lake_rows += lake_rows
        r.db_rows += result.applied
        r.quarantined += result.quarantined
        mt = self.metrics
        mt.applied += result.applied
        mt.quarantined += result.quarantined
        mt.latencies_ms.extend(visible_ms - i.timestamp_ms for i in items if i.timestamp_ms > 0)
        if items:
            mt.last_day = max(i.event.event_date for i in items)

    # --- lag and metrics --------------------------------------------------------------------
    def lag(self) -> int:
        from confluent_kafka import TopicPartition

        total = 0
        for topic, partition in sorted(self.owned):
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=5, cached=False
            )
            at = self.next_offsets.get((topic, partition))
            total += max(high - (low if at is None else max(at, low)), 0)
        return total

    def flush_metrics(self, force: bool = False) -> None:
        import numpy as np

        mt = self.metrics
        if not force and time.monotonic() - mt.last_flush < self.settings.stream_metrics_seconds:
            return
        rows: list[tuple[str, float]] = [
            ("events_applied", float(mt.applied)),
            ("quarantined", float(mt.quarantined)),
            ("lag", float(self.lag())),
        ]
        if mt.latencies_ms:
            rows.append(("latency_ms_p99", float(np.percentile(mt.latencies_ms, 99))))
        conn = self.db.conn()
        with conn.transaction():
            conn.cursor().executemany(
                "INSERT INTO pipeline_metrics (path, metric, value, sim_day)"
                " VALUES ('stream', %s, %s, %s)",
                [(name, value, mt.last_day) for name, value in rows],
            )
        self.metrics = _Metrics(last_day=mt.last_day)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.consumer.close()
        self.dlq.flush(5)
        self.db.close()


def run(
    settings: Settings, until_idle: bool = False, stop: threading.Event | None = None
) -> ConsumeReport:
    """Consume until ``stop`` is set (or, with ``until_idle``, until caught up and quiet)."""
    started = time.monotonic()
    proc = Processor(settings)
    proc.consumer.subscribe(
        [settings.stream_topic], on_assign=proc._on_assign, on_revoke=proc._on_revoke
    )
    last_message = time.monotonic()
    try:
        while stop is None or not stop.is_set():
            msgs = proc._gather()
            if msgs:
                proc.process(msgs)
                last_message = time.monotonic()
                every = settings.stream_compact_every_batches
                if every and proc.report.batches % every == 0:
                    # The schedule for small files: a day of 3-minute micro-batches would
                    # otherwise leave hundreds of tiny files per date partition.
                    compact(settings)
            proc.flush_metrics()
            quiet = time.monotonic() - last_message
            if until_idle and quiet >= settings.stream_idle_seconds:
                if proc.owned and proc.lag() == 0:
                    break
                if not proc.owned and quiet >= max(60.0, settings.stream_idle_seconds):
                    # Nothing assigned to us for long: another member has the topic.
                    print(f"stream: no partitions assigned in {quiet:.0f}s", file=sys.stderr)
                    break
        proc.flush_metrics(force=True)
    except HospitalError:
        raise
    except Exception as exc:
        # A sink or the broker failed: one sentence for the CLI; the supervisor restarts us and
        # the sinks' own positions make the retry safe.
        raise StreamError(
            f"the stream worker stopped after {proc.report.batches} batches: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    finally:
        proc.close()
    proc.report.seconds = time.monotonic() - started
    return proc.report

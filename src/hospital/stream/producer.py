"""Publish the simulator's real-time events to Kafka.

One topic (``STREAM_TOPIC``, default ``hospital.bed_events``) carries every kind: a patient's
admission, transfers and discharge must stay in order, and Kafka only orders within a partition,
so the key is the patient id and all kinds share the topic. The producer is idempotent
(``enable.idempotence=true``, ``acks=all``): a retried send never duplicates; a re-run of a whole
day re-sends the same deterministic event ids, which both sinks absorb.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from hospital.errors import StreamError
from hospital.settings import Settings
from hospital.simulator.events import DayEvents, Event, ticks
from hospital.stream.schema import encode


def ensure_topic(settings: Settings, topic: str, partitions: int | None = None) -> None:
    """Create ``topic`` with ``STREAM_PARTITIONS`` partitions unless it exists."""
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    # log_level 4: no informational chatter on stderr from this short-lived client.
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers, "log_level": 4})
    meta = admin.list_topics(timeout=10)
    if topic in meta.topics and not meta.topics[topic].error:
        return
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions or settings.stream_partitions)]
    )
    for future in futures.values():
        try:
            future.result(timeout=15)
        except Exception as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise StreamError(f"cannot create Kafka topic {topic}: {exc}") from None


class StreamProducer:
    """Idempotent Kafka producer of bed events (library API; the CLI wraps it)."""

    def __init__(self, settings: Settings, topic: str | None = None) -> None:
        from confluent_kafka import Producer

        self.topic = topic or settings.stream_topic
        ensure_topic(settings, self.topic)
        self._errors: list[str] = []
        self._producer = Producer(
            {
                "bootstrap.servers": settings.bootstrap_servers,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 500_000,
            }
        )

    def _delivered(self, err: Any, _msg: Any) -> None:
        if err is not None:
            self._errors.append(str(err))

    def _produce(self, key: bytes | None, value: bytes | None) -> None:
        while True:
            try:
                self._producer.produce(
                    self.topic, value=value, key=key, on_delivery=self._delivered
                )
                return
            except BufferError:
                # Local queue full: let librdkafka send, then retry (back-pressure, no loss).
                self._producer.poll(0.05)

    def publish(self, events: Iterable[Event]) -> int:
        """Queue ``events`` (keyed by patient id); returns how many were queued."""
        n = 0
        for event in events:
            self._produce(event.patient_id.encode(), encode(event))
            n += 1
            if n % 10_000 == 0:
                self._producer.poll(0)
        self._producer.poll(0)
        return n

    def publish_raw(self, key: bytes | None, value: bytes | None) -> None:
        """Send an arbitrary message (tests and tools: e.g. a poison message)."""
        self._produce(key, value)

    def flush(self, timeout: float = 60.0) -> None:
        """Wait until every queued message is acknowledged by all in-sync replicas."""
        left = self._producer.flush(timeout)
        if left:
            raise StreamError(f"{left} message(s) to {self.topic} not delivered in {timeout:.0f}s")
        if self._errors:
            errors, self._errors = self._errors, []
            raise StreamError(f"{len(errors)} message(s) to {self.topic} failed: {errors[0]}")

    def close(self) -> None:
        self.flush()

    def __enter__(self) -> StreamProducer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def schedule(day: DayEvents, cadence_minutes: int) -> Iterator[tuple[datetime, list[Event]]]:
    """The day's events tick by tick; none is lost at the day boundary.

    :func:`hospital.simulator.events.ticks` covers [midnight, next midnight); an event of this
    day's result stamped just before midnight goes out with the first tick and one after the day
    ends with the last, so every event the batch file will carry is also streamed.
    """
    windows = list(ticks(day, cadence_minutes))
    covered = {e.event_id for _, evs in windows for e in evs}
    left = [e for e in day.realtime if e.event_id not in covered]
    if left and windows:
        start = windows[0][0]
        early = [e for e in left if e.occurred_at < start]
        late = [e for e in left if e.occurred_at >= start]
        windows[0] = (start, early + windows[0][1])
        windows[-1] = (windows[-1][0], windows[-1][1] + late)
    yield from windows


@dataclass
class ProduceReport:
    days: int = 0
    events: int = 0
    ticks: int = 0
    seconds: float = 0.0


def produce_days(
    settings: Settings,
    first: date,
    days: int = 1,
    rate: float | None = None,
    stop: threading.Event | None = None,
    skip: frozenset[str] = frozenset(),
) -> ProduceReport:
    """Simulate ``days`` days from ``first`` and publish their events tick by tick.

    Pacing: ``rate`` events/s when given (load tests; 0 = as fast as possible), otherwise one
    simulated day per ``SECONDS_PER_SIM_DAY`` real seconds (0 = as fast as possible). ``skip``
    names event ids to leave out (tests: an event the stream misses).
    """
    from hospital.simulator.api import build_population, seeds_dir, simulate
    from hospital.simulator.config import SimConfig
    from hospital.simulator.events import day_events

    config = SimConfig.from_settings(settings)
    people = build_population(config, seeds_dir(settings))
    cadence = settings.stream_cadence_minutes
    tick_seconds = settings.seconds_per_sim_day * cadence / 1440.0
    report = ProduceReport()
    started = time.perf_counter()
    with StreamProducer(settings) as producer:
        for result in simulate(config, people, first, days):
            for _, window in schedule(day_events(result), cadence):
                if stop is not None and stop.is_set():
                    return report
                sent = producer.publish(e for e in window if e.event_id not in skip)
                report.events += sent
                report.ticks += 1
                if rate:
                    due = started + report.events / rate
                elif tick_seconds:
                    due = started + report.ticks * tick_seconds
                else:
                    continue
                pause = due - time.perf_counter()
                if pause > 0:
                    producer.flush()
                    time.sleep(pause)
            report.days += 1
    report.seconds = time.perf_counter() - started
    return report


def day_range(first: date, days: int) -> list[date]:
    return [first + timedelta(days=i) for i in range(days)]

"""Stream benchmark: Kafka -> Delta lake + bed_events with exactly-once bookkeeping.

Run against a running stack (its env file sourced): ``uv run python bench/stream.py
[--events N] [--runs N] [--baseline-events N]``. Writes ``bench/results/stream.json``.

- **throughput**: N distinct events (simulated days, cloned under new source ids) are published
  first; then the processor drains them in micro-batches (one Delta commit with the offsets as
  app transactions + one DB transaction with the offsets, then the Kafka commit). events/s from
  the first message to the last durable commit; median of ``--runs`` runs.
- **baseline**: the same events and the same sinks and bookkeeping, one message at a time (a
  Delta commit + a DB transaction + a Kafka commit per event): what exactly-once costs without
  micro-batching. Same durability on both sides (both commit).
- **latency**: events published tick by tick (the simulator's 3-minute ticks, one every 100 ms)
  while the processor runs with the default batch settings; p50/p99 from the producer's message
  timestamp to the moment both sinks have committed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from hospital.settings import Settings, load_settings
from hospital.simulator.api import build_population, simulate
from hospital.simulator.config import SimConfig
from hospital.simulator.events import Event, day_events, event_id
from hospital.stream.consumer import Processor
from hospital.stream.lake import table_path
from hospital.stream.producer import StreamProducer, schedule

RESULTS = Path(__file__).parent / "results" / "stream.json"


def isolated(base: Settings, tag: str, **extra: object) -> Settings:
    name = f"bench-{tag}-{uuid.uuid4().hex[:8]}"
    values: dict[str, object] = {
        "stream_topic": f"bench.{name}",
        "stream_dlq_topic": f"bench.{name}.dlq",
        "stream_group": name,
        "stream_instance_id": name,
        "stream_lake_subdir": f"bench-stream/{name}",
    }
    values.update(extra)
    return base.model_copy(update=values)


def clones(base: list[Event], n: int) -> list[Event]:
    """``n`` distinct, valid events: the simulated ones again under new source ids."""
    out: list[Event] = []
    copy = 0
    while len(out) < n:
        for e in base:
            source = str(uuid.uuid5(uuid.UUID(e.source_id), str(copy)))
            out.append(replace(e, source_id=source, event_id=event_id(e.kind, source)))
            if len(out) == n:
                break
        copy += 1
    return out


def drain(settings: Settings, expected: int) -> tuple[float, Processor]:
    """Run a processor until ``expected`` messages are durable; seconds from first message."""
    proc = Processor(settings)
    proc.consumer.subscribe(
        [settings.stream_topic], on_assign=proc._on_assign, on_revoke=proc._on_revoke
    )
    first: float | None = None
    try:
        while proc.report.messages < expected:
            msgs = proc._gather()
            if msgs:
                first = first or time.perf_counter()
                proc.process(msgs)
        assert first is not None
        return time.perf_counter() - first, proc
    finally:
        proc.close()


def cleanup(settings: Settings) -> None:
    import psycopg

    shutil.rmtree(table_path(settings).parent, ignore_errors=True)
    with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
        conn.execute("DELETE FROM bed_events WHERE stream_topic = %s", (settings.stream_topic,))
        conn.execute("DELETE FROM stream_offsets WHERE topic = %s", (settings.stream_topic,))


def throughput(base: Settings, events: list[Event], **extra: object) -> tuple[float, int]:
    settings = isolated(base, "tp", **extra)
    with StreamProducer(settings) as producer:
        producer.publish(events)
    seconds, proc = drain(settings, len(events))
    rows = proc.report.db_rows
    assert rows == proc.report.lake_rows == len(events), proc.report
    cleanup(settings)
    return len(events) / seconds, proc.report.batches


def latency(base: Settings, ticks: list[list[Event]], tick_seconds: float) -> dict[str, float]:
    settings = isolated(base, "lat")
    stop = threading.Event()
    proc_box: dict[str, Any] = {}
    total = sum(len(t) for t in ticks)

    def consume() -> None:
        proc = Processor(settings)
        proc_box["proc"] = proc
        proc.consumer.subscribe(
            [settings.stream_topic], on_assign=proc._on_assign, on_revoke=proc._on_revoke
        )
        while not stop.is_set() and proc.report.messages < total:
            msgs = proc._gather()
            if msgs:
                proc.process(msgs)
        proc.close()

    producer = StreamProducer(settings)  # creates the topic before the consumer subscribes
    worker = threading.Thread(target=consume)
    worker.start()
    time.sleep(5)  # let the consumer join its group before the first tick
    for window in ticks:
        started = time.perf_counter()
        producer.publish(window)
        producer.flush()
        time.sleep(max(tick_seconds - (time.perf_counter() - started), 0))
    worker.join(120)
    stop.set()
    producer.close()
    lat = proc_box["proc"].metrics.latencies_ms
    cleanup(settings)
    return {
        "latency_events": len(lat),
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
        "latency_ms_p99": round(float(np.percentile(lat, 99)), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-events", type=int, default=1_000)
    parser.add_argument("--latency-ticks", type=int, default=300)
    args = parser.parse_args()

    load_start = os.getloadavg()
    base = load_settings()
    config = SimConfig.from_settings(base, num_people=20_000, seed=11)
    people = build_population(config)
    days = [day_events(r) for r in simulate(config, people, None, 2)]
    simulated = [e for d in days for e in d.realtime]
    events = clones(simulated, args.events)

    rates = [throughput(base, events)[0] for _ in range(args.runs)]
    baseline = [
        throughput(base, events[: args.baseline_events], stream_batch_max_events=1)[0]
        for _ in range(args.runs)
    ]
    ticks = [w for d in days for _, w in schedule(d, base.stream_cadence_minutes)]
    lat = latency(base, ticks[: args.latency_ticks], 0.1)
    load_end = os.getloadavg()

    rate, base_rate = statistics.median(rates), statistics.median(baseline)
    result = {
        "benchmark": "stream",
        "metrics": {
            "events": args.events,
            "events_per_s": round(rate),
            "events_per_s_runs": [round(r) for r in rates],
            "batch_max_events": base.stream_batch_max_events,
            "partitions": base.stream_partitions,
            **lat,
            "latency_tick_every_ms": 100,
            "latency_batch_max_wait_ms": base.stream_batch_max_wait_ms,
        },
        "baseline": {
            "per_event_events": args.baseline_events,
            "per_event_events_per_s": round(base_rate, 1),
        },
        "ratios": {"ratio_vs_per_event": round(rate / base_rate, 1)},
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_start": [round(x, 2) for x in load_start],
            "loadavg_end": [round(x, 2) for x in load_end],
            "note": "shared 2-core machine (other work running); Kafka + PostgreSQL on it too",
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""Exactly once in both sinks while the consumer is `kill -9`ed at random points.

The worker is a real `hospital stream consume` child process. Most kills use the hidden pause
hook (HOSPITAL_STREAM_PAUSE_AT=<point>:<n>): the worker stops at a named point of its n-th
micro-batch, e.g. after the lake commit but before the database commit, and is killed there;
the others land at random moments. After each kill a new worker resumes from the sinks' own
positions. At the end: distinct event ids = rows = produced events, in the lake and in the DB.
"""

from __future__ import annotations

import random
import time

import psycopg
import pytest
from deltalake import DeltaTable

from hospital.settings import Settings
from hospital.stream import lake
from hospital.stream.lake import app_id, table_path
from tests.integration.test_stream_support import (
    Worker,
    isolated,
    publish,
    simulated_days,
    worker_env,
)

pytestmark = pytest.mark.integration


def test_kill_9_at_random_points_lands_every_event_exactly_once(stack: Settings) -> None:
    rng = random.Random()
    seed = rng.randrange(1_000_000)
    rng.seed(seed)
    with isolated(stack, "crash", stream_batch_max_events=100) as settings:
        events = [e for day in simulated_days(stack, seed=31, days=4) for e in day.realtime]
        publish(settings, events)
        # Five kills at named points (two between the lake commit and the DB commit), in random
        # order and at a random micro-batch, then two at random moments.
        plan: list[str | float] = [
            f"{point}:{rng.randint(1, 3)}"
            for point in ("after_lake", "after_lake", "before_lake", "in_db", "after_db")
        ]
        rng.shuffle(plan)
        plan += [rng.uniform(1.0, 3.0) for _ in range(2)]
        paused = []

        def size() -> dict[str, str]:
            # Each worker cuts micro-batches of another size, so a replay after a kill never
            # repeats the killed batch exactly: the sinks must skip the overlap offset by offset.
            return {"STREAM_BATCH_MAX_EVENTS": str(rng.randint(30, 150))}

        for step in plan:
            if isinstance(step, str):
                worker = Worker(worker_env(settings, HOSPITAL_STREAM_PAUSE_AT=step, **size()))
                assert worker.wait_for("PAUSED", timeout=90), (
                    f"seed {seed}: worker never reached {step} (exit {worker.proc.poll()}): "
                    f"{''.join(worker.stderr)[-2000:]}"
                )
                paused.append(step)
            else:
                worker = Worker(worker_env(settings, **size()))
                time.sleep(step)
            worker.kill9()
        assert len(paused) == 5
        Worker(worker_env(settings)).finish()

        produced = {e.event_id for e in events}
        rows = lake.read(settings)
        assert rows.height == rows["event_id"].n_unique() == len(produced), f"seed {seed}"
        assert set(rows["event_id"].to_list()) == produced
        with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
            n, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM bed_events WHERE stream_topic = %s",
                (settings.stream_topic,),
            ).fetchone() or (0, 0)
            ids = {
                str(r[0])
                for r in conn.execute(
                    "SELECT event_id FROM bed_events WHERE stream_topic = %s",
                    (settings.stream_topic,),
                )
            }
            offsets = dict(
                conn.execute(
                    "SELECT kafka_partition, next_offset FROM stream_offsets WHERE topic = %s",
                    (settings.stream_topic,),
                ).fetchall()
            )
        assert n == distinct == len(produced), f"seed {seed}"
        assert ids == produced
        # Both sinks end at the same position: the end of every partition.
        table = DeltaTable(str(table_path(settings)))
        assert sum(offsets.values()) == len(events)
        for partition, end in offsets.items():
            assert table.transaction_version(app_id(settings.stream_topic, partition)) == end


def test_a_second_worker_takes_over_the_partitions_of_a_killed_one(stack: Settings) -> None:
    """Two workers share the group; one is killed after its second batch, the other finishes."""
    with isolated(stack, "takeover", stream_batch_max_events=50) as settings:
        events = [e for day in simulated_days(stack, seed=51, days=2) for e in day.realtime]
        publish(settings, events)
        ids = [f"{settings.stream_instance_id}-{name}" for name in ("a", "b")]
        # b takes every partition, commits two batches to both sinks and stops before the Kafka
        # commit; a joins, b is killed, and once b's session times out a gets its partitions
        # and must resume from the sinks' positions (ahead of b's Kafka offsets).
        b = Worker(
            worker_env(settings, STREAM_INSTANCE_ID=ids[1], HOSPITAL_STREAM_PAUSE_AT="after_db:2")
        )
        assert b.wait_for("PAUSED", timeout=90), "".join(b.stderr)[-2000:]
        a = Worker(worker_env(settings, STREAM_INSTANCE_ID=ids[0]))
        time.sleep(1)
        b.kill9()
        a.finish(180)

        rows = lake.read(settings)
        assert rows.height == rows["event_id"].n_unique() == len(events)
        with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
            n = conn.execute(
                "SELECT count(*), count(DISTINCT event_id) FROM bed_events WHERE stream_topic = %s",
                (settings.stream_topic,),
            ).fetchone()
        assert n == (len(events), len(events))
        # Both workers committed to the lake (the commit metadata names the worker).
        history = DeltaTable(str(table_path(settings))).history()
        writers = {h.get("hospital.stream.worker") for h in history}
        assert set(ids) <= writers

"""Helpers for the stream path's integration tests (no tests here).

Each test gets its own topic, dead-letter topic, consumer group, static member id and lake folder,
so it neither sees nor disturbs other tests' data in the shared stack.
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import psycopg

from hospital.settings import Settings
from hospital.simulator.api import build_population, simulate
from hospital.simulator.config import SimConfig
from hospital.simulator.events import DayEvents, Event, day_events
from hospital.stream.lake import table_path
from hospital.stream.producer import StreamProducer
from tests.support import TEST_ENV, read_env_file


def overrides(name: str, **extra: object) -> dict[str, object]:
    tag = f"{name}-{uuid.uuid4().hex[:8]}"
    values: dict[str, object] = {
        "stream_topic": f"test.{tag}",
        "stream_dlq_topic": f"test.{tag}.dlq",
        "stream_group": f"test-{tag}",
        "stream_instance_id": f"test-{tag}-1",
        "stream_lake_subdir": f"test-stream/{tag}",
        "stream_idle_seconds": 2.0,
        "stream_batch_max_wait_ms": 100,
    }
    values.update(extra)
    return values


@contextmanager
def isolated(stack: Settings, name: str, **extra: object) -> Iterator[Settings]:
    """Settings with this test's own topics, group and lake folder (removed afterwards)."""
    settings = stack.model_copy(update=overrides(name, **extra))
    try:
        yield settings
    finally:
        shutil.rmtree(table_path(settings).parent, ignore_errors=True)


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    """Environment for a `hospital stream ...` child process with exactly these settings."""
    env = dict(os.environ)
    env.update({k.upper(): v for k, v in read_env_file(TEST_ENV).items()})
    for field in (
        "stream_topic",
        "stream_dlq_topic",
        "stream_group",
        "stream_instance_id",
        "stream_lake_subdir",
        "stream_idle_seconds",
        "stream_batch_max_events",
        "stream_batch_max_wait_ms",
    ):
        env[field.upper()] = str(getattr(settings, field))
    env["HOSPITAL_LAKE_DIR"] = str(settings.lake_path)
    env.update(extra)
    return env


def simulated_days(stack: Settings, seed: int, days: int) -> list[DayEvents]:
    # A busy day (~700 events, as at 5,000,000 people): the crash and compaction tests need
    # several micro-batches per worker; a 20,000-person world defaults to a 1M catchment's ~150.
    config = SimConfig.from_settings(stack, num_people=20_000, seed=seed, visits_per_1000=0.6)
    people = build_population(config)
    return [day_events(r) for r in simulate(config, people, None, days)]


def publish(settings: Settings, events: list[Event], forget: bool = True) -> None:
    """Publish ``events``; first (``forget``) drop their bed_events rows left by earlier runs."""
    if forget:
        with psycopg.connect(settings.dsn("hospital", "hospital_app")) as conn:
            conn.execute(
                "DELETE FROM bed_events WHERE event_id = ANY(%s::uuid[])",
                ([e.event_id for e in events],),
            )
    with StreamProducer(settings) as producer:
        assert producer.publish(events) == len(events)


class Worker:
    """A `hospital stream consume --until-idle` child process whose stderr we can wait on."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hospital.cli", "stream", "consume", "--until-idle"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)
        self.lines.put("")

    def wait_for(self, prefix: str, timeout: float) -> bool:
        """True once a stderr line starts with ``prefix``; False if the process ends first."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                return False
            if line == "":
                return False
            if line.startswith(prefix):
                return True

    def kill9(self) -> None:
        self.proc.kill()  # SIGKILL: no cleanup, no offset commit, no group leave
        self.proc.wait(30)

    def finish(self, timeout: float = 120) -> str:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise AssertionError(f"worker busy after {timeout}s: {''.join(self.stderr)}") from None
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        if self.proc.returncode != 0:
            raise AssertionError(f"worker failed ({self.proc.returncode}): {''.join(self.stderr)}")
        return out


def day_of(event: Event) -> date:
    return event.occurred_at.date()

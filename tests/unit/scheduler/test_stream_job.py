"""The stream job's windows: paced days resume at the next window, never republishing one."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from hospital.scheduler import crash
from hospital.scheduler.jobs import Counters, DayContext, Pacer, StreamJob
from hospital.scheduler.profiles import RunPlan
from hospital.scheduler.state import MemoryState
from hospital.settings import Settings
from hospital.simulator.activity import HospitalSim
from hospital.simulator.api import build_population
from hospital.simulator.config import SimConfig
from hospital.simulator.events import Event, ticks

CONFIG = SimConfig(seed=5, num_people=20_000, origin=date(2023, 6, 1))


class FakeProducer:
    def __init__(self) -> None:
        self.published: list[str] = []
        self.flushes = 0

    def publish(self, events: list[Event]) -> int:
        self.published.extend(e.event_id for e in events)
        return len(events)

    def flush(self) -> None:
        self.flushes += 1

    def close(self) -> None:
        pass


def context(state: MemoryState, seconds_per_day: float) -> DayContext:
    sim = HospitalSim(CONFIG, build_population(CONFIG))
    result = sim.step()
    plan = RunPlan("t", CONFIG.origin, CONFIG.origin, seconds_per_day, 30, 20_000, 5)
    clock = [0.0]

    def sleep(s: float) -> None:
        clock[0] += s

    pacer = Pacer(seconds_per_day, lambda: False, sleep=sleep, now=lambda: clock[0])
    return DayContext(
        Settings(), CONFIG, plan, CONFIG.origin, result, pacer, state, Counters(), lambda: False
    )


def job_with(producer: FakeProducer) -> StreamJob:
    job = StreamJob()
    job._producer = producer  # the Kafka producer's place: no broker in a unit test
    return job


def expected_ids(ctx: DayContext) -> list[str]:
    return [e.event_id for _, window in ticks(ctx.events, 30) for e in window]


@pytest.mark.parametrize(("seconds_per_day", "repeats"), [(60.0, False), (0.0, True)])
def test_crash_mid_day_then_resume(
    monkeypatch: pytest.MonkeyPatch, seconds_per_day: float, repeats: bool
) -> None:
    state = MemoryState()
    producer = FakeProducer()
    ctx = context(state, seconds_per_day)
    want = expected_ids(ctx)
    assert want, "the day has events"
    monkeypatch.setenv(crash.CRASH_AT_ENV, f"stream:mid_day:{CONFIG.origin.isoformat()}")
    monkeypatch.setenv(crash.CRASH_MODE_ENV, "raise")
    with pytest.raises(crash.SimulatedCrash):
        job_with(producer).run_day(ctx)
    first_half = len(producer.published)
    assert 0 < first_half < len(want)
    monkeypatch.delenv(crash.CRASH_AT_ENV)
    detail: dict[str, Any] = job_with(producer).run_day(ctx)
    assert set(producer.published) == set(want)
    if repeats:
        # Max speed keeps no position inside the day: the day is published again in full
        # (the consumer's upsert by event id makes the repeat harmless).
        assert len(producer.published) == first_half + len(want)
    else:
        # Paced: the position of each published window is recorded; nothing is sent twice.
        assert sorted(producer.published) == sorted(want)
        assert detail["published"] == len(want) - first_half


def test_paced_windows_follow_the_day() -> None:
    state = MemoryState()
    ctx = context(state, 48.0)  # 48 real seconds per day: a 30-minute window every second
    producer = FakeProducer()
    job_with(producer).run_day(ctx)
    assert state.progress("stream", CONFIG.origin) == 47  # 48 windows of 30 minutes
    assert producer.flushes >= 48
    assert ctx.counters.rows["stream"] == len(expected_ids(ctx))

"""The one clock: simulated time only moves forward, and nothing else reads the wall clock."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from hospital.clock import SimClock

SRC = Path(__file__).resolve().parents[2] / "src" / "hospital"


def test_sim_clock_starts_at_midnight_utc_and_advances() -> None:
    clock = SimClock(start=date(2020, 1, 1))
    assert clock.now() == datetime(2020, 1, 1, tzinfo=UTC)
    clock.advance(timedelta(minutes=3))
    assert clock.now() == datetime(2020, 1, 1, 0, 3, tzinfo=UTC)
    clock.advance_days(31)
    assert clock.today == date(2020, 2, 1)
    assert clock.day_index == 31


def test_sim_clock_never_runs_backwards() -> None:
    clock = SimClock(start=date(2020, 1, 1))
    clock.advance_days(2)
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
    with pytest.raises(ValueError):
        clock.set(datetime(2020, 1, 2, tzinfo=UTC))


def test_no_module_but_the_clock_reads_wall_time() -> None:
    banned = re.compile(r"datetime\.now\(|datetime\.utcnow\(|date\.today\(|\btime\.time\(")
    offenders = [
        str(path.relative_to(SRC))
        for path in SRC.rglob("*.py")
        if path.name != "clock.py" and banned.search(path.read_text())
    ]
    assert offenders == []

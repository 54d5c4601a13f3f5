"""The one clock of the platform.

Simulated time (the hospital's calendar) and real time (wall clock, for pacing and timestamps of
pipeline bookkeeping) are both read through this module; nothing else calls ``datetime.now()`` or
``time.time()`` (ruff's banned-api rule enforces it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything that can tell the current time."""

    def now(self) -> datetime: ...


class RealClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()


def utcnow() -> datetime:
    """Wall-clock time in UTC (for bookkeeping columns, never for simulated events)."""
    return datetime.now(UTC)


@dataclass
class SimClock:
    """Simulated hospital time.

    ``start`` is the first simulated day (midnight, UTC). ``seconds_per_day`` is how many real
    seconds one simulated day should take when paced (0 means as fast as possible).
    """

    start: date
    seconds_per_day: float = 0.0
    _current: datetime = field(init=False)

    def __post_init__(self) -> None:
        self._current = datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC)

    def now(self) -> datetime:
        return self._current

    @property
    def today(self) -> date:
        return self._current.date()

    @property
    def day_index(self) -> int:
        """Days elapsed since ``start`` (0 on the first day)."""
        return (self.today - self.start).days

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("the simulated clock never runs backwards")
        self._current += delta
        return self._current

    def advance_days(self, days: int = 1) -> datetime:
        return self.advance(timedelta(days=days))

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        if when < self._current:
            raise ValueError("the simulated clock never runs backwards")
        self._current = when


def day_start(day: date) -> datetime:
    """Midnight UTC of a simulated day."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)

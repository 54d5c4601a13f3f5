"""The knobs of one simulated world (everything that, with the seed, fixes its output)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from hospital.errors import SimulationError
from hospital.settings import Settings


@dataclass(frozen=True)
class SimConfig:
    seed: int = 42
    num_people: int = 5_000_000
    origin: date = date(2020, 1, 1)  # the world's first simulated day
    visits_per_day: float = 600.0  # mean daily visits outside flu season, over a week
    retirement_age: int = 65
    transfer_interval_minutes: int = 3  # mean gap between patient movements (stream cadence)
    initial_occupancy: float = 0.75  # share of beds filled when the world starts

    def __post_init__(self) -> None:
        if self.num_people < 1:
            raise SimulationError("num_people must be at least 1")
        if not 40 <= self.retirement_age <= 80:
            raise SimulationError(f"retirement_age {self.retirement_age} is not in 40..80")
        if self.visits_per_day <= 0:
            raise SimulationError("visits_per_day must be positive")
        if not 0 <= self.initial_occupancy <= 1:
            raise SimulationError("initial_occupancy must be within 0..1")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> SimConfig:
        base = cls(
            seed=settings.seed,
            num_people=settings.num_people,
            origin=settings.start_date,
            transfer_interval_minutes=settings.stream_cadence_minutes,
        )
        return replace(base, **overrides)  # type: ignore[arg-type]

    def key(self) -> str:
        """A stable text form, stored with the EHR so a resumed run can refuse a different world."""
        return (
            f"seed={self.seed};people={self.num_people};origin={self.origin.isoformat()};"
            f"visits={self.visits_per_day};retire={self.retirement_age};"
            f"transfer_min={self.transfer_interval_minutes};occ={self.initial_occupancy}"
        )

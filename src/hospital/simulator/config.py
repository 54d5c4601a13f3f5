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
    # Mean daily visits per 1,000 catchment people outside flu season, over a week: volume
    # scales with num_people (0.12 gives the reference ~600 visits a day at 5,000,000 people).
    visits_per_1000: float = 0.12
    retirement_age: int = 65
    transfer_interval_minutes: int = 3  # the stream cadence (kept in the world's key)
    initial_occupancy: float = 0.8  # share of beds filled when the world starts
    target_occupancy: float = 0.92  # beds are planned so mean demand fills this share...
    max_blocking: float = 0.05  # ...and a ward is full for at most this share of admissions
    births_per_1000: float = 19.0  # crude birth rate per 1,000 people a year (Stats SA 2022)
    mortality_scale: float = 1.0  # multiplies the background (life-table) death rates
    moves_per_inpatient: float = 0.4  # trips to theatre, radiology... per inpatient a day
    # The hospital serves at least this many people: a smaller population is a sample of such a
    # catchment (the hospital keeps its size; each person visits more often). 0: scale strictly.
    min_catchment: int = 1_000_000

    def __post_init__(self) -> None:
        if self.num_people < 1:
            raise SimulationError("num_people must be at least 1")
        if not 40 <= self.retirement_age <= 80:
            raise SimulationError(f"retirement_age {self.retirement_age} is not in 40..80")
        if self.visits_per_1000 <= 0:
            raise SimulationError("visits_per_1000 must be positive")
        if not 0 <= self.initial_occupancy <= 1:
            raise SimulationError("initial_occupancy must be within 0..1")
        if not 0 < self.max_blocking < 1:
            raise SimulationError("max_blocking must be within (0, 1)")
        if not 0.3 <= self.target_occupancy <= 1:
            raise SimulationError("target_occupancy must be within 0.3..1")
        if self.min_catchment < 0:
            raise SimulationError("min_catchment cannot be negative")
        if self.births_per_1000 < 0 or self.mortality_scale < 0 or self.moves_per_inpatient < 0:
            raise SimulationError("birth, mortality and movement rates cannot be negative")

    @property
    def catchment(self) -> int:
        """The population the hospital's demand and beds are sized for."""
        return max(self.num_people, self.min_catchment)

    @property
    def visits_per_day(self) -> float:
        """Mean daily visits outside flu season: the rate per 1,000 times the catchment."""
        return self.visits_per_1000 * self.catchment / 1000

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> SimConfig:
        base = cls(
            seed=settings.seed,
            num_people=settings.num_people,
            origin=settings.start_date,
            transfer_interval_minutes=settings.stream_cadence_minutes,
            visits_per_1000=settings.sim_visits_per_1000,
            target_occupancy=settings.sim_target_occupancy,
            births_per_1000=settings.sim_births_per_1000,
            min_catchment=settings.sim_min_catchment,
        )
        return replace(base, **overrides)  # type: ignore[arg-type]

    def key(self) -> str:
        """A stable text form, stored with the EHR so a resumed run can refuse a different world."""
        return (
            f"seed={self.seed};people={self.num_people};origin={self.origin.isoformat()};"
            f"visits1000={self.visits_per_1000};retire={self.retirement_age};"
            f"transfer_min={self.transfer_interval_minutes};occ={self.initial_occupancy};"
            f"target={self.target_occupancy};block={self.max_blocking};births={self.births_per_1000};"
            f"mortality={self.mortality_scale};moves={self.moves_per_inpatient};"
            f"catchment={self.min_catchment}"
        )

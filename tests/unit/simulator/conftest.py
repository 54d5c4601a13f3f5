"""Shared small worlds for the simulator's unit tests (built once per session)."""

from __future__ import annotations

from datetime import date

import pytest

from hospital.simulator.activity import DayResult, HospitalSim
from hospital.simulator.api import build_population, simulate
from hospital.simulator.config import SimConfig
from hospital.simulator.population import People

# A small population with a busy hospital (demand per 1,000 raised so ~600 visits a day): for the
# mechanics (beds, day boundaries, keys). Realism is tested on a bigger catchment at the
# default rates (test_realism.py).
SMALL = SimConfig(
    seed=7, num_people=20_000, origin=date(2021, 1, 1), visits_per_1000=30.0, min_catchment=0
)
DAYS = 40
LONG_DAYS = 120


@pytest.fixture(scope="session")
def people() -> People:
    return build_population(SMALL)


@pytest.fixture(scope="session")
def long_run(people: People) -> tuple[HospitalSim, list[DayResult]]:
    sim = HospitalSim(SMALL, people)
    return sim, list(simulate(SMALL, people, SMALL.origin, LONG_DAYS, sim))


@pytest.fixture(scope="session")
def run(long_run: tuple[HospitalSim, list[DayResult]]) -> tuple[HospitalSim, list[DayResult]]:
    """The first ``DAYS`` days of the long run (the sim object is the long run's)."""
    sim, results = long_run
    return sim, results[:DAYS]

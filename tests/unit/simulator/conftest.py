"""Shared small worlds for the simulator's unit tests (built once per session)."""

from __future__ import annotations

from datetime import date

import pytest

from hospital.simulator.activity import DayResult, HospitalSim
from hospital.simulator.api import build_population, simulate
from hospital.simulator.config import SimConfig
from hospital.simulator.population import People

SMALL = SimConfig(seed=7, num_people=20_000, origin=date(2021, 1, 1))
DAYS = 40


@pytest.fixture(scope="session")
def people() -> People:
    return build_population(SMALL)


@pytest.fixture(scope="session")
def run(people: People) -> tuple[HospitalSim, list[DayResult]]:
    sim = HospitalSim(SMALL, people)
    results = list(simulate(SMALL, people, SMALL.origin, DAYS, sim))
    return sim, results

"""The lake belongs to one simulated world, like the EHR."""

from __future__ import annotations

from pathlib import Path

import pytest

from hospital.scheduler.runner import claim_lake
from hospital.scheduler.state import SchedulerError
from hospital.settings import load_settings
from hospital.simulator.config import SimConfig


def test_a_lake_refuses_another_world(tmp_path: Path) -> None:
    settings = load_settings(hospital_lake_dir=str(tmp_path / "lake"))
    world = SimConfig(seed=1, num_people=100)
    claim_lake(settings, world)
    claim_lake(settings, world)  # the same world again: fine (a resumed run)
    assert (tmp_path / "lake" / ".world").read_text().strip() == world.key()
    with pytest.raises(SchedulerError, match="another simulated world"):
        claim_lake(settings, SimConfig(seed=2, num_people=100))

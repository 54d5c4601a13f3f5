from __future__ import annotations

from datetime import timedelta

import numpy as np

from hospital.simulator.population import People
from hospital.simulator.staff import ROLE_MIN_AGE, Staff, day_number

from .conftest import SMALL


def test_retirement_replacement_and_rosters_over_years(people: People) -> None:
    staff = Staff(SMALL, people)
    retire_age = SMALL.retirement_age
    day = SMALL.origin
    retirements = 0
    for _ in range(365 * 8):
        changes = staff.advance(day)
        retirements += len(changes.retired)
        d = day_number(day)
        active = staff.active_mask()
        ages = (d - people.birth[staff.person_idx]) / 365.25
        assert (ages[active] < retire_age).all()
        # Only people who have not yet reached their retirement birthday are active.
        assert (staff.retire_on[active] > d).all()
        roster = staff.roster(day)
        retired_ids = {staff.staff_id[i] for i in np.flatnonzero(~active).tolist()}
        assert retired_ids.isdisjoint(roster["staff_id"].to_list())
        day += timedelta(days=1)
    assert retirements > 10
    frame = staff.frame(day)
    by_id = {r["staff_id"]: r for r in frame.iter_rows(named=True)}
    retired = [r for r in frame.iter_rows(named=True) if r["status"] == "retired"]
    assert len(retired) == retirements
    for r in retired:
        new = by_id[r["replaced_by"]]
        assert (new["role"], new["specialty"], new["department_code"]) == (
            r["role"],
            r["specialty"],
            r["department_code"],
        )
        assert new["hire_date"] == r["retire_date"]
        assert new["person_id"] != r["person_id"]
        hire_age = (new["hire_date"] - new["birth_date"]).days / 365.25
        assert hire_age >= ROLE_MIN_AGE[new["role"]]
    assert frame["person_id"].n_unique() == frame.height
    assert (frame.filter(frame["status"] == "active")["retire_date"].is_null()).all()

from __future__ import annotations

from datetime import date

import numpy as np
import polars as pl
import pytest

from hospital.errors import SimulationError
from hospital.simulator.population import People, generate_population
from hospital.simulator.sa_id import luhn_valid, parse_id


def test_known_valid_and_invalid_numbers() -> None:
    assert luhn_valid("8001015009087")
    assert not luhn_valid("8001015009088")
    with pytest.raises(SimulationError):
        parse_id("8001015009088")


def test_every_id_is_valid_unique_and_matches_birth_date_and_sex(people: People) -> None:
    frame = people.frame
    ids = frame["national_id"]
    assert ids.str.len_chars().eq(13).all()
    assert ids.n_unique() == frame.height
    assert all(luhn_valid(x) for x in ids.to_list())
    assert (frame["birth_date"].dt.strftime("%y%m%d") == ids.str.slice(0, 6)).all()
    seq = ids.str.slice(6, 4).cast(pl.Int32)
    assert ((seq >= 5000) == (frame["sex"] == "M")).all()
    assert ids.str.slice(10, 1).is_in(["0", "1"]).all()
    assert (ids.str.slice(11, 1) == "8").all()


def test_ids_unique_at_a_larger_size() -> None:
    frame = generate_population(300_000, 3, date(2020, 1, 1))
    assert frame["national_id"].n_unique() == frame.height
    ages = (np.datetime64("2020-01-01") - frame["birth_date"].to_numpy()).astype(int) / 365.25
    assert ages.min() >= 0 and ages.max() < 100

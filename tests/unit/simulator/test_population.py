from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import polars as pl

from hospital.simulator.population import PEOPLE_COLUMNS, generate_population, write_population


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    a = write_population(generate_population(20_000, 11, date(2020, 1, 1)), tmp_path / "a")
    b = write_population(generate_population(20_000, 11, date(2020, 1, 1)), tmp_path / "b")
    c = write_population(generate_population(20_000, 12, date(2020, 1, 1)), tmp_path / "c")
    assert _digest(a.csv) == _digest(b.csv)
    assert _digest(a.parquet) == _digest(b.parquet)
    assert _digest(a.csv) != _digest(c.csv)
    parquet = pl.read_parquet(a.parquet)
    assert parquet.equals(pl.read_csv(a.csv, schema=parquet.schema))


def test_columns_and_south_african_shape() -> None:
    frame = generate_population(20_000, 1, date(2020, 1, 1))
    assert tuple(frame.columns) == PEOPLE_COLUMNS
    assert frame["person_id"].n_unique() == frame.height
    assert frame["person_id"].str.contains(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab]").all()
    assert (frame["province"] == "Gauteng").all()
    assert frame["phone"].str.contains(r"^\+27[6-8]\d{8}$").all()
    assert {"Soweto", "Sandton", "Tembisa"} <= set(frame["city"].unique().to_list())
    groups = frame["population_group"].value_counts(normalize=True)
    black = groups.filter(pl.col("population_group") == "Black African")["proportion"][0]
    assert 0.8 < black < 0.88
    age = (date(2020, 1, 1) - frame["birth_date"]).dt.total_days() / 365.25
    # A young pyramid: about a quarter under 15, a few percent 70+.
    assert 0.22 < (age < 15).mean() < 0.33  # type: ignore[operator]
    assert 0.01 < (age >= 70).mean() < 0.06  # type: ignore[operator]

"""Names, suburbs and streets: diverse per population group and consistent with the suburb."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from hospital.simulator import names
from hospital.simulator.data import build_names
from hospital.simulator.population import People, generate_population
from hospital.simulator.registry import Registry

SAMPLE = 200_000
# Distinct first names per (group, sex) in a 200,000-person sample (docs/simulator.md). The
# previous lists had 11-46 per (group, sex).
FIRST_NAME_FLOOR = {"Black African": 450, "White": 300, "Coloured": 250, "Indian/Asian": 250}
# The most common full name may be held by at most this share of people (old lists: ~3e-4).
TOP_FULL_NAME_SHARE = 1.5e-4


@pytest.fixture(scope="module")
def sample() -> pl.DataFrame:
    return generate_population(SAMPLE, 31, date(2020, 1, 1))


def test_first_name_diversity_per_group_and_sex(sample: pl.DataFrame) -> None:
    distinct = sample.group_by("population_group", "sex").agg(pl.col("first_name").n_unique())
    assert distinct.height == 8
    for group, _sex, count in distinct.rows():
        assert count >= FIRST_NAME_FLOOR[group], (group, _sex, count)


def test_top_full_name_is_rare(sample: pl.DataFrame) -> None:
    full = sample.select(pl.concat_str(["first_name", "last_name"], separator=" ").alias("n"))
    top = full["n"].value_counts(sort=True).row(0)
    assert top[1] / SAMPLE < TOP_FULL_NAME_SHARE, top
    same_name_and_birth = sample.select(
        pl.struct(full["n"], "birth_date").is_duplicated().mean()
    ).item()
    assert same_name_and_birth < 0.002


def test_names_follow_the_group(sample: pl.DataFrame) -> None:
    # A surname is drawn from the person's own group's list.
    for group in names.POPULATION_GROUPS:
        rows = sample.filter(pl.col("population_group") == group)
        assert rows["last_name"].is_in(list(names.SURNAMES[group])).all(), group
    lenasia = sample.filter(pl.col("suburb") == "Lenasia")
    assert (lenasia["last_name"].is_in(["Naidoo", "Pillay", "Govender", "Moodley"])).mean() > 0.05  # type: ignore[operator]


def test_street_city_and_postal_code_follow_the_suburb(sample: pl.DataFrame) -> None:
    table = pl.DataFrame(
        [
            (s.name, s.city, s.postal_code, street)
            for s in names.SUBURB_TABLE
            for street in s.streets
        ],
        schema=["suburb", "city", "postal_code", "street"],
        orient="row",
    )
    people = sample.with_columns(
        pl.col("address_line").str.extract(r"^\d+ (.+)$").alias("street"),
        pl.col("address_line").str.extract(r"^(\d+) ").cast(pl.Int64).alias("house"),
    )
    assert people["house"].is_between(1, 2999).all()
    joined = people.join(table, on=["suburb", "city", "postal_code", "street"], how="anti")
    assert joined.height == 0, joined.head()
    # Every suburb's streets are used, and a Soweto street never appears in Sandton.
    assert people.select(pl.struct("suburb", "street").n_unique()).item() == table.height
    sandton = people.filter(pl.col("suburb") == "Sandton")
    assert not sandton["street"].is_in(["Vilakazi Street", "Mooki Street"]).any()


def test_population_group_mix_follows_the_suburb(sample: pl.DataFrame) -> None:
    counts = sample.group_by("suburb", "population_group").len()
    totals = sample.group_by("suburb").len().rename({"len": "total"})
    observed = {(s, g): c / t for s, g, c, t in counts.join(totals, on="suburb").rows()}
    size = dict(totals.rows())
    for suburb in names.SUBURB_TABLE:
        n = size[suburb.name]
        for group, expected in zip(names.POPULATION_GROUPS, suburb.group_mix, strict=True):
            share = observed.get((suburb.name, group), 0.0)
            # Four binomial standard deviations, plus a little slack.
            tolerance = 4 * (expected * (1 - expected) / n) ** 0.5 + 0.005
            assert abs(share - expected) <= tolerance, (suburb.name, group, share, expected)
    assert observed[("Lenasia", "Indian/Asian")] > 0.6
    assert observed[("Eldorado Park", "Coloured")] > 0.7
    assert observed[("Diepkloof", "Black African")] > 0.95
    assert observed[("Sandton", "White")] > 0.4
    overall = sample["population_group"].value_counts(normalize=True)
    black = overall.filter(pl.col("population_group") == "Black African")["proportion"][0]
    assert abs(black - names.GROUP_SHARES[0]) < 0.04


def test_suburb_table_is_well_formed() -> None:
    table = names.SUBURB_TABLE
    assert len({s.name for s in table}) == len(table) >= 30
    for s in table:
        assert s.postal_code.isdigit() and len(s.postal_code) == 4, s
        assert s.weight > 0 and abs(sum(s.group_mix) - 1) < 1e-9, s
        assert len(set(s.streets)) == len(s.streets) == 8, s
    assert {"Soweto", "Sandton", "Tembisa"} <= {s.city for s in table}


def test_name_lists_are_large_weighted_and_rebuild_identically(tmp_path: Path) -> None:
    for (kind, group), table in names.NAME_LISTS.items():
        assert len(table.names) == len(set(table.names)) >= 300, (kind, group)
        assert all(w > 0 for w in table.weights)
        assert list(table.weights) == sorted(table.weights, reverse=True)
        # No single name is more than ~3 % of its list's mass.
        assert max(table.weights) / sum(table.weights) < 0.03, (kind, group)
    # The committed data file is exactly what the build script makes from its sources.
    out = tmp_path / "names.csv"
    build_names.write(out)
    assert out.read_bytes() == Path(build_names.OUT).read_bytes()


def test_newborn_first_names_follow_the_weights(people: People) -> None:
    # Newborns draw from the same weighted lists as the population: the ten most frequent names
    # of each (group, sex) list carry their weight share (~6-25 %), not the ~2 % a uniform draw
    # over 300-600 names gives them. Same seed, same names.
    def newborns(seed: int) -> pl.DataFrame:
        reg = Registry(people)
        rng = np.random.default_rng(seed)
        day = 19_000
        for d in range(30):
            reg.register_births(rng, day + d, rng.integers(0, people.size, size=400))
        return reg.newborn_frame()

    babies = newborns(5)
    assert babies.equals(newborns(5))
    top: dict[tuple[str, str], tuple[set[str], float, float]] = {}
    for group in names.POPULATION_GROUPS:
        for sex, kind in (("F", "female"), ("M", "male")):
            table = names.NAME_LISTS[(kind, group)]
            share = sum(table.weights[:10]) / sum(table.weights)
            top[(group, sex)] = (set(table.names[:10]), share, 10 / len(table.names))
    hits = [
        first in top[(g, s)][0]
        for first, g, s in babies.select("first_name", "population_group", "sex").iter_rows()
    ]
    expected = np.mean([top[(g, s)][1] for g, s in babies.select("population_group", "sex").rows()])
    uniform = np.mean([top[(g, s)][2] for g, s in babies.select("population_group", "sex").rows()])
    observed = float(np.mean(hits))
    sigma = (expected * (1 - expected) / len(hits)) ** 0.5
    assert expected > 2 * uniform, (expected, uniform)
    assert abs(observed - expected) < 4 * sigma, (observed, expected, uniform)

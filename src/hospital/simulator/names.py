"""South African names, suburbs and streets: loaded once from package data in ``data/``.

- ``data/names.csv`` (kind, population_group, name, weight): first names by sex and surnames by
  population group with frequency weights, most frequent first. Built by
  ``data/build_names.py`` from curated South African lists and Faker's ``zu_ZA``, ``en_US``,
  ``en_GB`` and ``en_IN`` lists (sources and shares documented there and in docs/simulator.md).
- ``data/suburbs.csv``: a small table of Johannesburg-area suburbs with city, postal code,
  relative resident weight, population-group mix (Census 2011 main-place shares, rounded) and
  eight street names each, so an address's street, postal code and the resident's population
  group all follow the suburb.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from importlib import resources
from typing import Final

POPULATION_GROUPS: Final[tuple[str, ...]] = ("Black African", "White", "Coloured", "Indian/Asian")
# Gauteng's shares (Stats SA mid-year estimates, rounded): the target the suburb table's weights
# are checked against (the simulator draws the group from the suburb's own mix).
GROUP_SHARES: Final[tuple[float, ...]] = (0.84, 0.10, 0.035, 0.025)
_MIX_COLUMNS = ("black_african", "white", "coloured", "indian_asian")


@dataclass(frozen=True)
class NameList:
    """Names of one (kind, population group), most frequent first, with relative weights."""

    names: tuple[str, ...]
    weights: tuple[float, ...]


@dataclass(frozen=True)
class Suburb:
    name: str
    city: str
    postal_code: str
    weight: float
    group_mix: tuple[float, ...]  # in POPULATION_GROUPS order, sums to 1
    streets: tuple[str, ...]


def _rows(filename: str) -> list[dict[str, str]]:
    text = resources.files("hospital.simulator.data").joinpath(filename).read_text("utf-8")
    return list(csv.DictReader(text.splitlines()))


def _load_names() -> dict[tuple[str, str], NameList]:
    grouped: dict[tuple[str, str], tuple[list[str], list[float]]] = {}
    for row in _rows("names.csv"):
        names, weights = grouped.setdefault((row["kind"], row["population_group"]), ([], []))
        names.append(row["name"])
        weights.append(float(row["weight"]))
    return {key: NameList(tuple(n), tuple(w)) for key, (n, w) in grouped.items()}


def _load_suburbs() -> tuple[Suburb, ...]:
    out = []
    for row in _rows("suburbs.csv"):
        mix = tuple(float(row[c]) for c in _MIX_COLUMNS)
        total = sum(mix)
        out.append(
            Suburb(
                name=row["suburb"],
                city=row["city"],
                postal_code=row["postal_code"],
                weight=float(row["weight"]),
                group_mix=tuple(m / total for m in mix),
                streets=tuple(row["streets"].split("|")),
            )
        )
    return tuple(out)


NAME_LISTS: Final[dict[tuple[str, str], NameList]] = _load_names()
FEMALE_FIRST: Final[dict[str, tuple[str, ...]]] = {
    g: NAME_LISTS[("female", g)].names for g in POPULATION_GROUPS
}
MALE_FIRST: Final[dict[str, tuple[str, ...]]] = {
    g: NAME_LISTS[("male", g)].names for g in POPULATION_GROUPS
}
SURNAMES: Final[dict[str, tuple[str, ...]]] = {
    g: NAME_LISTS[("surname", g)].names for g in POPULATION_GROUPS
}

SUBURB_TABLE: Final[tuple[Suburb, ...]] = _load_suburbs()
# (suburb, city, postal code, relative weight), kept for callers that need no streets.
SUBURBS: Final[tuple[tuple[str, str, str, float], ...]] = tuple(
    (s.name, s.city, s.postal_code, s.weight) for s in SUBURB_TABLE
)
STREETS: Final[tuple[str, ...]] = tuple(
    dict.fromkeys(street for s in SUBURB_TABLE for street in s.streets)
)

# Cellular prefixes in use in South Africa (after the leading 0 / +27).
MOBILE_PREFIXES: Final[tuple[int, ...]] = (
    60, 61, 62, 63, 64, 65, 66, 67, 68, 71, 72, 73, 74, 76, 78, 79, 81, 82, 83, 84,
)  # fmt: skip

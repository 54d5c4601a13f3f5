"""The catchment population: ``num_people`` South Africans in Gauteng, generated vectorized.

Pure functions: :func:`generate_population` returns a polars frame; :func:`write_population`
does the file I/O. Row ``i`` of the frame is "person index ``i``" everywhere in the simulator.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from hospital.errors import SimulationError
from hospital.simulator import names
from hospital.simulator.sa_id import EPOCH, assemble_ids, sequences_for_sorted, yymmdd_numbers
from hospital.simulator.vectors import (
    ascii_matrix_to_series,
    child_rng,
    digits,
    pick,
    random_uuids,
)

STREAM_POPULATION = 1

# Share of the population by five-year age band, 0-4 ... 95-99 (South Africa, Stats SA-like).
AGE_BAND_SHARES: tuple[float, ...] = (
    9.5, 9.3, 8.8, 8.0, 8.1, 9.0, 9.3, 8.3, 6.6, 5.3,
    4.6, 4.0, 3.3, 2.5, 1.7, 1.0, 0.5, 0.2, 0.07, 0.03,
)  # fmt: skip
CITIZEN_SHARE = 0.95
# Share of males by age (upper bounds of the bands), Stats SA mid-year estimates 2022, rounded:
# about even in childhood, fewer men from middle age, ~40 % of the over-65s.
MALE_SHARE_AGES = (15, 35, 50, 65, 75, 85, 200)
MALE_SHARE = (0.505, 0.5, 0.49, 0.46, 0.42, 0.37, 0.31)


def male_share(age_years: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    band = np.searchsorted(np.array(MALE_SHARE_AGES), age_years, side="right")
    return np.asarray(np.array(MALE_SHARE)[np.minimum(band, len(MALE_SHARE) - 1)])


def ref_day(reference: date) -> int:
    return (reference - date(1970, 1, 1)).days


PEOPLE_COLUMNS: tuple[str, ...] = (
    "person_id",
    "national_id",
    "first_name",
    "last_name",
    "sex",
    "birth_date",
    "population_group",
    "address_line",
    "suburb",
    "city",
    "province",
    "postal_code",
    "phone",
)


@functools.cache
def _name_table(
    kinds: tuple[str, str],
) -> tuple[list[str], list[npt.NDArray[np.float64]], npt.NDArray[np.int64]]:
    """All names in one list, with each (group, sex) slice's cumulative weights and offset.

    Slice ``2 * group + male`` holds the names for that group and sex (``kinds`` = the list kind
    for female and for male), so one gather picks every person's name whatever their group.
    """
    flat: list[str] = []
    cdfs: list[npt.NDArray[np.float64]] = []
    offsets = []
    for group in names.POPULATION_GROUPS:
        for kind in kinds:
            table = names.NAME_LISTS[(kind, group)]
            offsets.append(len(flat))
            w = np.array(table.weights, dtype=np.float64)
            cdfs.append(np.cumsum(w) / w.sum())
            flat.extend(table.names)
    return flat, cdfs, np.array(offsets, dtype=np.int64)


def choose_names(
    rng: np.random.Generator, kinds: tuple[str, str], slot: npt.NDArray[np.int64], column: str
) -> pl.Series:
    """One name per person from their (group, sex) list, drawn by the list's frequency weights
    (``data/names.csv``): one uniform per person, one ``searchsorted`` per slice. ``slot`` is
    ``2 * group index + male``. Used for the initial population and for newborns alike."""
    flat, cdfs, offsets = _name_table(kinds)
    u: npt.NDArray[np.float64] = np.asarray(rng.random(slot.shape[0]), dtype=np.float64)
    idx = np.zeros(slot.shape[0], dtype=np.int64)
    for k, cdf in enumerate(cdfs):
        rows = np.flatnonzero(slot == k)
        if rows.shape[0] == 0:
            continue
        pick_k = np.minimum(np.searchsorted(cdf, u[rows], side="right"), cdf.shape[0] - 1)
        idx[rows] = offsets[k] + pick_k
    return pick(flat, idx, column)


def _place_people(
    rng: np.random.Generator, n: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], list[str], npt.NDArray[np.int64]]:
    """Suburb, population group and street per person, all following the suburb table.

    The suburb is drawn by resident weight; the group from that suburb's mix (a Lenasia resident
    is most likely Indian/Asian, an Eldorado Park resident Coloured); the street from the
    suburb's own streets. Returns (suburb index, group index, flat street list, street index).
    """
    table = names.SUBURB_TABLE
    sub_w = np.array([s.weight for s in table])
    suburb = rng.choice(len(table), size=n, p=sub_w / sub_w.sum()).astype(np.int64)
    mix_cdf = np.cumsum(np.array([s.group_mix for s in table]), axis=1)
    u = rng.random(n)
    group = np.zeros(n, dtype=np.int64)
    for k in range(len(names.POPULATION_GROUPS) - 1):
        group += u >= mix_cdf[suburb, k]
    streets = [street for s in table for street in s.streets]
    sizes = np.array([len(s.streets) for s in table], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    street = offsets[suburb] + (rng.random(n) * sizes[suburb]).astype(np.int64)
    return suburb, group, streets, street


# Everyone is younger than this, so all birth dates fit in one 100-year window and the two-digit
# year of the ID number never clashes between centuries.
MAX_AGE_DAYS = 36_500


def sorted_birth_days(rng: np.random.Generator, n: int, reference: date) -> npt.NDArray[np.int64]:
    """Birth dates (days since 1970-01-01), ascending, following the age pyramid.

    Drawing a count per calendar day (one multinomial) yields the dates already sorted, which
    lets ID sequences be numbered without sorting millions of rows.
    """
    shares = np.array(AGE_BAND_SHARES) / sum(AGE_BAND_SHARES)
    age_days = np.arange(MAX_AGE_DAYS, dtype=np.int64)
    band = np.minimum(age_days * 20 // MAX_AGE_DAYS, shares.shape[0] - 1)
    band_days = np.bincount(band, minlength=shares.shape[0])
    p = shares[band] / band_days[band]
    counts = rng.multinomial(n, p / p.sum())
    ref = int((np.datetime64(reference, "D") - EPOCH).astype(np.int64))
    # Index 0 of ``age_days`` is the youngest (born the day before ``reference``).
    days = ref - 1 - age_days
    return np.repeat(days[::-1], counts[::-1])


def generate_population(num_people: int, seed: int, reference: date) -> pl.DataFrame:
    """``num_people`` people alive on ``reference``; deterministic in its three arguments."""
    if num_people < 1:
        raise SimulationError("the population needs at least one person")
    n = num_people
    rng = child_rng(seed, STREAM_POPULATION)
    born_sorted = sorted_birth_days(rng, n, reference)
    male_sorted = rng.random(n) < male_share((ref_day(reference) - born_sorted) / 365.25)
    seq_sorted = sequences_for_sorted(born_sorted, male_sorted, rng)
    # Shuffle once so the file is not ordered by birth date.
    perm = rng.permutation(n)
    born, male, seq = born_sorted[perm], male_sorted[perm], seq_sorted[perm]
    del born_sorted, male_sorted, seq_sorted, perm

    first_day = int(born.min())
    day_table = yymmdd_numbers(np.arange(first_day, int(born.max()) + 1, dtype=np.int64))
    citizen = rng.random(n) < CITIZEN_SHARE
    ids = assemble_ids(day_table[born - first_day], seq, citizen)
    person_ids = random_uuids(rng, n)

    suburb_idx, group, streets, street = _place_people(rng, n)
    slot = group * 2 + male
    first = choose_names(rng, ("female", "male"), slot, "first_name")
    surname = choose_names(rng, ("surname", "surname"), slot, "last_name")
    house = rng.integers(1, 3000, size=n)

    phone = np.empty((n, 12), dtype=np.uint8)
    phone[:, 0:3] = np.frombuffer(b"+27", dtype=np.uint8)
    prefixes = np.array(names.MOBILE_PREFIXES, dtype=np.int64)
    phone[:, 3:5] = digits(prefixes[rng.integers(0, prefixes.shape[0], size=n)], 2)
    phone[:, 5:12] = digits(rng.integers(0, 10_000_000, size=n), 7)

    frame = pl.DataFrame(
        {
            "person_id": ascii_matrix_to_series("person_id", person_ids),
            "national_id": ascii_matrix_to_series("national_id", ids),
            "first_name": first,
            "last_name": surname,
            "sex": pick(("F", "M"), male.astype(np.int64), "sex"),
            "birth_date": pl.Series(born.astype(np.int32)).cast(pl.Date),
            "population_group": pick(names.POPULATION_GROUPS, group, "population_group"),
            "_house": pl.Series(house),
            "_street": pick(streets, street, "street"),
            "suburb": pick([s[0] for s in names.SUBURBS], suburb_idx, "suburb"),
            "city": pick([s[1] for s in names.SUBURBS], suburb_idx, "city"),
            "postal_code": pick([s[2] for s in names.SUBURBS], suburb_idx, "postal_code"),
            "phone": ascii_matrix_to_series("phone", phone),
        }
    )
    return frame.select(
        "person_id",
        "national_id",
        "first_name",
        "last_name",
        "sex",
        "birth_date",
        "population_group",
        pl.concat_str([pl.col("_house").cast(pl.String), pl.col("_street")], separator=" ").alias(
            "address_line"
        ),
        "suburb",
        "city",
        pl.lit("Gauteng").alias("province"),
        "postal_code",
        "phone",
    )


@dataclass(frozen=True)
class People:
    """The population frame plus the numpy columns the daily simulation reads."""

    frame: pl.DataFrame
    birth: npt.NDArray[np.int64]  # days since 1970-01-01
    male: npt.NDArray[np.bool_]

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> People:
        birth = frame["birth_date"].cast(pl.Int32).to_numpy().astype(np.int64)
        return cls(frame=frame, birth=birth, male=(frame["sex"] == "M").to_numpy())

    @property
    def size(self) -> int:
        return self.frame.height


@dataclass(frozen=True)
class PopulationFiles:
    csv: Path
    parquet: Path
    rows: int


def write_population(frame: pl.DataFrame, out_dir: Path) -> PopulationFiles:
    """Write ``people.csv`` and ``people.parquet`` (byte-identical for identical frames)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "people.csv"
    parquet_path = out_dir / "people.parquet"
    frame.write_csv(csv_path)
    # Statistics off and one row group size: nothing in the file depends on timing or threads.
    frame.write_parquet(parquet_path, compression="zstd", statistics=False, row_group_size=1 << 20)
    return PopulationFiles(csv=csv_path, parquet=parquet_path, rows=frame.height)


def ages_on(birth: npt.NDArray[np.int64], day: date) -> npt.NDArray[np.int64]:
    """Completed years of age on ``day`` for birth dates given as days since 1970-01-01."""
    b = birth.astype("datetime64[D]")
    by = b.astype("datetime64[Y]").astype(np.int64) + 1970
    bm = b.astype("datetime64[M]").astype(np.int64) % 12 + 1
    bd = (b - b.astype("datetime64[M]")).astype(np.int64) + 1
    before_birthday = (day.month * 100 + day.day) < (bm * 100 + bd)
    return np.asarray(day.year - by - before_birthday.astype(np.int64), dtype=np.int64)

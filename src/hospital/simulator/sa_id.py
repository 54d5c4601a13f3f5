"""South African identity numbers (13 digits), vectorized.

Layout: ``YYMMDD SSSS C A Z`` — birth date, a gender sequence (0000-4999 female, 5000-9999 male),
citizenship (0 citizen, 1 permanent resident), a digit that is 8 on current IDs, and a Luhn check
digit over the first twelve.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import numpy.typing as npt

from hospital.errors import SimulationError
from hospital.simulator.vectors import U8, digits

SEQ_PER_SEX = 5000
EPOCH = np.datetime64("1970-01-01", "D")


def luhn_check_digits(body: U8) -> npt.NDArray[np.uint8]:
    """Luhn check digit for each row of an ``(n, 12)`` matrix of digit values 0-9."""
    # In the 13-digit number the check digit is rightmost, so body columns 1, 3, ..., 11 are the
    # doubled ones; a lookup table gives the digit sum of each doubled value.
    doubled_sum = np.array([0, 2, 4, 6, 8, 1, 3, 5, 7, 9], dtype=np.uint8)
    total = np.zeros(body.shape[0], dtype=np.uint16)
    for col in range(12):
        column = body[:, col]
        total += doubled_sum[column] if col % 2 else column
    return ((10 - total % 10) % 10).astype(np.uint8)


def luhn_valid(number: str) -> bool:
    """Scalar Luhn check of a full number (used by tests and input validation)."""
    if not number.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(number)):
        v = int(ch)
        if i % 2 == 1:
            v = v * 2 - 9 if v * 2 > 9 else v * 2
        total += v
    return total % 10 == 0


def yymmdd_numbers(days: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """YYMMDD as an integer for dates given as days since 1970-01-01."""
    dt = days.astype("datetime64[D]")
    years = dt.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dt.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dom = (dt - dt.astype("datetime64[M]")).astype(np.int64) + 1
    return np.asarray((years % 100) * 10000 + months * 100 + dom, dtype=np.int64)


def sequences_for_sorted(
    sorted_days: npt.NDArray[np.int64], male: npt.NDArray[np.bool_], rng: np.random.Generator
) -> npt.NDArray[np.int64]:
    """Gender sequence numbers, distinct within each (birth date, sex), for rows sorted by date.

    The caller guarantees all birth dates lie within one 100-year window, so YYMMDD identifies the
    date and (date, sex, sequence) is unique. Slots are spread over the 5000-wide range with a
    random offset so numbers do not all read 0000, 0001...
    """
    n = sorted_days.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    new_day = np.r_[True, sorted_days[1:] != sorted_days[:-1]]
    starts = np.flatnonzero(new_day)
    group = np.cumsum(new_day) - 1
    m = male.astype(np.int64)
    f = 1 - m
    cm, cf = np.cumsum(m), np.cumsum(f)
    # Rank of each row among same-sex rows of its day: running count minus the count before the day.
    before_m = (cm - m)[starts][group]
    before_f = (cf - f)[starts][group]
    rank = np.where(male, cm - 1 - before_m, cf - 1 - before_f)
    day_m = np.add.reduceat(m, starts)[group]
    day_f = np.add.reduceat(f, starts)[group]
    size = np.where(male, day_m, day_f)
    if size.max() > SEQ_PER_SEX:
        raise SimulationError(
            f"more than {SEQ_PER_SEX} people share a birth date and sex; "
            "SA ID numbers cannot be unique at this population size"
        )
    width = SEQ_PER_SEX // size
    seq = rank * width + (rng.random(n) * width).astype(np.int64)
    return np.asarray(seq + np.where(male, SEQ_PER_SEX, 0), dtype=np.int64)


def assemble_ids(
    yymmdd: npt.NDArray[np.int64], seq: npt.NDArray[np.int64], citizen: npt.NDArray[np.bool_]
) -> U8:
    """The 13-digit IDs as an ``(n, 13)`` ASCII matrix."""
    n = yymmdd.shape[0]
    out = np.empty((n, 13), dtype=np.uint8)
    out[:, 0:6] = digits(yymmdd, 6)
    out[:, 6:10] = digits(seq, 4)
    out[:, 10] = ord("0") + (~citizen).astype(np.uint8)
    out[:, 11] = ord("8")
    out[:, 12] = ord("0") + luhn_check_digits(out[:, :12] - ord("0"))
    return out


def parse_id(number: str) -> tuple[str, str, bool]:
    """(YYMMDD, sex 'F'/'M', citizen) of a valid ID; raises SimulationError otherwise."""
    if len(number) != 13 or not luhn_valid(number):
        raise SimulationError(f"invalid SA ID number {number!r}")
    sex = "M" if int(number[6:10]) >= SEQ_PER_SEX else "F"
    return number[:6], sex, number[10] == "0"


def yymmdd(day: date) -> str:
    return day.strftime("%y%m%d")

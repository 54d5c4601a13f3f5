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
    d = body.astype(np.int64)
    # From the right of the 12-digit body, positions 1, 3, 5... (0-based 11, 9, ...) are doubled.
    doubled = d[:, 1::2] * 2
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    total = d[:, 0::2].sum(axis=1) + doubled.sum(axis=1)
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


def build_ids(
    birth_days: npt.NDArray[np.int64],
    male: npt.NDArray[np.bool_],
    citizen: npt.NDArray[np.bool_],
    rng: np.random.Generator,
) -> U8:
    """Unique IDs as an ``(n, 13)`` ASCII matrix; ``birth_days`` are days since 1970-01-01.

    Uniqueness: IDs clash only when YYMMDD, sex and sequence match (the century is not encoded),
    so sequences are handed out per (YYMMDD, sex) group as distinct slots, scattered at random
    inside the 5000-wide range so they do not all read 0000, 0001...
    """
    n = birth_days.shape[0]
    dt = birth_days.astype("datetime64[D]")
    years = dt.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dt.astype("datetime64[M]").astype(np.int64) % 12 + 1
    dom = (dt - dt.astype("datetime64[M]")).astype(np.int64) + 1
    yymmdd = (years % 100) * 10000 + months * 100 + dom
    key = yymmdd * 2 + male.astype(np.int64)
    order = np.lexsort((rng.random(n), key))
    sorted_key = key[order]
    starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
    sizes = np.diff(np.r_[starts, n])
    if n and sizes.max() > SEQ_PER_SEX:
        raise SimulationError(
            f"more than {SEQ_PER_SEX} people share a birth date and sex; "
            "SA ID numbers cannot be unique at this population size"
        )
    group_of = np.repeat(np.arange(starts.shape[0]), sizes)
    rank = np.arange(n) - starts[group_of]
    width = SEQ_PER_SEX // sizes[group_of]
    seq_sorted = rank * width + (rng.random(n) * width).astype(np.int64)
    seq = np.empty(n, dtype=np.int64)
    seq[order] = seq_sorted
    seq += np.where(male, SEQ_PER_SEX, 0)

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

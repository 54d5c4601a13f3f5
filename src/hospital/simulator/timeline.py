"""Time inside the simulator: integer seconds since 1970, and the day-boundary rule.

The rule every record builder follows: a row of day ``D``'s result is stamped within day ``D``
(``[D 00:00, D 24:00)``), and a clinical event of a visit falls inside that visit (between its
start and its end, or the end of the day while the visit is still open). The one exception is the
origin day's census: patients already in a bed when the world starts keep the (earlier) times of
their admission and of what was done for them then.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import numpy.typing as npt
import polars as pl

from hospital.simulator.vectors import ascii_matrix_to_series, random_uuids

DAY_S = 86_400
HOUR_S = 3_600
US = 1_000_000
TS = pl.Datetime("us", "UTC")
Schema = dict[str, pl.DataType | type[pl.DataType]]
I64 = npt.NDArray[np.int64]


def ts_series(name: str, seconds: I64 | int) -> pl.Series:
    """Absolute seconds since 1970 as a UTC microsecond timestamp column."""
    return pl.Series(name, np.asarray(seconds, dtype=np.int64) * US).cast(TS)


def id_series(rng: np.random.Generator, n: int, name: str) -> pl.Series:
    return ascii_matrix_to_series(name, random_uuids(rng, n))


def inside(start: npt.ArrayLike, offset: npt.ArrayLike, span: int, limit: npt.ArrayLike) -> I64:
    """``start + offset``, squeezed into ``[start, limit]`` when it would pass ``limit``.

    ``offset`` is drawn from ``[0, span)``; when the event would fall after ``limit`` (the visit
    ended, or the day did) the same relative position is used within the room that is left, so the
    order of a visit's events is kept and nothing is stamped outside its visit or its day.
    """
    start_a = np.asarray(start, dtype=np.int64)
    offset_a = np.asarray(offset, dtype=np.int64)
    limit_a = np.broadcast_to(np.asarray(limit, dtype=np.int64), start_a.shape)
    t = start_a + offset_a
    room = np.maximum(limit_a - start_a, 0)
    squeezed = start_a + (room * (offset_a / span)).astype(np.int64)
    return np.asarray(np.where(t <= limit_a, t, squeezed), dtype=np.int64)


def day_end(day_num: int) -> int:
    """The last second of day ``day_num`` (absolute seconds)."""
    return (day_num + 1) * DAY_S - 1


def day_number(day: date) -> int:
    """Days since 1970-01-01, the integer form of dates inside the simulator."""
    return (day - date(1970, 1, 1)).days

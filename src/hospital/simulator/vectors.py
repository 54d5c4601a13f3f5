"""Vectorized building blocks: fixed-width strings and deterministic UUIDs from numpy arrays.

Building millions of Python strings one by one is what makes naive generators slow; here strings
are assembled as ``uint8`` matrices and handed to Arrow as one buffer (no per-row objects).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_ZERO = ord("0")


def ascii_matrix_to_series(name: str, chars: U8) -> pl.Series:
    """An ``(n, width)`` ASCII matrix as a polars string column, without per-row Python work."""
    n, width = chars.shape
    data = np.ascontiguousarray(chars).reshape(-1)
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int64)
    arr = pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data.tobytes())
    )
    return pl.Series(name, pl.from_arrow(arr)).cast(pl.String)


def digits(values: npt.NDArray[np.integer], width: int) -> U8:
    """Zero-padded decimal digits of non-negative integers as an ``(n, width)`` ASCII matrix."""
    v = values.astype(np.int64, copy=True)
    out = np.empty((v.shape[0], width), dtype=np.uint8)
    for pos in range(width - 1, -1, -1):
        out[:, pos] = (v % 10 + _ZERO).astype(np.uint8)
        v //= 10
    return out


def random_uuids(rng: np.random.Generator, n: int) -> U8:
    """RFC 4122 version-4 layout UUIDs drawn from ``rng`` (deterministic, unlike ``uuid4``)."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexchars = np.empty((n, 32), dtype=np.uint8)
    hexchars[:, 0::2] = _HEX[raw >> 4]
    hexchars[:, 1::2] = _HEX[raw & 0x0F]
    out = np.full((n, 36), ord("-"), dtype=np.uint8)
    for src, dst in ((slice(0, 8), slice(0, 8)), (slice(8, 12), slice(9, 13))):
        out[:, dst] = hexchars[:, src]
    out[:, 14:18] = hexchars[:, 12:16]
    out[:, 19:23] = hexchars[:, 16:20]
    out[:, 24:36] = hexchars[:, 20:32]
    return out


def uuid_series(name: str, rng: np.random.Generator, n: int) -> pl.Series:
    """``n`` deterministic UUID strings as a polars column."""
    return ascii_matrix_to_series(name, random_uuids(rng, n))


def pick(values: tuple[str, ...] | list[str], idx: npt.NDArray[np.integer], name: str) -> pl.Series:
    """``values[idx]`` as a polars column (one gather, no Python loop)."""
    return pl.Series(name, list(values), dtype=pl.String).gather(pl.Series(idx.astype(np.int64)))


def child_rng(seed: int, *keys: int) -> np.random.Generator:
    """An independent, reproducible stream for a (seed, purpose, day...) key.

    Per-purpose streams mean adding draws in one place never shifts the numbers drawn elsewhere.
    """
    return np.random.default_rng([seed, *keys])
